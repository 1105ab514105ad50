//! The public publication and the supervisor's annex (issue 14, methodology section 9): every
//! public file (spreadsheet cells and charts, page, CSV, SVG text) is scanned for the TPP ids,
//! request ids and watch levels of the test data; the annex holds them, with a manifest that
//! verifies. The page names the quarter as the bank does, gives local times with their offset,
//! keeps establishments apart, speaks English with `--lang en`, and renders in Chromium at
//! 1 280 px without horizontal scrolling and with every image loaded.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support;

const TPP_A: &str = "PSDFR-ACPR-SECRETA";
const TPP_B: &str = "PSDFR-ACPR-SECRETB";
const TPP_FB: &str = "PSDFR-ACPR-FALLBK";

/// Four weeks of July 2024 (Paris is UTC+2), as a gateway log: a request every 15 minutes on
/// 13807's dedicated interface (TPP A) and online banking, and on 16807's dedicated interface
/// (TPP B). 13807 is down three Tuesdays in a row (2, 9, 16 July) from 08:00:00Z — five
/// unanswered requests within 20 s — to the reply at 09:30:00Z, completed 120 ms later:
/// 5 400.12 s each, so weeks 27, 28 and 29 miss 99.5 % (5 400.12 / 604 800 = 0.89 % down):
/// notice, warning, critical. 16807 is down once, 3 July 10:00:00Z to the reply at 10:30:00Z,
/// completed 90 ms later (1 800.09 s).
/// A fallback request of another TPP on 5 July is unjustified. The log ends on 28 July at
/// 22:05Z, past the local midnight that ends week 30, so four weeks are judged.
fn july() -> (String, BTreeSet<String>) {
    let mut ids = BTreeSet::new();
    let mut rows = vec![
        "received_at,establishment,interface,service,source,tpp,status,latency_ms,error_code,request_id"
            .to_owned(),
    ];
    let start = chrono::DateTime::parse_from_rfc3339("2024-06-30T22:00:00Z").unwrap();
    let end = chrono::DateTime::parse_from_rfc3339("2024-07-28T22:05:00Z").unwrap();
    let down13 = ["2024-07-02", "2024-07-09", "2024-07-16"];
    let mut at = start;
    let mut n = 0;
    let mut push = |rows: &mut Vec<String>, line: String, id: String| {
        ids.insert(id);
        rows.push(line);
    };
    while at <= end {
        let t = at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        let day = at.format("%Y-%m-%d").to_string();
        let hm = at.format("%H:%M").to_string();
        let in13 = down13.contains(&day.as_str()) && ("08:00".."09:30").contains(&hm.as_str());
        let in16 = day == "2024-07-03" && ("10:00".."10:25").contains(&hm.as_str());
        n += 1;
        if !in13 {
            let id = format!("rq13-{n:05}");
            push(
                &mut rows,
                format!("{t},13807,api,cbpii,log,{TPP_A},200,120,,{id}"),
                id,
            );
        }
        let id = format!("rqweb-{n:05}");
        push(
            &mut rows,
            format!("{t},13807,psu_web,psu_login,log,,200,300,,{id}"),
            id,
        );
        if !in16 {
            let id = format!("rq16-{n:05}");
            push(
                &mut rows,
                format!("{t},16807,api,cbpii,log,{TPP_B},200,90,,{id}"),
                id,
            );
        }
        at += chrono::Duration::minutes(15);
    }
    for (w, day) in down13.iter().enumerate() {
        for k in 0..5 {
            let id = format!("rqdown13-{w}-{k}");
            push(
                &mut rows,
                format!(
                    "{day}T08:00:{:02}.000Z,13807,api,cbpii,log,{TPP_A},,,,{id}",
                    k * 5
                ),
                id,
            );
        }
    }
    for k in 0..5 {
        let id = format!("rqdown16-{k}");
        push(
            &mut rows,
            format!(
                "2024-07-03T10:00:{:02}.000Z,16807,api,cbpii,log,{TPP_B},,,,{id}",
                k * 5
            ),
            id,
        );
    }
    let id = "rqfb-1".to_owned();
    push(
        &mut rows,
        format!("2024-07-05T12:00:00.000Z,13807,fallback,fallback,log,{TPP_FB},302,40,,{id}"),
        id,
    );
    (rows.join("\n") + "\n", ids)
}

/// Every file under `dir`, skipping the folder `skip`.
pub fn files(dir: &Path, skip: Option<&str>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if skip.is_none_or(|s| p.file_name().unwrap() != s) {
                    stack.push(p);
                }
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The text of a file as a reader could find it: a spreadsheet's XML parts (cells, shared
/// strings, charts), a page, a CSV, an SVG's text. PNGs carry no text.
fn texts(path: &Path) -> Vec<(String, String)> {
    let name = path.display().to_string();
    match path.extension().and_then(|x| x.to_str()) {
        Some("xlsx") => {
            let mut z = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
            (0..z.len())
                .filter_map(|i| {
                    let mut f = z.by_index(i).unwrap();
                    let part = f.name().unwrap().to_string();
                    (part.ends_with(".xml") || part.ends_with(".rels")).then(|| {
                        let mut s = String::new();
                        f.read_to_string(&mut s).unwrap();
                        (format!("{name}!{part}"), s)
                    })
                })
                .collect()
        }
        Some("png") => Vec::new(),
        _ => vec![(
            name,
            String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned(),
        )],
    }
}

/// Words of a text, split on what cannot be part of an id.
fn tokens(s: &str) -> BTreeSet<String> {
    s.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Fails on any TPP id, request id or watch level in a public file.
pub fn assert_nothing_private(public: &[PathBuf], ids: &BTreeSet<String>, levels: &[&str]) {
    let mut forbidden: BTreeSet<String> = ids.iter().map(|s| s.to_lowercase()).collect();
    forbidden.extend([TPP_A, TPP_B, TPP_FB].map(str::to_lowercase));
    let mut scanned = 0;
    for f in public {
        for (name, text) in texts(f) {
            scanned += 1;
            let words = tokens(&text);
            let leaked: Vec<&String> = words.intersection(&forbidden).collect();
            assert!(leaked.is_empty(), "{name} shows {leaked:?}");
            for l in levels {
                assert!(
                    !words.contains(&l.to_lowercase()),
                    "{name} shows the watch level {l:?}"
                );
            }
            assert!(!text.contains("annexe-acpr"), "{name} links the annex");
        }
    }
    assert!(scanned > 10, "{scanned} texts scanned");
}

fn report(db: &Path, out: &Path, lang: &str) -> PathBuf {
    support::dispo_ok(&[
        "report",
        "--db",
        db.to_str().unwrap(),
        "--quarter",
        "2024-Q3",
        "--lang",
        lang,
        "--out",
        out.to_str().unwrap(),
    ]);
    out.join("2024-Q3")
}

#[test]
fn the_public_publication_shows_nothing_private_and_the_annex_keeps_it() {
    support::init();
    let dir = support::tmp_dir("publication", "july");
    let (csv, ids) = july();
    std::fs::write(dir.join("july.csv"), csv).unwrap();
    let db = dir.join("d.db");
    support::dispo_ok(&[
        "import",
        "--db",
        db.to_str().unwrap(),
        dir.join("july.csv").to_str().unwrap(),
    ]);
    let fr = report(&db, &dir.join("fr"), "fr");
    let en = report(&db, &dir.join("en"), "en");

    // The annex holds what the public must not see, and verifies.
    let annex = fr.join("annexe-acpr");
    let annex_text: String = files(&annex, None)
        .iter()
        .flat_map(|f| texts(f))
        .map(|(_, t)| t)
        .collect();
    for s in [
        TPP_A,
        TPP_FB,
        "rqdown13-2-4",
        "critique",
        "alerte",
        "vigilance",
    ] {
        assert!(annex_text.contains(s), "the annex holds {s}");
    }
    // Episode times in Paris time with the offset: 08:00:00Z is 10:00 in July.
    assert!(annex_text.contains("02/07/2024 10:00:00 (UTC+02:00)"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&annex).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "the annex is private");
    }
    let verify = Command::new(support::dispo_bin())
        .args(["evidence", "verify"])
        .arg(&annex)
        .output()
        .unwrap();
    assert!(verify.status.success(), "{verify:?}");

    // Nothing private in any public file, in either language.
    let public_fr = files(&fr, Some("annexe-acpr"));
    assert!(
        public_fr
            .iter()
            .any(|f| f.extension().is_some_and(|x| x == "svg"))
    );
    assert_nothing_private(&public_fr, &ids, &["vigilance", "alerte", "critique"]);
    let public_en = files(&en, Some("annexe-acpr"));
    assert_nothing_private(&public_en, &ids, &["notice", "warning", "critical"]);

    // The page: the quarter as the bank names it, the service measured in the title, local
    // times with their offset, each establishment apart with its own downtime.
    let html = std::fs::read_to_string(fr.join("index.html")).unwrap();
    assert!(
        html.contains(
            "<h1>Statistiques T3 2024 — interface dédiée DSP2 : confirmation de la disponibilité des fonds</h1>"
        ),
        "title"
    );
    assert!(!html.contains("2024-Q3</") && !html.contains("(exclu)"));
    assert!(
        html.contains("02/07/2024 10:00:00 (UTC+02:00)"),
        "local time"
    );
    // 13807: three episodes of 5 400.12 s → 4 h 30 min 00 s unplanned; 16807: 1 800.09 s.
    let s13 = section(&html, "e13807");
    let s16 = section(&html, "e16807");
    assert!(s13.contains("<td>4 h 30 min 00 s</td>"), "13807 downtime");
    assert!(s16.contains("<td>30 min 00 s</td>"), "16807 downtime");
    assert!(!html.contains("5 h 00 min"), "no sum across establishments");
    // The daily table, interfaces side by side: 2 July, 13807: 5 400.12 s down over a day fully
    // covered (86 400 s): 100 − 5 400.12/86 400 × 100 = 93.74986...%; online banking 100 %.
    assert!(
        s13.contains("<tr><th scope=\"row\">02/07/2024</th><td>93,7499</td>"),
        "daily row"
    );
    assert!(s13.contains("Banque en ligne"));
    assert!(html.contains("<nav") && html.contains("href=\"#e16807\""));
    // Measured only through gateway logs: said so; a customer interface was measured.
    assert!(html.contains("journaux de la passerelle"));
    assert!(!html.contains("sondes"), "no probe was used");
    // Not provisional: Q3 2024 is over.
    assert!(!html.contains("PROVISOIRE"));
    let csv = std::fs::read_to_string(fr.join("dispo-2024-Q3-daily.csv")).unwrap();
    assert!(
        csv.lines().nth(1).unwrap().ends_with(",définitif"),
        "{csv:.300}"
    );

    // The spreadsheet: Définitions, a sheet per establishment with native charts.
    let xlsx = fr.join("dispo-2024-Q3.xlsx");
    let wb = zip_text(&xlsx, "xl/workbook.xml");
    for sheet in ["Synthèse", "Définitions", "13807 BPGO", "16807 BPAURA"] {
        assert!(wb.contains(&format!("name=\"{sheet}\"")), "sheet {sheet}");
    }
    let strings = zip_text(&xlsx, "xl/sharedStrings.xml");
    for s in [
        "EBA/GL/2018/07 2.4(a)",
        "23 ou 25 heures",
        "Maintenance planifiée annoncée",
    ] {
        assert!(strings.contains(s), "{s}");
    }
    assert!(zip_text(&xlsx, "xl/charts/chart1.xml").contains("<c:lineChart>"));

    // English everywhere with --lang en.
    let html_en = std::fs::read_to_string(en.join("index.html")).unwrap();
    assert!(html_en.contains("<h1>Statistics Q3 2024 — PSD2 dedicated interface: confirmation of the availability of funds</h1>"));
    for french in [
        "Disponibilité",
        "Établissement",
        "T3 2024",
        "Banque en ligne",
        " du ",
    ] {
        assert!(
            !html_en.contains(french),
            "French {french:?} on the English page"
        );
    }
    let words = tokens(&html_en);
    for french in ["oui", "non", "jour", "heure", "sondes"] {
        assert!(
            !words.contains(french),
            "French {french:?} on the English page"
        );
    }
    assert!(html_en.contains("2024-07-02 10:00:00 (UTC+02:00)"));

    render_at_1280(&fr.join("index.html"), &dir);
}

/// The HTML of one establishment's section.
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html.find(&format!("<section id=\"{id}\"")).unwrap();
    let end = html[start..].find("</section>").unwrap();
    &html[start..start + end]
}

fn zip_text(path: &Path, name: &str) -> String {
    let mut z = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut s = String::new();
    z.by_name(name).unwrap().read_to_string(&mut s).unwrap();
    s
}

/// Renders the page in headless Chromium 1 280 px wide: no horizontal overflow (the document
/// and every table fit), and every chart image loaded. A copy of the page with a small script
/// records what the browser measured into the DOM, which `--dump-dom` prints.
pub fn render_at_1280(page: &Path, dir: &Path) {
    let Some(bin) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
    else {
        eprintln!("SKIPPED: Chromium not installed (apt-get install chromium; CI installs it)");
        return;
    };
    let html = std::fs::read_to_string(page).unwrap();
    let script = "<script>window.addEventListener('load',function(){\
        var d=document.documentElement,imgs=[].slice.call(document.images);\
        var bad=imgs.filter(function(i){return !i.complete||i.naturalWidth===0}).map(function(i){return i.getAttribute('src')});\
        var wide=[].slice.call(document.querySelectorAll('table,figure,img')).filter(function(t){return t.getBoundingClientRect().right>d.clientWidth+0.5}).length;\
        var p=document.createElement('pre');p.id='check';\
        p.textContent='sw='+d.scrollWidth+' cw='+d.clientWidth+' imgs='+imgs.length+' wide='+wide+' bad='+bad.join(',');\
        document.body.appendChild(p);});</script>";
    let probe = page.with_file_name("chromium-check.html");
    std::fs::write(&probe, html.replace("</body>", &format!("{script}</body>"))).unwrap();
    let out = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1280,900",
            "--virtual-time-budget=15000",
            "--dump-dom",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.join("chromium").display()
        ))
        .arg(format!("file://{}", probe.display()))
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&probe);
    let dom = String::from_utf8_lossy(&out.stdout);
    let line = dom
        .split("<pre id=\"check\">")
        .nth(1)
        .and_then(|s| s.split("</pre>").next())
        .unwrap_or_else(|| panic!("no measurement: {}", String::from_utf8_lossy(&out.stderr)));
    let field = |k: &str| -> String {
        line.split(' ')
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .unwrap_or_default()
            .to_owned()
    };
    let (sw, cw) = (
        field("sw").parse::<u32>().unwrap(),
        field("cw").parse::<u32>().unwrap(),
    );
    assert_eq!(cw, 1280, "{line}");
    assert!(sw <= cw, "horizontal scroll: {line}");
    assert_eq!(
        field("wide"),
        "0",
        "an element wider than the screen: {line}"
    );
    assert!(field("imgs").parse::<u32>().unwrap() >= 2, "{line}");
    assert_eq!(field("bad"), "", "images that did not load: {line}");
}

/// The private words a publication's annex holds: request ids of the episodes, TPP ids of the
/// fallback use and usage tables, watch levels. None may show in a public file.
pub fn assert_public_apart_from_annex(pub_dir: &Path, levels: &[&str]) {
    let annex = pub_dir.join("annexe-acpr");
    let mut private = BTreeSet::new();
    for (file, cols) in [
        ("episode-requests.csv", vec![2usize, 7]),
        ("fallback-use.csv", vec![2]),
    ] {
        let mut r = ::csv::Reader::from_path(annex.join(file)).unwrap();
        for rec in r.records() {
            let rec = rec.unwrap();
            for c in &cols {
                let v = rec[*c].trim();
                if v.len() > 3 && v != "n.d." && !v.contains(' ') {
                    private.insert(v.to_owned());
                }
            }
        }
    }
    let public = files(pub_dir, Some("annexe-acpr"));
    assert_nothing_private(&public, &private, levels);
}

/// Usage is TPP traffic only (methodology section 6): a day of the monitor's own requests — its
/// probes, and the same client id as the gateway logged it — and two successful calls of one TPP.
/// The exemption dossier's "widely used" evidence and the annex's usage both say 2 calls by
/// 1 TPP, not 1 442 calls by 2.
#[test]
fn usage_counts_tpp_traffic_only() {
    support::init();
    let dir = support::tmp_dir("publication", "usage");
    let monitor = "PSDFR-ACPR-MONITOR";
    let mut rows = vec![
        "received_at,establishment,interface,service,source,tpp,status,latency_ms,error_code,request_id"
            .to_owned(),
    ];
    // 1 July, Paris midnight to midnight (22:00Z to 22:00Z): a probe a minute (1 440), and its
    // copy in the gateway's log under another request id every hour (24).
    let start = chrono::DateTime::parse_from_rfc3339("2024-06-30T22:00:00Z").unwrap();
    for m in 0..1440 {
        let t = (start + chrono::Duration::minutes(m)).format("%Y-%m-%dT%H:%M:%S%.3fZ");
        rows.push(format!("{t},13807,api,cbpii,probe,{monitor},200,80,,p{m}"));
        if m % 60 == 30 {
            rows.push(format!("{t},13807,api,cbpii,log,{monitor},200,80,,g{m}"));
        }
    }
    rows.push(format!(
        "2024-07-01T08:00:01.000Z,13807,api,cbpii,log,{TPP_A},200,90,,t1"
    ));
    rows.push(format!(
        "2024-07-01T09:00:01.000Z,13807,api,cbpii,log,{TPP_A},200,90,,t2"
    ));
    std::fs::write(dir.join("o.csv"), rows.join("\n") + "\n").unwrap();
    let db = dir.join("d.db");
    support::dispo_ok(&[
        "import",
        "--db",
        db.to_str().unwrap(),
        dir.join("o.csv").to_str().unwrap(),
    ]);
    // The probe configuration names the monitor's client id.
    let cfg = dir.join("probes.toml");
    std::fs::write(
        &cfg,
        format!("[[establishment]]\ncode = \"13807\"\nclient_id = \"{monitor}\"\n"),
    )
    .unwrap();
    let (dbs, cfgs) = (db.to_str().unwrap(), cfg.to_str().unwrap());
    let period = ["--from", "2024-07-01", "--to", "2024-07-02"];
    let ex = dir.join("ex");
    let mut args = vec![
        "report",
        "--db",
        dbs,
        "--config",
        cfgs,
        "--lang",
        "en",
        "--exemption",
        "--allow-short-period",
        "--out",
        ex.to_str().unwrap(),
    ];
    args.extend_from_slice(&period);
    support::dispo_ok(&args);
    let html =
        std::fs::read_to_string(ex.join("exemption-2024-07-01_2024-07-02/exemption.html")).unwrap();
    assert!(
        html.contains("<td>Successful calls on the dedicated interface</td><td>2</td>"),
        "{html}"
    );
    assert!(html.contains("<td>Distinct TPPs on the dedicated interface</td><td>1</td>"));
    let out = dir.join("pub");
    let mut args = vec![
        "report",
        "--db",
        dbs,
        "--config",
        cfgs,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(&period);
    support::dispo_ok(&args);
    let usage =
        std::fs::read_to_string(out.join("2024-07-01_2024-07-02/annexe-acpr/usage.csv")).unwrap();
    assert!(
        usage.contains(
            "13807,Interface dédiée (API),confirmation de la disponibilité des fonds,2,1"
        ),
        "{usage}"
    );
    // The page: TPP requests on the dedicated interface that day are the TPP's two only.
    let page = std::fs::read_to_string(out.join("2024-07-01_2024-07-02/index.html")).unwrap();
    assert!(
        page.contains("<td>2</td><td>0</td></tr>"),
        "TPP requests of the day"
    );
}

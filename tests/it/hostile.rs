//! Hostile data through the real binary (issue 13): text that came from gateway logs never acts
//! as a formula in any CSV, nor as HTML or a link in `summary.md`.

use std::path::Path;

use crate::import::{dispo, text, tmp};
use crate::support;

/// One episode of 13807's api on 2024-07-04 whose request ids, TPP ids and error texts are hostile.
const HOSTILE_CSV: &str = "\
received_at,establishment,interface,service,source,tpp,status,latency_ms,error_code,request_id,error_text
2024-07-04T10:00:00.000Z,13807,api,cbpii,log,@SUM(1+1),200,100,,r0
2024-07-04T10:01:00.000Z,13807,api,cbpii,log,@SUM(1+1),503,12,INTS,\"=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\",-2+3+cmd|' /C calc'!A0
2024-07-04T10:01:05.000Z,13807,api,cbpii,log,+33TPP,503,15,INTS,@f2,<script>alert(1)</script> [click](https://evil)
2024-07-04T10:01:10.000Z,13807,api,cbpii,log,=TPP,,,,+f3,\"\tpwn\"
2024-07-04T10:01:15.000Z,13807,api,cbpii,log,-TPP,,,,-f4,=1+1
2024-07-04T10:01:20.000Z,13807,api,cbpii,log,PSDFR-ACPR-A,,,,f5,Basic dXNlcjpwYXNz Bearer  tok-two-spaces9 debtor FR7613807008043001965405255 Cookie: SID=s3ss10n
2024-07-04T10:02:00.000Z,13807,api,cbpii,log,PSDFR-ACPR-A,200,250,,r1
2024-07-04T12:00:00.000Z,13807,fallback,fallback,log,=FALLBACK(1),302,30,,fb
";

/// No cell of any CSV in `dir` starts like a formula, unless it is a number.
fn assert_no_formula(dir: &Path) {
    let mut seen = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "csv") {
            continue;
        }
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_path(&p)
            .unwrap();
        for rec in r.records() {
            for cell in rec.unwrap().iter() {
                seen += 1;
                let formula = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
                assert!(
                    !formula || cell.parse::<f64>().is_ok(),
                    "{}: cell {cell:?} would be read as a formula",
                    p.display()
                );
            }
        }
    }
    assert!(seen > 0, "no CSV in {}", dir.display());
}

#[test]
fn evidence_pack_csvs_and_summary_neutralise_hostile_text() {
    support::init();
    let d = tmp("hostile-pack");
    let db = d.join("o.db");
    std::fs::write(d.join("h.csv"), HOSTILE_CSV).unwrap();
    let o = dispo(
        &[
            "import",
            "--db",
            db.to_str().unwrap(),
            d.join("h.csv").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let out = d.join("pack");
    let o = dispo(
        &[
            "evidence",
            "--db",
            db.to_str().unwrap(),
            "--from",
            "2024-07-04",
            "--to",
            "2024-07-05",
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert_no_formula(&out);

    // Shown as written, behind a quote.
    let obs = std::fs::read_to_string(out.join("observations.csv")).unwrap();
    assert!(obs.contains("'@SUM(1+1)"), "{obs}");
    assert!(obs.contains("'=HYPERLINK("), "{obs}");
    assert!(obs.contains("'-2+3+cmd"), "{obs}");
    let eps = std::fs::read_to_string(out.join("episodes.csv")).unwrap();
    assert!(eps.contains(",\"'=HYPERLINK("), "{eps}");

    // summary.md: no raw HTML, no link, from the data.
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(!md.contains("<script>"), "{md}");
    assert!(!md.contains("[click]"), "{md}");
    assert!(md.contains("&lt;script&gt;"), "{md}");
    assert!(md.contains("\\[click\\](https://evil)"), "{md}");
    let html = std::fs::read_to_string(out.join("summary.html")).unwrap();
    assert!(!html.contains("<script>"), "{html}");

    // Secrets of every shape scrubbed from every file; the IBAN masked as the supervisor wants.
    crate::evidence::assert_no_secrets(
        &out,
        &[
            "dXNlcjpwYXNz",
            "tok-two-spaces9",
            "FR7613807008043001965405255",
            "s3ss10n",
        ],
    );
    assert!(obs.contains("FR76 **** **** 5255"), "{obs}");
    assert!(md.contains("FR76 **** **** 5255"), "{md}");
}

fn listing(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A TPP id longer than a spreadsheet cell (32 767 characters) makes the xlsx fail after the CSV
/// and the charts are drawn: the report writes nothing, and the publication already there stays.
#[test]
fn report_writes_all_its_files_or_none() {
    support::init();
    let d = tmp("hostile-report");
    let db = d.join("o.db");
    let out = d.join("reports");
    let import = |rows: &str, extra: &[&str]| {
        let f = d.join("rows.csv");
        std::fs::write(
            &f,
            format!(
                "received_at,establishment,interface,service,source,tpp,status,latency_ms,error_code,request_id\n{rows}"
            ),
        )
        .unwrap();
        let mut args = vec!["import", "--db", db.to_str().unwrap(), f.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = dispo(&args, None);
        assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    };
    let report = || {
        dispo(
            &[
                "report",
                "--db",
                db.to_str().unwrap(),
                "--from",
                "2024-07-04",
                "--to",
                "2024-07-05",
                "--out",
                out.to_str().unwrap(),
                // Replacing the earlier publication is what is tried here.
                "--force",
            ],
            None,
        )
    };
    import(
        "2024-07-04T10:00:00.000Z,13807,api,cbpii,log,PSDFR-ACPR-A,200,100,,a1\n\
         2024-07-04T11:00:00.000Z,13807,fallback,fallback,log,PSDFR-ACPR-A,302,30,,b1\n",
        &[],
    );
    let o = report();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let dir = out.join("2024-07-04_2024-07-05");
    let before: Vec<(String, Vec<u8>)> = walk(&dir);
    assert!(before.len() > 5, "{before:?}");

    // A TPP id over Excel's 32 767-character cell limit makes the spreadsheet fail. The import
    // refuses ids over 200 characters by default (tests/it/bounded.rs), so this database is
    // given one through a policy set far higher, as an operator could.
    let long = "T".repeat(40_000);
    import(
        &format!("2024-07-04T12:00:00.000Z,13807,fallback,fallback,log,{long},302,30,,b2\n"),
        &["--max-id-chars", "50000", "--max-line-bytes", "100000"],
    );
    let o = report();
    let (so, se) = text(&o);
    assert_ne!(o.status.code(), Some(0), "{so}{se}");
    assert!(se.contains("spreadsheet"), "{se}");
    assert_eq!(walk(&dir), before, "the earlier publication changed");
    assert_eq!(
        listing(&out),
        ["2024-07-04_2024-07-05"],
        "a temporary directory is left"
    );

    // Without an earlier publication: nothing at all.
    std::fs::remove_dir_all(&out).unwrap();
    let o = report();
    assert_ne!(o.status.code(), Some(0));
    assert!(
        !out.exists() || listing(&out).is_empty(),
        "{:?}",
        listing(&out)
    );
}

/// Every file under `d` with its bytes, by relative path.
fn walk(d: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    let mut stack = vec![d.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(d).unwrap().display().to_string();
                v.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    v.sort();
    v
}

/// `evidence verify` never follows a manifest path out of the pack: refused with its line.
#[test]
fn verify_refuses_paths_out_of_the_pack() {
    support::init();
    let d = tmp("hostile-verify");
    let pack = d.join("pack");
    std::fs::create_dir_all(&pack).unwrap();
    std::fs::write(d.join("outside.txt"), "abc").unwrap();
    std::fs::write(pack.join("a.txt"), "abc").unwrap();
    let h = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    std::fs::write(
        pack.join("MANIFEST.sha256"),
        format!(
            "{h}  a.txt\n{h}  ../outside.txt\n{h}  {}\n",
            d.join("outside.txt").display()
        ),
    )
    .unwrap();
    let o = dispo(&["evidence", "verify", pack.to_str().unwrap()], None);
    let (so, se) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{so}{se}");
    assert!(
        so.contains("REFUSED  manifest line 2: \"../outside.txt\""),
        "{so}"
    );
    assert!(so.contains("REFUSED  manifest line 3: \"/"), "{so}");
    assert!(so.contains("NOT intact"), "{so}");
}

/// A pack sealed with a QSealC key: `verify` names the signer; an edited pack with a recomputed
/// manifest fails; a pack re-sealed with another key names that other signer, and is refused
/// when the bank's certificate is given.
#[test]
fn a_sealed_pack_shows_tampering_even_with_a_recomputed_manifest() {
    support::init();
    let d = tmp("hostile-seal");
    let pki = dispo::sim::pki::ensure(&d.join("pki")).unwrap();
    let db = d.join("o.db");
    std::fs::write(d.join("h.csv"), HOSTILE_CSV).unwrap();
    let o = dispo(
        &[
            "import",
            "--db",
            db.to_str().unwrap(),
            d.join("h.csv").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let pack = d.join("pack");
    let o = dispo(
        &[
            "evidence",
            "--db",
            db.to_str().unwrap(),
            "--from",
            "2024-07-04",
            "--to",
            "2024-07-05",
            "--out",
            pack.to_str().unwrap(),
            "--seal-key",
            pki.qseal_key.to_str().unwrap(),
            "--seal-cert",
            pki.qseal_cert.to_str().unwrap(),
        ],
        None,
    );
    let (so, se) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{so}{se}");
    assert!(so.contains("manifest sealed by"), "{so}");
    assert!(pack.join("MANIFEST.sha256.sig").is_file());
    let verify = |cert: Option<&Path>| {
        let mut args = vec!["evidence", "verify", pack.to_str().unwrap()];
        if let Some(c) = cert {
            args.extend(["--cert", c.to_str().unwrap()]);
        }
        let o = dispo(&args, None);
        let (so, se) = text(&o);
        (o.status.code(), format!("{so}{se}"))
    };
    let (code, out) = verify(None);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("SEALED by") && out.contains("intact"), "{out}");
    let (code, out) = verify(Some(&pki.qseal_cert));
    assert_eq!(code, Some(0), "{out}");

    // The same seal found in a probe configuration ([[establishment]] qseal_key, qseal_cert).
    std::fs::write(
        d.join("probes.toml"),
        "[[establishment]]\ncode = \"13807\"\nqseal_key = \"pki/tpp-qseal.key\"\nqseal_cert = \"pki/tpp-qseal.pem\"\n",
    )
    .unwrap();
    let pack2 = d.join("pack2");
    let o = dispo(
        &[
            "evidence",
            "--db",
            db.to_str().unwrap(),
            "--episode",
            "13807-api-20240704T100100.000Z",
            "--config",
            d.join("probes.toml").to_str().unwrap(),
            "--out",
            pack2.to_str().unwrap(),
        ],
        None,
    );
    let (so, se) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{so}{se}");
    assert!(so.contains("manifest sealed by"), "{so}");
    let o = dispo(
        &[
            "evidence",
            "verify",
            pack2.to_str().unwrap(),
            "--cert",
            pki.qseal_cert.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));

    // Tampered, the manifest recomputed: the digests match, the seal does not.
    let eps = pack.join("episodes.csv");
    let original = std::fs::read_to_string(&eps).unwrap();
    // The episode lasts 60.250 s (10:01:00 to the reply completing at 10:02:00.250).
    let edited = original.replace("60.250", "6.250");
    assert_ne!(edited, original, "the tampering must change the file");
    std::fs::write(&eps, edited).unwrap();
    dispo::evidence::manifest::write(&pack).unwrap();
    let (code, out) = verify(None);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("SEAL INVALID"), "{out}");

    // Re-sealed with another key: named as it is, and refused against the bank's certificate.
    let other = dispo::sim::pki::ensure(&d.join("pki2")).unwrap();
    dispo::evidence::manifest::seal(&pack, &other.qseal_key, &other.qseal_cert).unwrap();
    let (code, out) = verify(None);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("SEALED by"), "{out}");
    // The two certificates carry the same names: only the fingerprint tells them apart.
    let fp_other = out.clone();
    let (code, out) = verify(Some(&pki.qseal_cert));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("SEAL INVALID")
            && out.contains("carries another certificate than the one given"),
        "{out}"
    );
    let fp = |t: &str| {
        t.split("SHA-256 fingerprint ")
            .nth(1)
            .map(|r| r[..95].to_owned())
    };
    assert!(fp(&fp_other).is_some(), "{fp_other}");
    assert!(out.contains(&fp(&fp_other).unwrap()), "{out}");
}

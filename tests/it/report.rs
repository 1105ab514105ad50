//! `dispo report` on a known dataset imported with `dispo import`: the same figures in the
//! spreadsheet, the CSV, the page and `dispo kpi`; deterministic CSV; a DST quarter; the page
//! rendered by headless Chromium at 1 280 px.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support;

/// Worked by hand (Paris is UTC+2 in July): 13807's API is down from 08:00:00Z to the reply
/// completing at 08:01:00.150Z, 60.15 s on 1 July. The imported file covers the API from its
/// first line (08:00:00Z) on: 1 July is covered to local midnight (22:00Z), 50 400 s, so uptime
/// is 100 − 60.15/50 400 × 100 = 99.880654761...%. The customer web interface answers
/// throughout (100 %).
const JULY: &str = "\
received_at,establishment,interface,service,source,tpp,status,latency_ms,error_code,request_id
2024-07-01T08:00:00.000Z,13807,api,cbpii,log,PSDFR-ACPR-A,,,,f1
2024-07-01T08:00:05.000Z,13807,api,cbpii,log,PSDFR-ACPR-B,,,,f2
2024-07-01T08:00:10.000Z,13807,api,cbpii,log,PSDFR-ACPR-A,,,,f3
2024-07-01T08:00:15.000Z,13807,api,cbpii,log,PSDFR-ACPR-B,,,,f4
2024-07-01T08:00:20.000Z,13807,api,cbpii,log,PSDFR-ACPR-A,,,,f5
2024-07-01T08:01:00.000Z,13807,api,cbpii,log,PSDFR-ACPR-A,200,150,,ok1
2024-07-01T09:00:00.000Z,13807,api,cbpii,log,PSDFR-ACPR-A,200,100,,ok2
2024-07-01T09:30:00.000Z,13807,psu_web,psu_login,log,,200,400,,w1
2024-07-01T12:00:00.000Z,13807,fallback,fallback,log,PSDFR-ACPR-B,302,40,,fb1
2024-07-02T10:00:00.000Z,13807,api,cbpii,log,PSDFR-ACPR-A,200,120,,ok3
2024-07-02T10:00:00.000Z,13807,psu_web,psu_login,log,,200,380,,w2
";

fn tmp(name: &str) -> PathBuf {
    support::tmp_dir("report", name)
}

fn dispo(args: &[&str]) -> std::process::Output {
    support::dispo_ok(args)
}

/// Imports `csv` into a new store; returns what `--db` takes.
fn import(dir: &Path, csv: &str, b: support::Backend) -> String {
    let f = dir.join("obs.csv");
    std::fs::write(&f, csv).unwrap();
    let db = b.db(dir, "d.db");
    dispo(&["import", "--db", &db, f.to_str().unwrap()]);
    db
}

fn zip_text(path: &Path, name: &str) -> String {
    let mut z = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut s = String::new();
    z.by_name(name).unwrap().read_to_string(&mut s).unwrap();
    s
}

support::on_both!(the_publication_carries_the_engines_figures_everywhere);

fn the_publication_carries_the_engines_figures_everywhere(b: support::Backend) {
    support::init();
    let dir = tmp(&format!("july-{b:?}"));
    let db = import(&dir, JULY, b);
    let out = dir.join("out");
    let (dbs, outs) = (db.as_str(), out.to_str().unwrap());
    dispo(&[
        "report",
        "--db",
        dbs,
        "--from",
        "2024-07-01",
        "--to",
        "2024-07-03",
        "--out",
        outs,
    ]);
    let pub_dir = out.join("2024-07-01_2024-07-03");

    // The CSV and `dispo kpi` agree figure for figure.
    let kpi: Value =
        serde_json::from_slice(&dispo(&["kpi", "--db", dbs, "--format", "json"]).stdout).unwrap();
    let csv_path = pub_dir.join("dispo-2024-07-01_2024-07-03-daily.csv");
    let mut rdr = ::csv::Reader::from_path(&csv_path).unwrap();
    let head = rdr.headers().unwrap().clone();
    let col = |n: &str| head.iter().position(|h| h == n).unwrap();
    let rows: Vec<::csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), kpi["days"].as_array().unwrap().len());
    for (r, d) in rows.iter().zip(kpi["days"].as_array().unwrap()) {
        assert_eq!(r[col("date")], *d["date"].as_str().unwrap());
        for k in [
            "covered_s",
            "downtime_s",
            "uptime_pct",
            "error_rate_pct",
            "unmonitored_s",
        ] {
            // A figure nobody observed is "n.d." in the CSV and null in the JSON.
            let cell = r[col(k)].parse::<f64>().ok();
            assert_eq!(cell, d[k].as_f64(), "{k}: {:?}", &r[col(k)]);
            assert_eq!(&r[col(k)] == "n.d.", d[k].is_null(), "{k}");
        }
        assert_eq!(
            r[col("requests")].parse::<u64>().unwrap(),
            d["requests"].as_u64().unwrap()
        );
    }
    let api = rows
        .iter()
        .find(|r| &r[col("date")] == "2024-07-01" && &r[col("interface")] == "api")
        .unwrap();
    assert_eq!(api[col("downtime_s")].parse::<f64>().unwrap(), 60.15);
    assert_eq!(
        api[col("uptime_pct")].parse::<f64>().unwrap(),
        100.0 - 60.15 / 50_400.0 * 100.0
    );
    // Mean cbpii on 1 July: replies 150 and 100 → 125 ms.
    assert_eq!(api[col("avg_ms_cbpii")].parse::<f64>().unwrap(), 125.0);

    // The spreadsheet: summary, definitions, a sheet per establishment with the figure, number
    // formats, frozen header and native charts; weekly targets are not applied to daily cells.
    let xlsx = pub_dir.join("dispo-2024-07-01_2024-07-03.xlsx");
    let wb = zip_text(&xlsx, "xl/workbook.xml");
    for sheet in ["Synthèse", "Définitions", "13807 BPGO"] {
        assert!(
            wb.contains(&format!("name=\"{sheet}\"")),
            "no sheet {sheet}"
        );
    }
    let est = zip_text(&xlsx, "xl/worksheets/sheet3.xml");
    assert!(
        est.contains("<v>60.15</v>"),
        "the downtime figure is in the establishment's sheet"
    );
    assert!(est.contains("state=\"frozen\""));
    assert!(!est.contains("<conditionalFormatting"));
    let styles = zip_text(&xlsx, "xl/styles.xml");
    assert!(styles.contains("0.0000"));
    for n in 1..=2 {
        let chart = zip_text(&xlsx, &format!("xl/charts/chart{n}.xml"));
        assert!(chart.contains("<c:lineChart>"), "chart {n}");
    }
    let strings = zip_text(&xlsx, "xl/sharedStrings.xml");
    assert!(!strings.contains("f1") && !strings.contains("PSDFR-ACPR-A"));
    // The episode, its five requests and its TPPs are in the supervisor's annex.
    let annex = pub_dir.join("annexe-acpr/dispo-2024-07-01_2024-07-03-annexe-acpr.xlsx");
    let episodes = zip_text(&annex, "xl/sharedStrings.xml");
    assert!(
        episodes.contains("13807-api-20240701T080000.000Z") && episodes.contains("f1 f2 f3 f4 f5")
    );

    // The annex's summary: 13807's fallback share of TPP requests is 1 fallback request of
    // 8 API + 1 fallback = 11.11...%; its one week (W27) runs past the data's end (2 July): not
    // judged, so 0 missed of 0.
    let summary = std::fs::read_to_string(pub_dir.join("annexe-acpr/summary.csv")).unwrap();
    assert!(
        summary.contains(&format!("\n13807,{},0,0\n", 1.0 / 9.0 * 100.0)),
        "{summary}"
    );

    // The page: the same figures, no external request, accessible markup.
    let html = std::fs::read_to_string(pub_dir.join("index.html")).unwrap();
    assert!(
        html.contains("<td>99,8807</td>"),
        "uptime of 13807 on 1 July, decimal comma in French"
    );
    assert!(!html.contains("13807-api-20240701T080000.000Z"));
    // The episode in Paris time: 08:00:00Z is 10:00 in July, 60.15 s.
    assert!(html.contains(
        "<td class=\"l\">01/07/2024 10:00:00 (UTC+02:00)</td><td class=\"l\">01/07/2024 10:01:00 (UTC+02:00)</td><td>1 min 00 s</td>"
    ));
    // Period response time of 13807's dedicated interface: cbpii replies 150, 100, 120 → mean
    // 370/3 = 123.3 ms against its 300 ms target; p95 at rank ⌈0.95 × 3⌉ = 3 of
    // [100, 120, 150] = 150.0 ms; 3 replies.
    assert!(
        html.contains("<td>123,3</td><td>300</td><td>150,0</td><td>3</td>"),
        "period response time of cbpii"
    );
    // TPP requests on the dedicated interface and the fallback, per day: 1 July has 7 API
    // requests (f1 to f5, ok1, ok2) and 1 fallback request (fb1).
    assert!(
        html.contains("<td>7</td><td>1</td></tr>"),
        "TPP requests, API and fallback"
    );
    assert!(
        html.contains("<caption>") && html.contains("scope=\"col\"") && html.contains("alt=\"")
    );
    assert!(html.contains("@media print") && html.contains("size:A4"));
    for attr in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(!html.contains(attr), "external reference {attr}");
    }
    for chart in ["overview", "13807"] {
        for ext in ["png", "svg"] {
            let f = pub_dir
                .join("charts")
                .join(format!("2024-07-01_2024-07-03-{chart}.{ext}"));
            assert!(std::fs::metadata(&f).unwrap().len() > 1_000, "{f:?}");
        }
    }

    // Same database and settings: the same CSV, byte for byte.
    let out2 = dir.join("out2");
    dispo(&[
        "report",
        "--db",
        dbs,
        "--from",
        "2024-07-01",
        "--to",
        "2024-07-03",
        "--out",
        out2.to_str().unwrap(),
    ]);
    let again =
        std::fs::read(out2.join("2024-07-01_2024-07-03/dispo-2024-07-01_2024-07-03-daily.csv"))
            .unwrap();
    assert_eq!(std::fs::read(&csv_path).unwrap(), again);

    crate::publication::render_at_1280(&pub_dir.join("index.html"), &dir);
}

#[test]
fn a_dst_quarter_and_errors() {
    support::init();
    let dir = tmp("q4");
    // 27 October 2024 lasts 25 hours in Paris; one answered request that day and the next.
    let csv = "\
received_at,establishment,interface,service,source,tpp,status,latency_ms,error_code,request_id
2024-10-27T10:00:00.000Z,13807,api,cbpii,log,PSDFR-ACPR-A,200,100,,a
2024-10-28T10:00:00.000Z,13807,api,cbpii,log,PSDFR-ACPR-A,200,100,,b
";
    let db = import(&dir, csv, support::Backend::Sqlite);
    let out = dir.join("out");
    dispo(&[
        "report",
        "--db",
        &db,
        "--quarter",
        "T4-2024",
        "--lang",
        "en",
        "--out",
        out.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(out.join("2024-Q4/dispo-2024-Q4-daily.csv")).unwrap();
    // One row per day of the quarter (92 days) for the one series present.
    assert_eq!(text.lines().count(), 1 + 92);
    assert!(
        text.lines()
            .any(|l| l.starts_with("2024-10-27,13807,api,Dedicated interface (API),90000,")),
        "the 25-hour day"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("2024-10-28,13807,api,Dedicated interface (API),86400,")),
        "an ordinary day"
    );
    let html = std::fs::read_to_string(out.join("2024-Q4/index.html")).unwrap();
    assert!(html.contains("lang=\"en\"") && html.contains("Daily figures"));
    assert!(
        html.contains("<td>100.0000</td>"),
        "decimal point in English (uptime of the days answered in full)"
    );

    // A wrong quarter and an empty period are clear errors.
    let bad = Command::new(support::dispo_bin())
        .args(["report", "--db", &db, "--quarter", "2024-Q5"])
        .output()
        .unwrap();
    assert!(
        !bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("is not a quarter")
    );
    let empty = Command::new(support::dispo_bin())
        .args([
            "report",
            "--db",
            &db,
            "--quarter",
            "2023-Q1",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        !empty.status.success()
            && String::from_utf8_lossy(&empty.stderr).contains("nothing to publish")
    );
}

//! `dispo kpi` on an observation CSV and on a database, through the real binary.

use std::process::Command;

use serde_json::Value;

use crate::support;

/// Two local days in Paris (UTC+2 in July). Worked by hand (methodology revision 2):
/// - The file is one gateway log: it covers every establishment in it (13807, 10807), on every
///   interface, from its first line (1 July 08:00Z) to its last (2 July 10:00Z).
/// - 13807 api: five no-replies 08:00:00–08:00:20Z from two TPPs, then a reply at 08:01:00Z
///   taking 150 ms → one episode 08:00:00.000 → 08:01:00.150, 60.15 s. Then a 200 (100 ms) and a
///   400 AC01 (50 ms). Covered from 08:00:00Z (1 July) to 10:00:00Z (2 July): day 1 from
///   08:00Z to local midnight (22:00Z) = 50 400 s, day 2 from 22:00Z to 10:00Z = 43 200 s. Day 1: 8 requests, 5 no reply, 0 bank errors; only `ok` replies are timed:
///   150, 100 → average 125 ms. Day 2: one 200 of 120 ms.
/// - 10807 api: a 503 INTS (20 ms) and a 200 (80 ms): error rate 1/2 = 50 %, no episode.
/// - 13807 fallback (gateway log): TPP A at 08:00:30Z, inside the episode → justified; TPP B at
///   12:00Z → unjustified.
const CSV: &str = "\
received_at,establishment,interface,service,source,tpp,status,latency_ms,error_code,request_id
2024-07-01T08:00:00.000Z,13807,api,cbpii,log,PSDFR-ACPR-A,,,,f1
2024-07-01T08:00:05.000Z,13807,api,cbpii,log,PSDFR-ACPR-B,,,,f2
2024-07-01T08:00:10.000Z,13807,api,cbpii,log,PSDFR-ACPR-A,,,,f3
2024-07-01T08:00:15.000Z,13807,api,cbpii,log,PSDFR-ACPR-B,,,,f4
2024-07-01T10:00:20.000+02:00,13807,api,cbpii,log,PSDFR-ACPR-A,,,,f5
2024-07-01T08:00:30.000Z,13807,fallback,token,log,PSDFR-ACPR-A,302,40,,fb1
2024-07-01T08:01:00.000Z,13807,api,cbpii,log,PSDFR-ACPR-A,200,150,,ok1
2024-07-01T09:00:00.000Z,13807,api,cbpii,log,PSDFR-ACPR-A,200,100,,ok2
2024-07-01T09:10:00.000Z,13807,api,cbpii,log,PSDFR-ACPR-B,400,50,AC01,rej1
2024-07-01T10:00:00.000Z,10807,api,cbpii,log,PSDFR-ACPR-A,503,20,INTS,e1
2024-07-01T10:01:00.000Z,10807,api,cbpii,log,PSDFR-ACPR-A,200,80,,ok3
2024-07-01T12:00:00.000Z,13807,fallback,token,log,PSDFR-ACPR-B,302,40,,fb2
2024-07-02T10:00:00.000Z,13807,api,cbpii,log,PSDFR-ACPR-A,200,120,,ok4
";

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("dispo-it-kpi-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn kpi_json(args: &[&str]) -> Value {
    let out = Command::new(support::dispo_bin())
        .arg("kpi")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kpi failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn day<'a>(v: &'a Value, date: &str, est: &str, iface: &str) -> &'a Value {
    v["days"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["date"] == date && d["establishment"] == est && d["interface"] == iface)
        .unwrap_or_else(|| panic!("no day row {date} {est} {iface}"))
}

#[test]
fn kpi_json_from_a_csv_has_the_hand_worked_figures() {
    support::init();
    let dir = tmp("csv");
    let csv = dir.join("obs.csv");
    std::fs::write(&csv, CSV).unwrap();
    let v = kpi_json(&["--input", csv.to_str().unwrap()]);

    // The period defaults to the local days of the data: 1 and 2 July.
    assert_eq!(v["period"]["from"], "2024-07-01");
    assert_eq!(v["period"]["to"], "2024-07-03");
    // 3 series (13807 api, 13807 fallback, 10807 api) × 2 days.
    assert_eq!(v["days"].as_array().unwrap().len(), 6);

    let d = day(&v, "2024-07-01", "13807", "api");
    assert_eq!(d["seconds_in_day"], 86_400);
    assert_eq!(d["downtime_s"].as_f64().unwrap(), 60.15);
    assert_eq!(d["covered_s"].as_f64().unwrap(), 50_400.0);
    assert_eq!(
        d["uptime_pct"].as_f64().unwrap(),
        100.0 - 60.15 / 50_400.0 * 100.0
    );
    assert_eq!(d["requests"], 8);
    assert_eq!(d["tpp_requests"], 8);
    assert_eq!(d["probe_requests"], 0);
    assert_eq!(d["no_reply"], 5);
    assert_eq!(d["error_rate_pct"].as_f64().unwrap(), 0.0);
    assert_eq!(d["avg_ms"]["cbpii"].as_f64().unwrap(), 125.0);
    assert_eq!(d["unmonitored_s"].as_f64().unwrap(), 36_000.0);

    let d2 = day(&v, "2024-07-02", "13807", "api");
    assert_eq!(
        (d2["requests"].as_u64(), d2["avg_ms"]["cbpii"].as_f64()),
        (Some(1), Some(120.0))
    );
    assert_eq!(d2["uptime_pct"].as_f64().unwrap(), 100.0);
    assert_eq!(d2["covered_s"].as_f64().unwrap(), 43_200.0);

    // 10807 api: a 503 INTS (a request, a bank error, not timed) and a 200 of 80 ms, covered
    // like 13807 (the log covers every establishment in it): 50 400 s on 1 July, 43 200 s on
    // 2 July. On 2 July the gateway logged no 10807 request: up (watched, nothing failed), but
    // its error rate is n.d.
    let b = day(&v, "2024-07-01", "10807", "api");
    assert_eq!(b["error_rate_pct"].as_f64().unwrap(), 50.0);
    assert_eq!(b["p95_ms"]["cbpii"].as_f64().unwrap(), 80.0);
    assert_eq!(b["covered_s"].as_f64().unwrap(), 50_400.0);
    let b2 = day(&v, "2024-07-02", "10807", "api");
    assert_eq!(b2["covered_s"].as_f64().unwrap(), 43_200.0);
    assert_eq!(b2["uptime_pct"].as_f64().unwrap(), 100.0);
    assert_eq!(b2["error_rate_pct"], Value::Null);

    let eps = v["episodes"].as_array().unwrap();
    assert_eq!(eps.len(), 1);
    assert_eq!(eps[0]["id"], "13807-api-20240701T080000.000Z");
    assert_eq!(eps[0]["start"], "2024-07-01T08:00:00.000Z");
    assert_eq!(eps[0]["end"], "2024-07-01T08:01:00.150Z");
    assert_eq!(eps[0]["duration_s"].as_f64().unwrap(), 60.15);
    assert_eq!(eps[0]["open"], false);
    assert_eq!(eps[0]["cut"], false);
    assert_eq!(eps[0]["began_before_period"], false);
    assert_eq!(
        eps[0]["request_ids"],
        serde_json::json!(["f1", "f2", "f3", "f4", "f5"])
    );

    let fb: Vec<_> = v["fallback"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["tpp"].as_str().unwrap().to_owned(),
                f["justified"].as_u64().unwrap(),
                f["unjustified"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        fb,
        [
            ("PSDFR-ACPR-A".to_owned(), 1, 0),
            ("PSDFR-ACPR-B".to_owned(), 0, 1)
        ]
    );

    // The week of Monday 1 July: uptime over its covered time, 100 − 60.15 / (50 400 +
    // 43 200) × 100; cbpii mean over ok replies (150 + 100 + 120) / 3 = 123.33... ms. The
    // data ends on 2 July, before the week does: incomplete, not judged (no level).
    let w = &v["weeks"].as_array().unwrap()[0];
    assert_eq!(w["week"], "2024-W27");
    assert_eq!(w["establishment"], "10807");
    let w13 = v["weeks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["establishment"] == "13807")
        .unwrap();
    assert_eq!(
        w13["uptime_pct"].as_f64().unwrap(),
        100.0 - 60.15 / (50_400.0 + 43_200.0) * 100.0
    );
    assert_eq!(
        w13["avg_ms"]["cbpii"].as_f64().unwrap(),
        (150.0 + 100.0 + 120.0) / 3.0
    );
    assert_eq!(w13["complete"], false);
    assert_eq!(w13["level"], Value::Null);
}

support::on_both!(kpi_from_a_database_agrees_with_the_csv);

fn kpi_from_a_database_agrees_with_the_csv(b: support::Backend) {
    support::init();
    let dir = tmp(&format!("db-{b:?}"));
    let csv = dir.join("obs.csv");
    std::fs::write(&csv, CSV).unwrap();
    let db = b.db(&dir, "d.db");
    let out = Command::new(support::dispo_bin())
        .args(["import", "--db", &db, csv.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_csv = kpi_json(&["--input", csv.to_str().unwrap()]);
    let from_db = kpi_json(&["--db", &db]);
    assert_eq!(from_csv, from_db);
    // An explicit period: only 2 July, when only 13807's api saw traffic: a row per series all
    // the same (a series never vanishes from the figures); the log covers them all.
    let one = kpi_json(&["--db", &db, "--from", "2024-07-02", "--to", "2024-07-03"]);
    assert_eq!(one["days"].as_array().unwrap().len(), 3);
    assert_eq!(
        day(&one, "2024-07-02", "10807", "api")["error_rate_pct"],
        Value::Null
    );
    assert_eq!(day(&one, "2024-07-02", "13807", "api")["uptime_pct"], 100.0);
    assert!(one["episodes"].as_array().unwrap().is_empty());
    if b == support::Backend::Postgres {
        // `dispo backup` leaves a PostgreSQL store to PostgreSQL's tools, and says so.
        let out = Command::new(support::dispo_bin())
            .args(["backup", "--db", &db])
            .arg(dir.join("copy.db"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("pg_dump"), "{err}");
        // Nothing but the message: PostgreSQL's notices (a migration table already there) are
        // not news.
        assert!(!err.contains("notice"), "{err}");
        // A database without dispo's tables is refused untouched (a wrong URL, not an empty
        // quarter), and DISPO_DB stands for --db.
        let empty = b.db(&dir, "empty");
        let out = Command::new(support::dispo_bin())
            .args(["kpi", "--format", "json"])
            .env("DISPO_DB", &empty)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("holds no dispo tables"),
            "{err}"
        );
        let out = Command::new(support::dispo_bin())
            .args(["kpi", "--format", "json"])
            .env("DISPO_DB", &db)
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(
            serde_json::from_slice::<Value>(&out.stdout).unwrap(),
            from_db
        );
    }
}

#[test]
fn kpi_table_and_errors() {
    support::init();
    let dir = tmp("err");
    let csv = dir.join("obs.csv");
    std::fs::write(&csv, CSV).unwrap();
    let out = Command::new(support::dispo_bin())
        .args(["kpi", "--input", csv.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("13807-api-20240701T080000.000Z"), "{table}");
    assert!(table.contains("2024-W27"), "{table}");

    // A bad establishment code on line 3 (header is line 1): the error names the file and line.
    let bad = dir.join("bad.csv");
    let mut lines: Vec<&str> = CSV.lines().collect();
    lines[2] = "2024-07-01T08:00:05.000Z,1380,api,cbpii,log,PSDFR-ACPR-B,,,,f2";
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let out = Command::new(support::dispo_bin())
        .args(["kpi", "--input", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.csv:3:"), "{err}");

    // A missing database is an error, not a new empty file.
    let missing = dir.join("none.db");
    let out = Command::new(support::dispo_bin())
        .args(["kpi", "--db", missing.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!missing.exists());
    // An unknown time zone is named.
    let out = Command::new(support::dispo_bin())
        .args([
            "kpi",
            "--input",
            csv.to_str().unwrap(),
            "--tz",
            "Europe/Pariss",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("Europe/Pariss"));
}

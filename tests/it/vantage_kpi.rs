//! Vantage points (methodology section 10) through the real binary: a database holding the
//! probes of two vantages, `a` and `b`, both probing 13807's dedicated interface all day on
//! 1 July 2024 (Paris, UTC+2: 2024-06-30T22:00Z to 2024-07-01T22:00Z).
//!
//! The probes go in with `dispo import` of a probe CSV with a `vantage` column; each vantage's
//! monitor run (its heartbeats, what `dispo run` records) is written through the Store API, as
//! `dispo synth` writes its runs: import alone covers a file by its span, as a log, and names no
//! monitor run.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support;

const HEAD: &str = "received_at,establishment,interface,service,source,tpp,status,latency_ms,error_code,request_id,vantage\n";

/// `a` cut off: five no-replies from 10:00:00Z, its next reply at 10:10:00Z (100 ms): a sees
/// the interface down [10:00:00, 10:10:00.100), 600.1 s. `b` replies throughout.
const A_ALONE: &str = "\
2024-06-30T22:00:00Z,13807,api,cbpii,probe,,200,100,,a0,a
2024-06-30T22:00:00Z,13807,api,cbpii,probe,,200,100,,b0,b
2024-07-01T10:00:00Z,13807,api,cbpii,probe,,,,,a1,a
2024-07-01T10:00:00Z,13807,api,cbpii,probe,,200,100,,b1,b
2024-07-01T10:00:05Z,13807,api,cbpii,probe,,,,,a2,a
2024-07-01T10:00:10Z,13807,api,cbpii,probe,,,,,a3,a
2024-07-01T10:00:15Z,13807,api,cbpii,probe,,,,,a4,a
2024-07-01T10:00:20Z,13807,api,cbpii,probe,,,,,a5,a
2024-07-01T10:05:00Z,13807,api,cbpii,probe,,200,100,,b2,b
2024-07-01T10:10:00Z,13807,api,cbpii,probe,,200,100,,a6,a
2024-07-01T21:59:59Z,13807,api,cbpii,probe,,200,100,,a9,a
2024-07-01T21:59:59Z,13807,api,cbpii,probe,,200,100,,b9,b
";

/// `b` cut off too: five no-replies from 10:00:02Z, its next reply (b2) at 10:05:00Z + 100 ms.
const B_TOO: &str = "\
2024-07-01T10:00:02Z,13807,api,cbpii,probe,,,,,bf1,b
2024-07-01T10:00:07Z,13807,api,cbpii,probe,,,,,bf2,b
2024-07-01T10:00:12Z,13807,api,cbpii,probe,,,,,bf3,b
2024-07-01T10:00:17Z,13807,api,cbpii,probe,,,,,bf4,b
2024-07-01T10:00:22Z,13807,api,cbpii,probe,,,,,bf5,b
";

/// `rows` imported by `dispo import` alone (section 10: the vantages a probe file names cover
/// their series over the file's span, as monitor runs would).
fn imported(dir: &Path, rows: &str) -> PathBuf {
    let csv = dir.join("probes.csv");
    std::fs::write(&csv, format!("{HEAD}{rows}")).unwrap();
    let db = dir.join("d.db");
    support::dispo_ok(&[
        "import",
        "--db",
        db.to_str().unwrap(),
        csv.to_str().unwrap(),
    ]);
    db
}

fn database(dir: &Path, rows: &str) -> PathBuf {
    let db = imported(dir, rows);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = dispo::store::Store::open(&db).await.unwrap();
        let series = [("13807".parse().unwrap(), dispo::domain::Interface::Api)];
        let (start, end) = (1_719_784_800_000, 1_719_871_200_000); // 06-30T22:00Z, 07-01T22:00Z
        for v in ["a", "b"] {
            store
                .record_monitor_run(v, &series, start, end, "test")
                .await
                .unwrap();
        }
    });
    db
}

fn kpi(db: &Path, format: &str) -> String {
    let out = support::dispo_ok(&[
        "kpi",
        "--db",
        db.to_str().unwrap(),
        "--from",
        "2024-07-01",
        "--to",
        "2024-07-02",
        "--format",
        format,
    ]);
    String::from_utf8(out.stdout).unwrap()
}

/// `dispo kpi --input csv` over 1 July 2024, as JSON: the file counted directly, no store.
fn kpi_input(csv: &Path) -> Value {
    let out = support::dispo_ok(&[
        "kpi",
        "--input",
        csv.to_str().unwrap(),
        "--from",
        "2024-07-01",
        "--to",
        "2024-07-02",
        "--format",
        "json",
    ]);
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn one_vantage_cut_off_is_a_fault_both_are_downtime() {
    support::init();
    let dir = support::tmp_dir("vantage", "one");
    let db = database(&dir, A_ALONE);
    let j: Value = serde_json::from_str(&kpi(&db, "json")).unwrap();
    // Majority of two is two: a alone is no downtime, a vantage fault of 600.1 s.
    assert_eq!(j["days"][0]["downtime_s"], 0.0, "{j}");
    assert_eq!(j["days"][0]["uptime_pct"], 100.0);
    assert_eq!(j["episodes"].as_array().unwrap().len(), 0);
    let faults = j["vantage_faults"].as_array().unwrap();
    assert_eq!(faults.len(), 1, "{j}");
    assert_eq!(faults[0]["vantage"], "a");
    assert_eq!(faults[0]["start"], "2024-07-01T10:00:00.000Z");
    assert_eq!(faults[0]["duration_s"], 600.1);
    let vs: Vec<&str> = j["vantages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["vantage"].as_str().unwrap())
        .collect();
    assert_eq!(vs, ["a", "b"]);
    let text = kpi(&db, "table");
    assert!(text.contains("No unavailability episode"), "{text}");
    assert!(text.contains("Vantage faults"), "{text}");

    // The supervisor's annex lists the fault; the public page says how many vantages, not which.
    let out = dir.join("out");
    support::dispo_ok(&[
        "report",
        "--db",
        db.to_str().unwrap(),
        "--from",
        "2024-07-01",
        "--to",
        "2024-07-02",
        "--out",
        out.to_str().unwrap(),
    ]);
    let pub_dir = out.join("2024-07-01_2024-07-02");
    let faults_csv =
        std::fs::read_to_string(pub_dir.join("annexe-acpr/vantage-faults.csv")).unwrap();
    assert_eq!(faults_csv.lines().count(), 2, "{faults_csv}");
    assert!(
        faults_csv.lines().nth(1).unwrap().contains(",a,"),
        "{faults_csv}"
    );
    let page = std::fs::read_dir(&pub_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "html"))
        .unwrap();
    let page = std::fs::read_to_string(page).unwrap();
    assert!(
        page.contains("2 points de mesure"),
        "the page says how many vantages"
    );

    // An evidence pack of the period carries the fault apart from the (no) episodes.
    let pack = dir.join("pack");
    support::dispo_ok(&[
        "evidence",
        "--db",
        db.to_str().unwrap(),
        "--from",
        "2024-07-01",
        "--to",
        "2024-07-02",
        "--out",
        pack.to_str().unwrap(),
    ]);
    let csv = std::fs::read_to_string(pack.join("vantage-faults.csv")).unwrap();
    assert!(
        csv.contains("13807,api,a,2024-07-01T10:00:00.000Z,2024-07-01T10:10:00.100Z,600.100"),
        "{csv}"
    );

    // b cut off too, from 10:00:02 to 10:05:00.100: both down there, 298.1 s of downtime; a
    // alone before (2 s) and after (300 s): faults.
    let dir = support::tmp_dir("vantage", "both");
    let db = database(&dir, &format!("{A_ALONE}{B_TOO}"));
    let j: Value = serde_json::from_str(&kpi(&db, "json")).unwrap();
    let down = j["days"][0]["downtime_s"].as_f64().unwrap();
    assert!((down - 298.1).abs() < 1e-9, "{j}");
    let eps = j["episodes"].as_array().unwrap();
    assert_eq!(eps.len(), 1);
    assert_eq!(eps[0]["id"], "13807-api-20240701T100002.000Z");
    let faults: Vec<(&str, f64)> = j["vantage_faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["start"].as_str().unwrap(),
                f["duration_s"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        faults,
        [
            ("2024-07-01T10:00:00.000Z", 2.0),
            ("2024-07-01T10:05:00.100Z", 300.0)
        ]
    );
}

#[test]
fn a_probe_file_of_two_vantages_imported_alone_counts_as_two_vantages() {
    support::init();
    // No monitor run: the file covers a's and b's series from its first line (22:00:00Z) to
    // its last (21:59:59Z), 86 399 s, each as that vantage's own coverage.
    let dir = support::tmp_dir("vantage", "imported");
    let db = imported(&dir, A_ALONE);
    let j: Value = serde_json::from_str(&kpi(&db, "json")).unwrap();
    assert_eq!(j["days"][0]["covered_s"], 86_399.0, "{j}");
    // a alone: no downtime, a's fault of 600.1 s (merged as one log, b's replies between a's
    // failures would have hidden it).
    assert_eq!(j["days"][0]["downtime_s"], 0.0, "{j}");
    let faults = j["vantage_faults"].as_array().unwrap();
    assert_eq!(faults.len(), 1, "{j}");
    assert_eq!(faults[0]["vantage"], "a");
    assert_eq!(faults[0]["duration_s"], 600.1);
    let vs: Vec<(&str, f64)> = j["vantages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["vantage"].as_str().unwrap(),
                v["covered_s"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(vs, [("a", 86_399.0), ("b", 86_399.0)]);
    // a's probes during its fault (a1..a5, no replies, and a6, received at 10:10:00 before its
    // reply completed at 10:10:00.100) are set aside: of the 12 requests, a0, b0, b1, b2, a9
    // and b9 are counted, no no-reply, 6 replies of 100 ms.
    assert_eq!(faults[0]["set_aside"], 6);
    let d = &j["days"][0];
    assert_eq!(
        (&d["requests"], &d["probe_requests"], &d["no_reply"]),
        (&Value::from(6), &Value::from(6), &Value::from(0)),
        "{d}"
    );
    assert_eq!(d["error_rate_pct"], 0.0);
    assert_eq!(d["replies"]["cbpii"], 6, "{d}");
    assert_eq!(d["avg_ms"]["cbpii"], 100.0);
    // Imported again: nothing doubles.
    let again = imported(&dir, A_ALONE);
    assert_eq!(again, db);
    let k: Value = serde_json::from_str(&kpi(&db, "json")).unwrap();
    assert_eq!(k, j);
    // The same file counted directly (`kpi --input`): the same figures.
    let direct = kpi_input(&dir.join("probes.csv"));
    assert_eq!(direct["days"], j["days"]);
    assert_eq!(direct["vantage_faults"], j["vantage_faults"]);

    // Both cut off: b down [10:00:02, 10:05:00.100), with a: 298.1 s of downtime; the day's
    // uptime over 86 399 s covered: 100 - 298.1 / 863.99 = 99.654 97...
    let dir = support::tmp_dir("vantage", "imported-both");
    let db = imported(&dir, &format!("{A_ALONE}{B_TOO}"));
    let j: Value = serde_json::from_str(&kpi(&db, "json")).unwrap();
    let down = j["days"][0]["downtime_s"].as_f64().unwrap();
    assert!((down - 298.1).abs() < 1e-9, "{j}");
    let up = j["days"][0]["uptime_pct"].as_f64().unwrap();
    assert!((up - (100.0 - 298.1 / 863.99)).abs() < 1e-9, "{j}");
    assert_eq!(j["episodes"].as_array().unwrap().len(), 1);
    // a alone on [10:00:00, 10:00:02) (a1 set aside) and [10:05:00.100, 10:10:00.100) (a6):
    // during the downtime between, a's probes (a2..a5) count as everyone's. 17 requests, 2 set
    // aside: 15, of which 9 no-replies (a2..a5, bf1..bf5).
    let set_aside: Vec<u64> = j["vantage_faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["set_aside"].as_u64().unwrap())
        .collect();
    assert_eq!(set_aside, [1, 1], "{j}");
    let d = &j["days"][0];
    assert_eq!(
        (&d["requests"], &d["no_reply"]),
        (&Value::from(15), &Value::from(9))
    );
}

#[test]
fn rows_already_stored_under_another_vantage_name_cover_nothing() {
    support::init();
    // a's lines alone: one vantage, a1..a5 no reply from 10:00:00Z, a6's reply at 10:10:00Z
    // completing 100 ms later: 600.1 s of downtime over 86 399 s covered.
    let a: String = A_ALONE
        .lines()
        .filter(|l| l.ends_with(",a"))
        .map(|l| format!("{l}\n"))
        .collect();
    let dir = support::tmp_dir("vantage", "renamed");
    let db = imported(&dir, &a);
    let before: Value = serde_json::from_str(&kpi(&db, "json")).unwrap();
    assert_eq!(before["days"][0]["downtime_s"], 600.1, "{before}");
    // The same requests again under "A" (an id's case changed, or a file renamed by hand):
    // every row is already stored, so "A" stored none and covers nothing. Before, its span was
    // recorded anyway, and its empty series outvoted a's outage: no downtime, a "fault" of a.
    let renamed = a.replace(",a\n", ",A\n");
    let csv = dir.join("renamed.csv");
    std::fs::write(&csv, format!("{HEAD}{renamed}")).unwrap();
    let out = support::dispo_ok(&[
        "import",
        "--db",
        db.to_str().unwrap(),
        csv.to_str().unwrap(),
    ]);
    let said =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("0 added"), "{said}");
    let after: Value = serde_json::from_str(&kpi(&db, "json")).unwrap();
    assert_eq!(after, before);
    // Both files as one, counted directly: the repeated lines are skipped as the import skips
    // them, so the same figures.
    let both = dir.join("both.csv");
    std::fs::write(&both, format!("{HEAD}{a}{renamed}")).unwrap();
    let direct = kpi_input(&both);
    assert_eq!(direct["days"], before["days"]);
    assert_eq!(direct["episodes"], before["episodes"]);
    assert_eq!(direct["vantage_faults"], before["vantage_faults"]);
}

//! The status page under the vantage rule (methodology section 10): two vantages, `paris-dc1`
//! and `lyon-dc2`, probe 13807's dedicated interface; the page, its JSON and its feed count
//! as `dispo kpi` does (each vantage its own episodes, combined by majority), so an outage seen
//! from one vantage alone is no episode on the page, and one both see has kpi's id.
//!
//! The probes go in with `dispo import` (a probe CSV with a `vantage` column, as in
//! `vantage_kpi`), each vantage's monitor run through the Store API. The page is built by the
//! library at a fixed `now` (as `dispo status` builds it at the clock's): first at 10:00:30Z on
//! 1 July 2024, inside the outage, then at 10:20:00Z, after it.

use std::path::{Path, PathBuf};

use serde_json::Value;

use dispo::domain::Interface;
use dispo::report::Lang;
use dispo::status::{Scope, atom, html, json, service};
use dispo::store::Store;

use crate::support;

const HEAD: &str = "received_at,establishment,interface,service,source,tpp,status,latency_ms,error_code,request_id,vantage\n";

/// Up to 10:00:30Z. paris-dc1 is cut off: five no-replies 10:00:00 to 10:00:20. lyon-dc2
/// answers at 09:59:58 and next probes at 10:01:00 (below), so the two merged into one series
/// would be five failures in 20 s: an episode from 10:00:00.
const A_FAILS: &str = "\
2024-07-01T09:50:00Z,13807,api,cbpii,probe,,200,100,,a0,paris-dc1
2024-07-01T09:50:00Z,13807,api,cbpii,probe,,200,100,,b0,lyon-dc2
2024-07-01T09:59:58Z,13807,api,cbpii,probe,,200,100,,b1,lyon-dc2
2024-07-01T10:00:00Z,13807,api,cbpii,probe,,,,,a1,paris-dc1
2024-07-01T10:00:05Z,13807,api,cbpii,probe,,,,,a2,paris-dc1
2024-07-01T10:00:10Z,13807,api,cbpii,probe,,,,,a3,paris-dc1
2024-07-01T10:00:15Z,13807,api,cbpii,probe,,,,,a4,paris-dc1
2024-07-01T10:00:20Z,13807,api,cbpii,probe,,,,,a5,paris-dc1
";

/// lyon-dc2 cut off too: five no-replies 10:00:02 to 10:00:22.
const B_FAILS: &str = "\
2024-07-01T10:00:02Z,13807,api,cbpii,probe,,,,,bf1,lyon-dc2
2024-07-01T10:00:07Z,13807,api,cbpii,probe,,,,,bf2,lyon-dc2
2024-07-01T10:00:12Z,13807,api,cbpii,probe,,,,,bf3,lyon-dc2
2024-07-01T10:00:17Z,13807,api,cbpii,probe,,,,,bf4,lyon-dc2
2024-07-01T10:00:22Z,13807,api,cbpii,probe,,,,,bf5,lyon-dc2
";

/// After 10:00:30Z: lyon-dc2 answers at 10:01:00 (100 ms), paris-dc1 at 10:10:00 (100 ms).
const AFTER: &str = "\
2024-07-01T10:01:00Z,13807,api,cbpii,probe,,200,100,,b2,lyon-dc2
2024-07-01T10:10:00Z,13807,api,cbpii,probe,,200,100,,a6,paris-dc1
2024-07-01T10:15:00Z,13807,api,cbpii,probe,,200,100,,a7,paris-dc1
2024-07-01T10:15:00Z,13807,api,cbpii,probe,,200,100,,b3,lyon-dc2
";

const T0950: i64 = 1_719_827_400_000; // 2024-07-01T09:50:00Z
const T1000: i64 = 1_719_828_000_000; // 2024-07-01T10:00:00Z
const NOW1: i64 = T1000 + 30_000; // 10:00:30Z
const NOW2: i64 = T1000 + 1_200_000; // 10:20:00Z

fn import(db: &Path, dir: &Path, name: &str, rows: &str) {
    let csv = dir.join(name);
    std::fs::write(&csv, format!("{HEAD}{rows}")).unwrap();
    support::dispo_ok(&[
        "import",
        "--db",
        db.to_str().unwrap(),
        csv.to_str().unwrap(),
    ]);
}

/// Both vantages' monitor runs over `[start, end]` (stopped there, as `dispo run` leaves them).
async fn runs(db: &Path, start: i64, end: i64) {
    let store = Store::open(db).await.unwrap();
    let series = [("13807".parse().unwrap(), Interface::Api)];
    for v in ["paris-dc1", "lyon-dc2"] {
        store
            .record_monitor_run(v, &series, start, end, "test")
            .await
            .unwrap();
    }
}

type Faults = Vec<(String, i64, i64)>;

/// The page at `now`: its JSON, HTML and feed, and the vantage faults `dispo status` prints.
async fn page(db: &Path, now: i64) -> (Value, String, String, Faults) {
    page_with(db, now, &Scope::default()).await
}

/// As [`page`], with the configuration's scope (its `[counting]` settings).
async fn page_with(db: &Path, now: i64, scope: &Scope) -> (Value, String, String, Faults) {
    let store = Store::open(db).await.unwrap();
    let once = service::once_for_operator(&store, scope, now)
        .await
        .unwrap();
    let j = json::to_json(&once.page);
    let h = html::render(&once.page, Lang::Fr, "x");
    let feed = atom::render(&once.page, Lang::En);
    let faults = once
        .vantage_faults
        .iter()
        .map(|f| (f.vantage.to_string(), f.start_ms, f.end_ms))
        .collect();
    (j, h, feed, faults)
}

fn api(j: &Value) -> &Value {
    &j["establishments"][0]["interfaces"][0]
}

/// Nothing public names a vantage (section 10: how many, never which).
fn anonymous(outs: &[&str]) {
    for out in outs {
        for name in ["paris-dc1", "lyon-dc2", "gateway"] {
            assert!(!out.contains(name), "{name} in {out}");
        }
    }
}

fn setup(name: &str, first: &str) -> (PathBuf, PathBuf) {
    support::init();
    let dir = support::tmp_dir("status-vantage", name);
    let db = dir.join("d.db");
    import(&db, &dir, "first.csv", first);
    (dir, db)
}

#[tokio::test]
async fn one_vantage_cut_off_is_no_episode_on_the_page_nor_in_the_feed() {
    let (dir, db) = setup("fault", A_FAILS);
    runs(&db, T0950, NOW1).await;

    // 10:00:30, paris-dc1 in its episode since 10:00:00, lyon-dc2 not: majority of two is
    // two, so the interface is up, with no episode; paris-dc1's fault is the operator's.
    let (j, h, feed, faults) = page(&db, NOW1).await;
    assert_eq!(api(&j)["state"], "up", "{j}");
    assert_eq!(j["establishments"][0]["episodes"], Value::Array(vec![]));
    assert_eq!(api(&j)["quarter"]["episodes"], 0);
    assert_eq!(api(&j)["quarter"]["uptime_pct"], 100.0);
    assert!(!feed.contains("<entry>"), "{feed}");
    assert_eq!(j["vantage_points"], 2);
    assert!(h.contains("Mesurée depuis 2 points de mesure"), "{h}");
    anonymous(&[&j.to_string(), &h, &feed]);
    // Still running at now: the fault lasts to 10:00:30.
    assert_eq!(faults, [("paris-dc1".to_owned(), T1000, NOW1)]);
    // The policy is the configuration's: with `vantage_quorum = "any"` one vantage is enough,
    // and the same outage is an episode since 10:00:00 (12:00:00 in Paris).
    let any = Scope {
        settings: dispo::engine::Settings {
            vantage_quorum: dispo::engine::vantage::VantageQuorum::Any,
            ..Default::default()
        },
        ..Scope::default()
    };
    let (j, _, feed, faults) = page_with(&db, NOW1, &any).await;
    assert_eq!(api(&j)["state"], "down", "{j}");
    assert_eq!(api(&j)["since"], "2024-07-01T12:00:00+02:00");
    assert!(feed.contains("<id>urn:dispo:episode:13807-api-20240701T100000.000Z</id>"));
    assert_eq!(faults, []);

    // 10:20:00, after it: paris-dc1 saw the interface down from 10:00:00 to its reply at
    // 10:10:00 completing 100 ms later: a fault of 600.1 s, still no episode.
    import(&db, &dir, "after.csv", AFTER);
    runs(&db, NOW1, NOW2).await;
    let (j, h, feed, faults) = page(&db, NOW2).await;
    assert_eq!(j["establishments"][0]["episodes"], Value::Array(vec![]));
    assert_eq!(api(&j)["quarter"]["episodes"], 0);
    assert_eq!(api(&j)["quarter"]["uptime_pct"], 100.0);
    assert!(!feed.contains("<entry>"), "{feed}");
    anonymous(&[&j.to_string(), &h, &feed]);
    assert_eq!(faults, [("paris-dc1".to_owned(), T1000, T1000 + 600_100)]);
}

#[tokio::test]
async fn both_vantages_cut_off_is_one_episode_with_kpi_s_id() {
    let (dir, db) = setup("both", &format!("{A_FAILS}{B_FAILS}"));
    runs(&db, T0950, NOW1).await;

    // 10:00:30: both in an episode, paris-dc1 from 10:00:00, lyon-dc2 from 10:00:02: the
    // quorum (two of two) is reached at 10:00:02, down since then (merged, the five failures
    // of 10:00:00 to 10:00:10 would have said 10:00:00). Paris time is UTC+2.
    let (j, _, feed, faults) = page(&db, NOW1).await;
    assert_eq!(api(&j)["state"], "down", "{j}");
    assert_eq!(api(&j)["since"], "2024-07-01T12:00:02+02:00");
    let ep = &j["establishments"][0]["episodes"][0];
    assert_eq!(ep["id"], "13807-api-20240701T100002.000Z");
    assert_eq!(ep["open"], true);
    assert!(
        feed.contains("<id>urn:dispo:episode:13807-api-20240701T100002.000Z</id>"),
        "{feed}"
    );
    assert_eq!(faults, [("paris-dc1".to_owned(), T1000, T1000 + 2_000)]);

    // 10:20:00: lyon-dc2's reply at 10:01:00 (completing at .100) ends the quorum: one episode
    // [10:00:02, 10:01:00.100), 58.1 s. paris-dc1 alone before (2 s) and after (to 10:10:00.100,
    // 540 s): faults, not downtime.
    import(&db, &dir, "after.csv", AFTER);
    runs(&db, NOW1, NOW2).await;
    let (j, h, feed, faults) = page(&db, NOW2).await;
    assert_eq!(api(&j)["state"], "up", "{j}");
    let eps = j["establishments"][0]["episodes"].as_array().unwrap();
    assert_eq!(eps.len(), 1, "{j}");
    assert_eq!(eps[0]["id"], "13807-api-20240701T100002.000Z");
    // Shown to the second (the id and the duration keep the milliseconds).
    assert_eq!(eps[0]["end"], "2024-07-01T12:01:00+02:00");
    assert_eq!(eps[0]["duration_s"], 58.1);
    assert_eq!(api(&j)["quarter"]["episodes"], 1);
    // Covered 09:50 to 10:20 (1 800 s), 58.1 s down: 100 − 58.1 / 1 800 × 100 = 96.772 2…
    let up = api(&j)["quarter"]["uptime_pct"].as_f64().unwrap();
    assert!((up - (100.0 - 58.1 / 1800.0 * 100.0)).abs() < 1e-9, "{up}");
    assert_eq!(feed.matches("<entry>").count(), 1, "{feed}");
    assert!(feed.contains("<id>urn:dispo:episode:13807-api-20240701T100002.000Z</id>"));
    anonymous(&[&j.to_string(), &h, &feed]);
    assert_eq!(
        faults,
        [
            ("paris-dc1".to_owned(), T1000, T1000 + 2_000),
            ("paris-dc1".to_owned(), T1000 + 60_100, T1000 + 600_100)
        ]
    );

    // dispo kpi names the same episode.
    let out = support::dispo_ok(&[
        "kpi",
        "--db",
        db.to_str().unwrap(),
        "--from",
        "2024-07-01",
        "--to",
        "2024-07-02",
        "--format",
        "json",
    ]);
    let k: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = k["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [eps[0]["id"].as_str().unwrap()]);
    assert!((k["days"][0]["downtime_s"].as_f64().unwrap() - 58.1).abs() < 1e-9);
}

/// `dispo status` (the binary, at the clock's now): the document is the public page; the
/// operator reads the vantage fault on stderr.
#[test]
fn dispo_status_tells_the_operator_of_a_vantage_fault_apart_from_the_page() {
    support::init();
    let dir = support::tmp_dir("status-vantage", "cli");
    let db = dir.join("d.db");
    // paris-dc1 cut off from 12 minutes ago (whole seconds): five no-replies 5 s apart, its
    // reply 600 s later (100 ms); lyon-dc2 answers 2 s before and 60 s after.
    let now = chrono::Utc::now().timestamp_millis();
    let t0 = (now - 720_000) / 1000 * 1000;
    let at = |ms: i64| dispo::engine::time::rfc3339(ms);
    let mut rows = format!(
        "{},13807,api,cbpii,probe,,200,100,,b1,lyon-dc2\n",
        at(t0 - 2_000)
    );
    for k in 0..5 {
        rows += &format!(
            "{},13807,api,cbpii,probe,,,,,a{k},paris-dc1\n",
            at(t0 + k * 5_000)
        );
    }
    rows += &format!(
        "{},13807,api,cbpii,probe,,200,100,,b2,lyon-dc2\n",
        at(t0 + 60_000)
    );
    rows += &format!(
        "{},13807,api,cbpii,probe,,200,100,,a9,paris-dc1\n",
        at(t0 + 600_000)
    );
    import(&db, &dir, "probes.csv", &rows);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(runs(&db, t0 - 60_000, now));
    let out = support::dispo_ok(&["status", "--db", db.to_str().unwrap(), "--format", "json"]);
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["establishments"][0]["episodes"], Value::Array(vec![]));
    anonymous(&[&j.to_string()]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("Vantage faults in the last 7 days (an outage seen from too few vantages: not downtime, not on the page"),
        "{err}"
    );
    // [t0, t0 + 600.1 s): 600.100 s, over.
    let line = format!(
        "  13807  api       paris-dc1             {} -> {}  600.100 s\n",
        at(t0),
        at(t0 + 600_100)
    );
    assert!(err.contains(&line), "{err}");
}

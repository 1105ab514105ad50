//! `dispo run` against `dispo simulate` over real mutual TLS: what lands in SQLite.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use sqlx::Row;

use crate::sim_support::Sim;
use crate::support;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dispo-it-probe-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A configuration for `codes` against `sim` (a code mapped to `Some(port)` uses that port
/// instead: a closed one makes connections refused), with the given probe tables.
fn config(sim: &Sim, codes: &[(&str, Option<u16>)], probes: &str, timeout_s: f64) -> String {
    let mut s = format!(
        "[monitor]\nid = \"it\"\ntimeout_s = {timeout_s}\nburst_interval_s = 0\nheartbeat_s = 0.5\n"
    );
    for (code, port) in codes {
        s += &dispo::sim::pki::probe_establishment_toml(code, port.unwrap_or(sim.port), &sim.pki);
    }
    s + probes
}

const ALL_STEPS: &str = r#"
[[probe]]
name = "v142"
step = "funds-confirmation"
schedule = "* * * * * *"
stet = "1.4.2"
iban = "FR7613807008043001965405255"
amount = "10.00"
expect = true

[[probe]]
name = "v140"
step = "funds-confirmation"
schedule = "* * * * * *"
stet = "1.4.0"
iban = "FR7613807008043001965405158"
amount = "5000"
expect = false

[[probe]]
name = "fallback"
step = "fallback"
schedule = "* * * * * *"

[[probe]]
name = "web"
step = "psu"
schedule = "* * * * * *"
"#;

/// The simulator, and a configuration of `probes` for 13807 (5 s timeout) written beside the
/// database path of the test `name`: (sim, config path, database path).
fn one_establishment(name: &str, probes: &str) -> (Sim, PathBuf, PathBuf) {
    let sim = Sim::start();
    let dir = tmp(name);
    let cfg = dir.join("p.toml");
    std::fs::write(&cfg, config(&sim, &[("13807", None)], probes, 5.0)).unwrap();
    (sim, cfg, dir.join("d.db"))
}

fn run(cfg: &Path, db: &Path, duration: &str) {
    let out = Command::new(support::dispo_bin())
        .args(["run", "--config"])
        .arg(cfg)
        .arg("--db")
        .arg(db)
        .args(["--duration", duration])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dispo run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn rows(db: &Path, sql: &'static str) -> Vec<sqlx::any::AnyRow> {
    let store = dispo::store::Store::open(db).await.unwrap();
    sqlx::query(sql).fetch_all(store.pool()).await.unwrap()
}

#[tokio::test]
async fn every_step_both_versions_phases_and_heartbeats() {
    let (sim, cfg, db) = one_establishment("steps", ALL_STEPS);
    run(&cfg, &db, "3500ms");

    let by: Vec<(String, String, String, i64)> = rows(
        &db,
        "SELECT interface, service, outcome, COUNT(*) FROM observations GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    )
    .await
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect();
    let kinds: Vec<_> = by
        .iter()
        .map(|(i, s, o, _)| (i.as_str(), s.as_str(), o.as_str()))
        .collect();
    // Every step answered as expected, nothing else: token (once per scope, then cached),
    // funds confirmations in both versions, fallback 302 + JWT, customer page with its marker.
    assert_eq!(
        kinds,
        [
            ("api", "cbpii", "ok"),
            ("api", "token", "ok"),
            ("fallback", "fallback", "ok"),
            ("psu_web", "psu_login", "ok")
        ]
    );
    let count = |svc: &str| by.iter().find(|b| b.1 == svc).unwrap().3;
    // 3.5 s of a once-a-second schedule: 3 or 4 runs of each of the two funds probes.
    assert!((6..=8).contains(&count("cbpii")), "{by:?}");
    assert_eq!(
        count("token"),
        2,
        "one token per scope (piisp, cbpii), then reused"
    );

    // Phases present and adding up to the total; the request ids are what the bank saw.
    let r = rows(&db, "SELECT latency_ms, resolve_ms + connect_ms + tls_ms + processing_ms + transfer_ms, tls_ms, request_id, probe_id FROM observations").await;
    for row in &r {
        let (total, sum, tls): (f64, f64, f64) = (row.get(0), row.get(1), row.get(2));
        assert!((total - sum).abs() < 0.01, "phases {sum} vs total {total}");
        assert!(tls > 0.0, "a fresh connection per probe: TLS is measured");
    }
    let log = sim.access_log().await;
    let ids: std::collections::BTreeSet<String> = log
        .iter()
        .filter_map(|e| e["request_id"].as_str().map(str::to_owned))
        .collect();
    for row in &r {
        let id: String = row.get(3);
        assert!(ids.contains(&id), "request {id} not seen by the bank");
    }

    // One heartbeat row, closed at the end of the duration.
    let hb = rows(
        &db,
        "SELECT monitor_id, stopped_at - started_at, stop_reason FROM heartbeats",
    )
    .await;
    assert_eq!(hb.len(), 1);
    let (id, span, reason): (String, i64, String) = (hb[0].get(0), hb[0].get(1), hb[0].get(2));
    assert_eq!((id.as_str(), reason.as_str()), ("it", "duration"));
    assert!((3_400..5_000).contains(&span), "{span}");
    // Every probe row is recorded under the monitor's id: its vantage (methodology section 10).
    let v = rows(&db, "SELECT DISTINCT vantage FROM observations").await;
    let v: Vec<String> = v.iter().map(|r| r.get(0)).collect();
    assert_eq!(v, ["it"]);
    // Token metadata: never the token itself.
    let toks = rows(&db, "SELECT grant_type, fingerprint FROM token_metadata").await;
    assert_eq!(toks.len(), 2);
    assert_eq!(toks[0].get::<String, _>(1).len(), 12);
}

#[tokio::test]
async fn each_fault_kind_becomes_the_right_outcome() {
    let sim = Sim::start();
    sim.set_faults(json!({"fault": [
        {"establishment": "10807", "kind": "hang"},
        {"establishment": "16807", "kind": "reset"},
        {"establishment": "10207", "kind": "error503"},
        {"establishment": "18707", "kind": "refuse"},
        {"establishment": "13507", "kind": "error500"}
    ]}))
    .await;
    let closed = support::free_port();
    let dir = tmp("faults");
    let cfg = dir.join("p.toml");
    let codes = [
        ("10807", None),
        ("16807", None),
        ("10207", None),
        ("18707", None),
        ("13507", None),
        ("16607", Some(closed)),
    ];
    let probe = r#"
[[probe]]
name = "web"
step = "psu"
schedule = "* * * * * *"
"#;
    std::fs::write(&cfg, config(&sim, &codes, probe, 1.0)).unwrap();
    let db = dir.join("d.db");
    run(&cfg, &db, "2500ms");
    type Row5 = (String, String, Option<String>, Option<i64>, Option<String>);
    let got: Vec<Row5> = rows(
        &db,
        "SELECT DISTINCT establishment, outcome, no_reply_kind, status, error_code FROM observations \
         WHERE outcome != 'probe_error' ORDER BY 1",
    )
    .await
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
    .collect();
    let s = |x: &str| Some(x.to_string());
    assert_eq!(
        got,
        [
            (
                "10207".into(),
                "aspsp_error".into(),
                None,
                Some(503),
                s("INTS")
            ),
            ("10807".into(), "no_reply".into(), s("timeout"), None, None),
            (
                "13507".into(),
                "aspsp_error".into(),
                None,
                Some(500),
                s("INTE")
            ),
            ("16607".into(), "no_reply".into(), s("refused"), None, None),
            ("16807".into(), "no_reply".into(), s("reset"), None, None),
            ("18707".into(), "no_reply".into(), s("tls"), None, None),
        ]
    );
    // A request still hanging when the monitor stopped is recorded as interrupted: the
    // monitor's own doing, outside every figure, never silently dropped.
    let interrupted = rows(
        &db,
        "SELECT establishment, error_text FROM observations WHERE outcome = 'probe_error'",
    )
    .await;
    // (A quick request caught in flight by the stop, on a loaded machine, is one too.)
    for r in &interrupted {
        assert!(r.get::<String, _>(1).contains("interrupted"));
    }
}

#[tokio::test]
async fn refresh_token_grant_from_a_file() {
    let sim = Sim::start();
    // A customer's refresh token, obtained once through the authorization-code flow.
    let c = sim.client(true);
    let base = sim.base("13807");
    let r = c
        .post(format!("{base}/stet/psd2/oauth/authorize"))
        .form(&[
            ("response_type", "code"),
            ("client_id", "PSDFR-ACPR-12345"),
            ("redirect_uri", "https://tpp.example/cb"),
            ("scope", "cbpii"),
            ("login", "D0999990I0"),
            ("sms_code", "12345678"),
        ])
        .send()
        .await
        .unwrap();
    let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let code = loc
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let v: serde_json::Value = c
        .post(format!("{base}/stet/psd2/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://tpp.example/cb"),
            ("client_id", "PSDFR-ACPR-12345"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let dir = tmp("refresh");
    let first_rt = v["refresh_token"].as_str().unwrap().to_owned();
    std::fs::write(dir.join("rt.txt"), &first_rt).unwrap();
    let probe = r#"
[[probe]]
name = "v142"
step = "funds-confirmation"
schedule = "* * * * * *"
stet = "1.4.2"
grant = "refresh_token"
iban = "FR7613807008043001965405255"
"#;
    let cfg_text = config(&sim, &[("13807", None)], probe, 5.0).replace(
        "qseal_key = ",
        &format!(
            "refresh_token_file = \"{}\"\nqseal_key = ",
            dir.join("rt.txt").display()
        ),
    );
    let cfg = dir.join("p.toml");
    std::fs::write(&cfg, cfg_text).unwrap();
    let db = dir.join("d.db");
    run(&cfg, &db, "2500ms");
    let toks = rows(
        &db,
        "SELECT grant_type, has_refresh_token FROM token_metadata",
    )
    .await;
    assert_eq!(toks.len(), 1);
    assert_eq!(toks[0].get::<String, _>(0), "refresh_token");
    let ok = rows(
        &db,
        "SELECT COUNT(*) FROM observations WHERE service = 'cbpii' AND outcome = 'ok'",
    )
    .await;
    assert!(ok[0].get::<i64, _>(0) >= 2);

    // The simulator rotates refresh tokens (the one used is revoked): the new one replaced the
    // old in the token file, readable by its owner only (issue 13.10), so a restart refreshes
    // with it rather than with the revoked one and probing goes on.
    let kept = std::fs::read_to_string(dir.join("rt.txt")).unwrap();
    assert_ne!(kept.trim(), first_rt);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("rt.txt"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    run(&cfg, &db, "2500ms");
    let refused = rows(
        &db,
        "SELECT COUNT(*) FROM token_metadata WHERE grant_type = 'refresh_token'",
    )
    .await;
    assert_eq!(
        refused[0].get::<i64, _>(0),
        2,
        "the restart's refresh was refused"
    );
    let ok_after = rows(
        &db,
        "SELECT COUNT(*) FROM observations WHERE service = 'cbpii' AND outcome = 'ok'",
    )
    .await;
    assert!(ok_after[0].get::<i64, _>(0) >= ok[0].get::<i64, _>(0) + 2);
}

#[tokio::test]
async fn a_killed_monitor_loses_nothing_it_wrote() {
    let (_sim, cfg, db) = one_establishment("kill", ALL_STEPS);
    let mut child = support::spawn_run(&cfg, &db, &[]);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    child.kill().unwrap(); // SIGKILL: no chance to flush anything
    child.wait().unwrap();
    let before = rows(&db, "SELECT COUNT(*) FROM observations").await[0].get::<i64, _>(0);
    assert!(before >= 6, "{before}");
    // The killed run's heartbeat was never closed: its last beat tells when it died.
    let hb = rows(
        &db,
        "SELECT stopped_at IS NULL, last_beat > started_at FROM heartbeats",
    )
    .await;
    // (Booleans come back as SQLite stores them: integers.)
    assert!(hb[0].get::<i64, _>(0) == 1 && hb[0].get::<i64, _>(1) == 1);
    run(&cfg, &db, "1500ms");
    let after = rows(&db, "SELECT COUNT(*) FROM observations").await[0].get::<i64, _>(0);
    assert!(after > before, "{before} then {after}");
    assert_eq!(
        rows(&db, "SELECT COUNT(*) FROM heartbeats").await[0].get::<i64, _>(0),
        2
    );
}

#[test]
fn check_config_reports_every_problem_with_its_line() {
    support::init();
    let pki = crate::sim_support::shared_pki();
    let p = pki.display();
    let dir = tmp("check");
    let cfg = dir.join("bad.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[monitor]
schedule_tz = "Europe/Pariss"

[[establishment]]
code = "99999"
base_url = "https://www.99999.sim.localhost:8443"
ca = "{p}/ca.pem"
client_id = "PSDFR-ACPR-12345"
qwac_cert = "{p}/tpp-qwac.pem"
qwac_key = "{p}/tpp-qseal.key"
qseal_cert = "{p}/tpp-qseal.pem"
qseal_key = "{p}/tpp-qseal.key"

[[probe]]
name = "x"
step = "funds-confirmation"
schedule = "61 * * * *"
iban = "FR7613807008043001965405159"
"#
        ),
    )
    .unwrap();
    let out = Command::new(support::dispo_bin())
        .arg("check-config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let f = cfg.display();
    for expected in [
        format!("{f}:2: error: unknown time zone"),
        format!("{f}:5: error: unknown establishment code 99999"),
        format!("{f}:10: error: QWAC key"),
        format!(
            "{f}:17: error: invalid cron expression \"61 * * * *\": Minutes must be less than 59"
        ),
        format!("{f}:18: error: IBAN"),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
    }
    assert!(
        text.contains("does not belong to its certificate"),
        "{text}"
    );

    // An unknown key stops at parsing, with its line.
    std::fs::write(&cfg, "[monitor]\nid = \"x\"\ncolour = \"blue\"\n").unwrap();
    let out = Command::new(support::dispo_bin())
        .arg("check-config")
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("{f}:3: error: unknown field `colour`")),
        "{text}"
    );

    // The shipped sandbox file is valid once the simulator's PKI exists.
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("probes/sandbox.toml"))
            .unwrap()
            .replace("../sandbox-pki", &p.to_string());
    let ok = dir.join("sandbox.toml");
    std::fs::write(&ok, shipped).unwrap();
    let out = Command::new(support::dispo_bin())
        .arg("check-config")
        .arg(&ok)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn kept_alive_connections_skip_the_handshake() {
    let sim = Sim::start();
    let dir = tmp("reuse");
    let probe = r#"
[[probe]]
name = "web"
step = "psu"
schedule = "* * * * * *"
"#;
    let text = config(&sim, &[("13807", None)], probe, 5.0).replace(
        "heartbeat_s = 0.5",
        "heartbeat_s = 0.5\nreuse_connections = true",
    );
    let cfg = dir.join("p.toml");
    std::fs::write(&cfg, text).unwrap();
    let db = dir.join("d.db");
    run(&cfg, &db, "3500ms");
    let r = rows(
        &db,
        "SELECT tls_ms, connect_ms FROM observations WHERE outcome = 'ok' ORDER BY received_at",
    )
    .await;
    assert!(r.len() >= 3, "{}", r.len());
    // The first probe opens the connection (TLS measured); the next ones reuse it (0).
    assert!(r[0].get::<f64, _>(0) > 0.0);
    for row in &r[1..] {
        assert_eq!((row.get::<f64, _>(0), row.get::<f64, _>(1)), (0.0, 0.0));
    }
}

/// One line of a Prometheus exposition: the value of the series named exactly `name`.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn a_database_that_refuses_writes_shows_in_the_metrics_and_loses_nothing() {
    let (_sim, cfg, db) = one_establishment("refused", ALL_STEPS);
    // The database refuses every observation until the trigger goes.
    let store = dispo::store::Store::open(&db).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse BEFORE INSERT ON observations \
         BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let port = support::free_port();
    let metrics = format!("127.0.0.1:{port}");
    let mut child = support::spawn_run(
        &cfg,
        &db,
        &["--duration", "16s", "--metrics-listen", &metrics],
    );
    let scrape = || async {
        reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()
    };
    // Refused: observations go to the spill journal (issue 13.14), failures count (the first
    // insert, then each replay tried 1 s, 2 s, 4 s ... later).
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    let text = loop {
        if let Some(t) = scrape().await
            && metric(&t, "dispo_store_write_failures_total").unwrap_or(0.0) >= 2.0
        {
            break t;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no write failure shown"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        metric(&text, "dispo_observations_spilled").unwrap() > 0.0,
        "{text}"
    );
    // Nothing waits in memory: the journal took it.
    assert_eq!(metric(&text, "dispo_observations_unwritten"), Some(0.0));

    // The disk is freed: the journal is replayed at its next try, the gauge returns to 0.
    let freed_at = chrono::Utc::now().timestamp_millis();
    sqlx::query("DROP TRIGGER refuse")
        .execute(store.pool())
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(12);
    let text = loop {
        if let Some(t) = scrape().await
            && metric(&t, "dispo_observations_spilled") == Some(0.0)
        {
            break t;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "observations still in the journal"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(metric(&text, "dispo_last_write_timestamp_seconds").unwrap() > 1.7e9);
    assert!(child.wait().unwrap().success());
    // What was refused at the time is in the database now.
    let (held,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM observations WHERE received_at < ?")
        .bind(freed_at)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(
        held >= 4,
        "{held} observations from before the database took writes again"
    );
}

/// A private key others can read is a warning of `check-config`, with its line; the sandbox's
/// own keys (written 0600) give none.
#[cfg(unix)]
#[test]
fn check_config_warns_about_keys_others_can_read() {
    use std::os::unix::fs::PermissionsExt as _;
    support::init();
    let pki = crate::sim_support::shared_pki();
    let dir = tmp("key-mode");
    // A copy of the QSealC key, readable by all.
    let key = dir.join("qseal.key");
    std::fs::copy(pki.join("tpp-qseal.key"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let p = pki.display();
    let body = |qseal_key: &str| {
        format!(
            "[[establishment]]\ncode = \"13807\"\nbase_url = \"https://www.13807.sim.localhost:8443\"\n\
             ca = \"{p}/ca.pem\"\nclient_id = \"PSDFR-ACPR-12345\"\nqwac_cert = \"{p}/tpp-qwac.pem\"\n\
             qwac_key = \"{p}/tpp-qwac.key\"\nqseal_cert = \"{p}/tpp-qseal.pem\"\nqseal_key = \"{qseal_key}\"\n\n\
             [[probe]]\nname = \"t\"\nstep = \"token\"\nschedule = \"* * * * *\"\n"
        )
    };
    let cfg = dir.join("p.toml");
    std::fs::write(&cfg, body(&key.display().to_string())).unwrap();
    let out = Command::new(support::dispo_bin())
        .args(["check-config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("p.toml:9") && text.contains("can be read by others (mode 644)"),
        "{text}"
    );
    std::fs::write(&cfg, body(&format!("{p}/tpp-qseal.key"))).unwrap();
    let out = Command::new(support::dispo_bin())
        .args(["check-config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!text.contains("can be read by others"), "{text}");
}

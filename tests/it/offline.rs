//! The monitor's own failures are not the bank's (issue 12.5), through the real binary against
//! the real simulator: every establishment failing at once while the canary fails too is the
//! monitor offline (`probe_error`, unmonitored, one `monitor_offline` alert, no interface down);
//! with the canary answering the failures stand; a refresh token refused once is tried again.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use axum::routing::get;
use dispo::domain::Outcome;
use serde_json::Value;

use crate::sim_support::Sim;
use crate::support;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dispo-it-offline-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

use crate::support::Received as Notices;
use crate::support::webhook as hook;

/// A canary: a loopback HTTP server answering 200 until the handle is aborted.
async fn canary(port: u16) -> tokio::task::JoinHandle<std::io::Result<()>> {
    let app = axum::Router::new().route("/health", get(|| async { "ok" }));
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(l, app).await })
}

fn events(n: &Notices, kind: &str) -> Vec<String> {
    n.lock()
        .unwrap()
        .iter()
        .filter(|v| v["kind"] == kind)
        .map(|v| v["event"].as_str().unwrap().to_owned())
        .collect()
}

fn kpi(db: &std::path::Path) -> Value {
    let out = Command::new(support::dispo_bin())
        .args(["kpi", "--format", "json", "--db"])
        .arg(db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Seconds `kpi` counts covered for a series, over every day.
fn covered_s(k: &Value, code: &str) -> f64 {
    k["days"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["establishment"] == code && d["interface"] == "api")
        .map(|d| d["covered_s"].as_f64().unwrap())
        .sum()
}

const CODES: [&str; 2] = ["13807", "10548"];

/// What a run where every establishment fails at once gave.
struct AllFail {
    notices: Notices,
    obs: Vec<dispo::store::StoredObservation>,
    kpi: Value,
    /// When the simulator (and, if asked, the canary) were stopped (epoch ms).
    off_ms: i64,
    /// The run's heartbeat span (epoch ms).
    run: (i64, i64),
}

/// Two establishments answer, then the simulator dies (every establishment refuses at once) and
/// the canary dies too if `stop_canary`; `dispo run` goes on for 12 s. Scaled settings: 3 s
/// time-out, 1 s bursts, a probe every 3 s.
async fn all_fail(name: &str, stop_canary: bool) -> AllFail {
    all_fail_for(name, stop_canary, None).await
}

/// As [`all_fail`]; with `back_after`, the banks refuse every connection (the simulator's
/// `refuse` fault on every establishment) instead of dying, and they and the canary come back
/// after that long.
async fn all_fail_for(name: &str, stop_canary: bool, back_after: Option<Duration>) -> AllFail {
    let sim = Sim::start();
    let dir = tmp(name);
    let (hook_port, canary_port) = (support::free_port(), support::free_port());
    let notices = hook(hook_port).await;
    let canary = canary(canary_port).await;
    let mut text = format!(
        "[monitor]\nid = \"it-{name}\"\ntimeout_s = 3\nburst_interval_s = 1\nheartbeat_s = 0.5\n\
         canary = [\"http://127.0.0.1:{canary_port}/health\"]\n\
         [alerts]\ncheck_interval_s = 3600\n[[alerts.webhook]]\nurl = \"http://127.0.0.1:{hook_port}/hook\"\n\
         [[probe]]\nname = \"v142\"\nstep = \"funds-confirmation\"\nschedule = \"*/3 * * * * *\"\nstet = \"1.4.2\"\n\
         iban = \"FR7613807008043001965405255\"\n"
    );
    for code in CODES {
        text.push_str(&dispo::sim::pki::probe_establishment_toml(
            code, sim.port, &sim.pki,
        ));
    }
    let cfg = dir.join("p.toml");
    std::fs::write(&cfg, text).unwrap();
    let db = dir.join("d.db");
    let mut run = support::spawn_run(&cfg, &db, &["--duration", "20s"]);
    // Both answer first.
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let log = sim.access_log().await;
        let answered = |code: &str| {
            log.iter().any(|e| {
                e["establishment"] == code
                    && e["status"] == 200
                    && e["path"].as_str().is_some_and(|p| p.contains("funds"))
            })
        };
        if CODES.iter().all(|c| answered(c)) {
            break;
        }
        assert!(Instant::now() < deadline, "the banks never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Just after a tick's answers: nothing in flight when everything goes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    if stop_canary {
        canary.abort();
    }
    let mut canary = canary;
    let sim = match back_after {
        None => {
            drop(sim);
            None
        }
        Some(d) => {
            sim.set_faults(
                serde_json::json!({"fault": [{"establishment": "*", "interface": "*",
                "kind": "refuse", "for_s": d.as_secs_f64()}]}),
            )
            .await;
            Some(sim)
        }
    };
    let off_ms = chrono::Utc::now().timestamp_millis();
    if let Some(d) = back_after {
        // The canary comes back a little after the banks.
        tokio::time::sleep(d + Duration::from_millis(500)).await;
        if stop_canary {
            canary = self::canary(canary_port).await;
        }
    }
    let status = tokio::task::spawn_blocking(move || run.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    // Deliveries are polled twice a second.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let store = dispo::store::Store::open(&db).await.unwrap();
    let obs = store.load_observations(0, i64::MAX, &[]).await.unwrap();
    use sqlx::Row;
    let hb = sqlx::query("SELECT started_at, stopped_at FROM heartbeats")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let r = AllFail {
        notices,
        obs,
        kpi: kpi(&db),
        off_ms,
        run: (hb.get(0), hb.get(1)),
    };
    canary.abort();
    drop(sim);
    r
}

#[tokio::test]
async fn everything_failing_with_the_canary_is_the_monitor_offline_not_the_bank() {
    let r = all_fail("offline", true).await;
    // After the stop, the requests are the monitor's own errors, never a bank failure.
    let after: Vec<_> = r
        .obs
        .iter()
        .filter(|o| o.obs.received_at_ms > r.off_ms)
        .collect();
    for code in CODES {
        let offline: Vec<_> = after
            .iter()
            .filter(|o| o.obs.establishment.as_str() == code)
            .collect();
        assert!(offline.len() >= 2, "{code}: {} requests", offline.len());
        for o in &offline {
            assert_eq!(o.obs.outcome, Outcome::ProbeError, "{o:?}");
            let t = o.error_text.as_deref().unwrap_or("");
            assert!(t.starts_with("monitor offline"), "{t}");
        }
    }
    // One monitor_offline alert, no interface down.
    assert_eq!(events(&r.notices, "monitor_offline"), ["firing"]);
    assert!(events(&r.notices, "interface_down").is_empty());
    assert!(events(&r.notices, "probe_error").is_empty());
    // kpi: no episode, and the time after the stop is unmonitored (neither up nor down).
    assert_eq!(r.kpi["episodes"].as_array().unwrap().len(), 0);
    for code in CODES {
        let first_offline = after
            .iter()
            .filter(|o| o.obs.establishment.as_str() == code)
            .map(|o| o.obs.received_at_ms)
            .min()
            .unwrap();
        let until_offline_s = (first_offline - r.run.0) as f64 / 1000.0;
        let c = covered_s(&r.kpi, code);
        assert!(
            c <= until_offline_s + 0.001,
            "{code}: covered {c} s, offline from {until_offline_s} s into the run"
        );
        assert!(c > 0.0, "{code}: covered before the stop");
        let run_s = (r.run.1 - r.run.0) as f64 / 1000.0;
        assert!(run_s - c > 10.0, "{code}: only {} s unmonitored", run_s - c);
    }
}

#[tokio::test]
async fn everything_failing_while_the_canary_answers_is_the_bank_down() {
    let r = all_fail("online", false).await;
    // The failures stand: no-replies, an episode and an alert per establishment.
    assert!(
        r.obs.iter().all(|o| o.obs.outcome != Outcome::ProbeError
            || o.error_text
                .as_deref()
                .is_some_and(|t| t.starts_with("interrupted"))),
        "no own error but interruptions"
    );
    let failed = r
        .obs
        .iter()
        .filter(|o| o.obs.received_at_ms > r.off_ms && o.obs.outcome == Outcome::NoReply)
        .count();
    assert!(failed >= 10, "{failed} failures");
    let keys: Vec<String> = r
        .notices
        .lock()
        .unwrap()
        .iter()
        .filter(|v| v["kind"] == "interface_down" && v["event"] == "firing")
        .map(|v| v["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(events(&r.notices, "monitor_offline").is_empty());
    let kpi: Vec<&str> = r.kpi["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    let mut keys = keys;
    keys.sort();
    let mut kpi = kpi;
    kpi.sort();
    assert_eq!(kpi, keys, "the alerts are the episodes kpi counts");
}

#[tokio::test]
async fn a_refresh_token_refused_once_is_tried_again_and_probing_resumes() {
    let sim = Sim::start();
    let dir = tmp("refresh");
    let hook_port = support::free_port();
    let notices = hook(hook_port).await;
    // The file holds a token the bank does not know: the refresh grant is answered 400.
    let rt = dir.join("rt.txt");
    std::fs::write(&rt, "revoked-token").unwrap();
    let text = format!(
        "[monitor]\nid = \"it-refresh\"\ntimeout_s = 3\nburst_interval_s = 1\nheartbeat_s = 0.5\n\
         [alerts]\ncheck_interval_s = 3600\n[[alerts.webhook]]\nurl = \"http://127.0.0.1:{hook_port}/hook\"\n\
         [[probe]]\nname = \"v142\"\nstep = \"funds-confirmation\"\nschedule = \"* * * * * *\"\nstet = \"1.4.2\"\n\
         grant = \"refresh_token\"\niban = \"FR7613807008043001965405255\"\n{}",
        dispo::sim::pki::probe_establishment_toml("13807", sim.port, &sim.pki).replace(
            "qseal_key = ",
            &format!("refresh_token_file = \"{}\"\nqseal_key = ", rt.display()),
        )
    );
    let cfg = dir.join("p.toml");
    std::fs::write(&cfg, text).unwrap();
    let db = dir.join("d.db");
    let mut run = support::spawn_run(&cfg, &db, &["--duration", "14s"]);
    let refused = |log: &[Value]| -> Vec<i64> {
        log.iter()
            .filter(|e| {
                e["status"] == 400 && e["path"].as_str().is_some_and(|p| p.ends_with("/token"))
            })
            .map(|e| e["at_ms"].as_i64().unwrap())
            .collect()
    };
    // Refused, then tried again with the same token after the 5 s backoff (refused again).
    let deadline = Instant::now() + Duration::from_secs(12);
    let tries = loop {
        let r = refused(&sim.access_log().await);
        if r.len() >= 2 {
            break r;
        }
        assert!(Instant::now() < deadline, "no retry: {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(tries[1] - tries[0] >= 4_500, "backoff: {tries:?}");
    assert_eq!(events(&notices, "probe_error"), ["firing"]);
    // The operator renews the file: the next probe uses it.
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
    let v: Value = c
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
    let renewed_ms = chrono::Utc::now().timestamp_millis();
    std::fs::write(&rt, v["refresh_token"].as_str().unwrap()).unwrap();
    let status = tokio::task::spawn_blocking(move || run.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    tokio::time::sleep(Duration::from_millis(700)).await;
    // Probing resumed: funds confirmations answered after the renewal, the alert resolved.
    let store = dispo::store::Store::open(&db).await.unwrap();
    let obs = store.load_observations(0, i64::MAX, &[]).await.unwrap();
    let ok_after = obs
        .iter()
        .filter(|o| {
            o.obs.received_at_ms > renewed_ms
                && o.obs.service.as_str() == "cbpii"
                && o.obs.outcome == Outcome::Ok
        })
        .count();
    assert!(ok_after >= 2, "{ok_after} answered funds confirmations");
    assert_eq!(events(&notices, "probe_error"), ["firing", "resolved"]);
    // The time the monitor could not probe is not covered.
    let first_error = obs
        .iter()
        .filter(|o| o.obs.outcome == Outcome::ProbeError)
        .map(|o| o.obs.received_at_ms)
        .min()
        .unwrap();
    let resumed = obs
        .iter()
        .filter(|o| o.obs.received_at_ms > first_error && o.obs.outcome == Outcome::Ok)
        .map(|o| o.obs.received_at_ms)
        .min()
        .unwrap();
    use sqlx::Row;
    let hb = sqlx::query("SELECT started_at, stopped_at FROM heartbeats")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let (start, stop): (i64, i64) = (hb.get(0), hb.get(1));
    let c = covered_s(&kpi(&db), "13807");
    let expected = ((stop - start) - (resumed - first_error)) as f64 / 1000.0;
    // (The retry's own 400, a reply, covers the few milliseconds before its error.)
    assert!(
        (expected - 0.001..expected + 0.5).contains(&c),
        "covered {c} s, expected {expected} s (the refused time left out)"
    );
}

#[tokio::test]
async fn the_monitor_back_online_resolves_monitor_offline() {
    let r = all_fail_for("back", true, Some(Duration::from_secs(7))).await;
    assert_eq!(
        events(&r.notices, "monitor_offline"),
        ["firing", "resolved"]
    );
    assert!(events(&r.notices, "interface_down").is_empty());
    // Answers again after the 7 s: the funds confirmations of both banks.
    let back_ms = r.off_ms + 7_000;
    for code in CODES {
        assert!(
            r.obs.iter().any(|o| o.obs.establishment.as_str() == code
                && o.obs.received_at_ms > back_ms
                && o.obs.outcome == Outcome::Ok),
            "{code} answers again"
        );
    }
    // Not covered while offline: at least the 7 s less a probe period (3 s) on each series.
    let run_s = (r.run.1 - r.run.0) as f64 / 1000.0;
    for code in CODES {
        let c = covered_s(&r.kpi, code);
        assert!(run_s - c > 4.0, "{code}: only {} s unmonitored", run_s - c);
    }
    assert_eq!(r.kpi["episodes"].as_array().unwrap().len(), 0);
}

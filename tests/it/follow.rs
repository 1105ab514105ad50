//! `dispo run` following a gateway log (`[[source]]`): a Kong file-log appended to while it runs
//! and rotated once; every line lands exactly once, an outage only TPPs saw is alerted and
//! resolved, and a restart reads only what came after.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::import::tmp;
use crate::support;

use crate::support::webhook;

/// A Kong file-log line of the Banque Populaire host for 13807.
fn kong(started_ms: i64, id: &str, status: u16) -> String {
    format!(
        r#"{{"request":{{"method":"POST","uri":"/stet/psd2/v1/accounts","headers":{{"host":"www.13807.live.api.89c3.com","x-request-id":"{id}"}}}},"response":{{"status":{status},"size":80}},"latencies":{{"kong":0,"proxy":11,"request":12}},"client_ip":"203.0.113.10","started_at":{started_ms},"consumer":{{"username":"PSDFR-ACPR-12345"}}}}"#
    ) + "\n"
}

fn append(p: &Path, s: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .unwrap();
    f.write_all(s.as_bytes()).unwrap();
}

/// `dispo run` for `secs`, its stdout once it ended.
fn run_for(cfg: &Path, db: impl AsRef<std::ffi::OsStr>, secs: &str) -> std::process::Child {
    Command::new(support::dispo_bin())
        .env("DISPO_STATE_DIR", cfg.parent().unwrap())
        .args(["run", "--duration", secs, "--config"])
        .arg(cfg)
        .arg("--db")
        .arg(db.as_ref())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn load_all(db: &str) -> Vec<dispo::store::StoredObservation> {
    let s = support::open_store(db).await;
    s.load_observations(i64::MIN, i64::MAX, &[]).await.unwrap()
}

/// The "N gateway log rows followed" line of a run's output.
fn followed(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.ends_with("gateway log rows followed"))
        .unwrap_or_default()
        .to_owned()
}

support::on_both_async!(
    a_followed_log_lands_once_across_rotation_and_restart_and_its_outage_alerts
);

async fn a_followed_log_lands_once_across_rotation_and_restart_and_its_outage_alerts(
    b: support::Backend,
) {
    support::init();
    let d: PathBuf = tmp(&format!("follow-{b:?}"));
    let port = support::free_port();
    let hooks = webhook(port).await;
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("probes/gateways/kong-file-log.toml"),
        d.join("kong.toml"),
    )
    .unwrap();
    let cfg = d.join("p.toml");
    // No probe: only the gateway's view of the TPPs' traffic.
    std::fs::write(
        &cfg,
        format!(
            "[monitor]\nid = \"it-follow\"\n\
             [alerts]\ncheck_interval_s = 3600\n[[alerts.webhook]]\nurl = \"http://127.0.0.1:{port}/hook\"\n\
             [[source]]\nname = \"kong\"\npath = \"kong.log\"\nmapping = \"kong.toml\"\n\
             hold_s = 1\npoll_s = 0.1\nfrom = \"start\"\n"
        ),
    )
    .unwrap();
    let (db, log) = (b.db(&d, "d.db"), d.join("kong.log"));
    // A minute ago the API answered; then five requests in 4 s failed (503).
    let t0 = chrono::Utc::now().timestamp_millis() / 1000 * 1000 - 60_000;
    append(
        &log,
        &(kong(t0, "ok1", 200) + &kong(t0 + 1_000, "ok2", 200)),
    );
    let run = run_for(&cfg, &db, "8s");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut fails = String::new();
    for i in 0..5 {
        fails += &kong(t0 + 10_000 + i * 1_000, &format!("f{i}"), 503);
    }
    append(&log, &fails);
    // Fired while it runs.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !hooks.lock().unwrap().iter().any(|v| v["event"] == "firing") {
        assert!(Instant::now() < deadline, "no alert while following");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Rotated: the gateway writes one more line to the renamed file, then to a new one, where
    // the API answers again.
    std::fs::rename(&log, d.join("kong.log.1")).unwrap();
    append(&d.join("kong.log.1"), &kong(t0 + 15_000, "f5", 503));
    tokio::time::sleep(Duration::from_millis(500)).await;
    append(
        &log,
        &(kong(t0 + 20_000, "ok3", 200) + &kong(t0 + 21_000, "ok4", 200)),
    );
    let out = tokio::task::spawn_blocking(move || run.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success());
    assert!(
        followed(&out) == "10 gateway log rows followed",
        "{}",
        followed(&out)
    );

    let all = load_all(&db).await;
    let mut ids: Vec<String> = all.iter().map(|o| o.obs.request_id.to_string()).collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "f0", "f1", "f2", "f3", "f4", "f5", "ok1", "ok2", "ok3", "ok4"
        ]
    );
    let got = hooks.lock().unwrap().clone();
    let events: Vec<(&str, &str)> = got
        .iter()
        .map(|v| (v["event"].as_str().unwrap(), v["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        events,
        [("firing", "interface_down"), ("resolved", "interface_down")]
    );
    // The episode began with the first failure, as `dispo kpi` counts it.
    let first = chrono::DateTime::from_timestamp_millis(t0 + 10_000).unwrap();
    assert_eq!(
        got[0]["key"],
        format!("13807-api-{}", first.format("%Y%m%dT%H%M%S%.3fZ"))
    );
    assert_eq!(got[0]["key"], got[1]["key"]);

    // Restarted: only the lines written since are read.
    append(&log, &kong(t0 + 22_000, "ok5", 200));
    let out = tokio::task::spawn_blocking({
        let (cfg, db) = (cfg.clone(), db.clone());
        move || run_for(&cfg, &db, "2s").wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        followed(&out) == "1 gateway log rows followed",
        "{}",
        followed(&out)
    );
    assert_eq!(load_all(&db).await.len(), 11);
    // The followed time is covered: one span from the first to the latest line.
    let spans: Vec<(String, i64, i64)> = {
        let s = support::open_store(&db).await;
        sqlx::query_as("SELECT source, first_at, last_at FROM log_spans")
            .fetch_all(s.pool())
            .await
            .unwrap()
    };
    assert_eq!(spans, [("kong".to_string(), t0, t0 + 22_000)]);
    let _ = std::fs::remove_dir_all(&d);
}

/// Probes and a followed log on one series are merged in the batch's order (issue 12.2, 12.4):
/// a TPP's request that answered between the probes' failures breaks their run live as `kpi`
/// does, so the alert names the episode `kpi` counts, id for id. Without the merge the probes'
/// five failures reach the detector before the gateway's line (held `hold_s` by the follower)
/// and the alert names an episode `kpi` does not have.
#[tokio::test(flavor = "multi_thread")]
async fn probes_and_followed_logs_alert_the_episode_kpi_counts() {
    support::init();
    let sim = crate::sim_support::Sim::start();
    let d: PathBuf = tmp("follow-merge");
    let port = support::free_port();
    let hooks = webhook(port).await;
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("probes/gateways/kong-file-log.toml"),
        d.join("kong.toml"),
    )
    .unwrap();
    let cfg = d.join("p.toml");
    // Scaled settings: 3 s time-out, 1 s bursts, a probe a second; the gateway's lines held 2 s.
    std::fs::write(
        &cfg,
        format!(
            "[monitor]\nid = \"it-merge\"\ntimeout_s = 3\nburst_interval_s = 1\nheartbeat_s = 0.5\n\
             [alerts]\ncheck_interval_s = 3600\n[[alerts.webhook]]\nurl = \"http://127.0.0.1:{port}/hook\"\n\
             [[probe]]\nname = \"v142\"\nstep = \"funds-confirmation\"\nschedule = \"* * * * * *\"\n\
             stet = \"1.4.2\"\niban = \"FR7613807008043001965405255\"\n\
             [[source]]\nname = \"kong\"\npath = \"kong.log\"\nmapping = \"kong.toml\"\n\
             hold_s = 2\npoll_s = 0.1\nfrom = \"start\"\n{}",
            dispo::sim::pki::probe_establishment_toml("13807", sim.port, &sim.pki)
        ),
    )
    .unwrap();
    let (db, log) = (d.join("d.db"), d.join("kong.log"));
    let db = db.to_str().unwrap().to_owned();
    append(&log, "");
    let run = run_for(&cfg, &db, "16s");
    // The bank refuses connections for 8 s from a whole second on.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let now = chrono::Utc::now().timestamp_millis();
    let t = (now / 1000 + 1) * 1000;
    tokio::time::sleep(Duration::from_millis((t - now - 50).max(0) as u64)).await;
    sim.set_faults(
        serde_json::json!({"fault": [{"establishment": "13807", "interface": "api",
        "kind": "refuse", "for_s": 8}]}),
    )
    .await;
    // A TPP's request began 1.5 s in and was answered: between the second and third failures.
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let tpp = kong(t + 1_500, "tpp-ok", 200).replace("PSDFR-ACPR-12345", "PSDFR-ACPR-99999");
    append(&log, &tpp);
    let out = tokio::task::spawn_blocking(move || run.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success());
    tokio::time::sleep(Duration::from_millis(700)).await;

    let k = crate::support::dispo_ok(&["kpi", "--format", "json", "--db", &db]);
    let k: Value = serde_json::from_slice(&k.stdout).unwrap();
    let kpi_ids: Vec<String> = k["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["establishment"] == "13807" && e["interface"] == "api")
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    let fired: Vec<String> = hooks
        .lock()
        .unwrap()
        .iter()
        .filter(|v| v["event"] == "firing" && v["kind"] == "interface_down")
        .map(|v| v["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kpi_ids.len(), 1, "{k}");
    assert_eq!(fired, kpi_ids);
    // And that episode began after the TPP's answer.
    let begun = support::open_store(&db).await;
    let first_fail: i64 = sqlx::query_scalar(
        "SELECT MIN(received_at) FROM observations WHERE source = 'probe' AND outcome = 'no_reply' \
         AND interface = 'api'",
    )
    .fetch_one(begun.pool())
    .await
    .unwrap();
    assert!(
        first_fail < t + 1_500,
        "the first failure came after the TPP's answer"
    );
    assert!(
        !kpi_ids[0].ends_with(&format!(
            "{}",
            chrono::DateTime::from_timestamp_millis(first_fail)
                .unwrap()
                .format("%Y%m%dT%H%M%S%.3fZ")
        )),
        "the episode starts at the first failure, before the TPP's answer: nothing to tell apart"
    );
    let _ = std::fs::remove_dir_all(&d);
}

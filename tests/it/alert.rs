//! Alerts end to end: a simulator outage drives `dispo run` to an episode, and the firing and
//! resolved alerts reach a webhook, a Slack-compatible hook, a real Prometheus Alertmanager and an
//! SMTP relay; the outbox delivers what a channel missed once it is back; /metrics is scraped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::routing::post;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::sim_support::Sim;
use crate::support;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dispo-it-alert-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

type Received = Arc<Mutex<Vec<(SystemTime, Value)>>>;

/// A loopback HTTP receiver recording every JSON body posted to `/hook` and `/slack`.
async fn receiver(port: u16) -> (Received, Received) {
    let hooks: Received = Default::default();
    let slack: Received = Default::default();
    let (h, s) = (hooks.clone(), slack.clone());
    let app = axum::Router::new()
        .route(
            "/hook",
            post(move |axum::Json(v): axum::Json<Value>| {
                let h = h.clone();
                async move { h.lock().unwrap().push((SystemTime::now(), v)) }
            }),
        )
        .route(
            "/slack",
            post(move |axum::Json(v): axum::Json<Value>| {
                let s = s.clone();
                async move { s.lock().unwrap().push((SystemTime::now(), v)) }
            }),
        );
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    (hooks, slack)
}

/// A loopback SMTP relay recording each message's DATA.
async fn smtp(port: u16) -> Arc<Mutex<Vec<String>>> {
    let mails: Arc<Mutex<Vec<String>>> = Default::default();
    let m = mails.clone();
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let m = m.clone();
            tokio::spawn(async move {
                let (r, mut w) = s.into_split();
                let mut r = BufReader::new(r);
                let _ = w.write_all(b"220 test relay\r\n").await;
                let (mut data, mut in_data) = (String::new(), false);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if in_data {
                        if line == ".\r\n" {
                            in_data = false;
                            m.lock().unwrap().push(std::mem::take(&mut data));
                            let _ = w.write_all(b"250 queued\r\n").await;
                        } else {
                            data.push_str(&line);
                        }
                    } else if line.starts_with("DATA") {
                        in_data = true;
                        let _ = w.write_all(b"354 go on\r\n").await;
                    } else if line.starts_with("QUIT") {
                        let _ = w.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        let _ = w.write_all(b"250 ok\r\n").await;
                    }
                }
            });
        }
    });
    mails
}

/// A real Alertmanager on loopback; killed on drop.
struct Alertmanager {
    child: Child,
    port: u16,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn alertmanager(dir: &std::path::Path) -> Alertmanager {
    let bin = ["/usr/bin/prometheus-alertmanager", "/usr/bin/alertmanager"]
        .into_iter()
        .find(|b| std::path::Path::new(b).exists())
        .expect("Prometheus Alertmanager is not installed: apt-get install prometheus-alertmanager (.ci/run does)");
    let cfg = dir.join("am.yml");
    std::fs::write(
        &cfg,
        "route:\n  receiver: \"null\"\nreceivers:\n  - name: \"null\"\n",
    )
    .unwrap();
    let port = support::free_port();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.path={}", dir.join("am-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let am = Alertmanager { child, port };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/-/ready")).await
            && r.status().is_success()
        {
            break;
        }
        assert!(Instant::now() < deadline, "Alertmanager did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    am
}

fn config(sim: &Sim, alerts: &str, probes: &str) -> String {
    format!(
        "[monitor]\nid = \"it-alert\"\ntimeout_s = 1\nburst_interval_s = 0\nheartbeat_s = 0.5\n{}\n[alerts]\ncheck_interval_s = 3600\n{alerts}\n{probes}",
        dispo::sim::pki::probe_establishment_toml("13807", sim.port, &sim.pki)
    )
}

const FUNDS: &str = r#"
[[probe]]
name = "v142"
step = "funds-confirmation"
schedule = "* * * * * *"
stet = "1.4.2"
iban = "FR7613807008043001965405255"
"#;

#[tokio::test]
async fn an_outage_is_alerted_on_every_channel_and_resolved() {
    let sim = Sim::start();
    let dir = tmp("e2e");
    let am = alertmanager(&dir).await;
    let (hook_port, smtp_port, metrics_port) = (
        support::free_port(),
        support::free_port(),
        support::free_port(),
    );
    let (hooks, slack) = receiver(hook_port).await;
    let mails = smtp(smtp_port).await;
    // Answers for 2 s, hangs for 7 s (so failures at about 2, 3, 4, 5, 6 s), then answers again.
    sim.set_faults(json!({"fault": [{"establishment": "13807", "interface": "api", "kind": "hang", "after_s": 2, "for_s": 7}]})).await;
    let alerts = format!(
        r#"[[alerts.webhook]]
url = "http://127.0.0.1:{hook_port}/hook"
[[alerts.slack]]
url = "http://127.0.0.1:{hook_port}/slack"
[[alerts.alertmanager]]
url = "http://127.0.0.1:{}"
[[alerts.email]]
smtp = "127.0.0.1:{smtp_port}"
from = "dispo@bank.example"
to = ["oncall@bank.example"]
"#,
        am.port
    );
    let cfg = dir.join("p.toml");
    std::fs::write(&cfg, config(&sim, &alerts, FUNDS)).unwrap();
    let db = dir.join("d.db");
    let mut run = support::spawn_run(
        &cfg,
        &db,
        &[
            "--duration",
            "14s",
            "--metrics-listen",
            &format!("127.0.0.1:{metrics_port}"),
        ],
    );

    // While it is down, Alertmanager holds the firing alert with our labels.
    let deadline = Instant::now() + Duration::from_secs(20);
    let am_alert = loop {
        let v: Value = reqwest::get(format!("http://127.0.0.1:{}/api/v2/alerts", am.port))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(a) = v.as_array().and_then(|a| {
            a.iter()
                .find(|a| a["labels"]["alertname"] == "dispo_interface_down")
        }) {
            break a.clone();
        }
        assert!(Instant::now() < deadline, "no alert reached Alertmanager");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(am_alert["labels"]["establishment"], "13807");
    assert_eq!(am_alert["labels"]["interface"], "api");
    assert_eq!(am_alert["labels"]["severity"], "critical");

    // /metrics while it runs.
    let text = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "probe_success{",
        "probe_duration_seconds{",
        "probe_http_duration_seconds{",
        "phase=\"tls\"",
        "probe_ssl_earliest_cert_expiry{",
        "dispo_interface_up{establishment=\"13807\",interface=\"api\"} 0",
        "dispo_episodes_total{establishment=\"13807\",interface=\"api\"} 1",
    ] {
        assert!(text.contains(name), "missing {name} in\n{text}");
    }

    assert!(
        tokio::task::spawn_blocking(move || run.wait())
            .await
            .unwrap()
            .unwrap()
            .success()
    );

    // Alertmanager took the resolution: its API lists only alerts whose `endsAt` is still ahead
    // (a firing one is sent valid for five minutes), so the alert is gone once resolved.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v: Value = reqwest::get(format!("http://127.0.0.1:{}/api/v2/alerts", am.port))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let active = v.as_array().is_some_and(|a| {
            a.iter()
                .any(|a| a["labels"]["alertname"] == "dispo_interface_down")
        });
        if !active {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Alertmanager still holds the alert after the resolution: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The webhook got firing then resolved, for the same episode.
    let got = hooks.lock().unwrap().clone();
    let events: Vec<(&str, &str)> = got
        .iter()
        .map(|(_, v)| (v["event"].as_str().unwrap(), v["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        events,
        [("firing", "interface_down"), ("resolved", "interface_down")]
    );
    let (fired_at, firing) = &got[0];
    assert_eq!(firing["key"], got[1].1["key"]);
    assert!(firing["key"].as_str().unwrap().starts_with("13807-api-"));
    assert!(
        firing["summary"]
            .as_str()
            .unwrap()
            .contains("deemed unavailable since")
    );
    assert!(
        got[1].1["description"]
            .as_str()
            .unwrap()
            .contains("available again")
    );

    // From the first failed probe to the alert delivered: under 35 s.
    let store = dispo::store::Store::open(&db).await.unwrap();
    let first_fail = store
        .load_observations(0, i64::MAX, &[])
        .await
        .unwrap()
        .into_iter()
        .find(|o| o.obs.outcome == dispo::domain::Outcome::NoReply)
        .unwrap()
        .obs
        .received_at_ms;
    let delivered = fired_at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let elapsed = delivered - first_fail;
    assert!(
        (0..35_000).contains(&elapsed),
        "first failure to alert: {elapsed} ms"
    );
    // The episode the alert names is the one the engine counts.
    let key = firing["key"].as_str().unwrap();
    assert_eq!(format!("13807-api-{}", &key[10..]), key);

    let s = slack.lock().unwrap().clone();
    assert_eq!(s.len(), 2);
    assert!(s[0].1["text"].as_str().unwrap().contains("[FIRING]"));
    let m = mails.lock().unwrap().clone();
    assert_eq!(m.len(), 2, "one e-mail when firing, one when resolved");
    assert!(m[0].contains("Subject: [dispo firing]") && m[0].contains("To: oncall@bank.example"));

    // The evidence pack of the outage `dispo run` captured: built, verified, then tampered with.
    let pack = dir.join("pack");
    let out = Command::new(support::dispo_bin())
        .args([
            "evidence",
            "--db",
            db.to_str().unwrap(),
            "--episode",
            key,
            "--out",
            pack.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verify = |pack: &std::path::Path| {
        Command::new(support::dispo_bin())
            .args(["evidence", "verify"])
            .arg(pack)
            .output()
            .unwrap()
    };
    assert!(verify(&pack).status.success());
    let summary = std::fs::read_dir(&pack)
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.path().extension().is_some_and(|x| x == "md"))
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(text.contains(key), "the pack names the episode");
    std::fs::write(&summary, format!("{text}\ntampered")).unwrap();
    assert!(
        !verify(&pack).status.success(),
        "an altered file is detected"
    );
}

#[tokio::test]
async fn the_outbox_delivers_once_the_channel_is_back() {
    let sim = Sim::start();
    let dir = tmp("outbox");
    let hook_port = support::free_port(); // nothing listens yet
    sim.set_faults(
        json!({"fault": [{"establishment": "13807", "interface": "api", "kind": "refuse"}]}),
    )
    .await;
    let alerts = format!("[[alerts.webhook]]\nurl = \"http://127.0.0.1:{hook_port}/hook\"\n");
    let cfg = dir.join("p.toml");
    std::fs::write(&cfg, config(&sim, &alerts, FUNDS)).unwrap();
    let db = dir.join("d.db");
    // Down from the start: the alert fires but the webhook is unreachable.
    run_for(&cfg, &db, "7s").await;
    let store = dispo::store::Store::open(&db).await.unwrap();
    let pending = store.due_deliveries(i64::MAX, 100).await.unwrap();
    assert_eq!(pending.len(), 1, "the firing notice waits in the outbox");
    assert!(pending[0].attempts >= 1);
    // The channel comes back, the bank too; the next run delivers the waiting notice, then the
    // resolution.
    let (hooks, _) = receiver(hook_port).await;
    sim.set_faults(json!({"fault": []})).await;
    run_for(&cfg, &db, "4s").await;
    let events: Vec<String> = hooks
        .lock()
        .unwrap()
        .iter()
        .map(|(_, v)| v["event"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(events, ["firing", "resolved"]);
    assert!(
        store
            .due_deliveries(i64::MAX, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Runs `dispo run` for a while, off the async threads.
async fn run_for(cfg: &std::path::Path, db: &std::path::Path, d: &'static str) {
    let (cfg, db) = (cfg.to_owned(), db.to_owned());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(support::dispo_bin())
            .args(["run", "--duration", d, "--config"])
            .arg(&cfg)
            .arg("--db")
            .arg(&db)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn certificates_and_refresh_tokens_near_expiry_are_alerted() {
    let sim = Sim::start();
    let dir = tmp("expiry");
    let hook_port = support::free_port();
    let (hooks, _) = receiver(hook_port).await;
    // A refresh token obtained 170 days ago: 10 days left of its 180, within the 14-day warning.
    let rt = dir.join("rt.txt");
    std::fs::write(&rt, "not-a-real-token").unwrap();
    let touched = Command::new("touch")
        .arg("-d")
        .arg("170 days ago")
        .arg(&rt)
        .status()
        .unwrap();
    assert!(touched.success());
    // Certificates valid for about three years: a 5 000-day threshold makes them "expiring".
    let alerts = format!(
        "cert_expiry_days = 5000\n[[alerts.webhook]]\nurl = \"http://127.0.0.1:{hook_port}/hook\"\n"
    );
    let cfg_text = config(&sim, &alerts, FUNDS).replace(
        "qseal_key = ",
        &format!("refresh_token_file = \"{}\"\nqseal_key = ", rt.display()),
    );
    let cfg = dir.join("p.toml");
    std::fs::write(&cfg, cfg_text).unwrap();
    run_for(&cfg, &dir.join("d.db"), "3s").await;
    let got = hooks.lock().unwrap().clone();
    let kinds: Vec<(&str, &str)> = got
        .iter()
        .map(|(_, v)| (v["kind"].as_str().unwrap(), v["summary"].as_str().unwrap()))
        .collect();
    let refresh = kinds
        .iter()
        .find(|(k, _)| *k == "refresh_token_expiry")
        .expect("a refresh-token alert");
    assert!(refresh.1.contains("expires in 10 days"), "{refresh:?}");
    let certs: Vec<_> = kinds
        .iter()
        .filter(|(k, _)| *k == "certificate_expiry")
        .collect();
    assert_eq!(certs.len(), 2, "the QWAC and the QSealC: {kinds:?}");
}

// Detection in time (methodology section 8): every outage shape is confirmed by a burst and
// alerted within (time-out + 25 s) of the first failed request with the shipped settings (30 s
// time-out, 5 s bursts, a probe a minute). Here the same ratios scaled down by five: 6 s
// time-out, 1 s bursts, a probe every 12 s, so the bound is 6 + 5 = 11 s.

/// Scaled settings: time-out, burst interval, schedule period (seconds).
const SCALED: (u32, u32, u32) = (6, 1, 12);

/// What a run against one outage shape gave.
struct Detection {
    /// First failed request (received_at) to the firing notice at the webhook, if any.
    delay_ms: Option<i64>,
    /// The firing notices' keys, in order.
    fired: Vec<String>,
    /// `dispo kpi`'s episode ids over the same database.
    kpi: Vec<String>,
    /// Requests the monitor recorded (outside the monitor's own errors).
    requests: usize,
}

/// Runs `dispo run` for `run_s` seconds against 13807 under `faults` (`closed`: the
/// establishment points at a port where nothing listens), at the scaled settings, its first
/// scheduled probe about 3 s after the start. `faults` gets that first probe's instant (UTC ms).
async fn detect(
    name: &str,
    closed: bool,
    run_s: u32,
    faults: impl FnOnce(i64) -> Option<Value>,
) -> Detection {
    use chrono::Timelike;
    let sim = Sim::start();
    let dir = tmp(name);
    let hook_port = support::free_port();
    let (hooks, _) = receiver(hook_port).await;
    let (timeout, burst, every) = SCALED;
    // A probe every 12 s, the first 3 s from now (whole seconds).
    let now = chrono::Utc::now();
    let first = now.with_nanosecond(0).unwrap() + chrono::Duration::seconds(3);
    let mut secs: Vec<u32> = (0..60 / every)
        .map(|k| (first.second() + k * every) % 60)
        .collect();
    secs.sort_unstable();
    let schedule = secs
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    if let Some(plan) = faults(first.timestamp_millis()) {
        sim.set_faults(plan).await;
    }
    let port = if closed {
        support::free_port()
    } else {
        sim.port
    };
    let cfg_text = format!(
        "[monitor]\nid = \"it-{name}\"\ntimeout_s = {timeout}\nburst_interval_s = {burst}\nheartbeat_s = 0.5\n{}\n\
         [alerts]\ncheck_interval_s = 3600\n[[alerts.webhook]]\nurl = \"http://127.0.0.1:{hook_port}/hook\"\n\
         [[probe]]\nname = \"v142\"\nstep = \"funds-confirmation\"\nschedule = \"{schedule} * * * * *\"\nstet = \"1.4.2\"\n\
         iban = \"FR7613807008043001965405255\"\n",
        dispo::sim::pki::probe_establishment_toml("13807", port, &sim.pki)
    );
    let cfg = dir.join("p.toml");
    std::fs::write(&cfg, cfg_text).unwrap();
    let db = dir.join("d.db");
    let d = format!("{run_s}s");
    let (c2, d2) = (cfg.clone(), db.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(support::dispo_bin())
            .args(["run", "--duration", &d, "--config"])
            .arg(&c2)
            .arg("--db")
            .arg(&d2)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Deliveries are polled twice a second: the last notice may follow the run's end.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let store = dispo::store::Store::open(&db).await.unwrap();
    let obs = store.load_observations(0, i64::MAX, &[]).await.unwrap();
    let first_fail = obs
        .iter()
        .filter(|o| o.obs.outcome.is_failure(true))
        .map(|o| o.obs.received_at_ms)
        .min();
    let got = hooks.lock().unwrap().clone();
    let firing: Vec<&(SystemTime, Value)> = got
        .iter()
        .filter(|(_, v)| v["event"] == "firing" && v["kind"] == "interface_down")
        .collect();
    let delay_ms = firing.first().zip(first_fail).map(|((at, _), first)| {
        at.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
            - first
    });
    let kpi = Command::new(support::dispo_bin())
        .args(["kpi", "--format", "json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        kpi.status.success(),
        "{}",
        String::from_utf8_lossy(&kpi.stderr)
    );
    let k: Value = serde_json::from_slice(&kpi.stdout).unwrap();
    let d = Detection {
        delay_ms,
        fired: firing
            .iter()
            .map(|(_, v)| v["key"].as_str().unwrap().to_owned())
            .collect(),
        kpi: k["episodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect(),
        requests: obs
            .iter()
            .filter(|o| o.obs.outcome != dispo::domain::Outcome::ProbeError)
            .count(),
    };
    eprintln!(
        "detection {name}: first failure to alert {:?} ms, {} requests, fired {:?}, kpi {:?}",
        d.delay_ms, d.requests, d.fired, d.kpi
    );
    d
}

/// The outage is alerted within the scaled bound, once, as the episode `kpi` counts.
fn assert_detected(d: &Detection) {
    let bound = i64::from(SCALED.0 + 5) * 1000;
    let delay = d.delay_ms.expect("an alert");
    assert!(
        (0..=bound).contains(&delay),
        "first failure to alert: {delay} ms (bound {bound} ms)"
    );
    assert_eq!(d.fired.len(), 1, "one alert: {:?}", d.fired);
    assert_eq!(d.kpi, d.fired, "the alert is the episode kpi counts");
}

fn down(kind: &str, extra: Value) -> Option<Value> {
    let mut f = json!({"establishment": "13807", "interface": "api", "kind": kind});
    if let (Some(f), Some(e)) = (f.as_object_mut(), extra.as_object()) {
        f.extend(e.clone());
    }
    Some(json!({ "fault": [f] }))
}

#[tokio::test]
async fn a_hang_is_alerted_within_time_out_plus_25_s_scaled() {
    // Five requests out within 4 s (one a second once the first is 1 s late), the fifth
    // timing out 6 s later: about 10 s.
    let d = detect("hang", false, 16, |_| down("hang", json!({}))).await;
    assert_detected(&d);
}

#[tokio::test]
async fn a_reset_is_alerted_in_time() {
    let d = detect("reset", false, 10, |_| down("reset", json!({}))).await;
    assert_detected(&d);
}

#[tokio::test]
async fn a_refused_connection_is_alerted_in_time() {
    let d = detect("refused", true, 10, |_| None).await;
    assert_detected(&d);
}

#[tokio::test]
async fn a_tls_failure_is_alerted_in_time() {
    // The connection closes during the handshake (a failing load balancer).
    let d = detect("tls", false, 10, |_| down("refuse", json!({}))).await;
    assert_detected(&d);
}

#[tokio::test]
async fn a_5xx_is_alerted_in_time() {
    let d = detect("5xx", false, 10, |_| down("error503", json!({}))).await;
    assert_detected(&d);
}

#[tokio::test]
async fn a_body_slower_than_the_time_out_is_alerted_in_time() {
    let d = detect("slowbody", false, 16, |_| {
        down("slow_body", json!({"body_ms": 9000}))
    })
    .await;
    assert_detected(&d);
}

#[tokio::test]
async fn one_hung_request_is_a_blip_not_an_episode() {
    // Only the first scheduled request hangs: the burst it starts gets answers.
    let d = detect("blip", false, 12, |first| {
        let at = |ms: i64| dispo::engine::time::rfc3339(first + ms);
        down("hang", json!({"from": at(-500), "until": at(500)}))
    })
    .await;
    assert!(d.fired.is_empty() && d.kpi.is_empty(), "no episode");
}

#[tokio::test]
async fn a_slow_but_answering_interface_is_no_episode() {
    // Every answer takes 2.5 s: longer than the burst interval, within the time-out. Bursts
    // start (more requests than the schedule's) and get answers.
    let d = detect("slow", false, 10, |_| {
        down("latency", json!({"latency_ms": 2500}))
    })
    .await;
    assert!(d.fired.is_empty() && d.kpi.is_empty(), "no episode");
    assert!(d.requests > 2, "the bursts sent requests: {}", d.requests);
}

#[tokio::test]
async fn a_monitor_killed_during_an_outage_cuts_it_and_the_restart_alerts_anew_as_kpi_counts() {
    use sqlx::Row;
    let sim = Sim::start();
    let dir = tmp("restart");
    let hook_port = support::free_port();
    let (hooks, _) = receiver(hook_port).await;
    // 503s for 14 s from now, then answers.
    sim.set_faults(json!({"fault": [{"establishment": "13807", "interface": "api", "kind": "error503", "for_s": 14}]}))
        .await;
    let cfg_text = format!(
        "[monitor]\nid = \"it-restart\"\ntimeout_s = 6\nburst_interval_s = 1\nheartbeat_s = 0.5\n{}\n\
         [alerts]\ncheck_interval_s = 3600\n[[alerts.webhook]]\nurl = \"http://127.0.0.1:{hook_port}/hook\"\n{FUNDS}",
        dispo::sim::pki::probe_establishment_toml("13807", sim.port, &sim.pki)
    );
    let cfg = dir.join("p.toml");
    std::fs::write(&cfg, cfg_text).unwrap();
    let db = dir.join("d.db");
    let notices = || {
        hooks
            .lock()
            .unwrap()
            .iter()
            .map(|(_, v)| v.clone())
            .collect::<Vec<Value>>()
    };
    // The first run alerts the outage, then dies by SIGKILL while it goes on.
    let mut first = support::spawn_run(&cfg, &db, &[]);
    let deadline = Instant::now() + Duration::from_secs(12);
    while notices().is_empty() {
        assert!(Instant::now() < deadline, "no alert from the first run");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    first.kill().unwrap();
    first.wait().unwrap();
    // The restarted monitor: the first episode is cut at the killed run's last heartbeat; the
    // failures that go on need five new ones; the bank answers again at 14 s.
    run_for(&cfg, &db, "12s").await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let got: Vec<(String, String, Option<i64>, String)> = notices()
        .iter()
        .filter(|v| v["kind"] == "interface_down")
        .map(|v| {
            (
                v["event"].as_str().unwrap().to_owned(),
                v["key"].as_str().unwrap().to_owned(),
                v["ends_at"].as_str().map(|t| {
                    chrono::DateTime::parse_from_rfc3339(t)
                        .unwrap()
                        .timestamp_millis()
                }),
                v["description"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let events: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(
        events,
        ["firing", "resolved", "firing", "resolved"],
        "{got:?}"
    );
    assert_eq!(got[0].1, got[1].1);
    assert_eq!(got[2].1, got[3].1);
    assert_ne!(got[0].1, got[2].1, "a new episode after the restart");
    assert!(got[1].3.contains("was interrupted"), "{}", got[1].3);
    assert!(got[3].3.contains("available again"), "{}", got[3].3);

    // kpi counts the same two episodes, the first cut where the killed run last beat.
    let out = Command::new(support::dispo_bin())
        .args(["kpi", "--format", "json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let k: Value = serde_json::from_slice(&out.stdout).unwrap();
    let eps: Vec<(String, i64, bool)> = k["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_owned(),
                chrono::DateTime::parse_from_rfc3339(e["end"].as_str().unwrap())
                    .unwrap()
                    .timestamp_millis(),
                e["cut"].as_bool().unwrap(),
            )
        })
        .collect();
    let store = dispo::store::Store::open(&db).await.unwrap();
    let first_run_last_beat: i64 =
        sqlx::query("SELECT last_beat FROM heartbeats ORDER BY id LIMIT 1")
            .fetch_one(store.pool())
            .await
            .unwrap()
            .get(0);
    assert_eq!(
        eps,
        [
            (got[0].1.clone(), got[1].2.unwrap(), true),
            (got[2].1.clone(), got[3].2.unwrap(), false)
        ],
        "alerts and kpi agree"
    );
    assert_eq!(eps[0].1, first_run_last_beat);
}

//! The daemon, as a bank runs it (issue 12): `dispo run` (the release binary) against the
//! embedded simulator.
//!
//! (a) Detection delay per outage shape at the shipped settings (30 s time-out, 5 s bursts, a
//! probe a minute, as `probes/banque-populaire.toml`): one establishment per shape (hang,
//! connection reset, TLS refused, connection refused, 503 INTS, a body trickling past the
//! time-out), all at once; from the first failed request (in the database) to the alert at a
//! local webhook. Target: at most time-out + 25 s = 55 s.
//! (b) Memory over a long run: about 1 000 probes a second over a database already holding
//! `DISPO_BENCH_ROWS` observations (default 10 M, a quarter up to today, so the periodic checks
//! have real weeks to read), resident memory at the start and the end, and the peak. Target:
//! under 100 MB. `DISPO_BENCH_SECS` sets (b)'s length (default 300 s: a compressed week; the
//! figure to watch is the growth between start and end).
//! Run: `cargo bench --bench daemon`.

#[path = "common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dispo::sim::{SimOptions, Simulator};

const BIN: &str = env!("CARGO_BIN_EXE_dispo");

/// A webhook that notes when each notice arrived: (arrival, payload).
type Seen = Arc<Mutex<Vec<(i64, serde_json::Value)>>>;

async fn webhook() -> (std::net::SocketAddr, Seen) {
    let seen: Seen = Default::default();
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/alerts",
        axum::routing::post(move |axum::Json(v): axum::Json<serde_json::Value>| {
            let s = s.clone();
            async move {
                let now = chrono::Utc::now().timestamp_millis();
                s.lock().unwrap().push((now, v));
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (addr, seen)
}

fn rss_kb(pid: u32, key: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

async fn query_i64(db: &Path, sql: &'static str, bind: Vec<String>) -> Vec<(String, i64)> {
    use sqlx::Row;
    let store = dispo::store::Store::open(db).await.unwrap();
    let mut q = sqlx::query(sql);
    for b in bind {
        q = q.bind(b);
    }
    q.fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
        .collect()
}

#[tokio::main]
async fn main() {
    dispo::install_crypto_provider();
    let dir = std::env::temp_dir().join(format!("dispo-bench-daemon-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // DISPO_BENCH_PARTS=a or =b runs one part only.
    let parts = std::env::var("DISPO_BENCH_PARTS").unwrap_or_else(|_| "ab".into());
    if parts.contains('a') {
        detection(&dir).await;
    }
    if parts.contains('b') {
        memory(&dir).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// (a) One shape per establishment, all starting 65 s into the run.
async fn detection(dir: &Path) {
    let shapes: [(&str, &str, serde_json::Value); 6] = [
        ("13807", "hang", serde_json::json!({"kind": "hang"})),
        ("10807", "reset", serde_json::json!({"kind": "reset"})),
        (
            "16807",
            "TLS refused",
            serde_json::json!({"kind": "refuse"}),
        ),
        ("17807", "503 INTS", serde_json::json!({"kind": "error503"})),
        (
            "18707",
            "slow body (past the time-out)",
            serde_json::json!({"kind": "slow_body", "body_ms": 40_000}),
        ),
        ("10207", "connection refused", serde_json::Value::Null),
    ];
    let after_s = 65.0;
    let faults: Vec<serde_json::Value> = shapes
        .iter()
        .filter(|s| !s.2.is_null())
        .map(|(code, _, f)| {
            let mut f = f.clone();
            f["establishment"] = (*code).into();
            f["interface"] = "api".into();
            f["after_s"] = after_s.into();
            f
        })
        .collect();
    let sim = Simulator::start(SimOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: None,
        pki_dir: dir.join("pki"),
        faults: serde_json::from_value(serde_json::json!({ "fault": faults })).unwrap(),
    })
    .await
    .unwrap();
    let (hook, seen) = webhook().await;
    let port = sim.api_addr.port();
    // Connection refused: 10207 points at a port nothing listens on, from the start (its first
    // failed request is the reference all the same).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = format!(
        "[monitor]\nid = \"bench\"\ntimeout_s = 30\nburst_interval_s = 5\nheartbeat_s = 5\n\
         [alerts]\ncheck_interval_s = 3600\n[[alerts.webhook]]\nurl = \"http://{hook}/alerts\"\n"
    );
    for (code, _, _) in &shapes {
        let p = if *code == "10207" { closed } else { port };
        c += &dispo::sim::pki::probe_establishment_toml(code, p, &sim.pki.dir);
    }
    c += "[[probe]]\nname = \"cbpii\"\nstep = \"funds-confirmation\"\nschedule = \"* * * * *\"\n\
          stet = \"1.4.2\"\niban = \"FR7613807008043001965405255\"\namount = \"10.00\"\nexpect = true\n";
    let cfg = dir.join("detect.toml");
    std::fs::write(&cfg, c).unwrap();
    let db = dir.join("detect.db");
    // A probe a minute: the first failed request comes up to a minute after the faults start,
    // and the alert at most 55 s after it.
    let secs = after_s + 150.0;
    let (cfg2, db2) = (cfg.clone(), db.clone());
    let _ = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["run", "--config"])
            .arg(&cfg2)
            .arg("--db")
            .arg(&db2)
            .args(["--duration", &format!("{secs}s")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
    })
    .await;
    sim.shutdown().await;

    let firsts = query_i64(
        &db,
        "SELECT establishment, MIN(received_at) FROM observations \
         WHERE interface = 'api' AND outcome IN ('no_reply', 'aspsp_error') GROUP BY 1",
        vec![],
    )
    .await;
    let alerts = seen.lock().unwrap().clone();
    println!("\ndaemon (a): shipped settings, 30 s time-out, 5 s bursts, a probe a minute");
    for (code, shape, _) in &shapes {
        let first = firsts.iter().find(|(e, _)| e == code).map(|x| x.1);
        let alert = alerts
            .iter()
            .find(|(_, v)| {
                v["event"] == "firing"
                    && v["kind"] == "interface_down"
                    && v["establishment"] == *code
            })
            .map(|x| x.0);
        let (value, ok) = match (first, alert) {
            (Some(f), Some(a)) => {
                let d = (a - f) as f64 / 1000.0;
                (
                    format!("{d:.1} s"),
                    if d <= 55.0 { "met" } else { "MISSED" },
                )
            }
            (None, _) => ("no failure recorded".into(), "MISSED"),
            (_, None) => ("no alert".into(), "MISSED"),
        };
        common::row(
            &format!("detection delay, {shape} (first failed request to alert)"),
            &value,
            "",
            "",
            &format!("<= 55 s: {ok}"),
        );
    }
}

/// (b) About 1 000 probes a second for `DISPO_BENCH_SECS` over a database of
/// `DISPO_BENCH_ROWS` observations.
async fn memory(dir: &Path) {
    let rows = common::rows(10_000_000);
    let secs: f64 = std::env::var("DISPO_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300.0);
    let db = dir.join("mem.db");
    let today = chrono::Utc::now().date_naive();
    let from = today - chrono::Duration::days(91);
    let t = Instant::now();
    let st = if rows == 0 {
        std::process::ExitStatus::default()
    } else {
        Command::new(BIN)
            .args(["synth", "--db"])
            .arg(&db)
            .args(["--from", &from.to_string(), "--to", &today.to_string()])
            .args(["--observations", &rows.to_string()])
            .stdout(Stdio::null())
            .status()
            .unwrap()
    };
    assert!(st.success(), "dispo synth failed");
    eprintln!(
        "{rows} synthetic rows in {:.0} s",
        t.elapsed().as_secs_f64()
    );

    let sim = Simulator::start(SimOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: None,
        pki_dir: dir.join("pki-mem"),
        faults: Default::default(),
    })
    .await
    .unwrap();
    let (hook, _) = webhook().await;
    let codes = dispo::domain::SEED_ESTABLISHMENT_CODES;
    let per = 1000usize.div_ceil(codes.len());
    // The periodic checks (weekly watch, fallback use, expiries) every minute by default:
    // they read the stored weeks. DISPO_BENCH_CHECK_S changes it (to tell their share).
    let check_s: f64 = std::env::var("DISPO_BENCH_CHECK_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60.0);
    let mut c = format!(
        "[monitor]\nid = \"mem\"\ntimeout_s = 30\nburst_interval_s = 5\nheartbeat_s = 5\n\
         [alerts]\ncheck_interval_s = {check_s}\n[[alerts.webhook]]\nurl = \"http://{hook}/alerts\"\n"
    );
    for code in codes {
        c += &dispo::sim::pki::probe_establishment_toml(code, sim.api_addr.port(), &sim.pki.dir);
    }
    for i in 0..per {
        c += &format!(
            "[[probe]]\nname = \"p{i}\"\nstep = \"funds-confirmation\"\nschedule = \"* * * * * *\"\n\
             stet = \"1.4.2\"\niban = \"FR7613807008043001965405255\"\namount = \"10.00\"\nexpect = true\n"
        );
    }
    let cfg = dir.join("mem.toml");
    std::fs::write(&cfg, c).unwrap();
    let before: i64 = query_i64(&db, "SELECT 'n', COUNT(*) FROM observations", vec![])
        .await
        .first()
        .map_or(0, |x| x.1);
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&cfg)
        .arg("--db")
        .arg(&db)
        .args(["--duration", &format!("{secs}s")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let start_mb = rss_kb(pid, "VmRSS:") / 1024.0;
    let mut end_mb = start_mb;
    let mut peak_mb = 0.0f64;
    let t = Instant::now();
    while t.elapsed().as_secs_f64() < secs - 25.0 {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let r = rss_kb(pid, "VmRSS:") / 1024.0;
        if r > 0.0 {
            end_mb = r;
        }
        peak_mb = peak_mb.max(rss_kb(pid, "VmHWM:") / 1024.0);
    }
    let _ = tokio::task::spawn_blocking(move || child.wait()).await;
    sim.shutdown().await;
    let after: i64 = query_i64(&db, "SELECT 'n', COUNT(*) FROM observations", vec![])
        .await
        .first()
        .map_or(0, |x| x.1);
    let rate = (after - before) as f64 / secs;
    println!(
        "\ndaemon (b): {} jobs a second for {secs:.0} s over {rows} stored observations",
        per * codes.len()
    );
    common::row(
        "observations recorded per second (funds confirmations and their tokens)",
        &format!("{rate:.0}"),
        &format!("{} scheduled", per * codes.len()),
        "",
        ">= 1 000 /s",
    );
    common::row(
        "dispo run resident memory, 20 s in / at the end / peak",
        &format!("{start_mb:.0} / {end_mb:.0} / {peak_mb:.0} MB"),
        "",
        "",
        "< 100 MB",
    );
}

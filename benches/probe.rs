//! Probe benchmarks. (a) Latency accuracy: the simulator adds a fixed 200 ms to one
//! establishment; the median of |recorded − (200 ms + the no-delay baseline median)| over its
//! funds confirmations (target < 1 ms). (b) Scheduler: 1 000 probe schedules firing every second
//! (the daemon's loop: cron's next instant, then a tokio sleep), start jitter p99 (target < 10 ms)
//! and the process's peak RSS (target < 100 MB).
//! Run: `cargo bench --bench probe` (`DISPO_BENCH_ROWS=20` samples for a quick run).

#[path = "common/mod.rs"]
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dispo::sim::{SimOptions, Simulator};

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    dispo::install_crypto_provider();
    let n = common::rows(200) as usize;
    let dir = std::env::temp_dir().join(format!("dispo-bench-probe-{}", std::process::id()));
    let plan = serde_json::from_value(serde_json::json!({"fault": [{"establishment": "13807", "interface": "api", "kind": "latency", "latency_ms": 200}]})).unwrap();
    let sim = Simulator::start(SimOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: None,
        pki_dir: dir.join("pki"),
        faults: plan,
    })
    .await
    .unwrap();
    let port = sim.api_addr.port();
    let mut cfg = String::from("[monitor]\ntimeout_s = 10\n");
    for code in ["13807", "10807"] {
        cfg += &dispo::sim::pki::probe_establishment_toml(code, port, &sim.pki.dir);
    }
    cfg += "[[probe]]\nname = \"f\"\nstep = \"funds-confirmation\"\nschedule = \"* * * * * *\"\nstet = \"1.4.2\"\niban = \"FR7613807008043001965405255\"\n";
    let path = dir.join("p.toml");
    std::fs::write(&path, cfg).unwrap();
    let config = dispo::config::load(&path).unwrap();
    let probe = &config.probes[0];
    let lat = |code: &str| {
        let t = dispo::probe::steps::Target::new(
            config
                .establishments
                .iter()
                .find(|e| e.code.as_str() == code)
                .unwrap()
                .clone(),
            config.monitor.vantage.clone(),
            false,
            config.monitor.max_body_bytes,
        )
        .unwrap();
        let probe = probe.clone();
        async move {
            let mut v = Vec::new();
            for _ in 0..n + 1 {
                let r = dispo::probe::steps::run(&t, &probe, Duration::from_secs(10)).await;
                if let Some(o) = r
                    .observations
                    .last()
                    .filter(|o| o.obs.service.as_str() == "cbpii")
                {
                    v.push(o.obs.latency_ms.unwrap_or(f64::NAN));
                }
            }
            v
        }
    };
    let mut base = lat("10807").await;
    let delayed = lat("13807").await;
    let b = median(&mut base);
    let mut err: Vec<f64> = delayed.iter().map(|x| (x - (200.0 + b)).abs()).collect();
    let e = median(&mut err);
    sim.shutdown().await;

    // (b) the scheduler loop.
    let jitters: Arc<Mutex<Vec<f64>>> = Default::default();
    let secs = 5i64;
    let start = chrono::Utc::now() + chrono::Duration::seconds(1);
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let j = jitters.clone();
        tasks.push(tokio::spawn(async move {
            let s = dispo::config::cron::parse("* * * * * *").unwrap();
            for next in s.after_owned(start).take(secs as usize) {
                let wait = (next - chrono::Utc::now()).to_std().unwrap_or_default();
                tokio::time::sleep(wait).await;
                let late =
                    (chrono::Utc::now() - next).num_microseconds().unwrap_or(0) as f64 / 1000.0;
                j.lock().unwrap().push(late);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut j = jitters.lock().unwrap().clone();
    j.sort_by(f64::total_cmp);
    let p99 = j[(j.len() as f64 * 0.99) as usize - 1];
    let rate = j.len() as f64 / secs as f64;
    let rss = common::peak_rss_mb();
    println!("\nprobe: {n} funds confirmations per establishment; 1000 schedules for {secs} s");
    common::row(
        "latency accuracy: median |recorded − (200 ms + baseline)|",
        &format!("{e:.3} ms"),
        &format!("{b:.2} ms (no-delay median)"),
        "",
        "< 1 ms",
    );
    common::row(
        "scheduler: probes started per second",
        &format!("{rate:.0}"),
        "",
        "",
        ">= 1000 /s",
    );
    common::row(
        "scheduler: p99 start jitter",
        &format!("{p99:.2} ms"),
        "",
        "",
        "< 10 ms",
    );
    common::row(
        "probe process peak RSS",
        &format!("{rss:.0} MB"),
        "",
        "",
        "< 100 MB",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

//! Report benchmark: the quarterly publication of N observations (default 10 million, a quarter,
//! 13 establishments), time and peak RSS (targets: under 15 s on 2 cores, RSS < 2 GB). The
//! baseline in the same run is the time to read those rows back from SQLite, which every report
//! pays. Run: `cargo bench --bench report` (`DISPO_BENCH_ROWS=1000000` for a quick run).

#[path = "common/mod.rs"]
mod common;

use std::time::Instant;

use dispo::engine::{Period, Settings, time};
use dispo::report::{Lang, ReportRequest};
use dispo::store::Store;
use dispo::synth::{Synth, SynthSpec};

#[tokio::main]
async fn main() {
    dispo::install_crypto_provider();
    let n = common::rows(10_000_000);
    let dir = std::env::temp_dir().join(format!("dispo-bench-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tz = chrono_tz::Europe::Paris;
    let period = Period {
        from: "2024-07-01".parse().unwrap(),
        to: "2024-10-01".parse().unwrap(),
    };
    let mut ests: Vec<dispo::domain::EstablishmentCode> = dispo::domain::SEED_ESTABLISHMENT_CODES
        .iter()
        .map(|c| c.parse().unwrap())
        .collect();
    ests.extend(["10548", "40978"].map(|c| c.parse::<dispo::domain::EstablishmentCode>().unwrap()));
    let store = Store::open(&dir.join("q.db")).await.unwrap();
    let (from_ms, to_ms) = (
        time::day_start_ms(tz, period.from),
        time::day_start_ms(tz, period.to),
    );
    let spec_establishments = ests.clone();
    let spec = SynthSpec {
        observations: n,
        from_ms,
        to_ms,
        establishments: ests,
        seed: 3,
    };
    let mut batch = Vec::with_capacity(50_000);
    for o in Synth::new(spec) {
        batch.push(o);
        if batch.len() == 50_000 {
            store
                .insert_observations(std::mem::replace(&mut batch, Vec::with_capacity(50_000)))
                .await
                .unwrap();
        }
    }
    store.insert_observations(batch).await.unwrap();
    // Covered as `dispo synth` records it, so the publication counts every day (not n.d.).
    let series: Vec<_> = spec_establishments
        .iter()
        .flat_map(|e| {
            [
                dispo::domain::Interface::Api,
                dispo::domain::Interface::Fallback,
                dispo::domain::Interface::PsuWeb,
            ]
            .map(|i| (*e, i))
        })
        .collect();
    store
        .record_monitor_run("synth", &series, from_ms, to_ms, "synthetic")
        .await
        .unwrap();
    drop(store);
    let store = Store::open(&dir.join("q.db")).await.unwrap();
    let rss0 = common::peak_rss_mb();
    common::reset_peak_rss();
    let t = Instant::now();
    let req = ReportRequest {
        period,
        label: "2024-Q3".into(),
        establishments: vec![],
        lang: Lang::Fr,
        out: dir.join("out"),
        settings: Settings::default(),
    };
    let out = dispo::report::generate(&store, &req).await.unwrap();
    let secs = t.elapsed().as_secs_f64();
    let rss = common::peak_rss_mb();
    // Baseline: SQLite's own shell reading the same columns of every row (nothing kept).
    let t = Instant::now();
    let shell = std::process::Command::new("sqlite3")
        .arg(dir.join("q.db"))
        .arg(
            "SELECT received_at, establishment, interface, service, source, tpp, status, \
             latency_ms, error_code, request_id, outcome, synthetic FROM observations \
             ORDER BY received_at",
        )
        .stdout(std::process::Stdio::null())
        .status();
    let read = t.elapsed().as_secs_f64();
    let read_label = match shell {
        Ok(s) if s.success() => format!("{read:.1} s (sqlite3 shell reading the rows)"),
        _ => "sqlite3 shell not available".to_owned(),
    };
    let rows = out.observations;
    println!("\nreport: {rows} observations, {} files", out.files.len());
    common::row(
        &format!("quarterly publication of {n} observations"),
        &format!("{secs:.1} s"),
        &read_label,
        &format!("{:.2}", secs / read.max(1e-9)),
        "< 15 s",
    );
    common::row(
        "report peak RSS",
        &format!("{rss:.0} MB (set-up before it: {rss0:.0})"),
        "",
        "",
        "< 2048 MB",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

//! Engine benchmark: the daily figures of N synthetic observations (default 10 million, a
//! quarter, the eleven establishments) counted from the store as they are read (what `kpi` and
//! `report` do: `period::count`), time and peak RSS, beside DuckDB computing the same daily
//! downtime (episodes by the same rule, in SQL) from the same rows in the same run. DuckDB's
//! time is its query alone over a table already loaded; ours includes reading SQLite.
//! Run: `cargo bench --bench engine` (`DISPO_BENCH_ROWS=1000000` for a quick run).
//! `DISPO_BENCH_DB=/tmp/q.db` keeps the synthetic database there (or reuses it if present:
//! then it must hold what `dispo synth --observations N --from 2024-07-01 --to 2024-10-01
//! --seed 7 --db /tmp/q.db` writes), e.g. to time `dispo report` on it afterwards.

#[path = "common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::time::Instant;

use dispo::domain::Interface;
use dispo::engine::Settings;
use dispo::store::Store;
use dispo::synth::Synth;

#[tokio::main]
async fn main() {
    let n = common::rows(10_000_000);
    let (period, spec) = common::quarter(n);
    let dir = std::env::temp_dir().join(format!("dispo-bench-engine-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kept = std::env::var_os("DISPO_BENCH_DB").map(PathBuf::from);
    let db = kept.clone().unwrap_or_else(|| dir.join("q.db"));
    if !db.exists() {
        let t = Instant::now();
        common::write_db(db.as_path(), &spec).await;
        eprintln!(
            "synthetic database: {n} rows in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    let store = Store::open(&db).await.expect("open the database");

    common::reset_peak_rss();
    let rss_before = common::peak_rss_mb();
    let t = Instant::now();
    let counted = dispo::period::count(
        &store,
        period,
        &Settings::default(),
        &[],
        chrono::Utc::now().timestamp_millis(),
    )
    .await
    .expect("count");
    let ours = t.elapsed().as_secs_f64();
    let rss = common::peak_rss_mb();
    drop(store);
    let k = &counted.kpis;
    let our_down: f64 = k
        .days
        .iter()
        .filter(|d| d.interface == Interface::Api)
        .map(|d| d.downtime_s)
        .sum();

    // The same rows as a CSV for DuckDB (the generator is deterministic).
    let csv = dir.join("obs.csv");
    dispo::import::csv_rows::write_csv(&csv, Synth::new(spec)).expect("write the CSV");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/duckdb_daily.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(&csv)
        .arg(dir.join("duck.db"))
        .output();
    let (duck, duck_down) = match out {
        Ok(o) if o.status.success() => {
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
            (v["seconds"].as_f64(), v["api_downtime_s"].as_f64())
        }
        Ok(o) => {
            eprintln!(
                "DuckDB baseline failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            (None, None)
        }
        Err(e) => {
            eprintln!("DuckDB baseline not run: {e}");
            (None, None)
        }
    };
    println!(
        "\nengine: {n} observations ({} read), {} day rows, {} episodes",
        counted.read,
        k.days.len(),
        k.episodes.len()
    );
    let d = duck
        .map(|d| format!("{d:.2} s (DuckDB)"))
        .unwrap_or_else(|| "not run".into());
    let ratio = duck.map(|d| format!("{:.2}", ours / d)).unwrap_or_default();
    common::row(
        &format!("daily figures of {n} observations, read from the store as they stream"),
        &format!("{ours:.2} s"),
        &d,
        &ratio,
        "< 60 s at 100 M; ratio <= 1 (no slower than DuckDB)",
    );
    common::row(
        "engine peak RSS (before / while counting)",
        &format!("{rss_before:.0} / {rss:.0} MB"),
        "",
        "",
        "< 1024 MB",
    );
    common::row(
        "total API downtime (cross-check)",
        &format!("{our_down:.1} s"),
        &duck_down
            .map(|d| format!("{d:.1} s (DuckDB)"))
            .unwrap_or_default(),
        &duck_down
            .map(|d| format!("{:.4}", our_down / d.max(1e-9)))
            .unwrap_or_default(),
        "1.0000",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

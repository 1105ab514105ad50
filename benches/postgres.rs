//! The store on PostgreSQL (issue 15, part 2), on a throw-away cluster of this machine
//! (PostgreSQL's default settings, started with `initdb`/`postgres` like the tests):
//!
//! 1. Import: N rows of an observation CSV (default 1 M; `DISPO_BENCH_ROWS`) through
//!    `dispo import`'s library path into PostgreSQL (`COPY` into a staging table, then
//!    `INSERT ... ON CONFLICT DO NOTHING`), beside PostgreSQL's own `psql \copy` of the same CSV
//!    into a plain table (all text, no index): the ratio is what parsing, checking and
//!    idempotence cost over the server's raw load. The same import into SQLite, for scale.
//! 2. Engine: `period::count` (what `kpi` and `report` do) over M rows (default 10 M, a
//!    quarter; `DISPO_BENCH_ENGINE_ROWS`) streamed from PostgreSQL, beside the same from SQLite
//!    in the same run; the figures must be identical.
//!
//! Run: `cargo bench --bench postgres` (`DISPO_BENCH_ROWS=200000 DISPO_BENCH_ENGINE_ROWS=1000000`
//! for a quick run).

#[path = "common/mod.rs"]
mod common;

use std::path::Path;
use std::time::Instant;

use dispo::engine::{Period, Settings, time};
use dispo::import::{self, Format, ImportOptions, Input};
use dispo::store::pg_cluster::{Cluster, Durability};
use dispo::store::{Store, Target};
use dispo::synth::Synth;
use indicatif::ProgressBar;

fn env_rows(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.replace('_', "").parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    dispo::install_crypto_provider();
    let cluster = tokio::task::spawn_blocking(|| Cluster::start(Durability::Default))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = std::env::temp_dir().join(format!("dispo-bench-pg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // 1. Import.
    let n = env_rows("DISPO_BENCH_ROWS", 1_000_000);
    let csv = dir.join("obs.csv");
    dispo::import::csv_rows::write_csv(&csv, Synth::new(common::quarter(n).1))
        .expect("write the CSV");
    let pg_url = cluster.fresh_db("import");
    let pg_import = import_into(&pg_url, &csv, &dir, n).await;
    let sqlite_db = dir.join("import.db");
    let sqlite_import = import_into(sqlite_db.to_str().unwrap(), &csv, &dir, n).await;
    let plain = psql_copy(&cluster, &csv);
    common::row(
        &format!("import of {n} rows into PostgreSQL (dispo import: COPY + ON CONFLICT)"),
        &format!("{pg_import:.2} s ({:.0} rows/s)", n as f64 / pg_import),
        &format!("{plain:.2} s (psql \\copy, plain table)"),
        &format!("{:.2}", pg_import / plain),
        "",
    );
    common::row(
        &format!("import of {n} rows into SQLite (same run, for scale)"),
        &format!(
            "{sqlite_import:.2} s ({:.0} rows/s)",
            n as f64 / sqlite_import
        ),
        &format!("{pg_import:.2} s (PostgreSQL)"),
        &format!("{:.2}", sqlite_import / pg_import),
        "",
    );

    // 2. The engine reading a quarter.
    let m = env_rows("DISPO_BENCH_ENGINE_ROWS", 10_000_000);
    let (period, spec) = common::quarter(m);
    let pg_url = cluster.fresh_db("engine");
    let t = Instant::now();
    common::write_db(pg_url.parse::<Target>().unwrap(), &spec).await;
    let pg_write = t.elapsed().as_secs_f64();
    let sqlite_db = dir.join("engine.db");
    let t = Instant::now();
    common::write_db(sqlite_db.as_path(), &spec).await;
    let sqlite_write = t.elapsed().as_secs_f64();
    eprintln!("{m} rows written: PostgreSQL {pg_write:.1} s, SQLite {sqlite_write:.1} s");
    let (pg_secs, pg_kpis, pg_rss) = count(&pg_url, period).await;
    let (sqlite_secs, sqlite_kpis, sqlite_rss) = count(sqlite_db.to_str().unwrap(), period).await;
    assert_eq!(
        pg_kpis, sqlite_kpis,
        "the figures from PostgreSQL and from SQLite differ"
    );
    common::row(
        &format!("engine (period::count) over {m} rows streamed from PostgreSQL"),
        &format!("{pg_secs:.2} s, peak RSS {pg_rss:.0} MB"),
        &format!("{sqlite_secs:.2} s from SQLite, peak RSS {sqlite_rss:.0} MB"),
        &format!("{:.2}", pg_secs / sqlite_secs),
        "same figures (checked)",
    );
    common::row(
        &format!("writing {m} rows in batches of 100 000 (Store::insert_observations)"),
        &format!("{pg_write:.1} s (PostgreSQL)"),
        &format!("{sqlite_write:.1} s (SQLite)"),
        &format!("{:.2}", pg_write / sqlite_write),
        "",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

async fn import_into(db: &str, csv: &Path, dir: &Path, n: u64) -> f64 {
    let store = Store::open(db.parse::<Target>().unwrap())
        .await
        .expect("open store");
    let opts = ImportOptions {
        format: Format::Csv,
        mapping: None,
        batch_rows: import::DEFAULT_BATCH_ROWS,
        rejects_path: dir.join("rejects.jsonl"),
        show_rejects: 0,
        interrupted: Default::default(),
    };
    let t = Instant::now();
    let s = import::import(
        &store,
        &[Input::File(csv.to_owned())],
        &opts,
        &ProgressBar::hidden(),
    )
    .await
    .expect("import");
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(s.added(), n, "every generated row is new");
    store.close().await;
    secs
}

/// `psql \copy` of the CSV into a plain table of text columns (no index, no key).
fn psql_copy(cluster: &Cluster, csv: &Path) -> f64 {
    let url = cluster.fresh_db("plain");
    let header = std::fs::read_to_string(csv)
        .ok()
        .and_then(|t| t.lines().next().map(str::to_owned))
        .unwrap();
    let cols: Vec<String> = header.split(',').map(|c| format!("{c} TEXT")).collect();
    let psql = |sql: &str| {
        let out = std::process::Command::new(cluster.bin().join("psql"))
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", &url, "-c", sql])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    psql(&format!("CREATE TABLE plain ({})", cols.join(", ")));
    let t = Instant::now();
    psql(&format!(
        "\\copy plain FROM '{}' WITH (FORMAT csv, HEADER)",
        csv.display()
    ));
    t.elapsed().as_secs_f64()
}

/// `period::count` over the period: seconds, the figures as JSON, peak RSS (MB).
async fn count(db: &str, period: Period) -> (f64, String, f64) {
    let store = Store::open(db.parse::<Target>().unwrap())
        .await
        .expect("open the database");
    common::reset_peak_rss();
    let t = Instant::now();
    let counted = dispo::period::count(
        &store,
        period,
        &Settings::default(),
        &[],
        // A fixed "now" after the period: both counts see the same (stopped) coverage.
        time::day_start_ms(chrono_tz::Europe::Paris, "2025-01-01".parse().unwrap()),
    )
    .await
    .expect("count");
    let secs = t.elapsed().as_secs_f64();
    let rss = common::peak_rss_mb();
    let json = serde_json::to_string(&dispo::engine::json::to_json(&counted.kpis)).unwrap();
    store.close().await;
    (secs, json, rss)
}

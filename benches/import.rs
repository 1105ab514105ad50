//! Import benchmark: rows per second from an observation CSV into SQLite through `dispo import`'s
//! library path (parse, batch, `Store::insert_observations`), and the process's peak RSS
//! (VmHWM), beside a baseline measured in the same run: SQLite's own bulk load of the same file
//! (`sqlite3` CLI `.import` into a plain table without indexes, in a child process).
//!
//! Run: `cargo bench --bench import` (10 million rows by default; `DISPO_BENCH_ROWS=200000` for
//! a quick run; `DISPO_BENCH_DIR` to choose where the CSV and databases go). Targets: at least
//! 500 000 rows/s, peak RSS under 200 MB.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dispo::import::{self, Format, ImportOptions, Input};
use dispo::store::Store;
use indicatif::ProgressBar;

const TARGET_ROWS_PER_S: f64 = 500_000.0;
const TARGET_RSS_MB: f64 = 200.0;

fn main() {
    dispo::install_crypto_provider();
    let rows: u64 = std::env::var("DISPO_BENCH_ROWS")
        .ok()
        .and_then(|s| s.replace('_', "").parse().ok())
        .unwrap_or(10_000_000);
    let base = std::env::var_os("DISPO_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("dispo-bench-import-{}", std::process::id()));
    std::fs::create_dir_all(&base).expect("bench directory");
    let csv = base.join("observations.csv");

    let t = Instant::now();
    generate(&csv, rows);
    let size = std::fs::metadata(&csv).map(|m| m.len()).unwrap_or(0);
    println!(
        "generated {rows} rows ({:.0} MB) in {:.1} s: {}",
        size as f64 / 1e6,
        t.elapsed().as_secs_f64(),
        csv.display()
    );
    let rss_before = vm_hwm_mb();

    // dispo import, in this process.
    let db = base.join("dispo.db");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (secs, added) = rt.block_on(async {
        let store = Store::open(&db).await.expect("open store");
        let opts = ImportOptions {
            format: Format::Csv,
            mapping: None,
            batch_rows: import::DEFAULT_BATCH_ROWS,
            rejects_path: base.join("rejects.jsonl"),
            show_rejects: 0,
            interrupted: Default::default(),
        };
        let t = Instant::now();
        let s = import::import(
            &store,
            &[Input::File(csv.clone())],
            &opts,
            &ProgressBar::hidden(),
        )
        .await
        .expect("import");
        (t.elapsed().as_secs_f64(), s.added())
    });
    assert_eq!(added, rows, "every generated row is new");
    let ours = rows as f64 / secs;
    let rss = vm_hwm_mb();

    // Baselines: the sqlite3 CLI's .import of the same file into a plain table, and the same
    // followed by INSERT OR IGNORE into dispo's own schema (same indexes): SQLite's ceiling.
    let baseline = sqlite_import(&base.join("baseline.db"), &csv, false);
    let baseline_indexed = sqlite_import(&base.join("baseline-indexed.db"), &csv, true);

    println!();
    println!("| import of {rows} rows | seconds | rows/s | peak RSS MB |");
    println!("|---|---|---|---|");
    println!(
        "| dispo import (parse + INSERT OR IGNORE, clustered on the identity key, batches of {}) | {secs:.2} | {ours:.0} | {rss:.0} (before import {rss_before:.0}) |",
        import::DEFAULT_BATCH_ROWS
    );
    for (label, b) in [
        ("sqlite3 .import into a plain table (no index)", baseline),
        (
            "sqlite3 .import, then INSERT OR IGNORE into dispo's schema",
            baseline_indexed,
        ),
    ] {
        match b {
            Some((s, peak)) => println!(
                "| {label} | {s:.2} | {:.0} | {} |",
                rows as f64 / s,
                peak.map(|p| format!("{p:.0}"))
                    .unwrap_or_else(|| "?".into())
            ),
            None => println!("| {label} | not run: no sqlite3 CLI on PATH | | |"),
        }
    }
    println!();
    println!(
        "targets: >= {TARGET_ROWS_PER_S:.0} rows/s: {}; peak RSS < {TARGET_RSS_MB:.0} MB: {}",
        if ours >= TARGET_ROWS_PER_S {
            "met"
        } else {
            "MISSED"
        },
        if rss < TARGET_RSS_MB { "met" } else { "MISSED" }
    );
    let _ = std::fs::remove_dir_all(&base);
}

/// Deterministic rows: 11 establishments, the four interfaces, a few services, TPPs, statuses,
/// and request ids shaped as the UUIDs gateways log (long enough to be stored off the inline
/// small-string buffer, as in production).
fn generate(path: &Path, rows: u64) {
    const ESTS: [&str; 11] = [
        "10807", "16807", "10207", "18707", "13507", "16607", "10907", "14707", "17807", "13807",
        "14607",
    ];
    const IFACES: [&str; 4] = ["api", "api", "fallback", "psu_web"];
    const SERVICES: [&str; 3] = ["cbpii", "token", "aisp"];
    let f = std::fs::File::create(path).expect("create csv");
    let mut w = BufWriter::with_capacity(1 << 20, f);
    w.write_all(
        b"received_at,establishment,interface,service,source,tpp,status,latency_ms,error_code,request_id\n",
    )
    .unwrap();
    // 2024-07-01T00:00:00Z, one row every 10 ms.
    let t0 = chrono::DateTime::from_timestamp_millis(1_719_792_000_000).unwrap();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..rows {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let t = t0 + chrono::Duration::milliseconds(i as i64 * 10);
        let (status, code) = match x % 100 {
            0 => ("", ""),
            1 => ("503", "INTS"),
            2..=4 => ("400", "AC01"),
            _ => ("200", ""),
        };
        let latency = if status.is_empty() {
            String::new()
        } else {
            format!("{}.{}", 20 + x % 400, x % 10)
        };
        writeln!(
            w,
            "{},{},{},{},log,PSDFR-ACPR-{:05},{status},{latency},{code},{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            t.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            ESTS[(x >> 8) as usize % ESTS.len()],
            IFACES[(x >> 16) as usize % IFACES.len()],
            SERVICES[(x >> 24) as usize % SERVICES.len()],
            (x >> 32) % 40,
            // A version-4 UUID, as X-Request-ID is in STET: 36 characters, random.
            x as u32,
            (x >> 32) as u16,
            (x >> 48) & 0xfff,
            0x8000 | (i as u16 & 0x3fff),
            i & 0xffff_ffff_ffff,
        )
        .unwrap();
    }
    w.flush().unwrap();
}

/// Peak resident set size of this process, MB.
fn vm_hwm_mb() -> f64 {
    vm_hwm_of("self").unwrap_or(0.0)
}

fn vm_hwm_of(pid: &str) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Runs `sqlite3 db` with `.import` (then, when `indexed`, an INSERT OR IGNORE into dispo's
/// schema); returns seconds and the child's peak RSS (polled).
fn sqlite_import(db: &Path, csv: &Path, indexed: bool) -> Option<(f64, Option<f64>)> {
    let mut script = format!(
        "PRAGMA journal_mode=WAL;\nPRAGMA synchronous=NORMAL;\n\
         CREATE TABLE obs (received_at TEXT, establishment TEXT, interface TEXT, service TEXT, \
         source TEXT, tpp TEXT, status INTEGER, latency_ms REAL, error_code TEXT, request_id TEXT);\n\
         .mode csv\n.import --skip 1 '{}' obs\n",
        csv.display()
    );
    if indexed {
        script.push_str(include_str!("../migrations/0001_observations.sql"));
        script.push_str(include_str!("../migrations/0004_observations_indexes.sql"));
        script.push_str(include_str!(
            "../migrations/0005_observations_clustered.sql"
        ));
        script.push_str(
            "\nINSERT OR IGNORE INTO observations (received_at, establishment, interface, service, \
             source, tpp, status, latency_ms, error_code, request_id, outcome) \
             SELECT CAST(strftime('%s', received_at) AS INTEGER) * 1000, establishment, interface, \
             service, source, NULLIF(tpp, ''), NULLIF(status, ''), NULLIF(latency_ms, ''), \
             NULLIF(error_code, ''), request_id, 'ok' FROM obs;\n",
        );
    }
    let t = Instant::now();
    let mut child = Command::new("sqlite3")
        .arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .ok()?;
    {
        let mut si = child.stdin.take()?;
        si.write_all(script.as_bytes()).ok()?;
    }
    let pid = child.id().to_string();
    let mut peak = None;
    loop {
        if let Some(p) = vm_hwm_of(&pid) {
            peak = Some(p);
        }
        match child.try_wait() {
            Ok(Some(st)) if st.success() => break,
            Ok(Some(_)) | Err(_) => return None,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    Some((t.elapsed().as_secs_f64(), peak))
}

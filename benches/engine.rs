//! Engine benchmark: the daily figures of N observations (default 10 million, a quarter, the
//! eleven establishments), time and peak RSS, beside DuckDB computing the same daily downtime
//! (episodes by the same rule, in SQL) from the same data in the same run.
//! Run: `cargo bench --bench engine` (`DISPO_BENCH_ROWS=1000000` for a quick run).

#[path = "common/mod.rs"]
mod common;

use std::time::Instant;

use dispo::domain::SEED_ESTABLISHMENT_CODES;
use dispo::engine::{self, EngineInput, Period, Settings, time};
use dispo::synth::{Synth, SynthSpec};

fn main() {
    let n = common::rows(10_000_000);
    let tz = chrono_tz::Europe::Paris;
    let period = Period {
        from: "2024-07-01".parse().unwrap(),
        to: "2024-10-01".parse().unwrap(),
    };
    let spec = SynthSpec {
        observations: n,
        from_ms: time::day_start_ms(tz, period.from),
        to_ms: time::day_start_ms(tz, period.to),
        establishments: SEED_ESTABLISHMENT_CODES
            .iter()
            .map(|c| c.parse().unwrap())
            .collect(),
        seed: 7,
    };
    let dir = std::env::temp_dir().join(format!("dispo-bench-engine-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("obs.csv");
    dispo::import::csv_rows::write_csv(&csv, Synth::new(spec.clone())).expect("write the CSV");
    // The synthetic monitor covered every series over the whole quarter.
    let coverage = vec![dispo::domain::CoverageSpan {
        kind: dispo::domain::CoverageKind::Monitor,
        establishment: None,
        interface: None,
        start_ms: spec.from_ms,
        end_ms: spec.to_ms,
        ongoing: false,
    }];
    let input = EngineInput {
        observations: Synth::new(spec).map(|o| o.obs).collect(),
        coverage,
    };
    let rss_data = common::peak_rss_mb();

    let t = Instant::now();
    let k = engine::compute(&input, period, &Settings::default()).expect("compute");
    let ours = t.elapsed().as_secs_f64();
    let rss = common::peak_rss_mb();
    let our_down: f64 = k
        .days
        .iter()
        .filter(|d| d.interface == dispo::domain::Interface::Api)
        .map(|d| d.downtime_s)
        .sum();

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/duckdb_daily.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(&csv)
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
        "\nengine: {n} observations, {} day rows, {} episodes",
        k.days.len(),
        k.episodes.len()
    );
    let d = duck
        .map(|d| format!("{d:.2} s (DuckDB)"))
        .unwrap_or_else(|| "not run".into());
    let ratio = duck.map(|d| format!("{:.2}", ours / d)).unwrap_or_default();
    common::row(
        &format!("daily figures of {n} observations"),
        &format!("{ours:.2} s"),
        &d,
        &ratio,
        "ratio <= 1 (no slower than DuckDB)",
    );
    common::row(
        "engine peak RSS (data loaded / after compute)",
        &format!("{rss_data:.0} / {rss:.0} MB"),
        "",
        "",
        "< 2048 MB",
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

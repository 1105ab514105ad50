//! Shared by the benchmarks: the table row format the harness (`benches/run.sh`) collects, the
//! process's peak RSS, and the bench size from the environment.

#![allow(dead_code)]

/// `| figure | value | baseline | ratio | target |`
pub fn row(figure: &str, value: &str, baseline: &str, ratio: &str, target: &str) {
    println!("| {figure} | {value} | {baseline} | {ratio} | {target} |");
}

/// Peak resident set size of this process so far (VmHWM), in MB.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Resets this process's peak RSS to its current RSS (Linux `clear_refs` 5), so a later
/// [`peak_rss_mb`] measures one stage rather than the set-up before it.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Rows from `DISPO_BENCH_ROWS` (underscores allowed), else the default.
pub fn rows(default: u64) -> u64 {
    std::env::var("DISPO_BENCH_ROWS")
        .ok()
        .and_then(|s| s.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// The synthetic quarter the engine benchmarks count: Q3 2024 in Paris days, the seed
/// establishments, `n` rows, seed 7.
pub fn quarter(n: u64) -> (dispo::engine::Period, dispo::synth::SynthSpec) {
    use dispo::engine::time::day_start_ms;
    let tz = chrono_tz::Europe::Paris;
    let period = dispo::engine::Period {
        from: "2024-07-01".parse().unwrap(),
        to: "2024-10-01".parse().unwrap(),
    };
    let spec = dispo::synth::SynthSpec {
        observations: n,
        from_ms: day_start_ms(tz, period.from),
        to_ms: day_start_ms(tz, period.to),
        establishments: dispo::domain::SEED_ESTABLISHMENT_CODES
            .iter()
            .map(|c| c.parse().unwrap())
            .collect(),
        seed: 7,
    };
    (period, spec)
}

/// What `dispo synth --db` writes: the rows, and the synthetic monitor covering every series.
pub async fn write_db(db: impl Into<dispo::store::Target>, spec: &dispo::synth::SynthSpec) {
    use dispo::domain::Interface;
    let store = dispo::store::Store::open(db)
        .await
        .expect("create the database");
    let mut batch = Vec::with_capacity(100_000);
    for o in dispo::synth::Synth::new(spec.clone()) {
        batch.push(o);
        if batch.len() == 100_000 {
            store
                .insert_observations(std::mem::replace(&mut batch, Vec::with_capacity(100_000)))
                .await
                .expect("insert");
        }
    }
    store.insert_observations(batch).await.expect("insert");
    let series: Vec<_> = spec
        .establishments
        .iter()
        .flat_map(|e| [Interface::Api, Interface::Fallback, Interface::PsuWeb].map(|i| (*e, i)))
        .collect();
    store
        .record_monitor_run(
            dispo::synth::SYNTH_MONITOR,
            &series,
            spec.from_ms,
            spec.to_ms,
            "synthetic",
        )
        .await
        .expect("coverage");
    store.close().await;
}

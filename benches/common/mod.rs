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

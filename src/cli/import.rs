//! `dispo import`: loads observation CSVs or gateway JSON lines into the database.
//!
//! Exit status: 0 when every line imported (or was already present), 3 when some lines were
//! refused (the rest imported; see the rejects file), 1 on an error that stopped the import
//! (what landed before is reported; re-running is safe), 130 when Ctrl-C stopped it (after the
//! batch being written, with the summary of what landed); 2 stays clap's usage errors. `--config` gives the counting policy
//! the bounds take (`[counting] max_latency_s`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::import::bounds::Bounds;
use crate::import::{self, Format, ImportOptions, ImportSummary, Input, mapping::Mapping};
use crate::store::Store;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 every line imported or already present; 3 some lines refused \
(the rest imported; see the rejects file); 1 an error stopped the import (whole batches that \
landed stay; re-running is safe); 130 interrupted by Ctrl-C (the summary says what landed); \
2 a usage error."
)]
pub struct Args {
    /// The database: a SQLite file or a postgres:// URL (default from DISPO_DB).
    #[arg(long, value_parser = crate::cli::DbParser, env = "DISPO_DB", hide_env_values = true)]
    pub db: crate::store::Target,
    /// Input format: the observation CSV of `dispo kpi`, or JSON lines read through --mapping.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: Format,
    /// TOML field mapping for --format jsonl (see the README).
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// A probe configuration whose `[counting]` table sets `max_latency_s`: latencies beyond it
    /// are refused (default 3600 s).
    #[arg(long, value_name = "PROBES.toml")]
    pub config: Option<PathBuf>,
    /// Where refused lines are written, as JSON lines. Default: `<db>.rejects.jsonl` (replaced
    /// when this import refuses a line, left alone otherwise).
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    /// Longest line read, in bytes: a longer one is refused without being read into memory.
    #[arg(long, default_value_t = crate::import::linecap::DEFAULT_MAX_LINE_BYTES as u64,
          value_parser = clap::value_parser!(u64).range(256..=1 << 30))]
    pub max_line_bytes: u64,
    /// Longest request id and TPP id, in characters: a longer one refuses its line.
    #[arg(long, default_value_t = crate::import::bounds::DEFAULT_MAX_ID_CHARS as u64,
          value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub max_id_chars: u64,
    /// Longest error text, in characters: a longer one refuses its line.
    #[arg(long, default_value_t = crate::import::bounds::DEFAULT_MAX_ERROR_TEXT_CHARS as u64,
          value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub max_error_text_chars: u64,
    /// Rows per transaction (1 to 1 000 000: a batch is held in memory).
    #[arg(long, default_value_t = import::DEFAULT_BATCH_ROWS as u64,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub batch_rows: u64,
    /// How many refused lines to print.
    #[arg(long, default_value_t = 10)]
    pub show_rejects: usize,
    /// Files to import, plain or gzip; `-` reads stdin.
    #[arg(required = true, value_name = "LOGFILE")]
    pub files: Vec<PathBuf>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mapping = match (&args.format, &args.mapping) {
        (Format::Jsonl, None) => anyhow::bail!(import::ImportError::NoMapping),
        (_, Some(p)) => Some(Mapping::load(p)?),
        (Format::Csv, None) => None,
    };
    let max_latency_s = crate::cli::kpi::load_settings(args.config.as_deref(), None)?.max_latency_s;
    if !(max_latency_s.is_finite() && max_latency_s > 0.0) {
        anyhow::bail!(
            "[counting] max_latency_s = {max_latency_s}: give a positive number of seconds"
        );
    }
    let bounds = Bounds::from_clock(max_latency_s).with_lengths(
        args.max_line_bytes as usize,
        args.max_id_chars as usize,
        args.max_error_text_chars as usize,
    );
    let rejects_path = args
        .rejects
        .clone()
        .unwrap_or_else(|| args.db.sibling(".rejects.jsonl"));
    let store = Store::open(&args.db)
        .await
        .with_context(|| format!("opening {}", args.db))?;
    let inputs: Vec<Input> = args.files.iter().map(|p| Input::from_arg(p)).collect();
    let opts = ImportOptions {
        format: args.format,
        mapping,
        batch_rows: args.batch_rows as usize,
        rejects_path,
        show_rejects: args.show_rejects,
        interrupted: Default::default(),
    };
    // The first Ctrl-C stops after the batch being written and sums up; a second one ends at once.
    let flag = opts.interrupted.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
            eprintln!(
                "interrupted: stopping after the batch being written (Ctrl-C again to quit now)"
            );
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(super::exit::INTERRUPTED.into());
            }
        }
    });
    let bar = progress_bar();
    let result = import::import_with_bounds(&store, &inputs, &opts, bounds, &bar).await;
    bar.finish_and_clear();
    // Whatever happened, what landed goes from the log into the database file.
    store.close().await;
    let landed = match &result {
        Ok(s) => s,
        Err(f) => &f.landed,
    };
    super::kpi::warn_unknown_codes(
        landed
            .files
            .iter()
            .flat_map(|f| f.establishments.iter().copied()),
        args.config.as_deref(),
    );
    match result {
        Ok(summary) => {
            print_summary(&summary);
            Ok(if summary.rejected() > 0 {
                ExitCode::from(super::exit::SOME_REFUSED)
            } else {
                ExitCode::SUCCESS
            })
        }
        Err(failure) if matches!(failure.error, import::ImportError::Interrupted) => {
            print_summary(&failure.landed);
            eprintln!(
                "import interrupted: {} rows committed (whole batches); re-running the same \
                 command is safe: rows already present are skipped",
                failure.landed.added()
            );
            Ok(ExitCode::from(super::exit::INTERRUPTED))
        }
        Err(failure) => {
            print_summary(&failure.landed);
            if failure.landed.added() > 0 {
                eprintln!(
                    "import stopped: {} rows committed before the error (whole batches only); \
                 re-running the same command is safe: rows already present are skipped",
                    failure.landed.added()
                );
            }
            Err(anyhow::Error::new(failure))
        }
    }
}

/// A bar on stderr when it is a terminal; hidden otherwise (the summary line says it all).
fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{prefix} {bar:30} {bytes}/{total_bytes} {msg} (ETA {eta})")
            .expect("valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn print_summary(s: &ImportSummary) {
    for f in &s.files {
        println!(
            "{}: {} rows read, {} added, {} already present, {} rejected",
            f.input, f.rows, f.added, f.already_present, f.rejected
        );
    }
    println!(
        "imported {} rows in {:.1} s ({:.0} rows/s): {} added, {} already present, {} rejected",
        s.rows(),
        s.elapsed.as_secs_f64(),
        s.rows_per_s(),
        s.added(),
        s.already_present(),
        s.rejected()
    );
    if !s.first_rejects.is_empty() {
        eprintln!("refused lines (first {}):", s.first_rejects.len());
        for r in &s.first_rejects {
            eprintln!("  {}:{}: {}", r.input, r.reject.line, r.reject.reason);
        }
    }
    if let Some(p) = &s.rejects_path {
        eprintln!(
            "all {} refused lines are in {} (JSON lines: input, line, reason, raw)",
            s.rejected(),
            p.display()
        );
    }
}

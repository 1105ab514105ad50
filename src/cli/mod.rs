//! The command line: one file per subcommand. Each turns its raw arguments into validated values
//! once, calls the library, and maps errors to messages that say what to fix.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod check_config;
pub mod demo;
pub mod evidence;
pub mod import;
pub mod kpi;
pub mod report;
pub mod run;
pub mod simulate;
pub mod status;
pub mod synth;

/// Watch a bank's PSD2 dedicated interface and publish how available and fast it was.
#[derive(Debug, Parser)]
#[command(name = "dispo", version, about, long_about = None)]
pub struct Cli {
    /// More log output (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the embedded Banque Populaire STET sandbox (mutual TLS, fault injection)
    Simulate(simulate::Args),
    /// Run the probes on their schedules and record every observation in SQLite
    Run(run::Args),
    /// Validate probe definitions and print every problem with its file and line
    CheckConfig(check_config::Args),
    /// Compute the regulatory figures (episodes, daily uptime, weekly watch, fallback use)
    Kpi(kpi::Args),
    /// Import observations or gateway logs (CSV or JSON lines) into the database
    Import(import::Args),
    /// Produce the quarterly publication: spreadsheet, charts, web page, CSV
    Report(report::Args),
    /// Build or verify an evidence pack for the supervisor
    Evidence(evidence::Args),
    /// Generate deterministic synthetic observations for benchmarks and demos
    Synth(synth::Args),
    /// Write the status page once (HTML, JSON or Atom) from a database
    Status(status::Args),
    /// Show the whole product in one command against the embedded simulator
    Demo(demo::Args),
}

pub async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Simulate(a) => simulate::run(a).await,
        Command::Run(a) => run::run(a).await,
        Command::CheckConfig(a) => check_config::run(a).await,
        Command::Kpi(a) => kpi::run(a).await,
        Command::Import(a) => import::run(a).await,
        Command::Report(a) => report::run(a).await,
        Command::Evidence(a) => evidence::run(a).await,
        Command::Synth(a) => synth::run(a).await,
        Command::Status(a) => status::run(a).await,
        Command::Demo(a) => demo::run(a).await,
    }
}

/// Logs go to stderr as structured fields; stdout stays for the command's own output.
pub fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "info,sqlx::query=error",
        1 => "debug,sqlx::query=warn",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

//! `dispo demo`: the whole product in one command against the embedded simulator.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::demo::{DemoOptions, run as run_demo};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How long to probe (`30s`, `2m`).
    #[arg(long, default_value = "2m", value_parser = super::run::parse_duration)]
    pub duration: Duration,
    /// Where the database, figures, evidence pack (and publication) go.
    #[arg(long, default_value = "reports/demo")]
    pub out: PathBuf,
    /// Also fill a quarter (2024-Q3 or T3-2024) with synthetic observations and publish it.
    #[arg(long)]
    pub quarter: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.duration < Duration::from_secs(20) {
        anyhow::bail!(
            "--duration must be at least 20s: the scripted outage needs time to be confirmed"
        );
    }
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stdout());
    run_demo(
        DemoOptions {
            duration: args.duration,
            out: args.out,
            interactive,
            quarter: args.quarter,
        },
        super::shutdown_signal(),
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

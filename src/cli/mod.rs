//! The command line: one file per subcommand. Each turns its raw arguments into validated values
//! once, calls the library, and maps errors to messages that say what to fix.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod backup;
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
    /// Log lines as text, or as JSON lines for a log stack (Loki, Elasticsearch, journald).
    #[arg(long, value_enum, default_value = "text", global = true)]
    pub log_format: LogFormat,
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
    /// Copy the database into one consistent file, safe while `dispo run` writes
    Backup(backup::Args),
    /// Print a shell completion script (bash, zsh, fish) on stdout
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout: `dispo manpage > dispo.1`
    Manpage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell: `dispo completions bash > /etc/bash_completion.d/dispo`.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// The exit codes every command keeps (the README's table).
pub mod exit {
    /// Done.
    pub const OK: u8 = 0;
    /// An error stopped the command (its message says which and why).
    pub const ERROR: u8 = 1;
    /// The command line is wrong (clap's usage errors).
    pub const USAGE: u8 = 2;
    /// `dispo import`: some lines were refused, the others imported.
    pub const SOME_REFUSED: u8 = 3;
    /// Interrupted by Ctrl-C (SIGINT), after saying what was done.
    pub const INTERRUPTED: u8 = 130;
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
        Command::Backup(a) => backup::run(a).await,
        Command::Completions(a) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let shell = match a.shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
            };
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "dispo", &mut buf);
            write_stdout(&buf)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Manpage => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let mut buf = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut buf)?;
            write_stdout(&buf)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn write_stdout(buf: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(buf)?;
    out.flush()
}

/// A command line clap cannot judge alone (`--from` after `--to`, neither `--db` nor `--input`):
/// exits 2 like clap's own usage errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Returns early with a [`UsageError`].
macro_rules! usage {
    ($($t:tt)*) => {
        return Err(anyhow::Error::new($crate::cli::UsageError(format!($($t)*))))
    };
}
pub(crate) use usage;

/// Whether an error is a write to a closed pipe (`dispo kpi | head -1`): the reader has what
/// it wanted, so the command ends quietly.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == BrokenPipe)
            // serde_json keeps the I/O error inside, out of the chain.
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(BrokenPipe))
    })
}

/// A path as messages show it: absolute, so "no such file" says where dispo looked.
/// Parses `--db` without ever echoing it: clap's own message for a bad value quotes it whole,
/// and a PostgreSQL URL may hold a password (the journal keeps what stderr says).
#[derive(Debug, Clone, Copy)]
pub struct DbParser;

impl clap::builder::TypedValueParser for DbParser {
    type Value = crate::store::Target;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Self::Value, clap::Error> {
        let bad = |why: String| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value for --db (or DISPO_DB): {why}\n"),
            )
            .with_cmd(cmd)
        };
        value
            .to_str()
            .ok_or_else(|| bad("not UTF-8".into()))?
            .parse()
            .map_err(|e: crate::store::TargetError| bad(e.to_string()))
    }
}

/// `--db` when given, else `DISPO_DB` (for the commands where `--db` is one of several
/// sources: clap's own `env` would count the variable as given and refuse `--input`, `--out` or
/// a subcommand beside it).
pub fn db_or_env(
    given: Option<crate::store::Target>,
) -> anyhow::Result<Option<crate::store::Target>> {
    if given.is_some() {
        return Ok(given);
    }
    match std::env::var("DISPO_DB") {
        Ok(v) if !v.is_empty() => v
            .parse()
            .map(Some)
            .map_err(|e| anyhow::anyhow!("DISPO_DB: {e}")),
        _ => Ok(None),
    }
}

pub fn shown_path(p: &std::path::Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_owned())
        .display()
        .to_string()
}

/// Logs go to stderr as structured fields; stdout stays for the command's own output.
pub fn init_logging(verbose: u8, format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "info,sqlx::query=error,sqlx::postgres::notice=warn",
        1 => "debug,sqlx::query=warn,sqlx::postgres::notice=warn",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        // One JSON object a line: time, level, target, the fields and the message.
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => fmt
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
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

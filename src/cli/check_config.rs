//! `dispo check-config`: validates probe definitions and prints every problem with its file and
//! line (unknown keys, bad cron, unreadable or mismatched keys and certificates, certificates
//! expiring within 30 days, IBAN checksums, unknown establishment codes, unset environment
//! variables, duplicate probe names, counting settings the engine would refuse). `--print` shows
//! the configuration as `dispo run` reads it, secrets masked; `--connect` tries one TLS
//! handshake and token request per establishment.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The probe definitions to check.
    #[arg(default_value = "probes/sandbox.toml")]
    pub path: PathBuf,
    /// Print the resolved configuration ([defaults] applied, ${VAR} expanded), secrets masked.
    #[arg(long)]
    pub print: bool,
    /// Also connect: one TLS handshake and token request per establishment, each result printed
    /// (a CA that does not match the bank, a QWAC it refuses, a wrong client_id).
    #[arg(long)]
    pub connect: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Writes ignore a closed pipe (`| head`): output must never panic.
    let mut out = std::io::stdout().lock();
    let shown = super::shown_path(&args.path);
    match crate::config::load(&args.path) {
        Ok(cfg) => {
            for w in &cfg.warnings {
                let _ = writeln!(out, "{w}");
            }
            if args.print {
                let _ = write!(out, "{}", crate::config::print::render(&cfg));
                let _ = writeln!(out);
            }
            let _ = writeln!(
                out,
                "{shown}: OK ({} establishments, {} probes{})",
                cfg.establishments.len(),
                cfg.probes.len(),
                if cfg.warnings.is_empty() {
                    String::new()
                } else {
                    format!(", {} warnings", cfg.warnings.len())
                }
            );
            drop(out);
            if args.connect {
                return connect(&cfg).await;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for p in &errors.0 {
                let _ = writeln!(out, "{p}");
            }
            let n = errors.0.iter().filter(|p| !p.warning).count();
            eprintln!("{shown}: {n} error(s)");
            Ok(ExitCode::from(1))
        }
    }
}

/// One token request per establishment (client credentials, over mutual TLS), in turn; exit 1
/// when any failed.
async fn connect(cfg: &crate::config::Config) -> anyhow::Result<ExitCode> {
    use crate::config::{Grant, Probe, Step};
    let probe = Probe {
        name: "check-config".into(),
        step: Step::Token,
        schedule: crate::config::cron::parse("* * * * *").map_err(anyhow::Error::msg)?,
        schedule_text: "* * * * *".into(),
        establishments: Vec::new(),
        grant: Grant::ClientCredentials,
    };
    let timeout = cfg.monitor.timeout.min(Duration::from_secs(30));
    let mut failed = 0;
    for e in &cfg.establishments {
        let line = match crate::probe::steps::Target::new(
            e.clone(),
            cfg.monitor.vantage.clone(),
            false,
            cfg.monitor.max_body_bytes,
        ) {
            Err(err) => Err(err.to_string()),
            Ok(t) => {
                let r = crate::probe::steps::run(&t, &probe, timeout).await;
                match r.observations.last() {
                    None => Err("no request was made".to_string()),
                    Some(o) if o.obs.outcome == crate::domain::Outcome::Ok => Ok(format!(
                        "TLS handshake and token request OK (HTTP {}, {:.0} ms)",
                        o.obs.status.unwrap_or(0),
                        o.obs.latency_ms.unwrap_or(0.0)
                    )),
                    Some(o) => Err(format!(
                        "{}{}{}",
                        o.obs.outcome.as_str(),
                        o.obs
                            .status
                            .map(|s| format!(" (HTTP {s})"))
                            .unwrap_or_default(),
                        o.error_text
                            .as_deref()
                            .map(|t| format!(": {t}"))
                            .unwrap_or_default()
                    )),
                }
            }
        };
        match line {
            Ok(s) => println!("{} {}: {s}", e.code, e.base_url),
            Err(s) => {
                failed += 1;
                println!("{} {}: FAILED {s}", e.code, e.base_url);
            }
        }
    }
    if failed > 0 {
        eprintln!(
            "{failed} of {} establishment(s) could not be reached",
            cfg.establishments.len()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

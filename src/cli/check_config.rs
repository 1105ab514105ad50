//! `dispo check-config`: validates probe definitions and prints every problem with its file and
//! line (unknown keys, bad cron, unreadable or mismatched keys and certificates, certificates
//! expiring within 30 days, IBAN checksums, unknown establishment codes).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The probe definitions to check.
    #[arg(default_value = "probes/sandbox.toml")]
    pub path: PathBuf,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Writes ignore a closed pipe (`| head`): output must never panic.
    let mut out = std::io::stdout().lock();
    match crate::config::load(&args.path) {
        Ok(cfg) => {
            for w in &cfg.warnings {
                let _ = writeln!(out, "{w}");
            }
            let _ = writeln!(
                out,
                "{}: OK ({} establishments, {} probes{})",
                args.path.display(),
                cfg.establishments.len(),
                cfg.probes.len(),
                if cfg.warnings.is_empty() {
                    String::new()
                } else {
                    format!(", {} warnings", cfg.warnings.len())
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for p in &errors.0 {
                let _ = writeln!(out, "{p}");
            }
            let n = errors.0.iter().filter(|p| !p.warning).count();
            eprintln!("{}: {n} error(s)", args.path.display());
            Ok(ExitCode::from(1))
        }
    }
}

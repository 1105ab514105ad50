//! `dispo status`: the status page once, from a database, as HTML (default), JSON or Atom,
//! to a file or stdout. The same page `dispo run --http-listen` serves, without its refresh.
//!
//! With several vantage points (methodology section 10) the document stays the public page
//! (it may be published as it is: no vantage fault, no vantage named); the operator is told of
//! the recent vantage faults on stderr, apart from it and never as downtime.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::domain::{EstablishmentCode, Interface};
use crate::engine::{VantageFault, time};
use crate::report::Lang;
use crate::status::{Scope, service};
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Html,
    Json,
    Atom,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The database: a SQLite file or a postgres:// URL (default from DISPO_DB).
    #[arg(long, value_parser = crate::cli::DbParser, value_name = "FILE", env = "DISPO_DB", hide_env_values = true)]
    pub db: crate::store::Target,
    /// A probe configuration: its establishments (names, probed interfaces) and its
    /// `[counting]` table (policies, maintenance calendar).
    #[arg(long, value_name = "PROBES.toml")]
    pub config: Option<PathBuf>,
    /// Write here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Language (French by default).
    #[arg(long, value_enum, default_value_t = Lang::Fr)]
    pub lang: Lang,
    #[arg(long, value_enum, default_value_t = Format::Html)]
    pub format: Format,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !args.db.exists() {
        bail!(
            "database {} does not exist (create it with `dispo run` or `dispo import`)",
            args.db
        );
    }
    let scope = match &args.config {
        Some(path) => scope_of_file(path)?,
        None => Scope::default(),
    };
    let store = Store::open(&args.db)
        .await
        .with_context(|| format!("database {}", args.db))?;
    let now = chrono::Utc::now().timestamp_millis();
    let service::Once {
        page,
        vantage_faults,
    } = service::once_for_operator(&store, &scope, now).await?;
    write_faults(&mut std::io::stderr().lock(), &vantage_faults, now)?;
    let json = crate::status::json::to_json(&page);
    let text = match args.format {
        Format::Html => crate::status::html::render(
            &page,
            args.lang,
            json["revision"].as_str().unwrap_or_default(),
        ),
        Format::Json => format!("{json:#}\n"),
        Format::Atom => crate::status::atom::render(&page, args.lang),
    };
    match &args.out {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The operator's part (section 10): the vantage faults open or ended in the last seven days,
/// which the page never shows. Nothing when there is none (every single-vantage deployment).
fn write_faults(
    out: &mut impl std::io::Write,
    faults: &[VantageFault],
    now_ms: i64,
) -> std::io::Result<()> {
    if faults.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "Vantage faults in the last 7 days (an outage seen from too few vantages: not downtime, not on the page; details: dispo kpi):"
    )?;
    for f in faults {
        let still = if f.end_ms >= now_ms { "  (still)" } else { "" };
        writeln!(
            out,
            "  {}  {:<8}  {:<20}  {} -> {}  {:.3} s{still}",
            f.establishment.as_str(),
            f.interface.as_str(),
            f.vantage.as_str(),
            time::rfc3339(f.start_ms),
            time::rfc3339(f.end_ms),
            f.duration_s()
        )?;
    }
    Ok(())
}

/// What a probe configuration says of the page, read leniently: the counting settings, the
/// establishments with their names, and the interface each probe observes. The certificates
/// and keys it names need not be on this machine.
fn scope_of_file(path: &Path) -> anyhow::Result<Scope> {
    let settings = super::kpi::load_settings(Some(path), None)?;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let doc: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?;
    let list = |key: &str| -> Vec<toml::Table> {
        doc.get(key)
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|v| v.as_table().cloned()).collect())
            .unwrap_or_default()
    };
    let mut establishments = Vec::new();
    for e in list("establishment") {
        let code = e.get("code").and_then(|v| v.as_str()).unwrap_or_default();
        let code: EstablishmentCode = code.parse().with_context(|| {
            format!("{}: an [[establishment]] has no valid code", path.display())
        })?;
        let name = e.get("name").and_then(|v| v.as_str()).unwrap_or_default();
        establishments.push((code, name.to_owned()));
    }
    let mut series = BTreeSet::new();
    for p in list("probe") {
        let iface = match p.get("step").and_then(|v| v.as_str()) {
            Some("fallback") => Interface::Fallback,
            Some("psu") => Interface::PsuWeb,
            _ => Interface::Api,
        };
        let only: Vec<&str> = p
            .get("establishments")
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        for (code, _) in &establishments {
            if only.is_empty() || only.contains(&code.as_str()) {
                series.insert((*code, iface));
            }
        }
    }
    Ok(Scope {
        establishments,
        series,
        settings,
    })
}

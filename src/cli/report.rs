//! `dispo report`: the quarterly publication (spreadsheet with charts, chart images, web page,
//! CSV), or with `--exemption` the Art. 33(6) exemption dossier.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::NaiveDate;

use crate::domain::EstablishmentCode;
use crate::engine::Period;
use crate::report::{self, Lang, ReportRequest};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The database: a SQLite file or a postgres:// URL (default from DISPO_DB).
    #[arg(long, value_parser = crate::cli::DbParser, env = "DISPO_DB", hide_env_values = true)]
    pub db: crate::store::Target,
    /// The quarter: 2024-Q3 or T3-2024.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub quarter: Option<String>,
    /// First local day (YYYY-MM-DD), instead of a quarter.
    #[arg(long, requires = "to")]
    pub from: Option<NaiveDate>,
    /// Day after the last (exclusive).
    #[arg(long, requires = "from")]
    pub to: Option<NaiveDate>,
    /// Only these establishments (repeatable); default all.
    #[arg(long = "establishment", value_name = "CODE")]
    pub establishments: Vec<EstablishmentCode>,
    /// Language of the publication (French by default, as published).
    #[arg(long, value_enum, default_value_t = Lang::Fr)]
    pub lang: Lang,
    /// Output folder; the publication goes in `<out>/<period>/`.
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    /// A probe configuration whose `[counting]` table holds the counting settings.
    #[arg(long, value_name = "PROBES.toml")]
    pub config: Option<PathBuf>,
    /// IANA time zone of the local days (overrides the configuration).
    #[arg(long)]
    pub tz: Option<String>,
    /// Build the Art. 33(6) exemption dossier instead (at least three months).
    #[arg(long)]
    pub exemption: bool,
    /// With --exemption: accept a period shorter than three months (marked in the dossier).
    #[arg(long, requires = "exemption")]
    pub allow_short_period: bool,
    /// Replace the publication already in `<out>/<period>/` (refused otherwise).
    #[arg(long)]
    pub force: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let settings = super::kpi::load_settings(args.config.as_deref(), args.tz.as_deref())?;
    let (period, label) = match (&args.quarter, args.from, args.to) {
        (Some(q), _, _) => report::parse_quarter(q)
            .map_err(|e| anyhow::Error::new(super::UsageError(e.to_string())))?,
        (None, Some(from), Some(to)) => {
            if to <= from {
                super::usage!("--from {from} must come before --to {to} (--to is exclusive)");
            }
            (Period { from, to }, format!("{from}_{to}"))
        }
        _ => super::usage!(
            "give --quarter 2024-Q3 (or T3-2024), or --from YYYY-MM-DD --to YYYY-MM-DD"
        ),
    };
    if !args.db.exists() {
        bail!(
            "database {} does not exist (fill it with `dispo run` or `dispo import`)",
            args.db
        );
    }
    let store = Store::open(&args.db)
        .await
        .with_context(|| format!("database {}", args.db))?;
    if args.exemption {
        let lang = match args.lang {
            Lang::Fr => crate::evidence::Lang::Fr,
            Lang::En => crate::evidence::Lang::En,
        };
        let out = args.out.join(format!("exemption-{label}"));
        let files = crate::evidence::exemption::build(
            &store,
            period.from,
            period.to,
            &settings,
            lang,
            &out,
            args.allow_short_period,
        )
        .await?;
        println!(
            "exemption dossier: {} ({} files)",
            out.display(),
            files.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    // A publication already made is not replaced unless asked (as evidence refuses its folder).
    let dir = args.out.join(&label);
    if !args.force && std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
        bail!(
            "{} already holds a publication: give --force to replace it, or another --out",
            super::shown_path(&dir)
        );
    }
    let req = ReportRequest {
        period,
        label,
        establishments: args.establishments,
        lang: args.lang,
        out: args.out,
        settings,
    };
    let out = report::generate(&store, &req).await?;
    println!("publication written to {}:", out.dir.display());
    for f in &out.files {
        println!("  {}", f.display());
    }
    Ok(ExitCode::SUCCESS)
}

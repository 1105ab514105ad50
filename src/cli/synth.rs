//! `dispo synth`: deterministic synthetic observations into a database or an observation CSV.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::NaiveDate;

use crate::domain::{EstablishmentCode, Interface, SEED_ESTABLISHMENT_CODES};
use crate::engine::time;
use crate::store::Store;
use crate::synth::{Synth, SynthSpec};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many observations.
    #[arg(long)]
    pub observations: u64,
    /// First local day (Europe/Paris).
    #[arg(long)]
    pub from: NaiveDate,
    /// Day after the last.
    #[arg(long)]
    pub to: NaiveDate,
    /// Establishment codes (comma-separated); default: every code of the bank's documentation.
    #[arg(long, value_delimiter = ',')]
    pub establishments: Vec<EstablishmentCode>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write an observation CSV (the format of `dispo import` / `dispo kpi --input`).
    #[arg(long, conflicts_with = "db")]
    pub out: Option<PathBuf>,
    /// Write into a database: a SQLite file or a postgres:// URL (without --out: DISPO_DB if
    /// set).
    #[arg(long, value_parser = crate::cli::DbParser)]
    pub db: Option<crate::store::Target>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.to <= args.from {
        super::usage!(
            "--from {} must come before --to {} (--to is exclusive)",
            args.from,
            args.to
        );
    }
    let tz = chrono_tz::Europe::Paris;
    let establishments = if args.establishments.is_empty() {
        SEED_ESTABLISHMENT_CODES
            .iter()
            .map(|c| c.parse())
            .collect::<Result<Vec<_>, _>>()?
    } else {
        super::kpi::warn_unknown_codes(args.establishments.iter().copied(), None);
        args.establishments
    };
    let (from_ms, to_ms) = (
        time::day_start_ms(tz, args.from),
        time::day_start_ms(tz, args.to),
    );
    let spec_establishments = establishments.clone();
    let spec = SynthSpec {
        observations: args.observations,
        from_ms,
        to_ms,
        establishments,
        seed: args.seed,
    };
    let rows = Synth::new(spec);
    let db = match &args.out {
        Some(_) => None,
        None => super::db_or_env(args.db.clone())?,
    };
    match (&args.out, &db) {
        (Some(path), _) => {
            let n = crate::import::csv_rows::write_csv(path, rows)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!("{n} synthetic observations written to {}", path.display());
        }
        (None, Some(db)) => {
            let store = Store::open(db).await?;
            let mut batch = Vec::with_capacity(20_000);
            let mut added = 0;
            for o in rows {
                batch.push(o);
                if batch.len() == 20_000 {
                    added += store
                        .insert_observations(std::mem::replace(
                            &mut batch,
                            Vec::with_capacity(20_000),
                        ))
                        .await?;
                }
            }
            added += store.insert_observations(batch).await?;
            // The synthetic monitor covered its series over the whole period.
            let series: Vec<_> = spec_establishments
                .iter()
                .flat_map(|e| {
                    [Interface::Api, Interface::Fallback, Interface::PsuWeb].map(|i| (*e, i))
                })
                .collect();
            store
                .record_monitor_run(
                    crate::synth::SYNTH_MONITOR,
                    &series,
                    from_ms,
                    to_ms,
                    "synthetic",
                )
                .await?;
            store.close().await;
            println!("{added} synthetic observations added to {db}");
        }
        (None, None) => super::usage!("give --out FILE.csv or --db FILE"),
    }
    Ok(ExitCode::SUCCESS)
}

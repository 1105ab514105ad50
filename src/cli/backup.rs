//! `dispo backup`: a consistent copy of the database into one file, safe while `dispo run`
//! writes (SQLite's `VACUUM INTO`; the same as `sqlite3 dispo.db ".backup copy.db"`).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The database to copy.
    #[arg(long, value_parser = crate::cli::DbParser, default_value = "dispo.db", env = "DISPO_DB", hide_env_values = true)]
    pub db: crate::store::Target,
    /// The copy: a new file (an existing one is refused).
    #[arg(value_name = "COPY.db")]
    pub to: PathBuf,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.to.exists() {
        anyhow::bail!(
            "{} already exists: give a new file name",
            super::shown_path(&args.to)
        );
    }
    let store = Store::open_existing(&args.db).await?;
    store.backup(&args.to).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot copy {} into {}: {e}",
            args.db.shown(),
            super::shown_path(&args.to)
        )
    })?;
    store.close().await;
    let bytes = std::fs::metadata(&args.to).map(|m| m.len()).unwrap_or(0);
    println!(
        "{} copied into {} ({bytes} bytes)",
        args.db.shown(),
        super::shown_path(&args.to)
    );
    Ok(ExitCode::SUCCESS)
}

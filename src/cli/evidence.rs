//! `dispo evidence`: builds an evidence pack for the supervisor from the database, or checks one.
//!
//! `dispo evidence --db FILE (--episode ID | --from D --to D) [--establishment CODE] [--lang fr|en]
//! --out DIR` writes the pack; `dispo evidence verify DIR` checks its manifest. Exit status of
//! `verify`: 0 when every file is intact, 1 when a file is altered, missing or extra, or the
//! manifest names a path outside the pack.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::NaiveDate;

use crate::domain::EstablishmentCode;
use crate::engine::Settings;
use crate::evidence::pack::{self, PackRequest, Selection};
use crate::evidence::{EpisodeId, Lang, manifest};
use crate::store::Store;

#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Episode ids: <establishment>-<interface>-<start UTC>, e.g. \
13807-api-20240704T100100.000Z. `verify` exits with 1 when a file is altered, missing or extra."
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Sub>,
    #[command(flatten)]
    pub build: BuildArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// Check a pack against its MANIFEST.sha256: reports altered, missing and extra files
    Verify {
        /// The pack directory.
        dir: PathBuf,
        /// The bank's QSealC certificate (PEM): the pack must be sealed with its key. Without
        /// it, a seal is checked against the certificate in the pack and its signer is named.
        #[arg(long, value_name = "QSEALC.pem")]
        cert: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The database: a SQLite file or a postgres:// URL (DISPO_DB if not given).
    #[arg(long, value_parser = crate::cli::DbParser)]
    pub db: Option<crate::store::Target>,
    /// One episode, by its id `<establishment>-<interface>-<start UTC>` (e.g.
    /// 13807-api-20240704T100000.000Z).
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub episode: Option<String>,
    /// First local day (YYYY-MM-DD) of the period whose episodes go in the pack.
    #[arg(long, requires = "to")]
    pub from: Option<NaiveDate>,
    /// Day after the last (exclusive).
    #[arg(long, requires = "from")]
    pub to: Option<NaiveDate>,
    /// Only this establishment (5 digits).
    #[arg(long)]
    pub establishment: Option<EstablishmentCode>,
    /// Language of the summary.
    #[arg(long, value_enum, default_value = "fr")]
    pub lang: Lang,
    /// A probe configuration whose `[counting]` table holds the counting settings (policies,
    /// maintenance calendar, targets), as `kpi --config` and `report --config` read it: the
    /// same settings give the same episodes in every output.
    #[arg(long, value_name = "PROBES.toml", conflicts_with = "settings")]
    pub config: Option<PathBuf>,
    /// Counting settings alone (a TOML file of the `[counting]` table's keys, at top level).
    #[arg(long)]
    pub settings: Option<PathBuf>,
    /// Time zone of local days (overrides the settings file).
    #[arg(long)]
    pub tz: Option<chrono_tz::Tz>,
    /// Minutes of observations kept before and after each episode (0 to 10 080: a week).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i64).range(0..=10_080))]
    pub context_minutes: i64,
    /// The pack's directory (created; must be new or empty).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seal the manifest with the bank's QSealC key (PKCS#8 PEM, RSA): a detached signature
    /// (MANIFEST.sha256.sig) and the certificate (MANIFEST.sha256.pem) go in the pack. Default
    /// with --config: the `qseal_key` and `qseal_cert` of the pack's establishment.
    #[arg(long, value_name = "QSEALC.key", requires = "seal_cert")]
    pub seal_key: Option<PathBuf>,
    /// The QSealC certificate (PEM) of --seal-key.
    #[arg(long, value_name = "QSEALC.pem", requires = "seal_key")]
    pub seal_cert: Option<PathBuf>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(Sub::Verify { dir, cert }) => verify(dir, cert),
        None => build(args.build).await,
    }
}

fn verify(dir: PathBuf, cert: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let v = manifest::verify(&dir)?;
    let seal = manifest::check_seal(&dir, cert.as_deref());
    match &seal {
        manifest::Seal::Unsealed => println!(
            "not sealed (no {}): the manifest shows whether files match it, not who wrote it",
            manifest::SIGNATURE
        ),
        manifest::Seal::Valid(s) => println!("SEALED by {s}"),
        manifest::Seal::Invalid(why) => println!("SEAL INVALID: {why}"),
    }
    if let (manifest::Seal::Valid(_), None) = (&seal, &cert) {
        println!(
            "(the certificate is the one in the pack: check that it is the bank's, or pass --cert)"
        );
    }
    let sealed_ok = !matches!(seal, manifest::Seal::Invalid(_));
    for f in &v.altered {
        println!("ALTERED  {f}");
    }
    for f in &v.missing {
        println!("MISSING  {f}");
    }
    for f in &v.extra {
        println!("EXTRA    {f}");
    }
    for (line, text) in &v.malformed {
        println!("MALFORMED manifest line {line}: {text}");
    }
    for (line, path) in &v.outside {
        println!(
            "REFUSED  manifest line {line}: {path:?} leads out of the pack (absolute, .. or a symbolic link): not read"
        );
    }
    if v.is_intact() && sealed_ok {
        println!(
            "{}: intact ({} files match {})",
            dir.display(),
            v.ok.len(),
            manifest::MANIFEST
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "{}: NOT intact: {} altered, {} missing, {} extra, {} ok{}{}",
            dir.display(),
            v.altered.len(),
            v.missing.len(),
            v.extra.len(),
            v.ok.len(),
            if v.outside.is_empty() {
                String::new()
            } else {
                format!(", {} refused", v.outside.len())
            },
            if sealed_ok { "" } else { ", seal invalid" }
        );
        Ok(ExitCode::from(1))
    }
}

/// The QSealC (`qseal_key`, `qseal_cert`, relative to the file) of the configuration's
/// establishment `est`, or the one QSealC all its establishments share; none when no
/// establishment has a `qseal_cert`.
fn seal_from_config(
    config: &std::path::Path,
    est: Option<EstablishmentCode>,
) -> anyhow::Result<Option<(PathBuf, PathBuf)>> {
    let text = std::fs::read_to_string(config)
        .with_context(|| format!("cannot read {}", config.display()))?;
    let doc: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", config.display()))?;
    let dir = config.parent().unwrap_or(std::path::Path::new("."));
    let path = |s: &str| {
        let p = std::path::Path::new(s);
        if p.is_absolute() {
            p.to_owned()
        } else {
            dir.join(p)
        }
    };
    // As `dispo run` reads them: [defaults] fills the gaps, `{code}` and `${VAR}` expand.
    let defaults = doc.get("defaults");
    let value = |e: &toml::Value, key: &str, code: &str| -> Option<String> {
        let raw = e
            .get(key)
            .or_else(|| defaults?.get(key))?
            .as_str()?
            .replace("{code}", code);
        crate::config::expand_env(&raw, |n| std::env::var(n).ok()).ok()
    };
    let mut found: Vec<(String, PathBuf, PathBuf)> = doc
        .get("establishment")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let code = e.get("code")?.as_str()?.to_owned();
            let key = value(e, "qseal_key", &code)?;
            let cert = value(e, "qseal_cert", &code)?;
            Some((code, path(&key), path(&cert)))
        })
        .collect();
    if let Some(est) = est {
        found.retain(|(code, _, _)| code == est.as_str());
    }
    let mut pairs: Vec<(PathBuf, PathBuf)> = found.into_iter().map(|(_, k, c)| (k, c)).collect();
    pairs.sort();
    pairs.dedup();
    match pairs.len() {
        0 => Ok(None),
        1 => Ok(pairs.pop()),
        _ => anyhow::bail!(
            "{}: establishments with different QSealC keys: say which with --establishment, or give --seal-key and --seal-cert",
            config.display()
        ),
    }
}

/// Reads the engine settings from TOML; `--tz` overrides.
pub fn load_settings(
    path: Option<&PathBuf>,
    tz: Option<chrono_tz::Tz>,
) -> anyhow::Result<Settings> {
    let mut s = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading settings {}", p.display()))?;
            let doc: toml::Table =
                toml::from_str(&text).with_context(|| format!("settings {}", p.display()))?;
            // A probe configuration given here: its `[counting]` table is the settings.
            let table = match doc.get("counting") {
                Some(toml::Value::Table(t)) => t.clone(),
                _ => doc,
            };
            toml::Value::Table(table)
                .try_into()
                .with_context(|| format!("settings {}", p.display()))?
        }
        None => Settings::default(),
    };
    if let Some(tz) = tz {
        s.tz = tz;
    }
    Ok(s)
}

async fn build(a: BuildArgs) -> anyhow::Result<ExitCode> {
    if let Some(code) = a.establishment {
        super::kpi::warn_unknown_codes([code], a.config.as_deref());
    }
    let Some(db) = super::db_or_env(a.db)? else {
        super::usage!("--db FILE is required (or use `dispo evidence verify DIR`)");
    };
    let Some(out) = a.out else {
        super::usage!("--out DIR is required: where to write the pack");
    };
    let selection = match (a.episode, a.from, a.to) {
        (Some(id), _, _) => Selection::Episode(id.parse::<EpisodeId>()?),
        (None, Some(from), Some(to)) => Selection::Period { from, to },
        _ => {
            super::usage!("say which episodes: --episode ID, or --from YYYY-MM-DD --to YYYY-MM-DD")
        }
    };
    let settings = match &a.config {
        Some(config) => {
            let tz = a.tz.map(|t| t.name().to_owned());
            super::kpi::load_settings(Some(config), tz.as_deref())?
        }
        None => load_settings(a.settings.as_ref(), a.tz)?,
    };
    let store = Store::open_existing(&db).await?;
    let req = PackRequest {
        selection,
        establishment: a.establishment,
        settings,
        lang: a.lang,
        out_dir: out,
        context_ms: a.context_minutes.max(0) * 60_000,
        db_name: match &db {
            crate::store::Target::Sqlite(p) => p
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            // The database's name, never the server's address or credentials.
            crate::store::Target::Postgres(u) => u.slug(),
        },
    };
    // The seal: given, or the QSealC of the probe configuration's establishment.
    let seal = match (&a.seal_key, &a.seal_cert, &a.config) {
        (Some(k), Some(c), _) => Some((k.clone(), c.clone())),
        (_, _, Some(config)) => {
            let est = match &req.selection {
                Selection::Episode(id) => Some(id.establishment),
                Selection::Period { .. } => req.establishment,
            };
            seal_from_config(config, est)?
        }
        _ => None,
    };
    // A seal that cannot be made is said before any file is written.
    if let Some((key, cert)) = &seal {
        crate::stet::certs::read_key(key)?;
        crate::stet::certs::read_certs(cert)?;
    }
    let o = pack::build(&store, &req).await?;
    if let Some((key, cert)) = &seal {
        let signer = crate::evidence::manifest::seal(&o.dir, key, cert)?;
        println!("manifest sealed by {signer}");
    }
    println!(
        "evidence pack {}: {} episode(s) {}, {} files, {:.1} KiB",
        o.dir.display(),
        o.episode_ids.len(),
        o.episode_ids.join(" "),
        o.files.len(),
        o.total_bytes as f64 / 1024.0
    );
    if o.over_limit {
        eprintln!(
            "warning: the pack weighs {:.1} MiB, over the ACPR's 10 MB attachment limit: narrow the period or send the summary and episode-requests.csv only",
            o.total_bytes as f64 / 1024.0 / 1024.0
        );
    }
    Ok(ExitCode::SUCCESS)
}

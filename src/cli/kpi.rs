//! `dispo kpi`: the regulatory figures of a period, from the database or an observation CSV,
//! as JSON (for scripts; names documented in the README) or a terminal table.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::NaiveDate;
use chrono_tz::Tz;

use crate::engine::{self, EngineInput, Kpis, Period, Settings, time};
use crate::import::csv_rows::CsvRows;
use crate::import::{Row, RowSource};
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Json,
    Table,
}

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["db", "input"]))]
pub struct Args {
    /// The SQLite database written by `dispo run` / `dispo import`.
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// An observation CSV (header `received_at,establishment,interface,service,source,tpp,status,latency_ms,error_code,request_id`).
    #[arg(long, value_name = "FILE.csv")]
    pub input: Option<PathBuf>,
    /// IANA time zone of the local days (overrides the configuration; default Europe/Paris).
    #[arg(long)]
    pub tz: Option<String>,
    /// First local day (YYYY-MM-DD). Default: the first day of the data.
    #[arg(long, requires = "to")]
    pub from: Option<NaiveDate>,
    /// Day after the last (exclusive, YYYY-MM-DD). Default: the day after the last of the data.
    #[arg(long, requires = "from")]
    pub to: Option<NaiveDate>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// A probe configuration whose `[counting]` table holds the counting settings (policies,
    /// maintenance calendar, targets).
    #[arg(long, value_name = "PROBES.toml")]
    pub config: Option<PathBuf>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let settings = load_settings(args.config.as_deref(), args.tz.as_deref())?;
    let (input, span) = match (&args.db, &args.input) {
        (Some(db), _) => load_db(db, args.from.zip(args.to), &settings).await?,
        (None, Some(csv)) => load_csv(csv)?,
        (None, None) => bail!("give --db FILE or --input FILE.csv"),
    };
    let period = match (args.from, args.to) {
        (Some(from), Some(to)) => Period { from, to },
        _ => match span {
            Some((lo, hi)) => Period {
                from: time::local_date(settings.tz, lo),
                to: time::local_date(settings.tz, hi) + chrono::Duration::days(1),
            },
            None => bail!("no observations found, and no --from/--to given: nothing to count"),
        },
    };
    let kpis = engine::compute(&input, period, &settings)?;
    let mut out = std::io::stdout().lock();
    match args.format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &engine::json::to_json(&kpis))?;
            writeln!(out)?;
        }
        OutputFormat::Table => write_table(&mut out, &kpis)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Counting settings: the `[counting]` table of a probe configuration if given, then `--tz`.
pub fn load_settings(config: Option<&Path>, tz: Option<&str>) -> anyhow::Result<Settings> {
    let mut settings = match config {
        None => Settings::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let doc: toml::Table = toml::from_str(&text)
                .with_context(|| format!("{} is not valid TOML", path.display()))?;
            match doc.get("counting") {
                None => Settings::default(),
                Some(v) => v.clone().try_into().with_context(|| {
                    format!("{}: the [counting] table is invalid", path.display())
                })?,
            }
        }
    };
    if let Some(name) = tz {
        settings.tz = name.parse::<Tz>().map_err(|_| {
            anyhow::anyhow!("unknown time zone {name:?}: give an IANA name such as Europe/Paris")
        })?;
    }
    Ok(settings)
}

async fn load_db(
    db: &Path,
    period: Option<(NaiveDate, NaiveDate)>,
    settings: &Settings,
) -> anyhow::Result<(EngineInput, Option<(i64, i64)>)> {
    if !db.exists() {
        bail!(
            "database {} does not exist (create it with `dispo run` or `dispo import`)",
            db.display()
        );
    }
    let store = Store::open(db).await?;
    let (from_ms, to_ms) = match period {
        Some((from, to)) => {
            if to <= from {
                bail!("--from {from} must come before --to {to} (--to is exclusive)");
            }
            // An hour before the period too, so a failure run that began just before is seen whole.
            (
                time::day_start_ms(settings.tz, from) - 3_600_000,
                time::day_start_ms(settings.tz, to),
            )
        }
        None => match store.observation_span().await? {
            Some((lo, hi)) => (lo, hi + 1),
            None => (0, 0),
        },
    };
    let rows = store
        .load_for_counting(from_ms, to_ms, &[])
        .await?
        .observations;
    let span = rows
        .first()
        .zip(rows.last())
        .map(|(a, b)| (a.received_at_ms, b.received_at_ms));
    let monitored = store.monitored_intervals(from_ms, to_ms).await?;
    Ok((
        EngineInput {
            observations: rows,
            monitored,
        },
        span,
    ))
}

/// Reads a whole observation CSV; the first bad row stops with its line number and reason.
pub fn load_csv(path: &Path) -> anyhow::Result<(EngineInput, Option<(i64, i64)>)> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut rows =
        CsvRows::new(BufReader::new(file)).with_context(|| format!("{}", path.display()))?;
    let mut observations = Vec::new();
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    while let Some(row) = rows
        .next_row()
        .with_context(|| format!("{}", path.display()))?
    {
        match row {
            Row::Obs(o) => {
                lo = lo.min(o.obs.received_at_ms);
                hi = hi.max(o.obs.received_at_ms);
                observations.push(o.obs);
            }
            Row::Reject(r) => bail!("{}:{}: {}", path.display(), r.line, r.reason),
        }
    }
    let span = (!observations.is_empty()).then_some((lo, hi));
    Ok((
        EngineInput {
            observations,
            monitored: None,
        },
        span,
    ))
}

fn write_table(out: &mut impl Write, k: &Kpis) -> std::io::Result<()> {
    writeln!(
        out,
        "Period {} to {} (exclusive), local days in {}",
        k.period.from,
        k.period.to,
        k.settings.tz.name()
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<10}  {:<5}  {:<8}  {:>9}  {:>10}  {:>9}  {:>10}  {:>8}  {:>8}  {:>7}  avg ms per service",
        "date",
        "estab",
        "iface",
        "uptime %",
        "downtime s",
        "planned s",
        "unmonit. s",
        "requests",
        "no reply",
        "error %"
    )?;
    for d in &k.days {
        let avg: Vec<String> = d
            .latency
            .iter()
            .map(|(s, l)| format!("{s} {:.1}", l.avg_ms))
            .collect();
        writeln!(
            out,
            "{:<10}  {:<5}  {:<8}  {:>9.4}  {:>10.3}  {:>9.3}  {:>10.3}  {:>8}  {:>8}  {:>7.3}  {}",
            d.date.to_string(),
            d.establishment.as_str(),
            d.interface.as_str(),
            d.uptime_pct,
            d.downtime_s,
            d.planned_downtime_s,
            d.unmonitored_s,
            d.requests,
            d.no_reply,
            d.error_rate_pct,
            avg.join(", ")
        )?;
    }
    writeln!(out)?;
    if k.episodes.is_empty() {
        writeln!(
            out,
            "No unavailability episode (Art. 33(1): five failures within 30 s)."
        )?;
    } else {
        writeln!(out, "Unavailability episodes (Art. 33(1)):")?;
        for e in &k.episodes {
            writeln!(
                out,
                "  {}  {} -> {}  {:.3} s{}{}",
                e.id(),
                time::rfc3339(e.start_ms),
                time::rfc3339(e.end_ms),
                e.duration_s(),
                if e.open { "  (open)" } else { "" },
                if e.planned_s > 0.0 {
                    format!("  ({:.3} s planned)", e.planned_s)
                } else {
                    String::new()
                }
            )?;
        }
    }
    writeln!(out)?;
    writeln!(out, "Weekly watch (Art. 33(7)):")?;
    for w in &k.weeks {
        let level = w
            .level
            .map(|l| format!("{l:?}").to_lowercase())
            .unwrap_or_else(|| "met".into());
        writeln!(
            out,
            "  {}  {}  uptime {:.4} %  errors {:.3} %  {} miss(es)  {}",
            w.week,
            w.establishment.as_str(),
            w.uptime_pct,
            w.error_rate_pct,
            w.misses.len(),
            level
        )?;
    }
    if !k.fallback.is_empty() {
        writeln!(out)?;
        writeln!(out, "Fallback use:")?;
        for f in &k.fallback {
            writeln!(
                out,
                "  {}  {}  {:<20}  justified {}  unjustified {}",
                f.date,
                f.establishment.as_str(),
                f.tpp.as_deref().unwrap_or("(unknown TPP)"),
                f.justified,
                f.unjustified
            )?;
        }
    }
    Ok(())
}

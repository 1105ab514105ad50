//! `dispo kpi`: the regulatory figures of a period, from the database or an observation CSV,
//! as JSON (for scripts; names documented in the README) or a terminal table.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::NaiveDate;
use chrono_tz::Tz;

use crate::engine::{self, Kpis, Period, Settings, time};
use crate::period;
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Json,
    Table,
}

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("source").args(["db", "input"]))]
pub struct Args {
    /// The database: a SQLite file or a postgres:// URL (without --input: DISPO_DB if set).
    #[arg(long, value_parser = crate::cli::DbParser, value_name = "FILE")]
    pub db: Option<crate::store::Target>,
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
    let given = args.from.zip(args.to).map(|(from, to)| Period { from, to });
    if let Some(p) = given
        && p.to <= p.from
    {
        super::usage!(
            "--from {} must come before --to {} (--to is exclusive)",
            p.from,
            p.to
        );
    }
    // Any synthetic observation read (`dispo synth`): every output says so.
    let mut synthetic = false;
    let db = match &args.input {
        Some(_) => None,
        None => super::db_or_env(args.db.clone())?,
    };
    let kpis = match (&db, &args.input) {
        (Some(db), _) => {
            let store = Store::open_existing(db).await?;
            let period = match given {
                Some(p) => p,
                None => match store.observation_span().await? {
                    Some(span) => period::period_of_span(span, &settings),
                    None => bail!(
                        "no observations in {}, and no --from/--to given: nothing to count",
                        db
                    ),
                },
            };
            let now = chrono::Utc::now().timestamp_millis();
            // Counted as the rows are read: a quarter of any size in bounded memory.
            let counted = period::count(&store, period, &settings, &[], now).await?;
            synthetic = counted.synthetic;
            counted.kpis
        }
        (None, Some(csv)) => {
            let now = chrono::Utc::now().timestamp_millis();
            // Resolved, so that its messages say where dispo looked.
            let csv = std::path::absolute(csv).unwrap_or_else(|_| csv.clone());
            let (input, span) = period::from_csv(&csv, &settings, now)?;
            let period = match (given, span) {
                (Some(p), _) => p,
                (None, Some(span)) => period::period_of_span(span, &settings),
                (None, None) => {
                    bail!("no observations found, and no --from/--to given: nothing to count")
                }
            };
            engine::compute(&input, period, &settings)?
        }
        (None, None) => super::usage!("give --db FILE (or set DISPO_DB) or --input FILE.csv"),
    };
    let mut out = std::io::stdout().lock();
    match args.format {
        OutputFormat::Json => {
            let mut json = engine::json::to_json(&kpis);
            if let Some(o) = json.as_object_mut() {
                o.insert("synthetic".into(), synthetic.into());
            }
            serde_json::to_writer_pretty(&mut out, &json)?;
            writeln!(out)?;
        }
        OutputFormat::Table => {
            if synthetic {
                writeln!(
                    out,
                    "SYNTHETIC DATA (dispo synth): these figures describe no real measurement.\n"
                )?;
            }
            write_table(&mut out, &kpis)?
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Section 10, when some series was probed from two vantages or more (silent otherwise: one
/// vantage is counted as it always was): which vantages covered, and their vantage faults.
fn write_vantages(out: &mut impl Write, k: &Kpis) -> std::io::Result<()> {
    if k.vantages.is_empty() && k.vantage_faults.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(
        out,
        "Vantage points (down when vantage_quorum = {} of the vantages covering agree):",
        k.settings.vantage_quorum
    )?;
    for v in &k.vantages {
        writeln!(
            out,
            "  {}  {:<8}  {:<20}  covered {:.3} s",
            v.establishment.as_str(),
            v.interface.as_str(),
            v.vantage.as_str(),
            v.covered_s
        )?;
    }
    if k.vantage_faults.is_empty() {
        writeln!(out, "No vantage fault.")?;
    } else {
        writeln!(
            out,
            "Vantage faults (an outage seen from too few vantages: not downtime):"
        )?;
        for f in &k.vantage_faults {
            writeln!(
                out,
                "  {}  {:<8}  {:<20}  {} -> {}  {:.3} s  {} probes set aside",
                f.establishment.as_str(),
                f.interface.as_str(),
                f.vantage.as_str(),
                time::rfc3339(f.start_ms),
                time::rfc3339(f.end_ms),
                f.duration_s(),
                f.set_aside
            )?;
        }
    }
    Ok(())
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
            let mut s: Settings = match doc.get("counting") {
                None => Settings::default(),
                Some(v) => v.clone().try_into().with_context(|| {
                    format!("{}: the [counting] table is invalid", path.display())
                })?,
            };
            // The monitor's own client ids: its requests in gateway logs are no TPP's.
            if s.monitor_client_ids.is_empty() {
                s.monitor_client_ids = monitor_client_ids(&doc);
            }
            s
        }
    };
    if let Some(name) = tz {
        settings.tz = name.parse::<Tz>().map_err(|_| {
            anyhow::anyhow!("unknown time zone {name:?}: give an IANA name such as Europe/Paris")
        })?;
    }
    Ok(settings)
}

/// The `client_id` of every `[[establishment]]` of a probe configuration.
fn monitor_client_ids(doc: &toml::Table) -> Vec<crate::domain::TppId> {
    // An establishment without its own client_id has the one of [defaults].
    let default = doc
        .get("defaults")
        .and_then(|d| d.get("client_id"))
        .and_then(toml::Value::as_str);
    let mut ids: Vec<crate::domain::TppId> = doc
        .get("establishment")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("client_id").and_then(toml::Value::as_str).or(default))
        .map(Into::into)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The establishment codes of a probe configuration (none without one), for
/// [`crate::domain::unknown_code_warning`].
pub fn configured_codes(config: Option<&Path>) -> Vec<crate::domain::EstablishmentCode> {
    let Some(text) = config.and_then(|p| std::fs::read_to_string(p).ok()) else {
        return Vec::new();
    };
    let Ok(doc) = toml::from_str::<toml::Table>(&text) else {
        return Vec::new();
    };
    doc.get("establishment")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("code")?.as_str()?.parse().ok())
        .collect()
}

/// Warns, once each, about the codes [`crate::domain::unknown_code_warning`] finds unknown.
pub fn warn_unknown_codes(
    codes: impl IntoIterator<Item = crate::domain::EstablishmentCode>,
    config: Option<&Path>,
) {
    let configured = configured_codes(config);
    let codes: std::collections::BTreeSet<_> = codes.into_iter().collect();
    for c in codes {
        if let Some(w) = crate::domain::unknown_code_warning(c, &configured) {
            tracing::warn!("{w}");
        }
    }
}

/// Shown for a figure nobody observed.
const ND: &str = "n.d.";

fn opt(v: Option<f64>, width: usize, prec: usize) -> String {
    match v {
        Some(x) => format!("{x:>width$.prec$}"),
        None => format!("{ND:>width$}"),
    }
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
        "{:<10}  {:<5}  {:<8}  {:>9}  {:>9}  {:>10}  {:>9}  {:>10}  {:>8}  {:>8}  {:>7}  avg ms per service (ok replies)",
        "date",
        "estab",
        "iface",
        "covered %",
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
            "{:<10}  {:<5}  {:<8}  {:>9.3}  {}  {:>10.3}  {:>9.3}  {:>10.3}  {:>8}  {:>8}  {}  {}",
            d.date.to_string(),
            d.establishment.as_str(),
            d.interface.as_str(),
            d.coverage_pct,
            opt(d.uptime_pct, 9, 4),
            d.downtime_s,
            d.planned_downtime_s,
            d.unmonitored_s,
            d.requests,
            d.no_reply,
            opt(d.error_rate_pct, 7, 3),
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
                "  {}  {} -> {}  {:.3} s{}{}{}{}",
                e.id(),
                time::rfc3339(e.start_ms),
                time::rfc3339(e.end_ms),
                e.duration_s(),
                if e.open { "  (open)" } else { "" },
                if e.cut {
                    "  (cut: monitoring interrupted)"
                } else {
                    ""
                },
                if e.began_before_period {
                    "  (began before the period)"
                } else {
                    ""
                },
                if e.planned_s > 0.0 {
                    format!("  ({:.3} s planned)", e.planned_s)
                } else {
                    String::new()
                }
            )?;
        }
    }
    write_vantages(out, k)?;
    writeln!(out)?;
    writeln!(out, "Weekly watch (Art. 33(7)):")?;
    for w in &k.weeks {
        let level = match (w.complete, w.level, w.uptime_pct) {
            (false, _, _) => "incomplete (not judged)".to_string(),
            (true, Some(l), _) => format!("{l:?}").to_lowercase(),
            (true, None, None) => "not observed".into(),
            (true, None, Some(_)) => "met".into(),
        };
        writeln!(
            out,
            "  {}  {}  uptime {} %  errors {} %  {} miss(es)  {}",
            w.week,
            w.establishment.as_str(),
            opt(w.uptime_pct, 0, 4),
            opt(w.error_rate_pct, 0, 3),
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

//! The quarterly publication: what the bank puts on its website each quarter, and apart from it
//! what it gives its supervisor (methodology section 9). In: the store and a period. Every figure
//! comes from the counting engine; the polars pipeline (`frames`) reshapes them and `view` lays
//! them out establishment by establishment. Out, in `<out>/<period>/` (public): a spreadsheet
//! with native charts (`xlsx`), PNG and SVG charts (`charts`), a self-contained web page
//! (`html`), and the daily table as CSV (`csv`) — no TPP, request id or watch level in any of
//! them; in `<out>/<period>/annexe-acpr/` (never linked from the page): the supervisor's annex
//! (`annex`) with its SHA-256 manifest.

pub mod annex;
pub mod charts;
pub mod csv;
pub mod definitions;
pub mod frames;
pub mod html;
pub mod labels;
pub mod publish;
pub mod view;
pub mod xlsx;

use std::collections::BTreeSet;
use std::path::PathBuf;

use chrono::{Datelike, NaiveDate};

use crate::domain::{EstablishmentCode, Interface, Service};
use crate::engine::{self, Kpis, Period, Settings, time};
use crate::store::{Store, StoreError};
pub use labels::Lang;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{0:?} is not a quarter: write 2024-Q3 or T3-2024")]
    Quarter(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Period(#[from] crate::period::PeriodError),
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    #[error("polars: {0}")]
    Frame(#[from] polars::prelude::PolarsError),
    #[error("spreadsheet: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    #[error("chart {name}: {why}")]
    Chart { name: String, why: String },
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no observation in the period {from} to {to} (exclusive){}: nothing to publish", .filter)]
    NoData {
        from: NaiveDate,
        to: NaiveDate,
        filter: String,
    },
}

/// Parses `2024-Q3` or `T3-2024` into its period and canonical label.
pub fn parse_quarter(s: &str) -> Result<(Period, String), ReportError> {
    let bad = || ReportError::Quarter(s.to_owned());
    let (year, q) = if let Some((y, q)) = s.split_once("-Q").or_else(|| s.split_once("-q")) {
        (
            y.parse::<i32>().map_err(|_| bad())?,
            q.parse::<u32>().map_err(|_| bad())?,
        )
    } else if let Some(rest) = s.strip_prefix('T').or_else(|| s.strip_prefix('t')) {
        let (q, y) = rest.split_once('-').ok_or_else(bad)?;
        (
            y.parse::<i32>().map_err(|_| bad())?,
            q.parse::<u32>().map_err(|_| bad())?,
        )
    } else {
        return Err(bad());
    };
    if !(1..=4).contains(&q) || !(1970..=9999).contains(&year) {
        return Err(bad());
    }
    let from = NaiveDate::from_ymd_opt(year, 3 * q - 2, 1).ok_or_else(bad)?;
    let to = if q == 4 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, 3 * q + 1, 1)
    }
    .ok_or_else(bad)?;
    Ok((Period { from, to }, format!("{year}-Q{q}")))
}

/// What to publish.
#[derive(Debug, Clone)]
pub struct ReportRequest {
    pub period: Period,
    /// `2024-Q3`, or `2024-07-01_2024-10-01` for other periods: names the output folder and files.
    pub label: String,
    pub establishments: Vec<EstablishmentCode>,
    pub lang: Lang,
    pub out: PathBuf,
    pub settings: Settings,
}

/// What was written.
#[derive(Debug, Clone, Default)]
pub struct ReportOutputs {
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    /// Observations of the period counted.
    pub observations: usize,
}

/// Everything the outputs show, computed once.
pub struct Publication {
    pub req: ReportRequest,
    pub kpis: Kpis,
    pub summary: polars::prelude::DataFrame,
    pub bank_daily: polars::prelude::DataFrame,
    pub usage: polars::prelude::DataFrame,
    /// Services with replies in the period, sorted.
    pub services: Vec<Service>,
    pub establishments: Vec<EstablishmentCode>,
    pub synthetic: bool,
    /// The period is not over: every output says its figures are provisional.
    pub provisional: bool,
    pub observations: usize,
    /// Local time with its offset.
    pub generated_at: String,
}

/// One line of the period summary.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    pub establishment: String,
    pub interface: Interface,
    /// Over the covered time; `None` ("n.d.") when nothing was covered.
    pub uptime_pct: Option<f64>,
    pub covered_s: f64,
    pub downtime_s: f64,
    pub planned_s: f64,
    pub unmonitored_s: f64,
    pub requests: f64,
    pub no_reply: f64,
    /// `None` when there was no request.
    pub error_rate_pct: Option<f64>,
    pub episodes: usize,
    /// For each of `Publication::services`, (average, p95) ms over the period; `None` when the
    /// service had no reply on this interface.
    pub latency: Vec<Option<(f64, f64)>>,
    /// Dedicated interface only: fallback requests / (dedicated + fallback requests) × 100.
    pub fallback_share_pct: Option<f64>,
    /// Dedicated interface only: weeks of the weekly watch that missed a target, of those judged
    /// (complete and observed).
    pub weeks_missed: Option<(usize, usize)>,
}

impl Publication {
    /// The period summary as rows (from the polars frame), with each row's episode count.
    pub fn summary_rows(&self) -> Result<Vec<SummaryRow>, ReportError> {
        let s = &self.summary;
        let (est, iface) = (
            frames::strs(s, "establishment")?,
            frames::strs(s, "interface")?,
        );
        let col = |c: &str| frames::nums(s, c);
        let (up, cov, err) = (
            frames::opt_nums(s, "uptime_pct")?,
            col("covered_s")?,
            frames::opt_nums(s, "error_rate_pct")?,
        );
        let (down, planned, unmon, reqs, nor) = (
            col("downtime_s")?,
            col("planned_s")?,
            col("unmonitored_s")?,
            col("requests")?,
            col("no_reply")?,
        );
        let requests_of = |e: &str, i: Interface| -> u64 {
            self.kpis
                .days
                .iter()
                .filter(|d| d.establishment.as_str() == e && d.interface == i)
                .map(|d| d.tpp_requests)
                .sum()
        };
        Ok((0..est.len())
            .map(|r| {
                let interface: Interface = iface[r].parse().unwrap_or(Interface::Api);
                let e = est[r].as_str();
                let latency = self
                    .services
                    .iter()
                    .map(|svc| {
                        self.kpis
                            .period_latency
                            .iter()
                            .find(|l| {
                                l.establishment.as_str() == e
                                    && l.interface == interface
                                    && &l.service == svc
                            })
                            .map(|l| (l.stats.avg_ms, l.stats.p95_ms))
                    })
                    .collect();
                let dedicated = interface == Interface::Api;
                // TPP requests only (methodology section 6): the monitor's own checks of the
                // fallback are no use of it. n.d. without TPP traffic.
                let fallback_share_pct = dedicated
                    .then(|| {
                        let (api, fb) = (
                            requests_of(e, Interface::Api),
                            requests_of(e, Interface::Fallback),
                        );
                        (api + fb > 0).then(|| fb as f64 / (api + fb) as f64 * 100.0)
                    })
                    .flatten();
                let weeks_missed = dedicated.then(|| {
                    let weeks = self
                        .kpis
                        .weeks
                        .iter()
                        // Judged weeks only: an incomplete or unobserved week is no evidence.
                        .filter(|w| {
                            w.establishment.as_str() == e && w.complete && w.uptime_pct.is_some()
                        });
                    let (mut missed, mut of) = (0, 0);
                    for w in weeks {
                        of += 1;
                        missed += usize::from(!w.misses.is_empty());
                    }
                    (missed, of)
                });
                SummaryRow {
                    latency,
                    fallback_share_pct,
                    weeks_missed,
                    episodes: self
                        .kpis
                        .episodes
                        .iter()
                        .filter(|e| e.establishment.as_str() == est[r] && e.interface == interface)
                        .count(),
                    establishment: est[r].clone(),
                    interface,
                    uptime_pct: up[r],
                    covered_s: cov[r],
                    downtime_s: down[r],
                    planned_s: planned[r],
                    unmonitored_s: unmon[r],
                    requests: reqs[r],
                    no_reply: nor[r],
                    error_rate_pct: err[r],
                }
            })
            .collect())
    }

    pub fn customer_interfaces(&self) -> Vec<Interface> {
        let set: BTreeSet<Interface> = self
            .kpis
            .days
            .iter()
            .map(|d| d.interface)
            .filter(|i| i.is_customer())
            .collect();
        set.into_iter().collect()
    }
    pub fn file(&self, suffix: &str) -> String {
        format!("dispo-{}{suffix}", self.req.label)
    }
}

/// Loads, counts and writes every output.
pub async fn generate(store: &Store, req: &ReportRequest) -> Result<ReportOutputs, ReportError> {
    let tz = req.settings.tz;
    let to_ms = time::day_start_ms(tz, req.period.to);
    let started = std::time::Instant::now();
    let now = chrono::Utc::now().timestamp_millis();
    // Counted as the store streams the period (memory follows a day of traffic, not the
    // quarter): the usage table from the same rows, and the first record of each request the
    // episodes name for the annex.
    let (counted, usage) = crate::period::count_with(
        store,
        req.period,
        &req.settings,
        &req.establishments,
        now,
        frames::UsageCounts::new(&req.settings, req.period),
        |u, o| u.add(o),
    )
    .await?;
    let observations = usize::try_from(counted.in_period).unwrap_or(usize::MAX);
    if observations == 0 {
        let filter = if req.establishments.is_empty() {
            String::new()
        } else {
            format!(
                " for {}",
                req.establishments
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        return Err(ReportError::NoData {
            from: req.period.from,
            to: req.period.to,
            filter,
        });
    }
    tracing::debug!(
        rows = counted.read,
        secs = started.elapsed().as_secs_f64(),
        "report: observations counted"
    );
    let usage = usage.frame()?;
    // Synthetic rows in the look-back count too: they shaped its first episodes.
    let synthetic = counted.synthetic;
    let kpis = counted.kpis;
    let details = annex::request_details(&counted.named_requests, &kpis);
    let days_df = frames::days(&kpis.days)?;
    let services: BTreeSet<Service> = kpis
        .days
        .iter()
        .flat_map(|d| d.latency.keys().cloned())
        .collect();
    let establishments: BTreeSet<EstablishmentCode> =
        kpis.days.iter().map(|d| d.establishment).collect();
    let publication = Publication {
        summary: frames::period_summary(&days_df)?,
        bank_daily: frames::bank_daily(&days_df)?,
        usage,
        services: services.into_iter().collect(),
        establishments: establishments.into_iter().collect(),
        synthetic,
        // Not over until its last local day has ended.
        provisional: now < to_ms,
        observations,
        generated_at: req.lang.local_time(tz, now),
        kpis,
        req: req.clone(),
    };
    let views = publication.views()?;
    // A one-day period is drawn by hour.
    let hourly = if req.period.to - req.period.from == chrono::Duration::days(1) {
        // The spans the engine counted from (a day's: small).
        let (from, to) = engine::load_range(req.period, &req.settings);
        let coverage = store.coverage(from, to, now).await?;
        Some(charts::Hourly::compute(&publication, &coverage))
    } else {
        None
    };
    let dir = req.out.join(&req.label);
    // All the files or none: a later output failing (a cell the spreadsheet refuses) leaves no
    // half publication, and an earlier publication of the period stays as it was.
    let files = publish::all_or_nothing(
        &dir,
        |tmp| {
            std::fs::create_dir_all(tmp.join("charts")).map_err(|source| ReportError::Io {
                path: tmp.to_path_buf(),
                source,
            })?;
            let mut files = Vec::new();
            files.push(csv::write(&publication, tmp)?);
            files.extend(charts::write_all(
                &publication,
                &views,
                hourly.as_ref(),
                &tmp.join("charts"),
            )?);
            tracing::debug!(
                secs = started.elapsed().as_secs_f64(),
                "report: charts drawn"
            );
            files.push(xlsx::write(&publication, &views, tmp)?);
            files.push(html::write(&publication, &views, tmp)?);
            files.extend(annex::write(&publication, &details, tmp)?);
            Ok(files)
        },
        |path, source| ReportError::Io { path, source },
    )?;
    tracing::debug!(secs = started.elapsed().as_secs_f64(), "report: written");
    Ok(ReportOutputs {
        dir,
        files,
        observations,
    })
}

/// `2024-07-01` → `01/07/2024` in French, ISO in English.
pub fn show_date(d: NaiveDate, lang: Lang) -> String {
    match lang {
        Lang::Fr => format!("{:02}/{:02}/{}", d.day(), d.month(), d.year()),
        Lang::En => d.to_string(),
    }
}

//! The public status page (« Disponibilité des API DSP2 à date »): per establishment, the state
//! of each interface now, open and recent episodes, the quarter to date and the planned
//! maintenance ahead. Served by `dispo run --http-listen` (HTML, `/status.json`, `/feed.atom`)
//! and written once by `dispo status`.
//!
//! In: the store, the counting settings and which establishments and series the configuration
//! watches. Out: a [`Page`], built by the pure [`build`] from two snapshots that [`service`]
//! computes through the engine: the quarter to date ([`QuarterSnapshot`], `period::count` as
//! the store streams it, cached for a minute or more) and the state now ([`LiveSnapshot`], the
//! engine's episode rule over the last minutes, cached for two seconds). Formats: [`html`],
//! [`json`], [`atom`]; HTTP: [`http`].
//!
//! Public like the quarterly publication (methodology section 9): it names no TPP, shows no
//! request id and no weekly watch level. Episodes are shown by interface and times only.
//!
//! Several vantage points (section 10): both snapshots count as `kpi` does, each vantage its
//! own series and episodes, combined by policy `vantage_quorum` (the quarter through
//! `period::count`, the live window through [`crate::engine::window`]), so the page's episodes
//! are kpi's, with the same ids (the start where the quorum was reached). A vantage fault is
//! never on the page nor in the feed; the page says from how many vantage points it is
//! measured, never which. `dispo status` tells the operator of the faults, apart.

pub mod atom;
pub mod html;
pub mod http;
pub mod json;
pub mod service;
pub mod words;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate};

use crate::domain::{EstablishmentCode, Interface, Service, Vantage};
use crate::engine::coverage::SeriesCoverage;
use crate::engine::{Episode, Period, Settings, VantageFault, time};

/// A followed log or heartbeat this recent (or a monitor still running) makes a series
/// monitored now: the same delay after which the store takes a silent monitor as stopped.
pub const FRESH_MS: i64 = crate::store::coverage::STALE_HEARTBEAT_MS;

/// Closed episodes shown when they ended within this long.
pub const RECENT_MS: i64 = 7 * 86_400_000;

/// At most this many episodes per establishment on the page and in the feed.
pub const MAX_EPISODES: usize = 10;

/// Planned maintenance shown this far ahead.
pub const MAINTENANCE_AHEAD_DAYS: i64 = 7;

/// What can go wrong while building the page.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Period(#[from] crate::period::PeriodError),
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    #[error("the figures could not be computed: {0}")]
    Task(String),
}

/// What the page covers: the establishments (with the name to show) and the series the
/// configuration probes, besides whatever the data holds.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// In the configuration's order.
    pub establishments: Vec<(EstablishmentCode, String)>,
    pub series: BTreeSet<(EstablishmentCode, Interface)>,
    pub settings: Settings,
}

impl Scope {
    /// From a validated probe configuration: its establishments and the interface of each probe.
    pub fn of_config(cfg: &crate::config::Config) -> Self {
        let mut series = BTreeSet::new();
        for p in &cfg.probes {
            for e in &cfg.establishments {
                if p.establishments.is_empty() || p.establishments.contains(&e.code) {
                    series.insert((e.code, p.step.interface()));
                }
            }
        }
        Self {
            establishments: cfg
                .establishments
                .iter()
                .map(|e| (e.code, e.name.clone()))
                .collect(),
            series,
            settings: cfg.counting.clone(),
        }
    }
}

/// The quarter to date, reduced to what the page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct QuarterSnapshot {
    /// From the quarter's first day to the day after today (local days).
    pub period: Period,
    pub computed_at_ms: i64,
    pub figures: BTreeMap<(EstablishmentCode, Interface), QuarterFigures>,
    /// Episodes of the quarter (the engine's), by (establishment, interface, start).
    pub episodes: Vec<Episode>,
    pub synthetic: bool,
    /// Outages seen from too few vantage points (section 10): never on the page; they place
    /// the live window and `dispo status` tells the operator of them.
    pub vantage_faults: Vec<VantageFault>,
    /// How many vantage points measured a series probed from more than one (0 otherwise): the
    /// page says how many, never which (as the publication).
    pub vantage_points: usize,
}

/// One series over the quarter to date.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QuarterFigures {
    /// `100 − Σdowntime / Σcovered × 100` over the days so far (the publication's summary);
    /// `None` when nothing was covered.
    pub uptime_pct: Option<f64>,
    /// Covered time over the time elapsed since the quarter began.
    pub coverage_pct: Option<f64>,
    /// Mean response time of the successful replies per service over the quarter so far (the
    /// engine's period figure), the token endpoint left out.
    pub avg_ms: BTreeMap<Service, f64>,
}

impl QuarterSnapshot {
    /// Reduces the engine's figures for `period` to the page's, at `now_ms`.
    pub fn from_kpis(k: &crate::engine::Kpis, now_ms: i64, synthetic: bool) -> Self {
        let tz = k.settings.tz;
        let start = time::day_start_ms(tz, k.period.from);
        let elapsed_s = ((now_ms - start) as f64 / 1000.0).max(0.0);
        let mut sums: BTreeMap<(EstablishmentCode, Interface), (f64, f64)> = BTreeMap::new();
        for d in &k.days {
            let s = sums.entry((d.establishment, d.interface)).or_default();
            s.0 += d.covered_s;
            s.1 += d.downtime_s;
        }
        let mut figures: BTreeMap<_, QuarterFigures> = sums
            .into_iter()
            .map(|(key, (covered, down))| {
                let f = QuarterFigures {
                    uptime_pct: (covered > 0.0).then(|| 100.0 - down / covered * 100.0),
                    coverage_pct: (elapsed_s > 0.0)
                        .then(|| (covered / elapsed_s * 100.0).min(100.0)),
                    avg_ms: BTreeMap::new(),
                };
                (key, f)
            })
            .collect();
        for l in &k.period_latency {
            if l.service.as_str() == Service::TOKEN {
                continue;
            }
            figures
                .entry((l.establishment, l.interface))
                .or_default()
                .avg_ms
                .insert(l.service.clone(), l.stats.avg_ms);
        }
        let mut points: Vec<&Vantage> = k.vantages.iter().map(|v| &v.vantage).collect();
        points.sort_unstable();
        points.dedup();
        Self {
            period: k.period,
            computed_at_ms: now_ms,
            figures,
            episodes: k.episodes.clone(),
            synthetic,
            vantage_faults: k.vantage_faults.clone(),
            vantage_points: points.len(),
        }
    }
}

/// The series as they are now: the engine's episode rule over the last minutes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LiveSnapshot {
    /// The window read: from this instant to `computed_at_ms`.
    pub from_ms: i64,
    pub computed_at_ms: i64,
    pub series: BTreeMap<(EstablishmentCode, Interface), LiveSeries>,
    pub synthetic: bool,
}

/// One series in the live window.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LiveSeries {
    pub coverage: SeriesCoverage,
    /// In start order; the last one is `open` while the interface is down.
    pub episodes: Vec<Episode>,
}

/// The state of one interface now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Up,
    /// Deemed unavailable (Art. 33(1)) since this instant.
    Down {
        since_ms: i64,
    },
    /// No running monitor nor recent log covers it; since the end of its last coverage, when
    /// known.
    Unmonitored {
        since_ms: Option<i64>,
    },
}

impl State {
    pub fn key(self) -> &'static str {
        match self {
            State::Up => "up",
            State::Down { .. } => "down",
            State::Unmonitored { .. } => "unmonitored",
        }
    }

    /// From the live window: down while its last episode is open; up while covered up to now
    /// (a monitor running, a log line within [`FRESH_MS`]); unmonitored otherwise.
    pub fn of(live: Option<&LiveSeries>, now_ms: i64) -> State {
        let Some(s) = live else {
            return State::Unmonitored { since_ms: None };
        };
        if let Some(e) = s.episodes.last().filter(|e| e.open) {
            return State::Down {
                since_ms: e.start_ms,
            };
        }
        let cov = &s.coverage;
        match (cov.spans.last(), cov.open_end.last()) {
            (Some(&(_, end)), Some(true)) if end >= now_ms - FRESH_MS => State::Up,
            (last, _) => State::Unmonitored {
                since_ms: last.map(|s| s.1),
            },
        }
    }
}

/// The whole page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub generated_at_ms: i64,
    pub tz: chrono_tz::Tz,
    pub quarter: Period,
    pub quarter_computed_at_ms: i64,
    pub synthetic: bool,
    /// Seconds between refreshes of the served page; `None` for a one-off file.
    pub refresh_s: Option<u64>,
    /// The episode rule in force (five failures within 30 s unless a policy says otherwise).
    pub failures_to_down: usize,
    pub window_ms: i64,
    /// Vantage points the quarter was measured from, when more than one (else 0): how many,
    /// never which (section 10, as the publication).
    pub vantage_points: usize,
    pub establishments: Vec<EstablishmentView>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EstablishmentView {
    pub code: EstablishmentCode,
    /// As the configuration names it, else the bank's short name; may be empty.
    pub name: String,
    pub interfaces: Vec<InterfaceView>,
    /// Open first, then the most recent; at most [`MAX_EPISODES`].
    pub episodes: Vec<EpisodeView>,
    /// Planned windows ending after now, within [`MAINTENANCE_AHEAD_DAYS`].
    pub maintenance: Vec<(i64, i64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InterfaceView {
    pub interface: Interface,
    pub state: State,
    pub quarter: QuarterFigures,
    /// Episodes since the quarter began.
    pub episodes: usize,
}

/// An episode as the public sees it: interface and times, no request id.
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeView {
    pub interface: Interface,
    pub start_ms: i64,
    /// `None` while still down.
    pub end_ms: Option<i64>,
    /// Ended because monitoring stopped: its true end is unknown.
    pub cut: bool,
    pub planned_s: f64,
    /// The engine's id (`13807-api-20241105T100000.000Z`): establishment, interface and start.
    pub id: String,
}

/// The quarter holding `date`: its first day and label (`2024-Q3`).
pub fn quarter_of(date: NaiveDate) -> (NaiveDate, String) {
    let q = (date.month0() / 3) + 1;
    let first = NaiveDate::from_ymd_opt(date.year(), 3 * q - 2, 1).unwrap_or(date);
    (first, format!("{}-Q{q}", date.year()))
}

/// Builds the page from the two snapshots. Pure: every instant comes in as data.
pub fn build(
    scope: &Scope,
    quarter: &QuarterSnapshot,
    live: &LiveSnapshot,
    now_ms: i64,
    refresh_s: Option<u64>,
) -> Page {
    let settings = &scope.settings;
    // Establishments: the configuration's, in its order, then any other the data holds.
    let mut ests: Vec<(EstablishmentCode, String)> = scope.establishments.clone();
    let seen: BTreeSet<EstablishmentCode> = quarter
        .figures
        .keys()
        .chain(live.series.keys())
        .chain(scope.series.iter())
        .map(|k| k.0)
        .collect();
    for code in seen {
        if !ests.iter().any(|(c, _)| *c == code) {
            ests.push((code, String::new()));
        }
    }
    // The quarter's episodes before the live window, then the live window's (exact there).
    let mut episodes: Vec<&Episode> = quarter
        .episodes
        .iter()
        .filter(|e| e.start_ms < live.from_ms)
        .collect();
    episodes.extend(live.series.values().flat_map(|s| s.episodes.iter()));
    let today = time::local_date(settings.tz, now_ms);
    let establishments = ests
        .into_iter()
        .map(|(code, name)| {
            let name = if name.is_empty() {
                crate::domain::known_establishment(code.as_str())
                    .map(|k| k.short.to_owned())
                    .unwrap_or_default()
            } else {
                name
            };
            let ifaces: BTreeSet<Interface> = quarter
                .figures
                .keys()
                .chain(live.series.keys())
                .chain(scope.series.iter())
                .filter(|k| k.0 == code)
                .map(|k| k.1)
                .collect();
            let mut mine: Vec<&Episode> = episodes
                .iter()
                .copied()
                .filter(|e| e.establishment == code)
                .collect();
            let interfaces = ifaces
                .into_iter()
                .map(|i| InterfaceView {
                    interface: i,
                    state: State::of(live.series.get(&(code, i)), now_ms),
                    quarter: quarter.figures.get(&(code, i)).cloned().unwrap_or_default(),
                    episodes: mine.iter().filter(|e| e.interface == i).count(),
                })
                .collect();
            // Open first, then by end, the most recent first.
            mine.retain(|e| e.open || e.end_ms >= now_ms - RECENT_MS);
            mine.sort_by_key(|e| (!e.open, std::cmp::Reverse(e.end_ms), e.interface));
            mine.truncate(MAX_EPISODES);
            let maintenance = crate::engine::maintenance::spans(
                &settings.maintenance,
                settings.tz,
                &code,
                today,
                today + chrono::Duration::days(MAINTENANCE_AHEAD_DAYS),
            )
            .into_iter()
            .filter(|s| s.1 > now_ms)
            .take(3)
            .collect();
            EstablishmentView {
                code,
                name,
                interfaces,
                episodes: mine
                    .into_iter()
                    .map(|e| EpisodeView {
                        interface: e.interface,
                        start_ms: e.start_ms,
                        end_ms: (!e.open).then_some(e.end_ms),
                        cut: e.cut,
                        planned_s: e.planned_s,
                        id: e.id(),
                    })
                    .collect(),
                maintenance,
            }
        })
        .collect();
    Page {
        generated_at_ms: now_ms,
        tz: settings.tz,
        quarter: quarter.period,
        quarter_computed_at_ms: quarter.computed_at_ms,
        synthetic: quarter.synthetic || live.synthetic,
        refresh_s,
        failures_to_down: settings.failures_to_down,
        window_ms: settings.window_ms,
        vantage_points: quarter.vantage_points,
        establishments,
    }
}

#[cfg(test)]
mod tests;

//! The counting engine: the regulatory counting method of `methodology.md`, as pure functions.
//!
//! In: observations, the intervals during which a monitor was running, a period of local days and
//! the counting settings (every "policy" of the methodology). Out: [`Kpis`] — episodes, daily
//! figures, the weekly Art. 33(7) watch and fallback use. No I/O and no clock: time enters as data,
//! so every rule can be tested with hand-worked figures. `kpi`, the live detector, the alerts and
//! the reports all read their figures from here; outputs format them, never recompute them.

use std::collections::BTreeMap;

pub mod days;
pub mod episodes;
pub mod fallback;
pub mod intervals;
pub mod json;
pub mod live;
pub mod maintenance;
pub mod time;
pub mod weeks;

#[cfg(test)]
mod tests;

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::domain::{
    EstablishmentCode, Interface, MonitoredInterval, Observation, Service, Source, TppId,
};

/// The counting settings. Each field is a documented policy of the methodology; defaults are the
/// methodology's defaults and every report prints them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Time zone of the local days and weeks (IANA name). Default `Europe/Paris`.
    pub tz: Tz,
    /// Consecutive failures that make the interface down. Default 5 (RTS Art. 33(1)).
    pub failures_to_down: usize,
    /// The fifth failure must come at most this long after the first. Default 30 000 ms.
    pub window_ms: i64,
    /// Whether `aspsp_error` (5xx, INTE, INTS) counts as a failure for availability. Default true.
    pub aspsp_error_is_failure: bool,
    /// Services whose failures count; `None` means every service of the interface (default).
    pub counted_services: Option<Vec<Service>>,
    /// Planned maintenance calendar: downtime inside these windows is reported as planned.
    pub maintenance: Vec<MaintenanceWindow>,
    /// Targets of the weekly watch (methodology section 5).
    pub targets: Targets,
    /// Fallback use this long after an episode ends still counts as justified. Default 0.
    pub fallback_grace_s: i64,
    /// Whether the monitor's own fallback probes count as fallback use. Default false: they
    /// check that the contingency access works; counting them would report the monitor itself
    /// as a TPP misusing the fallback.
    pub fallback_counts_probes: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            tz: chrono_tz::Europe::Paris,
            failures_to_down: 5,
            window_ms: 30_000,
            aspsp_error_is_failure: true,
            counted_services: None,
            maintenance: Vec::new(),
            targets: Targets::default(),
            fallback_grace_s: 0,
            fallback_counts_probes: false,
        }
    }
}

/// A recurring weekly maintenance window in local time, e.g. Sunday 02:00 to 06:00.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceWindow {
    /// Day of the week the window starts, `mon` .. `sun`.
    pub weekday: chrono::Weekday,
    /// Local start time, `HH:MM`.
    pub start: chrono::NaiveTime,
    /// Local end time, `HH:MM`; earlier than `start` means the next day.
    pub end: chrono::NaiveTime,
    /// Establishments concerned; empty means all.
    #[serde(default)]
    pub establishments: Vec<EstablishmentCode>,
}

/// Service-level targets of the weekly watch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Targets {
    /// Weekly uptime below this misses. Default 99.5 %.
    pub uptime_pct: f64,
    /// Weekly average response time above this misses, for services not listed below. Default 750 ms.
    pub avg_ms: f64,
    /// Per-service average response-time targets. Default `cbpii` 300 ms.
    pub avg_ms_by_service: BTreeMap<Service, f64>,
    /// Weekly error rate above this misses. Default 0.5 %.
    pub error_rate_pct: f64,
    /// Whether the dedicated interface must be at least as available as each customer interface
    /// (Art. 32(1)). Default true.
    pub parity_with_customer_interface: bool,
}

impl Default for Targets {
    fn default() -> Self {
        let mut by = BTreeMap::new();
        by.insert(Service::new(Service::CBPII).expect("valid"), 300.0);
        Self {
            uptime_pct: 99.5,
            avg_ms: 750.0,
            avg_ms_by_service: by,
            error_rate_pct: 0.5,
            parity_with_customer_interface: true,
        }
    }
}

impl Targets {
    pub fn avg_ms_for(&self, service: &Service) -> f64 {
        self.avg_ms_by_service
            .get(service)
            .copied()
            .unwrap_or(self.avg_ms)
    }
}

/// The local days being computed: `from` inclusive, `to` exclusive, in `Settings::tz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// What the engine counts from.
#[derive(Debug, Clone, Default)]
pub struct EngineInput {
    /// Any order; the engine sorts by (`received_at`, `request_id`).
    pub observations: Vec<Observation>,
    /// When monitors were running. `None` when unknown (e.g. a CSV of gateway logs): then no time
    /// is reported as unmonitored. Only series with probe observations get unmonitored time.
    pub monitored: Option<Vec<MonitoredInterval>>,
}

/// An unavailability episode (methodology section 3), per establishment and interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    pub establishment: EstablishmentCode,
    pub interface: Interface,
    /// `received_at` of the first of the earliest qualifying five failures (UTC epoch ms).
    pub start_ms: i64,
    /// Completion of the first non-failure reply after the run, or the period end / last
    /// heartbeat when still open.
    pub end_ms: i64,
    pub open: bool,
    /// Request ids of the five failures that started it, in order.
    pub request_ids: Vec<String>,
    /// Request id of the reply that ended it, if closed by one.
    pub ended_by: Option<String>,
    /// Seconds of the episode inside planned maintenance windows.
    pub planned_s: f64,
}

impl Episode {
    pub fn duration_s(&self) -> f64 {
        (self.end_ms - self.start_ms) as f64 / 1000.0
    }

    /// A stable identifier: `<establishment>-<interface>-<start UTC, compact>`, e.g.
    /// `13807-api-20240701T101500.000Z`. `dispo kpi` prints it; `dispo evidence --episode` takes it.
    pub fn id(&self) -> String {
        format!(
            "{}-{}-{}",
            self.establishment,
            self.interface,
            time::utc(self.start_ms).format("%Y%m%dT%H%M%S%.3fZ")
        )
    }
}

/// Response-time statistics of one service's replies over one day (or week).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    pub replies: u64,
    pub avg_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The daily figures of one interface of one establishment (methodology section 4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayFigures {
    pub date: NaiveDate,
    pub establishment: EstablishmentCode,
    pub interface: Interface,
    /// 82 800, 86 400 or 90 000.
    pub seconds_in_day: i64,
    pub downtime_s: f64,
    pub planned_downtime_s: f64,
    pub downtime_pct: f64,
    pub uptime_pct: f64,
    pub unmonitored_s: f64,
    /// Observations of the day, every outcome but `probe_error`.
    pub requests: u64,
    pub no_reply: u64,
    /// `aspsp_error` + `unexpected`.
    pub bank_errors: u64,
    /// `bank_errors / requests × 100`; 0 when there were no requests.
    pub error_rate_pct: f64,
    /// Per service, over that service's replies of the day.
    pub latency: BTreeMap<Service, LatencyStats>,
}

/// How serious a run of missed weeks is (Art. 33(7)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WatchLevel {
    /// This week missed.
    Notice,
    /// Two consecutive weeks missed.
    Warning,
    /// Three or more: the exemption's conditions failed for more than two weeks.
    Critical,
}

/// Why a week missed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Miss {
    Uptime {
        actual_pct: f64,
        target_pct: f64,
    },
    ResponseTime {
        service: Service,
        actual_ms: f64,
        target_ms: f64,
    },
    ErrorRate {
        actual_pct: f64,
        target_pct: f64,
    },
    Parity {
        customer_interface: Interface,
        customer_uptime_pct: f64,
        api_uptime_pct: f64,
    },
}

/// One ISO week of the dedicated interface of one establishment (methodology section 5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeekWatch {
    /// ISO week, `2024-W27`.
    pub week: String,
    /// The local Monday that starts it.
    pub monday: NaiveDate,
    pub establishment: EstablishmentCode,
    /// Seconds of the week within the period (weeks cut by the period are partial).
    pub seconds: i64,
    pub uptime_pct: f64,
    pub error_rate_pct: f64,
    pub avg_ms: BTreeMap<Service, f64>,
    pub customer_uptime_pct: BTreeMap<Interface, f64>,
    pub misses: Vec<Miss>,
    /// Consecutive missed weeks ending with this one (0 when this one is met).
    pub consecutive_missed: u32,
    pub level: Option<WatchLevel>,
}

/// Fallback use of one TPP on one local day at one establishment (methodology section 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FallbackUse {
    pub date: NaiveDate,
    pub establishment: EstablishmentCode,
    /// `None` when the log did not name the TPP.
    pub tpp: Option<TppId>,
    pub justified: u64,
    pub unjustified: u64,
}

/// Everything the engine computes for a period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kpis {
    pub period: Period,
    pub settings: Settings,
    /// Sorted by (date, establishment, interface). One row per local day of the period for each
    /// establishment/interface present in the input.
    pub days: Vec<DayFigures>,
    /// Sorted by (establishment, interface, start).
    pub episodes: Vec<Episode>,
    /// Sorted by (establishment, monday).
    pub weeks: Vec<WeekWatch>,
    /// Sorted by (date, establishment, tpp).
    pub fallback: Vec<FallbackUse>,
    /// Response times over the whole period per establishment, interface and service (the
    /// publication's summary: a mean of daily means would weigh a quiet Sunday like a Monday).
    /// Sorted by (establishment, interface, service).
    #[serde(default)]
    pub period_latency: Vec<PeriodLatency>,
}

/// Response times of one service of one interface over the whole period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodLatency {
    pub establishment: EstablishmentCode,
    pub interface: Interface,
    pub service: Service,
    pub stats: LatencyStats,
}

/// Bad input to the engine (never a panic).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    #[error("the period is empty: --from {from} must come before --to {to} (--to is exclusive)")]
    EmptyPeriod { from: NaiveDate, to: NaiveDate },
    #[error("invalid setting {name}: {why}")]
    Setting { name: &'static str, why: String },
}

/// Computes every figure of the methodology for the local days of `period`.
///
/// Episodes are detected over all the observations given (so one that started before the period
/// is still seen) and reported when they overlap the period; day rows cover the period only.
pub fn compute(
    input: &EngineInput,
    period: Period,
    settings: &Settings,
) -> Result<Kpis, EngineError> {
    if period.to <= period.from {
        return Err(EngineError::EmptyPeriod {
            from: period.from,
            to: period.to,
        });
    }
    if settings.failures_to_down == 0 {
        return Err(EngineError::Setting {
            name: "failures_to_down",
            why: "must be at least 1".into(),
        });
    }
    if settings.window_ms < 0 {
        return Err(EngineError::Setting {
            name: "window_ms",
            why: "must not be negative".into(),
        });
    }
    if settings.fallback_grace_s < 0 {
        return Err(EngineError::Setting {
            name: "fallback_grace_s",
            why: "must not be negative".into(),
        });
    }
    let tz = settings.tz;
    let dates: Vec<NaiveDate> = time::days(period.from, period.to).collect();
    let mut bounds: Vec<i64> = dates.iter().map(|d| time::day_start_ms(tz, *d)).collect();
    bounds.push(time::day_start_ms(tz, period.to));
    let (p_start, p_end) = (bounds[0], bounds[dates.len()]);

    let mut sorted: Vec<&Observation> = input.observations.iter().collect();
    sorted.sort_unstable_by(|a, b| {
        a.received_at_ms
            .cmp(&b.received_at_ms)
            .then_with(|| a.request_id.cmp(&b.request_id))
    });
    let mut series: BTreeMap<(EstablishmentCode, Interface), Vec<&Observation>> = BTreeMap::new();
    for o in &sorted {
        series
            .entry((o.establishment, o.interface))
            .or_default()
            .push(o);
    }

    let monitored = input.monitored.as_deref();
    let unmonitored_all: Option<Vec<intervals::Span>> = monitored.map(|m| {
        let on: Vec<intervals::Span> = m.iter().map(|iv| (iv.start_ms, iv.end_ms)).collect();
        intervals::subtract(&[(p_start, p_end)], &intervals::merge(on))
    });
    let mut maint_cache: BTreeMap<EstablishmentCode, Vec<intervals::Span>> = BTreeMap::new();
    let mut maint = |e: &EstablishmentCode| -> Vec<intervals::Span> {
        maint_cache
            .entry(*e)
            .or_insert_with(|| {
                maintenance::spans(&settings.maintenance, tz, e, period.from, period.to)
            })
            .clone()
    };

    let mut all_episodes = Vec::new();
    let mut days_out = Vec::new();
    let mut period_latency = Vec::new();
    for ((est, iface), obs) in &series {
        let m = maint(est);
        let eps = episodes::detect(obs, settings, p_end, monitored, &|_| m.clone());
        let in_period: Vec<&Observation> = obs
            .iter()
            .copied()
            .filter(|o| o.received_at_ms >= p_start && o.received_at_ms < p_end)
            .collect();
        if !in_period.is_empty() {
            let down = intervals::merge(eps.iter().map(|e| (e.start_ms, e.end_ms)).collect());
            let probed = obs.iter().any(|o| o.source == Source::Probe);
            let sd = days::SeriesDays {
                establishment: est,
                interface: *iface,
                observations: &in_period,
                downtime: &down,
                maintenance: &m,
                unmonitored: if probed {
                    unmonitored_all.as_deref()
                } else {
                    None
                },
            };
            days_out.extend(days::day_rows(&sd, &dates, &bounds));
            period_latency.extend(
                days::latency(&in_period)
                    .into_iter()
                    .map(|(service, stats)| PeriodLatency {
                        establishment: *est,
                        interface: *iface,
                        service,
                        stats,
                    }),
            );
        }
        all_episodes.extend(
            eps.into_iter()
                .filter(|e| e.start_ms < p_end && e.end_ms >= p_start),
        );
    }
    days_out.sort_by(|a, b| {
        (a.date, &a.establishment, a.interface).cmp(&(b.date, &b.establishment, b.interface))
    });
    let weeks = weeks::watch(&days_out, &settings.targets);
    let in_period: Vec<&Observation> = sorted
        .iter()
        .copied()
        .filter(|o| o.received_at_ms >= p_start && o.received_at_ms < p_end)
        .collect();
    let fallback = fallback::classify(&in_period, &all_episodes, settings, tz);
    Ok(Kpis {
        period,
        settings: settings.clone(),
        days: days_out,
        episodes: all_episodes,
        weeks,
        fallback,
        period_latency,
    })
}

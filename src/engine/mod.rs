//! The counting engine: the regulatory counting method of `methodology.md`, as pure functions.
//!
//! In: observations, the intervals during which a monitor was running, a period of local days and
//! the counting settings (every "policy" of the methodology). Out: [`Kpis`] — episodes, daily
//! figures, the weekly Art. 33(7) watch and fallback use. No I/O and no clock: time enters as data,
//! so every rule can be tested with hand-worked figures. `kpi`, the live detector, the alerts and
//! the reports all read their figures from here; outputs format them, never recompute them.

use std::collections::BTreeMap;

pub mod coverage;
pub mod days;
pub mod dedupe;
pub mod episodes;
pub mod fallback;
pub mod intervals;
pub mod json;
pub mod live;
pub mod maintenance;
pub mod replies;
pub mod stream;
pub mod time;
pub mod two;
pub mod vantage;
pub mod weeks;
pub mod window;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_rev2;
#[cfg(test)]
mod tests_stream;
#[cfg(test)]
mod tests_vantage;

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::domain::{
    CoverageSpan, EstablishmentCode, Interface, Observation, Outcome, Service, TppId,
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
    /// How far before the period start each series is read back, to the last observation that
    /// is not a failure, so an episode already running at the start is known (section 3).
    /// Default 7 days.
    pub lookback_days: i64,
    /// Outcomes whose replies are timed (section 4): rejected and failed requests are counted,
    /// not timed. Default `["ok"]`.
    pub timed_outcomes: Vec<Outcome>,
    /// What a probe's response time is: `request` (processing + transfer, set-up excluded, as
    /// the bank measures it; default) or `total` (DNS, TCP and TLS set-up included).
    pub probe_latency: ProbeLatency,
    /// Imported latencies beyond this are refused as implausible (a gateway's time-out is far
    /// shorter). Default 3 600 s.
    pub max_latency_s: f64,
    /// The monitor's own client ids (`client_id` of the configuration's establishments, filled
    /// in when a probe configuration is given): its requests in the gateway's log are the
    /// monitor's traffic, not a TPP's (no usage, no fallback use). Default none.
    pub monitor_client_ids: Vec<TppId>,
    /// How many of the vantages covering an instant must see the interface down for it to be
    /// down (section 10): `majority` (default), `all`, `any` or a number. With one vantage, it.
    /// Left out of JSON when the default, so figures written before it read and hash the same.
    #[serde(skip_serializing_if = "vantage::VantageQuorum::is_majority")]
    pub vantage_quorum: vantage::VantageQuorum,
}

impl Settings {
    /// Whether an observation is the monitor's own traffic (its probes, or its requests as the
    /// gateway logged them), which counts in no usage or fallback figure (section 6).
    pub fn is_monitor(&self, o: &Observation) -> bool {
        o.source == crate::domain::Source::Probe
            || o.tpp
                .as_ref()
                .is_some_and(|t| self.monitor_client_ids.contains(t))
    }
}

/// The response time an observation counts with (section 4): for a probe under the default
/// policy, processing + transfer (the request on the wire to the last byte), DNS, TCP and TLS
/// set-up excluded; otherwise the recorded total. Phases missing: the total.
pub fn response_time_ms(
    policy: ProbeLatency,
    source: crate::domain::Source,
    total_ms: Option<f64>,
    processing_ms: Option<f64>,
    transfer_ms: Option<f64>,
) -> Option<f64> {
    match (policy, source, total_ms, processing_ms) {
        (ProbeLatency::Request, crate::domain::Source::Probe, Some(_), Some(p)) => {
            Some(p + transfer_ms.unwrap_or(0.0))
        }
        _ => total_ms,
    }
}

/// What a probe's response time includes (policy `probe_latency`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeLatency {
    /// From the request written on the connection to the last byte of the reply.
    #[default]
    Request,
    /// From the start of name resolution to the last byte.
    Total,
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
            lookback_days: 7,
            timed_outcomes: vec![Outcome::Ok],
            probe_latency: ProbeLatency::Request,
            max_latency_s: 3_600.0,
            monitor_client_ids: Vec::new(),
            vantage_quorum: vantage::VantageQuorum::Majority,
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
    /// Any order; the engine sorts by (`received_at`, `request_id`) and counts one request once
    /// (section 1). Give it everything in [`load_range`]: observations before the period are the
    /// look-back, those around it make whole weeks.
    pub observations: Vec<Observation>,
    /// When each series was covered: monitor runs (heartbeats) and imported logs (section 1).
    /// Time no span covers is unmonitored: neither uptime nor downtime.
    pub coverage: Vec<CoverageSpan>,
}

/// The UTC instants `[from, to)` whose observations and coverage the engine needs for `period`:
/// two whole weeks before its first week (so consecutive missed weeks are counted across the
/// edge) less the look-back, to the end of the week holding its last day. Every command loads
/// this same range, so an episode has the same id in every output.
pub fn load_range(period: Period, settings: &Settings) -> (i64, i64) {
    let (from, to) = extended_days(period);
    let lookback = chrono::Duration::days(settings.lookback_days.clamp(0, 366));
    (
        time::day_start_ms(settings.tz, from - lookback),
        time::day_start_ms(settings.tz, to),
    )
}

/// The local days computed (not all output): whole weeks from two weeks before the period's
/// first week to the end of its last week.
fn extended_days(period: Period) -> (NaiveDate, NaiveDate) {
    let last = period.to.pred_opt().unwrap_or(period.to);
    (
        time::monday_of(period.from) - chrono::Duration::days(14),
        time::monday_of(last.max(period.from)) + chrono::Duration::days(7),
    )
}

/// An unavailability episode (methodology section 3), per establishment and interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    pub establishment: EstablishmentCode,
    pub interface: Interface,
    /// `received_at` of the first of the earliest qualifying five failures (UTC epoch ms).
    pub start_ms: i64,
    /// Completion of the first non-failure reply after the run; where the series' coverage
    /// ended (`cut`); or where the data ends while still down (`open`).
    pub end_ms: i64,
    /// Still down when the data ends (the monitor still running, or the loaded range's end).
    pub open: bool,
    /// Ended by a coverage gap (the monitor stopped, no log covers the time): nothing is known
    /// of what followed, and failures after the gap need their own five (section 3).
    #[serde(default)]
    pub cut: bool,
    /// Began before the period's first local midnight: the period counts it from its start,
    /// listings show its real start.
    #[serde(default)]
    pub began_before_period: bool,
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

/// The daily figures of one interface of one establishment (methodology section 4). `None` is
/// "n.d.": nothing was observed to compute it from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayFigures {
    pub date: NaiveDate,
    pub establishment: EstablishmentCode,
    pub interface: Interface,
    /// 82 800, 86 400 or 90 000.
    pub seconds_in_day: i64,
    /// Seconds of the day inside the series' coverage.
    pub covered_s: f64,
    /// `covered_s / seconds_in_day × 100`.
    pub coverage_pct: f64,
    /// Seconds inside unavailability episodes (always inside coverage).
    pub downtime_s: f64,
    pub planned_downtime_s: f64,
    /// `downtime_s / covered_s × 100`; `None` when nothing was covered.
    pub downtime_pct: Option<f64>,
    /// `100 − downtime_pct`; `None` ("n.d.") when nothing was covered.
    pub uptime_pct: Option<f64>,
    /// `seconds_in_day − covered_s`.
    pub unmonitored_s: f64,
    /// Distinct requests of the day, every outcome but `probe_error`.
    pub requests: u64,
    /// Of which from gateway logs (TPP traffic).
    pub tpp_requests: u64,
    /// Of which from the monitor's probes.
    pub probe_requests: u64,
    /// Requests per service (every outcome but `probe_error`).
    pub requests_by_service: BTreeMap<Service, u64>,
    pub no_reply: u64,
    /// `aspsp_error` + `unexpected`.
    pub bank_errors: u64,
    /// `bank_errors / requests × 100`; `None` when there was no request.
    pub error_rate_pct: Option<f64>,
    /// Per service, over that service's timed replies of the day (policy `timed_outcomes`).
    pub latency: BTreeMap<Service, LatencyStats>,
}

impl DayFigures {
    pub fn unplanned_downtime_s(&self) -> f64 {
        self.downtime_s - self.planned_downtime_s
    }
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
/// Weeks are whole calendar weeks, judged once complete, whatever the period's edges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeekWatch {
    /// ISO week, `2024-W27`.
    pub week: String,
    /// The local Monday that starts it.
    pub monday: NaiveDate,
    pub establishment: EstablishmentCode,
    /// Seconds of the whole week (604 800, or an hour less or more across a DST change).
    pub seconds: i64,
    /// Seconds of the week inside coverage.
    pub covered_s: f64,
    /// The week is over and within the data: only complete weeks are judged.
    pub complete: bool,
    /// Over the covered time; `None` when nothing was covered.
    pub uptime_pct: Option<f64>,
    /// `None` when there was no request.
    pub error_rate_pct: Option<f64>,
    pub avg_ms: BTreeMap<Service, f64>,
    pub customer_uptime_pct: BTreeMap<Interface, f64>,
    pub misses: Vec<Miss>,
    /// Consecutive missed weeks ending with this one (0 when this one is met or not judged),
    /// counted across period edges.
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
    /// Outages seen from a minority of the vantages covering them (section 10): not downtime.
    /// Sorted by (establishment, interface, start, vantage). Empty with a single vantage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vantage_faults: Vec<VantageFault>,
    /// The vantages that covered each series probed from more than one (section 10), with the
    /// time each covered inside the period. Sorted by (establishment, interface, vantage).
    /// Empty when every series has a single vantage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vantages: Vec<VantageCoverage>,
}

/// A span in which one vantage saw the interface down while the quorum of the vantages covering
/// the time did not (methodology section 10): most likely that vantage's own network. Never
/// downtime; listed for the supervisor and alerted to the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VantageFault {
    pub establishment: EstablishmentCode,
    pub interface: Interface,
    pub vantage: crate::domain::Vantage,
    /// UTC epoch ms; the start may be before the period (the real start), the end is within it.
    pub start_ms: i64,
    pub end_ms: i64,
    /// The vantage's probes made during the fault inside the period, set aside: counted in no
    /// public figure (requests, errors, no reply, response times).
    #[serde(default)]
    pub set_aside: u64,
}

impl VantageFault {
    pub fn duration_s(&self) -> f64 {
        (self.end_ms - self.start_ms) as f64 / 1000.0
    }

    /// The order faults are listed in everywhere: series, start, vantage.
    pub fn sort(faults: &mut [VantageFault]) {
        faults.sort_by(|a, b| {
            (a.establishment, a.interface, a.start_ms, &a.vantage).cmp(&(
                b.establishment,
                b.interface,
                b.start_ms,
                &b.vantage,
            ))
        });
    }
}

/// How long one vantage covered one series inside the period (section 10).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VantageCoverage {
    pub establishment: EstablishmentCode,
    pub interface: Interface,
    pub vantage: crate::domain::Vantage,
    pub covered_s: f64,
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
    #[error(
        "the period {from} to {to} is longer than ten years: count it in parts (a publication is a quarter)"
    )]
    PeriodTooLong { from: NaiveDate, to: NaiveDate },
    #[error(
        "counted_services names {names}, which no observation of the period has: check the spelling (known here: {known})"
    )]
    UnknownServices { names: String, known: String },
    #[error(
        "observations out of time order: one received at {at_ms} came after one at {after_ms} (the engine reads a period in time order)"
    )]
    OutOfOrder { at_ms: i64, after_ms: i64 },
    #[error("{why}")]
    Spill { why: String },
    #[error("the second counting thread stopped: {why}")]
    Thread { why: String },
}

/// The longest period counted at once (ten years).
pub const MAX_PERIOD_DAYS: i64 = 3_653;

/// A `counted_services` name that no observation has is a typo, not a policy: it would count
/// no failure of that service (or none at all) and publish 100 %. `seen`: the services of the
/// period's observations (not checked when there are none).
fn check_counted_services(
    list: &[Service],
    seen: &std::collections::BTreeSet<Service>,
) -> Result<(), EngineError> {
    let missing: Vec<&str> = list
        .iter()
        .filter(|s| !seen.contains(s))
        .map(Service::as_str)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(EngineError::UnknownServices {
        names: missing.join(", "),
        known: seen
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Computes every figure of the methodology for the local days of `period`.
///
/// The input should hold [`load_range`]: episodes are detected over all of it (so one that began
/// before the period is known, with its real start), day rows are output for the period only,
/// weeks for every whole week the period touches.
pub fn compute(
    input: &EngineInput,
    period: Period,
    settings: &Settings,
) -> Result<Kpis, EngineError> {
    let mut counter = stream::Counter::new(period, settings, input.coverage.clone())?;
    let (range_start, range_end) = load_range(period, settings);
    let mut sorted: Vec<&Observation> = input
        .observations
        .iter()
        .filter(|o| o.received_at_ms >= range_start && o.received_at_ms < range_end)
        .collect();
    sorted.sort_unstable_by(|a, b| {
        a.received_at_ms
            .cmp(&b.received_at_ms)
            .then_with(|| a.request_id.cmp(&b.request_id))
    });
    for o in sorted {
        counter.push(o.clone())?;
    }
    counter.finish()
}

/// The settings alone, checked as [`compute`] would (for `dispo check-config`).
pub fn check_settings(settings: &Settings) -> Result<(), EngineError> {
    let day = NaiveDate::from_ymd_opt(2000, 1, 3).expect("a valid date");
    let next = day.succ_opt().expect("a valid date");
    validate(
        Period {
            from: day,
            to: next,
        },
        settings,
    )
}

fn validate(period: Period, settings: &Settings) -> Result<(), EngineError> {
    if period.to <= period.from {
        return Err(EngineError::EmptyPeriod {
            from: period.from,
            to: period.to,
        });
    }
    let bad = |name, why: &str| {
        Err(EngineError::Setting {
            name,
            why: why.into(),
        })
    };
    if period.to - period.from > chrono::Duration::days(MAX_PERIOD_DAYS) {
        return Err(EngineError::PeriodTooLong {
            from: period.from,
            to: period.to,
        });
    }
    // Art. 33(1) says five within 30 s; a policy may differ, not beyond what still finds an
    // outage (a million failures, or a window of 0 ms, would count none).
    if !(1..=100).contains(&settings.failures_to_down) {
        return bad("failures_to_down", "must be from 1 to 100 (Art. 33(1): 5)");
    }
    if !(1..=3_600_000).contains(&settings.window_ms) {
        return bad(
            "window_ms",
            "must be from 1 ms to one hour (Art. 33(1): 30 000)",
        );
    }
    if !(0..=86_400).contains(&settings.fallback_grace_s) {
        return bad(
            "fallback_grace_s",
            "must be from 0 to 86 400 seconds (a day)",
        );
    }
    if !(0..=366).contains(&settings.lookback_days) {
        return bad("lookback_days", "must be from 0 to 366 days");
    }
    if !(settings.max_latency_s.is_finite() && settings.max_latency_s > 0.0) {
        return bad("max_latency_s", "must be a positive number of seconds");
    }
    if settings
        .counted_services
        .as_ref()
        .is_some_and(Vec::is_empty)
    {
        // An empty list would count no failure at all: every day 100 %.
        return bad(
            "counted_services",
            "must name at least one service (leave it out to count every service)",
        );
    }
    if settings.timed_outcomes.is_empty() {
        return bad(
            "timed_outcomes",
            "must name at least one outcome (default [\"ok\"])",
        );
    }
    let t = &settings.targets;
    let pct = |v: f64| v.is_finite() && (0.0..=100.0).contains(&v);
    if !pct(t.uptime_pct) {
        return bad("targets.uptime_pct", "must be a percentage from 0 to 100");
    }
    if !pct(t.error_rate_pct) {
        return bad(
            "targets.error_rate_pct",
            "must be a percentage from 0 to 100",
        );
    }
    let ms_ok = |v: f64| v.is_finite() && v > 0.0;
    if !ms_ok(t.avg_ms) || !t.avg_ms_by_service.values().all(|v| ms_ok(*v)) {
        return bad(
            "targets.avg_ms",
            "response-time targets must be positive milliseconds",
        );
    }
    if let Some(w) = settings.maintenance.iter().find(|w| w.start == w.end) {
        return Err(EngineError::Setting {
            name: "maintenance",
            why: format!(
                "the {:?} window starts and ends at {}: give a window of some length",
                w.weekday, w.start
            ),
        });
    }
    Ok(())
}

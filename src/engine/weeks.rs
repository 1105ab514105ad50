//! The weekly watch (methodology section 5): per calendar week, the dedicated interface of each
//! establishment against its targets and against the bank's own customer interfaces (Art. 32(1)),
//! and how many consecutive weeks missed (Art. 33(7): more than two is critical). Weeks are
//! whole (the caller gives the day rows of whole weeks, beyond the period's edges), judged only
//! once complete, and counted across period edges.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::time::{iso_week_label, monday_of};
use super::{DayFigures, Miss, Targets, WatchLevel, WeekWatch};
use crate::domain::{EstablishmentCode, Interface, Service};

#[derive(Default)]
struct Acc {
    seconds: i64,
    covered_s: f64,
    downtime_s: f64,
    requests: u64,
    bank_errors: u64,
    /// Per service: (sum of latencies, replies), so the weekly mean is exact.
    latency: BTreeMap<Service, (f64, u64)>,
}

impl Acc {
    fn add(&mut self, d: &DayFigures) {
        self.seconds += d.seconds_in_day;
        self.covered_s += d.covered_s;
        self.downtime_s += d.downtime_s;
        self.requests += d.requests;
        self.bank_errors += d.bank_errors;
        for (svc, l) in &d.latency {
            let e = self.latency.entry(svc.clone()).or_default();
            e.0 += l.avg_ms * l.replies as f64;
            e.1 += l.replies;
        }
    }
    /// Over the covered time; `None` when nothing was covered.
    fn uptime_pct(&self) -> Option<f64> {
        (self.covered_s > 0.0).then(|| 100.0 - self.downtime_s / self.covered_s * 100.0)
    }
}

/// Week rows from the day rows (sorted by establishment, then Monday). `complete(monday)` says
/// whether that week is over and within the data; only complete weeks are judged.
pub fn watch(
    days: &[DayFigures],
    targets: &Targets,
    complete: impl Fn(NaiveDate) -> bool,
) -> Vec<WeekWatch> {
    let mut acc: BTreeMap<(EstablishmentCode, NaiveDate, Interface), Acc> = BTreeMap::new();
    for d in days {
        if d.interface == Interface::Api || d.interface.is_customer() {
            acc.entry((d.establishment, monday_of(d.date), d.interface))
                .or_default()
                .add(d);
        }
    }
    let mut out: Vec<WeekWatch> = Vec::new();
    for ((est, monday, iface), a) in &acc {
        if *iface != Interface::Api {
            continue;
        }
        let complete = complete(*monday);
        let uptime = a.uptime_pct();
        let error_rate = (a.requests > 0).then(|| a.bank_errors as f64 / a.requests as f64 * 100.0);
        let avg_ms: BTreeMap<Service, f64> = a
            .latency
            .iter()
            .filter(|(_, (_, n))| *n > 0)
            .map(|(s, (sum, n))| (s.clone(), sum / *n as f64))
            .collect();
        let customer: BTreeMap<Interface, f64> = [Interface::PsuWeb, Interface::PsuApp]
            .into_iter()
            .filter_map(|ci| {
                acc.get(&(*est, *monday, ci))
                    .and_then(|c| c.uptime_pct())
                    .map(|u| (ci, u))
            })
            .collect();
        let misses = if complete {
            misses(uptime, error_rate, &avg_ms, &customer, targets)
        } else {
            Vec::new()
        };
        // Consecutive with the previous calendar week of the same establishment only.
        let prev = out
            .last()
            .filter(|w| w.establishment == *est && w.monday + chrono::Duration::days(7) == *monday);
        let before = prev.map_or(0, |w| w.consecutive_missed);
        // A complete week nobody observed is not judged, and it does not break a run of missed
        // weeks either: stopping the monitor for a week must not clear an escalation.
        let unobserved = complete && uptime.is_none();
        let consecutive_missed = match (misses.is_empty(), unobserved) {
            (false, _) => before + 1,
            (true, true) => before,
            (true, false) => 0,
        };
        let level = match (unobserved, consecutive_missed) {
            (true, _) | (_, 0) => None,
            (_, 1) => Some(WatchLevel::Notice),
            (_, 2) => Some(WatchLevel::Warning),
            _ => Some(WatchLevel::Critical),
        };
        out.push(WeekWatch {
            week: iso_week_label(*monday),
            monday: *monday,
            establishment: *est,
            seconds: a.seconds,
            covered_s: a.covered_s,
            complete,
            uptime_pct: uptime,
            error_rate_pct: error_rate,
            avg_ms,
            customer_uptime_pct: customer,
            misses,
            consecutive_missed,
            level,
        });
    }
    out
}

/// Why a complete week misses (empty: met, or nothing observed to judge).
fn misses(
    uptime: Option<f64>,
    error_rate: Option<f64>,
    avg_ms: &BTreeMap<Service, f64>,
    customer: &BTreeMap<Interface, f64>,
    targets: &Targets,
) -> Vec<Miss> {
    let mut misses = Vec::new();
    if let Some(u) = uptime
        && u < targets.uptime_pct
    {
        misses.push(Miss::Uptime {
            actual_pct: u,
            target_pct: targets.uptime_pct,
        });
    }
    for (svc, ms) in avg_ms {
        let target = targets.avg_ms_for(svc);
        if *ms > target {
            misses.push(Miss::ResponseTime {
                service: svc.clone(),
                actual_ms: *ms,
                target_ms: target,
            });
        }
    }
    if let Some(r) = error_rate
        && r > targets.error_rate_pct
    {
        misses.push(Miss::ErrorRate {
            actual_pct: r,
            target_pct: targets.error_rate_pct,
        });
    }
    if targets.parity_with_customer_interface
        && let Some(u) = uptime
    {
        for (ci, cu) in customer {
            if u < *cu {
                misses.push(Miss::Parity {
                    customer_interface: *ci,
                    customer_uptime_pct: *cu,
                    api_uptime_pct: u,
                });
            }
        }
    }
    misses
}

//! Daily figures per establishment and interface (methodology section 4): coverage, downtime
//! split at local midnight, planned part, requests, bank errors, response times. A figure with
//! nothing to compute it from is `None` ("n.d."), never 100 % or 0.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::intervals::{self, Span};
use super::{DayFigures, LatencyStats};
use crate::domain::{EstablishmentCode, Interface, Observation, Outcome, Service};

/// Everything one series (establishment, interface) needs for its day rows, beside the tallies
/// of its observations.
pub struct SeriesDays<'a> {
    pub establishment: &'a EstablishmentCode,
    pub interface: Interface,
    /// Merged episode spans of the series.
    pub downtime: &'a [Span],
    /// Merged maintenance spans of the establishment.
    pub maintenance: &'a [Span],
    /// Merged covered spans of the series.
    pub covered: &'a [Span],
}

/// What one local day of one series' observations gives: requests, errors, response times.
#[derive(Debug, Clone, Default)]
pub struct DayTally {
    counts: Counts,
    latency: BTreeMap<Service, LatencyStats>,
    /// A day holding probes a vantage may have made during its fault (section 10): its response
    /// times kept whole, per service and sorted, until [`DayTally::settle`], so the percentiles
    /// stay exact without them.
    held: Option<Vec<(Service, Vec<f64>)>>,
}

impl DayTally {
    /// Takes back what `o`, counted on this day, added (section 10: a probe a vantage made
    /// during its fault counts in no public figure). Its response time leaves the day's only if
    /// the day was closed holding them ([`DayAcc::close_holding`]).
    pub fn set_aside(&mut self, o: &Observation, settings: &super::Settings) {
        self.counts.remove(o, settings);
        if let (Some(l), Some(held)) = (timed(o, &settings.timed_outcomes), &mut self.held)
            && let Some((_, v)) = held.iter_mut().find(|(s, _)| *s == o.service)
        {
            remove_one(v, l);
        }
    }

    /// The response-time figures of a day closed holding them, once what is set aside is out.
    pub fn settle(&mut self) {
        if let Some(held) = self.held.take() {
            self.latency = held
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(svc, mut v)| (svc, stats(&mut v)))
                .collect();
        }
    }
}

/// Removes one value equal to `l` from `v`, if any.
pub fn remove_one(v: &mut Vec<f64>, l: f64) {
    if let Some(p) = v.iter().position(|x| x.total_cmp(&l).is_eq()) {
        v.remove(p);
    }
}

/// One day of one series, accumulated as its observations (one per request) stream by: the
/// counts, and that day's response times only (kept whole for exact percentiles).
#[derive(Debug, Default)]
pub struct DayAcc {
    counts: Counts,
    /// Per service, in the order first seen (a series has few).
    latencies: Vec<(Service, Vec<f64>)>,
}

impl DayAcc {
    pub fn add(&mut self, o: &Observation, settings: &super::Settings) {
        self.counts.add(o, settings);
        if let Some(l) = timed(o, &settings.timed_outcomes) {
            match self.latencies.iter_mut().find(|(s, _)| *s == o.service) {
                Some((_, v)) => v.push(l),
                None => self.latencies.push((o.service.clone(), vec![l])),
            }
        }
    }

    /// Closes the day: its tally; each service's replies go to `replies`, sorted.
    pub fn close(self, mut replies: impl FnMut(&Service, Vec<f64>)) -> DayTally {
        let mut latency = BTreeMap::new();
        for (svc, mut v) in self.latencies {
            let st = stats(&mut v);
            replies(&svc, v);
            latency.insert(svc, st);
        }
        DayTally {
            counts: self.counts,
            latency,
            held: None,
        }
    }

    /// As [`Self::close`], keeping a copy of the day's response times in the tally until
    /// [`DayTally::settle`] (a day some of whose probes may be set aside, section 10).
    pub fn close_holding(self, mut replies: impl FnMut(&Service, Vec<f64>)) -> DayTally {
        let mut held = Vec::with_capacity(self.latencies.len());
        for (svc, mut v) in self.latencies {
            v.sort_unstable_by(f64::total_cmp);
            held.push((svc.clone(), v.clone()));
            replies(&svc, v);
        }
        DayTally {
            counts: self.counts,
            latency: BTreeMap::new(),
            held: Some(held),
        }
    }
}

/// One row per local day; `bounds[i]..bounds[i+1]` is day `dates[i]` in UTC ms and
/// `tallies[i]` its observations' tally.
pub fn day_rows(
    s: &SeriesDays<'_>,
    tallies: Vec<DayTally>,
    dates: &[NaiveDate],
    bounds: &[i64],
) -> Vec<DayFigures> {
    let mut rows = Vec::with_capacity(dates.len());
    for ((i, date), t) in dates.iter().enumerate().zip(tallies) {
        let day: Span = (bounds[i], bounds[i + 1]);
        let seconds_in_day = (day.1 - day.0) / 1000;
        let covered = intervals::intersect(s.covered, &[day]);
        let covered_s = intervals::total(&covered) as f64 / 1000.0;
        // Downtime is only ever known inside coverage.
        let down = intervals::intersect(&intervals::intersect(s.downtime, &[day]), &covered);
        let planned = intervals::intersect(&down, s.maintenance);
        let downtime_s = intervals::total(&down) as f64 / 1000.0;
        let downtime_pct = (covered_s > 0.0).then(|| downtime_s / covered_s * 100.0);
        let c = t.counts;
        rows.push(DayFigures {
            date: *date,
            establishment: *s.establishment,
            interface: s.interface,
            seconds_in_day,
            covered_s,
            coverage_pct: covered_s / seconds_in_day as f64 * 100.0,
            downtime_s,
            planned_downtime_s: intervals::total(&planned) as f64 / 1000.0,
            downtime_pct,
            uptime_pct: downtime_pct.map(|p| 100.0 - p),
            unmonitored_s: seconds_in_day as f64 - covered_s,
            requests: c.requests,
            tpp_requests: c.tpp,
            probe_requests: c.probe,
            requests_by_service: c.by_service,
            no_reply: c.no_reply,
            bank_errors: c.bank_errors,
            error_rate_pct: (c.requests > 0)
                .then(|| c.bank_errors as f64 / c.requests as f64 * 100.0),
            latency: t.latency,
        });
    }
    rows
}

#[derive(Debug, Clone, Default)]
struct Counts {
    requests: u64,
    tpp: u64,
    probe: u64,
    no_reply: u64,
    bank_errors: u64,
    by_service: BTreeMap<Service, u64>,
}

impl Counts {
    fn add(&mut self, o: &Observation, settings: &super::Settings) {
        if o.outcome == Outcome::ProbeError {
            return;
        }
        self.requests += 1;
        // TPP traffic: gateway logs, less the monitor's own requests as the gateway logged them.
        if settings.is_monitor(o) {
            self.probe += 1;
        } else {
            self.tpp += 1;
        }
        match self.by_service.get_mut(&o.service) {
            Some(n) => *n += 1,
            None => {
                self.by_service.insert(o.service.clone(), 1);
            }
        }
        match o.outcome {
            Outcome::NoReply => self.no_reply += 1,
            Outcome::AspspError | Outcome::Unexpected => self.bank_errors += 1,
            _ => {}
        }
    }

    /// Undoes [`Self::add`] of `o` (a service it leaves with no request is no longer listed).
    fn remove(&mut self, o: &Observation, settings: &super::Settings) {
        if o.outcome == Outcome::ProbeError {
            return;
        }
        let less = |n: &mut u64| *n = n.saturating_sub(1);
        less(&mut self.requests);
        if settings.is_monitor(o) {
            less(&mut self.probe);
        } else {
            less(&mut self.tpp);
        }
        if let Some(n) = self.by_service.get_mut(&o.service) {
            less(n);
            if *n == 0 {
                self.by_service.remove(&o.service);
            }
        }
        match o.outcome {
            Outcome::NoReply => less(&mut self.no_reply),
            Outcome::AspspError | Outcome::Unexpected => less(&mut self.bank_errors),
            _ => {}
        }
    }
}

/// The response time a reply counts with: replies of a timed outcome (policy `timed_outcomes`,
/// `ok` by default: rejected and failed requests are counted, not timed).
pub fn timed(o: &Observation, timed_outcomes: &[Outcome]) -> Option<f64> {
    if o.outcome == Outcome::NoReply || !timed_outcomes.contains(&o.outcome) {
        return None;
    }
    o.latency_ms.filter(|l| l.is_finite())
}

/// Mean and nearest-rank percentiles (the value at rank ⌈p/100 × n⌉ of the sorted replies).
/// `v` must not be empty.
pub fn stats(v: &mut [f64]) -> LatencyStats {
    v.sort_unstable_by(f64::total_cmp);
    let n = v.len();
    let rank = |p: f64| -> f64 {
        let r = ((p / 100.0) * n as f64).ceil() as usize;
        v[r.clamp(1, n) - 1]
    };
    LatencyStats {
        replies: n as u64,
        avg_ms: v.iter().sum::<f64>() / n as f64,
        p50_ms: rank(50.0),
        p95_ms: rank(95.0),
        p99_ms: rank(99.0),
        max_ms: v[n - 1],
    }
}

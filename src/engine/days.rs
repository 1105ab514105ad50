//! Daily figures per establishment and interface (methodology section 4): downtime split at
//! local midnight, planned part, unmonitored time, requests, bank errors, response times.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::intervals::{self, Span};
use super::{DayFigures, LatencyStats};
use crate::domain::{EstablishmentCode, Interface, Observation, Outcome, Service};

/// Everything one series (establishment, interface) needs for its day rows.
pub struct SeriesDays<'a> {
    pub establishment: &'a EstablishmentCode,
    pub interface: Interface,
    /// The series' observations inside the period, in time order.
    pub observations: &'a [&'a Observation],
    /// Merged episode spans of the series.
    pub downtime: &'a [Span],
    /// Merged maintenance spans of the establishment.
    pub maintenance: &'a [Span],
    /// Merged unmonitored spans, when the series is probed and heartbeats are known.
    pub unmonitored: Option<&'a [Span]>,
}

/// One row per local day; `bounds[i]..bounds[i+1]` is day `dates[i]` in UTC ms.
pub fn day_rows(s: &SeriesDays<'_>, dates: &[NaiveDate], bounds: &[i64]) -> Vec<DayFigures> {
    let mut rows = Vec::with_capacity(dates.len());
    let mut next = 0usize;
    for (i, date) in dates.iter().enumerate() {
        let day: Span = (bounds[i], bounds[i + 1]);
        let seconds_in_day = (day.1 - day.0) / 1000;
        let unmon = s
            .unmonitored
            .map(|u| intervals::intersect(u, &[day]))
            .unwrap_or_default();
        // Unmonitored time is neither uptime nor downtime: an episode cannot be known there.
        let down = intervals::subtract(&intervals::intersect(s.downtime, &[day]), &unmon);
        let planned = intervals::intersect(&down, s.maintenance);
        let downtime_s = intervals::total(&down) as f64 / 1000.0;
        let downtime_pct = downtime_s / seconds_in_day as f64 * 100.0;

        // Observations before this day (only ever before the first) are not counted.
        while next < s.observations.len() && s.observations[next].received_at_ms < day.0 {
            next += 1;
        }
        let first = next;
        let (mut requests, mut no_reply, mut bank_errors) = (0u64, 0u64, 0u64);
        while next < s.observations.len() && s.observations[next].received_at_ms < day.1 {
            let o = s.observations[next];
            next += 1;
            if o.outcome == Outcome::ProbeError {
                continue;
            }
            requests += 1;
            match o.outcome {
                Outcome::NoReply => no_reply += 1,
                Outcome::AspspError | Outcome::Unexpected => bank_errors += 1,
                _ => {}
            }
        }
        let latency = latency(&s.observations[first..next]);
        rows.push(DayFigures {
            date: *date,
            establishment: *s.establishment,
            interface: s.interface,
            seconds_in_day,
            downtime_s,
            planned_downtime_s: intervals::total(&planned) as f64 / 1000.0,
            downtime_pct,
            uptime_pct: 100.0 - downtime_pct,
            unmonitored_s: intervals::total(&unmon) as f64 / 1000.0,
            requests,
            no_reply,
            bank_errors,
            error_rate_pct: if requests == 0 {
                0.0
            } else {
                bank_errors as f64 / requests as f64 * 100.0
            },
            latency,
        });
    }
    rows
}

/// The response time a reply counts with: every reply but a probe's own error and a no-reply.
fn timed(o: &Observation) -> Option<f64> {
    match o.outcome {
        Outcome::ProbeError | Outcome::NoReply => None,
        _ => o.latency_ms,
    }
}

/// Response-time figures per service over all of `observations` (the same replies the day rows
/// count, pooled rather than averaged day by day).
pub fn latency(observations: &[&Observation]) -> BTreeMap<Service, LatencyStats> {
    let mut lat: BTreeMap<&Service, Vec<f64>> = BTreeMap::new();
    for o in observations {
        if let Some(l) = timed(o) {
            lat.entry(&o.service).or_default().push(l);
        }
    }
    lat.into_iter()
        .map(|(svc, mut v)| (svc.clone(), stats(&mut v)))
        .collect()
}

/// Mean and nearest-rank percentiles (the value at rank ⌈p/100 × n⌉ of the sorted replies).
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

//! Coverage of one series (methodology section 1): the monitor runs that probe it, less the
//! time its probes failed on the monitor's side (`probe_error`), together with the spans of
//! imported gateway logs. Time outside it is unmonitored: neither uptime nor downtime, and an
//! episode is cut where it ends.

use super::intervals::{self, Span};
use crate::domain::{
    CoverageKind, CoverageSpan, EstablishmentCode, Interface, Observation, Outcome, Source, Vantage,
};

/// The merged coverage of one series, and for each span whether its end is where the data ends
/// (a monitor still running, or the end of the loaded range) rather than a gap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeriesCoverage {
    pub spans: Vec<Span>,
    pub open_end: Vec<bool>,
}

/// Coverage of `(est, iface)` within `range`, given the series' observations in time order.
pub fn of_series(
    all: &[CoverageSpan],
    est: &EstablishmentCode,
    iface: Interface,
    obs: &[&Observation],
    range: Span,
) -> SeriesCoverage {
    let mut errors = ProbeErrors::default();
    for o in obs {
        errors.push(o);
    }
    with_errors(all, est, iface, errors.finish(range.1), range)
}

/// Coverage of `(est, iface)` within `range`, given the spans its monitor's probes failed on
/// the monitor's side ([`ProbeErrors`]).
pub fn with_errors(
    all: &[CoverageSpan],
    est: &EstablishmentCode,
    iface: Interface,
    errors: Vec<Span>,
    range: Span,
) -> SeriesCoverage {
    of_vantage(all, est, iface, None, errors, range)
}

/// As [`with_errors`], counting only the coverage of `vantage` when one is given (section 10:
/// each vantage's coverage is its own monitor runs, or the spans of its imported probes, and the
/// gateway's logs).
pub fn of_vantage(
    all: &[CoverageSpan],
    est: &EstablishmentCode,
    iface: Interface,
    vantage: Option<&Vantage>,
    errors: Vec<Span>,
    range: Span,
) -> SeriesCoverage {
    // A vantage's own (its runs, its imported probes' spans: less its own errors), or shared.
    let own = |c: &CoverageSpan| match vantage {
        None => c.kind == CoverageKind::Monitor,
        Some(v) => super::vantage::is_run_of(c, v),
    };
    let ours = |c: &CoverageSpan| {
        c.covers(est, iface) && (vantage.is_none() || own(c) || c.probing_vantage().is_none())
    };
    let mine = |own_ones: bool| {
        intervals::merge(
            all.iter()
                .filter(|c| ours(c) && own(c) == own_ones)
                .map(|c| (c.start_ms.max(range.0), c.end_ms.min(range.1)))
                .collect(),
        )
    };
    let monitor = intervals::subtract(&mine(true), &errors);
    let mut both = monitor;
    both.extend(mine(false));
    let spans = intervals::merge(both);
    let ongoing: Vec<i64> = all
        .iter()
        .filter(|c| c.ongoing && ours(c))
        .map(|c| c.end_ms.min(range.1))
        .collect();
    // Where the monitor stopped (or its own errors began) coverage is cut: nothing is known of
    // what followed. Where only the data ends (a log's last line, the loaded range, a monitor
    // still running) an episode still down is open. An earlier span always ends at a gap.
    let stops: Vec<i64> = all
        .iter()
        .filter(|c| c.kind == CoverageKind::Monitor && !c.ongoing && ours(c))
        .map(|c| c.end_ms.min(range.1))
        .chain(errors.iter().map(|e| e.0))
        .collect();
    let last = spans.len().saturating_sub(1);
    let open_end = spans
        .iter()
        .enumerate()
        .map(|(k, s)| {
            s.1 >= range.1 || ongoing.contains(&s.1) || (k == last && !stops.contains(&s.1))
        })
        .collect();
    SeriesCoverage { spans, open_end }
}

/// From each first `probe_error` of the monitor's probes to the next probe of another outcome
/// (or the end): the monitor could not see the bank, so it covers nothing there. Fed one
/// observation of the series at a time, in time order.
#[derive(Debug, Clone, Default)]
pub struct ProbeErrors {
    since: Option<i64>,
    spans: Vec<Span>,
}

impl ProbeErrors {
    pub fn push(&mut self, o: &Observation) {
        if o.source != Source::Probe {
            return;
        }
        match (o.outcome == Outcome::ProbeError, self.since) {
            (true, None) => self.since = Some(o.received_at_ms),
            (false, Some(s)) => {
                self.spans.push((s, o.received_at_ms));
                self.since = None;
            }
            _ => {}
        }
    }

    /// The spans, an error still running when the data ends lasting to `end`.
    pub fn finish(mut self, end: i64) -> Vec<Span> {
        if let Some(s) = self.since {
            self.spans.push((s, end.max(s)));
        }
        intervals::merge(self.spans)
    }
}

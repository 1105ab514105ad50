//! Batch episode detection: the live state machine over observations sorted by
//! (received_at, request_id), then open episodes closed at the period end, or at the monitor's
//! last heartbeat when it stopped earlier (methodology section 3).

use super::intervals::{self, Span};
use super::live::{EpisodeTracker, LiveEvent};
use super::{Episode, Settings};
use crate::domain::{MonitoredInterval, Observation, Source};

/// Detects the episodes in `sorted` (already in (received_at, request_id) order). Open episodes
/// end at `period_end_ms`, or at the end of the monitored interval holding their last failure
/// when the series was probed and heartbeats are known. `maintenance` gives each episode's
/// planned seconds (per establishment: the caller passes the spans for its establishment).
pub fn detect(
    sorted: &[&Observation],
    settings: &Settings,
    period_end_ms: i64,
    monitored: Option<&[MonitoredInterval]>,
    maintenance: &dyn Fn(&Episode) -> Vec<Span>,
) -> Vec<Episode> {
    let mut tracker = EpisodeTracker::new(settings);
    let mut out = Vec::new();
    for o in sorted {
        if let Some(LiveEvent::Closed(ep)) = tracker.push(o) {
            out.push(ep);
        }
    }
    let probed: std::collections::BTreeSet<_> = sorted
        .iter()
        .filter(|o| o.source == Source::Probe)
        .map(|o| (o.establishment, o.interface))
        .collect();
    for still in tracker.finish() {
        let mut ep = still.episode;
        let mut end = period_end_ms;
        if let Some(mon) = monitored
            && probed.contains(&(ep.establishment, ep.interface))
        {
            let t = still.last_failure_ms;
            let cut = mon
                .iter()
                .find(|m| m.start_ms <= t && t <= m.end_ms)
                .map(|m| m.end_ms)
                .unwrap_or(t);
            end = end.min(cut);
        }
        ep.end_ms = end.max(ep.start_ms);
        ep.open = true;
        out.push(ep);
    }
    for ep in &mut out {
        let spans = maintenance(ep);
        ep.planned_s = intervals::total(&intervals::intersect(&[(ep.start_ms, ep.end_ms)], &spans))
            as f64
            / 1000.0;
    }
    out.sort_by(|a, b| {
        (&a.establishment, a.interface, a.start_ms).cmp(&(
            &b.establishment,
            b.interface,
            b.start_ms,
        ))
    });
    out
}

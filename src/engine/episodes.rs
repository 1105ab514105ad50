//! Batch episode detection (methodology section 3): the live state machine over each covered
//! span of a series, in (received_at, request_id) order. An episode still down where a span ends
//! is closed there: `cut` when coverage resumes later (a gap: nothing is known of it, and the
//! failures after it need their own five, so each span starts a fresh run), `open` when the
//! data ends there.

use super::coverage::SeriesCoverage;
use super::live::{EpisodeTracker, LiveEvent};
use super::{Episode, Settings};
use crate::domain::Observation;

/// Episodes of one series. `sorted` is in (received_at, request_id) order; observations outside
/// the coverage take no part (nothing is known of that time).
pub fn detect(
    sorted: &[&Observation],
    settings: &Settings,
    coverage: &SeriesCoverage,
) -> Vec<Episode> {
    let mut out: Vec<Episode> = Vec::new();
    let mut i = 0;
    for (k, &(start, end)) in coverage.spans.iter().enumerate() {
        while i < sorted.len() && sorted[i].received_at_ms < start {
            i += 1;
        }
        let mut tracker = EpisodeTracker::new(settings);
        // A span's last instant holds its last observation (a log covers to its last line).
        while i < sorted.len() && sorted[i].received_at_ms <= end {
            if let Some(LiveEvent::Closed(mut ep)) = tracker.push(sorted[i]) {
                // A closing reply that completed after coverage ended: downtime stays inside it.
                ep.end_ms = ep.end_ms.min(end);
                out.push(ep);
            }
            i += 1;
        }
        for still in tracker.finish() {
            let mut ep = still.episode;
            ep.end_ms = end.max(ep.start_ms);
            ep.open = coverage.open_end[k];
            ep.cut = !ep.open;
            out.push(ep);
        }
    }
    // A run that began and ended inside the previous episode (moved to start at its end, so
    // zero long) adds no downtime: the earlier episode already holds it.
    out.retain(|e| e.end_ms > e.start_ms || e.open);
    out.sort_by_key(|e| e.start_ms);
    out
}

//! The unavailability rule as a state machine (methodology section 3), fed one observation at a
//! time. The batch engine runs exactly this over sorted observations, and the live detector inside
//! `dispo run` runs it as observations are recorded: one implementation, so an alert and the
//! published figures can never disagree on what an episode is.

use std::collections::{BTreeMap, VecDeque};

use super::{Episode, Settings};
use crate::domain::{EstablishmentCode, Interface, Observation, Outcome};

/// Whether an observation takes part in the availability count at all: `probe_error` is the
/// monitor's own fault, and services outside `counted_services` are left out.
pub fn counts(settings: &Settings, o: &Observation) -> bool {
    o.outcome != Outcome::ProbeError
        && settings
            .counted_services
            .as_ref()
            .is_none_or(|s| s.contains(&o.service))
}

/// What one observation changed.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    /// The fifth qualifying failure arrived: the interface is deemed down since `start_ms`.
    /// `end_ms` is provisional (the qualifying failure's time) and `open` is true.
    Opened(Episode),
    /// A reply that is not a failure ended the episode at its completion.
    Closed(Episode),
}

#[derive(Debug, Default)]
struct SeriesState {
    /// The last failures of the current run (at most `failures_to_down`), as (received_at, id).
    run: VecDeque<(i64, String)>,
    open: Option<Episode>,
    /// `received_at` of the latest failure: where an episode still open is cut when the monitor
    /// stopped.
    last_failure_ms: i64,
    /// End of the last closed episode: episodes never overlap, so the next one starts no earlier
    /// (a slow closing reply can complete after new failures began).
    last_end_ms: Option<i64>,
}

/// Tracks failure runs and episodes per establishment and interface.
#[derive(Debug)]
pub struct EpisodeTracker {
    settings: Settings,
    series: BTreeMap<(EstablishmentCode, Interface), SeriesState>,
}

/// An episode still open when the input ended.
#[derive(Debug, Clone, PartialEq)]
pub struct StillOpen {
    pub episode: Episode,
    pub last_failure_ms: i64,
}

impl EpisodeTracker {
    pub fn new(settings: &Settings) -> Self {
        Self {
            settings: settings.clone(),
            series: BTreeMap::new(),
        }
    }

    /// Whether this observation takes part in the availability count at all: `probe_error` is
    /// the monitor's own fault, and services outside `counted_services` are left out.
    pub fn counts(&self, o: &Observation) -> bool {
        counts(&self.settings, o)
    }

    /// Feeds one observation; observations of a series must come in (received_at, request_id)
    /// order for the result to follow the methodology.
    pub fn push(&mut self, o: &Observation) -> Option<LiveEvent> {
        if !self.counts(o) {
            return None;
        }
        let n = self.settings.failures_to_down.max(1);
        let window = self.settings.window_ms;
        let failure = o.outcome.is_failure(self.settings.aspsp_error_is_failure);
        let st = self
            .series
            .entry((o.establishment, o.interface))
            .or_default();
        if failure {
            st.last_failure_ms = o.received_at_ms;
            if st.open.is_some() {
                return None;
            }
            st.run
                .push_back((o.received_at_ms, o.request_id.to_string()));
            if st.run.len() > n {
                st.run.pop_front();
            }
            let (first, last) = (st.run.front()?.0, st.run.back()?.0);
            // The earliest n consecutive failures of the run whose last came at most `window`
            // after the first: sliding over the run finds them in order.
            if st.run.len() == n && last - first <= window {
                let start_ms = st.last_end_ms.map_or(first, |e| first.max(e));
                let ep = Episode {
                    establishment: o.establishment,
                    interface: o.interface,
                    start_ms,
                    end_ms: o.received_at_ms.max(start_ms),
                    open: true,
                    cut: false,
                    began_before_period: false,
                    request_ids: st.run.drain(..).map(|(_, id)| id).collect(),
                    ended_by: None,
                    planned_s: 0.0,
                };
                st.open = Some(ep.clone());
                return Some(LiveEvent::Opened(ep));
            }
            None
        } else {
            st.run.clear();
            let mut ep = st.open.take()?;
            // Down until the completion of the first reply that is not a failure.
            ep.end_ms = o
                .completed_at_ms()
                .unwrap_or(o.received_at_ms)
                .max(ep.start_ms);
            ep.open = false;
            ep.ended_by = Some(o.request_id.to_string());
            st.last_end_ms = Some(ep.end_ms);
            Some(LiveEvent::Closed(ep))
        }
    }

    /// Episodes open now.
    pub fn open_episodes(&self) -> impl Iterator<Item = &Episode> {
        self.series.values().filter_map(|s| s.open.as_ref())
    }

    /// Ends the input: the episodes still open, with their latest failure.
    pub fn finish(self) -> Vec<StillOpen> {
        self.series
            .into_values()
            .filter_map(|s| {
                s.open.map(|episode| StillOpen {
                    episode,
                    last_failure_ms: s.last_failure_ms,
                })
            })
            .collect()
    }
}

//! The ordered, lossless hand-off from the daemon to its observers (methodology section 8).
//!
//! A probe's observation is known only when its request ends, so requests finish out of order
//! (a hang ends 30 s after a later refusal). The episode rule reads each series in
//! (`received_at`, `request_id`) order, so the live detector must see that order too: each
//! observation is held until every earlier-sent request of its series has ended, then handed on.
//! A request is announced when it is about to be sent ([`Sequencer::begin`], a [`Ticket`]) and
//! its observations given with the ticket once durably written ([`Sequencer::done`]).
//!
//! Nothing is dropped: each observer has its own bounded channel and the hand-off waits for room
//! (backpressure up to the probes), where a broadcast would silently skip what a lagging receiver
//! missed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::burst::Series;
use crate::store::StoredObservation;

/// Room in each observer's channel before the hand-off waits.
const OBSERVER_CAPACITY: usize = 4096;

/// The receivers of the ordered observations. Subscribe before the daemon starts.
#[derive(Debug, Default, Clone)]
pub struct Observers {
    senders: Vec<mpsc::Sender<StoredObservation>>,
}

impl Observers {
    /// A new receiver of every observation, per series in (`received_at`, `request_id`) order.
    pub fn subscribe(&mut self) -> mpsc::Receiver<StoredObservation> {
        let (tx, rx) = mpsc::channel(OBSERVER_CAPACITY);
        self.senders.push(tx);
        rx
    }

    /// Hands one observation to every observer, waiting for room (an observer gone is skipped).
    async fn send(&self, o: StoredObservation) {
        for s in &self.senders {
            let _ = s.send(o.clone()).await;
        }
    }
}

/// Requests in flight: per series, (sent at, ticket number).
#[derive(Debug, Default)]
struct Inflight {
    next: u64,
    by_series: BTreeMap<Series, BTreeSet<(i64, u64)>>,
}

/// A request announced as sent; its series' later observations wait until it is done (or
/// dropped: a task that died holds nothing back for ever).
#[derive(Debug)]
pub struct Ticket {
    series: Series,
    key: (i64, u64),
    inflight: Arc<Mutex<Inflight>>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut g = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = g.by_series.get_mut(&self.series) {
            s.remove(&self.key);
            if s.is_empty() {
                g.by_series.remove(&self.series);
            }
        }
    }
}

struct Done {
    ticket: Option<Ticket>,
    observations: Vec<StoredObservation>,
}

/// Orders observations for the observers. Cheap to clone; the hand-off ends once every clone is
/// dropped and what was held has been handed on.
#[derive(Debug, Clone)]
pub struct Sequencer {
    inflight: Arc<Mutex<Inflight>>,
    tx: mpsc::Sender<Done>,
}

impl std::fmt::Debug for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Done")
            .field("observations", &self.observations.len())
            .finish()
    }
}

impl Sequencer {
    /// Starts the hand-off to `observers`; the task ends when every clone is dropped.
    pub fn start(observers: Observers) -> (Self, JoinHandle<()>) {
        let inflight: Arc<Mutex<Inflight>> = Default::default();
        let (tx, rx) = mpsc::channel(1024);
        let task = tokio::spawn(dispatch(rx, inflight.clone(), observers));
        (Self { inflight, tx }, task)
    }

    /// A request of `series` is about to be sent (now).
    pub fn begin(&self, series: Series) -> Ticket {
        self.begin_at(series, chrono::Utc::now().timestamp_millis())
    }

    /// A request of `series` sent at `sent_ms` (replays give recorded instants). Its
    /// observations must have `received_at` at or after it.
    pub fn begin_at(&self, series: Series, sent_ms: i64) -> Ticket {
        let mut g = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        g.next += 1;
        let key = (sent_ms, g.next);
        g.by_series.entry(series).or_default().insert(key);
        Ticket {
            series,
            key,
            inflight: self.inflight.clone(),
        }
    }

    /// The observations of the request `ticket` announced (durably written), or observations
    /// that belong to no announced request (`None`). Waits while the observers are behind.
    pub async fn done(&self, ticket: Option<Ticket>, observations: Vec<StoredObservation>) {
        let _ = self
            .tx
            .send(Done {
                ticket,
                observations,
            })
            .await;
    }
}

/// Held observations per series, in (received_at, request_id, arrival) order.
type Held = BTreeMap<Series, BTreeMap<(i64, String, u64), StoredObservation>>;

async fn dispatch(mut rx: mpsc::Receiver<Done>, inflight: Arc<Mutex<Inflight>>, out: Observers) {
    let mut held: Held = BTreeMap::new();
    let mut arrival = 0u64;
    let mut open = true;
    while open || !held.is_empty() {
        let msg = if held.is_empty() {
            rx.recv().await
        } else if open {
            // Something is held: look again shortly even without news (a ticket dropped by a
            // task that died, the current millisecond passing).
            tokio::select! {
                m = rx.recv() => m,
                _ = tokio::time::sleep(Duration::from_millis(20)) => Some(Done { ticket: None, observations: vec![] }),
            }
        } else {
            None
        };
        match msg {
            Some(d) => {
                for o in d.observations {
                    arrival += 1;
                    let series = (o.obs.establishment, o.obs.interface);
                    let key = (o.obs.received_at_ms, o.obs.request_id.to_string(), arrival);
                    held.entry(series).or_default().insert(key, o);
                }
                drop(d.ticket);
            }
            None => open = false,
        }
        for o in release(&mut held, &inflight, open) {
            out.send(o).await;
        }
    }
}

/// Takes out what no request in flight can precede: per series, the observations received
/// before the earliest request still in flight, and before the current millisecond (a request
/// announced later is sent later). `all` once the input has ended.
fn release(held: &mut Held, inflight: &Mutex<Inflight>, open: bool) -> Vec<StoredObservation> {
    let now = chrono::Utc::now().timestamp_millis();
    let g = inflight.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::new();
    held.retain(|series, obs| {
        let mark = if open {
            g.by_series
                .get(series)
                .and_then(|s| s.first())
                .map_or(now, |&(sent, _)| sent.min(now))
        } else {
            i64::MAX
        };
        while let Some(entry) = obs.first_entry() {
            if entry.key().0 >= mark {
                break;
            }
            out.push(entry.remove());
        }
        !obs.is_empty()
    });
    out.sort_by(|a, b| {
        (a.obs.received_at_ms, &a.obs.request_id).cmp(&(b.obs.received_at_ms, &b.obs.request_id))
    });
    out
}

#[cfg(test)]
mod tests {
    //! The order of hand-off, with recorded instants (the wall clock is long past them).

    use super::*;
    use crate::domain::{Interface, Observation, Outcome, Service, Source};

    fn obs(at: i64, id: &str) -> StoredObservation {
        Observation {
            received_at_ms: at,
            establishment: "13807".parse().unwrap(),
            interface: Interface::Api,
            service: Service::new("cbpii").unwrap(),
            source: Source::Probe,
            tpp: None,
            status: None,
            latency_ms: None,
            error_code: None,
            request_id: id.into(),
            outcome: Outcome::NoReply,
            vantage: crate::domain::Vantage::imported(Source::Probe),
        }
        .into()
    }

    #[tokio::test]
    async fn a_later_refusal_waits_for_an_earlier_hang() {
        let mut observers = Observers::default();
        let mut rx = observers.subscribe();
        let (seq, task) = Sequencer::start(observers);
        let s = ("13807".parse().unwrap(), Interface::Api);
        let hang = seq.begin_at(s, 1_000);
        let refused = seq.begin_at(s, 2_000);
        seq.done(Some(refused), vec![obs(2_000, "b")]).await;
        // The refusal is held while the earlier request is in flight.
        tokio::task::yield_now().await;
        assert!(rx.try_recv().is_err());
        seq.done(Some(hang), vec![obs(1_000, "a")]).await;
        assert_eq!(rx.recv().await.unwrap().obs.request_id.as_str(), "a");
        assert_eq!(rx.recv().await.unwrap().obs.request_id.as_str(), "b");
        drop(seq);
        task.await.unwrap();
        assert!(rx.recv().await.is_none());
    }
}

//! One request counts once (methodology section 1): observations of the same establishment with
//! the same request id less than 24 hours apart are one request (a gateway with two nodes logs
//! it twice; a probe's request is also in the gateway's log, by another clock). The probe's
//! record is kept when there is one, otherwise the earliest.
//!
//! [`Dedupe`] does it as the observations stream by, holding only the last 24 hours of request
//! ids: a log's record is handed on once no probe record can replace it any more (its id left
//! the window), so what comes out is in the same order as what went in, one record a request.

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::collections::hash_map::Entry;

use rustc_hash::FxHashMap;

use crate::domain::{CompactString, EstablishmentCode, Observation, Source};

/// Two records this close (and no closer than −this) are one request.
pub const SAME_REQUEST_MS: i64 = 24 * 3_600_000;

type Key = (EstablishmentCode, CompactString);

/// The record kept for a request id still in the window.
struct Seen {
    /// `received_at` of the record kept (the probe's, once it replaced a log's).
    at_ms: i64,
    probe: bool,
    /// Its place in `pending`.
    seq: u64,
}

/// A record waiting to be handed on; `None` once a probe's record replaced it.
struct Pending<T> {
    obs: Option<T>,
    /// Nothing can replace it any more.
    settled: bool,
}

/// De-duplication over a stream in (received_at, request_id) order. `T` is an owned observation
/// or a reference to one.
pub struct Dedupe<T> {
    seen: FxHashMap<Key, Seen>,
    /// Request ids in the order first seen, with when (a probe's record replacing a log's
    /// moves that later: [`Seen::at_ms`] has the truth): the front leaves the window first.
    window: VecDeque<(Key, i64)>,
    pending: VecDeque<Pending<T>>,
    /// Sequence number of `pending`'s front.
    base: u64,
}

impl<T> Default for Dedupe<T> {
    fn default() -> Self {
        Self {
            seen: FxHashMap::default(),
            window: VecDeque::new(),
            pending: VecDeque::new(),
            base: 0,
        }
    }
}

impl<T: Borrow<Observation>> Dedupe<T> {
    /// Takes the next record; hands on, in order, every record that is now settled.
    pub fn push(&mut self, item: T, out: &mut impl FnMut(T)) {
        let o: &Observation = item.borrow();
        // No id (NGINX writes "-" for a missing header): each such line is its own request.
        if o.request_id.is_empty() || o.request_id == "-" {
            self.pending.push_back(Pending {
                obs: Some(item),
                settled: true,
            });
            self.flush(out);
            return;
        }
        let at = o.received_at_ms;
        let probe = o.source == Source::Probe;
        while let Some((_, first_at)) = self.window.front() {
            if at.saturating_sub(*first_at) < SAME_REQUEST_MS {
                break;
            }
            let Some((key, first_at)) = self.window.pop_front() else {
                break;
            };
            match self.seen.remove(&key) {
                // A probe's record replaced the log's later: the id stays until 24 h after it.
                Some(s) if at.saturating_sub(s.at_ms) < SAME_REQUEST_MS => {
                    self.seen.insert(key.clone(), s);
                    self.window.push_front((key, first_at));
                    break;
                }
                Some(s) => {
                    // (A probe's record, settled from the start, may be gone already.)
                    if let Some(p) = s
                        .seq
                        .checked_sub(self.base)
                        .and_then(|i| self.pending.get_mut(i as usize))
                    {
                        p.settled = true;
                    }
                }
                None => {}
            }
        }
        let key = (o.establishment, o.request_id.clone());
        let next_seq = self.base + self.pending.len() as u64;
        match self.seen.entry(key) {
            Entry::Occupied(mut e) => {
                let s = e.get_mut();
                // A repeat: the probe's record wins over a log's, in the probe's place.
                if probe && !s.probe {
                    let old = &mut self.pending[(s.seq - self.base) as usize];
                    old.obs = None;
                    old.settled = true;
                    s.at_ms = at;
                    s.probe = true;
                    s.seq = next_seq;
                    self.pending.push_back(Pending {
                        obs: Some(item),
                        settled: true,
                    });
                }
            }
            Entry::Vacant(e) => {
                self.window.push_back((e.key().clone(), at));
                e.insert(Seen {
                    at_ms: at,
                    probe,
                    seq: next_seq,
                });
                // A probe's record is never replaced.
                self.pending.push_back(Pending {
                    obs: Some(item),
                    settled: probe,
                });
            }
        }
        self.flush(out);
    }

    /// The end of the stream: hands on everything still held.
    pub fn finish(mut self, out: &mut impl FnMut(T)) {
        for p in self.pending.drain(..) {
            if let Some(o) = p.obs {
                out(o);
            }
        }
    }

    fn flush(&mut self, out: &mut impl FnMut(T)) {
        while self.pending.front().is_some_and(|p| p.settled) {
            if let Some(p) = self.pending.pop_front() {
                self.base += 1;
                if let Some(o) = p.obs {
                    out(o);
                }
            }
        }
    }
}

/// Keeps one record per request from `sorted` (in (received_at, request_id) order); the result
/// is in the same order. Observations without a request id are all kept.
pub fn one_request_once(sorted: Vec<&Observation>) -> Vec<&Observation> {
    let mut out = Vec::with_capacity(sorted.len());
    let mut d = Dedupe::default();
    let mut keep = |o| out.push(o);
    for o in sorted {
        d.push(o, &mut keep);
    }
    d.finish(&mut keep);
    out
}

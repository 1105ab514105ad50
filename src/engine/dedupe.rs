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
use std::hash::BuildHasher;

use rustc_hash::FxBuildHasher;

use crate::domain::{CompactString, EstablishmentCode, Observation, Source};

/// Two records this close (and no closer than −this) are one request.
pub const SAME_REQUEST_MS: i64 = 24 * 3_600_000;

/// A request id still in the window, in the order first seen.
struct Slot {
    /// [`hash_hi`] of the id.
    hi: u32,
    establishment: EstablishmentCode,
    request_id: CompactString,
    /// When it was first seen: the front of the window leaves it first.
    first_at: i64,
    /// `received_at` of the record kept (the probe's, once it replaced a log's: later).
    at_ms: i64,
    probe: bool,
    /// The kept record's place in `pending`.
    seq: u64,
}

/// A record waiting to be handed on; `None` once a probe's record replaced it.
struct Pending<T> {
    obs: Option<T>,
    /// The log's record a probe's replaced: the request's first record.
    replaced: Option<Box<T>>,
    /// Nothing can replace it any more.
    settled: bool,
}

/// De-duplication over a stream in (received_at, request_id) order. `T` is an owned observation
/// or a reference to one.
///
/// A day of a hundred million rows is a million ids in the window: a map holding them whole is
/// far bigger than a processor cache, and every row cost two misses in it (one to look its id
/// up, one when the id left the window 24 hours later), the larger part of counting a quarter.
/// Here the ids sit in `window`, a queue read in order, and [`Ids`] indexes it with 8 bytes an
/// entry; where each row will look is known ahead, so the caller fetches it early
/// ([`Dedupe::prefetch`]) and so does the window for the ids about to leave.
pub struct Dedupe<T> {
    window: VecDeque<Slot>,
    /// Absolute place of `window`'s front (wrapping, as `ids` holds it).
    window_base: u32,
    ids: Ids,
    pending: VecDeque<Pending<T>>,
    /// Sequence number of `pending`'s front.
    base: u64,
}

impl<T> Default for Dedupe<T> {
    fn default() -> Self {
        Self {
            window: VecDeque::new(),
            window_base: 0,
            ids: Ids::default(),
            pending: VecDeque::new(),
            base: 0,
        }
    }
}

/// The high half of the id's hash (FxHash's good bits), never 0 (an empty place in [`Ids`]).
fn hash_hi(establishment: EstablishmentCode, request_id: &str) -> u32 {
    (FxBuildHasher.hash_one((establishment, request_id)) >> 32) as u32 | 1
}

/// The places of the window's ids: `hi << 32 | place` each, by open addressing with linear
/// probing, at most half full (0: empty). Equal `hi` does not mean equal ids: the caller checks
/// the window.
#[derive(Default)]
struct Ids {
    slots: Vec<u64>,
    /// log2 of `slots.len()` (0 while empty).
    bits: u32,
    len: usize,
}

impl Ids {
    fn home(&self, hi: u32) -> usize {
        // Fibonacci hashing: the top bits of the product mix every bit of `hi`.
        (u64::from(hi).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - self.bits)) as usize
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// Asks the processor for the place `hi` starts at, ahead of its use.
    fn prefetch(&self, hi: u32) {
        if self.slots.is_empty() {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let p: *const u64 = &self.slots[self.home(hi)];
            // SAFETY: a prefetch is a hint that never faults nor reads into the program; the
            // pointer is into our own slice besides. (Unsafe only for its target feature, SSE,
            // which every x86-64 processor has.)
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) };
        }
    }

    /// The window place of the first entry with this `hi` for which `same` holds.
    fn find(&self, hi: u32, mut same: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.mask();
        let mut i = self.home(hi);
        loop {
            let e = self.slots[i];
            if e == 0 {
                return None;
            }
            if (e >> 32) as u32 == hi && same(e as u32) {
                return Some(e as u32);
            }
            i = (i + 1) & mask;
        }
    }

    fn insert(&mut self, hi: u32, place: u32) {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.mask();
        let mut i = self.home(hi);
        while self.slots[i] != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = u64::from(hi) << 32 | u64::from(place);
        self.len += 1;
    }

    fn grow(&mut self) {
        let old = std::mem::take(&mut self.slots);
        self.bits = (self.bits + 1).max(10);
        self.slots = vec![0; 1 << self.bits];
        self.len = 0;
        for e in old.into_iter().filter(|e| *e != 0) {
            self.insert((e >> 32) as u32, e as u32);
        }
    }

    /// Removes the entry `hi << 32 | place` (shifting back the entries after it, so that no
    /// search stops early at the hole).
    fn remove(&mut self, hi: u32, place: u32) {
        if self.slots.is_empty() {
            return;
        }
        let entry = u64::from(hi) << 32 | u64::from(place);
        let mask = self.mask();
        let mut i = self.home(hi);
        loop {
            match self.slots[i] {
                0 => return,
                e if e == entry => break,
                _ => i = (i + 1) & mask,
            }
        }
        self.len -= 1;
        let mut j = i;
        loop {
            self.slots[i] = 0;
            loop {
                j = (j + 1) & mask;
                let e = self.slots[j];
                if e == 0 {
                    return;
                }
                let k = self.home((e >> 32) as u32);
                // `e` may stay where it is if its home lies cyclically in (i, j].
                let stays = if i <= j {
                    i < k && k <= j
                } else {
                    i < k || k <= j
                };
                if !stays {
                    self.slots[i] = e;
                    i = j;
                    break;
                }
            }
        }
    }
}

impl<T: Borrow<Observation>> Dedupe<T> {
    /// Takes the next record; hands on, in order, every record that is now settled, with the
    /// log's record it replaced if a probe's record did (the request's first record).
    pub fn push(&mut self, item: T, out: &mut impl FnMut(T, Option<Box<T>>)) {
        let o: &Observation = item.borrow();
        // No id (NGINX writes "-" for a missing header): each such line is its own request.
        if o.request_id.is_empty() || o.request_id == "-" {
            self.pending.push_back(Pending {
                obs: Some(item),
                replaced: None,
                settled: true,
            });
            self.flush(out);
            return;
        }
        let at = o.received_at_ms;
        let probe = o.source == Source::Probe;
        while let Some(front) = self.window.front() {
            if at.saturating_sub(front.first_at) < SAME_REQUEST_MS
                // A probe's record replaced the log's later: the id stays until 24 h after it.
                || at.saturating_sub(front.at_ms) < SAME_REQUEST_MS
            {
                break;
            }
            self.ids.remove(front.hi, self.window_base);
            if let Some(ahead) = self.window.get(16) {
                self.ids.prefetch(ahead.hi);
            }
            // (A probe's record, settled from the start, may be gone already.)
            if let Some(p) = front
                .seq
                .checked_sub(self.base)
                .and_then(|i| self.pending.get_mut(i as usize))
            {
                p.settled = true;
            }
            self.window.pop_front();
            self.window_base = self.window_base.wrapping_add(1);
        }
        let (establishment, request_id) = (o.establishment, o.request_id.as_str());
        let hi = hash_hi(establishment, request_id);
        let next_seq = self.base + self.pending.len() as u64;
        let window = &mut self.window;
        let window_base = self.window_base;
        let found = self.ids.find(hi, |place| {
            let s = &window[place.wrapping_sub(window_base) as usize];
            s.establishment == establishment && s.request_id == request_id
        });
        match found {
            Some(place) => {
                let s = &mut window[place.wrapping_sub(window_base) as usize];
                // A repeat: the probe's record wins over a log's, in the probe's place.
                if probe && !s.probe {
                    let old = &mut self.pending[(s.seq - self.base) as usize];
                    let replaced = old.obs.take().map(Box::new);
                    old.settled = true;
                    s.at_ms = at;
                    s.probe = true;
                    s.seq = next_seq;
                    self.pending.push_back(Pending {
                        obs: Some(item),
                        replaced,
                        settled: true,
                    });
                }
            }
            None => {
                let place = window_base.wrapping_add(window.len() as u32);
                window.push_back(Slot {
                    hi,
                    establishment,
                    request_id: o.request_id.clone(),
                    first_at: at,
                    at_ms: at,
                    probe,
                    seq: next_seq,
                });
                self.ids.insert(hi, place);
                // A probe's record is never replaced.
                self.pending.push_back(Pending {
                    obs: Some(item),
                    replaced: None,
                    settled: probe,
                });
            }
        }
        self.flush(out);
    }

    /// Asks the processor for where `o`'s id will be looked up: called some rows ahead of
    /// [`Dedupe::push`], the look-up finds it in cache.
    pub fn prefetch(&self, o: &Observation) {
        if !o.request_id.is_empty() {
            self.ids.prefetch(hash_hi(o.establishment, &o.request_id));
        }
    }

    /// The end of the stream: hands on everything still held.
    pub fn finish(mut self, out: &mut impl FnMut(T, Option<Box<T>>)) {
        for p in self.pending.drain(..) {
            if let Some(o) = p.obs {
                out(o, p.replaced);
            }
        }
    }

    fn flush(&mut self, out: &mut impl FnMut(T, Option<Box<T>>)) {
        while self.pending.front().is_some_and(|p| p.settled) {
            if let Some(p) = self.pending.pop_front() {
                self.base += 1;
                if let Some(o) = p.obs {
                    out(o, p.replaced);
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
    let mut keep = |o, _| out.push(o);
    for o in sorted {
        d.push(o, &mut keep);
    }
    d.finish(&mut keep);
    out
}

#[cfg(test)]
mod tests {
    use super::Ids;

    #[test]
    fn ids_finds_what_is_in_and_nothing_else_through_growth_and_removals() {
        // Eight distinct `hi` values for 3 000 places: long runs of collisions, so removals
        // must shift entries back across other homes (and across the end of the slots).
        let mut ids = Ids::default();
        let mut model = std::collections::BTreeSet::new();
        let hi = |p: u32| ((p % 8) * 0x2000_0001) | 1;
        let mut x: u64 = 7;
        for step in 0..20_000u32 {
            // A small linear congruential generator: reproducible, no dependency.
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let p = (x >> 33) as u32 % 3_000;
            if model.contains(&p) {
                ids.remove(hi(p), p);
                model.remove(&p);
            } else {
                ids.insert(hi(p), p);
                model.insert(p);
            }
            if step % 997 == 0 {
                for q in 0..3_000 {
                    let found = ids.find(hi(q), |place| place == q);
                    assert_eq!(
                        found.is_some(),
                        model.contains(&q),
                        "place {q} at step {step}"
                    );
                }
            }
        }
        assert_eq!(ids.len, model.len());
    }
}

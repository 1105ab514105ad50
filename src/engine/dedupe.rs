//! One request counts once (methodology section 1): observations of the same establishment with
//! the same request id less than 24 hours apart are one request (a gateway with two nodes logs
//! it twice; a probe's request is also in the gateway's log, by another clock). The probe's
//! record is kept when there is one, otherwise the earliest.
//!
//! [`Dedupe`] does it as the observations stream by, holding only the last 24 hours of request
//! ids: a log's record is handed on once no probe record can replace it any more (its id left
//! the window), so what comes out is in the same order as what went in, one record a request.
//! With several vantages (section 10, [`Dedupe::with_shadows`]) the log record a probe's stands
//! for comes out too, marked, for the other vantages' episode rule alone.

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::hash::BuildHasher;

use rustc_hash::FxBuildHasher;

use crate::domain::{CompactString, EstablishmentCode, Observation, Source, Vantage};

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
    /// With [`Dedupe::with_shadows`]: the probe's vantage (`vantage - 1` in [`Shadows::names`];
    /// 0 when none), and whether a log record of it was handed on marked (in the padding).
    vantage: u16,
    handed: bool,
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
    /// With [`Dedupe::with_shadows`]: a log record that the probe of vantage `shadow - 1` (in
    /// [`Shadows::names`]) stands for; 0 when none (in the padding: no memory).
    shadow: u16,
}

/// What comes out with a record.
pub struct Handed<'a, T> {
    /// The log's record a probe's replaced: the request's first record.
    pub replaced: Option<Box<T>>,
    /// With [`Dedupe::with_shadows`]: this is a log record that this vantage's probe of the same
    /// request stands for; it counts for the other vantages' episode rule alone (section 10).
    pub shadowed_by: Option<&'a Vantage>,
}

/// Section 10: the log record of a request one vantage probed is that vantage's probe for it,
/// but the other vantages' series hold the gateway's logs without that probe: they still count
/// it. Such records are handed on marked with the probe's vantage (at most one per request).
#[derive(Default)]
struct Shadows {
    names: Vec<Vantage>,
}

impl Shadows {
    /// `v`'s index + 1.
    fn mark(&mut self, v: &Vantage) -> u16 {
        let i = match self.names.iter().position(|n| n == v) {
            Some(i) => i,
            None => {
                self.names.push(v.clone());
                self.names.len() - 1
            }
        };
        i as u16 + 1
    }
}

fn shadow_of(shadows: &Option<Box<Shadows>>, shadow: u16) -> Option<&Vantage> {
    let i = shadow.checked_sub(1)?;
    shadows.as_ref()?.names.get(i as usize)
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
    /// `None`: a replaced log record is not handed on itself (one vantage: the usual case).
    shadows: Option<Box<Shadows>>,
}

impl<T> Default for Dedupe<T> {
    fn default() -> Self {
        Self {
            window: VecDeque::new(),
            window_base: 0,
            ids: Ids::default(),
            pending: VecDeque::new(),
            base: 0,
            shadows: None,
        }
    }
}

impl<T> Dedupe<T> {
    /// As the default, but also handing on (marked with the probe's vantage) the log record a
    /// probe's stands for, for the other vantages' series (section 10).
    pub fn with_shadows() -> Self {
        Self {
            shadows: Some(Box::default()),
            ..Self::default()
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

impl<T: Borrow<Observation> + Clone> Dedupe<T> {
    /// Takes the next record; hands on, in order, every record that is now settled, with the
    /// log's record it replaced if a probe's record did (the request's first record) and, with
    /// [`Dedupe::with_shadows`], the vantage whose probe a log record stands for.
    pub fn push(&mut self, item: T, out: &mut impl FnMut(T, Handed<'_, T>)) {
        let o: &Observation = item.borrow();
        // No id (NGINX writes "-" for a missing header): each such line is its own request.
        if o.request_id.is_empty() || o.request_id == "-" {
            self.pending.push_back(Pending {
                obs: Some(item),
                replaced: None,
                settled: true,
                shadow: 0,
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
                    let replaced = match &mut self.shadows {
                        None => old.obs.take().map(Box::new),
                        // Several vantages: the log's record stays in its place, marked.
                        Some(sh) => {
                            s.vantage = sh.mark(&o.vantage);
                            s.handed = true;
                            old.shadow = s.vantage;
                            old.obs.clone().map(Box::new)
                        }
                    };
                    old.settled = true;
                    s.at_ms = at;
                    s.probe = true;
                    s.seq = next_seq;
                    self.pending.push_back(Pending {
                        obs: Some(item),
                        replaced,
                        settled: true,
                        shadow: 0,
                    });
                } else if !probe && s.probe && s.vantage != 0 && !s.handed {
                    // The gateway's record of a probe seen earlier: for the other vantages.
                    s.handed = true;
                    self.pending.push_back(Pending {
                        obs: Some(item),
                        replaced: None,
                        settled: true,
                        shadow: s.vantage,
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
                    vantage: match &mut self.shadows {
                        Some(sh) if probe => sh.mark(&o.vantage),
                        _ => 0,
                    },
                    handed: false,
                    seq: next_seq,
                });
                self.ids.insert(hi, place);
                // A probe's record is never replaced.
                self.pending.push_back(Pending {
                    obs: Some(item),
                    replaced: None,
                    settled: probe,
                    shadow: 0,
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
    pub fn finish(mut self, out: &mut impl FnMut(T, Handed<'_, T>)) {
        for p in self.pending.drain(..) {
            if let Some(o) = p.obs {
                let shadowed_by = shadow_of(&self.shadows, p.shadow);
                out(
                    o,
                    Handed {
                        replaced: p.replaced,
                        shadowed_by,
                    },
                );
            }
        }
    }

    fn flush(&mut self, out: &mut impl FnMut(T, Handed<'_, T>)) {
        while self.pending.front().is_some_and(|p| p.settled) {
            if let Some(p) = self.pending.pop_front() {
                self.base += 1;
                if let Some(o) = p.obs {
                    let shadowed_by = shadow_of(&self.shadows, p.shadow);
                    out(
                        o,
                        Handed {
                            replaced: p.replaced,
                            shadowed_by,
                        },
                    );
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
    let mut keep = |o, _: Handed<'_, &Observation>| out.push(o);
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

#[cfg(test)]
mod shadow_tests {
    use super::*;
    use crate::domain::{Interface, Outcome, Service};

    fn ob(src: Source, vantage: &str, at: i64, rid: &str) -> Observation {
        Observation {
            received_at_ms: at,
            establishment: "13807".parse().unwrap(),
            interface: Interface::Api,
            service: Service::new("cbpii").unwrap(),
            source: src,
            tpp: None,
            status: Some(503),
            latency_ms: Some(1.0),
            error_code: None,
            request_id: rid.into(),
            outcome: Outcome::AspspError,
            vantage: Vantage::new(vantage).unwrap(),
        }
    }

    /// (request id, source, shadowed by) of what comes out, in order.
    fn run(mut d: Dedupe<Observation>, input: Vec<Observation>) -> Vec<String> {
        let mut out = Vec::new();
        let mut keep = |o: Observation, h: Handed<'_, Observation>| {
            out.push(format!(
                "{} {:?} {}",
                o.request_id,
                o.source,
                h.shadowed_by.map_or("-", |v| v.as_str())
            ))
        };
        for o in input {
            d.push(o, &mut keep);
        }
        d.finish(&mut keep);
        out
    }

    #[test]
    fn a_log_record_a_probe_stands_for_is_handed_on_marked_for_the_other_vantages() {
        let input = || {
            vec![
                // r1: logged first (the gateway's clock is early), then a's probe.
                ob(Source::Log, "gateway", 1_000, "r1"),
                ob(Source::Probe, "a", 1_005, "r1"),
                // r2: b's probe first, then logged twice (two gateway nodes).
                ob(Source::Probe, "b", 2_000, "r2"),
                ob(Source::Log, "gateway", 2_003, "r2"),
                ob(Source::Log, "gateway", 2_004, "r2"),
                // r3: logged only.
                ob(Source::Log, "gateway", 3_000, "r3"),
            ]
        };
        // One vantage: the probe's record alone, as always.
        assert_eq!(
            run(Dedupe::default(), input()),
            ["r1 Probe -", "r2 Probe -", "r3 Log -"]
        );
        // Several: each probed request's first log record too, marked with the probe's vantage.
        assert_eq!(
            run(Dedupe::with_shadows(), input()),
            [
                "r1 Log a",
                "r1 Probe -",
                "r2 Probe -",
                "r2 Log b",
                "r3 Log -"
            ]
        );
    }
}

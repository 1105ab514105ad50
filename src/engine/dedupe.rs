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
use std::collections::hash_map::Entry;

use rustc_hash::FxHashMap;

use crate::domain::{CompactString, EstablishmentCode, Observation, Source, Vantage};

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
    /// With [`Dedupe::with_shadows`]: a log record that the probe of vantage `shadow - 1` (in
    /// [`Shadows::names`]) stands for; 0 when none (in the padding: no memory).
    shadow: u16,
}

/// Section 10: the log record of a request one vantage probed is that vantage's probe for it,
/// but the other vantages' series hold the gateway's logs without that probe: they still count
/// it. Such records are handed on marked with the probe's vantage (at most one per request).
#[derive(Default)]
struct Shadows {
    names: Vec<Vantage>,
    /// Request ids whose probe record is kept: its vantage, and whether a log record of it was
    /// handed on marked.
    probes: FxHashMap<Key, (u16, bool)>,
}

impl Shadows {
    fn intern(&mut self, v: &Vantage) -> u16 {
        match self.names.iter().position(|n| n == v) {
            Some(i) => i as u16,
            None => {
                self.names.push(v.clone());
                (self.names.len() - 1) as u16
            }
        }
    }
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
    /// `None`: a replaced log record is dropped (one vantage: the usual case).
    shadows: Option<Box<Shadows>>,
}

impl<T> Default for Dedupe<T> {
    fn default() -> Self {
        Self {
            seen: FxHashMap::default(),
            window: VecDeque::new(),
            pending: VecDeque::new(),
            base: 0,
            shadows: None,
        }
    }
}

impl<T> Dedupe<T> {
    /// As the default, but handing on (marked with the probe's vantage) the log record a
    /// probe's replaces, for the other vantages' series (section 10).
    pub fn with_shadows() -> Self {
        Self {
            shadows: Some(Box::default()),
            ..Self::default()
        }
    }
}

impl<T: Borrow<Observation>> Dedupe<T> {
    /// Takes the next record; hands on, in order, every record that is now settled, with the
    /// vantage of the probe it is shadowed by ([`Dedupe::with_shadows`]; otherwise always
    /// `None`).
    pub fn push(&mut self, item: T, out: &mut impl FnMut(T, Option<&Vantage>)) {
        let o: &Observation = item.borrow();
        // No id (NGINX writes "-" for a missing header): each such line is its own request.
        if o.request_id.is_empty() || o.request_id == "-" {
            self.pending.push_back(Pending {
                obs: Some(item),
                settled: true,
                shadow: 0,
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
                    if let Some(sh) = &mut self.shadows {
                        sh.probes.remove(&key);
                    }
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
                    match &mut self.shadows {
                        None => old.obs = None,
                        Some(sh) => {
                            let v = sh.intern(&o.vantage);
                            old.shadow = v + 1;
                            sh.probes
                                .insert((o.establishment, o.request_id.clone()), (v, true));
                        }
                    }
                    old.settled = true;
                    s.at_ms = at;
                    s.probe = true;
                    s.seq = next_seq;
                    self.pending.push_back(Pending {
                        obs: Some(item),
                        settled: true,
                        shadow: 0,
                    });
                } else if !probe
                    && s.probe
                    && let Some(sh) = &mut self.shadows
                    && let Some((v, handed)) = sh.probes.get_mut(e.key())
                    && !*handed
                {
                    // The gateway's record of a probe seen earlier: for the other vantages.
                    *handed = true;
                    self.pending.push_back(Pending {
                        obs: Some(item),
                        settled: true,
                        shadow: *v + 1,
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
                if probe && let Some(sh) = &mut self.shadows {
                    let v = sh.intern(&o.vantage);
                    sh.probes
                        .insert((o.establishment, o.request_id.clone()), (v, false));
                }
                // A probe's record is never replaced.
                self.pending.push_back(Pending {
                    obs: Some(item),
                    settled: probe,
                    shadow: 0,
                });
            }
        }
        self.flush(out);
    }

    /// The end of the stream: hands on everything still held.
    pub fn finish(mut self, out: &mut impl FnMut(T, Option<&Vantage>)) {
        for p in self.pending.drain(..) {
            if let Some(o) = p.obs {
                out(o, shadow_of(&self.shadows, p.shadow));
            }
        }
    }

    fn flush(&mut self, out: &mut impl FnMut(T, Option<&Vantage>)) {
        while self.pending.front().is_some_and(|p| p.settled) {
            if let Some(p) = self.pending.pop_front() {
                self.base += 1;
                if let Some(o) = p.obs {
                    out(o, shadow_of(&self.shadows, p.shadow));
                }
            }
        }
    }
}

fn shadow_of(shadows: &Option<Box<Shadows>>, shadow: u16) -> Option<&Vantage> {
    let i = shadow.checked_sub(1)?;
    shadows.as_ref()?.names.get(i as usize)
}

/// Keeps one record per request from `sorted` (in (received_at, request_id) order); the result
/// is in the same order. Observations without a request id are all kept.
pub fn one_request_once(sorted: Vec<&Observation>) -> Vec<&Observation> {
    let mut out = Vec::with_capacity(sorted.len());
    let mut d = Dedupe::default();
    let mut keep = |o, _: Option<&Vantage>| out.push(o);
    for o in sorted {
        d.push(o, &mut keep);
    }
    d.finish(&mut keep);
    out
}

#[cfg(test)]
mod tests {
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
        let mut keep = |o: Observation, by: Option<&Vantage>| {
            out.push(format!(
                "{} {:?} {}",
                o.request_id,
                o.source,
                by.map_or("-", |v| v.as_str())
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

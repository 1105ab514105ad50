//! Fallback use (methodology section 6): each request on the contingency access is justified when
//! it falls inside an unavailability episode of the same establishment's dedicated interface
//! (plus the grace period), otherwise unjustified — possible misuse, counted per TPP and day.
//!
//! The requests are gathered as they stream by (an instant and a TPP each) and judged once the
//! episodes are known.

use std::collections::BTreeMap;

use chrono_tz::Tz;
use rustc_hash::FxHashMap;

use super::time::local_date;
use super::{Episode, FallbackUse, Settings};
use crate::domain::{EstablishmentCode, Interface, Observation, Outcome, TppId};

/// The requests of a period that count as fallback use, in a few bytes each.
#[derive(Debug, Default)]
pub struct FallbackCalls {
    /// (establishment, TPP) → its index in `who`.
    index: FxHashMap<(EstablishmentCode, Option<TppId>), u32>,
    who: Vec<(EstablishmentCode, Option<TppId>)>,
    /// (received_at, index in `who`).
    calls: Vec<(i64, u32)>,
}

impl FallbackCalls {
    /// Takes `o` if it is a use of the contingency access (the monitor's own checks are not,
    /// unless policy `fallback_counts_probes`).
    pub fn push(&mut self, o: &Observation, settings: &Settings) {
        if o.interface != Interface::Fallback
            || o.outcome == Outcome::ProbeError
            || (settings.is_monitor(o) && !settings.fallback_counts_probes)
        {
            return;
        }
        let key = (o.establishment, o.tpp.clone());
        let k = match self.index.get(&key) {
            Some(k) => *k,
            None => {
                let k = self.who.len() as u32;
                self.who.push(key.clone());
                self.index.insert(key, k);
                k
            }
        };
        self.calls.push((o.received_at_ms, k));
    }

    /// Fallback uses per (local date, establishment, TPP).
    pub fn classify(self, episodes: &[Episode], settings: &Settings, tz: Tz) -> Vec<FallbackUse> {
        let grace_ms = settings.fallback_grace_s.max(0) * 1000;
        // Per establishment, the dedicated interface's episodes by start, with the latest end
        // (plus grace) so far: a request is justified when some episode started at or before
        // it and ends (with grace) at or after it.
        let mut down: BTreeMap<EstablishmentCode, Vec<(i64, i64)>> = BTreeMap::new();
        for e in episodes.iter().filter(|e| e.interface == Interface::Api) {
            down.entry(e.establishment)
                .or_default()
                .push((e.start_ms, e.end_ms + grace_ms));
        }
        for v in down.values_mut() {
            v.sort_unstable();
            let mut latest = i64::MIN;
            for s in v.iter_mut() {
                latest = latest.max(s.1);
                s.1 = latest;
            }
        }
        let mut acc: BTreeMap<_, (u64, u64)> = BTreeMap::new();
        for (t, k) in self.calls {
            let (est, tpp) = &self.who[k as usize];
            let justified = down.get(est).is_some_and(|v| {
                let n = v.partition_point(|s| s.0 <= t);
                n > 0 && v[n - 1].1 >= t
            });
            let e = acc
                .entry((local_date(tz, t), *est, tpp.clone()))
                .or_default();
            if justified {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
        acc.into_iter()
            .map(
                |((date, establishment, tpp), (justified, unjustified))| FallbackUse {
                    date,
                    establishment,
                    tpp,
                    justified,
                    unjustified,
                },
            )
            .collect()
    }
}

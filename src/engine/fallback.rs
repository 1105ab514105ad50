//! Fallback use (methodology section 6): each request on the contingency access is justified when
//! it falls inside an unavailability episode of the same establishment's dedicated interface
//! (plus the grace period), otherwise unjustified — possible misuse, counted per TPP and day.

use std::collections::BTreeMap;

use chrono_tz::Tz;

use super::time::local_date;
use super::{Episode, FallbackUse, Settings};
use crate::domain::{Interface, Observation, Outcome};

/// Fallback uses per (local date, establishment, TPP), from observations in time order.
pub fn classify(
    observations: &[&Observation],
    episodes: &[Episode],
    settings: &Settings,
    tz: Tz,
) -> Vec<FallbackUse> {
    let grace_ms = settings.fallback_grace_s.max(0) * 1000;
    let mut acc: BTreeMap<_, (u64, u64)> = BTreeMap::new();
    for o in observations {
        if o.interface != Interface::Fallback
            || o.outcome == Outcome::ProbeError
            || (settings.is_monitor(o) && !settings.fallback_counts_probes)
        {
            continue;
        }
        let t = o.received_at_ms;
        let justified = episodes.iter().any(|e| {
            e.interface == Interface::Api
                && e.establishment == o.establishment
                && e.start_ms <= t
                && t <= e.end_ms + grace_ms
        });
        let e = acc
            .entry((local_date(tz, t), o.establishment, o.tpp.clone()))
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

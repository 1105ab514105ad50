//! One request counts once (methodology section 1): observations of the same establishment with
//! the same request id less than 24 hours apart are one request (a gateway with two nodes logs
//! it twice; a probe's request is also in the gateway's log, by another clock). The probe's
//! record is kept when there is one, otherwise the earliest.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use crate::domain::{EstablishmentCode, Observation, Source};

/// Two records this close (and no closer than −this) are one request.
pub const SAME_REQUEST_MS: i64 = 24 * 3_600_000;

/// Keeps one record per request from `sorted` (in (received_at, request_id) order); the result
/// is in the same order. Observations without a request id are all kept.
pub fn one_request_once(sorted: Vec<&Observation>) -> Vec<&Observation> {
    // Only the last 24 hours of request ids are held: memory follows the traffic of a day.
    let mut seen: FxHashMap<(EstablishmentCode, &str), usize> = FxHashMap::default();
    let mut window: VecDeque<usize> = VecDeque::new();
    let mut out: Vec<&Observation> = Vec::with_capacity(sorted.len());
    let mut reordered = false;
    for o in sorted {
        // No id (NGINX writes "-" for a missing header): each such line is its own request.
        if o.request_id.is_empty() || o.request_id == "-" {
            out.push(o);
            continue;
        }
        while let Some(&i) = window.front() {
            if o.received_at_ms - out[i].received_at_ms < SAME_REQUEST_MS {
                break;
            }
            window.pop_front();
            let key = (out[i].establishment, out[i].request_id.as_str());
            if seen.get(&key) == Some(&i) {
                seen.remove(&key);
            }
        }
        let key = (o.establishment, o.request_id.as_str());
        match seen.get(&key) {
            Some(&i) => {
                // A repeat: the probe's record wins over a log's.
                if o.source == Source::Probe && out[i].source != Source::Probe {
                    out[i] = o;
                    reordered = true;
                }
            }
            None => {
                seen.insert(key, out.len());
                window.push_back(out.len());
                out.push(o);
            }
        }
    }
    if reordered {
        out.sort_by(|a, b| {
            a.received_at_ms
                .cmp(&b.received_at_ms)
                .then_with(|| a.request_id.cmp(&b.request_id))
        });
    }
    out
}

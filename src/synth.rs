//! Deterministic synthetic observations for benchmarks and demos (`dispo synth`): the same seed
//! gives the same rows. Traffic follows a daily shape; latencies are log-normal per service;
//! there are outages (runs of unanswered requests that make real episodes, some across
//! midnight), slow periods, bursts of 503 INTS, rejections, fallback use inside and outside
//! outages, and the customer web interface beside the API. Every row is marked synthetic.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::domain::{EstablishmentCode, Interface, Observation, Outcome, Service, Source, Vantage};
use crate::store::StoredObservation;

/// The monitor id of synthetic probes (and of the monitor run `dispo synth` records).
pub const SYNTH_MONITOR: &str = "synth";

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthSpec {
    pub observations: u64,
    /// UTC epoch ms, half-open.
    pub from_ms: i64,
    pub to_ms: i64,
    pub establishments: Vec<EstablishmentCode>,
    pub seed: u64,
}

/// A generator yielding observations in time order, without holding them all.
pub struct Synth {
    spec: SynthSpec,
    rng: StdRng,
    i: u64,
    step_ms: f64,
    /// Per establishment: the end of the current outage / slow / 503 period, if any.
    outage_until: Vec<i64>,
    slow_until: Vec<i64>,
    errors_until: Vec<i64>,
    tpps: Vec<String>,
    /// Rows due before the main timeline's next one (confirmation bursts), earliest first.
    pending: std::collections::BinaryHeap<std::cmp::Reverse<(i64, u64, usize, bool)>>,
    /// Position on the main timeline.
    j: u64,
    /// Time of the next main-timeline row: what is left of the period spread over the rows left,
    /// so that burst rows never leave the end of the period empty.
    cursor: f64,
}

impl Synth {
    pub fn new(spec: SynthSpec) -> Self {
        let n = spec.establishments.len().max(1);
        let span = (spec.to_ms - spec.from_ms).max(1) as f64;
        Self {
            step_ms: span / spec.observations.max(1) as f64,
            rng: StdRng::seed_from_u64(spec.seed),
            i: 0,
            outage_until: vec![i64::MIN; n],
            slow_until: vec![i64::MIN; n],
            errors_until: vec![i64::MIN; n],
            tpps: (0..12)
                .map(|k| format!("PSDFR-ACPR-{:05}", 10_000 + k * 731))
                .collect(),
            pending: Default::default(),
            j: 0,
            cursor: spec.from_ms as f64,
            spec,
        }
    }

    fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        // Box-Muller: a normal draw, exponentiated.
        let (u1, u2): (f64, f64) = (self.rng.r#gen::<f64>().max(1e-12), self.rng.r#gen::<f64>());
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        median * (sigma * z).exp()
    }
}

impl Iterator for Synth {
    type Item = StoredObservation;

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.spec.observations.saturating_sub(self.i) as usize;
        if self.spec.establishments.is_empty() {
            (0, Some(0))
        } else {
            (left, Some(left))
        }
    }

    fn next(&mut self) -> Option<StoredObservation> {
        if self.i >= self.spec.observations || self.spec.establishments.is_empty() {
            return None;
        }
        let i = self.i;
        self.i += 1;
        let main_t = self.cursor as i64;
        // A burst row due first (a monitor confirming an outage, then the reply that ends it).
        if let Some(std::cmp::Reverse((t, _, e, fail))) = self.pending.peek().copied()
            && t <= main_t
        {
            self.pending.pop();
            return Some(self.burst_row(i, t, e, fail));
        }
        self.j += 1;
        // Rows left, this one included (> 0: checked above).
        let left = (self.spec.observations - i) as f64;
        self.cursor += (self.spec.to_ms as f64 - self.cursor) / left;
        let t = main_t;
        let e = (i % self.spec.establishments.len() as u64) as usize;
        let est = self.spec.establishments[e];
        // Start new incidents now and then: per observation, tiny probabilities.
        let per_obs_scale = self.step_ms * self.spec.establishments.len() as f64 / 60_000.0;
        if t > self.outage_until[e] && self.rng.gen_bool((0.00004 * per_obs_scale).clamp(0.0, 1.0))
        {
            let until = t + self.rng.gen_range(60_000..5_400_000);
            self.outage_until[e] = until;
            // Five unanswered requests 5 s apart confirm it; a reply after it ends closes it.
            for k in 0..5 {
                self.pending.push(std::cmp::Reverse((
                    t + 1 + k * 5_000,
                    i * 8 + k as u64,
                    e,
                    true,
                )));
            }
            self.pending
                .push(std::cmp::Reverse((until + 1, i * 8 + 6, e, false)));
        }
        if t > self.slow_until[e] && self.rng.gen_bool((0.0001 * per_obs_scale).clamp(0.0, 1.0)) {
            self.slow_until[e] = t + self.rng.gen_range(600_000..7_200_000);
        }
        if t > self.errors_until[e] && self.rng.gen_bool((0.00008 * per_obs_scale).clamp(0.0, 1.0))
        {
            self.errors_until[e] = t + self.rng.gen_range(30_000..900_000);
        }
        let roll: f64 = self.rng.r#gen();
        let (interface, service) = if roll < 0.70 {
            (Interface::Api, Service::CBPII)
        } else if roll < 0.80 {
            (Interface::Api, Service::TOKEN)
        } else if roll < 0.985 {
            (Interface::PsuWeb, Service::PSU_LOGIN)
        } else {
            (Interface::Fallback, Service::FALLBACK)
        };
        let down = t < self.outage_until[e];
        let slow = if t < self.slow_until[e] { 4.0 } else { 1.0 };
        let median = match service {
            Service::CBPII => 120.0,
            Service::TOKEN => 80.0,
            Service::PSU_LOGIN => 400.0,
            _ => 150.0,
        };
        let (status, latency, code) = if down && interface != Interface::PsuWeb {
            (None, None, None)
        } else if interface == Interface::Fallback {
            (Some(302), Some(self.lognormal(median, 0.3)), None)
        } else if t < self.errors_until[e] && interface == Interface::Api && self.rng.gen_bool(0.7)
        {
            (
                Some(503),
                Some(self.lognormal(40.0, 0.3)),
                Some("INTS".to_string()),
            )
        } else if self.rng.gen_bool(0.02) {
            (
                Some(400),
                Some(self.lognormal(median * 0.6, 0.3)),
                Some("AC01".to_string()),
            )
        } else {
            (Some(200), Some(self.lognormal(median * slow, 0.35)), None)
        };
        let tpp = self.tpps[self.rng.gen_range(0..self.tpps.len())].clone();
        let obs = Observation {
            received_at_ms: t,
            establishment: est,
            interface,
            service: Service::new(service).expect("valid service"),
            source: Source::Log,
            tpp: Some(tpp.into()),
            status,
            latency_ms: latency.map(|l| (l * 1000.0).round() / 1000.0),
            error_code: code.clone().map(Into::into),
            request_id: compact_str::format_compact!(
                "syn-{:016x}",
                i ^ self.spec.seed.rotate_left(17)
            ),
            outcome: Outcome::from_reply(status, code.as_deref()),
            vantage: Vantage::gateway(),
        };
        let mut s = StoredObservation::from(obs);
        s.synthetic = true;
        Some(s)
    }
}

impl Synth {
    fn burst_row(&mut self, i: u64, t: i64, e: usize, fail: bool) -> StoredObservation {
        let latency = (!fail).then(|| self.lognormal(120.0, 0.35));
        let status = (!fail).then_some(200);
        let obs = Observation {
            received_at_ms: t,
            establishment: self.spec.establishments[e],
            interface: Interface::Api,
            service: Service::new(Service::CBPII).expect("valid service"),
            source: Source::Probe,
            tpp: Some("PSDFR-ACPR-12345".into()),
            status,
            latency_ms: latency.map(|l| (l * 1000.0).round() / 1000.0),
            error_code: None,
            request_id: compact_str::format_compact!(
                "syn-{:016x}",
                i ^ self.spec.seed.rotate_left(17)
            ),
            outcome: Outcome::from_reply(status, None),
            vantage: Vantage::new(SYNTH_MONITOR).expect("valid"),
        };
        let mut s = StoredObservation::from(obs);
        s.synthetic = true;
        s
    }
}

// Exactly `observations` rows: collecting them allocates once.
impl ExactSizeIterator for Synth {}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(seed: u64) -> SynthSpec {
        SynthSpec {
            observations: 20_000,
            from_ms: 1_719_784_800_000, // 2024-07-01T00:00+02:00
            to_ms: 1_719_784_800_000 + 7 * 86_400_000,
            establishments: vec!["13807".parse().unwrap(), "10807".parse().unwrap()],
            seed,
        }
    }

    #[test]
    fn same_seed_same_rows_and_a_sensible_shape() {
        let a: Vec<_> = Synth::new(spec(7)).collect();
        let b: Vec<_> = Synth::new(spec(7)).collect();
        let c: Vec<_> = Synth::new(spec(8)).take(100).collect();
        assert_eq!(a, b);
        assert_ne!(a[..100], c[..]);
        assert_eq!(a.len(), 20_000);
        assert!(
            a.windows(2)
                .all(|w| w[0].obs.received_at_ms <= w[1].obs.received_at_ms)
        );
        assert!(a.iter().all(|o| o.synthetic));
        // About 70 % funds confirmations, mostly answered 200.
        let cbpii = a
            .iter()
            .filter(|o| o.obs.service.as_str() == "cbpii")
            .count();
        assert!((13_000..15_000).contains(&cbpii), "{cbpii}");
        let ok = a.iter().filter(|o| o.obs.outcome == Outcome::Ok).count();
        assert!(ok > 15_000, "{ok}");
        // Request ids are unique (imports are keyed on them).
        let ids: std::collections::BTreeSet<_> = a.iter().map(|o| &o.obs.request_id).collect();
        assert_eq!(ids.len(), a.len());
    }

    #[test]
    fn a_small_count_still_spans_the_whole_period() {
        // 100 rows over a quarter: outage bursts used to eat the count, ending in July.
        let from_ms = 1_719_784_800_000; // 2024-07-01T00:00+02:00
        let to_ms = 1_727_733_600_000; // 2024-10-01T00:00+02:00
        let rows: Vec<_> = Synth::new(SynthSpec {
            observations: 100,
            from_ms,
            to_ms,
            establishments: vec!["13807".parse().unwrap()],
            seed: 42,
        })
        .collect();
        assert_eq!(rows.len(), 100);
        let last = rows.last().unwrap().obs.received_at_ms;
        // The last row within the last tenth of the period.
        assert!(last > to_ms - (to_ms - from_ms) / 10, "{last}");
        assert!(last < to_ms);
    }
}

//! The episodes of a short window of time, as the counter finds them (sections 1, 3 and 10):
//! what the status page shows as the state now, recomputed every few seconds over the last
//! minutes. No days, no weeks, no figures: per series its coverage, its episodes and, with
//! several probing vantages, its vantage faults.
//!
//! The same parts as [`super::stream::Counter`], in the same order: one request counted once
//! ([`Dedupe`], with the log records a probe stands for kept for the other vantages), each
//! vantage's own series and coverage, the episode rule, and the vantages combined by policy
//! `vantage_quorum` ([`SeriesVantages`], [`super::vantage::combine`]). A series probed from one
//! vantage takes the single-vantage path, as in the counter.

use std::collections::BTreeMap;

use super::coverage::{self, ProbeErrors, SeriesCoverage};
use super::dedupe::Dedupe;
use super::intervals::Span;
use super::vantage::SeriesVantages;
use super::{Episode, Settings, VantageFault, episodes, live};
use crate::domain::{CoverageSpan, EstablishmentCode, Interface, Observation};

/// One series over the window.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WindowSeries {
    /// Time some vantage covered it.
    pub coverage: SeriesCoverage,
    /// Its unavailability episodes (section 10: where the quorum held), in start order.
    pub episodes: Vec<Episode>,
    /// Episode time of a vantage while the interface was not down; empty with one vantage.
    pub faults: Vec<VantageFault>,
}

/// What one series holds while the window's rows pass.
#[derive(Default)]
struct Acc {
    errors: ProbeErrors,
    /// One vantage: every row of the series. Several: the episode rule's input, as the
    /// counter keeps it (the shadowed log records in it marked by [`SeriesVantages`]).
    rows: Vec<Observation>,
    vantages: Option<Box<SeriesVantages>>,
}

/// The episodes of every series in `range` (`[from, to]`, instants in ms), from `observations`
/// (any order; those outside `range` ignored) and the store's `coverage` of that range. Series
/// listed in `extra` are given even without a row (their coverage alone).
pub fn episodes(
    observations: &[Observation],
    coverage: &[CoverageSpan],
    settings: &Settings,
    range: Span,
    extra: impl IntoIterator<Item = (EstablishmentCode, Interface)>,
) -> BTreeMap<(EstablishmentCode, Interface), WindowSeries> {
    let mut sorted: Vec<&Observation> = observations
        .iter()
        .filter(|o| o.received_at_ms >= range.0 && o.received_at_ms <= range.1)
        .collect();
    sorted.sort_unstable_by(|a, b| {
        a.received_at_ms
            .cmp(&b.received_at_ms)
            .then_with(|| a.request_id.cmp(&b.request_id))
    });
    let mut series: BTreeMap<(EstablishmentCode, Interface), Acc> = BTreeMap::new();
    let new = |est: &EstablishmentCode, iface: Interface| Acc {
        vantages: SeriesVantages::of(coverage, est, iface, range),
        ..Acc::default()
    };
    // Several vantages: a log record a probe stands for still counts for the others.
    let mut dedupe = if super::vantage::several(coverage) {
        Dedupe::with_shadows()
    } else {
        Dedupe::default()
    };
    let mut take = |o: &Observation, shadowed_by: Option<&crate::domain::Vantage>| {
        let s = series
            .entry((o.establishment, o.interface))
            .or_insert_with(|| new(&o.establishment, o.interface));
        let Some(v) = &mut s.vantages else {
            // One vantage: a log record a probe stands for is that probe (none come here).
            if shadowed_by.is_none() {
                s.errors.push(o);
                s.rows.push(o.clone());
            }
            return;
        };
        let counts = live::counts(settings, o);
        let failure = o.outcome.is_failure(settings.aspsp_error_is_failure);
        match shadowed_by {
            None => {
                v.push_errors(o);
                if counts && v.keep(o, failure) {
                    s.rows.push(o.clone());
                }
            }
            Some(by) => {
                if counts && v.keep_shadowed(o, by, failure, s.rows.len()) {
                    s.rows.push(o.clone());
                }
            }
        }
    };
    let mut out = |o: &Observation, h: super::dedupe::Handed<'_, &Observation>| {
        take(o, h.shadowed_by);
    };
    for o in sorted {
        dedupe.push(o, &mut out);
    }
    dedupe.finish(&mut out);
    for (est, iface) in extra {
        series
            .entry((est, iface))
            .or_insert_with(|| new(&est, iface));
    }
    series
        .into_iter()
        .map(|((est, iface), s)| {
            let w = match s.vantages {
                None => {
                    let cov = coverage::with_errors(
                        coverage,
                        &est,
                        iface,
                        s.errors.finish(range.1),
                        range,
                    );
                    let rows: Vec<&Observation> = s.rows.iter().collect();
                    WindowSeries {
                        episodes: episodes::detect(&rows, settings, &cov),
                        coverage: cov,
                        faults: Vec::new(),
                    }
                }
                Some(v) => {
                    let c = v.finish(&s.rows, coverage, (&est, iface), settings, range);
                    WindowSeries {
                        episodes: c.episodes,
                        coverage: c.coverage,
                        faults: c.faults,
                    }
                }
            };
            ((est, iface), w)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    //! The window against the counter on the same rows: the same episodes, the same faults.

    use super::*;
    use crate::domain::{CoverageKind, Outcome, Service, Source, Vantage};
    use crate::engine::{EngineInput, Period, compute};

    fn ms(rfc3339: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis()
    }

    fn ob(source: Source, v: &str, at: &str, rid: &str, status: Option<u16>) -> Observation {
        Observation {
            received_at_ms: ms(at),
            establishment: "13807".parse().unwrap(),
            interface: Interface::Api,
            service: Service::new("cbpii").unwrap(),
            source,
            tpp: None,
            status,
            latency_ms: status.map(|_| 0.0),
            error_code: None,
            request_id: rid.into(),
            outcome: Outcome::from_reply(status, None),
            vantage: Vantage::new(v).unwrap(),
        }
    }

    fn run(v: &str) -> CoverageSpan {
        CoverageSpan {
            kind: CoverageKind::Monitor,
            establishment: Some("13807".parse().unwrap()),
            interface: Some(Interface::Api),
            start_ms: ms("2024-06-30T22:00:00Z"),
            end_ms: ms("2024-07-01T22:00:00Z"),
            ongoing: false,
            vantage: Some(Vantage::new(v).unwrap()),
        }
    }

    #[test]
    fn the_window_finds_the_counter_s_episodes_and_faults() {
        // a fails 10:00:00 to :04 and next answers at 10:05:00; b fails 10:00:10 to :14 and
        // answers at 10:01:00 (0 ms), a request the gateway logs 50 ms later: b's series holds
        // its probe, a's the gateway's record, so a's episode ends at 10:01:00.050. Majority
        // of two is two: down [10:00:10, 10:01:00); a alone [10:00:00, 10:00:10) and
        // [10:01:00, 10:01:00.050): faults.
        let mut obs = Vec::new();
        for (v, from) in [("a", 0), ("b", 10)] {
            for i in 0..5 {
                let at = format!("2024-07-01T10:00:{:02}Z", from + i);
                obs.push(ob(Source::Probe, v, &at, &format!("{v}{i}"), None));
            }
        }
        obs.push(ob(
            Source::Probe,
            "b",
            "2024-07-01T10:01:00Z",
            "b-r",
            Some(200),
        ));
        obs.push(ob(
            Source::Log,
            "gateway",
            "2024-07-01T10:01:00.050Z",
            "b-r",
            Some(200),
        ));
        obs.push(ob(
            Source::Probe,
            "a",
            "2024-07-01T10:05:00Z",
            "a-r",
            Some(200),
        ));
        let coverage = vec![run("a"), run("b")];
        let settings = Settings::default();
        let k = compute(
            &EngineInput {
                observations: obs.clone(),
                coverage: coverage.clone(),
            },
            Period {
                from: "2024-07-01".parse().unwrap(),
                to: "2024-07-02".parse().unwrap(),
            },
            &settings,
        )
        .unwrap();
        let range = (ms("2024-07-01T09:00:00Z"), ms("2024-07-01T11:00:00Z"));
        let w = episodes(&obs, &coverage, &settings, range, []);
        let s = &w[&("13807".parse().unwrap(), Interface::Api)];
        let spans: Vec<(i64, i64)> = s.episodes.iter().map(|e| (e.start_ms, e.end_ms)).collect();
        assert_eq!(
            spans,
            [(ms("2024-07-01T10:00:10Z"), ms("2024-07-01T10:01:00Z"))]
        );
        assert_eq!(s.episodes[0].id(), "13807-api-20240701T100010.000Z");
        let faults: Vec<(&str, i64, i64)> = s
            .faults
            .iter()
            .map(|f| (f.vantage.as_str(), f.start_ms, f.end_ms))
            .collect();
        assert_eq!(
            faults,
            [
                ("a", ms("2024-07-01T10:00:00Z"), ms("2024-07-01T10:00:10Z")),
                (
                    "a",
                    ms("2024-07-01T10:01:00Z"),
                    ms("2024-07-01T10:01:00.050Z")
                ),
            ]
        );
        // Exactly the counter's, field by field (but the probes set aside: the window counts
        // no figure, so it sets none aside).
        assert_eq!(s.episodes, k.episodes);
        let counted: Vec<VantageFault> = k
            .vantage_faults
            .iter()
            .map(|f| VantageFault {
                set_aside: 0,
                ..f.clone()
            })
            .collect();
        assert_eq!(s.faults, counted);
        // The time some vantage covered: the window, clipped.
        assert_eq!(s.coverage.spans, [range]);
    }
}

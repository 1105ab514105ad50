//! The counting rules, each with figures worked by hand in the comments.

use chrono::{DateTime, NaiveDate, NaiveTime, Weekday};

use super::live::{EpisodeTracker, LiveEvent};
use super::*;
use crate::domain::{CoverageKind, CoverageSpan, Interface, Observation, Outcome, Service, Source};

fn ms(rfc3339: &str) -> i64 {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// An observation of the dedicated interface of 13807 (cbpii), from a probe.
fn ob(at: &str, rid: &str, status: Option<u16>, latency: f64) -> Observation {
    obx("13807", Interface::Api, at, rid, status, latency)
}

fn obx(
    est: &str,
    iface: Interface,
    at: &str,
    rid: &str,
    status: Option<u16>,
    latency: f64,
) -> Observation {
    Observation {
        received_at_ms: ms(at),
        establishment: est.parse().unwrap(),
        interface: iface,
        service: Service::new("cbpii").unwrap(),
        source: Source::Probe,
        tpp: Some("PSDFR-ACPR-12345".into()),
        status,
        latency_ms: status.map(|_| latency),
        error_code: None,
        request_id: rid.into(),
        outcome: Outcome::from_reply(status, None),
        vantage: crate::domain::Vantage::imported(Source::Probe),
    }
}

fn run(obs: Vec<Observation>, from: &str, to: &str) -> Kpis {
    run_with(obs, None, from, to, &Settings::default())
}

/// A monitor that covers every series all the time and still runs.
fn always() -> Vec<CoverageSpan> {
    vec![CoverageSpan {
        kind: CoverageKind::Monitor,
        establishment: None,
        interface: None,
        start_ms: 0,
        end_ms: i64::MAX / 2,
        ongoing: true,
        vantage: None,
    }]
}

/// A monitor run of every series from `a` to `b` (stopped, or `ongoing`).
fn monitor(a: &str, b: &str, ongoing: bool) -> CoverageSpan {
    CoverageSpan {
        kind: CoverageKind::Monitor,
        establishment: None,
        interface: None,
        start_ms: ms(a),
        end_ms: ms(b),
        ongoing,
        vantage: None,
    }
}

/// `coverage` `None`: covered all the time ([`always`]).
fn run_with(
    obs: Vec<Observation>,
    coverage: Option<Vec<CoverageSpan>>,
    from: &str,
    to: &str,
    s: &Settings,
) -> Kpis {
    compute(
        &EngineInput {
            observations: obs,
            coverage: coverage.unwrap_or_else(always),
        },
        Period {
            from: date(from),
            to: date(to),
        },
        s,
    )
    .unwrap()
}

fn day<'a>(k: &'a Kpis, d: &str, est: &str, iface: Interface) -> &'a DayFigures {
    k.days
        .iter()
        .find(|r| r.date == date(d) && r.establishment.as_str() == est && r.interface == iface)
        .unwrap()
}

#[test]
fn fifth_failure_at_exactly_30_000_s_opens_an_episode() {
    // Failures at 10:00:00.000, :07.500, :15.000, :22.500 and 10:00:30.000 UTC: the fifth comes
    // exactly 30.000 s after the first, which qualifies ("at most 30 seconds").
    // The reply at 10:00:40.000 takes 250 ms: the episode ends at 10:00:40.250.
    let obs = vec![
        ob("2024-07-01T10:00:00.000Z", "r1", None, 0.0),
        ob("2024-07-01T10:00:07.500Z", "r2", None, 0.0),
        ob("2024-07-01T10:00:15.000Z", "r3", None, 0.0),
        ob("2024-07-01T10:00:22.500Z", "r4", None, 0.0),
        ob("2024-07-01T10:00:30.000Z", "r5", None, 0.0),
        ob("2024-07-01T10:00:40.000Z", "r6", Some(200), 250.0),
    ];
    let k = run(obs, "2024-07-01", "2024-07-02");
    assert_eq!(k.episodes.len(), 1);
    let e = &k.episodes[0];
    assert_eq!(e.start_ms, ms("2024-07-01T10:00:00.000Z"));
    assert_eq!(e.end_ms, ms("2024-07-01T10:00:40.250Z"));
    assert_eq!(e.duration_s(), 40.25);
    assert_eq!(e.request_ids, ["r1", "r2", "r3", "r4", "r5"]);
    assert_eq!(e.ended_by.as_deref(), Some("r6"));
    assert!(!e.open);
    assert_eq!(e.id(), "13807-api-20240701T100000.000Z");
    // 40.25 s of 86 400: uptime 100 − 40.25/86 400 × 100 = 99.953414351851...
    let d = day(&k, "2024-07-01", "13807", Interface::Api);
    assert_eq!(d.seconds_in_day, 86_400);
    assert_eq!(d.downtime_s, 40.25);
    assert_eq!(d.uptime_pct, Some(100.0 - 40.25 / 86_400.0 * 100.0));
    assert_eq!(d.requests, 6);
    assert_eq!(d.no_reply, 5);
}

#[test]
fn fifth_failure_at_30_001_s_does_not_but_a_later_five_does() {
    // f1 10:00:00.000, f2 :10.000, f3 :20.000, f4 :25.000, f5 :30.001: f5 − f1 = 30.001 s > 30 s,
    // no episode yet. f6 at :36.000: f2..f6 spans 26 s, so the earliest qualifying five are
    // f2..f6 and downtime starts at f2 = 10:00:10. A reply at 10:01:00 (latency 0) ends it: 50 s.
    let obs = vec![
        ob("2024-07-01T10:00:00.000Z", "f1", None, 0.0),
        ob("2024-07-01T10:00:10.000Z", "f2", None, 0.0),
        ob("2024-07-01T10:00:20.000Z", "f3", None, 0.0),
        ob("2024-07-01T10:00:25.000Z", "f4", None, 0.0),
        ob("2024-07-01T10:00:30.001Z", "f5", None, 0.0),
    ];
    let k = run(obs.clone(), "2024-07-01", "2024-07-02");
    assert!(k.episodes.is_empty(), "30.001 s is over the window");
    assert_eq!(
        day(&k, "2024-07-01", "13807", Interface::Api).downtime_s,
        0.0
    );

    let mut more = obs;
    more.push(ob("2024-07-01T10:00:36.000Z", "f6", None, 0.0));
    more.push(ob("2024-07-01T10:01:00.000Z", "ok", Some(200), 0.0));
    let k = run(more, "2024-07-01", "2024-07-02");
    assert_eq!(k.episodes.len(), 1);
    assert_eq!(k.episodes[0].start_ms, ms("2024-07-01T10:00:10.000Z"));
    assert_eq!(k.episodes[0].request_ids, ["f2", "f3", "f4", "f5", "f6"]);
    assert_eq!(
        day(&k, "2024-07-01", "13807", Interface::Api).downtime_s,
        50.0
    );
}

#[test]
fn a_reply_of_any_other_outcome_breaks_the_run() {
    // Four failures, a 400 AC01 (rejected: a reply), four failures: never five in a row.
    let mut obs: Vec<_> = (0..4)
        .map(|i| {
            ob(
                &format!("2024-07-01T10:00:0{i}.000Z"),
                &format!("a{i}"),
                None,
                0.0,
            )
        })
        .collect();
    obs.push(ob("2024-07-01T10:00:04.000Z", "rej", Some(400), 20.0));
    obs.extend((5..9).map(|i| {
        ob(
            &format!("2024-07-01T10:00:0{i}.000Z"),
            &format!("b{i}"),
            None,
            0.0,
        )
    }));
    let k = run(obs, "2024-07-01", "2024-07-02");
    assert!(k.episodes.is_empty());
}

#[test]
fn bank_errors_are_failures_by_policy() {
    // Five 503s within 4 s: down by default (aspsp_error counts), not when the policy is off.
    let obs: Vec<_> = (0..5)
        .map(|i| {
            ob(
                &format!("2024-07-01T10:00:0{i}.000Z"),
                &format!("e{i}"),
                Some(503),
                10.0,
            )
        })
        .collect();
    assert_eq!(
        run(obs.clone(), "2024-07-01", "2024-07-02").episodes.len(),
        1
    );
    let s = Settings {
        aspsp_error_is_failure: false,
        ..Settings::default()
    };
    assert!(
        run_with(obs, None, "2024-07-01", "2024-07-02", &s)
            .episodes
            .is_empty()
    );
}

#[test]
fn a_probe_error_is_a_coverage_gap_that_cuts_a_run() {
    // f f f f P f at 10:00:00..05: the monitor's own fault (P, at :04) means it does not see the
    // bank from :04 to the next probe of another outcome (:05): a 1 s coverage gap. Failures
    // after a gap need their own five (revision 2, sections 1 and 3): 4 + 1, no episode.
    let mut obs: Vec<_> = (0..4)
        .map(|i| {
            ob(
                &format!("2024-07-01T10:00:0{i}.000Z"),
                &format!("f{i}"),
                None,
                0.0,
            )
        })
        .collect();
    let mut p = ob("2024-07-01T10:00:04.000Z", "p", None, 0.0);
    p.outcome = Outcome::ProbeError;
    obs.push(p);
    obs.push(ob("2024-07-01T10:00:05.000Z", "f5", None, 0.0));
    let k = run(obs, "2024-07-01", "2024-07-02");
    assert_eq!(k.episodes.len(), 0);
    let d = day(&k, "2024-07-01", "13807", Interface::Api);
    // A probe_error is not a request: 5 requests, not 6; and the day is covered 86 400 − 1 s.
    assert_eq!(d.requests, 5);
    assert_eq!(d.covered_s, 86_399.0);
    assert_eq!(d.unmonitored_s, 1.0);
    assert_eq!(d.uptime_pct, Some(100.0));
}

#[test]
fn an_episode_across_midnight_is_split_between_the_days() {
    // Paris is UTC+2 in July: local midnight of 2 July is 2024-07-01T22:00:00Z.
    // Down from 21:59:50Z to the reply completing at 22:00:20Z: 10 s on 1 July, 20 s on 2 July.
    let obs = vec![
        ob("2024-07-01T21:59:50.000Z", "f1", None, 0.0),
        ob("2024-07-01T21:59:52.000Z", "f2", None, 0.0),
        ob("2024-07-01T21:59:54.000Z", "f3", None, 0.0),
        ob("2024-07-01T21:59:56.000Z", "f4", None, 0.0),
        ob("2024-07-01T21:59:58.000Z", "f5", None, 0.0),
        ob("2024-07-01T22:00:19.900Z", "ok", Some(200), 100.0),
    ];
    let k = run(obs, "2024-07-01", "2024-07-03");
    assert_eq!(
        day(&k, "2024-07-01", "13807", Interface::Api).downtime_s,
        10.0
    );
    assert_eq!(
        day(&k, "2024-07-02", "13807", Interface::Api).downtime_s,
        20.0
    );
    // The five failures fall on 1 July local, the reply on 2 July local.
    assert_eq!(day(&k, "2024-07-01", "13807", Interface::Api).requests, 5);
    assert_eq!(day(&k, "2024-07-02", "13807", Interface::Api).requests, 1);
    assert_eq!(k.episodes.len(), 1);
}

#[test]
fn spring_forward_day_has_82_800_seconds() {
    // 2024-03-31 in Paris: 00:00 CET (2024-03-30T23:00Z) to 00:00 CEST (2024-03-31T22:00Z) = 23 h.
    // One hour down (five failures at 10:00:00..04Z, reply completing at 11:00:00Z):
    // uptime = 100 − 3 600/82 800 × 100 = 95.652173913...
    let mut obs: Vec<_> = (0..5)
        .map(|i| {
            ob(
                &format!("2024-03-31T10:00:0{i}.000Z"),
                &format!("f{i}"),
                None,
                0.0,
            )
        })
        .collect();
    obs.push(ob("2024-03-31T11:00:00.000Z", "ok", Some(200), 0.0));
    obs.push(ob("2024-03-30T12:00:00.000Z", "x", Some(200), 0.0));
    let k = run(obs, "2024-03-30", "2024-04-01");
    let d30 = day(&k, "2024-03-30", "13807", Interface::Api);
    let d31 = day(&k, "2024-03-31", "13807", Interface::Api);
    assert_eq!(d30.seconds_in_day, 86_400);
    assert_eq!(d31.seconds_in_day, 82_800);
    assert_eq!(d31.downtime_s, 3_600.0);
    assert_eq!(d31.uptime_pct, Some(100.0 - 3_600.0 / 82_800.0 * 100.0));
}

#[test]
fn fall_back_day_has_90_000_seconds_and_a_night_episode_splits_right() {
    // 2024-10-27 in Paris: 00:00 CEST (2024-10-26T22:00Z) to 00:00 CET (2024-10-27T23:00Z) = 25 h.
    // Down from 2024-10-27T22:30Z (23:30 CET) to 2024-10-28T00:30Z (01:30 CET on 28 Oct):
    // 30 min on the 27th (to 23:00Z), 90 min on the 28th.
    let mut obs: Vec<_> = (0..5)
        .map(|i| {
            ob(
                &format!("2024-10-27T22:30:0{i}.000Z"),
                &format!("f{i}"),
                None,
                0.0,
            )
        })
        .collect();
    obs.push(ob("2024-10-28T00:30:00.000Z", "ok", Some(200), 0.0));
    let k = run(obs, "2024-10-27", "2024-10-29");
    let d27 = day(&k, "2024-10-27", "13807", Interface::Api);
    let d28 = day(&k, "2024-10-28", "13807", Interface::Api);
    assert_eq!(d27.seconds_in_day, 90_000);
    assert_eq!(d28.seconds_in_day, 86_400);
    assert_eq!(d27.downtime_s, 1_800.0);
    assert_eq!(d28.downtime_s, 5_400.0);
    assert_eq!(d27.uptime_pct, Some(100.0 - 1_800.0 / 90_000.0 * 100.0));
}

#[test]
fn ties_are_ordered_by_request_id_whatever_the_input_order() {
    // Four failures, then at the same millisecond a reply and a failure. Sorted by request id:
    // with the reply "a" before the failure "b", the run is broken (no episode); with the
    // failure "a" before the reply "b", five failures come first (episode).
    let base: Vec<_> = (0..4)
        .map(|i| {
            ob(
                &format!("2024-07-01T10:00:0{i}.000Z"),
                &format!("f{i}"),
                None,
                0.0,
            )
        })
        .collect();
    let mut broken = base.clone();
    broken.push(ob("2024-07-01T10:00:05.000Z", "b", None, 0.0));
    broken.push(ob("2024-07-01T10:00:05.000Z", "a", Some(200), 0.0));
    broken.reverse(); // input order is irrelevant
    assert!(run(broken, "2024-07-01", "2024-07-02").episodes.is_empty());

    let mut down = base;
    down.push(ob("2024-07-01T10:00:05.000Z", "b", Some(200), 0.0));
    down.push(ob("2024-07-01T10:00:05.000Z", "a", None, 0.0));
    down.reverse();
    let k = run(down, "2024-07-01", "2024-07-02");
    assert_eq!(k.episodes.len(), 1);
    // Ends at the completion of "b" (latency 0): 10:00:05, 5 s after the start.
    assert_eq!(k.episodes[0].duration_s(), 5.0);
}

#[test]
fn failures_from_several_tpps_count_together() {
    let obs: Vec<_> = (0..5)
        .map(|i| {
            let mut o = ob(
                &format!("2024-07-01T10:00:0{i}.000Z"),
                &format!("f{i}"),
                None,
                0.0,
            );
            o.tpp = Some(format!("PSDFR-ACPR-1000{i}").into());
            o.source = Source::Log;
            o
        })
        .collect();
    assert_eq!(run(obs, "2024-07-01", "2024-07-02").episodes.len(), 1);
}

#[test]
fn establishments_and_interfaces_are_counted_apart() {
    // 13807 fails five times while 10807 answers in between: only 13807 is down. Five failures
    // of 13807's fallback do not make its api down either.
    let mut obs = Vec::new();
    for i in 0..5 {
        obs.push(obx(
            "13807",
            Interface::Api,
            &format!("2024-07-01T10:00:0{i}.000Z"),
            &format!("a{i}"),
            None,
            0.0,
        ));
        obs.push(obx(
            "10807",
            Interface::Api,
            &format!("2024-07-01T10:00:0{i}.500Z"),
            &format!("b{i}"),
            Some(200),
            5.0,
        ));
        obs.push(obx(
            "13807",
            Interface::Fallback,
            &format!("2024-07-01T11:00:0{i}.000Z"),
            &format!("c{i}"),
            None,
            0.0,
        ));
    }
    let k = run(obs, "2024-07-01", "2024-07-02");
    let keys: Vec<_> = k
        .episodes
        .iter()
        .map(|e| (e.establishment.as_str(), e.interface))
        .collect();
    assert_eq!(
        keys,
        [("13807", Interface::Api), ("13807", Interface::Fallback)]
    );
    assert_eq!(
        day(&k, "2024-07-01", "10807", Interface::Api).downtime_s,
        0.0
    );
    // One row per day for each series present: 10807/api, 13807/api, 13807/fallback.
    assert_eq!(k.days.len(), 3);
}

#[test]
fn an_open_episode_ends_at_the_period_end_or_the_last_heartbeat() {
    // Down from 2024-07-01T20:00:00Z, never recovered. Period 1 July local ends at 22:00Z:
    // 2 h down (7 200 s), open.
    let obs: Vec<_> = (0..5)
        .map(|i| {
            ob(
                &format!("2024-07-01T20:00:0{i}.000Z"),
                &format!("f{i}"),
                None,
                0.0,
            )
        })
        .collect();
    let k = run(obs.clone(), "2024-07-01", "2024-07-02");
    assert_eq!(k.episodes.len(), 1);
    assert!(k.episodes[0].open);
    assert_eq!(k.episodes[0].end_ms, ms("2024-07-01T22:00:00.000Z"));
    assert_eq!(
        day(&k, "2024-07-01", "13807", Interface::Api).downtime_s,
        7_200.0
    );

    // The monitor ran from local midnight (2024-06-30T22:00Z) to 20:10Z: the episode is cut at
    // its last heartbeat (600 s after the start), and the rest of the day, 20:10Z to 22:00Z =
    // 6 600 s, is unmonitored — neither uptime nor downtime.
    let mon = vec![monitor(
        "2024-06-30T22:00:00Z",
        "2024-07-01T20:10:00Z",
        false,
    )];
    let k = run_with(
        obs,
        Some(mon),
        "2024-07-01",
        "2024-07-02",
        &Settings::default(),
    );
    assert_eq!(k.episodes[0].end_ms, ms("2024-07-01T20:10:00.000Z"));
    // The monitor stopped there (methodology section 3: an open episode is cut at its last
    // heartbeat): nothing is known of what followed.
    assert!(k.episodes[0].cut && !k.episodes[0].open);
    let d = day(&k, "2024-07-01", "13807", Interface::Api);
    assert_eq!(d.downtime_s, 600.0);
    assert_eq!(d.unmonitored_s, 6_600.0);
    // Covered 22:00Z..20:10Z = 79 800 s: uptime 100 − 600 / 79 800 × 100.
    assert_eq!(d.covered_s, 79_800.0);
    assert_eq!(d.uptime_pct, Some(100.0 - 600.0 / 79_800.0 * 100.0));
}

#[test]
fn planned_maintenance_is_downtime_reported_apart() {
    // Sunday 2024-07-07, window 02:00–06:00 Paris (00:00Z–04:00Z). Down from 23:00Z on the 6th
    // (01:00 local on the 7th) to 01:00Z (03:00 local): 7 200 s on the 7th, of which
    // 01:00 local..03:00 local ∩ 02:00..06:00 = 1 h planned.
    let mut obs: Vec<_> = (0..5)
        .map(|i| {
            ob(
                &format!("2024-07-06T23:00:0{i}.000Z"),
                &format!("f{i}"),
                None,
                0.0,
            )
        })
        .collect();
    obs.push(ob("2024-07-07T01:00:00.000Z", "ok", Some(200), 0.0));
    let s = Settings {
        maintenance: vec![MaintenanceWindow {
            weekday: Weekday::Sun,
            start: NaiveTime::from_hms_opt(2, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(6, 0, 0).unwrap(),
            establishments: vec![],
        }],
        ..Settings::default()
    };
    let k = run_with(obs, None, "2024-07-07", "2024-07-08", &s);
    let d = day(&k, "2024-07-07", "13807", Interface::Api);
    assert_eq!(d.downtime_s, 7_200.0);
    assert_eq!(d.planned_downtime_s, 3_600.0);
    assert_eq!(k.episodes[0].planned_s, 3_600.0);
}

#[test]
fn requests_errors_and_response_times() {
    // Replies 100, 200, 300, 400 ms (200 OK), one 503 INTS at 1 000 ms, one no reply:
    // requests 6, no_reply 1, bank errors 1 → error rate 1/6 × 100 = 16.666...%.
    // Only `ok` replies are timed (policy timed_outcomes): 100, 200, 300, 400 → mean
    // 1 000/4 = 250 ms; nearest rank p50 = ⌈2⌉ = 2nd = 200; p95 = ⌈3.8⌉ = 4th = 400; max 400.
    let obs = vec![
        ob("2024-07-01T10:00:00Z", "1", Some(200), 100.0),
        ob("2024-07-01T10:01:00Z", "2", Some(200), 200.0),
        ob("2024-07-01T10:02:00Z", "3", Some(200), 300.0),
        ob("2024-07-01T10:03:00Z", "4", Some(200), 400.0),
        ob("2024-07-01T10:04:00Z", "5", Some(503), 1_000.0),
        ob("2024-07-01T10:05:00Z", "6", None, 0.0),
    ];
    let k = run(obs, "2024-07-01", "2024-07-02");
    let d = day(&k, "2024-07-01", "13807", Interface::Api);
    assert_eq!((d.requests, d.no_reply, d.bank_errors), (6, 1, 1));
    assert_eq!(d.error_rate_pct, Some(1.0 / 6.0 * 100.0));
    let l = d.latency[&Service::new("cbpii").unwrap()];
    assert_eq!(
        (l.replies, l.avg_ms, l.p50_ms, l.p95_ms, l.max_ms),
        (4, 250.0, 200.0, 400.0, 400.0)
    );
}

#[test]
fn period_response_times_pool_every_reply_of_the_period() {
    // Day 1 (1 July, Paris): replies 100 and 300 ms. Day 2: one reply of 800 ms, one no reply,
    // and a reply on 3 July, outside the period [1 July, 3 July).
    // Daily means: 200 and 800; their mean would be 500. Pooled over the period: the replies
    // 100, 300, 800 → mean 1 200/3 = 400 ms; nearest rank p50 = ⌈1.5⌉ = 2nd = 300,
    // p95 = ⌈2.85⌉ = 3rd = 800; max 800. The no reply and the 3 July reply do not count.
    let obs = vec![
        ob("2024-07-01T08:00:00Z", "a", Some(200), 100.0),
        ob("2024-07-01T09:00:00Z", "b", Some(200), 300.0),
        ob("2024-07-02T08:00:00Z", "c", Some(200), 800.0),
        ob("2024-07-02T09:00:00Z", "d", None, 0.0),
        ob("2024-07-03T08:00:00Z", "e", Some(200), 5_000.0),
    ];
    let k = run(obs, "2024-07-01", "2024-07-03");
    assert_eq!(k.period_latency.len(), 1);
    let p = &k.period_latency[0];
    assert_eq!(
        (p.establishment.as_str(), p.interface, p.service.as_str()),
        ("13807", Interface::Api, "cbpii")
    );
    let l = p.stats;
    assert_eq!(
        (l.replies, l.avg_ms, l.p50_ms, l.p95_ms, l.max_ms),
        (3, 400.0, 300.0, 800.0, 800.0)
    );
}

#[test]
fn weekly_watch_levels_follow_consecutive_misses() {
    // Four weeks from Monday 2024-07-01. Weeks 1–3 each hold a 1-hour episode: uptime
    // 100 − 3 600/604 800 × 100 = 99.40476...% < 99.5 % → missed. Week 4 has none → met.
    // Levels: notice, warning, critical, none.
    let mut obs = Vec::new();
    for (w, d) in ["2024-07-02", "2024-07-09", "2024-07-16"]
        .iter()
        .enumerate()
    {
        for i in 0..5 {
            obs.push(ob(
                &format!("{d}T10:00:0{i}.000Z"),
                &format!("w{w}f{i}"),
                None,
                0.0,
            ));
        }
        obs.push(ob(
            &format!("{d}T11:00:00.000Z"),
            &format!("w{w}ok"),
            Some(200),
            0.0,
        ));
    }
    obs.push(ob("2024-07-23T10:00:00.000Z", "w3ok", Some(200), 100.0));
    let k = run(obs, "2024-07-01", "2024-07-29");
    let levels: Vec<_> = k
        .weeks
        .iter()
        .map(|w| (w.week.as_str(), w.consecutive_missed, w.level))
        .collect();
    assert_eq!(
        levels,
        [
            ("2024-W27", 1, Some(WatchLevel::Notice)),
            ("2024-W28", 2, Some(WatchLevel::Warning)),
            ("2024-W29", 3, Some(WatchLevel::Critical)),
            ("2024-W30", 0, None),
        ]
    );
    assert_eq!(
        k.weeks[0].uptime_pct,
        Some(100.0 - 3_600.0 / 604_800.0 * 100.0)
    );
    assert_eq!(k.weeks[0].seconds, 604_800);
}

#[test]
fn weekly_watch_checks_response_time_error_rate_and_parity() {
    // Week of 2024-07-01: cbpii mean 350 ms > 300 ms target; the customer web interface is
    // 100 % available while the API was down from 10:00:00 to the completion of the first reply,
    // 10:01:00 + 300 ms latency = 60.3 s, so parity misses too. Errors: 0 bank errors of 7 requests → 0 % (met).
    let mut obs: Vec<_> = (0..5)
        .map(|i| {
            ob(
                &format!("2024-07-02T10:00:0{i}.000Z"),
                &format!("f{i}"),
                None,
                0.0,
            )
        })
        .collect();
    obs.push(ob("2024-07-02T10:01:00.000Z", "ok1", Some(200), 300.0));
    obs.push(ob("2024-07-02T10:02:00.000Z", "ok2", Some(200), 400.0));
    obs.push(obx(
        "13807",
        Interface::PsuWeb,
        "2024-07-02T10:00:00Z",
        "web",
        Some(200),
        500.0,
    ));
    let k = run(obs, "2024-07-01", "2024-07-08");
    let w = &k.weeks[0];
    assert_eq!(w.avg_ms[&Service::new("cbpii").unwrap()], 350.0);
    let api = 100.0 - 60.3 / 604_800.0 * 100.0;
    assert_eq!(
        w.misses,
        vec![
            Miss::ResponseTime {
                service: Service::new("cbpii").unwrap(),
                actual_ms: 350.0,
                target_ms: 300.0
            },
            Miss::Parity {
                customer_interface: Interface::PsuWeb,
                customer_uptime_pct: 100.0,
                api_uptime_pct: api
            },
        ]
    );
}

#[test]
fn fallback_use_is_justified_inside_an_episode_plus_grace() {
    // API of 13807 down 10:00:00Z–10:01:00Z. Fallback uses by TPP A at 10:00:30 (inside),
    // 10:01:30 (30 s after the end) and by TPP B at 12:00 (outside).
    // Grace 0: A 1 justified 1 unjustified, B 1 unjustified. Grace 60 s: A 2 justified.
    let mut obs: Vec<_> = (0..5)
        .map(|i| {
            ob(
                &format!("2024-07-01T10:00:0{i}.000Z"),
                &format!("f{i}"),
                None,
                0.0,
            )
        })
        .collect();
    obs.push(ob("2024-07-01T10:01:00.000Z", "ok", Some(200), 0.0));
    let fb = |at: &str, rid: &str, tpp: &str| {
        let mut o = obx("13807", Interface::Fallback, at, rid, Some(302), 50.0);
        o.source = Source::Log;
        o.tpp = Some(tpp.into());
        o
    };
    obs.push(fb("2024-07-01T10:00:30Z", "u1", "PSDFR-ACPR-A"));
    obs.push(fb("2024-07-01T10:01:30Z", "u2", "PSDFR-ACPR-A"));
    obs.push(fb("2024-07-01T12:00:00Z", "u3", "PSDFR-ACPR-B"));
    // The monitor's own fallback probe does not count as a use.
    obs.push(obx(
        "13807",
        Interface::Fallback,
        "2024-07-01T12:30:00Z",
        "probe",
        Some(302),
        50.0,
    ));
    let k = run(obs.clone(), "2024-07-01", "2024-07-02");
    let got: Vec<_> = k
        .fallback
        .iter()
        .map(|f| (f.tpp.as_deref().unwrap(), f.justified, f.unjustified))
        .collect();
    assert_eq!(got, [("PSDFR-ACPR-A", 1, 1), ("PSDFR-ACPR-B", 0, 1)]);
    let s = Settings {
        fallback_grace_s: 60,
        ..Settings::default()
    };
    let k = run_with(obs, None, "2024-07-01", "2024-07-02", &s);
    let got: Vec<_> = k
        .fallback
        .iter()
        .map(|f| (f.tpp.as_deref().unwrap(), f.justified, f.unjustified))
        .collect();
    assert_eq!(got, [("PSDFR-ACPR-A", 2, 0), ("PSDFR-ACPR-B", 0, 1)]);
}

#[test]
fn counted_services_policy_leaves_other_services_out() {
    // Five token failures: down by default (all services count), not when only cbpii counts.
    // (A cbpii reply at 09:00 too: a counted service no observation has is a typo, refused.)
    let mut obs: Vec<_> = (0..5)
        .map(|i| {
            let mut o = ob(
                &format!("2024-07-01T10:00:0{i}.000Z"),
                &format!("t{i}"),
                None,
                0.0,
            );
            o.service = Service::new("token").unwrap();
            o
        })
        .collect();
    obs.push(ob("2024-07-01T09:00:00.000Z", "c1", Some(200), 50.0));
    assert_eq!(
        run(obs.clone(), "2024-07-01", "2024-07-02").episodes.len(),
        1
    );
    let s = Settings {
        counted_services: Some(vec![Service::new("cbpii").unwrap()]),
        ..Settings::default()
    };
    assert!(
        run_with(obs.clone(), None, "2024-07-01", "2024-07-02", &s)
            .episodes
            .is_empty()
    );
    // A misspelt service would count nothing of it and publish 100 %: refused, naming it.
    let typo = Settings {
        counted_services: Some(vec![Service::new("cbpiii").unwrap()]),
        ..Settings::default()
    };
    let input = EngineInput {
        observations: obs,
        coverage: always(),
    };
    let period = Period {
        from: date("2024-07-01"),
        to: date("2024-07-02"),
    };
    let e = compute(&input, period, &typo).unwrap_err().to_string();
    assert!(
        e.contains("cbpiii") && e.contains("known here: cbpii, token"),
        "{e}"
    );
}

#[test]
fn the_live_tracker_finds_the_batch_episodes() {
    // The same observations through the tracker one by one: Opened at the fifth failure of the
    // qualifying five, Closed at the reply, with the batch episode's figures.
    let obs = vec![
        ob("2024-07-01T10:00:00.000Z", "f1", None, 0.0),
        ob("2024-07-01T10:00:10.000Z", "f2", None, 0.0),
        ob("2024-07-01T10:00:20.000Z", "f3", None, 0.0),
        ob("2024-07-01T10:00:25.000Z", "f4", None, 0.0),
        ob("2024-07-01T10:00:30.001Z", "f5", None, 0.0),
        ob("2024-07-01T10:00:36.000Z", "f6", None, 0.0),
        ob("2024-07-01T10:01:00.000Z", "ok", Some(200), 12.0),
    ];
    let mut t = EpisodeTracker::new(&Settings::default());
    let events: Vec<_> = obs.iter().filter_map(|o| t.push(o)).collect();
    assert_eq!(events.len(), 2);
    match &events[0] {
        LiveEvent::Opened(e) => {
            assert_eq!(e.start_ms, ms("2024-07-01T10:00:10.000Z"));
            assert!(e.open);
        }
        other => panic!("expected Opened, got {other:?}"),
    }
    let batch = run(obs, "2024-07-01", "2024-07-02");
    assert_eq!(events[1], LiveEvent::Closed(batch.episodes[0].clone()));
}

#[test]
fn bad_periods_and_settings_are_errors() {
    let input = EngineInput::default();
    let p = Period {
        from: date("2024-07-02"),
        to: date("2024-07-01"),
    };
    assert!(matches!(
        compute(&input, p, &Settings::default()),
        Err(EngineError::EmptyPeriod { .. })
    ));
    let p = Period {
        from: date("2024-07-01"),
        to: date("2024-07-02"),
    };
    let s = Settings {
        failures_to_down: 0,
        ..Settings::default()
    };
    assert!(matches!(
        compute(&input, p, &s),
        Err(EngineError::Setting { .. })
    ));
    // No data: no rows, no error.
    let k = compute(&input, p, &Settings::default()).unwrap();
    assert!(k.days.is_empty() && k.episodes.is_empty());
}

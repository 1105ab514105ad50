//! Revision 2 of the counting method, point by point (issue 11), each with figures worked by
//! hand in the comments. Times: Paris is UTC+2 in summer (to 27 Oct 2024), UTC+1 after.

use chrono::{DateTime, NaiveDate, NaiveTime, Weekday};

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

/// An observation of 13807's dedicated interface (cbpii).
fn ob(src: Source, at: &str, rid: &str, status: Option<u16>, latency: f64) -> Observation {
    Observation {
        received_at_ms: ms(at),
        establishment: "13807".parse().unwrap(),
        interface: Interface::Api,
        service: Service::new("cbpii").unwrap(),
        source: src,
        tpp: Some("PSDFR-ACPR-12345".into()),
        status,
        latency_ms: status.map(|_| latency),
        error_code: None,
        request_id: rid.into(),
        outcome: Outcome::from_reply(status, None),
        vantage: crate::domain::Vantage::imported(src),
    }
}
fn probe(at: &str, rid: &str, status: Option<u16>, latency: f64) -> Observation {
    ob(Source::Probe, at, rid, status, latency)
}
fn log(at: &str, rid: &str, status: Option<u16>, latency: f64) -> Observation {
    ob(Source::Log, at, rid, status, latency)
}
/// Five failures one second apart from `at` (UTC, `...T10:00:0`), ids `{p}0..{p}4`.
fn five(src: Source, at: &str, p: &str) -> Vec<Observation> {
    (0..5)
        .map(|i| ob(src, &format!("{at}{i}.000Z"), &format!("{p}{i}"), None, 0.0))
        .collect()
}

fn span(kind: CoverageKind, a: &str, b: &str, ongoing: bool) -> CoverageSpan {
    CoverageSpan {
        kind,
        establishment: Some("13807".parse().unwrap()),
        interface: Some(Interface::Api),
        start_ms: ms(a),
        end_ms: ms(b),
        ongoing,
        vantage: None,
    }
}
fn monitor(a: &str, b: &str) -> CoverageSpan {
    span(CoverageKind::Monitor, a, b, false)
}

fn kpis(obs: Vec<Observation>, cov: Vec<CoverageSpan>, from: &str, to: &str) -> Kpis {
    kpis_with(obs, cov, from, to, &Settings::default())
}
fn kpis_with(
    obs: Vec<Observation>,
    coverage: Vec<CoverageSpan>,
    from: &str,
    to: &str,
    s: &Settings,
) -> Kpis {
    compute(
        &EngineInput {
            observations: obs,
            coverage,
        },
        Period {
            from: date(from),
            to: date(to),
        },
        s,
    )
    .unwrap()
}
fn day<'a>(k: &'a Kpis, d: &str) -> &'a DayFigures {
    k.days
        .iter()
        .find(|r| r.date == date(d) && r.interface == Interface::Api)
        .unwrap()
}

#[test]
fn p1_a_day_nobody_watched_is_nd_never_100() {
    // The monitor covered 1 July local (2024-06-30T22:00Z to 07-01T22:00Z) only. One reply on
    // 1 July; 2 July nobody watched; 3 July every probe ended in probe_error (the monitor's
    // own fault: not covered from the first such probe on). Period 1..4 July.
    let mut pe = probe("2024-07-03T08:00:00Z", "pe1", None, 0.0);
    pe.outcome = Outcome::ProbeError;
    let mut pe2 = probe("2024-07-03T09:00:00Z", "pe2", None, 0.0);
    pe2.outcome = Outcome::ProbeError;
    let obs = vec![
        probe("2024-07-01T08:00:00Z", "a", Some(200), 100.0),
        pe,
        pe2,
    ];
    let cov = vec![
        monitor("2024-06-30T22:00:00Z", "2024-07-01T22:00:00Z"),
        monitor("2024-07-02T22:00:00Z", "2024-07-03T22:00:00Z"),
    ];
    let k = kpis(obs, cov, "2024-07-01", "2024-07-04");
    let d1 = day(&k, "2024-07-01");
    assert_eq!((d1.covered_s, d1.coverage_pct), (86_400.0, 100.0));
    assert_eq!(d1.uptime_pct, Some(100.0));
    assert_eq!(d1.error_rate_pct, Some(0.0));
    // 2 July: covered 0 s → uptime, downtime % and (no request) error rate are n.d.
    let d2 = day(&k, "2024-07-02");
    assert_eq!((d2.covered_s, d2.unmonitored_s), (0.0, 86_400.0));
    assert_eq!((d2.uptime_pct, d2.downtime_pct), (None, None));
    assert_eq!(d2.error_rate_pct, None);
    // 3 July: covered from 22:00Z (2 July) to the first probe_error at 08:00Z = 10 h =
    // 36 000 s; 36 000 / 86 400 = 41.666...%. probe_errors are no requests: error rate n.d.
    let d3 = day(&k, "2024-07-03");
    assert_eq!(d3.covered_s, 36_000.0);
    assert_eq!(d3.coverage_pct, 36_000.0 / 86_400.0 * 100.0);
    assert_eq!(d3.uptime_pct, Some(100.0));
    assert_eq!((d3.requests, d3.error_rate_pct), (0, None));
    // Weeks: W27 (1..7 July) is over the data's end (3 July 22:00Z): incomplete, not judged.
    assert_eq!(k.weeks.len(), 1);
    assert!(!k.weeks[0].complete);
    assert_eq!(k.weeks[0].level, None);
    // 86 400 + 36 000 covered seconds in the week.
    assert_eq!(k.weeks[0].covered_s, 122_400.0);
}

#[test]
fn p1_future_days_of_a_running_quarter_are_nd() {
    // A monitor running since 1 July, "now" 2 July 12:00Z (its coverage ends there, ongoing).
    // 3 July is in the future: not covered, n.d.; 2 July covered 22:00Z..12:00Z = 14 h.
    let obs = vec![probe("2024-07-01T08:00:00Z", "a", Some(200), 100.0)];
    let cov = vec![span(
        CoverageKind::Monitor,
        "2024-06-30T22:00:00Z",
        "2024-07-02T12:00:00Z",
        true,
    )];
    let k = kpis(obs, cov, "2024-07-01", "2024-07-04");
    assert_eq!(day(&k, "2024-07-02").covered_s, 50_400.0);
    assert_eq!(day(&k, "2024-07-03").uptime_pct, None);
}

#[test]
fn p2_gateway_logs_cover_a_probe_monitor_gap() {
    // The probe monitor stopped; the gateway logged five TPP failures from 10:00:00Z and a reply
    // at 11:00:00Z (latency 0). The log covers 10:00:00..11:00:00.001: down 3 600 s.
    let mut obs = five(Source::Log, "2024-07-01T10:00:0", "t");
    obs.push(log("2024-07-01T11:00:00Z", "ok", Some(200), 0.0));
    let cov = vec![span(
        CoverageKind::Log,
        "2024-07-01T10:00:00Z",
        "2024-07-01T11:00:00.001Z",
        false,
    )];
    let k = kpis(obs, cov, "2024-07-01", "2024-07-02");
    assert_eq!(k.episodes.len(), 1);
    assert_eq!(k.episodes[0].duration_s(), 3_600.0);
    assert_eq!(day(&k, "2024-07-01").downtime_s, 3_600.0);
    // 3 600 s down of 3 600.001 s covered.
    assert_eq!(
        day(&k, "2024-07-01").uptime_pct,
        Some(100.0 - 3_600.0 / 3_600.001 * 100.0)
    );
}

#[test]
fn p3_an_episode_is_cut_at_a_coverage_gap_and_the_failures_after_need_their_own_five() {
    // Monitor runs 09:00Z..10:05:30Z, then again from 12:00Z. Five failures at 10:00:00..04Z:
    // down from 10:00:00, cut at 10:05:30 (330 s). After the restart, failures at 12:00:00..03Z
    // (four) then a reply at 12:01:00Z: four failures do not make five, no second episode.
    // The episode list and the day agree: 330 s.
    let mut obs = five(Source::Probe, "2024-07-01T10:00:0", "f");
    for i in 0..4 {
        obs.push(probe(
            &format!("2024-07-01T12:00:0{i}Z"),
            &format!("g{i}"),
            None,
            0.0,
        ));
    }
    obs.push(probe("2024-07-01T12:01:00Z", "ok", Some(200), 0.0));
    let cov = vec![
        monitor("2024-07-01T09:00:00Z", "2024-07-01T10:05:30Z"),
        monitor("2024-07-01T12:00:00Z", "2024-07-01T22:00:00Z"),
    ];
    let k = kpis(obs, cov, "2024-07-01", "2024-07-02");
    assert_eq!(k.episodes.len(), 1);
    let e = &k.episodes[0];
    assert!(e.cut && !e.open);
    assert_eq!(e.end_ms, ms("2024-07-01T10:05:30Z"));
    assert_eq!(e.duration_s(), 330.0);
    assert_eq!(day(&k, "2024-07-01").downtime_s, 330.0);
}

/// A sparse-night outage: five failures at 20:00:00..04Z on 30 Sept (22:00 Paris), then one
/// every 15 minutes, and a reply at 2024-09-30T23:30:00Z (01:30 Paris on 1 Oct).
fn night_outage() -> Vec<Observation> {
    let mut obs = five(Source::Probe, "2024-09-30T20:00:0", "f");
    let start = ms("2024-09-30T20:15:00Z");
    for i in 0..13 {
        let mut o = probe("2024-09-30T20:15:00Z", &format!("s{i:02}"), None, 0.0);
        o.received_at_ms = start + i * 900_000;
        obs.push(o);
    }
    obs.push(probe("2024-09-30T23:30:00Z", "ok", Some(200), 0.0));
    obs
}

#[test]
fn p4_an_outage_running_at_the_quarter_start_is_known_and_counted_from_it() {
    // Q4 from 1 Oct 00:00 Paris = 2024-09-30T22:00Z. The episode began at 20:00Z on 30 Sept
    // (look-back): listed with its real start, began before the period; 1 Oct counts
    // 22:00Z..23:30Z = 5 400 s.
    let cov = vec![monitor("2024-09-01T00:00:00Z", "2024-10-10T00:00:00Z")];
    let k = kpis(night_outage(), cov.clone(), "2024-10-01", "2024-10-02");
    assert_eq!(k.episodes.len(), 1);
    let e = &k.episodes[0];
    assert!(e.began_before_period);
    assert_eq!(e.start_ms, ms("2024-09-30T20:00:00Z"));
    assert_eq!(e.id(), "13807-api-20240930T200000.000Z");
    assert_eq!(day(&k, "2024-10-01").downtime_s, 5_400.0);
    // Q3's last day counts 20:00Z..22:00Z = 7 200 s of the same episode, same id: the two
    // quarters add up to its 12 600 s, never twice.
    let q3 = kpis(night_outage(), cov, "2024-09-30", "2024-10-01");
    assert_eq!(q3.episodes[0].id(), e.id());
    assert!(!q3.episodes[0].began_before_period);
    assert_eq!(day(&q3, "2024-09-30").downtime_s, 7_200.0);
    assert_eq!(e.duration_s(), 12_600.0);
}

#[test]
fn p4_an_episode_ending_exactly_at_midnight_belongs_to_the_day_before() {
    // Down from 21:00:00Z on 30 Sept to a reply completing at 22:00:00.000Z = midnight Paris.
    let mut obs = five(Source::Probe, "2024-09-30T21:00:0", "f");
    obs.push(probe("2024-09-30T21:59:59Z", "ok", Some(200), 1_000.0));
    let cov = vec![monitor("2024-09-01T00:00:00Z", "2024-10-10T00:00:00Z")];
    let q4 = kpis(obs.clone(), cov.clone(), "2024-10-01", "2024-10-02");
    assert!(q4.episodes.is_empty());
    assert_eq!(day(&q4, "2024-10-01").downtime_s, 0.0);
    let q3 = kpis(obs, cov, "2024-09-30", "2024-10-01");
    assert_eq!(q3.episodes.len(), 1);
    assert_eq!(day(&q3, "2024-09-30").downtime_s, 3_600.0);
}

#[test]
fn p4_a_series_whose_data_stops_during_an_open_episode_stays_in_the_figures() {
    // Five failures on 30 Sept at 20:00Z and nothing after; the monitor still runs (ongoing to
    // 3 Oct). Q4 days still have rows for the series: 1 Oct wholly down (86 400 s), and the
    // episode is listed open, ending at the period end.
    let obs = five(Source::Probe, "2024-09-30T20:00:0", "f");
    let cov = vec![span(
        CoverageKind::Monitor,
        "2024-09-01T00:00:00Z",
        "2024-10-03T00:00:00Z",
        true,
    )];
    let k = kpis(obs, cov, "2024-10-01", "2024-10-02");
    let d = day(&k, "2024-10-01");
    assert_eq!((d.downtime_s, d.uptime_pct), (86_400.0, Some(0.0)));
    assert!(k.episodes[0].open);
    assert_eq!(k.episodes[0].end_ms, ms("2024-10-01T22:00:00Z"));
}

/// A 1-hour episode at 10:00Z on `d`: its week's uptime is 100 − 3 600 / 604 800 × 100 =
/// 99.404...% < 99.5 %, a miss.
fn hour_down(d: &str, p: &str) -> Vec<Observation> {
    let mut obs = five(Source::Probe, &format!("{d}T10:00:0"), p);
    obs.push(probe(
        &format!("{d}T11:00:00Z"),
        &format!("{p}ok"),
        Some(200),
        0.0,
    ));
    obs
}

#[test]
fn p5_weeks_are_whole_and_consecutive_misses_count_across_the_quarter_edge() {
    // Misses in W38 (18 Sept), W39 (25 Sept) and W40 (2 Oct; W40 = Mon 30 Sept..Sun 6 Oct).
    // Q3 (to 1 Oct) and Q4 (from 1 Oct) both judge W40 on its seven days: critical in both.
    let mut obs = hour_down("2024-09-18", "a");
    obs.extend(hour_down("2024-09-25", "b"));
    obs.extend(hour_down("2024-10-02", "c"));
    let cov = vec![monitor("2024-08-01T00:00:00Z", "2024-11-01T00:00:00Z")];
    let q3 = kpis(obs.clone(), cov.clone(), "2024-07-01", "2024-10-01");
    let q4 = kpis(obs, cov, "2024-10-01", "2025-01-01");
    let w = |k: &Kpis, label: &str| {
        let w = k.weeks.iter().find(|w| w.week == label).unwrap();
        (w.consecutive_missed, w.level)
    };
    assert_eq!(w(&q3, "2024-W38"), (1, Some(WatchLevel::Notice)));
    assert_eq!(w(&q3, "2024-W39"), (2, Some(WatchLevel::Warning)));
    assert_eq!(w(&q3, "2024-W40"), (3, Some(WatchLevel::Critical)));
    assert_eq!(w(&q4, "2024-W40"), (3, Some(WatchLevel::Critical)));
    // Q4 lists W40 as its first week, judged on 30 Sept..6 Oct (604 800 s).
    assert_eq!(q4.weeks[0].week, "2024-W40");
    assert_eq!(q4.weeks[0].seconds, 604_800);
}

#[test]
fn p5_a_partial_week_is_judged_whole() {
    // A 10-minute outage on Monday 30 Sept: of that day alone (86 400 s) uptime would be
    // 99.305...% (a miss); of the whole week W40, 100 − 600 / 604 800 × 100 = 99.9008...%: met.
    let mut obs = five(Source::Probe, "2024-09-30T10:00:0", "f");
    obs.push(probe("2024-09-30T10:10:00Z", "ok", Some(200), 0.0));
    let cov = vec![monitor("2024-08-01T00:00:00Z", "2024-11-01T00:00:00Z")];
    let q3 = kpis(obs, cov, "2024-07-01", "2024-10-01");
    let w40 = q3.weeks.iter().find(|w| w.week == "2024-W40").unwrap();
    assert!(w40.complete);
    assert_eq!(w40.uptime_pct, Some(100.0 - 600.0 / 604_800.0 * 100.0));
    assert_eq!(w40.level, None);
}

#[test]
fn p6_one_request_counts_once() {
    // Three no-replies at 10:00:00, :10, :20Z, each logged by two gateway nodes 3 ms apart,
    // then a reply at 10:00:30Z. Counted once: three failures, no episode (not six, which
    // would have made a 30 s episode), 4 requests.
    let mut obs = Vec::new();
    for (i, t) in ["10:00:00.000", "10:00:10.000", "10:00:20.000"]
        .iter()
        .enumerate()
    {
        obs.push(log(
            &format!("2024-07-01T{t}Z"),
            &format!("n{i}"),
            None,
            0.0,
        ));
        let mut again = log(&format!("2024-07-01T{t}Z"), &format!("n{i}"), None, 0.0);
        again.received_at_ms += 3;
        obs.push(again);
    }
    obs.push(log("2024-07-01T10:00:30Z", "ok", Some(200), 10.0));
    // An exact copy of that reply, and a probe's request also in the gateway log (other clock,
    // 40 ms later, 200 ms slower): one each, the probe's record kept (latency 80 ms).
    obs.push(log("2024-07-01T10:00:30Z", "ok", Some(200), 10.0));
    obs.push(probe("2024-07-01T10:05:00.000Z", "p1", Some(200), 80.0));
    obs.push(log("2024-07-01T10:05:00.040Z", "p1", Some(200), 280.0));
    // The same id a day later is another request.
    obs.push(log("2024-07-02T10:05:00.040Z", "p1", Some(200), 50.0));
    let cov = vec![monitor("2024-06-30T22:00:00Z", "2024-07-02T22:00:00Z")];
    let k = kpis(obs, cov, "2024-07-01", "2024-07-03");
    assert!(k.episodes.is_empty());
    let d = day(&k, "2024-07-01");
    assert_eq!((d.requests, d.no_reply), (5, 3));
    assert_eq!((d.tpp_requests, d.probe_requests), (4, 1));
    // ok replies timed: 10 (log) and 80 (probe) → 45 ms.
    assert_eq!(d.latency[&Service::new("cbpii").unwrap()].avg_ms, 45.0);
    assert_eq!(day(&k, "2024-07-02").requests, 1);
}

#[test]
fn p7_means_are_over_successful_replies() {
    // 5 successes of 350 ms and 5 rejections (400) of 30 ms: the mean is 350 ms (not 190), and
    // the 300 ms cbpii target is missed for the week.
    let mut obs = Vec::new();
    for i in 0..5 {
        obs.push(log(
            &format!("2024-07-01T10:0{i}:00Z"),
            &format!("s{i}"),
            Some(200),
            350.0,
        ));
        obs.push(log(
            &format!("2024-07-01T11:0{i}:00Z"),
            &format!("r{i}"),
            Some(400),
            30.0,
        ));
    }
    let cov = vec![monitor("2024-06-20T00:00:00Z", "2024-07-10T00:00:00Z")];
    let k = kpis(obs, cov, "2024-07-01", "2024-07-08");
    assert_eq!(
        day(&k, "2024-07-01").latency[&Service::new("cbpii").unwrap()].avg_ms,
        350.0
    );
    assert_eq!(day(&k, "2024-07-01").requests, 10);
    assert!(
        k.weeks[0]
            .misses
            .iter()
            .any(|m| matches!(m, Miss::ResponseTime { actual_ms, .. } if *actual_ms == 350.0))
    );
}

#[test]
fn p7_a_probe_response_time_excludes_connection_set_up_by_default() {
    // A probe of 1 000 ms in all: 120 resolve + connect + TLS, 800 processing, 80 transfer.
    let total = Some(1_000.0);
    let (p, t) = (Some(800.0), Some(80.0));
    assert_eq!(
        response_time_ms(ProbeLatency::Request, Source::Probe, total, p, t),
        Some(880.0)
    );
    assert_eq!(
        response_time_ms(ProbeLatency::Total, Source::Probe, total, p, t),
        Some(1_000.0)
    );
    // Gateway logs: the logged duration; no reply: none.
    assert_eq!(
        response_time_ms(ProbeLatency::Request, Source::Log, total, p, t),
        Some(1_000.0)
    );
    assert_eq!(
        response_time_ms(ProbeLatency::Request, Source::Probe, None, None, None),
        None
    );
}

#[test]
fn p8_episodes_never_overlap() {
    // f1..f5 at 10:00:00..04Z; a slow reply sent at :25 completes at :45 (latency 20 s); new
    // failures g0..g4 at :30..:34 (sent before it completed); a reply at 10:01:00Z (0 ms).
    // First episode 10:00:00–10:00:45 (45 s); the second starts no earlier than 10:00:45 and ends
    // at 10:01:00 (15 s): 60 s in all, and the day's downtime is the same 60 s.
    let mut obs = five(Source::Probe, "2024-07-01T10:00:0", "f");
    obs.push(probe("2024-07-01T10:00:25Z", "slow", Some(200), 20_000.0));
    for i in 0..5 {
        obs.push(probe(
            &format!("2024-07-01T10:00:3{i}Z"),
            &format!("g{i}"),
            None,
            0.0,
        ));
    }
    obs.push(probe("2024-07-01T10:01:00Z", "ok", Some(200), 0.0));
    let cov = vec![monitor("2024-06-30T22:00:00Z", "2024-07-01T22:00:00Z")];
    let k = kpis(obs, cov, "2024-07-01", "2024-07-02");
    let d: Vec<f64> = k.episodes.iter().map(Episode::duration_s).collect();
    assert_eq!(d, [45.0, 15.0]);
    assert_eq!(k.episodes[1].start_ms, k.episodes[0].end_ms);
    assert_eq!(day(&k, "2024-07-01").downtime_s, 60.0);
}

#[test]
fn p9_planned_seconds_are_right_whatever_the_episode_length() {
    // Maintenance Sunday 02:00–06:00 Paris (00:00Z–04:00Z on Sunday 7 July). An episode from
    // Saturday 6 July 10:00Z to Monday 8 July 08:00Z; the period is Monday 8 July alone. The
    // episode's planned seconds are the whole window, 4 h = 14 400 s, though the window lies
    // before the period.
    let mut obs = five(Source::Probe, "2024-07-06T10:00:0", "f");
    obs.push(probe("2024-07-08T08:00:00Z", "ok", Some(200), 0.0));
    let s = Settings {
        maintenance: vec![MaintenanceWindow {
            weekday: Weekday::Sun,
            start: NaiveTime::from_hms_opt(2, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(6, 0, 0).unwrap(),
            establishments: vec![],
        }],
        ..Settings::default()
    };
    let cov = vec![monitor("2024-07-01T00:00:00Z", "2024-07-10T00:00:00Z")];
    let k = kpis_with(obs, cov, "2024-07-08", "2024-07-09", &s);
    assert_eq!(k.episodes[0].planned_s, 14_400.0);
    // Monday 8 July: 22:00Z (7th) to 08:00Z = 36 000 s down, none planned.
    let d = day(&k, "2024-07-08");
    assert_eq!((d.downtime_s, d.planned_downtime_s), (36_000.0, 0.0));
}

#[test]
fn p11_a_day_without_request_has_no_error_rate() {
    // Covered all day, no request: uptime 100 % (watched, nothing failed) but the error rate is
    // n.d., not 0.
    let obs = vec![probe("2024-07-02T10:00:00Z", "a", Some(200), 5.0)];
    let cov = vec![monitor("2024-06-30T22:00:00Z", "2024-07-02T22:00:00Z")];
    let k = kpis(obs, cov, "2024-07-01", "2024-07-03");
    let d = day(&k, "2024-07-01");
    assert_eq!(
        (d.requests, d.error_rate_pct, d.uptime_pct),
        (0, None, Some(100.0))
    );
    assert_eq!(day(&k, "2024-07-02").error_rate_pct, Some(0.0));
}

// Found by the outside review (figures that favoured the bank), each pinned here.

#[test]
fn a_one_line_log_covers_no_time() {
    // One no-reply on 1 July, alone in its file: the log covers from its first to its last line,
    // here no time at all. The day is n.d., not 100 % "over a millisecond".
    let obs = vec![log("2024-07-01T10:00:00Z", "x", None, 0.0)];
    let cov = vec![span(
        CoverageKind::Log,
        "2024-07-01T10:00:00Z",
        "2024-07-01T10:00:00Z",
        false,
    )];
    let k = kpis(obs, cov, "2024-07-01", "2024-07-02");
    let d = day(&k, "2024-07-01");
    assert_eq!((d.covered_s, d.uptime_pct), (0.0, None));
    assert_eq!((d.requests, d.no_reply), (1, 1));
}

#[test]
fn an_outage_at_the_end_of_the_data_is_open_and_one_before_a_gap_is_cut() {
    // A log ends with five no-replies at 10:00:00–04Z (its last line at :04): the data ends
    // there, the episode is open (4 s). Add a second log from 12:00Z: the first episode now
    // ends at a gap, cut.
    let obs = five(Source::Log, "2024-07-01T10:00:0", "f");
    let first = span(
        CoverageKind::Log,
        "2024-07-01T08:00:00Z",
        "2024-07-01T10:00:04Z",
        false,
    );
    let k = kpis(obs.clone(), vec![first.clone()], "2024-07-01", "2024-07-02");
    assert!(k.episodes[0].open && !k.episodes[0].cut);
    assert_eq!(k.episodes[0].duration_s(), 4.0);
    let later = span(
        CoverageKind::Log,
        "2024-07-01T12:00:00Z",
        "2024-07-01T13:00:00Z",
        false,
    );
    let k = kpis(obs, vec![first, later], "2024-07-01", "2024-07-02");
    assert!(k.episodes[0].cut && !k.episodes[0].open);
}

#[test]
fn an_unobserved_week_does_not_clear_a_run_of_missed_weeks() {
    // W38 and W40 each hold a 1-hour episode (misses); W39 was not watched at all (a log for
    // W38, nothing in W39, a log for W40–W41). W39 is not judged, and does not break the run:
    // W40 is the second miss in a row (warning), not a fresh notice.
    let mut obs = hour_down("2024-09-18", "a");
    obs.extend(hour_down("2024-10-02", "c"));
    let cov = vec![
        monitor("2024-09-15T22:00:00Z", "2024-09-22T22:00:00Z"),
        monitor("2024-09-29T22:00:00Z", "2024-10-13T22:00:00Z"),
    ];
    let k = kpis(obs, cov, "2024-07-01", "2024-10-01");
    let w = |label: &str| {
        let w = k.weeks.iter().find(|w| w.week == label).unwrap();
        (w.uptime_pct.is_some(), w.consecutive_missed, w.level)
    };
    assert_eq!(w("2024-W38"), (true, 1, Some(WatchLevel::Notice)));
    assert_eq!(w("2024-W39"), (false, 1, None));
    assert_eq!(w("2024-W40"), (true, 2, Some(WatchLevel::Warning)));
}

#[test]
fn a_run_inside_the_previous_episode_adds_no_episode() {
    // f1..f5 at 10:00:00..04Z; a slow reply sent at :05 completing at :50; five more failures
    // :10..:14 and a reply at :20 (0 ms) completing before :50. The second run lies inside the
    // first episode (10:00:00–10:00:50): moved to start at its end it would last 0 s, so it is no
    // episode; downtime 50 s.
    let mut obs = five(Source::Probe, "2024-07-01T10:00:0", "f");
    obs.push(probe("2024-07-01T10:00:05Z", "slow", Some(200), 45_000.0));
    for i in 0..5 {
        obs.push(probe(
            &format!("2024-07-01T10:00:1{i}Z"),
            &format!("g{i}"),
            None,
            0.0,
        ));
    }
    obs.push(probe("2024-07-01T10:00:20Z", "ok", Some(200), 0.0));
    let cov = vec![monitor("2024-06-30T22:00:00Z", "2024-07-01T22:00:00Z")];
    let k = kpis(obs, cov, "2024-07-01", "2024-07-02");
    assert_eq!(k.episodes.len(), 1);
    assert_eq!(day(&k, "2024-07-01").downtime_s, 50.0);
}

#[test]
fn settings_that_would_count_nothing_are_refused() {
    let period = Period {
        from: date("2024-07-01"),
        to: date("2024-07-02"),
    };
    let input = EngineInput::default();
    let bad = |s: Settings| compute(&input, period, &s).unwrap_err().to_string();
    let e = bad(Settings {
        counted_services: Some(vec![]),
        ..Settings::default()
    });
    assert!(e.contains("counted_services"), "{e}");
    let mut s = Settings::default();
    s.targets.uptime_pct = 150.0;
    assert!(bad(s).contains("targets.uptime_pct"));
    let s = Settings {
        maintenance: vec![MaintenanceWindow {
            weekday: Weekday::Sun,
            start: NaiveTime::from_hms_opt(2, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(2, 0, 0).unwrap(),
            establishments: vec![],
        }],
        ..Settings::default()
    };
    assert!(bad(s).contains("starts and ends at 02:00:00"));
    // A million failures, or a window of 0 ms, would find no outage at all.
    assert!(
        bad(Settings {
            failures_to_down: 1_000_000,
            ..Settings::default()
        })
        .contains("failures_to_down")
    );
    assert!(
        bad(Settings {
            window_ms: 0,
            ..Settings::default()
        })
        .contains("window_ms")
    );
    // A grace past a day overflowed once multiplied into milliseconds.
    assert!(
        bad(Settings {
            fallback_grace_s: 92_233_720_368_547_758,
            ..Settings::default()
        })
        .contains("fallback_grace_s")
    );
    // 1900 to 9999: refused before any memory is spent.
    let long = Period {
        from: date("1900-01-01"),
        to: date("9999-01-01"),
    };
    let e = compute(&input, long, &Settings::default()).unwrap_err();
    assert!(e.to_string().contains("longer than ten years"), "{e}");
}

#[test]
fn lines_without_a_request_id_are_each_a_request() {
    // NGINX writes "-" for a missing X-Request-ID: five no-replies logged so are five requests
    // (an episode), not one.
    let obs: Vec<Observation> = (0..5)
        .map(|i| log(&format!("2024-07-01T10:00:0{i}Z"), "-", None, 0.0))
        .collect();
    let cov = vec![monitor("2024-06-30T22:00:00Z", "2024-07-01T22:00:00Z")];
    let k = kpis(obs, cov, "2024-07-01", "2024-07-02");
    assert_eq!(day(&k, "2024-07-01").requests, 5);
    assert_eq!(k.episodes.len(), 1);
}

#[test]
fn the_monitors_own_traffic_is_no_tpp_request_and_no_fallback_use() {
    // The gateway logged two fallback calls: one by a TPP (B), one by the monitor itself (its
    // client id M, from the configuration), and an API call by M. Only B's is TPP traffic and
    // fallback use (unjustified: no episode); M's count as the monitor's requests.
    let mut fb_tpp = log("2024-07-01T10:00:00Z", "b1", Some(302), 40.0);
    fb_tpp.interface = Interface::Fallback;
    fb_tpp.tpp = Some("B".into());
    let mut fb_mon = log("2024-07-01T10:01:00Z", "m1", Some(302), 40.0);
    fb_mon.interface = Interface::Fallback;
    fb_mon.tpp = Some("M".into());
    let mut api_mon = log("2024-07-01T10:02:00Z", "m2", Some(200), 40.0);
    api_mon.tpp = Some("M".into());
    let s = Settings {
        monitor_client_ids: vec!["M".into()],
        ..Settings::default()
    };
    let cov = vec![CoverageSpan {
        interface: None,
        ..monitor("2024-06-30T22:00:00Z", "2024-07-01T22:00:00Z")
    }];
    let k = kpis_with(
        vec![fb_tpp, fb_mon, api_mon],
        cov,
        "2024-07-01",
        "2024-07-02",
        &s,
    );
    let fb: Vec<_> = k
        .fallback
        .iter()
        .map(|f| (f.tpp.as_deref(), f.justified, f.unjustified))
        .collect();
    assert_eq!(fb, [(Some("B"), 0, 1)]);
    let api = day(&k, "2024-07-01");
    assert_eq!((api.tpp_requests, api.probe_requests), (0, 1));
}

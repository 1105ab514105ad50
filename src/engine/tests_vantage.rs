//! Vantage points (methodology section 10) in the engine, with figures worked by hand in the
//! comments. One series, 13807's dedicated interface; times UTC (Paris is UTC+2 in July: the
//! local day 1 July is 2024-06-30T22:00Z to 2024-07-01T22:00Z, 86 400 s).

use chrono::DateTime;

use super::vantage::VantageQuorum;
use super::*;
use crate::domain::{
    CoverageKind, CoverageSpan, Interface, Observation, Outcome, Service, Source, Vantage,
};

fn ms(rfc3339: &str) -> i64 {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

fn ob(src: Source, vantage: &str, at: &str, rid: &str, status: Option<u16>) -> Observation {
    Observation {
        received_at_ms: ms(at),
        establishment: "13807".parse().unwrap(),
        interface: Interface::Api,
        service: Service::new("cbpii").unwrap(),
        source: src,
        tpp: None,
        status,
        latency_ms: status.map(|_| 0.0),
        error_code: None,
        request_id: rid.into(),
        outcome: Outcome::from_reply(status, None),
        vantage: Vantage::new(vantage).unwrap(),
    }
}
/// A probe of vantage `v`: a reply (`Some(200)`) or none (a failure).
fn probe(v: &str, at: &str, rid: &str, status: Option<u16>) -> Observation {
    ob(Source::Probe, v, at, rid, status)
}
fn log(at: &str, rid: &str, status: Option<u16>) -> Observation {
    ob(Source::Log, "gateway", at, rid, status)
}
/// Five failures of vantage `v` one second apart from `at` + 0..4 s (`at` ends `...:0`).
fn five(v: &str, at: &str) -> Vec<Observation> {
    (0..5)
        .map(|i| probe(v, &format!("{at}{i}.000Z"), &format!("{v}-{at}{i}"), None))
        .collect()
}
/// A monitor run of vantage `v` over 13807/api.
fn run(v: &str, a: &str, b: &str) -> CoverageSpan {
    CoverageSpan {
        kind: CoverageKind::Monitor,
        establishment: Some("13807".parse().unwrap()),
        interface: Some(Interface::Api),
        start_ms: ms(a),
        end_ms: ms(b),
        ongoing: false,
        vantage: Some(Vantage::new(v).unwrap()),
    }
}
/// Runs of each vantage over the whole local days 1 and 2 July.
fn runs(vs: &[&str]) -> Vec<CoverageSpan> {
    vs.iter()
        .map(|v| run(v, "2024-06-30T22:00:00Z", "2024-07-02T22:00:00Z"))
        .collect()
}

fn kpis(obs: Vec<Observation>, cov: Vec<CoverageSpan>, q: VantageQuorum) -> Kpis {
    let settings = Settings {
        vantage_quorum: q,
        ..Settings::default()
    };
    compute(
        &EngineInput {
            observations: obs,
            coverage: cov,
        },
        Period {
            from: "2024-07-01".parse().unwrap(),
            to: "2024-07-03".parse().unwrap(),
        },
        &settings,
    )
    .unwrap()
}
fn majority(obs: Vec<Observation>, cov: Vec<CoverageSpan>) -> Kpis {
    kpis(obs, cov, VantageQuorum::Majority)
}
fn downtime(k: &Kpis, date: &str) -> f64 {
    k.days
        .iter()
        .find(|d| d.date.to_string() == date && d.interface == Interface::Api)
        .unwrap()
        .downtime_s
}
/// (vantage, start, seconds) of each fault.
fn faults(k: &Kpis) -> Vec<(String, i64, f64)> {
    k.vantage_faults
        .iter()
        .map(|f| (f.vantage.to_string(), f.start_ms, f.duration_s()))
        .collect()
}

#[test]
fn one_vantage_cut_off_is_a_fault_not_downtime() {
    // a: five failures from 10:00:00, its next reply at 10:10:00: down 600 s as a sees it.
    // b replies throughout. Majority of 2 is 2: no downtime, a fault of a for 600 s.
    let mut obs = five("a", "2024-07-01T10:00:0");
    obs.push(probe("a", "2024-07-01T10:10:00Z", "a-r", Some(200)));
    obs.push(probe("b", "2024-07-01T10:00:00Z", "b-1", Some(200)));
    obs.push(probe("b", "2024-07-01T10:10:00Z", "b-2", Some(200)));
    let k = majority(obs, runs(&["a", "b"]));
    assert!(k.episodes.is_empty());
    assert_eq!(downtime(&k, "2024-07-01"), 0.0);
    assert_eq!(
        faults(&k),
        vec![("a".into(), ms("2024-07-01T10:00:00Z"), 600.0)]
    );
    // Both vantages named, each covering the two days (172 800 s).
    let names: Vec<(&str, f64)> = k
        .vantages
        .iter()
        .map(|v| (v.vantage.as_str(), v.covered_s))
        .collect();
    assert_eq!(names, vec![("a", 172_800.0), ("b", 172_800.0)]);
    // Policy "any": one vantage is enough, the same outage is 600 s of downtime.
    let any = kpis(
        five("a", "2024-07-01T10:00:0")
            .into_iter()
            .chain([probe("a", "2024-07-01T10:10:00Z", "a-r", Some(200))])
            .collect(),
        runs(&["a", "b"]),
        VantageQuorum::Any,
    );
    assert_eq!(downtime(&any, "2024-07-01"), 600.0);
    assert!(any.vantage_faults.is_empty());
}

#[test]
fn both_cut_off_is_downtime_on_the_overlap() {
    // a down [10:00:00, 10:10:00); b down [10:00:02, 10:05:00) (five from 10:00:02, reply at
    // 10:05:00). Both: [10:00:02, 10:05:00) = 298 s of downtime, one episode that b's five
    // started (the quorum was reached at b's first) and b's reply ended. a alone before and
    // after: faults of 2 s and 300 s.
    let mut obs = five("a", "2024-07-01T10:00:0");
    obs.push(probe("a", "2024-07-01T10:10:00Z", "a-r", Some(200)));
    obs.extend((2..7).map(|i| {
        probe(
            "b",
            &format!("2024-07-01T10:00:0{i}.000Z"),
            &format!("b-{i}"),
            None,
        )
    }));
    obs.push(probe("b", "2024-07-01T10:05:00Z", "b-r", Some(200)));
    let k = majority(obs, runs(&["a", "b"]));
    assert_eq!(downtime(&k, "2024-07-01"), 298.0);
    assert_eq!(k.episodes.len(), 1);
    let e = &k.episodes[0];
    assert_eq!(e.id(), "13807-api-20240701T100002.000Z");
    assert_eq!(e.request_ids, vec!["b-2", "b-3", "b-4", "b-5", "b-6"]);
    assert_eq!(e.ended_by.as_deref(), Some("b-r"));
    assert!(!e.cut && !e.open);
    assert_eq!(
        faults(&k),
        vec![
            ("a".into(), ms("2024-07-01T10:00:00Z"), 2.0),
            ("a".into(), ms("2024-07-01T10:05:00Z"), 300.0),
        ]
    );
    let day = k.days.iter().find(|d| d.date.to_string() == "2024-07-01");
    // 86 400 s covered, 298 s down: 100 - 298 / 864 = 99.655 09...
    let up = day.unwrap().uptime_pct.unwrap();
    assert!((up - (100.0 - 298.0 / 864.0)).abs() < 1e-9, "{up}");
}

#[test]
fn three_vantages_need_two() {
    // a down [10:00, 10:10), b down [10:05, 10:20), c never. Two of three on [10:05, 10:10):
    // 300 s down; a alone [10:00, 10:05) 300 s, b alone [10:10, 10:20) 600 s: faults.
    let mut obs = five("a", "2024-07-01T10:00:0");
    obs.push(probe("a", "2024-07-01T10:10:00Z", "a-r", Some(200)));
    obs.extend(five("b", "2024-07-01T10:05:0"));
    obs.push(probe("b", "2024-07-01T10:20:00Z", "b-r", Some(200)));
    obs.push(probe("c", "2024-07-01T10:07:00Z", "c-1", Some(200)));
    let cov = runs(&["a", "b", "c"]);
    let k = majority(obs.clone(), cov.clone());
    assert_eq!(downtime(&k, "2024-07-01"), 300.0);
    assert_eq!(
        faults(&k),
        vec![
            ("a".into(), ms("2024-07-01T10:00:00Z"), 300.0),
            ("b".into(), ms("2024-07-01T10:10:00Z"), 600.0),
        ]
    );
    // All three needed: never down; each episode a fault whole (600 s and 900 s).
    let all = kpis(obs.clone(), cov.clone(), VantageQuorum::All);
    assert_eq!(downtime(&all, "2024-07-01"), 0.0);
    assert_eq!(
        faults(&all),
        vec![
            ("a".into(), ms("2024-07-01T10:00:00Z"), 600.0),
            ("b".into(), ms("2024-07-01T10:05:00Z"), 900.0),
        ]
    );
    // Any one: down [10:00, 10:20), 1 200 s.
    let any = kpis(obs, cov, VantageQuorum::Any);
    assert_eq!(downtime(&any, "2024-07-01"), 1_200.0);
    assert_eq!(any.episodes.len(), 1);
}

#[test]
fn a_vantage_stopping_mid_episode() {
    // a and b down from 10:00:00 (five each), a's run stops at 10:05 (its episode cut there),
    // b's reply at 10:20. From 10:05 b alone covers: one of one, still down. 1 200 s, one
    // episode ended by b's reply, not cut; no fault.
    let mut obs = five("a", "2024-07-01T10:00:0");
    obs.extend(five("b", "2024-07-01T10:00:0"));
    obs.push(probe("b", "2024-07-01T10:20:00Z", "b-r", Some(200)));
    let mut cov = vec![
        run("a", "2024-06-30T22:00:00Z", "2024-07-01T10:05:00Z"),
        run("b", "2024-06-30T22:00:00Z", "2024-07-02T22:00:00Z"),
    ];
    let k = majority(obs.clone(), cov.clone());
    assert_eq!(downtime(&k, "2024-07-01"), 1_200.0);
    assert_eq!(k.episodes.len(), 1);
    assert!(!k.episodes[0].cut);
    assert_eq!(k.episodes[0].ended_by.as_deref(), Some("b-r"));
    assert!(k.vantage_faults.is_empty());
    // With c, up, covering too: two of {a, b, c} down until a stops at 10:05, then one of
    // {b, c}: down [10:00, 10:05) 300 s, cut where a's run stopped; b alone after, a fault
    // [10:05, 10:20) of 900 s.
    cov.push(run("c", "2024-06-30T22:00:00Z", "2024-07-02T22:00:00Z"));
    obs.push(probe("c", "2024-07-01T10:10:00Z", "c-1", Some(200)));
    let k = majority(obs, cov);
    assert_eq!(downtime(&k, "2024-07-01"), 300.0);
    assert_eq!(k.episodes.len(), 1);
    assert!(k.episodes[0].cut && !k.episodes[0].open);
    assert_eq!(
        faults(&k),
        vec![("b".into(), ms("2024-07-01T10:05:00Z"), 900.0)]
    );
    // The day stays covered all along (b and c): 86 400 s.
    let day = k.days.iter().find(|d| d.date.to_string() == "2024-07-01");
    assert_eq!(day.unwrap().covered_s, 86_400.0);
}

#[test]
fn logs_reach_every_vantage() {
    // The gateway logs five failures from 10:00:00 and a reply at 10:10:00: the bank's side,
    // in both vantages' series: both down, 600 s of downtime, no fault.
    let mut obs: Vec<Observation> = (0..5)
        .map(|i| {
            log(
                &format!("2024-07-01T10:00:0{i}.000Z"),
                &format!("g{i}"),
                None,
            )
        })
        .collect();
    obs.push(log("2024-07-01T10:10:00Z", "g-r", Some(200)));
    // Interleaved: a fails at 11:00:00, :02, :04, the log at :01 and :03. a's series has five
    // failures in 4 s: down from 11:00:00; b's has the two logged ones only. The logged reply
    // at 11:00:40 ends a's episode: a fault of 40 s.
    for (i, s) in [0, 2, 4].iter().enumerate() {
        obs.push(probe(
            "a",
            &format!("2024-07-01T11:00:0{s}Z"),
            &format!("a{i}"),
            None,
        ));
    }
    obs.push(log("2024-07-01T11:00:01Z", "g5", None));
    obs.push(log("2024-07-01T11:00:03Z", "g6", None));
    obs.push(log("2024-07-01T11:00:40Z", "g7", Some(200)));
    let k = majority(obs, runs(&["a", "b"]));
    assert_eq!(downtime(&k, "2024-07-01"), 600.0);
    assert_eq!(k.episodes.len(), 1);
    assert_eq!(
        k.episodes[0].request_ids,
        vec!["g0", "g1", "g2", "g3", "g4"]
    );
    assert_eq!(
        faults(&k),
        vec![("a".into(), ms("2024-07-01T11:00:00Z"), 40.0)]
    );
}

#[test]
fn a_vantage_fault_across_midnight() {
    // a down from 21:50Z on 1 July (23:50 Paris) to 22:20Z (00:20 on 2 July), b fine: one
    // fault of 1 800 s, listed whole; neither day has downtime.
    let mut obs = five("a", "2024-07-01T21:50:0");
    obs.push(probe("a", "2024-07-01T22:20:00Z", "a-r", Some(200)));
    obs.push(probe("b", "2024-07-01T22:00:00Z", "b-1", Some(200)));
    let k = majority(obs, runs(&["a", "b"]));
    assert_eq!(downtime(&k, "2024-07-01"), 0.0);
    assert_eq!(downtime(&k, "2024-07-02"), 0.0);
    assert_eq!(
        faults(&k),
        vec![("a".into(), ms("2024-07-01T21:50:00Z"), 1_800.0)]
    );
}

#[test]
fn a_single_named_vantage_counts_as_before() {
    // The same data under one vantage named in its runs, or unnamed: the same figures, to the
    // digest; and a vantage that probed only before the loaded range does not count.
    let mut obs = five("a", "2024-07-01T10:00:0");
    obs.push(probe("a", "2024-07-01T10:10:00Z", "a-r", Some(200)));
    let named = majority(obs.clone(), runs(&["a"]));
    let mut unnamed = runs(&["a"]);
    unnamed[0].vantage = None;
    unnamed.push(run("z", "2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z"));
    let before = majority(obs.clone(), unnamed.clone());
    // A run named `monitor` (an older row's node, unknown) is the unnamed run's vantage.
    unnamed.push(run(
        Vantage::UNKNOWN_MONITOR,
        "2024-07-01T12:00:00Z",
        "2024-07-01T13:00:00Z",
    ));
    let same = majority(obs, unnamed);
    assert_eq!(downtime(&named, "2024-07-01"), 600.0);
    assert!(named.vantages.is_empty() && named.vantage_faults.is_empty());
    assert_eq!(
        super::tests_stream::digest(&named),
        super::tests_stream::digest(&before)
    );
    assert_eq!(
        super::tests_stream::digest(&same),
        super::tests_stream::digest(&before)
    );
}

#[test]
fn the_gateways_record_of_one_vantages_probe_counts_for_the_others() {
    // a probes five times from 10:00:00, each a 503 the gateway logs too (same request ids);
    // a's next probe at 10:01:00 is a 200, logged too. b does not probe meanwhile. a's series:
    // its five probes, down [10:00:00, 10:01:00). b's series: the gateway's five records (the
    // bank's side, seen from everywhere), down the same: 60 s of downtime, no fault.
    let mut obs = Vec::new();
    for i in 0..6 {
        let at = if i < 5 {
            format!("2024-07-01T10:00:0{i}Z")
        } else {
            "2024-07-01T10:01:00Z".into()
        };
        let status = if i < 5 { Some(503) } else { Some(200) };
        let id = format!("a{i}");
        obs.push(probe("a", &at, &id, status));
        obs.push(log(&at, &id, status));
    }
    obs.push(probe("b", "2024-07-01T09:59:00Z", "b1", Some(200)));
    obs.push(probe("b", "2024-07-01T10:02:00Z", "b2", Some(200)));
    let k = majority(obs, runs(&["a", "b"]));
    assert_eq!(downtime(&k, "2024-07-01"), 60.0);
    assert!(k.vantage_faults.is_empty(), "{:?}", k.vantage_faults);
    // Each request counted once in the day's figures: 6 of a, 2 of b.
    let day = k.days.iter().find(|d| d.date.to_string() == "2024-07-01");
    assert_eq!(day.unwrap().requests, 8);
}

/// What `dispo import` records for a probe file naming vantage `v`'s rows of 13807/api (issue
/// 15, review point c): that vantage's own coverage of the series, over the file's span.
fn imported(v: &str, a: &str, b: &str) -> CoverageSpan {
    CoverageSpan {
        kind: CoverageKind::Log,
        ..run(v, a, b)
    }
}
/// Both vantages imported over the whole local days 1 and 2 July, with no monitor run.
fn imported_only(vs: &[&str]) -> Vec<CoverageSpan> {
    vs.iter()
        .map(|v| imported(v, "2024-06-30T22:00:00Z", "2024-07-02T22:00:00Z"))
        .collect()
}

#[test]
fn imported_vantages_are_probing_vantages() {
    // The data of `one_vantage_cut_off_is_a_fault_not_downtime`, imported from one file naming
    // a and b, with no monitor run in the store. Counted as one merged series (a log), b's
    // reply at 10:00:02 (after a's failure of the same instant: request ids "a-..." < "b-1")
    // splits a's five failures into runs of three and two: nothing at all. As two vantages: a
    // fault of a for 600 s, as if they had been monitor runs.
    let mut obs = five("a", "2024-07-01T10:00:0");
    obs.push(probe("a", "2024-07-01T10:10:00Z", "a-r", Some(200)));
    obs.push(probe("b", "2024-07-01T10:00:02Z", "b-1", Some(200)));
    obs.push(probe("b", "2024-07-01T10:10:00Z", "b-2", Some(200)));
    let k = majority(obs.clone(), imported_only(&["a", "b"]));
    assert!(k.episodes.is_empty());
    assert_eq!(downtime(&k, "2024-07-01"), 0.0);
    assert_eq!(
        faults(&k),
        vec![("a".into(), ms("2024-07-01T10:00:00Z"), 600.0)]
    );
    let names: Vec<(&str, f64)> = k
        .vantages
        .iter()
        .map(|v| (v.vantage.as_str(), v.covered_s))
        .collect();
    assert_eq!(names, vec![("a", 172_800.0), ("b", 172_800.0)]);
    // The same file covered as a log (the gateway's side, what it was before): one series
    // whose run b's reply broke, so neither downtime nor fault.
    let mut as_log = imported_only(&["a"]);
    as_log[0].vantage = None;
    let merged = majority(obs.clone(), as_log);
    assert_eq!(downtime(&merged, "2024-07-01"), 0.0);
    assert!(merged.vantage_faults.is_empty() && merged.vantages.is_empty());
    // An imported vantage and a monitor run of another: two vantages all the same.
    let mixed = majority(
        obs,
        vec![
            imported("a", "2024-06-30T22:00:00Z", "2024-07-02T22:00:00Z"),
            run("b", "2024-06-30T22:00:00Z", "2024-07-02T22:00:00Z"),
        ],
    );
    assert_eq!(faults(&mixed), faults(&k));
}

#[test]
fn imported_vantages_both_down_is_downtime() {
    // `both_cut_off_is_downtime_on_the_overlap` from one imported file, no monitor run: a down
    // [10:00:00, 10:10:00), b [10:00:02, 10:05:00): 298 s of downtime on the overlap, a's 2 s
    // before and 300 s after are faults.
    let mut obs = five("a", "2024-07-01T10:00:0");
    obs.push(probe("a", "2024-07-01T10:10:00Z", "a-r", Some(200)));
    obs.extend((2..7).map(|i| {
        probe(
            "b",
            &format!("2024-07-01T10:00:0{i}.000Z"),
            &format!("b-{i}"),
            None,
        )
    }));
    obs.push(probe("b", "2024-07-01T10:05:00Z", "b-r", Some(200)));
    let k = majority(obs, imported_only(&["a", "b"]));
    assert_eq!(downtime(&k, "2024-07-01"), 298.0);
    assert_eq!(k.episodes.len(), 1);
    assert_eq!(k.episodes[0].id(), "13807-api-20240701T100002.000Z");
    assert_eq!(
        faults(&k),
        vec![
            ("a".into(), ms("2024-07-01T10:00:00Z"), 2.0),
            ("a".into(), ms("2024-07-01T10:05:00Z"), 300.0),
        ]
    );
}

#[test]
fn imported_rows_naming_no_vantage_stay_the_gateways() {
    // Beside a and b (imported), rows naming no vantage (`import`) and the file's log span:
    // the bank's side, in both vantages' series. Five of them fail from 11:00:00, one replies
    // at 11:01:00: both vantages down, 60 s of downtime, no fault.
    let mut obs: Vec<Observation> = (0..5)
        .map(|i| {
            probe(
                Vantage::IMPORTED,
                &format!("2024-07-01T11:00:0{i}Z"),
                &format!("i{i}"),
                None,
            )
        })
        .collect();
    obs.push(probe(
        Vantage::IMPORTED,
        "2024-07-01T11:01:00Z",
        "i-r",
        Some(200),
    ));
    obs.push(probe("a", "2024-07-01T10:00:00Z", "a-1", Some(200)));
    obs.push(probe("b", "2024-07-01T10:00:00Z", "b-1", Some(200)));
    let mut cov = imported_only(&["a", "b"]);
    let mut shared = imported("a", "2024-06-30T22:00:00Z", "2024-07-02T22:00:00Z");
    shared.vantage = None;
    shared.interface = None;
    cov.push(shared);
    let k = majority(obs, cov);
    assert_eq!(downtime(&k, "2024-07-01"), 60.0);
    assert!(k.vantage_faults.is_empty(), "{:?}", k.vantage_faults);
    assert_eq!(k.vantages.len(), 2);
}

/// A probe of vantage `v` with a reply timed `latency_ms`.
fn timed(v: &str, at: &str, rid: &str, status: u16, latency_ms: f64) -> Observation {
    Observation {
        latency_ms: Some(latency_ms),
        ..probe(v, at, rid, Some(status))
    }
}
fn day<'a>(k: &'a Kpis, date: &str) -> &'a DayFigures {
    k.days
        .iter()
        .find(|d| d.date.to_string() == date && d.interface == Interface::Api)
        .unwrap()
}
fn cbpii() -> Service {
    Service::new("cbpii").unwrap()
}

/// a: a reply at 09:59:00 (50 ms); five no-replies from 10:00:00; a reply at 10:10:00 of
/// 1 000 ms (completed 10:10:01: a's episode is [10:00:00, 10:10:01), 601 s); a reply at
/// 10:20:00 (70 ms). b replies at 10:00:00, 10:05:00 and 10:10:00 (100, 300, 200 ms). The
/// gateway logs a 503 at 10:03:00 (its own request). Twelve requests in all.
fn a_faulted_day() -> Vec<Observation> {
    let mut obs = vec![timed("a", "2024-07-01T09:59:00Z", "a-0", 200, 50.0)];
    obs.extend(five("a", "2024-07-01T10:00:0"));
    obs.push(timed("a", "2024-07-01T10:10:00Z", "a-r", 200, 1_000.0));
    obs.push(timed("a", "2024-07-01T10:20:00Z", "a-z", 200, 70.0));
    obs.push(timed("b", "2024-07-01T10:00:00Z", "b-1", 200, 100.0));
    obs.push(timed("b", "2024-07-01T10:05:00Z", "b-2", 200, 300.0));
    obs.push(timed("b", "2024-07-01T10:10:00Z", "b-3", 200, 200.0));
    obs.push(log("2024-07-01T10:03:00Z", "g-1", Some(503)));
    obs
}

#[test]
fn a_faulted_vantages_probes_count_in_no_public_figure() {
    let k = majority(a_faulted_day(), runs(&["a", "b"]));
    // a alone down: a fault of 601 s, no downtime. a's probes made during it, the five
    // no-replies and the reply that ended it (received 10:10:00, before 10:10:01), are set
    // aside: 6 of the 12 requests. The gateway's 503 at 10:03:00 stays (never set aside).
    assert_eq!(downtime(&k, "2024-07-01"), 0.0);
    assert_eq!(k.vantage_faults.len(), 1);
    let f = &k.vantage_faults[0];
    assert_eq!((f.vantage.as_str(), f.duration_s()), ("a", 601.0));
    assert_eq!(f.set_aside, 6);
    let d = day(&k, "2024-07-01");
    // Left: a-0, a-z, b-1, b-2, b-3 (probes), g-1 (the gateway's, a TPP's to the engine).
    assert_eq!(d.requests, 6);
    assert_eq!((d.probe_requests, d.tpp_requests), (5, 1));
    assert_eq!(d.requests_by_service.get(&cbpii()), Some(&6));
    assert_eq!(d.no_reply, 0);
    // One bank error (the 503) in 6: 16.666... %.
    assert_eq!(d.bank_errors, 1);
    assert!((d.error_rate_pct.unwrap() - 100.0 / 6.0).abs() < 1e-9);
    // Timed: 50, 70, 100, 200, 300 (a-r's 1 000 set aside): mean 720 / 5 = 144; nearest rank
    // p50 = 3rd = 100, p95 = p99 = 5th = 300.
    let l = d.latency[&cbpii()];
    assert_eq!(
        (l.replies, l.avg_ms, l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms),
        (5, 144.0, 100.0, 300.0, 300.0, 300.0)
    );
    // The period's response times (the publication's summary) leave it out too.
    assert_eq!(k.period_latency.len(), 1);
    assert_eq!(k.period_latency[0].stats, l);
    // Through the period replies' temporary file (none held in memory): the same figures.
    let settings = Settings::default();
    let period = Period {
        from: "2024-07-01".parse().unwrap(),
        to: "2024-07-03".parse().unwrap(),
    };
    let mut c =
        stream::Counter::with_reply_memory(period, &settings, runs(&["a", "b"]), 0).unwrap();
    let mut obs = a_faulted_day();
    obs.sort_by(|x, y| (x.received_at_ms, &x.request_id).cmp(&(y.received_at_ms, &y.request_id)));
    for o in obs {
        c.push(o).unwrap();
    }
    let spilled = c.finish().unwrap();
    assert_eq!(
        super::tests_stream::digest(&spilled),
        super::tests_stream::digest(&k)
    );

    // Policy "any": a alone is downtime, nothing is set aside: 12 requests, 5 no-replies, 6
    // timed replies (1 720 ms in all: mean 286.666...).
    let any = kpis(a_faulted_day(), runs(&["a", "b"]), VantageQuorum::Any);
    assert_eq!(downtime(&any, "2024-07-01"), 601.0);
    let d = day(&any, "2024-07-01");
    assert_eq!((d.requests, d.no_reply), (12, 5));
    let l = d.latency[&cbpii()];
    assert_eq!(l.replies, 6);
    assert!((l.avg_ms - 1_720.0 / 6.0).abs() < 1e-9);
}

#[test]
fn probes_set_aside_across_midnight() {
    // a down from 21:50:00Z on 1 July (23:50 Paris) to its reply at 22:20:00Z (00:20 on
    // 2 July) of 500 ms: a fault [21:50:00, 22:20:00.500), 1 800.5 s. It fails again at 22:10
    // (2 July). b replies at 21:45 (10 ms) and 22:05 (30 ms).
    let mut obs = five("a", "2024-07-01T21:50:0");
    obs.push(probe("a", "2024-07-01T22:10:00Z", "a-6", None));
    obs.push(timed("a", "2024-07-01T22:20:00Z", "a-r", 200, 500.0));
    obs.push(timed("b", "2024-07-01T21:45:00Z", "b-1", 200, 10.0));
    obs.push(timed("b", "2024-07-01T22:05:00Z", "b-2", 200, 30.0));
    let k = majority(obs, runs(&["a", "b"]));
    assert_eq!(
        faults(&k),
        vec![("a".into(), ms("2024-07-01T21:50:00Z"), 1_800.5)]
    );
    assert_eq!(k.vantage_faults[0].set_aside, 7);
    // 1 July: a's five and b-1: only b-1 left, its 10 ms.
    let d1 = day(&k, "2024-07-01");
    assert_eq!((d1.requests, d1.no_reply), (1, 0));
    assert_eq!(d1.latency[&cbpii()].avg_ms, 10.0);
    // 2 July: a-6, a-r and b-2: only b-2 left, its 30 ms (a-r's 500 set aside).
    let d2 = day(&k, "2024-07-02");
    assert_eq!((d2.requests, d2.no_reply), (1, 0));
    assert_eq!(d2.latency[&cbpii()].replies, 1);
    assert_eq!(d2.latency[&cbpii()].avg_ms, 30.0);
    // Over the period: 10 and 30.
    assert_eq!(k.period_latency[0].stats.replies, 2);
    assert_eq!(k.period_latency[0].stats.avg_ms, 20.0);
}

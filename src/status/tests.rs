//! The page model with hand-worked figures.

use super::*;
use crate::domain::{CoverageKind, CoverageSpan, Observation, Outcome, Source, Vantage};
use crate::engine::EngineInput;
use crate::report::Lang;

fn ms(rfc: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc)
        .unwrap()
        .timestamp_millis()
}

fn code(c: &str) -> EstablishmentCode {
    c.parse().unwrap()
}

fn obs(at: &str, service: &str, status: Option<u16>, latency: f64, id: &str) -> Observation {
    Observation {
        received_at_ms: ms(at),
        establishment: code("13807"),
        interface: Interface::Api,
        service: Service::new(service).unwrap(),
        source: Source::Probe,
        tpp: Some("PSDFR-ACPR-SECRET".into()),
        status,
        latency_ms: status.map(|_| latency),
        error_code: None,
        request_id: id.into(),
        outcome: Outcome::from_reply(status, None),
        vantage: crate::domain::Vantage::imported(Source::Probe),
    }
}

fn monitor(start: &str, end: &str, ongoing: bool) -> CoverageSpan {
    CoverageSpan {
        kind: CoverageKind::Monitor,
        establishment: Some(code("13807")),
        interface: Some(Interface::Api),
        start_ms: ms(start),
        end_ms: ms(end),
        ongoing,
        vantage: None,
    }
}

/// Monitored from 04:00Z, five failures from 08:00:00Z (5 s apart), a reply at 08:10:00Z
/// completing 100 ms later: one episode of 600.1 s. Now is 10:00Z on the quarter's first day
/// (12:00 in Paris, 12 h after its local midnight).
fn first_day() -> (EngineInput, i64) {
    let mut o = vec![
        obs("2026-10-01T07:00:00Z", "cbpii", Some(200), 200.0, "a"),
        obs("2026-10-01T07:00:01Z", "token", Some(200), 50.0, "t"),
    ];
    for (k, s) in ["00", "05", "10", "15", "20"].iter().enumerate() {
        o.push(obs(
            &format!("2026-10-01T08:00:{s}Z"),
            "cbpii",
            None,
            0.0,
            &format!("f{k}"),
        ));
    }
    o.push(obs("2026-10-01T08:10:00Z", "cbpii", Some(200), 100.0, "b"));
    let now = ms("2026-10-01T10:00:00Z");
    (
        EngineInput {
            observations: o,
            coverage: vec![monitor(
                "2026-10-01T04:00:00Z",
                "2026-10-01T10:00:00Z",
                true,
            )],
        },
        now,
    )
}

fn quarter_snapshot() -> QuarterSnapshot {
    let (input, now) = first_day();
    let period = Period {
        from: chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
        to: chrono::NaiveDate::from_ymd_opt(2026, 10, 2).unwrap(),
    };
    let k = crate::engine::compute(&input, period, &Settings::default()).unwrap();
    QuarterSnapshot::from_kpis(&k, now, false)
}

#[test]
fn the_quarter_to_date_is_the_engine_s_figures_over_the_time_elapsed() {
    let q = quarter_snapshot();
    let f = &q.figures[&(code("13807"), Interface::Api)];
    // 600.1 s down of 6 h covered; 6 h covered of the 12 h since the quarter began.
    let up = f.uptime_pct.unwrap();
    assert!((up - 97.221_759_259_259_26).abs() < 1e-9, "{up}");
    assert_eq!(f.coverage_pct, Some(50.0));
    // Successful replies only (200 and 100 ms), the token endpoint left out.
    assert_eq!(f.avg_ms.len(), 1);
    assert_eq!(f.avg_ms[&Service::new("cbpii").unwrap()], 150.0);
    assert_eq!(q.episodes.len(), 1);
    assert_eq!(q.episodes[0].start_ms, ms("2026-10-01T08:00:00Z"));
    assert_eq!(q.episodes[0].end_ms, ms("2026-10-01T08:10:00.100Z"));
}

fn series(cov: Vec<(i64, i64)>, open_end: Vec<bool>, episodes: Vec<Episode>) -> LiveSeries {
    LiveSeries {
        coverage: SeriesCoverage {
            spans: cov,
            open_end,
        },
        episodes,
    }
}

fn episode(start: i64, end: i64, open: bool) -> Episode {
    Episode {
        establishment: code("13807"),
        interface: Interface::Api,
        start_ms: start,
        end_ms: end,
        open,
        cut: false,
        began_before_period: false,
        request_ids: vec!["req-secret-1".into()],
        ended_by: Some("req-secret-2".into()),
        planned_s: 0.0,
    }
}

#[test]
fn the_state_now_follows_the_live_window() {
    let now = 1_000_000_000;
    assert_eq!(State::of(None, now), State::Unmonitored { since_ms: None });
    // Covered up to now, no episode open: up.
    let up = series(vec![(now - 60_000, now)], vec![true], vec![]);
    assert_eq!(State::of(Some(&up), now), State::Up);
    // An open episode: down since its start.
    let down = series(
        vec![(now - 60_000, now)],
        vec![true],
        vec![episode(now - 20_000, now, true)],
    );
    assert_eq!(
        State::of(Some(&down), now),
        State::Down {
            since_ms: now - 20_000
        }
    );
    // The monitor stopped 10 s ago (coverage cut there): unmonitored since then.
    let stopped = series(vec![(now - 60_000, now - 10_000)], vec![false], vec![]);
    assert_eq!(
        State::of(Some(&stopped), now),
        State::Unmonitored {
            since_ms: Some(now - 10_000)
        }
    );
    // A followed log whose last line is 100 s old still covers now; 130 s old, no more.
    let log = |age| series(vec![(now - 600_000, now - age)], vec![true], vec![]);
    assert_eq!(State::of(Some(&log(100_000)), now), State::Up);
    assert_eq!(
        State::of(Some(&log(130_000)), now),
        State::Unmonitored {
            since_ms: Some(now - 130_000)
        }
    );
}

fn scope() -> Scope {
    Scope {
        establishments: vec![(code("16807"), "<b>Aura</b>".into())],
        series: [(code("16807"), Interface::Api)].into(),
        settings: Settings {
            maintenance: vec![crate::engine::MaintenanceWindow {
                weekday: chrono::Weekday::Sun,
                start: chrono::NaiveTime::from_hms_opt(2, 0, 0).unwrap(),
                end: chrono::NaiveTime::from_hms_opt(6, 0, 0).unwrap(),
                establishments: vec![],
            }],
            ..Settings::default()
        },
    }
}

#[test]
fn the_page_merges_the_quarter_and_the_live_window() {
    let q = quarter_snapshot();
    // Now: Thursday 1 October 2026, 12:00 in Paris. The live window from 11:45 shows 13807
    // down since 11:50 (09:50Z).
    let now = ms("2026-10-01T10:00:00Z");
    let from = service::live_from(&q, now, 30_000);
    assert_eq!(from, now - service::LIVE_WINDOW_MS);
    let open = episode(ms("2026-10-01T09:50:00Z"), now, true);
    let live = LiveSnapshot {
        from_ms: from,
        computed_at_ms: now,
        series: [(
            (code("13807"), Interface::Api),
            series(vec![(from, now)], vec![true], vec![open]),
        )]
        .into(),
        synthetic: false,
    };
    let page = build(&scope(), &q, &live, now, Some(30));
    // The configuration's establishment first (no data: unmonitored), then the data's.
    let codes: Vec<&str> = page
        .establishments
        .iter()
        .map(|e| e.code.as_str())
        .collect();
    assert_eq!(codes, ["16807", "13807"]);
    assert_eq!(
        page.establishments[0].interfaces[0].state,
        State::Unmonitored { since_ms: None }
    );
    let e = &page.establishments[1];
    assert_eq!(
        e.name, "BPGO",
        "the bank's short name when none is configured"
    );
    assert_eq!(
        e.interfaces[0].state,
        State::Down {
            since_ms: ms("2026-10-01T09:50:00Z")
        }
    );
    assert_eq!(e.interfaces[0].episodes, 2);
    // The open one first, then the closed one of the quarter.
    let starts: Vec<(i64, Option<i64>)> =
        e.episodes.iter().map(|x| (x.start_ms, x.end_ms)).collect();
    assert_eq!(
        starts,
        [
            (ms("2026-10-01T09:50:00Z"), None),
            (
                ms("2026-10-01T08:00:00Z"),
                Some(ms("2026-10-01T08:10:00.100Z"))
            )
        ]
    );
    // Sunday 4 October 02:00-06:00 in Paris (summer time: 00:00-04:00Z).
    assert_eq!(
        e.maintenance,
        [(ms("2026-10-04T00:00:00Z"), ms("2026-10-04T04:00:00Z"))]
    );

    // An episode of the quarter still open when it was computed widens the live window back
    // to its start, so the window never begins inside a failure run.
    let mut q2 = q.clone();
    q2.episodes
        .push(episode(now - 3_600_000, now - 60_000, true));
    assert_eq!(service::live_from(&q2, now, 30_000), now - 3_600_000);
}

#[test]
fn public_outputs_carry_no_tpp_no_request_id_and_escape_names() {
    let q = quarter_snapshot();
    let now = ms("2026-10-01T10:00:00Z");
    let live = LiveSnapshot {
        from_ms: now - service::LIVE_WINDOW_MS,
        computed_at_ms: now,
        ..LiveSnapshot::default()
    };
    let page = build(&scope(), &q, &live, now, Some(30));
    let json = json::to_json(&page);
    let text = json.to_string();
    let html = html::render(&page, Lang::Fr, json["revision"].as_str().unwrap());
    let feed = atom::render(&page, Lang::En);
    for out in [&text, &html, &feed] {
        for secret in ["PSDFR", "req-secret", "level", "vigilance", "notice"] {
            assert!(!out.contains(secret), "{secret} in {out}");
        }
    }
    assert!(html.contains("&lt;b&gt;Aura&lt;/b&gt;") && !html.contains("<b>Aura"));
    assert!(html.starts_with("<!DOCTYPE html><html lang=\"fr\">"));
    assert!(html.contains("<noscript><meta http-equiv=\"refresh\" content=\"30\"></noscript>"));
    assert!(html.contains("fetch('status.json'"));
    assert!(
        html.contains("01/10/2026 10:00:00 UTC+02:00"),
        "Paris time with its offset"
    );
    assert_eq!(
        json["establishments"][1]["episodes"][0]["start"],
        "2026-10-01T10:00:00+02:00"
    );
    assert_eq!(
        json["establishments"][1]["episodes"][0]["duration_s"],
        600.1
    );
    assert!(feed.contains("<title>13807 BPGO — Dedicated interface (API): unavailable from 2026-10-01 10:00:00 UTC+02:00 to 2026-10-01 10:10:00 UTC+02:00</title>"), "{feed}");

    // The revision follows the content, not the clock.
    let later = build(
        &scope(),
        &q,
        &LiveSnapshot {
            computed_at_ms: now + 5_000,
            ..live.clone()
        },
        now + 5_000,
        Some(30),
    );
    let j2 = json::to_json(&later);
    assert_ne!(j2["generated_at"], json["generated_at"]);
    assert_eq!(j2["revision"], json["revision"]);
    // A one-off page has no refresh and no script.
    let once = build(&scope(), &q, &live, now, None);
    let h = html::render(&once, Lang::En, "x");
    assert!(!h.contains("http-equiv") && !h.contains("<script"));
    assert!(h.contains("lang=\"en\"") && h.contains("Unmonitored"));
}

fn fault(v: &str, start: i64, end: i64) -> VantageFault {
    VantageFault {
        establishment: code("13807"),
        interface: Interface::Api,
        vantage: Vantage::new(v).unwrap(),
        start_ms: start,
        end_ms: end,
        set_aside: 0,
    }
}

#[test]
fn with_several_vantages_the_live_window_reaches_back_to_each_vantage_s_episode() {
    // Section 10: a in an episode from 09:30 to 09:55, b from 09:40 to 09:45: down (two of
    // two) 09:40-09:45, a's faults 09:30-09:40 and 09:45-09:55. Now 10:00: the window would
    // start at 09:45 (15 min back); a's fault 09:45-09:55 ends inside it, so from 09:45; the
    // episode ends there (touching), so from 09:40; a's first fault ends there, so from 09:30,
    // where a's episode began: the window sees it whole, and the quorum where kpi does.
    let now = ms("2026-10-01T10:00:00Z");
    let mut q = quarter_snapshot();
    q.computed_at_ms = now;
    q.episodes = vec![episode(
        ms("2026-10-01T09:40:00Z"),
        ms("2026-10-01T09:45:00Z"),
        false,
    )];
    q.vantage_faults = vec![
        fault("a", ms("2026-10-01T09:30:00Z"), ms("2026-10-01T09:40:00Z")),
        fault("a", ms("2026-10-01T09:45:00Z"), ms("2026-10-01T09:55:00Z")),
    ];
    assert_eq!(
        service::live_from(&q, now, 30_000),
        ms("2026-10-01T09:30:00Z")
    );
    // One vantage (no fault): as before, an episode ending where the window starts is left
    // to the quarter.
    q.vantage_faults.clear();
    assert_eq!(
        service::live_from(&q, now, 30_000),
        now - service::LIVE_WINDOW_MS
    );
}

#[test]
fn the_page_says_from_how_many_vantage_points_never_which() {
    let mut q = quarter_snapshot();
    let now = ms("2026-10-01T10:00:00Z");
    let live = LiveSnapshot {
        from_ms: now - service::LIVE_WINDOW_MS,
        computed_at_ms: now,
        ..LiveSnapshot::default()
    };
    // One vantage: nothing said (the page as it always was).
    let one = build(&scope(), &q, &live, now, None);
    let j = json::to_json(&one);
    assert!(j.get("vantage_points").is_none(), "{j}");
    assert!(!html::render(&one, Lang::En, "x").contains("vantage points"));
    // Three: the count, in the JSON and the page's footer (the faults stay out of both).
    q.vantage_points = 3;
    q.vantage_faults = vec![fault("paris-dc1", now - 60_000, now)];
    let three = build(&scope(), &q, &live, now, None);
    let j = json::to_json(&three);
    assert_eq!(j["vantage_points"], 3);
    let h = html::render(&three, Lang::En, "x");
    assert!(h.contains("<p>Measured from 3 vantage points (distinct monitoring nodes)"));
    for out in [j.to_string(), h, atom::render(&three, Lang::En)] {
        assert!(!out.contains("paris-dc1"), "{out}");
    }
}

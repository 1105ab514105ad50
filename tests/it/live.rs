//! Live equals batch (methodology section 8): a recorded day replayed through the live path (the
//! daemon's ordered hand-off, then the live detector), its requests ending out of order as real
//! ones do, gives the episodes `dispo kpi` gives, id by id, with the same ends.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use dispo::domain::{Interface, Observation, Outcome, Service, Source};
use dispo::probe::order::{Observers, Sequencer};
use dispo::store::{Store, StoredObservation};
use serde_json::Value;
use sqlx::Row;

use crate::support;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dispo-it-live-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A deterministic pseudo-random sequence (no seed file, no crate).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One recorded request: the observation and when the request ended (its observation known).
struct Recorded {
    obs: StoredObservation,
    ended_ms: i64,
}

struct Day {
    rng: Lcg,
    rows: Vec<Recorded>,
}

impl Day {
    /// A request of `est`/`iface` sent at `at`: `status` None is no reply, ending `ends_after`
    /// ms later (a time-out ends 30 s later, a refusal at once).
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        est: &str,
        iface: Interface,
        at: i64,
        outcome: Outcome,
        status: Option<u16>,
        latency: Option<f64>,
        ends_after: i64,
    ) {
        let id = format!("{:016x}", self.rng.next() << 20 | self.rng.next());
        let service = if iface == Interface::Api {
            Service::CBPII
        } else {
            Service::PSU_LOGIN
        };
        let obs = Observation {
            received_at_ms: at,
            establishment: est.parse().unwrap(),
            interface: iface,
            service: Service::new(service).unwrap(),
            source: Source::Probe,
            tpp: Some("PSDFR-ACPR-12345".into()),
            status,
            latency_ms: latency,
            error_code: None,
            request_id: id.as_str().into(),
            outcome,
            vantage: dispo::domain::Vantage::new("sandbox").unwrap(),
        };
        self.rows.push(Recorded {
            obs: obs.into(),
            ended_ms: at + ends_after,
        });
    }

    fn ok(&mut self, est: &str, iface: Interface, at: i64, ms: i64) {
        self.push(est, iface, at, Outcome::Ok, Some(200), Some(ms as f64), ms);
    }
    fn hang(&mut self, est: &str, iface: Interface, at: i64) {
        self.push(est, iface, at, Outcome::NoReply, None, None, 30_000);
    }
    fn refused(&mut self, est: &str, iface: Interface, at: i64) {
        self.push(est, iface, at, Outcome::NoReply, None, None, 3);
    }
    fn error503(&mut self, est: &str, iface: Interface, at: i64) {
        self.push(
            est,
            iface,
            at,
            Outcome::AspspError,
            Some(503),
            Some(40.0),
            40,
        );
    }
    fn probe_error(&mut self, est: &str, iface: Interface, at: i64) {
        self.push(est, iface, at, Outcome::ProbeError, None, None, 0);
    }

    /// One scene of trouble from `t`; returns when the normal schedule resumes.
    fn scene(&mut self, kind: u64, est: &str, i: Interface, t: i64) -> i64 {
        match kind {
            // A hang: bursts every 5 s, each timing out 30 s later, for 2.5 minutes.
            0 => {
                for k in 0..30 {
                    self.hang(est, i, t + k * 5_000);
                }
                self.ok(est, i, t + 150_000, 300);
                t + 160_000
            }
            // Refused connections for a minute.
            1 => {
                for k in 0..12 {
                    self.refused(est, i, t + k * 5_000);
                }
                self.ok(est, i, t + 60_000, 150);
                t + 70_000
            }
            // 503s every 3 s for 30 s.
            2 => {
                for k in 0..10 {
                    self.error503(est, i, t + k * 3_000);
                }
                self.ok(est, i, t + 30_000, 120);
                t + 40_000
            }
            // The case: a slow success sent just before refusals ends amid them (live
            // in completion order would close the episode there and open another).
            3 => {
                self.ok(est, i, t, 15_000);
                for k in 1..=5 {
                    self.refused(est, i, t + k * 1_000);
                }
                for k in 2..12 {
                    self.refused(est, i, t + k * 5_000);
                }
                self.ok(est, i, t + 60_000, 200);
                t + 70_000
            }
            // An outage with the monitor's own error in the middle: a gap in coverage cuts the
            // episode; the failures after it need their own five.
            4 => {
                for k in 0..6 {
                    self.refused(est, i, t + k * 5_000);
                }
                self.probe_error(est, i, t + 30_000);
                for k in 0..6 {
                    self.refused(est, i, t + 35_000 + k * 5_000);
                }
                self.ok(est, i, t + 70_000, 250);
                t + 80_000
            }
            // Failures that never make five within 30 s: no episode.
            5 => {
                for k in 0..5 {
                    self.hang(est, i, t + k * 8_000);
                }
                self.ok(est, i, t + 40_000, 200);
                t + 50_000
            }
            // Slow answers (12 s) sent every 5 s, one hang among them: no episode.
            _ => {
                for k in 0..12 {
                    if k == 5 {
                        self.hang(est, i, t + k * 5_000);
                    } else {
                        self.ok(est, i, t + k * 5_000, 12_000);
                    }
                }
                t + 70_000
            }
        }
    }
}

/// A day of probes every 10 s on two establishments' API and customer page, with a scene of
/// trouble every hour per series, occasional blips, rejections and slow answers.
fn recorded_day(from: i64) -> Vec<Recorded> {
    let mut day = Day {
        rng: Lcg(12),
        rows: Vec::new(),
    };
    let end = from + 86_400_000 - 120_000;
    for (e, est) in ["13807", "10807"].into_iter().enumerate() {
        for (f, iface) in [Interface::Api, Interface::PsuWeb].into_iter().enumerate() {
            let mut t = from + 1_000 * (e as i64 * 2 + f as i64) + 7;
            let mut hour_done = -1;
            while t < end {
                let hour = (t - from) / 3_600_000;
                let minute = (t - from) % 3_600_000 / 60_000;
                if hour != hour_done && minute >= 17 {
                    hour_done = hour;
                    let kind = (hour as u64 + e as u64 * 3 + f as u64) % 7;
                    t = day.scene(kind, est, iface, t);
                    continue;
                }
                match day.rng.below(200) {
                    0 => day.hang(est, iface, t),
                    1 => day.refused(est, iface, t),
                    2 => {
                        let ms = 5_000 + day.rng.below(25_000) as i64;
                        day.ok(est, iface, t, ms);
                    }
                    3..=5 => day.push(est, iface, t, Outcome::Rejected, Some(400), Some(90.0), 90),
                    _ => {
                        let ms = 80 + day.rng.below(300) as i64;
                        day.ok(est, iface, t, ms);
                    }
                }
                t += 10_000;
            }
            day.ok(est, iface, end + 30_000, 100);
        }
    }
    day.rows
}

fn ms(rfc: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc.as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

support::on_both_async!(a_recorded_day_through_the_live_path_gives_kpis_episodes);

async fn a_recorded_day_through_the_live_path_gives_kpis_episodes(b: support::Backend) {
    support::init();
    let dir = tmp(&format!("day-{b:?}"));
    // Tuesday 5 November 2024, Paris: 23:00 UTC the day before to 23:00 UTC.
    let from = 1_730_761_200_000;
    let rows = recorded_day(from);
    let db = b.db(&dir, "day.db");
    let store = support::open_store(&db).await;
    let obs: Vec<StoredObservation> = rows.iter().map(|r| r.obs.clone()).collect();
    store.insert_observations(&obs[..]).await.unwrap();
    let series: Vec<_> = ["13807", "10807"]
        .iter()
        .flat_map(|e| [Interface::Api, Interface::PsuWeb].map(|i| (e.parse().unwrap(), i)))
        .collect();
    store
        .record_monitor_run("recorded", &series, from, from + 86_400_000, "end of day")
        .await
        .unwrap();

    // The batch: `dispo kpi` over the day.
    let out = Command::new(support::dispo_bin())
        .args([
            "kpi",
            "--from",
            "2024-11-05",
            "--to",
            "2024-11-06",
            "--format",
            "json",
            "--db",
        ])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kpi: Value = serde_json::from_slice(&out.stdout).unwrap();
    let batch: BTreeMap<String, (i64, i64, bool)> = kpi["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_owned(),
                (ms(&e["start"]), ms(&e["end"]), e["cut"].as_bool().unwrap()),
            )
        })
        .collect();

    // The live path: requests announced when sent, their observations handed over when they
    // end (out of order), then the live detector, alerting into its own store.
    let live_db = b.db(&dir, "live.db");
    let live_store = support::open_store(&live_db).await;
    let cfg_path = dir.join("p.toml");
    std::fs::write(&cfg_path, "[monitor]\nid = \"replay\"\n").unwrap();
    let cfg = dispo::config::load(&cfg_path).unwrap();
    let mut observers = Observers::default();
    let rx = observers.subscribe();
    let live = tokio::spawn(dispo::alert::live::run(live_store.clone(), cfg, rx, from));
    let (seq, handoff) = Sequencer::start(observers);
    // Events: (instant, 0 = sent / 1 = ended, row).
    let mut events: Vec<(i64, u8, usize)> = rows
        .iter()
        .enumerate()
        .flat_map(|(k, r)| [(r.obs.obs.received_at_ms, 0, k), (r.ended_ms, 1, k)])
        .collect();
    events.sort_unstable();
    let mut tickets: Vec<Option<_>> = (0..rows.len()).map(|_| None).collect();
    let mut out_of_order = 0;
    let mut last_sent = BTreeMap::new();
    for (_, what, k) in events {
        let o = &rows[k].obs.obs;
        let s = (o.establishment, o.interface);
        if what == 0 {
            tickets[k] = Some(seq.begin_at(s, o.received_at_ms));
        } else {
            if last_sent.get(&s).is_some_and(|&t| t > o.received_at_ms) {
                out_of_order += 1;
            }
            last_sent.insert(s, o.received_at_ms);
            seq.done(tickets[k].take(), vec![rows[k].obs.clone()]).await;
        }
    }
    drop(seq);
    handoff.await.unwrap();
    live.await.unwrap();
    assert!(
        out_of_order > 100,
        "requests ended out of order: {out_of_order}"
    );

    let alerts: BTreeMap<String, (i64, Option<i64>)> = sqlx::query(
        "SELECT key, starts_at, ends_at FROM alerts WHERE kind = 'interface_down' ORDER BY key",
    )
    .fetch_all(live_store.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), (r.get(1), r.get(2))))
    .collect();
    assert!(batch.len() >= 40, "episodes of the day: {}", batch.len());
    assert!(
        batch.values().any(|e| e.2),
        "a gap in coverage cut an episode"
    );
    let batch_ids: Vec<&String> = batch.keys().collect();
    let live_ids: Vec<&String> = alerts.keys().collect();
    assert_eq!(live_ids, batch_ids, "the same episodes, id by id");
    for (id, (start, end, _)) in &batch {
        assert_eq!(
            alerts[id],
            (*start, Some(*end)),
            "{id}: live start and end against kpi's"
        );
    }
}

#[tokio::test]
async fn a_gateway_log_copy_of_a_probe_counts_once_live_as_in_kpi() {
    support::init();
    let dir = tmp("copies");
    let pki = crate::sim_support::shared_pki();
    let from = 1_730_800_800_000; // 2024-11-05T10:00:00Z
    // Three refusals of the monitor's probes, 5 s apart, each also in the gateway's log (same
    // request id, the monitor's client id, 20 ms later): three requests, not six, so no
    // episode. Then five more, with their copies: one episode.
    let mut day = Day {
        rng: Lcg(3),
        rows: Vec::new(),
    };
    let i = Interface::Api;
    day.ok("13807", i, from, 100);
    for k in 0..3 {
        day.refused("13807", i, from + 10_000 + k * 5_000);
    }
    day.ok("13807", i, from + 30_000, 100);
    for k in 0..5 {
        day.refused("13807", i, from + 60_000 + k * 5_000);
    }
    day.ok("13807", i, from + 90_000, 100);
    let probes: Vec<StoredObservation> = day.rows.iter().map(|r| r.obs.clone()).collect();
    let mut all = probes.clone();
    for p in probes.iter().filter(|p| p.obs.outcome == Outcome::NoReply) {
        let mut copy = p.obs.clone();
        copy.source = Source::Log;
        copy.received_at_ms += 20;
        all.push(copy.into());
    }
    all.sort_by_key(|o| (o.obs.received_at_ms, o.obs.request_id.clone()));
    let db = dir.join("d.db");
    let store = Store::open(&db).await.unwrap();
    store.insert_observations(&all[..]).await.unwrap();
    let series = [("13807".parse().unwrap(), i)];
    store
        .record_monitor_run("m", &series, from - 1_000, from + 100_000, "end")
        .await
        .unwrap();
    let out = Command::new(support::dispo_bin())
        .args(["kpi", "--from", "2024-11-05", "--to", "2024-11-06"])
        .args(["--format", "json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success());
    let kpi: Value = serde_json::from_slice(&out.stdout).unwrap();
    let batch: Vec<&str> = kpi["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(batch, ["13807-api-20241105T100100.000Z"]);

    // Live: this monitor probes 13807's API with client id PSDFR-ACPR-12345.
    let cfg_path = dir.join("p.toml");
    std::fs::write(
        &cfg_path,
        format!(
            "[monitor]\nid = \"m\"\n{}\n[[probe]]\nname = \"v142\"\nstep = \"funds-confirmation\"\n\
             schedule = \"* * * * *\"\nstet = \"1.4.2\"\niban = \"FR7613807008043001965405255\"\n",
            dispo::sim::pki::probe_establishment_toml("13807", 8443, &pki)
        ),
    )
    .unwrap();
    let cfg = dispo::config::load(&cfg_path).unwrap();
    let live_store = Store::open(&dir.join("live.db")).await.unwrap();
    let mut observers = Observers::default();
    let rx = observers.subscribe();
    let live = tokio::spawn(dispo::alert::live::run(
        live_store.clone(),
        cfg,
        rx,
        from - 1_000,
    ));
    let (seq, handoff) = Sequencer::start(observers);
    for o in all {
        seq.done(None, vec![o]).await;
    }
    drop(seq);
    handoff.await.unwrap();
    live.await.unwrap();
    let keys: Vec<String> =
        sqlx::query("SELECT key FROM alerts WHERE kind = 'interface_down' ORDER BY key")
            .fetch_all(live_store.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
    assert_eq!(keys, batch);
}

//! Gateway logs followed live by `dispo run` (`[[source]]` in the probe configuration): the
//! traffic of every TPP, as the gateway logs it, stored as `dispo import` stores it and fed to
//! the same live detector as the probes, so an outage only TPPs see (AIS, PIS) is alerted.
//!
//! In: [`Source`]s (path, format, mapping). Out: rows in the store and batches of
//! [`StoredObservation`] on a channel, for the live detector.
//!
//! Per source, one task: [`tail::Tail`] reads complete lines like `tail -F` (rotation,
//! truncation); [`LineParser`] parses them with the import's readers (same mapping, bounds,
//! outcome rule); the rows land ([`Store::insert_observations`], which skips rows already
//! present), then, in one transaction, the coverage span of the source per series is extended
//! and the position saved ([`store`]). A restart resumes at the saved position: a crash between
//! the two writes reads the last rows again, which the store skips; nothing is skipped.
//!
//! Order for the detector: a gateway writes a line when the request ends, so a hung request is
//! logged after requests that began later. Rows are held until `hold` has passed since they began
//! (a request lasts at most the gateway's time-out), then handed over sorted by (`received_at`,
//! `request_id`): the order of the methodology (section 8), which the batch figures use. A request
//! logged later than that is handed over at once. A request id seen in the last ten minutes (a
//! second gateway node's log of it) is handed over once, and the monitor's own probes (their TPP
//! is the client id of an establishment this configuration probes) not at all: the detector has
//! them from the probes (the store keeps both copies; the figures count the request once).

pub mod store;
pub mod tail;

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::domain::{CompactString, EstablishmentCode};
use crate::import::Format;
use crate::import::Row;
use crate::import::bounds::Bounds;
use crate::import::lines::LineParser;
use crate::import::mapping::Mapping;
use crate::store::{Store, StoredObservation};
use store::Saved;
use tail::{Event, Tail};

/// A followed gateway log (`[[source]]`).
#[derive(Debug, Clone)]
pub struct Source {
    /// Names its saved position and coverage (default: the path as written).
    pub name: String,
    pub path: PathBuf,
    pub format: Format,
    /// Required for JSON lines.
    pub mapping: Option<Mapping>,
    /// How long after it began a request is handed to the detector (its logging waits for the
    /// end); at least the gateway's upstream time-out for live detection to equal the batch.
    pub hold: Duration,
    /// How often the file is looked at when nothing new came.
    pub poll: Duration,
    /// With no saved position: read what the file already holds (`from = "start"`), or only what
    /// is added (`"end"`, default, as `tail -F`).
    pub from_start: bool,
}

/// Request ids recently handed over, across sources.
#[derive(Default)]
struct Recent {
    /// The monitor's own client ids per establishment it probes.
    own: HashSet<(EstablishmentCode, String)>,
    seen: HashSet<(EstablishmentCode, CompactString)>,
    order: VecDeque<(i64, (EstablishmentCode, CompactString))>,
}

const RECENT_MS: i64 = 10 * 60_000;

impl Recent {
    /// Whether this request is new (and remembers it), and not one of the monitor's probes.
    fn first(&mut self, o: &StoredObservation, now: i64) -> bool {
        if let Some(t) = &o.obs.tpp
            && self.own.contains(&(o.obs.establishment, t.to_string()))
        {
            return false;
        }
        while let Some((t, _)) = self.order.front() {
            if now - t <= RECENT_MS {
                break;
            }
            if let Some((_, k)) = self.order.pop_front() {
                self.seen.remove(&k);
            }
        }
        let k = (o.obs.establishment, o.obs.request_id.clone());
        if self.seen.insert(k.clone()) {
            self.order.push_back((now, k));
            true
        } else {
            false
        }
    }
}

/// Follows every source until `stop` turns true, then reads what is left and hands over what
/// it holds. Returns how many rows were read (landed or already present). Rows of the TPPs in
/// `own` (establishment, client id: the monitor's own probes) are stored, not handed over.
pub async fn run(
    store: Store,
    sources: Vec<Source>,
    max_latency_s: f64,
    own: HashSet<(EstablishmentCode, String)>,
    out: mpsc::Sender<Vec<StoredObservation>>,
    stop: watch::Receiver<bool>,
) -> u64 {
    let recent = Arc::new(Mutex::new(Recent {
        own,
        ..Default::default()
    }));
    let mut set = tokio::task::JoinSet::new();
    for s in sources {
        set.spawn(follow(
            store.clone(),
            s,
            max_latency_s,
            out.clone(),
            stop.clone(),
            recent.clone(),
        ));
    }
    drop(out);
    let mut n = 0;
    while let Some(r) = set.join_next().await {
        n += r.unwrap_or(0);
    }
    n
}

/// Following started by `dispo run`: [`Following::stop`] reads what is left and ends it.
pub struct Following {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<u64>,
}

impl Following {
    /// Follows `sources`, handing rows to `observers` (the live detector, the metrics) through
    /// an ordered hand-off of their own ([`crate::probe::order`]). Subscribe every observer
    /// first. `None` without sources.
    pub fn start(
        store: &Store,
        cfg: &crate::config::Config,
        observers: &crate::probe::order::Observers,
    ) -> Option<Self> {
        if cfg.sources.is_empty() {
            return None;
        }
        // The monitor's own probes, as the gateway logs them (the TPP is the client id of the
        // monitor's QWAC): the detector has them from the probes already.
        let own: HashSet<(EstablishmentCode, String)> = cfg
            .establishments
            .iter()
            .filter(|e| {
                cfg.probes
                    .iter()
                    .any(|p| p.establishments.is_empty() || p.establishments.contains(&e.code))
            })
            .map(|e| (e.code, e.client_id.clone()))
            .collect();
        let (sources, max_latency_s) = (cfg.sources.clone(), cfg.counting.max_latency_s);
        let (seq, dispatch) = crate::probe::order::Sequencer::start(observers.clone());
        let (tx, mut rx) = mpsc::channel::<Vec<StoredObservation>>(16);
        let (stop, stop_rx) = watch::channel(false);
        let follower = tokio::spawn(run(store.clone(), sources, max_latency_s, own, tx, stop_rx));
        let task = tokio::spawn(async move {
            while let Some(batch) = rx.recv().await {
                seq.done(None, batch).await;
            }
            drop(seq);
            let _ = dispatch.await;
            follower.await.unwrap_or(0)
        });
        Some(Self { stop, task })
    }

    /// Stops following once what is written has been read; returns the rows read.
    pub async fn stop(self) -> u64 {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or(0)
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Retries a store write until it succeeds or the monitor stops (rows are never dropped while
/// it runs; a restart reads them again).
async fn retry<T, F, Fut>(what: &str, stop: &watch::Receiver<bool>, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::store::StoreError>>,
{
    let mut attempt = 0u32;
    loop {
        match f().await {
            Ok(x) => return Some(x),
            Err(e) => {
                attempt += 1;
                tracing::error!(error = %e, attempt, "{what}; retrying");
                if *stop.borrow() && attempt >= 3 {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt.min(25)))).await;
            }
        }
    }
}

async fn follow(
    store: Store,
    src: Source,
    max_latency_s: f64,
    out: mpsc::Sender<Vec<StoredObservation>>,
    mut stop: watch::Receiver<bool>,
    recent: Arc<Mutex<Recent>>,
) -> u64 {
    let name = src.name.clone();
    let shown = src.path.display().to_string();
    let Some(saved) = retry("cannot read the saved position", &stop, || {
        store.source_offset(&name)
    })
    .await
    else {
        return 0;
    };
    let Some(mut spans) = retry("cannot read the followed coverage", &stop, || {
        store.source_spans(&name)
    })
    .await
    else {
        return 0;
    };
    let bounds = || Bounds::from_clock(max_latency_s);
    let mut parser = match LineParser::new(src.format, src.mapping.clone(), bounds()) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(source = %name, "{e}");
            return 0;
        }
    };
    parser.set_last_ms(saved.as_ref().and_then(|s| s.last_ms));
    // The first lines read after a resume may have landed before the monitor stopped (killed
    // between the rows and the saved position): the store has them, and the live detector
    // replays them from there, so they are not handed over again.
    let mut resumed = saved.is_some();
    let mut tail = Some(Tail::new(
        src.path.clone(),
        saved.map(|s| s.position),
        src.from_start,
    ));
    tracing::info!(source = %name, path = %shown, "following the gateway log");
    let hold_ms = src.hold.as_millis() as i64;
    let mut pending: Vec<StoredObservation> = Vec::new();
    let mut read = 0u64;
    let mut stopping = false;
    let (mut read_error, mut waiting_said): (Option<String>, bool) = (None, false);
    loop {
        stopping |= *stop.borrow();
        parser.set_bounds(bounds());
        let t = tail.take().expect("tail is put back after each poll");
        let (t, events) = match tokio::task::spawn_blocking(move || {
            let mut t = t;
            let r = t.poll();
            (t, r)
        })
        .await
        {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(source = %name, error = %e, "the reading thread failed");
                return read;
            }
        };
        tail = Some(t);
        let events = match events {
            Ok(e) => {
                if read_error.take().is_some() {
                    tracing::info!(source = %name, path = %shown, "the log is readable again");
                }
                e
            }
            Err(e) => {
                // Said once, not at every poll.
                let e = e.to_string();
                if read_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!(source = %name, path = %shown, error = %e, "cannot read the log");
                    read_error = Some(e);
                }
                Vec::new()
            }
        };
        if !waiting_said && tail.as_ref().is_some_and(|t| t.position().is_none()) {
            tracing::info!(source = %name, path = %shown, "waiting for the log to appear");
            waiting_said = true;
        }
        let (mut rows, mut lines, mut refused) = (Vec::new(), false, 0u64);
        for ev in events {
            match ev {
                Event::Open {
                    offset,
                    header,
                    missed,
                } => {
                    if offset == 0 {
                        parser.new_file();
                    } else {
                        parser.resume(header);
                    }
                    if let Some(why) = missed {
                        // Coverage stops where reading may have skipped lines.
                        tracing::warn!(source = %name, "{why}");
                        spans.cut();
                    }
                    tracing::info!(source = %name, path = %shown, offset, "reading");
                }
                Event::Lines { bytes, first_line } => {
                    lines = true;
                    for r in parser.parse(&bytes, first_line) {
                        match r {
                            Row::Obs(o) => rows.push(o),
                            Row::Reject(r) => {
                                refused += 1;
                                // The line itself is not logged: gateway lines carry headers.
                                if refused <= 10 {
                                    tracing::warn!(source = %name, line = r.line, reason = %r.reason, "line refused");
                                }
                            }
                        }
                    }
                }
            }
        }
        if refused > 10 {
            tracing::warn!(source = %name, refused, "lines refused (the first ten shown)");
        }
        let mut landed_before = Vec::new();
        if lines && std::mem::take(&mut resumed) && !rows.is_empty() {
            match retry("cannot look up followed rows", &stop, || {
                store.present(&rows)
            })
            .await
            {
                Some(p) => landed_before = p,
                None => return read,
            }
        }
        if lines {
            if !rows.is_empty() {
                let batch: Arc<[StoredObservation]> = rows.clone().into();
                if retry("cannot write followed rows", &stop, || {
                    store.insert_observations(batch.clone())
                })
                .await
                .is_none()
                {
                    return read;
                }
                read += rows.len() as u64;
                for o in &rows {
                    spans.add(o.obs.establishment, o.obs.interface, o.obs.received_at_ms);
                }
            }
            if let Some(position) = tail.as_ref().and_then(Tail::position) {
                let saved = Saved {
                    position,
                    last_ms: parser.last_ms(),
                };
                let ok = retry("cannot save the followed position", &stop, || {
                    let mut s = spans.clone();
                    let (store, name, shown, saved) = (&store, &name, &shown, &saved);
                    async move {
                        store
                            .save_source(name, shown, saved, &mut s, now_ms())
                            .await
                            .map(|()| s)
                    }
                })
                .await;
                match ok {
                    Some(updated) => spans = updated,
                    None => return read,
                }
            }
            pending.extend(
                rows.into_iter()
                    .enumerate()
                    .filter(|(i, _)| !landed_before.get(*i).copied().unwrap_or(false))
                    .map(|(_, o)| o),
            );
        }
        // Hand over, in order, what began at least `hold` ago (all of it when stopping).
        let horizon = if stopping {
            i64::MAX
        } else {
            now_ms() - hold_ms
        };
        let mut ready: Vec<StoredObservation> = pending
            .extract_if(.., |o| o.obs.received_at_ms <= horizon)
            .collect();
        if !ready.is_empty() {
            ready.sort_by(|a, b| {
                (a.obs.received_at_ms, &a.obs.request_id)
                    .cmp(&(b.obs.received_at_ms, &b.obs.request_id))
            });
            let now = now_ms();
            {
                let mut r = recent.lock().unwrap_or_else(|e| e.into_inner());
                ready.retain(|o| r.first(o, now));
            }
            if !ready.is_empty() && out.send(ready).await.is_err() {
                tracing::debug!(source = %name, "live detection has stopped");
            }
        }
        if stopping && !lines {
            return read;
        }
        if !lines {
            tokio::select! {
                _ = tokio::time::sleep(src.poll) => {}
                r = stop.changed(), if !stopping => stopping |= r.is_err(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const HEAD: &str = "received_at,establishment,interface,service,source,tpp,status,latency_ms,error_code,request_id\n";

    fn row(s: u32, id: &str) -> String {
        format!("2026-12-02T10:00:{s:02}Z,13807,api,cbpii,log,T,200,12,,{id}\n")
    }

    fn append(p: &std::path::Path, s: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap();
        f.write_all(s.as_bytes()).unwrap();
    }

    /// Runs the follower until the store holds `n` rows; returns the ids handed over.
    async fn follow_until(store: &Store, src: &Source, n: usize) -> Vec<String> {
        let (tx, mut rx) = mpsc::channel(16);
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(
            store.clone(),
            vec![src.clone()],
            3600.0,
            HashSet::new(),
            tx,
            stop_rx,
        ));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while store
            .load_observations(i64::MIN, i64::MAX, &[])
            .await
            .unwrap()
            .len()
            < n
        {
            assert!(std::time::Instant::now() < deadline, "rows did not land");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop_tx.send(true).unwrap();
        task.await.unwrap();
        let mut got = Vec::new();
        while let Ok(b) = rx.try_recv() {
            got.extend(b.into_iter().map(|o| o.obs.request_id.to_string()));
        }
        got
    }

    #[test]
    fn each_request_is_handed_over_once_and_the_monitors_own_never() {
        let code: EstablishmentCode = "13807".parse().unwrap();
        let mut r = Recent {
            own: [(code, "PSDFR-ACPR-12345".to_string())].into(),
            ..Default::default()
        };
        let o = |id: &str, tpp: &str| -> StoredObservation {
            crate::domain::Observation {
                received_at_ms: 0,
                establishment: code,
                interface: crate::domain::Interface::Api,
                service: crate::domain::Service::new("aisp").unwrap(),
                source: crate::domain::Source::Log,
                tpp: Some(tpp.into()),
                status: Some(200),
                latency_ms: Some(1.0),
                error_code: None,
                request_id: id.into(),
                outcome: crate::domain::Outcome::Ok,
                vantage: crate::domain::Vantage::gateway(),
            }
            .into()
        };
        let t = 1_000_000;
        assert!(r.first(&o("a", "PSDFR-ACPR-99999"), t));
        // A second node's line of the same request, within ten minutes: not again.
        assert!(!r.first(&o("a", "PSDFR-ACPR-99999"), t + 1_000));
        // The monitor's own probe, as the gateway logged it.
        assert!(!r.first(&o("p", "PSDFR-ACPR-12345"), t));
        // Ten minutes on, forgotten.
        assert!(r.first(&o("a", "PSDFR-ACPR-99999"), t + RECENT_MS + 2_000));
    }

    #[tokio::test]
    async fn followed_rows_land_once_across_rotation_and_restart_and_extend_one_span() {
        let d = std::env::temp_dir().join(format!(
            "dispo-follow-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&d).unwrap();
        let log = d.join("gw.csv");
        let store = Store::open(&d.join("o.db")).await.unwrap();
        let src = Source {
            name: "gw".into(),
            path: log.clone(),
            format: Format::Csv,
            mapping: None,
            hold: Duration::ZERO,
            poll: Duration::from_millis(20),
            from_start: true,
        };
        append(&log, &format!("{HEAD}{}{}", row(2, "b"), row(1, "a")));
        // Handed over sorted by time.
        assert_eq!(follow_until(&store, &src, 2).await, ["a", "b"]);

        // Stopped; meanwhile more lines, a rotation, a new file.
        append(&log, &row(3, "c"));
        std::fs::rename(&log, d.join("gw.csv.1")).unwrap();
        append(&log, &format!("{HEAD}{}", row(4, "d")));
        assert_eq!(follow_until(&store, &src, 4).await, ["c", "d"]);
        append(&log, &row(5, "e"));
        assert_eq!(follow_until(&store, &src, 5).await, ["e"]);

        // Killed after a row landed and before its position was saved: read again, stored
        // once, not handed over twice (the live detector replays it from the store).
        append(&log, &row(6, "f"));
        let text = format!("{HEAD}{}", row(6, "f"));
        use crate::import::RowSource;
        let mut one = crate::import::csv_rows::CsvRows::new(text.as_bytes()).unwrap();
        let Some(Row::Obs(f)) = one.next_row().unwrap() else {
            panic!("a row")
        };
        store.insert_observations(vec![f]).await.unwrap();
        assert_eq!(follow_until(&store, &src, 6).await, Vec::<String>::new());

        let all = store
            .load_observations(i64::MIN, i64::MAX, &[])
            .await
            .unwrap();
        assert_eq!(all.len(), 6);
        // One coverage span for the series, from the first to the latest row.
        let spans: Vec<(String, i64, i64)> =
            sqlx::query_as("SELECT source, first_at, last_at FROM log_spans")
                .fetch_all(store.pool())
                .await
                .unwrap();
        // 2026-12-02T10:00:01Z .. 10:00:06Z.
        assert_eq!(
            spans,
            [("gw".to_string(), 1_796_205_601_000, 1_796_205_606_000)]
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}

//! The probe daemon behind `dispo run`: every probe runs for every establishment it names on its
//! cron schedule, open-loop (a slow or hanging answer never delays the next scheduled run). After
//! a failure, or as soon as a request has been outstanding for `burst_interval`, a confirmation
//! burst sends a request every interval without waiting for the earlier ones, until a reply or
//! five failures within the window ([`super::burst`]). Observations are written in batches,
//! each in one transaction, and only then published to observers, so whatever was reported is in
//! the database. A heartbeat records that the monitor runs; on stop, probes in flight are recorded
//! as interrupted (the monitor's own fault, outside every figure) and the heartbeat is closed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::burst::{Action, Bursts, Next, Rule, Series};
use super::durable::{Durable, Kept};
use super::order::{Observers, Sequencer, Ticket};
use super::steps::{self, StepResult, Target, TargetError};
use crate::config::{Config, Probe};
use crate::domain::{Interface, Outcome};
use crate::store::{Store, StoreError, StoredObservation};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the configuration has no probe to run (add [[probe]] tables)")]
    NothingToRun,
    #[error(
        "{0} (the database must take the observations an earlier run spilled before probing starts again)"
    )]
    Spill(#[from] crate::store::spill::SpillError),
}

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop after this long (tests, demos); `None` runs until the shutdown signal.
    pub duration: Option<Duration>,
    /// Print a status line per establishment (when stdout is a terminal).
    pub status_line: bool,
    /// Where the writer reports how writing goes (shown by the metrics).
    pub health: WriterHealth,
    /// Turns true when another process took this monitor id's lock
    /// ([`crate::store::MonitorLock::watch`]): probing stops, the heartbeat closed as such.
    pub id_taken: Option<watch::Receiver<bool>>,
}

/// How the writing of observations goes. A database that refuses writes (disk full, file made
/// read-only) leaves observations waiting in memory, retried and never dropped, and the live
/// detection without input, since it only sees what is written: from outside, only these
/// figures show it. Cheap to clone; shared with the metrics.
#[derive(Debug, Clone, Default)]
pub struct WriterHealth(Arc<HealthCounters>);

#[derive(Debug, Default)]
struct HealthCounters {
    waiting: AtomicU64,
    spilled: AtomicU64,
    failures: AtomicU64,
    last_write_ms: AtomicI64,
}

impl WriterHealth {
    /// Observations held in memory because neither the database nor the spill journal took
    /// them (0 once kept).
    pub fn waiting(&self) -> u64 {
        self.0.waiting.load(Ordering::Relaxed)
    }
    /// Observations in the spill journal, waiting for the database to take them again.
    pub fn spilled(&self) -> u64 {
        self.0.spilled.load(Ordering::Relaxed)
    }
    pub(super) fn set_waiting(&self, n: u64) {
        self.0.waiting.store(n, Ordering::Relaxed);
    }
    pub(super) fn add_spilled(&self, n: u64) {
        self.0.spilled.fetch_add(n, Ordering::Relaxed);
    }
    pub(super) fn clear_spilled(&self) {
        self.0.spilled.store(0, Ordering::Relaxed);
    }
    pub(super) fn add_failure(&self) {
        self.0.failures.fetch_add(1, Ordering::Relaxed);
    }
    pub(super) fn wrote_now(&self) {
        self.0.last_write_ms.store(now_ms(), Ordering::Relaxed);
    }
    /// Failed attempts to write observations since the monitor started.
    pub fn failures(&self) -> u64 {
        self.0.failures.load(Ordering::Relaxed)
    }
    /// When observations were last written (epoch ms), if ever.
    pub fn last_write_ms(&self) -> Option<i64> {
        Some(self.0.last_write_ms.load(Ordering::Relaxed)).filter(|&t| t > 0)
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub observations_written: u64,
}

/// The last known state of each establishment, for the status line.
#[derive(Debug, Default, Clone)]
pub struct Status {
    pub last: BTreeMap<(String, Interface), (Outcome, Option<f64>)>,
}

/// Runs until `shutdown` resolves or the duration ends. Observers receive each observation once
/// it is durably written and every earlier-sent request of its series has ended (`order`); their
/// channels close once everything was handed on.
pub async fn run(
    cfg: Config,
    store: Store,
    opts: RunOptions,
    observers: Observers,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<RunSummary, DaemonError> {
    let jobs: Vec<(Arc<Target>, Probe)> = {
        let mut targets = BTreeMap::new();
        for e in &cfg.establishments {
            targets.insert(
                e.code,
                Target::new(
                    e.clone(),
                    cfg.monitor.vantage.clone(),
                    cfg.monitor.reuse_connections,
                    cfg.monitor.max_body_bytes,
                )?,
            );
        }
        cfg.probes
            .iter()
            .flat_map(|p| {
                targets
                    .iter()
                    .filter(|(code, _)| {
                        p.establishments.is_empty() || p.establishments.contains(code)
                    })
                    .map(|(_, t)| (t.clone(), p.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    if jobs.is_empty() {
        return Err(DaemonError::NothingToRun);
    }
    // What an earlier run left in the spill journal goes into the database first (its
    // observations and heartbeats), or the monitor does not start: a database that refuses
    // that refuses everything else.
    let mut durable = Durable::new(store.clone(), opts.health.clone());
    if durable.spill().pending() {
        let r = durable
            .spill()
            .replay(&store, Duration::from_secs(30))
            .await?;
        tracing::info!(
            observations = r.observations,
            added = r.added,
            heartbeats = r.heartbeats,
            journal = %durable.spill().path().display(),
            "spill journal of an earlier run replayed"
        );
        durable = Durable::new(store.clone(), opts.health.clone());
    }
    let stalled = durable.stalled();
    let beats = durable.beats();
    let started = now_ms();
    // The heartbeats cover the series this monitor probes, and no other (methodology 1).
    let series: std::collections::BTreeSet<_> = jobs
        .iter()
        .map(|(t, p)| (t.est.code, p.step.interface()))
        .collect();
    let series: Vec<_> = series.into_iter().collect();
    let hb = store
        .start_monitor(&cfg.monitor.id, &series, started)
        .await?;
    tracing::info!(monitor = %cfg.monitor.id, jobs = jobs.len(), "probing started");

    // Writer: batches, one transaction each, then hands them on in order (`order`).
    let (seq, dispatcher) = Sequencer::start(observers);
    let (tx, mut rx) = mpsc::channel::<(Ticket, StepResult)>(10_000);
    let written = Arc::new(AtomicU64::new(0));
    let status = Arc::new(std::sync::Mutex::new(Status::default()));
    let writer = {
        let (store, written, seq, status, mut durable) = (
            store.clone(),
            written.clone(),
            seq.clone(),
            status.clone(),
            durable,
        );
        tokio::spawn(async move {
            let mut batch: Vec<(Ticket, StepResult)> = Vec::new();
            loop {
                let first = rx.recv().await;
                let done = first.is_none();
                batch.extend(first);
                while let Ok(more) = rx.try_recv() {
                    batch.push(more);
                }
                if !batch.is_empty() {
                    let obs: Vec<StoredObservation> = batch
                        .iter()
                        .flat_map(|(_, r)| r.observations.clone())
                        .collect();
                    let tokens: Vec<_> = batch.iter().flat_map(|(_, r)| r.tokens.clone()).collect();
                    // In the database or the journal before anyone hears of it; nothing
                    // recorded is dropped while the monitor runs.
                    let kept = durable.keep(&obs).await;
                    if kept == Kept::Database
                        && let Err(e) = store.record_tokens(&tokens).await
                    {
                        tracing::warn!(error = %e, "cannot record token metadata");
                    }
                    written.fetch_add(obs.len() as u64, Ordering::Relaxed);
                    {
                        let mut st = status.lock().unwrap_or_else(|e| e.into_inner());
                        for o in &obs {
                            st.last.insert(
                                (o.obs.establishment.to_string(), o.obs.interface),
                                (o.obs.outcome, o.obs.latency_ms),
                            );
                        }
                    }
                    for (ticket, r) in batch.drain(..) {
                        seq.done(Some(ticket), r.observations).await;
                    }
                }
                if done {
                    durable.finish().await;
                    return;
                }
            }
        })
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut schedulers = JoinSet::new();
    let ctx = Arc::new(Ctx {
        tx,
        seq: seq.clone(),
        stop: stop_rx.clone(),
        inflight: Default::default(),
        reasons: Default::default(),
        timeout: cfg.monitor.timeout,
        bursts: cfg.monitor.burst_interval.map(|interval| {
            Bursts::new(Rule {
                interval,
                failures: cfg.counting.failures_to_down,
                window: Duration::from_millis(cfg.counting.window_ms.max(0) as u64),
                aspsp_error_is_failure: cfg.counting.aspsp_error_is_failure,
            })
        }),
        connectivity: super::canary::Connectivity::new(&cfg),
        stalled: stalled.clone(),
    });
    for (target, probe) in jobs {
        let (ctx, stop_rx) = (ctx.clone(), stop_rx.clone());
        let tz = cfg.monitor.schedule_tz;
        // Shared by every run of the job: a clone per run held a whole cron schedule.
        let probe = Arc::new(probe);
        schedulers.spawn(async move {
            // Set while this job's last scheduled run is in flight.
            let running = Arc::new(AtomicBool::new(false));
            let guard = ctx.bursts.is_some();
            let mut skipping = false;
            let upcoming = probe
                .schedule
                .after_owned(chrono::Utc::now().with_timezone(&tz));
            for next in upcoming {
                let wait = (next.with_timezone(&chrono::Utc) - chrono::Utc::now())
                    .to_std()
                    .unwrap_or_default();
                tokio::time::sleep(wait).await;
                if *stop_rx.borrow() {
                    return;
                }
                // Open loop: the run goes on in its own task; the schedule does not wait for it.
                // With bursts on, a tick whose previous run is still in flight is skipped: a
                // machine that cannot keep up would otherwise pile up runs without bound (memory
                // grows, every start is late), and a hang is confirmed by its burst meanwhile.
                // With bursts off, overlapping ticks are the only confirmation: none skipped.
                // Nor while nothing can be kept (database and journal both refuse): results
                // would pile up in memory; that time is not covered anyway.
                if ctx.stalled.load(Ordering::Acquire) {
                    SKIPPED_TICKS.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if guard && running.load(Ordering::Acquire) {
                    SKIPPED_TICKS.fetch_add(1, Ordering::Relaxed);
                    if !skipping {
                        tracing::warn!(establishment = %target.est.code, probe = %probe.name, "previous run still in flight: scheduled runs skipped until it ends");
                        skipping = true;
                    }
                    continue;
                }
                skipping = false;
                running.store(true, Ordering::Release);
                ctx.launch(target.clone(), probe.clone(), None, Some(running.clone()));
            }
        });
    }
    let status_task = opts.status_line.then(|| {
        let status = status.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                print_status(&status.lock().unwrap_or_else(|e| e.into_inner()));
            }
        })
    });

    // Heartbeats until the end.
    let deadline = async {
        match opts.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let taken = async {
        // A dropped sender is no verdict: wait on.
        if let Some(mut rx) = opts.id_taken.clone()
            && rx.wait_for(|t| *t).await.is_ok()
        {
            return;
        }
        std::future::pending::<()>().await
    };
    tokio::pin!(shutdown);
    tokio::pin!(deadline);
    tokio::pin!(taken);
    let reason = loop {
        tokio::select! {
            _ = &mut shutdown => break "signal",
            _ = &mut deadline => break "duration",
            _ = &mut taken => break "monitor id taken by another node",
            _ = tokio::time::sleep(cfg.monitor.heartbeat) => {
                // Not while neither store takes anything: that time is not watched.
                if !stalled.load(Ordering::Acquire) {
                    beats.beat(hb, now_ms()).await;
                }
            }
        }
    };
    tracing::info!(reason, "stopping: waiting for probes in flight");
    let _ = stop_tx.send(true);
    schedulers.shutdown().await;
    // Runs and bursts end at the stop signal (a run in flight is recorded as interrupted).
    loop {
        let mut set = std::mem::take(&mut *ctx.inflight.lock().unwrap_or_else(|e| e.into_inner()));
        if set.is_empty() {
            break;
        }
        while set.join_next().await.is_some() {}
    }
    drop(ctx);
    let _ = writer.await;
    if let Some(t) = status_task {
        t.abort();
    }
    // Closed before the observers' channels close, so they can read where coverage ended.
    let stopped = store.stop_heartbeat(hb, now_ms(), reason).await;
    drop(seq);
    let _ = dispatcher.await;
    stopped?;
    let summary = RunSummary {
        observations_written: written.load(Ordering::Relaxed),
    };
    tracing::info!(written = summary.observations_written, "probing stopped");
    Ok(summary)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Runs a step; if the monitor stops meanwhile, records it as interrupted instead.
async fn run_once(
    t: &Target,
    p: &Probe,
    timeout: Duration,
    mut stop: watch::Receiver<bool>,
) -> StepResult {
    tokio::select! {
        r = steps::run(t, p, timeout) => r,
        _ = async { let _ = stop.wait_for(|s| *s).await; } => {
            StepResult { observations: vec![steps::probe_error(t, p, "interrupted: the monitor stopped")], tokens: vec![] }
        }
    }
}

/// What every run of the daemon shares.
struct Ctx {
    tx: mpsc::Sender<(Ticket, StepResult)>,
    seq: Sequencer,
    stop: watch::Receiver<bool>,
    /// Runs and burst senders in flight (finished ones are reaped as new ones start).
    inflight: std::sync::Mutex<JoinSet<()>>,
    timeout: Duration,
    /// `None` when bursts are off.
    bursts: Option<Bursts>,
    /// The canaries: everything failing at once is the monitor's own fault if they fail too.
    connectivity: super::canary::Connectivity,
    /// Set while neither the database nor the spill journal takes observations.
    stalled: Arc<AtomicBool>,
    /// Per establishment and probe, why its last run failed (`None`: it succeeded), so the log
    /// says the reason once per change rather than only in the database.
    reasons: std::sync::Mutex<BTreeMap<(String, String), Option<String>>>,
}

impl Ctx {
    /// Starts one run of `p` against `t` in its own task: scheduled (`burst` is `None`) or sent
    /// by a burst (with its run id).
    fn launch(
        self: &Arc<Self>,
        t: Arc<Target>,
        p: Arc<Probe>,
        burst: Option<u64>,
        running: Option<Arc<AtomicBool>>,
    ) {
        let ctx = self.clone();
        let mut set = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        while set.try_join_next().is_some() {}
        set.spawn(async move {
            // Cleared however the run ends (finished, or stopped with the daemon).
            let _running = Running(running);
            ctx.run(t, p, burst).await
        });
    }

    async fn run(self: Arc<Self>, t: Arc<Target>, p: Arc<Probe>, burst: Option<u64>) {
        let series = (t.est.code, p.step.interface());
        // Announced before it is sent: later observations of the series wait for this one.
        let ticket = self.seq.begin(series);
        let sent = tokio::time::Instant::now();
        let run = match (&self.bursts, burst) {
            (_, Some(id)) => id,
            (Some(b), None) => b.run_id(),
            (None, None) => 0,
        };
        let fut = run_once(&t, &p, self.timeout, self.stop.clone());
        tokio::pin!(fut);
        let r = match (&self.bursts, burst) {
            // A scheduled request outstanding for the burst interval starts a burst.
            (Some(b), None) => tokio::select! {
                r = &mut fut => r,
                _ = tokio::time::sleep(b.rule().interval) => {
                    if let Action::Started(id) = b.outstanding(series, run, sent) {
                        tracing::info!(establishment = %t.est.code, interface = %series.1, probe = %p.name, "no answer yet: confirmation burst");
                        self.burst(t.clone(), p.clone(), series, id);
                    }
                    fut.await
                }
            },
            _ => fut.await,
        };
        // Before the bursts, the store and the observers see it: everything failing at once
        // with the canaries is the monitor's own error ([`super::canary`]).
        let r = self.connectivity.judge(r).await;
        self.log_reason(&t, &p, &r);
        if let Some(b) = &self.bursts
            && let Action::Started(id) = b.finished(series, run, sent, r.outcome())
        {
            tracing::info!(establishment = %t.est.code, interface = %series.1, probe = %p.name, "failure: confirmation burst");
            self.burst(t.clone(), p.clone(), series, id);
        }
        let _ = self.tx.send((ticket, r)).await;
    }

    /// Logs why a probe fails when the reason changes (`Connection refused`, `invalid peer
    /// certificate: BadSignature`), and once when it succeeds again.
    fn log_reason(&self, t: &Target, p: &Probe, r: &StepResult) {
        let Some(last) = r.observations.last() else {
            return;
        };
        if *self.stop.borrow() {
            // "interrupted: the monitor stopped" is no news of the bank.
            return;
        }
        let reason = (last.obs.outcome != Outcome::Ok).then(|| {
            let mut why = last.obs.outcome.as_str().to_owned();
            if let Some(s) = last.obs.status {
                why.push_str(&format!(" (HTTP {s})"));
            }
            if let Some(text) = last.error_text.as_deref().filter(|x| !x.is_empty()) {
                why.push_str(": ");
                why.push_str(text);
            }
            why
        });
        let key = (t.est.code.to_string(), p.name.clone());
        let mut reasons = self.reasons.lock().unwrap_or_else(|e| e.into_inner());
        let before = reasons.get(&key).cloned().flatten();
        if before == reason {
            return;
        }
        match &reason {
            Some(why) => {
                tracing::warn!(establishment = %t.est.code, probe = %p.name, reason = %why, "probe failing")
            }
            None if before.is_some() => {
                tracing::info!(establishment = %t.est.code, probe = %p.name, "probe succeeds again")
            }
            None => {}
        }
        reasons.insert(key, reason);
    }

    /// Starts the sender of burst `id`: a request every interval, without waiting for the
    /// earlier ones, for as long as the burst lasts (see [`super::burst`]).
    fn burst(self: &Arc<Self>, t: Arc<Target>, p: Arc<Probe>, series: Series, id: u64) {
        let ctx = self.clone();
        let mut set = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        set.spawn(async move {
            let Some(b) = &ctx.bursts else { return };
            let mut stop = ctx.stop.clone();
            loop {
                if *stop.borrow() {
                    return;
                }
                match b.next_send(series, id, tokio::time::Instant::now()) {
                    Next::Done => return,
                    Next::Send(run) => ctx.launch(t.clone(), p.clone(), Some(run), None),
                    Next::WaitUntil(at) => {
                        tokio::select! {
                            _ = tokio::time::sleep_until(at) => {}
                            _ = stop.changed() => return,
                        }
                    }
                }
            }
        });
    }
}

/// Scheduled runs skipped because the job's previous run was still in flight (`/metrics`).
pub static SKIPPED_TICKS: AtomicU64 = AtomicU64::new(0);

/// Clears a job's in-flight flag when its run ends, however it ends.
struct Running(Option<Arc<AtomicBool>>);
impl Drop for Running {
    fn drop(&mut self) {
        if let Some(r) = &self.0 {
            r.store(false, Ordering::Release);
        }
    }
}

fn print_status(s: &Status) {
    use std::io::Write;
    let mut line = String::new();
    for ((code, iface), (outcome, lat)) in &s.last {
        let mark = if outcome.is_failure(true) {
            "DOWN?"
        } else {
            "up"
        };
        let lat = lat
            .map(|l| format!("{l:.0}ms"))
            .unwrap_or_else(|| "-".into());
        line.push_str(&format!("{code}/{iface} {mark} {outcome} {lat} | "));
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

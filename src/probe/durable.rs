//! Making each batch of observations durable before it is handed on: in the database, or, while
//! the database refuses writes (disk full, a lock held past [`DB_WAIT`], a file made read-only),
//! in the spill journal beside it ([`crate::store::spill`]), replayed into the database as soon
//! as it takes writes again. So the live detection keeps its input and the monitor's memory
//! stays bounded through a database outage. Only when the journal refuses too does a batch wait
//! in memory; the daemon then stops scheduling runs ([`Durable::stalled`]) rather than pile up
//! results it cannot keep: that time is not covered, since the heartbeats cannot be kept either.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::daemon::WriterHealth;
use crate::store::spill::Spill;
use crate::store::{Store, StoredObservation};

/// How long a batch waits for another writer's lock (an import's transaction) before it goes to
/// the journal instead: at 1 000 observations a second, five seconds of them wait in memory.
pub const DB_WAIT: Duration = Duration::from_secs(5);

/// First wait before the journal is replayed again after the database refused it; doubled on
/// each refusal up to [`MAX_REPLAY_WAIT`].
const FIRST_REPLAY_WAIT: Duration = Duration::from_secs(1);
const MAX_REPLAY_WAIT: Duration = Duration::from_secs(60);

/// Where a batch was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    Database,
    Journal,
}

pub struct Durable {
    store: Store,
    spill: Spill,
    health: WriterHealth,
    stalled: Arc<AtomicBool>,
    /// While a batch is being kept: when it was taken (epoch ms; 0 when idle). A heartbeat
    /// never claims later than that, so it never covers observations not yet kept.
    busy_since: Arc<AtomicI64>,
    /// Whether lines wait in the journal (new batches go there until it is replayed, so the
    /// database is tried once per replay wait, not once per batch). Shared with [`Beats`].
    spilling: Arc<AtomicBool>,
    next_replay: Instant,
    replay_wait: Duration,
}

impl Durable {
    pub fn new(store: Store, health: WriterHealth) -> Self {
        let spill = Spill::of(store.target());
        Self {
            spilling: Arc::new(AtomicBool::new(spill.pending())),
            store,
            spill,
            health,
            stalled: Arc::new(AtomicBool::new(false)),
            busy_since: Arc::new(AtomicI64::new(0)),
            next_replay: Instant::now(),
            replay_wait: FIRST_REPLAY_WAIT,
        }
    }

    /// Set while neither the database nor the journal takes observations.
    pub fn stalled(&self) -> Arc<AtomicBool> {
        self.stalled.clone()
    }

    pub fn spill(&self) -> &Spill {
        &self.spill
    }

    /// Keeps `obs` in the database or the journal; waits, retrying, only while both refuse.
    pub async fn keep(&mut self, obs: &[StoredObservation]) -> Kept {
        self.busy_since
            .store(chrono::Utc::now().timestamp_millis(), Ordering::Release);
        let kept = self.keep_now(obs).await;
        self.busy_since.store(0, Ordering::Release);
        kept
    }

    async fn keep_now(&mut self, obs: &[StoredObservation]) -> Kept {
        let mut attempt = 0u32;
        loop {
            if self.spilling() && Instant::now() >= self.next_replay {
                self.replay().await;
            }
            if !self.spilling() {
                match self.store.insert_observations_within(obs, DB_WAIT).await {
                    Ok(_) => {
                        self.ok();
                        return Kept::Database;
                    }
                    Err(e) => {
                        self.health.add_failure();
                        tracing::error!(error = %e, journal = %self.spill.path().display(), "the database refuses observations: keeping them in the spill journal until it takes them again");
                        self.spilling.store(true, Ordering::Release);
                        self.next_replay = Instant::now() + self.replay_wait;
                    }
                }
            }
            match self.spill.append(obs) {
                Ok(()) => {
                    self.health.add_spilled(obs.len() as u64);
                    self.ok();
                    return Kept::Journal;
                }
                Err(e) => {
                    attempt += 1;
                    self.health.set_waiting(obs.len() as u64);
                    self.health.add_failure();
                    if !self.stalled.swap(true, Ordering::AcqRel) || attempt.is_multiple_of(50) {
                        tracing::error!(error = %e, attempt, waiting = obs.len(), "neither the database nor the spill journal takes observations: probing paused, retrying");
                    }
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt.min(25))))
                        .await;
                }
            }
        }
    }

    fn spilling(&self) -> bool {
        self.spilling.load(Ordering::Acquire)
    }

    /// What the heartbeat loop uses, without waiting for a batch being kept.
    pub fn beats(&self) -> Beats {
        Beats {
            busy_since: self.busy_since.clone(),
            store: self.store.clone(),
            spill: self.spill.clone(),
            spilling: self.spilling.clone(),
        }
    }

    /// One last replay before the monitor stops (what stays is replayed at the next start).
    pub async fn finish(&mut self) {
        if self.spilling() {
            self.replay().await;
            if self.spilling() {
                tracing::error!(journal = %self.spill.path().display(), lines = self.spill.count_lines(), "observations wait in the spill journal: the next `dispo run` on this database replays them");
            }
        }
    }

    fn ok(&mut self) {
        self.health.set_waiting(0);
        self.health.wrote_now();
        if self.stalled.swap(false, Ordering::AcqRel) {
            tracing::info!("observations are kept again: probing resumes");
        }
    }

    async fn replay(&mut self) {
        match self.spill.replay(&self.store, DB_WAIT).await {
            Ok(r) => {
                self.spilling.store(false, Ordering::Release);
                self.replay_wait = FIRST_REPLAY_WAIT;
                self.health.clear_spilled();
                tracing::info!(
                    observations = r.observations,
                    added = r.added,
                    heartbeats = r.heartbeats,
                    "the database takes writes again: spill journal replayed"
                );
            }
            Err(e) => {
                self.health.add_failure();
                self.replay_wait = (self.replay_wait * 2).min(MAX_REPLAY_WAIT);
                self.next_replay = Instant::now() + self.replay_wait;
                tracing::debug!(error = %e, "the spill journal cannot be replayed yet");
            }
        }
    }
}

/// Records the monitor's heartbeats: in the database, or in the journal while the database
/// refuses writes, so the coverage of the observations spilled meanwhile is not lost.
pub struct Beats {
    busy_since: Arc<AtomicI64>,
    store: Store,
    spill: Spill,
    spilling: Arc<AtomicBool>,
}

impl Beats {
    pub async fn beat(&self, run: i64, at_ms: i64) {
        // Not past what is kept: while a batch waits (for a locked database, say), a heartbeat
        // at "now" would, after a kill -9, cover observations that were never kept.
        let busy = self.busy_since.load(Ordering::Acquire);
        let at_ms = if busy > 0 { at_ms.min(busy) } else { at_ms };
        if !self.spilling.load(Ordering::Acquire) {
            // Bounded like a batch: a lock held elsewhere must not hold up the heartbeats.
            match tokio::time::timeout(DB_WAIT, self.store.beat(run, at_ms)).await {
                Ok(Ok(())) => return,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot record the heartbeat in the database: keeping it in the spill journal")
                }
                Err(_) => tracing::warn!(
                    "the database did not take the heartbeat in time: keeping it in the spill journal"
                ),
            }
            // The batches follow into the journal rather than each wait for the lock in turn.
            self.spilling.store(true, Ordering::Release);
        }
        if let Err(e) = self.spill.append_beat(run, at_ms) {
            tracing::warn!(error = %e, "cannot record the heartbeat");
        }
    }
}

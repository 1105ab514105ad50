//! One `dispo run` per monitor id and database: the monitor lock, the admission of a starting
//! node, and the watch that keeps the lock while the node runs.
//!
//! SQLite: an advisory lock on `<db>.<monitor id>.lock`, released by the kernel when the
//! process ends, however it ends; the file holds the holder's pid for the message. The kernel
//! never takes it back from a live process, so a node holding it knows every earlier run of its
//! id on that file is over (killed or stopped) and closes them at its start.
//!
//! PostgreSQL: a session advisory lock keyed on the monitor id, on a connection of its own
//! ([`super::pg::Session`]). The server releases it when that connection ends: the process
//! ends, or the server restarts, or the connection is killed or cut. So a live node can lose it
//! without noticing, and a second node with its id could then take it. Two guards:
//! - [`MonitorLock::watch`]: every [`LOCK_CHECK`] the running node checks that its lock
//!   connection still holds the lock; if not it takes it again, or, if another process holds
//!   it on [`TAKEN_CHECKS`] checks in a row, stops probing with [`LockError::Lost`]. While the
//!   database is unreachable nothing changes (observations go to the spill journal) and the
//!   check is tried again.
//! - [`MonitorLock::admit`]: a starting node never closes a run of its id whose heartbeat is
//!   fresh (within [`STALE_HEARTBEAT_MS`]). Finding one, it lets the lock go for [`ADMIT_WAIT`]
//!   (longer than a running node takes to notice and take it again): if the lock is taken, or
//!   that run's heartbeat moves, another node runs with this id and the start is refused.
//!   Otherwise that run ended within the last two minutes (killed): the node starts, and leaves
//!   that run's heartbeat to go stale (its coverage ends at its last beat).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::watch;

use super::coverage::STALE_HEARTBEAT_MS;
use super::{Store, StoreError, Target, pg};

/// How often a running node checks that it still holds its lock: the bound on how long it runs
/// without it after a database restart (plus the time the database takes to come back).
pub const LOCK_CHECK: Duration = Duration::from_secs(2);

/// Checks in a row finding the lock held by another process before the node gives its id up.
/// A starting node holds the lock a few milliseconds while it reads the heartbeats (see
/// [`MonitorLock::admit`]): one check finding it taken is not enough.
pub const TAKEN_CHECKS: u32 = 3;

/// How long a starting node that found a fresh heartbeat of its id lets the lock go, for a live
/// node to take it again: longer than [`LOCK_CHECK`] with a margin for a slow reconnection.
pub const ADMIT_WAIT: Duration = Duration::from_secs(7);

/// Held while a `dispo run` probes under a monitor id on a database: a second one with the same
/// id refuses to start (both would write heartbeats and probes under one name). See the module
/// documentation for each backend.
#[derive(Debug)]
pub struct MonitorLock {
    monitor: String,
    held: Held,
}

#[derive(Debug)]
enum Held {
    File {
        /// `None` only between losing the file and taking it again.
        file: Option<std::fs::File>,
        path: PathBuf,
        db: PathBuf,
    },
    Session(Box<pg::Session>),
}

/// Why a monitor id cannot be (or stay) taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "monitor '{monitor}' already running ({pid}) on {db}: stop that one first, or give \
         this node its own `[monitor] id`"
    )]
    Running {
        monitor: String,
        pid: String,
        db: String,
    },
    #[error(
        "another node with monitor id '{monitor}' is running on {db}: its run (started at \
         {started}) beat {ago_s} s ago and goes on beating, but holds no lock (it lost it, e.g. \
         at a database restart); check `[monitor] id` in each node's configuration: each node \
         needs its own"
    )]
    Duplicate {
        monitor: String,
        db: String,
        started: String,
        ago_s: i64,
    },
    #[error(
        "monitor '{monitor}' lost its lock on {db} (database restart or connection cut) and \
         {holder} holds it now: another node with this id is running, so this one stopped \
         probing; check `[monitor] id` in each node's configuration: each node needs its own"
    )]
    Lost {
        monitor: String,
        holder: String,
        db: String,
    },
    #[error("cannot take the lock {path}: {why}")]
    Io { path: String, why: String },
    #[error("cannot read the earlier runs of this monitor id: {0}")]
    Store(#[from] StoreError),
}

/// What one check of a held lock found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Still held.
    Held,
    /// It was lost and is taken again.
    Retaken,
    /// Lost, and the database cannot be reached to take it again (the reason).
    Unreachable(String),
    /// Lost, and another process holds it (who, as far as the database tells).
    TakenBy(String),
}

/// Takes the lock of `monitor_id` on the database `db`.
pub async fn lock_monitor(db: &Target, monitor_id: &str) -> Result<MonitorLock, LockError> {
    let held = match db {
        Target::Sqlite(p) => {
            let path = lock_path(p, monitor_id);
            Held::File {
                file: Some(lock_file(&path, p, monitor_id)?),
                path,
                db: p.clone(),
            }
        }
        Target::Postgres(u) => Held::Session(Box::new(pg::Session::take(u, monitor_id).await?)),
    };
    Ok(MonitorLock {
        monitor: monitor_id.to_owned(),
        held,
    })
}

/// `<db>.<monitor id>.lock`, the id's unsafe characters made `_`.
fn lock_path(db: &Path, monitor_id: &str) -> PathBuf {
    let safe: String = monitor_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut name = db.as_os_str().to_owned();
    name.push(format!(".{safe}.lock"));
    PathBuf::from(name)
}

fn lock_file(path: &Path, db: &Path, monitor_id: &str) -> Result<std::fs::File, LockError> {
    use std::io::{Read as _, Seek as _, Write as _};
    let io = |e: std::io::Error| LockError::Io {
        path: path.display().to_string(),
        why: crate::messages::io_reason(&e),
    };
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io)?;
    match f.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = f.read_to_string(&mut pid);
            return Err(LockError::Running {
                monitor: monitor_id.to_owned(),
                pid: format!("pid {}", pid.trim()),
                db: std::path::absolute(db)
                    .unwrap_or_else(|_| db.to_owned())
                    .display()
                    .to_string(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    f.set_len(0).map_err(io)?;
    f.rewind().map_err(io)?;
    write!(f, "{}", std::process::id()).map_err(io)?;
    f.flush().map_err(io)?;
    Ok(f)
}

/// Whether `file` is still the file at `path` (a lock file deleted or replaced under a running
/// node would let a second one lock a new file of the same name).
#[cfg(unix)]
fn same_file(file: &std::fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::File, _: &Path) -> bool {
    true
}

impl MonitorLock {
    /// The monitor id locked.
    pub fn monitor(&self) -> &str {
        &self.monitor
    }

    /// Closes the earlier runs of this monitor id that are over, before the node starts
    /// probing, or refuses the start when another node with this id runs (see the module
    /// documentation). Call once, after the store is open and before the first heartbeat.
    pub async fn admit(&mut self, store: &Store, now_ms: i64) -> Result<(), LockError> {
        let monitor = self.monitor.clone();
        let session = match &mut self.held {
            // The kernel never takes the lock back from a live process: every earlier run of
            // this id on this file is over, however fresh its heartbeat (killed a moment ago).
            Held::File { .. } => {
                store.end_earlier_runs(&monitor, now_ms, i64::MAX).await?;
                return Ok(());
            }
            Held::Session(s) => s,
        };
        let fresh = store.fresh_runs(&monitor, now_ms).await?;
        if !fresh.is_empty() {
            // A run of this id beat within two minutes and nobody held the lock: it was killed,
            // or it lost its lock and will take it again within LOCK_CHECK. Let it.
            tracing::warn!(monitor = %monitor, runs = fresh.len(), wait_s = ADMIT_WAIT.as_secs(), "a run of this monitor id beat recently but holds no lock: waiting to see whether it is still running");
            session.release().await;
            let deadline = tokio::time::Instant::now() + ADMIT_WAIT;
            loop {
                if let Some(holder) = session.holder().await.map_err(|e| session.io(e))? {
                    return Err(LockError::Running {
                        monitor,
                        pid: holder,
                        db: session.url().to_string(),
                    });
                }
                let now = store.fresh_runs(&monitor, now_ms).await?;
                if let Some(r) = now.iter().find(|r| {
                    fresh
                        .iter()
                        .any(|f| f.id == r.id && r.last_beat > f.last_beat)
                }) {
                    let at = chrono::Utc::now().timestamp_millis();
                    return Err(LockError::Duplicate {
                        monitor,
                        db: session.url().to_string(),
                        started: crate::engine::time::rfc3339(r.started_at),
                        ago_s: (at - r.last_beat).max(0) / 1000,
                    });
                }
                if tokio::time::Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            if let Some(holder) = session.try_take().await.map_err(|e| session.io(e))? {
                return Err(LockError::Running {
                    monitor,
                    pid: holder,
                    db: session.url().to_string(),
                });
            }
            tracing::warn!(monitor = %monitor, "the run that beat recently did not come back: it is over; its heartbeat is left to go stale");
        }
        // Never a fresh heartbeat: only runs silent for longer than the stale delay are closed.
        store
            .end_earlier_runs(&monitor, now_ms, now_ms - STALE_HEARTBEAT_MS)
            .await?;
        Ok(())
    }

    /// Checks the lock once: still held, taken again, or lost (see [`Check`]).
    pub async fn check(&mut self) -> Check {
        let monitor = self.monitor.clone();
        match &mut self.held {
            Held::File { file, path, db } => {
                if let Some(f) = file
                    && same_file(f, path)
                {
                    return Check::Held;
                }
                *file = None;
                match lock_file(path, db, &monitor) {
                    Ok(f) => {
                        *file = Some(f);
                        Check::Retaken
                    }
                    Err(LockError::Running { pid, .. }) => Check::TakenBy(pid),
                    Err(e) => Check::Unreachable(e.to_string()),
                }
            }
            Held::Session(s) => s.check().await,
        }
    }

    /// Checks the lock every [`LOCK_CHECK`] until `stop` turns true (returns `None`) or another
    /// process has held it for [`TAKEN_CHECKS`] checks in a row (returns [`LockError::Lost`]).
    pub async fn watch(&mut self, mut stop: watch::Receiver<bool>) -> Option<LockError> {
        let (mut taken, mut unreachable) = (0u32, false);
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return None,
                _ = tokio::time::sleep(LOCK_CHECK) => {}
            }
            match self.check().await {
                Check::Held => {
                    taken = 0;
                    if std::mem::take(&mut unreachable) {
                        tracing::info!(monitor = %self.monitor, "monitor lock held again");
                    }
                }
                Check::Retaken => {
                    taken = 0;
                    unreachable = false;
                    tracing::warn!(monitor = %self.monitor, "the monitor lock was lost (database restart or connection cut) and is taken again: probing goes on");
                }
                Check::Unreachable(why) => {
                    taken = 0;
                    if !std::mem::replace(&mut unreachable, true) {
                        tracing::warn!(monitor = %self.monitor, error = %why, "the monitor lock was lost and the database cannot be reached to take it again: probing goes on (observations go to the spill journal), retrying");
                    }
                }
                Check::TakenBy(holder) => {
                    taken += 1;
                    if taken >= TAKEN_CHECKS {
                        return Some(LockError::Lost {
                            monitor: self.monitor.clone(),
                            holder,
                            db: self.shown_db(),
                        });
                    }
                    tracing::warn!(monitor = %self.monitor, %holder, "the monitor lock was lost and another process holds it: checking again");
                }
            }
        }
    }

    fn shown_db(&self) -> String {
        match &self.held {
            Held::File { db, .. } => db.display().to_string(),
            Held::Session(s) => s.url().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Interface;
    use crate::store::testing::{Backend, on_both};

    on_both!(
        a_start_closes_only_the_stale_runs_of_its_id,
        a_lock_taken_from_under_a_node_is_seen
    );

    const NOW: i64 = 1_000_000_000;

    fn series() -> [(crate::domain::EstablishmentCode, Interface); 1] {
        [("13807".parse().unwrap(), Interface::Api)]
    }

    /// `stopped_at` and `stop_reason` of heartbeat `id`.
    async fn stopped(s: &Store, id: i64) -> (Option<i64>, Option<String>) {
        use sqlx::Row as _;
        let r = s
            .q("SELECT stopped_at, stop_reason FROM heartbeats WHERE id = ?")
            .bind(id)
            .fetch_one(s.pool())
            .await
            .unwrap();
        (r.get(0), r.get(1))
    }

    async fn a_start_closes_only_the_stale_runs_of_its_id(b: Backend) {
        let s = b.store("lock-stale").await;
        // "m" ran from NOW - 900 s and last beat at NOW - 121 s: stale (older than 120 s).
        let old = s
            .start_monitor("m", &series(), NOW - 900_000)
            .await
            .unwrap();
        s.beat(old, NOW - 121_000).await.unwrap();
        // Another "m" from NOW - 60 s beat at NOW - 2 s: fresh, perhaps live elsewhere.
        let live = s.start_monitor("m", &series(), NOW - 60_000).await.unwrap();
        s.beat(live, NOW - 2_000).await.unwrap();
        // "other" is stale but another id.
        let other = s.start_monitor("other", &series(), 0).await.unwrap();
        let fresh = s.fresh_runs("m", NOW).await.unwrap();
        assert_eq!(
            fresh,
            [crate::store::coverage::OpenRun {
                id: live,
                started_at: NOW - 60_000,
                last_beat: NOW - 2_000
            }]
        );
        let new = s.start_monitor("m", &series(), NOW).await.unwrap();
        assert_eq!(
            stopped(&s, old).await,
            (Some(NOW - 121_000), Some("not running at restart".into()))
        );
        assert_eq!(
            stopped(&s, live).await,
            (None, None),
            "a live heartbeat closed"
        );
        assert_eq!(stopped(&s, other).await, (None, None));
        assert_eq!(stopped(&s, new).await, (None, None));
        // At the edge: a beat exactly 120 s old is still fresh (coverage counts it ongoing).
        assert_eq!(s.fresh_runs("m", NOW + 118_000).await.unwrap().len(), 2);
        let ids: Vec<i64> = s
            .fresh_runs("m", NOW + 118_001)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(
            ids,
            [new],
            "the run beat at NOW - 2 s is stale 120 001 ms later"
        );
    }

    /// Ends `lock`'s connection from outside (as a database restart would) and, with
    /// `intruder`, takes the lock on a connection of the test's before the node can.
    async fn cut(s: &Store, intruder: bool) -> Option<sqlx::PgConnection> {
        use sqlx::Connection as _;
        let url = match s.target() {
            Target::Postgres(u) => u.clone(),
            Target::Sqlite(_) => unreachable!(),
        };
        let mut c = sqlx::PgConnection::connect(url.secret()).await.unwrap();
        let key: i64 = sqlx::query_scalar(
            "SELECT (l.classid::bigint << 32) | l.objid::bigint FROM pg_locks l \
             JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' \
             AND a.datname = current_database() AND a.application_name LIKE 'dispo run pid%'",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        let ended: i64 = sqlx::query_scalar(
            "SELECT COUNT(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name LIKE 'dispo run pid%'",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        assert_eq!(ended, 1);
        if !intruder {
            return None;
        }
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(key)
            .execute(&mut c)
            .await
            .unwrap();
        Some(c)
    }

    async fn a_lock_taken_from_under_a_node_is_seen(b: Backend) {
        let s = b.store("lock-lost").await;
        let mut lock = lock_monitor(s.target(), "m").await.unwrap();
        assert_eq!(lock.check().await, Check::Held);
        match b {
            Backend::Sqlite => {
                // The lock file deleted under the node: it locks a new one...
                let path = lock_path(&temp_of(&s), "m");
                std::fs::remove_file(&path).unwrap();
                assert_eq!(lock.check().await, Check::Retaken);
                assert_eq!(lock.check().await, Check::Held);
                // ...unless another process locked it first (flock: another open file).
                std::fs::remove_file(&path).unwrap();
                let _other = lock_file(&path, &temp_of(&s), "m").unwrap();
                let pid = format!("pid {}", std::process::id());
                assert_eq!(lock.check().await, Check::TakenBy(pid));
            }
            Backend::Postgres => {
                // Its connection ended (a restart, say), nobody else: taken again.
                cut(&s, false).await;
                assert_eq!(lock.check().await, Check::Retaken);
                assert_eq!(lock.check().await, Check::Held);
                // Ended, and another connection took it first: that one is named.
                let _intruder = cut(&s, true).await;
                match lock.check().await {
                    Check::TakenBy(who) => assert!(!who.starts_with("dispo run"), "{who}"),
                    other => panic!("{other:?}"),
                }
            }
        }
    }

    fn temp_of(s: &Store) -> PathBuf {
        match s.target() {
            Target::Sqlite(p) => p.clone(),
            Target::Postgres(_) => unreachable!(),
        }
    }

    /// The store's `--db` on PostgreSQL, for a second lock.
    async fn pg_store(name: &str) -> Store {
        Backend::Postgres.store(name).await
    }

    #[tokio::test]
    async fn on_sqlite_a_start_closes_a_killed_runs_fresh_heartbeat() {
        // The file lock proves every earlier run of the id over (killed a moment ago).
        let s = Backend::Sqlite.store("lock-admit").await;
        let killed = s.start_monitor("m", &series(), NOW - 60_000).await.unwrap();
        s.beat(killed, NOW - 1_000).await.unwrap();
        let mut lock = lock_monitor(s.target(), "m").await.unwrap();
        lock.admit(&s, NOW).await.unwrap();
        assert_eq!(
            stopped(&s, killed).await,
            (Some(NOW - 1_000), Some("not running at restart".into()))
        );
    }

    #[tokio::test]
    async fn on_postgresql_a_start_beside_a_beating_run_without_lock_is_refused() {
        let s = pg_store("lock-dup").await;
        // A live node that lost its lock (and, say, an old version: never takes it again)
        // beats every 200 ms.
        let now = chrono::Utc::now().timestamp_millis();
        let live = s.start_monitor("m", &series(), now - 10_000).await.unwrap();
        s.beat(live, now).await.unwrap();
        let beating = tokio::spawn({
            let s = s.clone();
            async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    s.beat(live, chrono::Utc::now().timestamp_millis())
                        .await
                        .unwrap();
                }
            }
        });
        let mut lock = lock_monitor(s.target(), "m").await.unwrap();
        let e = lock.admit(&s, now + 100).await.unwrap_err();
        beating.abort();
        assert!(matches!(e, LockError::Duplicate { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("another node with monitor id 'm' is running")
                && text.contains("`[monitor] id`"),
            "{text}"
        );
        assert_eq!(stopped(&s, live).await, (None, None));
    }

    #[tokio::test]
    async fn on_postgresql_a_start_yields_to_a_run_that_takes_its_lock_again() {
        let s = pg_store("lock-yield").await;
        let now = chrono::Utc::now().timestamp_millis();
        let live = s.start_monitor("m", &series(), now - 10_000).await.unwrap();
        s.beat(live, now).await.unwrap();
        let mut lock = lock_monitor(s.target(), "m").await.unwrap();
        // The live node takes its lock again as soon as the starting one lets it go.
        let retaking = tokio::spawn({
            let target = s.target().clone();
            async move {
                loop {
                    if let Ok(l) = lock_monitor(&target, "m").await {
                        return l;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        let e = lock.admit(&s, now + 100).await.unwrap_err();
        let _theirs = retaking.await.unwrap();
        assert!(matches!(e, LockError::Running { .. }), "{e}");
        assert!(e.to_string().contains("dispo run pid"), "{e}");
        assert_eq!(stopped(&s, live).await, (None, None));
    }

    #[tokio::test]
    async fn on_postgresql_a_start_after_a_kill_waits_then_leaves_the_fresh_heartbeat_open() {
        let s = pg_store("lock-killed").await;
        let now = chrono::Utc::now().timestamp_millis();
        // Killed 1 s ago: fresh, silent, no lock. And a run dead for 10 minutes.
        let killed = s.start_monitor("m", &series(), now - 10_000).await.unwrap();
        s.beat(killed, now - 1_000).await.unwrap();
        let old = s
            .start_monitor("m", &series(), now - 900_000)
            .await
            .unwrap();
        s.beat(old, now - 600_000).await.unwrap();
        let mut lock = lock_monitor(s.target(), "m").await.unwrap();
        let t0 = std::time::Instant::now();
        lock.admit(&s, now).await.unwrap();
        assert!(t0.elapsed() >= ADMIT_WAIT, "{:?}", t0.elapsed());
        assert_eq!(stopped(&s, killed).await, (None, None), "left to go stale");
        assert_eq!(
            stopped(&s, old).await,
            (Some(now - 600_000), Some("not running at restart".into()))
        );
        // And the lock is held again after the wait.
        assert_eq!(lock.check().await, Check::Held);
    }
}

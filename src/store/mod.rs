//! The store: observations, monitor heartbeats and what the other stages persist, in SQLite
//! (the embedded default) or PostgreSQL (shared by several monitors), through sqlx.
//!
//! In: observations from probes and imports, heartbeats from the probe daemon. Out: the rows the
//! engine counts from. Where it lives is a [`Target`] (`--db FILE` or `--db postgres://...`).
//! Schema in `migrations/` (SQLite) and `migrations/postgres/`, applied on open. The small
//! queries go through sqlx's `Any` driver, written once with `?` placeholders ([`Store::sql`]
//! numbers them for PostgreSQL); the heavy paths have one implementation per backend: the bulk
//! insert ([`bulk`] over SQLite's C API, [`pg`] through `COPY`) and the streamed read of a
//! period ([`scan`], [`pg`]).
//!
//! SQLite: WAL mode so readers (`kpi`, `report`) never block the monitor; `synchronous = FULL`
//! on every connection, so a write is durable once its transaction commits, through a `kill -9`
//! and through a power cut (see [`SYNCHRONOUS`]). Times are integer epoch ms UTC.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{AnyPool, Connection as _, Executor as _, PgPool, Row, SqlSafeStr, SqlStr};

mod bulk;
pub mod coverage;
pub mod lock;
mod outbox;
pub mod pg;
#[doc(hidden)]
pub mod pg_cluster;
mod raw;
pub mod scan;
pub mod spill;
mod target;
mod tokens;
pub mod vantages;

pub use lock::{LockError, MonitorLock, lock_monitor};
pub use outbox::PendingDelivery;
pub use target::{PgUrl, Target, TargetError, state_dir};
pub use vantages::VantageEpisode;

use crate::domain::{
    DomainError, EstablishmentCode, Interface, NoReplyKind, Observation, Outcome, Phases, Service,
    Source, Vantage,
};

/// What can go wrong with the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {path}: {source}")]
    Open { path: String, source: sqlx::Error },
    #[error("cannot bring database {path} to the current schema: {source}")]
    Migrate {
        path: String,
        source: sqlx::migrate::MigrateError,
    },
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("database {path}: {why}")]
    Raw { path: String, why: String },
    /// Observations have no row number: the identity key (time, establishment, request id)
    /// is what locates one.
    #[error("the stored observation {row} holds a bad value: {source}")]
    BadRow {
        /// Time, establishment and request id, as text.
        row: String,
        source: DomainError,
    },
}

/// An observation with what only the store keeps beside it: error text, the kind of no-reply,
/// the probe that made it, its phases, and whether it is synthetic.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObservation {
    pub obs: Observation,
    pub error_text: Option<String>,
    pub no_reply_kind: Option<NoReplyKind>,
    pub probe_id: Option<String>,
    pub phases: Option<Phases>,
    pub synthetic: bool,
}

impl From<Observation> for StoredObservation {
    fn from(obs: Observation) -> Self {
        Self {
            obs,
            error_text: None,
            no_reply_kind: None,
            probe_id: None,
            phases: None,
            synthetic: false,
        }
    }
}

/// A handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    /// Every small query, either backend.
    pool: AnyPool,
    target: Target,
    /// PostgreSQL only: the native pool for `COPY`, the streamed reads and the locks.
    pg: Option<PgPool>,
}

/// Page size of a new database, in bytes (an existing one keeps its own). Twice SQLite's
/// default: observation rows are small and arrive in order, and bigger pages split half as often
/// and make the tree one level shallower for a quarter of gateway logs.
const PAGE_SIZE: u32 = 8192;

/// Durability of every connection (the pool's and the inserting one of [`bulk`]). In WAL mode
/// `NORMAL` syncs the log only at checkpoints: a commit survives `kill -9` but not a power cut,
/// which may take the last commits (observations, alerts, outbox marks) the monitor reported
/// written. `FULL` syncs the log at each commit: about 6 ms a commit on the CI machine's disk
/// (200 commits of 100 rows: 1.5-1.7 s against 0.3-0.6 s). The daemon writes whatever arrived
/// during the previous commit in one transaction, so under load its commits grow rather than
/// queue; `dispo import` commits 50 000 rows at a time, where it made no measurable difference
/// (1 M rows: 9.8 and 7.5 s with `FULL`, 9.8 and 9.5 s with `NORMAL`, debug build). So the
/// import keeps `FULL` too rather than a second, weaker setting.
pub(crate) const SYNCHRONOUS: &str = "FULL";

/// Creates a new database file readable by its owner only (0600): it holds request ids, TPP
/// ids and error texts; SQLite gives its journal and shared-memory files the same mode. An
/// existing file is left as it is.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    match o.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// `?` placeholders numbered `$1, $2...` for PostgreSQL (outside quoted text).
pub(crate) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let (mut n, mut quoted) = (0, false);
    for c in sql.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    out
}

/// The `sqlite:` URL of a file for sqlx's `Any` driver: the path percent-encoded (`?`, `#`,
/// `%` and spaces are path characters to SQLite, syntax to a URL).
fn sqlite_url(path: &Path) -> String {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut url = String::from("sqlite://");
    for b in abs.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/._-~".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

impl Store {
    /// Opens (creating if missing) the database `db` and applies the migrations.
    pub async fn open(db: impl Into<Target>) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let target: Target = db.into();
        let shown = target.to_string();
        let open_err = |source| StoreError::Open {
            path: shown.clone(),
            source,
        };
        let (pool, pg, migrator) = match &target {
            Target::Sqlite(path) => {
                create_private(path).map_err(|e| StoreError::Raw {
                    path: shown.clone(),
                    why: format!("cannot create the database: {e}"),
                })?;
                // Page size and WAL belong to the file: set once, natively, before the pool.
                let opts = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .page_size(PAGE_SIZE)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(std::time::Duration::from_secs(30))
                    .foreign_keys(true);
                // Another process setting up the same new file (two nodes started at once) holds
                // it while it switches to WAL, and SQLite answers "database is locked" at once
                // there, without waiting: try again for up to the busy time-out.
                let began = std::time::Instant::now();
                let first = loop {
                    match sqlx::SqliteConnection::connect_with(&opts).await {
                        Err(sqlx::Error::Database(d))
                            if matches!(d.code().as_deref(), Some("5" | "6"))
                                && began.elapsed() < std::time::Duration::from_secs(30) =>
                        {
                            tracing::debug!(error = %d, "database busy while opening; trying again");
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        }
                        other => break other.map_err(open_err)?,
                    }
                };
                first.close().await.map_err(open_err)?;
                let pool = AnyPoolOptions::new()
                    .max_connections(4)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("PRAGMA busy_timeout = 30000").await?;
                            conn.execute("PRAGMA synchronous = FULL").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            Ok(())
                        })
                    })
                    .connect(&sqlite_url(path))
                    .await
                    .map_err(open_err)?;
                (pool, None, sqlx::migrate!("./migrations"))
            }
            Target::Postgres(url) => {
                let opts = PgConnectOptions::from_str(url.secret())
                    .map_err(open_err)?
                    .application_name("dispo");
                let pg = PgPoolOptions::new()
                    .max_connections(4)
                    .connect_with(opts)
                    .await
                    .map_err(open_err)?;
                let pool = AnyPoolOptions::new()
                    .max_connections(4)
                    .connect(url.secret())
                    .await
                    .map_err(open_err)?;
                (pool, Some(pg), sqlx::migrate!("./migrations/postgres"))
            }
        };
        // Two commands opening a database a migration is due on may both start it: the second
        // waits for the first's write lock, then fails on the migration the first recorded (its
        // transaction rolls back whole). Run again, it finds the migration applied. On a new
        // file each migration can collide so (two nodes started at once on a loaded machine
        // failed three attempts): one attempt more than there are migrations. (Not an `flock`
        // on the file: closing that descriptor would drop this process's own SQLite locks, and
        // another process would then take the WAL for abandoned.)
        // (PostgreSQL: sqlx serialises migrators with an advisory lock.)
        let attempts = migrator.iter().count() as u32 + 1;
        let mut attempt = 1;
        loop {
            match migrator.run(&pool).await {
                Ok(()) => break,
                Err(e) if attempt < attempts => {
                    tracing::debug!(error = %e, attempt, "migration failed; trying again");
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                Err(source) => {
                    return Err(StoreError::Migrate {
                        path: shown,
                        source,
                    });
                }
            }
        }
        let spill = spill::Spill::of(&target);
        if spill.pending() {
            // Every reader hears of it: what the journal holds is in no figure yet.
            tracing::warn!(
                journal = %spill.path().display(),
                lines = spill.count_lines(),
                "observations the database refused wait in the spill journal: no figure counts them until `dispo run` on this database replays them"
            );
        }
        Ok(Self { pool, target, pg })
    }

    /// `sql` as this backend writes it: written with `?` placeholders, numbered `$1, $2...`
    /// for PostgreSQL.
    pub fn sql(&self, sql: &str) -> SqlStr {
        match self.target {
            Target::Sqlite(_) => sqlx::AssertSqlSafe(sql.to_owned()).into_sql_str(),
            Target::Postgres(_) => sqlx::AssertSqlSafe(numbered(sql)).into_sql_str(),
        }
    }

    /// A query on this backend (see [`Store::sql`]).
    pub fn q(&self, sql: &str) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
        sqlx::query(self.sql(sql))
    }

    /// The first text where the backends differ (SQLite's scalar `MAX(a, b)` is PostgreSQL's
    /// `GREATEST(a, b)`...).
    pub(crate) fn pick<'a>(&self, sqlite: &'a str, postgres: &'a str) -> &'a str {
        match self.target {
            Target::Sqlite(_) => sqlite,
            Target::Postgres(_) => postgres,
        }
    }

    /// Whether the store is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// Establishments whose fallback access TPPs used (gateway log rows) in `[from_ms, to_ms)`:
    /// the only ones with fallback use to judge.
    pub async fn fallback_users(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<EstablishmentCode>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar(self.sql(
            "SELECT DISTINCT establishment FROM observations WHERE received_at >= ? \
             AND received_at < ? AND interface = 'fallback' AND source = 'log'",
        ))
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|c| {
                c.parse().map_err(|source| StoreError::BadRow {
                    row: format!("establishment {c}"),
                    source,
                })
            })
            .collect()
    }

    /// Where the database is.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The pool of the small queries (either backend; write SQL through [`Store::sql`]).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The native PostgreSQL pool, when the store is PostgreSQL.
    pub fn pg_pool(&self) -> Option<&PgPool> {
        self.pg.as_ref()
    }

    /// Opens a database that must already exist: a missing, empty or non-SQLite file is
    /// refused untouched (`dispo kpi --db notes.txt` must not turn it into a database), and
    /// so is a PostgreSQL database without dispo's tables.
    pub async fn open_existing(db: impl Into<Target>) -> Result<Self, StoreError> {
        let target: Target = db.into();
        let path = match &target {
            Target::Sqlite(p) => p.clone(),
            Target::Postgres(u) => {
                pg::check_exists(u).await?;
                return Self::open(target).await;
            }
        };
        let path = path.as_path();
        let shown = std::path::absolute(path)
            .unwrap_or_else(|_| path.to_owned())
            .display()
            .to_string();
        let raw = |why: String| StoreError::Raw {
            path: shown.clone(),
            why,
        };
        let mut head = [0u8; 16];
        let read = std::fs::File::open(path).and_then(|mut f| {
            use std::io::Read as _;
            let mut n = 0;
            while n < head.len() {
                match f.read(&mut head[n..])? {
                    0 => break,
                    k => n += k,
                }
            }
            Ok(n)
        });
        match read {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(raw(
                "does not exist (create it with `dispo run`, `dispo import` or `dispo synth`)"
                    .into(),
            )),
            Err(e) => Err(raw(crate::messages::io_reason(&e))),
            Ok(0) => Err(raw("is empty: not a dispo database".into())),
            Ok(n) if n < 16 || &head != b"SQLite format 3\0" => {
                Err(raw("is not a SQLite database".into()))
            }
            Ok(_) => Self::open(path).await,
        }
    }

    /// Writes the write-ahead log back into the database file and closes every connection, so
    /// the `.db` file alone holds everything (a copy of it is a backup; `-wal` and `-shm` are
    /// removed). Called when a command that wrote ends; other holders of the pool see it closed.
    pub async fn close(&self) {
        if !self.is_postgres()
            && let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await
        {
            tracing::warn!(db = %self.target, error = %e, "checkpoint at exit failed");
        }
        self.pool.close().await;
        if let Some(pg) = &self.pg {
            pg.close().await;
        }
    }

    /// A consistent copy of the database into `to` (`VACUUM INTO`), safe while `dispo run`
    /// writes; `to` must not exist.
    pub async fn backup(&self, to: &Path) -> Result<(), StoreError> {
        if self.is_postgres() {
            return Err(StoreError::Raw {
                path: self.target.to_string(),
                why: "is a PostgreSQL database: back it up with PostgreSQL's own tools, e.g. \
                      `pg_dump --format=custom --file=dispo.dump 'postgres://...'` (restore with \
                      pg_restore), or continuous archiving"
                    .into(),
            });
        }
        let target = to.to_str().ok_or_else(|| StoreError::Raw {
            path: to.display().to_string(),
            why: "the path is not UTF-8".into(),
        })?;
        // Private like the database (SQLite fills an empty file).
        create_private(to).map_err(|e| StoreError::Raw {
            path: to.display().to_string(),
            why: crate::messages::io_reason(&e),
        })?;
        sqlx::query("VACUUM INTO ?")
            .bind(target)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Inserts observations in one transaction; rows already present (same request id, time and
    /// establishment) are skipped. Returns how many rows were new.
    pub async fn insert_observations(
        &self,
        rows: impl Into<Arc<[StoredObservation]>>,
    ) -> Result<u64, StoreError> {
        self.insert_within(rows.into(), None).await
    }

    /// As [`Store::insert_observations`], failing once another writer has held the lock for
    /// `wait` (the monitor would rather spill to its journal than stall its probes).
    pub async fn insert_observations_within(
        &self,
        rows: impl Into<Arc<[StoredObservation]>>,
        wait: std::time::Duration,
    ) -> Result<u64, StoreError> {
        let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
        self.insert_within(rows.into(), Some(ms)).await
    }

    async fn insert_within(
        &self,
        rows: Arc<[StoredObservation]>,
        busy_ms: Option<i32>,
    ) -> Result<u64, StoreError> {
        let path = match (&self.target, &self.pg) {
            (_, Some(pg)) => return pg::insert(pg, &rows, busy_ms).await,
            (Target::Sqlite(p), None) => p.clone(),
            (Target::Postgres(_), None) => unreachable!("a PostgreSQL store has its pool"),
        };
        tokio::task::spawn_blocking(move || bulk::insert(&path, &rows, busy_ms))
            .await
            .map_err(|e| StoreError::Raw {
                path: self.target.to_string(),
                why: format!("the inserting thread stopped: {e}"),
            })?
    }

    /// Observations received in `[from_ms, to_ms)`, optionally only for some establishments,
    /// in (received_at, request_id) order.
    pub async fn load_observations(
        &self,
        from_ms: i64,
        to_ms: i64,
        establishments: &[EstablishmentCode],
    ) -> Result<Vec<StoredObservation>, StoreError> {
        // Establishment codes are five digits (checked by their type): safe to inline.
        let filter = if establishments.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = establishments
                .iter()
                .map(|e| format!("'{}'", e.as_str()))
                .collect();
            format!(" AND establishment IN ({})", list.join(", "))
        };
        let select = format!(
            "SELECT received_at, establishment, interface, service, source, tpp, status, \
             latency_ms, error_code, error_text, request_id, outcome, no_reply_kind, probe_id, \
             resolve_ms, connect_ms, tls_ms, processing_ms, transfer_ms, synthetic, vantage \
             FROM observations WHERE received_at >= ? AND received_at < ?{filter} \
             ORDER BY received_at, request_id"
        );
        // Streamed: each row becomes an observation as it arrives, so the database's rows are
        // never all held at once beside the observations made from them.
        use futures_util::TryStreamExt as _;
        // Counted first, so the vector is allocated once rather than grown by doubling.
        let count = format!(
            "SELECT COUNT(*) FROM observations WHERE received_at >= ? AND received_at < ?{filter}"
        );
        let n: i64 = self
            .q(&count)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        let mut out = Vec::with_capacity(n.max(0) as usize);
        let q = self.q(&select).bind(from_ms).bind(to_ms);
        let mut rows = q.fetch(&self.pool);
        while let Some(r) = rows.try_next().await? {
            out.push(row_to_observation(&r)?);
        }
        Ok(out)
    }

    /// What the engine counts from, for `[from_ms, to_ms)`: the lean read of [`scan`], on a
    /// blocking thread.
    pub async fn load_for_counting(
        &self,
        from_ms: i64,
        to_ms: i64,
        establishments: &[EstablishmentCode],
        probe_latency: crate::engine::ProbeLatency,
    ) -> Result<scan::CountingRows, StoreError> {
        let path = match (&self.target, &self.pg) {
            (_, Some(pg)) => {
                return pg::read(pg, from_ms, to_ms, establishments, probe_latency).await;
            }
            (Target::Sqlite(p), None) => p.clone(),
            (Target::Postgres(_), None) => unreachable!("a PostgreSQL store has its pool"),
        };
        let ests = establishments.to_vec();
        tokio::task::spawn_blocking(move || scan::read(&path, from_ms, to_ms, &ests, probe_latency))
            .await
            .map_err(|e| StoreError::Raw {
                path: self.target.to_string(),
                why: format!("the reading thread failed: {e}"),
            })?
    }

    /// The observations of `[from_ms, to_ms)` in `received_at` order without holding them all:
    /// [`scan::stream`] on a blocking thread, handing each batch to `each` with `state` (given
    /// back at the end, with whether any row read is synthetic). `each` returning `false` stops.
    pub async fn stream_for_counting<S, F>(
        &self,
        from_ms: i64,
        to_ms: i64,
        establishments: &[EstablishmentCode],
        probe_latency: crate::engine::ProbeLatency,
        mut state: S,
        mut each: F,
    ) -> Result<(S, bool), StoreError>
    where
        S: Send + 'static,
        F: FnMut(&mut S, Vec<Observation>) -> bool + Send + 'static,
    {
        let path = match (&self.target, &self.pg) {
            (_, Some(pg)) => {
                return pg::stream(
                    pg,
                    from_ms,
                    to_ms,
                    establishments,
                    probe_latency,
                    state,
                    each,
                )
                .await;
            }
            (Target::Sqlite(p), None) => p.clone(),
            (Target::Postgres(_), None) => unreachable!("a PostgreSQL store has its pool"),
        };
        let ests = establishments.to_vec();
        tokio::task::spawn_blocking(move || {
            let synthetic = scan::stream(&path, from_ms, to_ms, &ests, probe_latency, |b| {
                each(&mut state, b)
            })?;
            Ok((state, synthetic))
        })
        .await
        .map_err(|e| StoreError::Raw {
            path: self.target.to_string(),
            why: format!("the reading thread failed: {e}"),
        })?
    }

    /// The earliest and latest `received_at` in the store, if any.
    pub async fn observation_span(&self) -> Result<Option<(i64, i64)>, StoreError> {
        let row = sqlx::query("SELECT MIN(received_at), MAX(received_at) FROM observations")
            .fetch_one(&self.pool)
            .await?;
        let min: Option<i64> = row.try_get(0)?;
        let max: Option<i64> = row.try_get(1)?;
        Ok(min.zip(max))
    }

    /// Advances a running monitor's heartbeat.
    pub async fn beat(&self, heartbeat_id: i64, now_ms: i64) -> Result<(), StoreError> {
        self.q(self.pick(
            "UPDATE heartbeats SET last_beat = MAX(last_beat, ?) WHERE id = ?",
            "UPDATE heartbeats SET last_beat = GREATEST(last_beat, ?) WHERE id = ?",
        ))
        .bind(now_ms)
        .bind(heartbeat_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Closes a monitor's heartbeat on a clean stop.
    pub async fn stop_heartbeat(
        &self,
        heartbeat_id: i64,
        now_ms: i64,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.q(self.pick(
            "UPDATE heartbeats SET last_beat = MAX(last_beat, ?), stopped_at = ?, stop_reason = ? WHERE id = ?",
            "UPDATE heartbeats SET last_beat = GREATEST(last_beat, ?), stopped_at = ?, stop_reason = ? WHERE id = ?",
        ))
        .bind(now_ms)
        .bind(now_ms)
        .bind(reason)
        .bind(heartbeat_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// The error for an observation row holding a value the domain refuses.
pub(crate) fn bad_row(
    at_ms: i64,
    establishment: &str,
    request_id: &str,
    source: DomainError,
) -> StoreError {
    StoreError::BadRow {
        row: format!(
            "of {} (establishment {establishment:?}, request id {request_id:?})",
            crate::engine::time::rfc3339(at_ms)
        ),
        source,
    }
}

fn row_to_observation(r: &AnyRow) -> Result<StoredObservation, StoreError> {
    let parse = |col: &str| -> Result<String, StoreError> { Ok(r.try_get::<String, _>(col)?) };
    let (at, est, rid): (i64, String, String) = (
        r.try_get("received_at")?,
        parse("establishment")?,
        parse("request_id")?,
    );
    let bad = |source| bad_row(at, &est, &rid, source);
    let status: Option<i64> = r.try_get("status")?;
    let no_reply_kind: Option<String> = r.try_get("no_reply_kind")?;
    let resolve: Option<f64> = r.try_get("resolve_ms")?;
    let phases = match resolve {
        Some(resolve_ms) => Some(Phases {
            resolve_ms,
            connect_ms: r.try_get::<Option<f64>, _>("connect_ms")?.unwrap_or(0.0),
            tls_ms: r.try_get::<Option<f64>, _>("tls_ms")?.unwrap_or(0.0),
            processing_ms: r.try_get::<Option<f64>, _>("processing_ms")?.unwrap_or(0.0),
            transfer_ms: r.try_get::<Option<f64>, _>("transfer_ms")?.unwrap_or(0.0),
        }),
        None => None,
    };
    Ok(StoredObservation {
        obs: Observation {
            received_at_ms: at,
            establishment: EstablishmentCode::from_str(&est).map_err(bad)?,
            interface: Interface::from_str(&parse("interface")?).map_err(bad)?,
            service: Service::from_str(&parse("service")?).map_err(bad)?,
            source: Source::from_str(&parse("source")?).map_err(bad)?,
            tpp: r.try_get::<Option<String>, _>("tpp")?.map(Into::into),
            status: status.map(|s| s as u16),
            latency_ms: r.try_get("latency_ms")?,
            error_code: r
                .try_get::<Option<String>, _>("error_code")?
                .map(Into::into),
            request_id: rid.as_str().into(),
            outcome: Outcome::from_str(&parse("outcome")?).map_err(bad)?,
            vantage: Vantage::from_str(&parse("vantage")?).map_err(bad)?,
        },
        error_text: r.try_get("error_text")?,
        no_reply_kind: no_reply_kind
            .as_deref()
            .map(NoReplyKind::from_str)
            .transpose()
            .map_err(bad)?,
        probe_id: r.try_get("probe_id")?,
        phases,
        synthetic: r.try_get::<i64, _>("synthetic")? != 0,
    })
}

/// For the tests of the store's users: a fresh store on either backend.
#[cfg(test)]
pub(crate) mod testing {
    use super::{Store, Target};

    /// Which store a test runs on.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Backend {
        Sqlite,
        Postgres,
    }

    impl Backend {
        /// A new empty store named after `name`: a file in a fresh temporary directory, or a
        /// fresh database on the test binary's PostgreSQL cluster.
        pub async fn store(self, name: &str) -> Store {
            match self {
                Backend::Sqlite => {
                    let dir = std::env::temp_dir()
                        .join(format!("dispo-store-{name}-{}", std::process::id()));
                    let _ = std::fs::remove_dir_all(&dir);
                    std::fs::create_dir_all(&dir).unwrap();
                    Store::open(&dir.join("t.db")).await.unwrap()
                }
                Backend::Postgres => {
                    let url = tokio::task::spawn_blocking({
                        let name = name.to_owned();
                        move || super::pg_cluster::Cluster::shared().fresh_db(&name)
                    })
                    .await
                    .unwrap();
                    Store::open(url.parse::<Target>().unwrap()).await.unwrap()
                }
            }
        }
    }

    /// Runs `async fn NAME(Backend)` as two tests, `NAME::sqlite` and `NAME::postgres`.
    macro_rules! on_both {
        ($($name:ident),* $(,)?) => {$(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name(crate::store::testing::Backend::Sqlite).await
                }
                #[tokio::test]
                async fn postgres() {
                    super::$name(crate::store::testing::Backend::Postgres).await
                }
            }
        )*};
    }
    pub(crate) use on_both;
}

#[cfg(test)]
mod tests;

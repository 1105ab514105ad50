//! The heavy paths of the store on PostgreSQL: the bulk insert through `COPY`, the streamed
//! read of a period for the engine, the monitor lock's session and the existence check. The SQLite
//! counterparts are [`super::bulk`] and [`super::scan`].
//!
//! Insert: the rows go by `COPY ... FROM STDIN` (text format) into a temporary staging table,
//! then one `INSERT ... SELECT ... ON CONFLICT DO NOTHING` moves them in, inside one
//! transaction: all or nothing, and idempotent like SQLite's `INSERT OR IGNORE` (a row already
//! present, same time, establishment and request id, is skipped and not counted).
//!
//! Read: `fetch` streams the rows as the server sends them, in (received_at, establishment,
//! request_id) order, the order SQLite's clustered key gives: the engine sees the same rows in
//! the same order from either store, so every figure is identical.

use std::str::FromStr;

use futures_util::TryStreamExt as _;
use sqlx::postgres::{PgConnectOptions, PgRow};
use sqlx::{Connection as _, PgPool, Row as _};

use super::scan::CountingRows;
use super::{LockError, PgUrl, StoreError, StoredObservation};
use crate::domain::{
    CompactString, EstablishmentCode, Interface, Observation, Outcome, Service, Source, Vantage,
};
use crate::engine::{ProbeLatency, response_time_ms};

/// The columns a `COPY` fills, in the order of [`copy_text`].
const COPY_COLUMNS: &str = "received_at, establishment, interface, service, source, tpp, status, \
     latency_ms, error_code, error_text, request_id, outcome, no_reply_kind, probe_id, \
     resolve_ms, connect_ms, tls_ms, processing_ms, transfer_ms, synthetic, vantage";

/// Bytes handed to the server at a time during a `COPY`.
const COPY_CHUNK: usize = 1 << 20;

/// Inserts `rows` in one transaction; rows already present are skipped. Returns how many were
/// new. `lock_ms` bounds the wait for locks (another writer of the same keys): past it the
/// insert fails and the monitor spills, as with SQLite's busy timeout.
pub(crate) async fn insert(
    pg: &PgPool,
    rows: &[StoredObservation],
    lock_ms: Option<i32>,
) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let mut tx = pg.begin().await?;
    if let Some(ms) = lock_ms {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SET LOCAL lock_timeout = {}",
            ms.max(1)
        )))
        .execute(&mut *tx)
        .await?;
    }
    // Dropped at commit: nothing is left behind on the pooled connection.
    sqlx::query(
        "CREATE TEMP TABLE observations_stage (LIKE observations INCLUDING DEFAULTS) ON COMMIT DROP",
    )
    .execute(&mut *tx)
    .await?;
    let mut copy = tx
        .copy_in_raw(&format!(
            "COPY observations_stage ({COPY_COLUMNS}) FROM STDIN (FORMAT text)"
        ))
        .await?;
    let mut buf = String::with_capacity(COPY_CHUNK + 4096);
    let mut sent = Ok(());
    for r in rows {
        copy_text(&mut buf, r);
        if buf.len() >= COPY_CHUNK {
            sent = copy.send(buf.as_bytes()).await.map(drop);
            buf.clear();
            if sent.is_err() {
                break;
            }
        }
    }
    if sent.is_ok() && !buf.is_empty() {
        sent = copy.send(buf.as_bytes()).await.map(drop);
    }
    if let Err(e) = sent {
        // Ends the COPY, so the connection can be used again; the transaction rolls back.
        let _ = copy.abort(e.to_string()).await;
        return Err(e.into());
    }
    copy.finish().await?;
    let added = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO observations ({COPY_COLUMNS}) SELECT {COPY_COLUMNS} FROM observations_stage \
         ON CONFLICT DO NOTHING"
    )))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(added)
}

/// Appends one row in `COPY`'s text format: tab-separated, `\N` for NULL, backslash escapes.
fn copy_text(buf: &mut String, r: &StoredObservation) {
    use std::fmt::Write as _;
    let o = &r.obs;
    let p = r.phases;
    let _ = write!(buf, "{}\t", o.received_at_ms);
    text(buf, Some(o.establishment.as_str()));
    text(buf, Some(o.interface.as_str()));
    text(buf, Some(o.service.as_str()));
    text(buf, Some(o.source.as_str()));
    text(buf, o.tpp.as_deref());
    num(buf, o.status);
    float(buf, o.latency_ms);
    text(buf, o.error_code.as_deref());
    text(buf, r.error_text.as_deref());
    text(buf, Some(o.request_id.as_str()));
    text(buf, Some(o.outcome.as_str()));
    text(buf, r.no_reply_kind.map(|k| k.as_str()));
    text(buf, r.probe_id.as_deref());
    float(buf, p.map(|p| p.resolve_ms));
    float(buf, p.map(|p| p.connect_ms));
    float(buf, p.map(|p| p.tls_ms));
    float(buf, p.map(|p| p.processing_ms));
    float(buf, p.map(|p| p.transfer_ms));
    let _ = write!(buf, "{}\t", i64::from(r.synthetic));
    // The last column: no tab after it, the line ends.
    text(buf, Some(o.vantage.as_str()));
    buf.pop();
    buf.push('\n');
}

fn text(buf: &mut String, v: Option<&str>) {
    match v {
        None => buf.push_str("\\N"),
        Some(s) => {
            for c in s.chars() {
                match c {
                    '\\' => buf.push_str("\\\\"),
                    '\t' => buf.push_str("\\t"),
                    '\n' => buf.push_str("\\n"),
                    '\r' => buf.push_str("\\r"),
                    _ => buf.push(c),
                }
            }
        }
    }
    buf.push('\t');
}

fn num(buf: &mut String, v: Option<u16>) {
    use std::fmt::Write as _;
    match v {
        None => buf.push_str("\\N"),
        Some(n) => {
            let _ = write!(buf, "{n}");
        }
    }
    buf.push('\t');
}

fn float(buf: &mut String, v: Option<f64>) {
    use std::fmt::Write as _;
    match v {
        None => buf.push_str("\\N"),
        // Rust prints the shortest text that reads back to the same double: exact round trip.
        Some(x) if x.is_finite() => {
            let _ = write!(buf, "{x}");
        }
        Some(x) if x.is_nan() => buf.push_str("NaN"),
        Some(x) if x > 0.0 => buf.push_str("Infinity"),
        Some(_) => buf.push_str("-Infinity"),
    }
    buf.push('\t');
}

/// The columns [`decode`] reads, in its order (as [`super::scan`]).
const COLUMNS: &str = "received_at, establishment, interface, service, source, tpp, status, \
     latency_ms, error_code, request_id, outcome, synthetic, processing_ms, transfer_ms, vantage";

/// Observations handed over at a time by [`stream`].
const BATCH: usize = 4_096;

/// `AND establishment IN (...)`, or nothing for every establishment.
fn filter(establishments: &[EstablishmentCode]) -> String {
    if establishments.is_empty() {
        return String::new();
    }
    // Establishment codes are five digits (checked by their type): safe to inline.
    let list: Vec<String> = establishments
        .iter()
        .map(|e| format!("'{}'", e.as_str()))
        .collect();
    format!(" AND establishment IN ({})", list.join(", "))
}

fn period_sql(establishments: &[EstablishmentCode]) -> String {
    let filter = filter(establishments);
    format!(
        "SELECT {COLUMNS} FROM observations WHERE received_at >= $1 AND received_at < $2{filter} \
         ORDER BY received_at, establishment, request_id"
    )
}

/// The last service and vantage parsed: rows of one series repeat them, so they are reused.
#[derive(Default)]
struct Last {
    service: Option<Service>,
    vantage: Option<Vantage>,
}

fn decode(
    r: &PgRow,
    last: &mut Last,
    probe_latency: ProbeLatency,
) -> Result<(Observation, bool), StoreError> {
    let at: i64 = r.try_get(0)?;
    let est: &str = r.try_get(1)?;
    let rid: &str = r.try_get(9)?;
    let bad = |source| super::bad_row(at, est, rid, source);
    let service_text: &str = r.try_get(3)?;
    let service = match &last.service {
        Some(s) if s.as_str() == service_text => s.clone(),
        _ => {
            let s = Service::from_str(service_text).map_err(bad)?;
            last.service = Some(s.clone());
            s
        }
    };
    let vantage_text: &str = r.try_get(14)?;
    let vantage = match &last.vantage {
        Some(v) if v.as_str() == vantage_text => v.clone(),
        _ => {
            let v = Vantage::from_str(vantage_text).map_err(bad)?;
            last.vantage = Some(v.clone());
            v
        }
    };
    let source = Source::from_str(r.try_get(4)?).map_err(bad)?;
    let latency_ms = response_time_ms(
        probe_latency,
        source,
        r.try_get(7)?,
        r.try_get(12)?,
        r.try_get(13)?,
    );
    let status: Option<i64> = r.try_get(6)?;
    let o = Observation {
        received_at_ms: at,
        establishment: EstablishmentCode::from_str(est).map_err(bad)?,
        interface: Interface::from_str(r.try_get(2)?).map_err(bad)?,
        service,
        source,
        tpp: r.try_get::<Option<&str>, _>(5)?.map(CompactString::new),
        status: status.map(|s| s as u16),
        latency_ms,
        error_code: r.try_get::<Option<&str>, _>(8)?.map(CompactString::new),
        request_id: CompactString::new(rid),
        outcome: Outcome::from_str(r.try_get(10)?).map_err(bad)?,
        vantage,
    };
    Ok((o, r.try_get::<i64, _>(11)? != 0))
}

/// `[from_ms, to_ms)` (optionally some establishments) in order, held whole.
pub(crate) async fn read(
    pg: &PgPool,
    from_ms: i64,
    to_ms: i64,
    establishments: &[EstablishmentCode],
    probe_latency: ProbeLatency,
) -> Result<CountingRows, StoreError> {
    let mut conn = pg.acquire().await?;
    // One snapshot for the count and the rows, whatever a running monitor inserts meanwhile.
    let mut tx = conn
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let count = format!(
        "SELECT COUNT(*) FROM observations WHERE received_at >= $1 AND received_at < $2{}",
        filter(establishments)
    );
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count))
        .bind(from_ms)
        .bind(to_ms)
        .fetch_one(&mut *tx)
        .await?;
    let mut out = CountingRows {
        observations: Vec::with_capacity(n.max(0) as usize),
        synthetic: false,
    };
    let mut last = Last::default();
    {
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(period_sql(establishments)))
            .bind(from_ms)
            .bind(to_ms)
            .fetch(&mut *tx);
        while let Some(r) = rows.try_next().await? {
            let (o, synth) = decode(&r, &mut last, probe_latency)?;
            out.synthetic |= synth;
            out.observations.push(o);
        }
    }
    tx.commit().await?;
    Ok(out)
}

/// As [`super::scan::stream`]: the rows of `[from_ms, to_ms)` in order, decoded here as the
/// server sends them and handed in batches to `each` (with `state`) on a blocking thread, so
/// the counting never holds up the async threads. `each` returning `false` stops the read.
/// Returns `state` and whether any row read is synthetic.
pub(crate) async fn stream<S, F>(
    pg: &PgPool,
    from_ms: i64,
    to_ms: i64,
    establishments: &[EstablishmentCode],
    probe_latency: ProbeLatency,
    mut state: S,
    mut each: F,
) -> Result<(S, bool), StoreError>
where
    S: Send + 'static,
    F: FnMut(&mut S, Vec<Observation>) -> bool + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Observation>>(8);
    let consumer = tokio::task::spawn_blocking(move || {
        while let Some(batch) = rx.blocking_recv() {
            if !each(&mut state, batch) {
                break;
            }
        }
        state
    });
    let mut conn = pg.acquire().await?;
    let mut txn = conn
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let mut synthetic = false;
    let read: Result<(), StoreError> = async {
        let mut last = Last::default();
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(period_sql(establishments)))
            .bind(from_ms)
            .bind(to_ms)
            .fetch(&mut *txn);
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(r) = rows.try_next().await? {
            let (o, synth) = decode(&r, &mut last, probe_latency)?;
            synthetic |= synth;
            batch.push(o);
            if batch.len() == BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                if tx.send(full).await.is_err() {
                    // The counting stopped: so do we.
                    return Ok(());
                }
            }
        }
        if !batch.is_empty() {
            let _ = tx.send(batch).await;
        }
        Ok(())
    }
    .await;
    drop(tx);
    let state = consumer.await.map_err(|e| StoreError::Raw {
        path: "PostgreSQL".into(),
        why: format!("the counting thread failed: {e}"),
    })?;
    read?;
    txn.rollback().await?;
    Ok((state, synthetic))
}

/// The advisory-lock key of a monitor id (stable across processes and versions).
fn lock_key(monitor_id: &str) -> i64 {
    // FNV-1a, 64 bits: no dependency, same on every machine.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in "dispo monitor ".bytes().chain(monitor_id.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// The host name, for telling which node holds a lock.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown host".into())
}

/// How long a lock check or a reconnection may take before the database counts as unreachable
/// (a cut network leaves a query hanging until TCP gives up, minutes later).
const LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// PostgreSQL names a connection with at most 63 bytes of its `application_name`.
const NAMEDATALEN: usize = 63;

/// The session advisory lock of a monitor id, on a connection of its own: the server releases
/// it when that connection ends, however the process ends, and also when the server restarts
/// or the connection is killed or cut, which [`Session::check`] notices.
#[derive(Debug)]
pub(crate) struct Session {
    url: PgUrl,
    monitor: String,
    key: i64,
    /// The `application_name` of our lock connections: tells other nodes who holds the id, and
    /// us our own connection the server still keeps after a network cut.
    me: String,
    /// `None` once the connection is lost, until it is made again.
    conn: Option<sqlx::PgConnection>,
}

/// The error of a lock operation on `url`.
pub(crate) fn lock_io(url: &PgUrl, e: sqlx::Error) -> LockError {
    LockError::Io {
        path: format!("(advisory lock on {url})"),
        why: e.to_string(),
    }
}

/// `fut`, or a time-out error past [`LOCK_TIMEOUT`].
async fn bounded<T>(
    fut: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    tokio::time::timeout(LOCK_TIMEOUT, fut)
        .await
        .unwrap_or(Err(sqlx::Error::PoolTimedOut))
}

impl Session {
    /// Takes the lock of `monitor_id`, or says who holds it.
    pub(crate) async fn take(url: &PgUrl, monitor_id: &str) -> Result<Self, LockError> {
        let me = format!("dispo run pid {} on {}", std::process::id(), host_name());
        let mut s = Self {
            url: url.clone(),
            monitor: monitor_id.to_owned(),
            key: lock_key(monitor_id),
            me,
            conn: None,
        };
        match s.try_take().await.map_err(|e| lock_io(url, e))? {
            None => Ok(s),
            Some(holder) => Err(s.running(holder)),
        }
    }

    pub(crate) fn url(&self) -> &PgUrl {
        &self.url
    }

    /// Our `application_name` as the server shows it (cut to [`NAMEDATALEN`] bytes).
    fn shown_name(&self) -> &str {
        let mut n = self.me.len().min(NAMEDATALEN);
        while !self.me.is_char_boundary(n) {
            n -= 1;
        }
        &self.me[..n]
    }

    /// The refusal naming `holder`.
    pub(crate) fn running(&self, holder: String) -> LockError {
        LockError::Running {
            monitor: self.monitor.clone(),
            pid: holder,
            db: self.url.to_string(),
        }
    }

    /// The error of a lock operation.
    pub(crate) fn io(&self, e: sqlx::Error) -> LockError {
        lock_io(&self.url, e)
    }

    async fn connect(&self) -> Result<sqlx::PgConnection, sqlx::Error> {
        let opts = PgConnectOptions::from_str(self.url.secret())?.application_name(&self.me);
        bounded(sqlx::PgConnection::connect_with(&opts)).await
    }

    /// Takes the lock if nobody holds it (connecting first if needed); `Some(holder)` when
    /// another process holds it. Our own old connection, which the server may still keep after
    /// a network cut, is ended first.
    pub(crate) async fn try_take(&mut self) -> Result<Option<String>, sqlx::Error> {
        if self.conn.is_none() {
            self.conn = Some(self.connect().await?);
        }
        let mine = self.shown_name().to_owned();
        let conn = self.conn.as_mut().expect("connected above");
        for _ in 0..2 {
            let got: bool = bounded(
                sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(self.key)
                    .fetch_one(&mut *conn),
            )
            .await?;
            if got {
                return Ok(None);
            }
            let Some((pid, holder)) = holder_of(&mut *conn, self.key).await? else {
                // Released between the two queries: try again.
                continue;
            };
            if holder != mine {
                return Ok(Some(holder));
            }
            tracing::warn!(
                backend = pid,
                "the server still keeps this node's old lock connection: ending it"
            );
            let _ = bounded(
                sqlx::query("SELECT pg_terminate_backend($1, 2000)")
                    .bind(pid)
                    .execute(&mut *conn),
            )
            .await;
        }
        Ok(holder_of(conn, self.key)
            .await?
            .map(|h| h.1)
            .or_else(|| Some("another connection".into())))
    }

    /// Who holds the lock, if anyone (without taking it).
    pub(crate) async fn holder(&mut self) -> Result<Option<String>, sqlx::Error> {
        if self.conn.is_none() {
            self.conn = Some(self.connect().await?);
        }
        let conn = self.conn.as_mut().expect("connected above");
        Ok(holder_of(conn, self.key).await?.map(|h| h.1))
    }

    /// Lets the lock go, keeping the connection.
    pub(crate) async fn release(&mut self) {
        if let Some(conn) = self.conn.as_mut() {
            let r =
                bounded(sqlx::query("SELECT pg_advisory_unlock_all()").execute(&mut *conn)).await;
            if r.is_err() {
                self.conn = None;
            }
        }
    }

    /// Whether our connection still holds the lock; if not, takes it again if it can.
    pub(crate) async fn check(&mut self) -> super::lock::Check {
        use super::lock::Check;
        if let Some(conn) = self.conn.as_mut() {
            let held = bounded(
                sqlx::query_scalar::<_, bool>(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted \
                     AND pid = pg_backend_pid() \
                     AND ((classid::bigint << 32) | objid::bigint) = $1)",
                )
                .bind(self.key)
                .fetch_one(&mut *conn),
            )
            .await;
            if let Ok(true) = held {
                return Check::Held;
            }
            // Dead (server restarted, connection killed) or hanging (network cut): a new one.
            self.conn = None;
        }
        match self.try_take().await {
            Ok(None) => Check::Retaken,
            Ok(Some(holder)) => Check::TakenBy(holder),
            Err(e) => {
                self.conn = None;
                Check::Unreachable(e.to_string())
            }
        }
    }
}

/// The backend pid and `application_name` of the connection holding advisory lock `key`.
async fn holder_of(
    conn: &mut sqlx::PgConnection,
    key: i64,
) -> Result<Option<(i32, String)>, sqlx::Error> {
    bounded(
        sqlx::query_as(
            "SELECT a.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted \
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND ((l.classid::bigint << 32) | l.objid::bigint) = $1 LIMIT 1",
        )
        .bind(key)
        .fetch_optional(conn),
    )
    .await
}

/// Refuses a PostgreSQL database without dispo's tables (`kpi`, `report`, `evidence` read an
/// existing store; an empty database means a wrong URL, not an empty quarter).
pub(crate) async fn check_exists(url: &PgUrl) -> Result<(), StoreError> {
    let opts = PgConnectOptions::from_str(url.secret()).map_err(|source| StoreError::Open {
        path: url.to_string(),
        source,
    })?;
    let mut conn = sqlx::PgConnection::connect_with(&opts)
        .await
        .map_err(|source| StoreError::Open {
            path: url.to_string(),
            source,
        })?;
    let found: bool = sqlx::query_scalar("SELECT to_regclass('observations') IS NOT NULL")
        .fetch_one(&mut conn)
        .await?;
    let _ = conn.close().await;
    if found {
        Ok(())
    } else {
        Err(StoreError::Raw {
            path: url.to_string(),
            why: "holds no dispo tables (create them with `dispo run`, `dispo import` or \
                  `dispo synth` on this URL, or check the database name)"
                .into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_and_nulls() {
        let mut obs: StoredObservation = Observation {
            received_at_ms: 1_700_000_000_123,
            establishment: "13807".parse().unwrap(),
            interface: Interface::Api,
            service: Service::new("cbpii").unwrap(),
            source: Source::Probe,
            tpp: None,
            status: Some(200),
            latency_ms: Some(0.1),
            error_code: None,
            request_id: "r\t1\\x".into(),
            outcome: Outcome::Ok,
            vantage: "paris-dc1".parse().unwrap(),
        }
        .into();
        obs.error_text = Some("line one\nline two".into());
        let mut buf = String::new();
        copy_text(&mut buf, &obs);
        assert_eq!(
            buf,
            "1700000000123\t13807\tapi\tcbpii\tprobe\t\\N\t200\t0.1\t\\N\tline one\\nline two\t\
             r\\t1\\\\x\tok\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t0\tparis-dc1\n"
        );
    }
}

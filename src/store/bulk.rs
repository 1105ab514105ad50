//! Inserting observations: prepared statements inside one transaction, values bound straight
//! from the rows (no copies), 64 rows per statement where the rows allow. About four times
//! sqlx's multi-row INSERT, which copied every value into an argument buffer; this is what lets
//! `dispo import` keep up with a gateway's logs.

use std::ffi::c_int;
use std::path::Path;

use super::raw::{Db, Mode, Stmt};
use super::{StoreError, StoredObservation};

/// The columns every observation has, in the order of the parameters of every statement here.
const PLAIN_COLUMNS: &str = "received_at, establishment, interface, service, source, tpp, \
     status, latency_ms, error_code, request_id, outcome, synthetic, vantage";
const PLAIN_PARAMS: c_int = 13;

/// Rows per multi-row statement. One statement inserting many rows keeps its cursor on the last
/// page of the table between rows: an import appends in time order, so each row lands without a
/// descent from the root, and the per-statement work (cursor, reset, unbind) is shared. 64 rows
/// bind 832 values, far below SQLite's limit of 32 766.
const ROWS_PER_STATEMENT: usize = 64;

/// `INSERT OR IGNORE` of `rows` rows with the plain columns (the others default to NULL).
fn insert_plain(rows: usize) -> String {
    let tuple = format!("({})", vec!["?"; PLAIN_PARAMS as usize].join(", "));
    format!(
        "INSERT OR IGNORE INTO observations ({PLAIN_COLUMNS}) VALUES {}",
        vec![tuple; rows].join(", ")
    )
}

/// One row with everything the store keeps (probe rows): the plain columns, then the rest.
fn insert_full() -> String {
    format!(
        "INSERT OR IGNORE INTO observations ({PLAIN_COLUMNS}, error_text, no_reply_kind, \
         probe_id, resolve_ms, connect_ms, tls_ms, processing_ms, transfer_ms) VALUES ({})",
        vec!["?"; PLAIN_PARAMS as usize + 8].join(", ")
    )
}

/// Page cache of the inserting connection, in KiB: index pages stay hot across a large import
/// without taking the process past its memory budget.
const CACHE_KIB: i64 = 64 * 1024;

/// WAL pages between checkpoints for this connection (SQLite's default is 1 000 pages: 8 MB with
/// the 8 KiB pages of a database dispo created, 4 MB with SQLite's default 4 KiB): each
/// checkpoint syncs the database file, and a large import made one per batch. 16 000 pages of
/// 8 KiB are 125 MiB (131 MB; 62.5 MiB for an older database with 4 KiB pages): the log stays
/// bounded while the database file is synced a sixteenth as often.
const WAL_CHECKPOINT_PAGES: i64 = 16_000;

/// Inserts `rows` into the database at `path` in one transaction (all or nothing); rows already
/// present (same establishment, time and request id) are skipped. Returns how many were new.
/// Blocking: call it off the async threads.
/// `busy_ms` bounds the wait for another writer's lock (`None`: SQLite's 30 s of `Db::open`).
pub(crate) fn insert(
    path: &Path,
    rows: &[StoredObservation],
    busy_ms: Option<i32>,
) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let db = Db::open(path, Mode::ReadWrite)?;
    if let Some(ms) = busy_ms {
        db.set_busy_timeout(ms);
    }
    db.exec(&format!(
        "PRAGMA synchronous = {}; PRAGMA cache_size = -{CACHE_KIB}; PRAGMA foreign_keys = ON; \
         PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}",
        super::SYNCHRONOUS
    ))?;
    // IMMEDIATE: take the write lock now (waiting up to the busy timeout) rather than fail on
    // the first insert when another writer holds it.
    db.exec("BEGIN IMMEDIATE")?;
    match insert_all(&db, rows) {
        Ok(added) => {
            db.exec("COMMIT")?;
            Ok(added)
        }
        Err(e) => {
            // The insert error is the one to report; a failed rollback leaves nothing behind
            // either, as the connection closes right after.
            let _ = db.exec("ROLLBACK");
            Err(e)
        }
    }
}

fn insert_all(db: &Db, rows: &[StoredObservation]) -> Result<u64, StoreError> {
    let mut many = db.prepare(&insert_plain(ROWS_PER_STATEMENT))?;
    let mut one = db.prepare(&insert_plain(1))?;
    let mut full = db.prepare(&insert_full())?;
    let mut added = 0;
    let mut i = 0;
    while i < rows.len() {
        // Gateway logs are plain throughout: whole runs go through the multi-row statement.
        if let Some(chunk) = rows.get(i..i + ROWS_PER_STATEMENT)
            && chunk.iter().all(is_plain)
        {
            for (j, r) in chunk.iter().enumerate() {
                bind_plain(&mut many, j as c_int * PLAIN_PARAMS, r)?;
            }
            added += run(db, &mut many)?;
            i += ROWS_PER_STATEMENT;
            continue;
        }
        let r = &rows[i];
        if is_plain(r) {
            bind_plain(&mut one, 0, r)?;
            added += run(db, &mut one)?;
        } else {
            bind_plain(&mut full, 0, r)?;
            let p = r.phases;
            full.bind_opt_text(14, r.error_text.as_deref())?;
            full.bind_opt_text(15, r.no_reply_kind.map(|k| k.as_str()))?;
            full.bind_opt_text(16, r.probe_id.as_deref())?;
            full.bind_opt_f64(17, p.map(|p| p.resolve_ms))?;
            full.bind_opt_f64(18, p.map(|p| p.connect_ms))?;
            full.bind_opt_f64(19, p.map(|p| p.tls_ms))?;
            full.bind_opt_f64(20, p.map(|p| p.processing_ms))?;
            full.bind_opt_f64(21, p.map(|p| p.transfer_ms))?;
            added += run(db, &mut full)?;
        }
        i += 1;
    }
    Ok(added)
}

/// A row with nothing beyond the observation (no error text, probe, phases or kind of no-reply).
fn is_plain(r: &StoredObservation) -> bool {
    r.error_text.is_none()
        && r.no_reply_kind.is_none()
        && r.probe_id.is_none()
        && r.phases.is_none()
}

/// Binds the plain columns of `r` to parameters `base + 1 ..= base + 13`.
fn bind_plain<'v>(
    stmt: &mut Stmt<'_, 'v>,
    base: c_int,
    r: &'v StoredObservation,
) -> Result<(), StoreError> {
    let o = &r.obs;
    stmt.bind_i64(base + 1, o.received_at_ms)?;
    stmt.bind_text(base + 2, o.establishment.as_str())?;
    stmt.bind_text(base + 3, o.interface.as_str())?;
    stmt.bind_text(base + 4, o.service.as_str())?;
    stmt.bind_text(base + 5, o.source.as_str())?;
    stmt.bind_opt_text(base + 6, o.tpp.as_deref())?;
    stmt.bind_opt_i64(base + 7, o.status.map(i64::from))?;
    stmt.bind_opt_f64(base + 8, o.latency_ms)?;
    stmt.bind_opt_text(base + 9, o.error_code.as_deref())?;
    stmt.bind_text(base + 10, o.request_id.as_str())?;
    stmt.bind_text(base + 11, o.outcome.as_str())?;
    stmt.bind_i64(base + 12, i64::from(r.synthetic))?;
    stmt.bind_text(base + 13, o.vantage.as_str())
}

/// Runs a bound insert and makes it ready for the next; returns how many rows it added.
fn run(db: &Db, stmt: &mut Stmt<'_, '_>) -> Result<u64, StoreError> {
    let stepped = stmt.step();
    stmt.reset();
    stepped?;
    Ok(db.changes())
}

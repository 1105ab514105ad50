//! Inserting observations: one prepared statement run per row inside one transaction, values
//! bound straight from the rows (no copies). About four times sqlx's multi-row INSERT, which
//! copied every value into an argument buffer; this is what lets `dispo import` keep up with a
//! gateway's logs.

use std::path::Path;

use super::raw::{Db, Mode};
use super::{StoreError, StoredObservation};

const INSERT: &str = "INSERT OR IGNORE INTO observations (received_at, establishment, interface, \
     service, source, tpp, status, latency_ms, error_code, error_text, request_id, outcome, \
     no_reply_kind, probe_id, resolve_ms, connect_ms, tls_ms, processing_ms, transfer_ms, \
     synthetic) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, \
     ?17, ?18, ?19, ?20)";

/// The same for rows with nothing beyond the observation (gateway logs: no error text, probe,
/// phases or kind of no-reply): a third fewer values to bind, the others default to NULL.
const INSERT_PLAIN: &str = "INSERT OR IGNORE INTO observations (received_at, establishment, \
     interface, service, source, tpp, status, latency_ms, error_code, request_id, outcome, \
     synthetic) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?11, ?12, ?20)";

/// Page cache of the inserting connection, in KiB: index pages stay hot across a large import
/// without taking the process past its memory budget.
const CACHE_KIB: i64 = 64 * 1024;

/// WAL pages between checkpoints for this connection (SQLite's default is 1 000, 4 MB): each
/// checkpoint syncs the database file, and a large import made one per batch. 64 MB keeps the
/// log small while syncing a sixteenth as often.
const WAL_CHECKPOINT_PAGES: i64 = 16_000;

/// Inserts `rows` into the database at `path` in one transaction (all or nothing); rows already
/// present (same establishment, time and request id) are skipped. Returns how many were new.
/// Blocking: call it off the async threads.
pub(crate) fn insert(path: &Path, rows: &[StoredObservation]) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let db = Db::open(path, Mode::ReadWrite)?;
    db.exec(&format!(
        "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -{CACHE_KIB}; PRAGMA foreign_keys = ON; \
         PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}"
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
    let mut full = db.prepare(INSERT)?;
    let mut plain = db.prepare(INSERT_PLAIN)?;
    let mut added = 0;
    for r in rows {
        let o = &r.obs;
        let is_plain = r.error_text.is_none()
            && r.no_reply_kind.is_none()
            && r.probe_id.is_none()
            && r.phases.is_none();
        let stmt = if is_plain { &mut plain } else { &mut full };
        // Parameter numbers are the same in both statements (`?11` is the request id in each).
        stmt.bind_i64(1, o.received_at_ms)?;
        stmt.bind_text(2, o.establishment.as_str())?;
        stmt.bind_text(3, o.interface.as_str())?;
        stmt.bind_text(4, o.service.as_str())?;
        stmt.bind_text(5, o.source.as_str())?;
        stmt.bind_opt_text(6, o.tpp.as_deref())?;
        stmt.bind_opt_i64(7, o.status.map(i64::from))?;
        stmt.bind_opt_f64(8, o.latency_ms)?;
        stmt.bind_opt_text(9, o.error_code.as_deref())?;
        stmt.bind_text(11, o.request_id.as_str())?;
        stmt.bind_text(12, o.outcome.as_str())?;
        stmt.bind_i64(20, i64::from(r.synthetic))?;
        if !is_plain {
            let p = r.phases;
            stmt.bind_opt_text(10, r.error_text.as_deref())?;
            stmt.bind_opt_text(13, r.no_reply_kind.map(|k| k.as_str()))?;
            stmt.bind_opt_text(14, r.probe_id.as_deref())?;
            stmt.bind_opt_f64(15, p.map(|p| p.resolve_ms))?;
            stmt.bind_opt_f64(16, p.map(|p| p.connect_ms))?;
            stmt.bind_opt_f64(17, p.map(|p| p.tls_ms))?;
            stmt.bind_opt_f64(18, p.map(|p| p.processing_ms))?;
            stmt.bind_opt_f64(19, p.map(|p| p.transfer_ms))?;
        }
        let stepped = stmt.step();
        stmt.reset();
        stepped?;
        added += db.changes();
    }
    Ok(added)
}

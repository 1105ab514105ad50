//! Safe wrappers over SQLite's C API, for the two paths where sqlx's per-value copies cost too
//! much: the lean read of a period ([`super::scan`]) and the bulk insert of observations
//! ([`super::bulk`]). Same SQLite library as sqlx (one `libsqlite3-sys` in the graph).
//!
//! All `unsafe` of the store is in this file, each call on a handle this file opened and owns
//! until `Drop`.

use std::ffi::{CStr, CString, c_int};
use std::path::{Path, PathBuf};
use std::ptr;

use libsqlite3_sys as ffi;

use super::StoreError;

/// How a connection opens its database (which must exist: `Store::open` creates it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    ReadOnly,
    ReadWrite,
}

/// A connection, closed on drop.
pub(crate) struct Db {
    handle: *mut ffi::sqlite3,
    path: PathBuf,
}

// SAFETY: connections are opened with SQLITE_OPEN_NOMUTEX (multi-thread mode), in which a
// connection may be used by any thread as long as no two use it at once; `Db` is not `Sync`, and
// its statements borrow it, so moving it to another thread is all this allows.
unsafe impl Send for Db {}

impl Db {
    pub(crate) fn open(path: &Path, mode: Mode) -> Result<Self, StoreError> {
        let shown = path.display().to_string();
        let c_path = CString::new(shown.as_bytes()).map_err(|_| StoreError::Raw {
            path: shown.clone(),
            why: "the path holds a NUL byte".into(),
        })?;
        let flags = match mode {
            Mode::ReadOnly => ffi::SQLITE_OPEN_READONLY,
            Mode::ReadWrite => ffi::SQLITE_OPEN_READWRITE,
        } | ffi::SQLITE_OPEN_NOMUTEX;
        let mut handle = ptr::null_mut();
        // SAFETY: valid C string and out-pointer; the handle is closed in `Drop` even on error.
        let rc = unsafe { ffi::sqlite3_open_v2(c_path.as_ptr(), &mut handle, flags, ptr::null()) };
        let db = Self {
            handle,
            path: path.to_owned(),
        };
        if rc != ffi::SQLITE_OK {
            return Err(db.error(rc));
        }
        // SAFETY: open handle; waits for another writer's lock rather than failing at once.
        unsafe { ffi::sqlite3_busy_timeout(db.handle, 30_000) };
        Ok(db)
    }

    /// How long to wait for another writer's lock before failing (30 s from `open`).
    pub(crate) fn set_busy_timeout(&self, ms: i32) {
        // SAFETY: open handle.
        unsafe { ffi::sqlite3_busy_timeout(self.handle, ms) };
    }

    pub(crate) fn error(&self, rc: c_int) -> StoreError {
        let why = if self.handle.is_null() {
            format!("SQLite error {rc}")
        } else {
            // SAFETY: the message belongs to the open handle and is copied at once.
            unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(self.handle)) }
                .to_string_lossy()
                .into_owned()
        };
        StoreError::Raw {
            path: self.path.display().to_string(),
            why,
        }
    }

    /// An error about this database, in words.
    pub(crate) fn fail(&self, why: String) -> StoreError {
        StoreError::Raw {
            path: self.path.display().to_string(),
            why,
        }
    }

    /// Runs statements that return no rows (pragmas, BEGIN, COMMIT).
    pub(crate) fn exec(&self, sql: &str) -> Result<(), StoreError> {
        let c_sql = CString::new(sql).map_err(|_| StoreError::Raw {
            path: self.path.display().to_string(),
            why: "the statement holds a NUL byte".into(),
        })?;
        // SAFETY: open handle, valid C string; no callback, no error-message out-pointer.
        let rc = unsafe {
            ffi::sqlite3_exec(
                self.handle,
                c_sql.as_ptr(),
                None,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(self.error(rc));
        }
        Ok(())
    }

    pub(crate) fn prepare<'v>(&self, sql: &str) -> Result<Stmt<'_, 'v>, StoreError> {
        let c_sql = CString::new(sql).map_err(|_| StoreError::Raw {
            path: self.path.display().to_string(),
            why: "the query holds a NUL byte".into(),
        })?;
        let mut stmt = ptr::null_mut();
        // SAFETY: open handle, valid C string, out-pointer; finalized in `Stmt::drop`.
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(self.handle, c_sql.as_ptr(), -1, &mut stmt, ptr::null_mut())
        };
        if rc != ffi::SQLITE_OK {
            return Err(self.error(rc));
        }
        Ok(Stmt {
            db: self,
            stmt,
            _bound: std::marker::PhantomData,
        })
    }

    /// Rows changed by the last INSERT/UPDATE/DELETE on this connection.
    pub(crate) fn changes(&self) -> u64 {
        // SAFETY: open handle.
        unsafe { ffi::sqlite3_changes64(self.handle) }.max(0) as u64
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        // SAFETY: every statement borrows the `Db`, so all are finalized before this runs.
        unsafe { ffi::sqlite3_close(self.handle) };
    }
}

/// A prepared statement. Column readers are valid for the current row only; text bound with
/// [`Stmt::bind_text`] must outlive the statement's next `step` (the `'v` borrow sees to it).
pub(crate) struct Stmt<'a, 'v> {
    db: &'a Db,
    stmt: *mut ffi::sqlite3_stmt,
    _bound: std::marker::PhantomData<&'v str>,
}

impl<'v> Stmt<'_, 'v> {
    fn check(&self, rc: c_int) -> Result<(), StoreError> {
        if rc != ffi::SQLITE_OK {
            return Err(self.db.error(rc));
        }
        Ok(())
    }

    pub(crate) fn bind_i64(&mut self, i: c_int, v: i64) -> Result<(), StoreError> {
        // SAFETY: live statement; SQLite checks the index.
        self.check(unsafe { ffi::sqlite3_bind_int64(self.stmt, i, v) })
    }

    pub(crate) fn bind_f64(&mut self, i: c_int, v: f64) -> Result<(), StoreError> {
        // SAFETY: live statement; SQLite checks the index.
        self.check(unsafe { ffi::sqlite3_bind_double(self.stmt, i, v) })
    }

    pub(crate) fn bind_null(&mut self, i: c_int) -> Result<(), StoreError> {
        // SAFETY: live statement; SQLite checks the index.
        self.check(unsafe { ffi::sqlite3_bind_null(self.stmt, i) })
    }

    /// Binds text without a copy: the borrow `'v` keeps it alive while the statement may read it.
    pub(crate) fn bind_text(&mut self, i: c_int, v: &'v str) -> Result<(), StoreError> {
        let n = c_int::try_from(v.len()).map_err(|_| StoreError::Raw {
            path: self.db.path.display().to_string(),
            why: "a text value is over 2 GB".into(),
        })?;
        // SAFETY: live statement; pointer and length describe valid UTF-8 that outlives every
        // step of this statement (`'v`), so SQLite may use it without copying (SQLITE_STATIC).
        self.check(unsafe {
            ffi::sqlite3_bind_text(self.stmt, i, v.as_ptr().cast(), n, ffi::SQLITE_STATIC())
        })
    }

    pub(crate) fn bind_opt_i64(&mut self, i: c_int, v: Option<i64>) -> Result<(), StoreError> {
        match v {
            Some(v) => self.bind_i64(i, v),
            None => self.bind_null(i),
        }
    }

    pub(crate) fn bind_opt_f64(&mut self, i: c_int, v: Option<f64>) -> Result<(), StoreError> {
        match v {
            Some(v) => self.bind_f64(i, v),
            None => self.bind_null(i),
        }
    }

    pub(crate) fn bind_opt_text(&mut self, i: c_int, v: Option<&'v str>) -> Result<(), StoreError> {
        match v {
            Some(v) => self.bind_text(i, v),
            None => self.bind_null(i),
        }
    }

    /// Advances to the next row; `false` when done.
    pub(crate) fn step(&mut self) -> Result<bool, StoreError> {
        // SAFETY: live statement.
        match unsafe { ffi::sqlite3_step(self.stmt) } {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => Ok(false),
            rc => Err(self.db.error(rc)),
        }
    }

    /// Makes the statement ready to run again (bindings are kept until rebound).
    pub(crate) fn reset(&mut self) {
        // SAFETY: live statement. Its return repeats the last step's error, already reported.
        unsafe { ffi::sqlite3_reset(self.stmt) };
    }

    fn is_null(&self, i: c_int) -> bool {
        // SAFETY: live statement positioned on a row.
        unsafe { ffi::sqlite3_column_type(self.stmt, i) == ffi::SQLITE_NULL }
    }

    pub(crate) fn i64(&self, i: c_int) -> i64 {
        // SAFETY: live statement positioned on a row.
        unsafe { ffi::sqlite3_column_int64(self.stmt, i) }
    }

    pub(crate) fn opt_i64(&self, i: c_int) -> Option<i64> {
        (!self.is_null(i)).then(|| self.i64(i))
    }

    pub(crate) fn opt_f64(&self, i: c_int) -> Option<f64> {
        // SAFETY: live statement positioned on a row.
        (!self.is_null(i)).then(|| unsafe { ffi::sqlite3_column_double(self.stmt, i) })
    }

    /// The column as text (empty for NULL; not UTF-8 gives an empty string, which every
    /// parser then rejects with the row id).
    pub(crate) fn text(&self, i: c_int) -> &str {
        std::str::from_utf8(self.bytes(i)).unwrap_or("")
    }

    /// The column's text as bytes, not checked as UTF-8 (empty for NULL).
    pub(crate) fn bytes(&self, i: c_int) -> &[u8] {
        // SAFETY: live statement on a row; the pointer and length come from SQLite for this
        // column, valid until the next step (the borrow of `self` ends before that).
        unsafe {
            let p = ffi::sqlite3_column_text(self.stmt, i);
            if p.is_null() {
                return &[];
            }
            let n = ffi::sqlite3_column_bytes(self.stmt, i);
            std::slice::from_raw_parts(p, n.max(0) as usize)
        }
    }

    pub(crate) fn opt_text(&self, i: c_int) -> Option<&str> {
        (!self.is_null(i)).then(|| self.text(i))
    }
}

impl Drop for Stmt<'_, '_> {
    fn drop(&mut self) {
        // SAFETY: the statement was prepared by this handle and is finalized once.
        unsafe { ffi::sqlite3_finalize(self.stmt) };
    }
}

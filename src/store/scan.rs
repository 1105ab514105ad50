//! A lean read of a period's observations for counting (`report`, `kpi`): only the columns the
//! engine needs, straight from SQLite's C API on a read-only connection of its own.
//!
//! Why not sqlx: it copies every value of every row and hands rows over a channel, about 8 µs a
//! row; a quarter of ten million observations took 80 s. Here a row costs well under a
//! microsecond, and short strings land inline in the observation (no allocation).
//!
//! The C API is reached through the safe wrappers of [`super::raw`]; the only `unsafe` here
//! fills one vector from two threads (see [`read`]).

use std::mem::MaybeUninit;
use std::path::Path;
use std::str::FromStr;

use super::StoreError;
use super::raw::{Db, Mode};
use crate::domain::{
    CompactString, EstablishmentCode, Interface, Observation, Outcome, Service, Source, Vantage,
};
use crate::engine::{ProbeLatency, response_time_ms};

/// The observations of a period, in `received_at` order, and whether any is synthetic.
#[derive(Debug, Default)]
pub struct CountingRows {
    pub observations: Vec<Observation>,
    pub synthetic: bool,
}

/// Reads `[from_ms, to_ms)` (optionally some establishments) from the database at `path`.
/// Blocking: call it off the async threads.
///
/// The period is read as two halves at once, each on its own connection and thread (SQLite
/// decoding rows is most of the cost, and the machines have two cores), straight into the two
/// halves of one vector sized by counting first: no copy, no second buffer.
pub fn read(
    path: &Path,
    from_ms: i64,
    to_ms: i64,
    establishments: &[EstablishmentCode],
    probe_latency: ProbeLatency,
) -> Result<CountingRows, StoreError> {
    let filter = establishment_filter(establishments);
    let mid = from_ms + (to_ms - from_ms).max(0) / 2;
    let (a, b) = std::thread::scope(|sc| {
        let second = sc.spawn(|| Part::open(path, mid, to_ms, &filter, probe_latency));
        let first = Part::open(path, from_ms, mid, &filter, probe_latency);
        (first, join(path, second))
    });
    let (mut a, mut b) = (a?, b?);
    let total = a.count + b.count;
    let mut observations: Vec<Observation> = Vec::with_capacity(total);
    let (slot_a, slot_b) = observations.spare_capacity_mut()[..total].split_at_mut(a.count);
    let (ra, rb) = std::thread::scope(|sc| {
        let second = sc.spawn(|| b.fill(&mut *slot_b));
        let first = a.fill(&mut *slot_a);
        (first, join(path, second))
    });
    match (ra, rb) {
        (Ok(sa), Ok(sb)) => {
            // SAFETY: `fill` succeeded on both halves, so it wrote exactly `a.count` and
            // `b.count` observations at the start of each, i.e. every element of `..total`.
            unsafe { observations.set_len(total) };
            Ok(CountingRows {
                observations,
                synthetic: sa || sb,
            })
        }
        (ra, rb) => {
            // The half that succeeded holds initialised observations the vector does not own.
            if ra.is_ok() {
                drop_written(slot_a, a.count);
            }
            if rb.is_ok() {
                drop_written(slot_b, b.count);
            }
            Err(ra.err().or(rb.err()).expect("one half failed"))
        }
    }
}

fn join<T>(
    path: &Path,
    h: std::thread::ScopedJoinHandle<'_, Result<T, StoreError>>,
) -> Result<T, StoreError> {
    h.join().unwrap_or_else(|_| {
        Err(StoreError::Raw {
            path: path.display().to_string(),
            why: "a reading thread panicked".into(),
        })
    })
}

/// Drops the first `n` elements of `slot`, which were written.
fn drop_written(slot: &mut [MaybeUninit<Observation>], n: usize) {
    for x in &mut slot[..n] {
        // SAFETY: the caller wrote these `n` elements and nothing else owns them.
        unsafe { x.assume_init_drop() };
    }
}

/// One half of a read: its connection, inside a read transaction (so the count and the rows
/// come from the same snapshot, whatever a running monitor inserts meanwhile), and its count.
struct Part {
    db: Db,
    sql: String,
    from_ms: i64,
    to_ms: i64,
    count: usize,
    probe_latency: ProbeLatency,
}

impl Part {
    fn open(
        path: &Path,
        from_ms: i64,
        to_ms: i64,
        filter: &str,
        probe_latency: ProbeLatency,
    ) -> Result<Self, StoreError> {
        let db = Db::open(path, Mode::ReadOnly)?;
        db.exec("BEGIN")?;
        let mut count = db.prepare(&format!(
            "SELECT COUNT(*) FROM observations WHERE received_at >= ?1 AND received_at < ?2{filter}"
        ))?;
        count.bind_i64(1, from_ms)?;
        count.bind_i64(2, to_ms)?;
        let n = if count.step()? { count.i64(0) } else { 0 };
        drop(count);
        Ok(Self {
            db,
            sql: format!(
                "SELECT {COLUMNS} FROM observations \
                 WHERE received_at >= ?1 AND received_at < ?2{filter} ORDER BY received_at"
            ),
            from_ms,
            to_ms,
            count: usize::try_from(n).unwrap_or(0),
            probe_latency,
        })
    }

    /// Writes this half's observations at the start of `slot` (exactly `self.count` of them, or
    /// an error with nothing left written); returns whether any is synthetic.
    fn fill(&mut self, slot: &mut [MaybeUninit<Observation>]) -> Result<bool, StoreError> {
        let mut written = 0;
        let result = self.fill_counting(slot, &mut written);
        if result.is_err() || written != self.count {
            drop_written(slot, written);
        }
        let synthetic = result?;
        if written != self.count {
            return Err(self.db.fail(format!(
                "counted {} observations but read {written} in the same snapshot",
                self.count
            )));
        }
        Ok(synthetic)
    }

    fn fill_counting(
        &mut self,
        slot: &mut [MaybeUninit<Observation>],
        written: &mut usize,
    ) -> Result<bool, StoreError> {
        let mut q = self.db.prepare(&self.sql)?;
        q.bind_i64(1, self.from_ms)?;
        q.bind_i64(2, self.to_ms)?;
        let mut synthetic = false;
        // Rows of one series repeat their service: reuse the last parsed value.
        let mut last = Last::default();
        while q.step()? {
            let (o, synth) = decode(&q, &mut last, self.probe_latency)?;
            synthetic |= synth;
            let Some(cell) = slot.get_mut(*written) else {
                return Err(self.db.fail(format!(
                    "counted {} observations but read more in the same snapshot",
                    self.count
                )));
            };
            cell.write(o);
            *written += 1;
        }
        Ok(synthetic)
    }
}

/// The last value parsed from a column's text, with that text: rows in time order repeat
/// their interface, service, source, outcome and vantage, so most rows compare a few bytes
/// instead of checking and parsing them again.
struct Memo<T> {
    text: Vec<u8>,
    value: Option<T>,
}

impl<T> Default for Memo<T> {
    fn default() -> Self {
        Self {
            text: Vec::new(),
            value: None,
        }
    }
}

impl<T: Clone> Memo<T> {
    fn get(
        &mut self,
        bytes: &[u8],
        parse: impl FnOnce(&str) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if let Some(v) = &self.value
            && self.text == bytes
        {
            return Ok(v.clone());
        }
        // Not UTF-8: an empty text, which every parser refuses with the row's identity.
        let v = parse(std::str::from_utf8(bytes).unwrap_or(""))?;
        self.text.clear();
        self.text.extend_from_slice(bytes);
        self.value = Some(v.clone());
        Ok(v)
    }
}

/// The last values parsed, per column that repeats (see [`Memo`]).
#[derive(Default)]
struct Last {
    interface: Memo<Interface>,
    service: Memo<Service>,
    source: Memo<Source>,
    outcome: Memo<Outcome>,
    vantage: Memo<Vantage>,
}

/// The observation of the current row of a query selecting [`COLUMNS`], and whether it is
/// synthetic.
fn decode(
    q: &super::raw::Stmt<'_, '_>,
    last: &mut Last,
    probe_latency: ProbeLatency,
) -> Result<(Observation, bool), StoreError> {
    // Read lazily: only a bad row needs its identity.
    let bad = |source| super::bad_row(q.i64(0), q.text(1), q.text(9), source);
    let interface = last
        .interface
        .get(q.bytes(2), |t| Interface::from_str(t).map_err(bad))?;
    let service = last
        .service
        .get(q.bytes(3), |t| Service::from_str(t).map_err(bad))?;
    let source = last
        .source
        .get(q.bytes(4), |t| Source::from_str(t).map_err(bad))?;
    let outcome = last
        .outcome
        .get(q.bytes(10), |t| Outcome::from_str(t).map_err(bad))?;
    let vantage = last
        .vantage
        .get(q.bytes(14), |t| Vantage::from_str(t).map_err(bad))?;
    let status = q.opt_i64(6);
    // Only a probe's phases can make its response time (policy `probe_latency`).
    let (processing, transfer) = match (probe_latency, source) {
        (ProbeLatency::Request, Source::Probe) => (q.opt_f64(12), q.opt_f64(13)),
        _ => (None, None),
    };
    let latency_ms = response_time_ms(probe_latency, source, q.opt_f64(7), processing, transfer);
    let o = Observation {
        received_at_ms: q.i64(0),
        establishment: EstablishmentCode::from_str(q.text(1)).map_err(bad)?,
        interface,
        service,
        source,
        tpp: q.opt_text(5).map(CompactString::new),
        status: status.map(|s| s as u16),
        latency_ms,
        error_code: q.opt_text(8).map(CompactString::new),
        request_id: CompactString::new(q.text(9)),
        outcome,
        vantage,
    };
    Ok((o, q.i64(11) != 0))
}

/// The columns [`decode`] reads, in its order.
const COLUMNS: &str = "received_at, establishment, interface, service, source, tpp, status, \
     latency_ms, error_code, request_id, outcome, synthetic, processing_ms, transfer_ms, vantage";

/// Observations handed over at a time by [`stream`].
const BATCH: usize = 4_096;

/// The span of time one reader reads at once (see [`stream`]).
const CHUNK_MS: i64 = 30 * 60_000;

/// At most this many chunks in a period, however long (the chunks grow instead).
const MAX_CHUNKS: i64 = 200_000;

/// Batches a reader may be ahead of the counting, per reader.
const AHEAD: usize = 16;

/// What a reader hands over: rows of its current chunk, or the end of it.
enum Msg {
    Rows(Vec<Observation>),
    EndOfChunk,
}

/// Reads `[from_ms, to_ms)` (optionally some establishments) from the database at `path` in
/// `received_at` order, without holding the period, and hands the rows over in batches to
/// `each`, on the calling thread, as they come. `each` returning `false` stops the read. Returns
/// whether any row read is synthetic. Blocking: call it off the async threads.
///
/// Decoding SQLite rows is the larger part of counting a period, more than one core's worth at
/// 100 M rows: so the period is cut into chunks of [`CHUNK_MS`], and two readers, each on its
/// own connection and thread, take every other chunk. The calling thread takes the chunks in
/// order, one reader's then the other's, so the rows still come in time order, and a reader is
/// never more than [`AHEAD`] batches ahead: memory stays bounded. Each reader reads inside one
/// read transaction (a snapshot, whatever a running monitor inserts meanwhile); the two snapshots
/// may differ by what was inserted between their first reads, which lands at the end of the data.
/// One core: one reader, one chunk.
pub fn stream(
    path: &Path,
    from_ms: i64,
    to_ms: i64,
    establishments: &[EstablishmentCode],
    probe_latency: ProbeLatency,
    each: impl FnMut(Vec<Observation>) -> bool,
) -> Result<bool, StoreError> {
    let readers = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
    stream_with(
        path,
        (from_ms, to_ms),
        establishments,
        probe_latency,
        (readers, CHUNK_MS),
        each,
    )
}

/// [`stream`] with `readers` readers taking chunks of `chunk_ms` in turn.
pub(super) fn stream_with(
    path: &Path,
    (from_ms, to_ms): (i64, i64),
    establishments: &[EstablishmentCode],
    probe_latency: ProbeLatency,
    (readers, chunk_ms): (usize, i64),
    mut each: impl FnMut(Vec<Observation>) -> bool,
) -> Result<bool, StoreError> {
    let span = to_ms.saturating_sub(from_ms).max(0);
    let readers = readers.max(1);
    let chunk_ms = if readers == 1 {
        span.max(1)
    } else {
        chunk_ms.max(1).max(span / MAX_CHUNKS + 1)
    };
    let chunks = usize::try_from((span + chunk_ms - 1) / chunk_ms).unwrap_or(0);
    let readers = readers.min(chunks.max(1));
    let sql = format!(
        "SELECT {COLUMNS} FROM observations \
         WHERE received_at >= ?1 AND received_at < ?2{} ORDER BY received_at",
        establishment_filter(establishments)
    );
    let plan = Plan {
        path,
        sql: &sql,
        from_ms,
        to_ms,
        chunk_ms,
        step: readers,
        probe_latency,
    };
    std::thread::scope(|sc| {
        let mut rxs = Vec::with_capacity(readers);
        let mut threads = Vec::with_capacity(readers);
        for first in 0..readers {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(AHEAD);
            rxs.push(rx);
            threads.push(sc.spawn(move || plan.read(first, &tx)));
        }
        // Whether every chunk was taken whole (or `each` asked to stop).
        let mut complete = true;
        'chunks: for k in 0..chunks {
            loop {
                match rxs[k % readers].recv() {
                    Ok(Msg::Rows(batch)) => {
                        if !each(batch) {
                            break 'chunks;
                        }
                    }
                    Ok(Msg::EndOfChunk) => break,
                    // That reader stopped on an error: its thread tells which.
                    Err(_) => {
                        complete = false;
                        break 'chunks;
                    }
                }
            }
        }
        // Unblocks readers waiting on a full channel.
        drop(rxs);
        let mut synthetic = false;
        let mut error = None;
        for t in threads {
            match join(path, t) {
                Ok(s) => synthetic |= s,
                Err(e) => {
                    error.get_or_insert(e);
                }
            }
        }
        match error {
            Some(e) => Err(e),
            None if !complete => Err(StoreError::Raw {
                path: path.display().to_string(),
                why: "a reading thread stopped early".into(),
            }),
            None => Ok(synthetic),
        }
    })
}

/// What every reader of one [`stream_with`] shares.
#[derive(Clone, Copy)]
struct Plan<'a> {
    path: &'a Path,
    sql: &'a str,
    from_ms: i64,
    to_ms: i64,
    chunk_ms: i64,
    /// Readers: each takes every `step`-th chunk.
    step: usize,
    probe_latency: ProbeLatency,
}

impl Plan<'_> {
    /// Reads chunks `first`, `first + step`, ... into `tx`, each followed by its end. Stops
    /// quietly when the receiving side is gone.
    fn read(
        &self,
        first: usize,
        tx: &std::sync::mpsc::SyncSender<Msg>,
    ) -> Result<bool, StoreError> {
        let db = Db::open(self.path, Mode::ReadOnly)?;
        db.exec("BEGIN")?;
        let mut q = db.prepare(self.sql)?;
        let (mut synthetic, mut last) = (false, Last::default());
        // Rows in the last chunk read: the next one's batch is sized on it (traffic changes
        // slowly), not at a whole batch for the few rows of a small database's chunk.
        let mut rows_before = BATCH;
        let mut k = first as i64;
        loop {
            let lo = self.from_ms.saturating_add(k.saturating_mul(self.chunk_ms));
            if lo >= self.to_ms {
                return Ok(synthetic);
            }
            let hi = lo.saturating_add(self.chunk_ms).min(self.to_ms);
            q.reset();
            q.bind_i64(1, lo)?;
            q.bind_i64(2, hi)?;
            // Allocated at the first row: most chunks of a small database are empty.
            let mut batch = Vec::new();
            let mut rows = 0;
            while q.step()? {
                let (o, synth) = decode(&q, &mut last, self.probe_latency)?;
                synthetic |= synth;
                if batch.capacity() == 0 {
                    let left = rows_before.saturating_sub(rows);
                    batch.reserve_exact((left + left / 8 + 16).min(BATCH));
                }
                batch.push(o);
                rows += 1;
                if batch.len() == BATCH {
                    let full = std::mem::take(&mut batch);
                    if tx.send(Msg::Rows(full)).is_err() {
                        return Ok(synthetic);
                    }
                }
            }
            rows_before = rows;
            if (!batch.is_empty() && tx.send(Msg::Rows(batch)).is_err())
                || tx.send(Msg::EndOfChunk).is_err()
            {
                return Ok(synthetic);
            }
            k += self.step as i64;
        }
    }
}

/// `AND establishment IN (...)`, or nothing for every establishment.
fn establishment_filter(establishments: &[EstablishmentCode]) -> String {
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

//! Import of observation CSVs and gateway logs (issues 4 and 6) into the store.
//!
//! In: files (or stdin), plain or gzip (detected by its magic bytes), in the observation CSV of
//! `dispo kpi` or as JSON lines with a [`mapping::Mapping`]. Out: rows in the store, through
//! [`Store::insert_observations`], and an [`ImportSummary`] (added, already present, rejected).
//!
//! Memory stays bounded whatever the file size: a reader thread parses rows into batches of
//! `batch_rows` and hands them over a channel holding at most two batches; the async side
//! inserts each batch in one transaction. A crash loses at most the batch in flight, never half
//! of one; the import is *batch-resumable*: re-running it skips what landed (the store ignores
//! rows whose request id, time and establishment it already has). Bad rows are counted, written
//! to the rejects file as JSON lines (`input`, `line`, `reason`, `raw`), and the rest imports:
//! rows outside the [`bounds::Bounds`], and rows whose `outcome` contradicts their status
//! ([`outcome`]), are such bad rows.
//!
//! Coverage (methodology section 1): once a file's rows landed, the span from its first to its
//! last accepted `received_at` is recorded per establishment in it ([`Store::record_log_spans`],
//! under the input's name, `-` for stdin); for probe rows naming their vantage, per series and
//! vantage instead: that vantage's own coverage (section 10).

pub mod bounds;
pub mod jsonl;
pub mod linecap;
pub mod lines;
pub mod mapping;
pub mod outcome;

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use serde::Serialize;

use crate::store::coverage::LogSpans;
use crate::store::{Store, StoreError, StoredObservation};

use bounds::Bounds;

/// Rows per batch (one transaction each) by default.
pub const DEFAULT_BATCH_ROWS: usize = 50_000;

/// One parsed line: an observation, or why it was refused.
// Rejects are rare: boxing the observation instead would cost an allocation on every good line.
#[allow(clippy::large_enum_variant)]
pub enum Row {
    Obs(StoredObservation),
    Reject(RowReject),
}

/// A refused line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowReject {
    /// 1-based line number in the (decompressed) input.
    pub line: u64,
    pub reason: String,
    /// The line as read (a CSV record is re-joined with commas).
    pub raw: String,
}

/// A format reader: yields rows one by one, so memory stays bounded.
pub trait RowSource: Send {
    /// The next row, `None` at the end. `Err` only for unreadable input (I/O, corrupt gzip),
    /// which stops the import of this file.
    fn next_row(&mut self) -> Result<Option<Row>, ImportError>;
}

/// The input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The observation CSV of `dispo kpi --input` (header `received_at,establishment,...`).
    Csv,
    /// One JSON object per line, read through a mapping file.
    Jsonl,
}

/// Where rows come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

impl Input {
    /// `-` is stdin.
    pub fn from_arg(arg: &Path) -> Self {
        if arg == Path::new("-") {
            Input::Stdin
        } else {
            Input::File(arg.to_owned())
        }
    }
    pub fn name(&self) -> String {
        match self {
            Input::Stdin => "-".into(),
            Input::File(p) => p.display().to_string(),
        }
    }
}

/// What an import is asked to do.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub format: Format,
    /// Required for `jsonl`.
    pub mapping: Option<mapping::Mapping>,
    pub batch_rows: usize,
    /// Where refused lines go (created only when a line is refused).
    pub rejects_path: PathBuf,
    /// How many refused lines the summary keeps to show.
    pub show_rejects: usize,
    /// Set (by Ctrl-C) to stop after the batch being written: what landed is summed up.
    pub interrupted: Arc<AtomicBool>,
}

/// What happened to one input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileSummary {
    pub input: String,
    /// Rows read and parsed (not counting rejects).
    pub rows: u64,
    /// Rows new to the store.
    pub added: u64,
    /// Rows the store already had (or that repeat within the input).
    pub already_present: u64,
    pub rejected: u64,
    /// The establishments of its rows (checked against the bank's list after the import).
    #[serde(skip)]
    pub establishments: std::collections::BTreeSet<crate::domain::EstablishmentCode>,
}

/// A refused line with the input it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShownReject {
    pub input: String,
    #[serde(flatten)]
    pub reject: RowReject,
}

/// What an import did, input by input.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportSummary {
    pub files: Vec<FileSummary>,
    /// The first refused lines (at most `show_rejects`).
    pub first_rejects: Vec<ShownReject>,
    /// Set when at least one line was refused.
    pub rejects_path: Option<PathBuf>,
    #[serde(skip)]
    pub elapsed: Duration,
}

impl ImportSummary {
    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }
    pub fn added(&self) -> u64 {
        self.files.iter().map(|f| f.added).sum()
    }
    pub fn already_present(&self) -> u64 {
        self.files.iter().map(|f| f.already_present).sum()
    }
    pub fn rejected(&self) -> u64 {
        self.files.iter().map(|f| f.rejected).sum()
    }
    /// Parsed rows per second of wall time.
    pub fn rows_per_s(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.rows() as f64 / s } else { 0.0 }
    }
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read the input (truncated or corrupt file?): {0}")]
    Read(std::io::Error),
    #[error("{0}")]
    Header(String),
    #[error("cannot write the rejects file {path}: {source}")]
    Rejects {
        path: String,
        source: std::io::Error,
    },
    #[error("--format jsonl needs --mapping FILE (the gateway's field names)")]
    NoMapping,
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("the reader thread stopped unexpectedly")]
    Thread,
    #[error("interrupted")]
    Interrupted,
}

/// An import that stopped: what landed before, and why it stopped.
#[derive(Debug, thiserror::Error)]
#[error("{input}")]
pub struct ImportFailure {
    pub input: String,
    /// Everything committed before the failure (whole batches only), including the failing input's.
    pub landed: ImportSummary,
    #[source]
    pub error: ImportError,
}

/// Imports the inputs one after the other, with the default [`Bounds`] (latency up to 3 600 s,
/// times up to 24 h after the clock). `progress` is advanced by input bytes (hidden when not
/// interactive); its message shows rows and rows/s.
pub async fn import(
    store: &Store,
    inputs: &[Input],
    opts: &ImportOptions,
    progress: &ProgressBar,
) -> Result<ImportSummary, ImportFailure> {
    import_with_bounds(store, inputs, opts, Bounds::default(), progress).await
}

/// [`import`], refusing rows outside `bounds`.
pub async fn import_with_bounds(
    store: &Store,
    inputs: &[Input],
    opts: &ImportOptions,
    bounds: Bounds,
    progress: &ProgressBar,
) -> Result<ImportSummary, ImportFailure> {
    let started = Instant::now();
    let mut summary = ImportSummary::default();
    let mut sink = RejectSink::new(opts.rejects_path.clone(), opts.show_rejects);
    for input in inputs {
        let mut file = FileSummary {
            input: input.name(),
            ..Default::default()
        };
        let result = import_one(store, input, opts, bounds, progress, &mut file, sink).await;
        summary.files.push(file);
        match result {
            Ok(s) => sink = s,
            Err((s, error)) => {
                let mut landed = summary;
                s.finish_into(&mut landed);
                landed.elapsed = started.elapsed();
                return Err(ImportFailure {
                    input: input.name(),
                    landed,
                    error,
                });
            }
        }
    }
    sink.finish_into(&mut summary);
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// The rejects file (opened on the first reject) and the first rejects kept to show.
struct RejectSink {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    show: usize,
    first: Vec<ShownReject>,
    any: bool,
    error: Option<std::io::Error>,
}

impl RejectSink {
    fn new(path: PathBuf, show: usize) -> Self {
        Self {
            path,
            out: None,
            show,
            first: Vec::new(),
            any: false,
            error: None,
        }
    }

    fn push(&mut self, input: &str, mut reject: RowReject) -> Result<(), ImportError> {
        self.any = true;
        // A refused line may carry what a gateway should never have logged (a bearer token, a
        // password in a query string): the rejects file and the summary keep it scrubbed.
        reject.raw = crate::evidence::redact::redact(&reject.raw);
        reject.reason = crate::evidence::redact::redact(&reject.reason);
        let shown = ShownReject {
            input: input.to_owned(),
            reject,
        };
        let err = |source| ImportError::Rejects {
            path: self.path.display().to_string(),
            source,
        };
        if self.out.is_none() {
            let f = crate::files::create_private(&self.path).map_err(err)?;
            self.out = Some(BufWriter::new(f));
        }
        let out = self.out.as_mut().expect("opened above");
        let line = serde_json::to_string(&shown).expect("plain strings serialise");
        writeln!(out, "{line}").map_err(|source| ImportError::Rejects {
            path: self.path.display().to_string(),
            source,
        })?;
        if self.first.len() < self.show {
            self.first.push(shown);
        }
        Ok(())
    }

    fn flush(&mut self) {
        if let Some(out) = self.out.as_mut()
            && let Err(e) = out.flush()
        {
            self.error = Some(e);
        }
    }

    fn finish_into(mut self, summary: &mut ImportSummary) {
        self.flush();
        if let Some(e) = self.error {
            tracing::warn!(path = %self.path.display(), error = %e, "rejects file incomplete");
        }
        summary.first_rejects = self.first;
        summary.rejects_path = self.any.then_some(self.path);
    }
}

/// What the reader thread hands over: a batch, and the log spans of its rows.
enum Msg {
    Batch(Vec<StoredObservation>, LogSpans),
}

type OneResult = Result<RejectSink, (RejectSink, ImportError)>;

async fn import_one(
    store: &Store,
    input: &Input,
    opts: &ImportOptions,
    bounds: Bounds,
    progress: &ProgressBar,
    file: &mut FileSummary,
    mut sink: RejectSink,
) -> OneResult {
    let (raw, total, read_bytes) = match open(input) {
        Ok(x) => x,
        Err(e) => return Err((sink, e)),
    };
    let source: Box<dyn RowSource> = match opts.format {
        Format::Jsonl => match &opts.mapping {
            Some(m) => Box::new(jsonl::JsonLines::with_bounds(raw, m.clone(), bounds)),
            None => return Err((sink, ImportError::NoMapping)),
        },
        Format::Csv => match csv_source(raw, bounds) {
            Ok(s) => s,
            Err(e) => return Err((sink, e)),
        },
    };
    progress.reset();
    match total {
        Some(t) => progress.set_length(t),
        None => progress.unset_length(),
    }
    progress.set_prefix(input.name());

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Msg>(2);
    let name = input.name();
    let batch_rows = opts.batch_rows.max(1);
    let bar = progress.clone();
    let rejects_path = opts.rejects_path.clone();
    // Named, so profiles and thread listings tell the parsing side from the inserting one.
    let spawned = std::thread::Builder::new()
        .name("import-reader".into())
        .spawn(move || {
            let r = read_rows(source, &name, batch_rows, &tx, &mut sink, &bar, &read_bytes);
            (sink, r)
        });
    let reader = match spawned {
        Ok(r) => r,
        Err(_) => return Err((RejectSink::new(rejects_path, 0), ImportError::Thread)),
    };

    let mut insert_error = None;
    // Spans of the rows that landed (whole batches).
    let mut landed = LogSpans::default();
    loop {
        // Ctrl-C is looked at between batches, and while waiting for one (a stalled stdin).
        let next = tokio::select! {
            m = rx.recv() => m,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                if opts.interrupted.load(Ordering::Relaxed) {
                    insert_error = Some(ImportError::Interrupted);
                    break;
                }
                continue;
            }
        };
        let Some(Msg::Batch(batch, spans)) = next else {
            break;
        };
        if opts.interrupted.load(Ordering::Relaxed) {
            insert_error = Some(ImportError::Interrupted);
            break;
        }
        let n = batch.len() as u64;
        // Rows arrive in runs of one establishment: a set insert only when it changes.
        let mut last = None;
        for o in &batch {
            if last != Some(o.obs.establishment) {
                last = Some(o.obs.establishment);
                file.establishments.insert(o.obs.establishment);
            }
        }
        match store.insert_observations(batch).await {
            Ok(added) => {
                file.added += added;
                file.already_present += n - added;
                landed.merge(&spans);
            }
            Err(e) => {
                insert_error = Some(ImportError::Store(e));
                break;
            }
        }
    }
    // Closing the channel stops the reader if the database failed.
    drop(rx);
    if matches!(insert_error, Some(ImportError::Interrupted)) {
        // The reader may be blocked on its input: not waited for (the process ends). The rows
        // that landed are covered, as they would be.
        if let Err(se) = record_spans(store, input, &landed).await {
            tracing::warn!(input = %input.name(), error = %se, "log coverage not recorded");
        }
        file.rows = file.added + file.already_present;
        return Err((
            RejectSink::new(opts.rejects_path.clone(), 0),
            ImportError::Interrupted,
        ));
    }
    let joined = tokio::task::spawn_blocking(move || reader.join())
        .await
        .ok()
        .and_then(|j| j.ok());
    let Some((sink, read_result)) = joined else {
        return Err((
            RejectSink::new(opts.rejects_path.clone(), 0),
            ImportError::Thread,
        ));
    };
    let counts = match read_result {
        Ok(c) | Err((c, _)) if insert_error.is_some() => c,
        Ok(c) => c,
        Err((c, e)) => {
            // Unreadable from some point on (a truncated gzip, say): what landed is still covered.
            file.rows = c.rows;
            file.rejected = c.rejected;
            if let Err(se) = record_spans(store, input, &landed).await {
                tracing::warn!(input = %input.name(), error = %se, "log coverage not recorded");
            }
            return Err((sink, e));
        }
    };
    file.rows = counts.rows;
    file.rejected = counts.rejected;
    if insert_error.is_none() {
        // Rows handed over but not inserted cannot happen without an insert error.
        debug_assert_eq!(file.added + file.already_present, file.rows);
    }
    match insert_error {
        // The database is failing: re-running the import records the whole file's spans.
        Some(e) => Err((sink, e)),
        None => match record_spans(store, input, &landed).await {
            Ok(()) => Ok(sink),
            Err(e) => Err((sink, ImportError::Store(e))),
        },
    }
}

/// Records the coverage of one input's landed rows, under its name.
async fn record_spans(store: &Store, input: &Input, spans: &LogSpans) -> Result<(), StoreError> {
    if spans.is_empty() {
        return Ok(());
    }
    let now_ms = chrono::Utc::now().timestamp_millis();
    store
        .record_log_spans(&input.name(), &spans.spans(), now_ms)
        .await
}

#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    rows: u64,
    rejected: u64,
}

/// Text a batch may hold before it is handed over, whatever its row count.
const BATCH_TEXT_BYTES: usize = 16 << 20;

/// The text a row holds on the heap (ids, code, error text), roughly.
fn text_bytes(o: &StoredObservation) -> usize {
    o.obs.request_id.len()
        + o.obs.tpp.as_ref().map_or(0, |t| t.len())
        + o.obs.error_code.as_ref().map_or(0, |t| t.len())
        + o.error_text.as_ref().map_or(0, String::len)
        + o.probe_id.as_ref().map_or(0, String::len)
}

/// The reader thread: parse, batch, hand over; rejects go to the sink.
fn read_rows(
    mut source: Box<dyn RowSource>,
    name: &str,
    batch_rows: usize,
    tx: &tokio::sync::mpsc::Sender<Msg>,
    sink: &mut RejectSink,
    bar: &ProgressBar,
    read_bytes: &AtomicU64,
) -> Result<Counts, (Counts, ImportError)> {
    let started = Instant::now();
    let mut c = Counts::default();
    let mut batch = Vec::with_capacity(batch_rows.min(4096));
    let mut batch_text = 0usize;
    let mut spans = LogSpans::default();
    let closed = |c: Counts| (c, ImportError::Thread);
    loop {
        let row = match source.next_row() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => {
                // Whole batches only: what was read of this batch is handed over, since each row
                // is complete; the error is then reported.
                if !batch.is_empty() {
                    let _ = tx.blocking_send(Msg::Batch(batch, spans));
                }
                return Err((c, e));
            }
        };
        match row {
            Row::Obs(o) => {
                spans.add_row(&o.obs);
                batch_text += text_bytes(&o);
                batch.push(o);
                c.rows += 1;
                // Rows or text, whichever fills first: rows at their length limits (ids of
                // 200 characters, error texts of 2 000) would make a row-counted batch hundreds
                // of megabytes.
                if batch.len() >= batch_rows || batch_text >= BATCH_TEXT_BYTES {
                    batch_text = 0;
                    let full =
                        std::mem::replace(&mut batch, Vec::with_capacity(batch_rows.min(4096)));
                    let full_spans = std::mem::take(&mut spans);
                    tx.blocking_send(Msg::Batch(full, full_spans))
                        .map_err(|_| closed(c))?;
                    bar.set_position(read_bytes.load(Ordering::Relaxed));
                    let secs = started.elapsed().as_secs_f64().max(1e-3);
                    bar.set_message(format!(
                        "{} rows, {:.0} rows/s",
                        c.rows,
                        c.rows as f64 / secs
                    ));
                }
            }
            Row::Reject(r) => {
                c.rejected += 1;
                sink.push(name, r).map_err(|e| (c, e))?;
            }
        }
    }
    if !batch.is_empty() {
        tx.blocking_send(Msg::Batch(batch, spans))
            .map_err(|_| closed(c))?;
    }
    sink.flush();
    bar.set_position(read_bytes.load(Ordering::Relaxed));
    Ok(c)
}

/// Counts bytes read from the raw (possibly compressed) input, for the progress bar.
struct Counting<R> {
    inner: R,
    n: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n.fetch_add(k as u64, Ordering::Relaxed);
        Ok(k)
    }
}

type Opened = (Box<dyn BufRead + Send>, Option<u64>, Arc<AtomicU64>);

/// Opens an input; gzip is recognised by its first two bytes (1f 8b), whatever the file name.
fn open(input: &Input) -> Result<Opened, ImportError> {
    let n = Arc::new(AtomicU64::new(0));
    let (raw, total): (Box<dyn Read + Send>, Option<u64>) = match input {
        Input::Stdin => (Box::new(std::io::stdin()), None),
        Input::File(p) => {
            let f = File::open(p).map_err(|source| ImportError::Open {
                path: p.display().to_string(),
                source,
            })?;
            let len = f.metadata().ok().map(|m| m.len());
            (Box::new(f), len)
        }
    };
    let mut buffered = BufReader::with_capacity(
        256 * 1024,
        Counting {
            inner: raw,
            n: n.clone(),
        },
    );
    let head = buffered.fill_buf().map_err(ImportError::Read)?;
    let gz = head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b;
    let out: Box<dyn BufRead + Send> = if gz {
        Box::new(BufReader::with_capacity(
            256 * 1024,
            flate2::bufread::MultiGzDecoder::new(buffered),
        ))
    } else {
        Box::new(buffered)
    };
    Ok((out, total, n))
}

/// The columns of the observation CSV, in order.
pub fn csv_header() -> &'static [&'static str] {
    &csv_rows::HEADER
}

/// The observation CSV reader (the shared format of `dispo kpi --input`).
fn csv_source(
    input: Box<dyn BufRead + Send>,
    bounds: Bounds,
) -> Result<Box<dyn RowSource>, ImportError> {
    Ok(Box::new(csv_rows::CsvRows::with_bounds(input, bounds)?))
}

pub mod csv_rows;

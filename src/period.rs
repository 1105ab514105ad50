//! One way into a period: what every command that counts (`kpi`, `report`, `evidence`, the
//! exemption dossier, the periodic checks of `dispo run`, the demo) hands the engine.
//!
//! In: the store (or an observation CSV) and a period of local days with its settings. Out: an
//! [`EngineInput`] over [`engine::load_range`] (look-back before the period, whole weeks around
//! it), with the coverage of section 1 and response times per policy `probe_latency`. De-
//! duplication (one request counts once) happens in the engine, for every input alike. Because
//! every command loads the same range the same way, an episode has the same id everywhere.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use crate::domain::{EstablishmentCode, Observation};
use crate::engine::{self, EngineInput, Period, Settings, response_time_ms};
use crate::import::bounds::Bounds;
use crate::import::csv_rows::CsvRows;
use crate::import::{ImportError, Row, RowSource};
use crate::store::coverage::LogSpans;
use crate::store::{Store, StoreError, StoredObservation};

/// Why a period could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PeriodError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: ImportError },
    #[error("{path}:{line}: {reason}")]
    BadLine {
        path: PathBuf,
        line: u64,
        reason: String,
    },
}

/// A period's input, from the lean read of the store.
#[derive(Debug, Default)]
pub struct PeriodData {
    pub input: EngineInput,
    /// Any observation read is synthetic (`dispo synth`): every output says so.
    pub synthetic: bool,
}

/// The engine's input for `period` from the store (only the counted columns). `now_ms` tells a
/// running monitor from a stopped one.
pub async fn load(
    store: &Store,
    period: Period,
    settings: &Settings,
    establishments: &[EstablishmentCode],
    now_ms: i64,
) -> Result<PeriodData, PeriodError> {
    let (from, to) = engine::load_range(period, settings);
    let rows = store
        .load_for_counting(from, to, establishments, settings.probe_latency)
        .await?;
    let coverage = store.coverage(from, to, now_ms).await?;
    Ok(PeriodData {
        input: EngineInput {
            observations: rows.observations,
            coverage,
        },
        synthetic: rows.synthetic,
    })
}

/// The same input as [`load`], with every stored row beside it (error texts, phases: what
/// evidence packs show).
pub async fn load_full(
    store: &Store,
    period: Period,
    settings: &Settings,
    establishments: &[EstablishmentCode],
    now_ms: i64,
) -> Result<(EngineInput, Vec<StoredObservation>), PeriodError> {
    let (from, to) = engine::load_range(period, settings);
    let stored = store.load_observations(from, to, establishments).await?;
    let coverage = store.coverage(from, to, now_ms).await?;
    let observations = stored.iter().map(|s| counted(s, settings)).collect();
    Ok((
        EngineInput {
            observations,
            coverage,
        },
        stored,
    ))
}

/// A stored row as the engine counts it (the response time per policy `probe_latency`).
pub fn counted(s: &StoredObservation, settings: &Settings) -> Observation {
    let mut o = s.obs.clone();
    o.latency_ms = response_time_ms(
        settings.probe_latency,
        o.source,
        o.latency_ms,
        s.phases.map(|p| p.processing_ms),
        s.phases.map(|p| p.transfer_ms),
    );
    o
}

/// An observation CSV counted directly (`kpi --input`): the file is one log, covering each of
/// its series from its first to its last line (section 1). Every line must be valid: the first
/// bad one stops with its line number and reason (the import's bounds apply: `max_latency_s`,
/// times from 2000 to a day after `now_ms`). Also returns the first and last instants.
pub fn from_csv(
    path: &Path,
    settings: &Settings,
    now_ms: i64,
) -> Result<(EngineInput, Option<(i64, i64)>), PeriodError> {
    let file = File::open(path).map_err(|source| PeriodError::Open {
        path: path.to_owned(),
        source,
    })?;
    let read_err = |source| PeriodError::Read {
        path: path.to_owned(),
        source,
    };
    let bounds = Bounds::new(settings.max_latency_s, now_ms);
    let mut rows = CsvRows::with_bounds(BufReader::new(file), bounds).map_err(read_err)?;
    let mut observations = Vec::new();
    let mut spans = LogSpans::default();
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    while let Some(row) = rows.next_row().map_err(read_err)? {
        match row {
            Row::Obs(o) => {
                let t = o.obs.received_at_ms;
                lo = lo.min(t);
                hi = hi.max(t);
                spans.add(o.obs.establishment, o.obs.interface, t);
                observations.push(o.obs);
            }
            Row::Reject(r) => {
                return Err(PeriodError::BadLine {
                    path: path.to_owned(),
                    line: r.line,
                    reason: r.reason,
                });
            }
        }
    }
    let span = (!observations.is_empty()).then_some((lo, hi));
    Ok((
        EngineInput {
            observations,
            coverage: spans.coverage(),
        },
        span,
    ))
}

/// The local days holding the data's first and last instants, when no period is given.
pub fn period_of_span(span: (i64, i64), settings: &Settings) -> Period {
    Period {
        from: engine::time::local_date(settings.tz, span.0),
        to: engine::time::local_date(settings.tz, span.1) + chrono::Duration::days(1),
    }
}

//! One way into a period: what every command that counts (`kpi`, `report`, `evidence`, the
//! exemption dossier, the periodic checks of `dispo run`, the demo) hands the engine.
//!
//! In: the store (or an observation CSV) and a period of local days with its settings. Out: the
//! period counted as the store streams [`engine::load_range`] (look-back before the period, whole
//! weeks around it; [`count`]), or an [`EngineInput`] over that range ([`load_full`], evidence
//! packs; [`from_csv`]), with the coverage of section 1 and response times per policy
//! `probe_latency`. De-
//! duplication (one request counts once) happens in the engine, for every input alike. Because
//! every command loads the same range the same way, an episode has the same id everywhere.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use crate::domain::{EstablishmentCode, Observation};
use crate::engine::two::TwoCounters;
use crate::engine::{self, EngineError, EngineInput, Kpis, Period, Settings, response_time_ms};
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
    #[error(transparent)]
    Engine(#[from] EngineError),
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

/// A period counted from the store as it streams by.
#[derive(Debug)]
pub struct Counted {
    pub kpis: Kpis,
    /// Any observation read is synthetic (`dispo synth`): every output says so.
    pub synthetic: bool,
    /// Observations read, over all of [`engine::load_range`] (look-back and whole weeks).
    pub read: u64,
    /// Of which received inside the period itself.
    pub in_period: u64,
    /// The first record of each request the episodes name, in time order (the annex's details).
    pub named_requests: Vec<Observation>,
}

/// Counts `period` from the store in time order, as the rows are read: memory follows a day of
/// traffic, not the period (the engine's [`Counter`]). `now_ms` tells a running monitor from a
/// stopped one.
pub async fn count(
    store: &Store,
    period: Period,
    settings: &Settings,
    establishments: &[EstablishmentCode],
    now_ms: i64,
) -> Result<Counted, PeriodError> {
    let (counted, _) = count_with(
        store,
        period,
        settings,
        establishments,
        now_ms,
        (),
        |_, _| {},
    )
    .await?;
    Ok(counted)
}

/// As [`count`], showing `look` every observation of the period itself as it is read (before
/// de-duplication: the store's rows) with `state`, for figures that are not the engine's (a
/// report's usage table); `state` is given back.
pub async fn count_with<S, L>(
    store: &Store,
    period: Period,
    settings: &Settings,
    establishments: &[EstablishmentCode],
    now_ms: i64,
    state: S,
    look: L,
) -> Result<(Counted, S), PeriodError>
where
    S: Send + 'static,
    L: FnMut(&mut S, &Observation) + Send + 'static,
{
    let (from, to) = engine::load_range(period, settings);
    let coverage = store.coverage(from, to, now_ms).await?;
    let tz = settings.tz;
    let (p_start, p_end) = (
        engine::time::day_start_ms(tz, period.from),
        engine::time::day_start_ms(tz, period.to),
    );
    struct State<S, L> {
        counter: TwoCounters,
        seen: S,
        look: L,
        error: Option<EngineError>,
        read: u64,
        in_period: u64,
    }
    let state = State {
        // Two counters when there are two cores (the machines have two; reading the store
        // takes a third thread part of the time).
        counter: TwoCounters::new(
            period,
            settings,
            coverage,
            std::thread::available_parallelism().map_or(1, |n| n.get()),
        )?,
        seen: state,
        look,
        error: None,
        read: 0,
        in_period: 0,
    };
    let (state, synthetic) = store
        .stream_for_counting(
            from,
            to,
            establishments,
            settings.probe_latency,
            state,
            move |st, batch| {
                for o in &batch {
                    st.read += 1;
                    if o.received_at_ms >= p_start && o.received_at_ms < p_end {
                        st.in_period += 1;
                        (st.look)(&mut st.seen, o);
                    }
                }
                if let Err(e) = st.counter.push_rows(batch) {
                    st.error = Some(e);
                    return false;
                }
                true
            },
        )
        .await?;
    if let Some(e) = state.error {
        return Err(e.into());
    }
    let (read, in_period, seen) = (state.read, state.in_period, state.seen);
    // The last day's figures, the episodes and the period's percentiles: CPU work, off the
    // async threads.
    let (kpis, named_requests) = tokio::task::spawn_blocking(move || state.counter.finish())
        .await
        .map_err(|e| StoreError::Raw {
            path: "(counting)".into(),
            why: format!("the counting thread failed: {e}"),
        })??;
    Ok((
        Counted {
            kpis,
            synthetic,
            read,
            in_period,
            named_requests,
        },
        seen,
    ))
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
/// its series from its first to its last line (section 1); a line repeating an earlier one's
/// instant, establishment and request id is skipped, as `dispo import` skips it. Every line must be valid: the first
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
    // The store's identity: a row repeating an earlier one's instant, establishment and request
    // id is that row again, which `dispo import` would skip; skipped here too (before coverage:
    // under another vantage's name it must not make that vantage cover), so the file counts as
    // its import would.
    let mut seen: rustc_hash::FxHashSet<(i64, EstablishmentCode, crate::domain::CompactString)> =
        Default::default();
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    while let Some(row) = rows.next_row().map_err(read_err)? {
        match row {
            Row::Obs(o) => {
                if !seen.insert((
                    o.obs.received_at_ms,
                    o.obs.establishment,
                    o.obs.request_id.clone(),
                )) {
                    continue;
                }
                let t = o.obs.received_at_ms;
                lo = lo.min(t);
                hi = hi.max(t);
                spans.add_row(&o.obs);
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

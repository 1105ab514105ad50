//! A period counted on two threads: establishments are independent (one request counts once
//! within an establishment, every figure is per establishment), so each of two [`Counter`]s is
//! given whole establishments as the rows stream by, and their figures are merged at the end
//! ([`Part::merge`]): the same figures as one counter, in half the time when a second core is
//! free.

use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use super::replies::DEFAULT_IN_MEMORY;
use super::stream::{Counter, Part};
use super::{EngineError, Kpis, Period, Settings};
use crate::domain::{CoverageSpan, EstablishmentCode, Observation};

/// How many rows ahead a counter asks for a row's place in its de-duplication window.
const PREFETCH_AHEAD: usize = 16;

/// The counter of the calling thread, and the second one on its own thread.
pub struct TwoCounters {
    mine: Counter,
    other: Option<Other>,
    /// Which counter each establishment seen so far goes to (`true`: the other).
    given: Vec<(EstablishmentCode, bool)>,
    /// Rows given to each so far: a new establishment goes to the one with fewer.
    load: [u64; 2],
    settings: Settings,
}

struct Other {
    rows: SyncSender<Vec<Observation>>,
    thread: JoinHandle<Result<Part, EngineError>>,
}

impl TwoCounters {
    /// Counters for `period` (see [`Counter::new`]); `threads` 1 counts on the calling thread
    /// alone.
    pub fn new(
        period: Period,
        settings: &Settings,
        coverage: Vec<CoverageSpan>,
        threads: usize,
    ) -> Result<Self, EngineError> {
        let two = threads >= 2;
        // The period's replies held in memory are shared between the counters.
        let memory = if two {
            DEFAULT_IN_MEMORY / 2
        } else {
            DEFAULT_IN_MEMORY
        };
        let other = if two {
            let mut counter =
                Counter::with_reply_memory(period, settings, coverage.clone(), memory)?;
            let (tx, rx) = sync_channel::<Vec<Observation>>(4);
            let thread = std::thread::Builder::new()
                .name("dispo-count".into())
                .spawn(move || {
                    for rows in rx {
                        count_rows(&mut counter, rows)?;
                    }
                    counter.finish_part()
                })
                .map_err(|e| EngineError::Thread {
                    why: format!("cannot start it: {e}"),
                })?;
            Some(Other { rows: tx, thread })
        } else {
            None
        };
        Ok(Self {
            mine: Counter::with_reply_memory(period, settings, coverage, memory)?,
            other,
            given: Vec::new(),
            load: [0, 0],
            settings: settings.clone(),
        })
    }

    /// The next rows of the stream, in `received_at` order.
    pub fn push_rows(&mut self, rows: Vec<Observation>) -> Result<(), EngineError> {
        let Some(other) = &self.other else {
            return count_rows(&mut self.mine, rows);
        };
        let (mut mine, mut theirs) = (Vec::with_capacity(rows.len()), Vec::new());
        let mut last: Option<(EstablishmentCode, bool)> = None;
        for o in rows {
            let to_other = match last {
                Some((e, t)) if e == o.establishment => t,
                _ => {
                    let t = match self.given.iter().find(|(e, _)| *e == o.establishment) {
                        Some((_, t)) => *t,
                        None => {
                            let t = self.load[1] < self.load[0];
                            self.given.push((o.establishment, t));
                            t
                        }
                    };
                    last = Some((o.establishment, t));
                    t
                }
            };
            self.load[usize::from(to_other)] += 1;
            if to_other {
                theirs.push(o);
            } else {
                mine.push(o);
            }
        }
        if !theirs.is_empty() && other.rows.send(theirs).is_err() {
            // It stopped on an error: `finish` tells it.
            return self.stopped();
        }
        count_rows(&mut self.mine, mine)
    }

    /// The error the other counter stopped on.
    fn stopped(&mut self) -> Result<(), EngineError> {
        match self.other.take().map(|o| o.thread.join()) {
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) => Err(EngineError::Thread {
                why: "it panicked".into(),
            }),
            _ => Err(EngineError::Thread {
                why: "it stopped taking rows".into(),
            }),
        }
    }

    /// The end of the stream: the period's figures and the requests the episodes name (as
    /// [`Counter::finish_with_requests`]).
    pub fn finish(self) -> Result<(Kpis, Vec<Observation>), EngineError> {
        let other = self.other.map(|o| {
            // No more rows: it finishes while this thread does.
            drop(o.rows);
            o.thread
        });
        let mine = self.mine.finish_part()?;
        let others = match other.map(|t| t.join()) {
            None => Vec::new(),
            Some(Ok(part)) => vec![part?],
            Some(Err(_)) => {
                return Err(EngineError::Thread {
                    why: "it panicked".into(),
                });
            }
        };
        Part::merge(mine, others, &self.settings)
    }
}

/// Counts `rows`, asking ahead for where each will be looked up.
fn count_rows(counter: &mut Counter, rows: Vec<Observation>) -> Result<(), EngineError> {
    let mut rows = rows.into_iter();
    while let Some(o) = rows.next() {
        // A row's id is looked up among a day of ids (half a million per counter at 100 M rows
        // a quarter): asked for early, the look-up does not wait on memory.
        if let Some(ahead) = rows.as_slice().get(PREFETCH_AHEAD) {
            counter.prefetch(ahead);
        }
        let next_ms = rows.as_slice().first().map(|n| n.received_at_ms);
        counter.push_before(o, next_ms)?;
    }
    Ok(())
}

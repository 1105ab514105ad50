//! Coverage in the store (methodology section 1): the series each monitor run probes (beside
//! its heartbeats) and the spans of imported gateway logs, and of imported probes of named
//! vantages (section 10: each vantage's own coverage, as its runs would be). Read back as [`CoverageSpan`]s for
//! the engine, which alone decides what is covered.

use std::collections::BTreeMap;
use std::str::FromStr;

use sqlx::Row;

use super::{Store, StoreError, bad_row};
use crate::domain::{
    CoverageKind, CoverageSpan, EstablishmentCode, Interface, Observation, Source, Vantage,
};

/// A monitor whose last heartbeat is older than this is not running any more (killed): its
/// coverage ends at that heartbeat rather than "now".
pub const STALE_HEARTBEAT_MS: i64 = 120_000;

/// A monitor run never closed (a row of `heartbeats`), times in epoch ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenRun {
    pub id: i64,
    pub started_at: i64,
    pub last_beat: i64,
}

/// Stored in `log_spans.interface` for a span that covers every interface of its establishment.
pub const EVERY_INTERFACE: &str = "*";

/// What one imported file covers (methodology section 1): from its first to its last
/// `received_at`, for every establishment that appears in it. `interface` `None` is every
/// interface (a gateway log covers the establishment, not only the interfaces TPPs happened to
/// call: an outage stays downtime when TPPs stop calling and fall back).
///
/// `vantage` set (section 10): the file's probe rows of that vantage covered this series (one
/// interface) over the file's span, that vantage's own coverage, as a monitor run would be;
/// `None`, the gateway's (logs, and probe rows naming no vantage), shared by every vantage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSpan {
    pub establishment: EstablishmentCode,
    pub interface: Option<Interface>,
    pub first_ms: i64,
    pub last_ms: i64,
    pub vantage: Option<Vantage>,
}

/// Accumulates the spans of one file as its rows go by.
#[derive(Debug, Default, Clone)]
pub struct LogSpans {
    /// First and last instant of the gateway's rows (logs, probes naming no vantage) per series.
    shared: BTreeMap<(EstablishmentCode, Interface), (i64, i64)>,
    /// First and last instant of each named vantage's probe rows per series (a file has few).
    probed: Vec<(Probed, (i64, i64))>,
    /// The entry of `probed` the last row went to: rows come in runs of one series.
    last: usize,
}

type Probed = (EstablishmentCode, Interface, Vantage);

fn widen(s: &mut (i64, i64), at_ms: i64) {
    s.0 = s.0.min(at_ms);
    s.1 = s.1.max(at_ms);
}

impl LogSpans {
    /// A row of the gateway's side (a log line, or a probe row naming no vantage).
    pub fn add(&mut self, e: EstablishmentCode, i: Interface, at_ms: i64) {
        widen(self.shared.entry((e, i)).or_insert((at_ms, at_ms)), at_ms);
    }
    /// Any imported row: a probe row naming its vantage (not `import`) is that vantage's, every
    /// other row the gateway's side ([`Self::add`]).
    pub fn add_row(&mut self, o: &Observation) {
        if o.source != Source::Probe || o.vantage.as_str() == Vantage::IMPORTED {
            return self.add(o.establishment, o.interface, o.received_at_ms);
        }
        let at = o.received_at_ms;
        let is = |k: &Probed| k.0 == o.establishment && k.1 == o.interface && k.2 == o.vantage;
        if let Some((k, s)) = self.probed.get_mut(self.last)
            && is(k)
        {
            return widen(s, at);
        }
        match self.probed.iter().position(|(k, _)| is(k)) {
            Some(n) => {
                self.last = n;
                widen(&mut self.probed[n].1, at);
            }
            None => {
                self.last = self.probed.len();
                let k = (o.establishment, o.interface, o.vantage.clone());
                self.probed.push((k, (at, at)));
            }
        }
    }
    pub fn is_empty(&self) -> bool {
        self.shared.is_empty() && self.probed.is_empty()
    }
    /// Adds what another part of the same file saw.
    pub fn merge(&mut self, other: &LogSpans) {
        for (&(e, i), &(a, b)) in &other.shared {
            self.add(e, i, a);
            self.add(e, i, b);
        }
        for (k, (a, b)) in &other.probed {
            match self.probed.iter_mut().find(|(x, _)| x == k) {
                Some((_, s)) => {
                    widen(s, *a);
                    widen(s, *b);
                }
                None => self.probed.push((k.clone(), (*a, *b))),
            }
        }
    }
    /// The file's span: for each establishment of the gateway's rows (every interface), and for
    /// each series and vantage of its named probe rows.
    pub fn spans(&self) -> Vec<LogSpan> {
        let all = || self.shared.values().chain(self.probed.iter().map(|p| &p.1));
        let first = all().map(|s| s.0).min();
        let last = all().map(|s| s.1).max();
        let (Some(first_ms), Some(last_ms)) = (first, last) else {
            return Vec::new();
        };
        let mut codes: Vec<EstablishmentCode> = self.shared.keys().map(|k| k.0).collect();
        codes.dedup();
        let shared = codes.into_iter().map(|establishment| LogSpan {
            establishment,
            interface: None,
            first_ms,
            last_ms,
            vantage: None,
        });
        let mut keys: Vec<&Probed> = self.probed.iter().map(|p| &p.0).collect();
        keys.sort();
        let probed = keys.into_iter().map(|(e, i, v)| LogSpan {
            establishment: *e,
            interface: Some(*i),
            first_ms,
            last_ms,
            vantage: Some(v.clone()),
        });
        shared.chain(probed).collect()
    }
    /// As coverage (for a file counted directly, `kpi --input`): from the first to the last line
    /// (a file of one line covers no time: its day is "n.d.").
    pub fn coverage(&self) -> Vec<CoverageSpan> {
        self.spans()
            .into_iter()
            .map(|s| CoverageSpan {
                kind: CoverageKind::Log,
                establishment: Some(s.establishment),
                interface: s.interface,
                start_ms: s.first_ms,
                end_ms: s.last_ms,
                ongoing: false,
                vantage: s.vantage,
            })
            .collect()
    }
}

impl Store {
    /// Records that a monitor started probing these series; returns the heartbeat row to advance.
    /// Earlier runs of the same monitor never closed whose heartbeat is stale end at their last
    /// heartbeat (a fresh one may be another node's live run: see [`super::lock`]).
    pub async fn start_monitor(
        &self,
        monitor_id: &str,
        series: &[(EstablishmentCode, Interface)],
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        self.end_earlier_runs(monitor_id, now_ms, now_ms - STALE_HEARTBEAT_MS)
            .await?;
        let mut tx = self.pool().begin().await?;
        let id: i64 = self.q(
            "INSERT INTO heartbeats (monitor_id, started_at, last_beat) VALUES (?, ?, ?) RETURNING id",
        )
        .bind(monitor_id)
        .bind(now_ms)
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        for (e, i) in series {
            self.q(
                "INSERT INTO heartbeat_series (heartbeat_id, establishment, interface) \
                 VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(e.as_str())
            .bind(i.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Runs of `monitor_id` started before `started_before_ms`, never closed, whose last
    /// heartbeat is before `beat_before_ms`, are not running any more: they end at their last
    /// heartbeat, so a restart still leaves a gap. Who may call it with a fresh
    /// `beat_before_ms` is [`super::lock::MonitorLock::admit`]'s decision: a live run's
    /// heartbeat is never closed by another process.
    pub async fn end_earlier_runs(
        &self,
        monitor_id: &str,
        started_before_ms: i64,
        beat_before_ms: i64,
    ) -> Result<u64, StoreError> {
        Ok(self
            .q(
                "UPDATE heartbeats SET stopped_at = last_beat, stop_reason = 'not running at restart' \
                 WHERE monitor_id = ? AND stopped_at IS NULL AND started_at < ? AND last_beat < ?",
            )
            .bind(monitor_id)
            .bind(started_before_ms)
            .bind(beat_before_ms)
            .execute(self.pool())
            .await?
            .rows_affected())
    }

    /// Runs of `monitor_id` never closed whose heartbeat is fresh at `now_ms` (within
    /// [`STALE_HEARTBEAT_MS`]): running, or ended within the stale delay without closing.
    pub async fn fresh_runs(
        &self,
        monitor_id: &str,
        now_ms: i64,
    ) -> Result<Vec<OpenRun>, StoreError> {
        let rows = self
            .q("SELECT id, started_at, last_beat FROM heartbeats \
                 WHERE monitor_id = ? AND stopped_at IS NULL AND last_beat >= ? ORDER BY id")
            .bind(monitor_id)
            .bind(now_ms - STALE_HEARTBEAT_MS)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(OpenRun {
                    id: r.try_get(0)?,
                    started_at: r.try_get(1)?,
                    last_beat: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// Records a whole monitor run at once, from `start_ms` to `end_ms`, stopped: what
    /// `dispo synth` writes beside its synthetic probes, so their time is covered as a real
    /// monitor's would be.
    pub async fn record_monitor_run(
        &self,
        monitor_id: &str,
        series: &[(EstablishmentCode, Interface)],
        start_ms: i64,
        end_ms: i64,
        reason: &str,
    ) -> Result<(), StoreError> {
        let id = self.start_monitor(monitor_id, series, start_ms).await?;
        self.stop_heartbeat(id, end_ms, reason).await
    }

    /// Records the spans of one imported file (`source`: its name as given). A vantage's span
    /// (section 10) is recorded once: importing the same file again adds none.
    pub async fn record_log_spans(
        &self,
        source: &str,
        spans: &[LogSpan],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        for s in spans {
            let interface = s.interface.map_or(EVERY_INTERFACE, |i| i.as_str());
            match &s.vantage {
                None => {
                    self.q(
                        "INSERT INTO log_spans (source, establishment, interface, first_at, last_at, imported_at) \
                         VALUES (?, ?, ?, ?, ?, ?)",
                    )
                    .bind(source)
                    .bind(s.establishment.as_str())
                    .bind(interface)
                    .bind(s.first_ms)
                    .bind(s.last_ms)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
                }
                // Only if the store holds probe rows of that vantage there: a file whose rows
                // were already stored under another vantage's name (the same requests renamed,
                // an id's case changed) added none of its own, so it covers nothing; counted as
                // covering, its empty series would outvote a real outage.
                Some(v) => {
                    self.q(
                        "INSERT INTO log_spans (source, establishment, interface, first_at, last_at, imported_at, vantage) \
                         SELECT ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM log_spans \
                         WHERE source = ? AND establishment = ? AND interface = ? AND first_at = ? \
                         AND last_at = ? AND vantage = ?) \
                         AND EXISTS (SELECT 1 FROM observations WHERE received_at >= ? \
                         AND received_at <= ? AND establishment = ? AND interface = ? \
                         AND vantage = ? AND source = 'probe')",
                    )
                    .bind(source)
                    .bind(s.establishment.as_str())
                    .bind(interface)
                    .bind(s.first_ms)
                    .bind(s.last_ms)
                    .bind(now_ms)
                    .bind(v.as_str())
                    .bind(source)
                    .bind(s.establishment.as_str())
                    .bind(interface)
                    .bind(s.first_ms)
                    .bind(s.last_ms)
                    .bind(v.as_str())
                    .bind(s.first_ms)
                    .bind(s.last_ms)
                    .bind(s.establishment.as_str())
                    .bind(interface)
                    .bind(v.as_str())
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every coverage span overlapping `[from_ms, to_ms)`, clipped to it. `now_ms` tells a
    /// running monitor (fresh heartbeat, never stopped) from a killed one.
    pub async fn coverage(
        &self,
        from_ms: i64,
        to_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<CoverageSpan>, StoreError> {
        let mut out = Vec::new();
        let rows = self.q(
            "SELECT h.id, h.started_at, h.last_beat, h.stopped_at, s.establishment, s.interface, \
             h.monitor_id \
             FROM heartbeats h LEFT JOIN heartbeat_series s ON s.heartbeat_id = h.id \
             WHERE h.last_beat >= ? AND h.started_at < ? ORDER BY h.started_at",
        )
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(self.pool())
        .await?;
        for r in rows {
            let (start, last, stopped): (i64, i64, Option<i64>) =
                (r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
            let est: Option<String> = r.try_get(4)?;
            let iface: Option<String> = r.try_get(5)?;
            let bad = |source| bad_row(start, est.as_deref().unwrap_or(""), "(heartbeat)", source);
            let establishment = est
                .as_deref()
                .map(EstablishmentCode::from_str)
                .transpose()
                .map_err(bad)?;
            let interface = iface
                .as_deref()
                .map(Interface::from_str)
                .transpose()
                .map_err(bad)?;
            let monitor: String = r.try_get(6)?;
            let vantage = Some(Vantage::from_str(&monitor).map_err(bad)?);
            let ongoing = stopped.is_none() && now_ms - last <= STALE_HEARTBEAT_MS;
            // A running monitor covers up to now, not only to its last beat.
            let end = if ongoing { last.max(now_ms) } else { last };
            push_clipped(
                &mut out,
                CoverageSpan {
                    kind: CoverageKind::Monitor,
                    establishment,
                    interface,
                    start_ms: start,
                    end_ms: end,
                    ongoing,
                    vantage,
                },
                from_ms,
                to_ms,
            );
        }
        let rows = self
            .q(
                "SELECT establishment, interface, first_at, last_at, vantage FROM log_spans \
             WHERE last_at >= ? AND first_at < ? ORDER BY first_at, id",
            )
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(self.pool())
            .await?;
        for r in rows {
            let (est, iface, first, last): (String, String, i64, i64) =
                (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
            let vantage: Option<String> = r.try_get(4)?;
            let bad = |source| bad_row(first, &est, "(log span)", source);
            push_clipped(
                &mut out,
                CoverageSpan {
                    kind: CoverageKind::Log,
                    establishment: Some(EstablishmentCode::from_str(&est).map_err(bad)?),
                    interface: match iface.as_str() {
                        EVERY_INTERFACE => None,
                        i => Some(Interface::from_str(i).map_err(bad)?),
                    },
                    start_ms: first,
                    end_ms: last,
                    ongoing: false,
                    // An imported vantage's own coverage (section 10); none: the gateway's.
                    vantage: vantage
                        .as_deref()
                        .map(Vantage::from_str)
                        .transpose()
                        .map_err(bad)?,
                },
                from_ms,
                to_ms,
            );
        }
        Ok(out)
    }
}

fn push_clipped(out: &mut Vec<CoverageSpan>, mut s: CoverageSpan, from_ms: i64, to_ms: i64) {
    s.start_ms = s.start_ms.max(from_ms);
    s.end_ms = s.end_ms.min(to_ms);
    // An empty span (a one-line log) covers no time, but its instant still places its
    // observation inside coverage for episode detection.
    if s.end_ms >= s.start_ms {
        out.push(s);
    }
}

//! What the follower keeps in the store: its position per source (table `source_offsets`,
//! migration 0007) and the coverage of what it read (table `log_spans`, one row per source and
//! series, extended as rows land: the followed log covers from its first to its latest row, as an
//! imported file covers from its first to its last).

use std::collections::BTreeMap;
use std::str::FromStr;

use sqlx::Row;

use super::tail::Position;
use crate::domain::{EstablishmentCode, Interface};
use crate::store::{Store, StoreError, StoredObservation};

/// A source's saved position, with the last accepted instant (autumn-fold placement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub position: Position,
    pub last_ms: Option<i64>,
}

/// The coverage span of one series of a source: its `log_spans` row once written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub id: Option<i64>,
    pub first_ms: i64,
    pub last_ms: i64,
    pub dirty: bool,
}

/// Per series, the span the source's rows extend.
#[derive(Debug, Clone, Default)]
pub struct Spans(pub BTreeMap<(EstablishmentCode, Interface), Span>);

impl Spans {
    pub fn add(&mut self, e: EstablishmentCode, i: Interface, at_ms: i64) {
        let s = self.0.entry((e, i)).or_insert(Span {
            id: None,
            first_ms: at_ms,
            last_ms: at_ms,
            dirty: true,
        });
        if at_ms < s.first_ms || at_ms > s.last_ms {
            s.first_ms = s.first_ms.min(at_ms);
            s.last_ms = s.last_ms.max(at_ms);
            s.dirty = true;
        }
    }

    /// Lines may have been missed: later rows start new spans (a gap in coverage).
    pub fn cut(&mut self) {
        self.0.clear();
    }
}

impl Store {
    /// Where the follower of `source` stopped, if it ever ran.
    pub async fn source_offset(&self, source: &str) -> Result<Option<Saved>, StoreError> {
        let row = self.q(
            "SELECT dev, ino, byte_offset, line, fp_len, fp_hash, last_at FROM source_offsets WHERE source = ?",
        )
        .bind(source)
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else { return Ok(None) };
        let n = |i: usize| -> Result<u64, StoreError> { Ok(r.try_get::<i64, _>(i)? as u64) };
        Ok(Some(Saved {
            position: Position {
                dev: n(0)?,
                ino: n(1)?,
                offset: n(2)?,
                line: n(3)?,
                fp_len: n(4)?,
                fp_hash: n(5)?,
            },
            last_ms: r.try_get(6)?,
        }))
    }

    /// The latest coverage span of each series of `source`, to extend.
    pub async fn source_spans(&self, source: &str) -> Result<Spans, StoreError> {
        let rows = self
            .q(
                "SELECT id, establishment, interface, first_at, last_at FROM log_spans \
             WHERE id IN (SELECT max(id) FROM log_spans WHERE source = ? AND vantage IS NULL \
             GROUP BY establishment, interface)",
            )
            .bind(source)
            .fetch_all(self.pool())
            .await?;
        let mut out = Spans::default();
        for r in rows {
            let (e, i): (String, String) = (r.try_get(1)?, r.try_get(2)?);
            let (Ok(e), Ok(i)) = (EstablishmentCode::from_str(&e), Interface::from_str(&i)) else {
                continue;
            };
            out.0.insert(
                (e, i),
                Span {
                    id: Some(r.try_get(0)?),
                    first_ms: r.try_get(3)?,
                    last_ms: r.try_get(4)?,
                    dirty: false,
                },
            );
        }
        Ok(out)
    }

    /// Which of `rows` the store already has (same time, establishment and request id).
    pub async fn present(&self, rows: &[StoredObservation]) -> Result<Vec<bool>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        let mut out = Vec::with_capacity(rows.len());
        for o in rows {
            let hit = self.q(
                "SELECT 1 FROM observations WHERE received_at = ? AND establishment = ? AND request_id = ?",
            )
            .bind(o.obs.received_at_ms)
            .bind(o.obs.establishment.as_str())
            .bind(o.obs.request_id.as_str())
            .fetch_optional(&mut *conn)
            .await?
            .is_some();
            out.push(hit);
        }
        Ok(out)
    }

    /// Records, in one transaction, the spans the landed rows extended and the position after
    /// them.
    pub async fn save_source(
        &self,
        source: &str,
        path: &str,
        saved: &Saved,
        spans: &mut Spans,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        let mut ids = Vec::new();
        for (&(e, i), s) in spans.0.iter().filter(|(_, s)| s.dirty) {
            let id = match s.id {
                Some(id) => {
                    self.q(self.pick(
                        "UPDATE log_spans SET first_at = min(first_at, ?), last_at = max(last_at, ?), \
                         imported_at = ? WHERE id = ?",
                        "UPDATE log_spans SET first_at = LEAST(first_at, ?), last_at = GREATEST(last_at, ?), \
                         imported_at = ? WHERE id = ?",
                    ))
                    .bind(s.first_ms)
                    .bind(s.last_ms)
                    .bind(now_ms)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    id
                }
                None => self.q(
                    "INSERT INTO log_spans (source, establishment, interface, first_at, last_at, imported_at) \
                     VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                )
                .bind(source)
                .bind(e.as_str())
                .bind(i.as_str())
                .bind(s.first_ms)
                .bind(s.last_ms)
                .bind(now_ms)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?,
            };
            ids.push(((e, i), id));
        }
        let p = &saved.position;
        self.q(
            "INSERT INTO source_offsets (source, path, dev, ino, byte_offset, line, fp_len, fp_hash, last_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source) DO UPDATE SET \
             path = excluded.path, dev = excluded.dev, ino = excluded.ino, byte_offset = excluded.byte_offset, \
             line = excluded.line, fp_len = excluded.fp_len, fp_hash = excluded.fp_hash, \
             last_at = excluded.last_at, updated_at = excluded.updated_at",
        )
        .bind(source)
        .bind(path)
        .bind(p.dev as i64)
        .bind(p.ino as i64)
        .bind(p.offset as i64)
        .bind(p.line as i64)
        .bind(p.fp_len as i64)
        .bind(p.fp_hash as i64)
        .bind(saved.last_ms)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        for (k, id) in ids {
            if let Some(s) = spans.0.get_mut(&k) {
                s.id = Some(id);
                s.dirty = false;
            }
        }
        Ok(())
    }
}

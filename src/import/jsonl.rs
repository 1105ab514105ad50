//! JSON-lines gateway exports: one JSON object per line, turned into observations through a
//! [`Mapping`].
//!
//! In: a buffered byte stream (already gunzipped). Out: rows for the import driver; a line that
//! is not JSON, not an object, not mappable or outside the [`Bounds`] is a reject with its line
//! number and reason. Blank lines are skipped.
//!
//! One reader per file: it remembers the instant of the last accepted line, which places a local
//! time of the autumn fold ([`super::mapping::resolve_fold`]).

use std::io::BufRead;

use super::bounds::Bounds;
use super::linecap::CapLines;
use super::mapping::Mapping;
use super::{ImportError, Row, RowReject, RowSource};

/// Reads JSON lines through a mapping.
pub struct JsonLines<R> {
    /// Lines longer than `bounds.max_line_bytes` are cut as they stream by.
    input: CapLines<R>,
    mapping: Mapping,
    bounds: Bounds,
    line: u64,
    buf: Vec<u8>,
    /// `received_at` of the last accepted line of this file.
    last_ms: Option<i64>,
}

impl<R: BufRead> JsonLines<R> {
    /// With the default bounds (latency up to 3 600 s, times up to 24 h after the clock).
    pub fn new(input: R, mapping: Mapping) -> Self {
        Self::with_bounds(input, mapping, Bounds::default())
    }

    /// Lines outside `bounds` are refused.
    pub fn with_bounds(input: R, mapping: Mapping, bounds: Bounds) -> Self {
        Self {
            input: CapLines::new(input, bounds.max_line_bytes),
            mapping,
            bounds,
            line: 0,
            buf: Vec::with_capacity(4096),
            last_ms: None,
        }
    }
}

impl<R> JsonLines<R> {
    /// One line (its 1-based number and bytes, with or without the line end): an observation, a
    /// reject, or `None` for a blank line. Used by the reader and by `dispo run`'s log follower,
    /// which hands over lines as they are written.
    pub fn parse_line(&mut self, line: u64, buf: &[u8]) -> Option<Row> {
        let raw = match std::str::from_utf8(buf) {
            Ok(s) => s.trim_end_matches(['\n', '\r']),
            Err(_) => {
                return Some(Row::Reject(RowReject {
                    line,
                    reason: "not UTF-8 text".into(),
                    raw: String::from_utf8_lossy(buf).trim_end().to_owned(),
                }));
            }
        };
        if raw.trim().is_empty() {
            return None;
        }
        let reject = |reason: String| {
            Some(Row::Reject(RowReject {
                line,
                reason,
                raw: raw.to_owned(),
            }))
        };
        // A followed log hands whole lines: the same limit as a read file.
        if raw.len() > self.bounds.max_line_bytes {
            return Some(Row::Reject(RowReject {
                line,
                reason: format!(
                    "line {line} is longer than {} bytes (--max-line-bytes)",
                    self.bounds.max_line_bytes
                ),
                raw: raw.chars().take(200).collect(),
            }));
        }
        let value: serde_json::Value = match serde_json::from_str(raw) {
            Ok(v) => v,
            Err(e) => return reject(format!("not JSON: {e}")),
        };
        if !value.is_object() {
            return reject("not a JSON object".into());
        }
        let mapped = self
            .mapping
            .apply_after(&value, self.last_ms)
            .and_then(|o| self.bounds.check_stored(&o).map(|()| o));
        match mapped {
            Ok(o) => {
                self.last_ms = Some(o.obs.received_at_ms);
                Some(Row::Obs(o))
            }
            Err(reason) => reject(reason),
        }
    }

    /// Replaces the bounds (a follower running for days moves "24 h after the clock" along).
    pub fn set_bounds(&mut self, bounds: Bounds) {
        self.bounds = bounds;
    }

    /// `received_at` of the last accepted line, which places the next local time of an autumn
    /// fold; a follower keeps it across restarts.
    pub fn last_ms(&self) -> Option<i64> {
        self.last_ms
    }

    pub fn set_last_ms(&mut self, last_ms: Option<i64>) {
        self.last_ms = last_ms;
    }
}

impl<R: BufRead + Send> RowSource for JsonLines<R> {
    fn next_row(&mut self) -> Result<Option<Row>, ImportError> {
        loop {
            self.buf.clear();
            let n = self
                .input
                .read_until(b'\n', &mut self.buf)
                .map_err(ImportError::Read)?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            if self.input.cut_in(self.line, self.line + 1).is_some() {
                // Only its start was read: refused, with that much of it.
                return Ok(Some(Row::Reject(RowReject {
                    line: self.line,
                    reason: self.input.reason(self.line),
                    raw: String::from_utf8_lossy(&self.buf[..self.buf.len().min(200)]).into_owned(),
                })));
            }
            let buf = std::mem::take(&mut self.buf);
            let row = self.parse_line(self.line, &buf);
            self.buf = buf;
            if let Some(r) = row {
                return Ok(Some(r));
            }
        }
    }
}

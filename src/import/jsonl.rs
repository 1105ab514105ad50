//! JSON-lines gateway exports: one JSON object per line, turned into observations through a
//! [`Mapping`].
//!
//! In: a buffered byte stream (already gunzipped). Out: rows for the import driver; a line that
//! is not JSON, not an object or not mappable is a reject with its line number and reason.
//! Blank lines are skipped.

use std::io::BufRead;

use super::mapping::Mapping;
use super::{ImportError, Row, RowReject, RowSource};

/// Reads JSON lines through a mapping.
pub struct JsonLines<R> {
    input: R,
    mapping: Mapping,
    line: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> JsonLines<R> {
    pub fn new(input: R, mapping: Mapping) -> Self {
        Self {
            input,
            mapping,
            line: 0,
            buf: Vec::with_capacity(4096),
        }
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
            let raw = match std::str::from_utf8(&self.buf) {
                Ok(s) => s.trim_end_matches(['\n', '\r']),
                Err(_) => {
                    return Ok(Some(Row::Reject(RowReject {
                        line: self.line,
                        reason: "not UTF-8 text".into(),
                        raw: String::from_utf8_lossy(&self.buf).trim_end().to_owned(),
                    })));
                }
            };
            if raw.trim().is_empty() {
                continue;
            }
            let reject = |reason: String| {
                Ok(Some(Row::Reject(RowReject {
                    line: self.line,
                    reason,
                    raw: raw.to_owned(),
                })))
            };
            let value: serde_json::Value = match serde_json::from_str(raw) {
                Ok(v) => v,
                Err(e) => return reject(format!("not JSON: {e}")),
            };
            if !value.is_object() {
                return reject("not a JSON object".into());
            }
            return match self.mapping.apply(&value) {
                Ok(o) => Ok(Some(Row::Obs(o))),
                Err(reason) => reject(reason),
            };
        }
    }
}

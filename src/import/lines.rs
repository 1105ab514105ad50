//! Lines as a log is written: `dispo run` follows gateway logs ([`crate::follow`]) and hands over
//! complete lines as they appear; this parses them with the import's own readers (the same
//! mapping, bounds and outcome rule as `dispo import`), keeping what a reader keeps between lines
//! (the CSV header, the last accepted instant for the autumn fold, line numbers).
//!
//! In: chunks of complete lines and the number of their first line. Out: rows and rejects, as
//! the import's [`RowSource`]s give them.

use std::io::Cursor;

use super::bounds::Bounds;
use super::csv_rows::CsvRows;
use super::jsonl::JsonLines;
use super::mapping::Mapping;
use super::{Format, Row, RowReject, RowSource};

/// Parses a followed file's lines.
pub enum LineParser {
    Jsonl(Box<JsonLines<std::io::Empty>>),
    Csv {
        /// The file's first line; `None` until read (the next line is the header).
        header: Option<Vec<u8>>,
        bounds: Bounds,
    },
}

impl LineParser {
    /// `mapping` is required for JSON lines.
    pub fn new(format: Format, mapping: Option<Mapping>, bounds: Bounds) -> Result<Self, String> {
        Ok(match format {
            Format::Jsonl => {
                let m = mapping.ok_or("format jsonl needs a mapping")?;
                LineParser::Jsonl(Box::new(JsonLines::with_bounds(
                    std::io::empty(),
                    m,
                    bounds,
                )))
            }
            Format::Csv => LineParser::Csv {
                header: None,
                bounds,
            },
        })
    }

    /// Moves the bounds along (times up to 24 h after the clock, as the clock runs).
    pub fn set_bounds(&mut self, b: Bounds) {
        match self {
            LineParser::Jsonl(j) => j.set_bounds(b),
            LineParser::Csv { bounds, .. } => *bounds = b,
        }
    }

    /// A new file begins at its first line: a CSV reads its header again.
    pub fn new_file(&mut self) {
        if let LineParser::Csv { header, .. } = self {
            *header = None;
        }
    }

    /// Reading resumes inside a file: its first line is the CSV header.
    pub fn resume(&mut self, first_line: Option<Vec<u8>>) {
        if let LineParser::Csv { header, .. } = self {
            *header = first_line;
        }
    }

    pub fn last_ms(&self) -> Option<i64> {
        match self {
            LineParser::Jsonl(j) => j.last_ms(),
            LineParser::Csv { .. } => None,
        }
    }

    pub fn set_last_ms(&mut self, ms: Option<i64>) {
        if let LineParser::Jsonl(j) = self {
            j.set_last_ms(ms)
        }
    }

    /// Complete lines (the last may lack its line end), the first numbered `first_line`.
    pub fn parse(&mut self, chunk: &[u8], first_line: u64) -> Vec<Row> {
        match self {
            LineParser::Jsonl(j) => chunk
                .split_inclusive(|b| *b == b'\n')
                .zip(first_line..)
                .filter_map(|(l, n)| j.parse_line(n, l))
                .collect(),
            LineParser::Csv { header, bounds } => {
                let (data, data_first) = match header {
                    Some(_) => (chunk, first_line),
                    None => {
                        let end = chunk
                            .iter()
                            .position(|b| *b == b'\n')
                            .map_or(chunk.len(), |i| i + 1);
                        *header = Some(chunk[..end].to_vec());
                        (&chunk[end..], first_line + 1)
                    }
                };
                let mut head = header.clone().unwrap_or_default();
                if !head.ends_with(b"\n") {
                    head.push(b'\n');
                }
                csv_chunk(&head, data, data_first, *bounds)
            }
        }
    }
}

/// CSV records of `data` read under `header`; line numbers counted from `data_first`.
fn csv_chunk(header: &[u8], data: &[u8], data_first: u64, bounds: Bounds) -> Vec<Row> {
    if data.iter().all(u8::is_ascii_whitespace) {
        return Vec::new();
    }
    let input = Cursor::new([header, data].concat());
    // The reader numbers the header 1 and the chunk's first record 2.
    let renumber = |l: u64| if l >= 2 { data_first + l - 2 } else { l };
    let mut rows = match CsvRows::with_bounds(input, bounds) {
        Ok(r) => r,
        Err(e) => {
            // A header without the observation columns: every line of the file is refused.
            return data
                .split_inclusive(|b| *b == b'\n')
                .zip(data_first..)
                .map(|(l, n)| {
                    Row::Reject(RowReject {
                        line: n,
                        reason: e.to_string(),
                        raw: String::from_utf8_lossy(l).trim_end().to_owned(),
                    })
                })
                .collect();
        }
    };
    let mut out = Vec::new();
    loop {
        match rows.next_row() {
            Ok(Some(Row::Reject(mut r))) => {
                r.line = renumber(r.line);
                out.push(Row::Reject(r));
            }
            Ok(Some(o)) => out.push(o),
            Ok(None) | Err(_) => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids_and_rejects(rows: Vec<Row>) -> (Vec<String>, Vec<u64>) {
        let (mut ok, mut bad) = (vec![], vec![]);
        for r in rows {
            match r {
                Row::Obs(o) => ok.push(o.obs.request_id.to_string()),
                Row::Reject(r) => bad.push(r.line),
            }
        }
        (ok, bad)
    }

    #[test]
    fn csv_lines_keep_their_header_and_numbers_across_chunks() {
        let b = Bounds::new(3600.0, 1_796_212_800_000);
        let mut p = LineParser::new(Format::Csv, None, b).unwrap();
        let head = "received_at,establishment,interface,service,source,tpp,status,latency_ms,error_code,request_id\n";
        let r1 = "2026-12-02T10:00:00Z,13807,api,cbpii,log,T,200,12,,a\n";
        let bad = "2026-12-02T10:00:01Z,1380,api,cbpii,log,T,200,12,,b\n";
        let r3 = "2026-12-02T10:00:02Z,13807,api,cbpii,log,T,,,,c\n";
        let (ok, rej) = ids_and_rejects(p.parse(format!("{head}{r1}").as_bytes(), 1));
        assert_eq!((ok, rej), (vec!["a".to_string()], vec![]));
        let (ok, rej) = ids_and_rejects(p.parse(format!("{bad}{r3}").as_bytes(), 3));
        assert_eq!((ok, rej), (vec!["c".to_string()], vec![3]));
        // Resumed inside the file: the header is given; a new file reads its own.
        let mut q = LineParser::new(Format::Csv, None, b).unwrap();
        q.resume(Some(head.as_bytes().to_vec()));
        assert_eq!(ids_and_rejects(q.parse(r3.as_bytes(), 7)).0, ["c"]);
        q.new_file();
        let (ok, rej) = ids_and_rejects(q.parse(format!("{head}{r1}").as_bytes(), 1));
        assert_eq!((ok, rej), (vec!["a".to_string()], vec![]));
    }

    #[test]
    fn json_lines_are_numbered_from_the_chunk_start() {
        let m = Mapping::parse(
            "[fields]\nreceived_at = \"t\"\nrequest_id = \"id\"\n\
             [defaults]\nestablishment = \"13807\"\nservice = \"cbpii\"\n",
        )
        .unwrap();
        let b = Bounds::new(3600.0, 1_796_212_800_000);
        let mut p = LineParser::new(Format::Jsonl, Some(m), b).unwrap();
        let chunk = "{\"t\":\"2026-12-02T10:00:00Z\",\"id\":\"a\"}\n\nnot json\n{\"t\":\"2026-12-02T10:00:01Z\",\"id\":\"b\"}";
        let (ok, rej) = ids_and_rejects(p.parse(chunk.as_bytes(), 10));
        assert_eq!(ok, ["a", "b"]);
        assert_eq!(rej, [12]);
        assert_eq!(p.last_ms(), Some(1_796_205_601_000));
    }
}

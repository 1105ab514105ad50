//! The observation CSV as a streaming [`RowSource`]: header
//! `received_at,establishment,interface,service,source,tpp,status,latency_ms,error_code,request_id`
//! (columns found by name, in any order; extra columns `error_text` and `outcome` are read when
//! present, others ignored). `received_at` is RFC 3339 with an offset or `Z`; empty `status` and
//! `latency_ms` mean no reply; an empty `source` means `log`. A given `outcome` must agree with
//! the status ([`super::outcome`]); every row must lie within the [`Bounds`].
//!
//! In: a byte stream. Out: one row per record, or a reject naming the line and the field.

use std::io::BufRead;

use chrono::DateTime;

use super::bounds::Bounds;
use super::linecap::CapLines;
use super::outcome::imported_outcome;
use super::{ImportError, Row, RowReject, RowSource};
use crate::domain::{
    CompactString, EstablishmentCode, Interface, Observation, Outcome, Service, Source, Vantage,
};
use crate::store::StoredObservation;

/// The columns every observation CSV has.
pub const HEADER: [&str; 10] = [
    "received_at",
    "establishment",
    "interface",
    "service",
    "source",
    "tpp",
    "status",
    "latency_ms",
    "error_code",
    "request_id",
];

pub struct CsvRows<R: BufRead> {
    /// Lines longer than `bounds.max_line_bytes` are cut as they stream by.
    reader: csv::Reader<CapLines<R>>,
    /// Index of each `HEADER` column in the file.
    cols: [usize; 10],
    error_text: Option<usize>,
    outcome: Option<usize>,
    /// An optional `vantage` column (probe exports from several nodes).
    vantage: Option<usize>,
    record: csv::ByteRecord,
    /// An empty input (not even a header): zero rows, not an error (a quiet night's log).
    empty: bool,
    bounds: Bounds,
}

impl<R: BufRead> CsvRows<R> {
    /// With the default bounds (latency up to 3 600 s, times up to 24 h after the clock).
    pub fn new(input: R) -> Result<Self, ImportError> {
        Self::with_bounds(input, Bounds::default())
    }

    /// Rows outside `bounds` are refused.
    pub fn with_bounds(input: R, bounds: Bounds) -> Result<Self, ImportError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(
                // A record may span lines (a quoted line end); its whole is bounded too, with
                // room for what the reader buffers ahead.
                CapLines::new(input, bounds.max_line_bytes)
                    .with_record_budget(bounds.max_line_bytes.saturating_mul(4) + 64 * 1024),
            );
        let header = reader.byte_headers().map_err(csv_fatal)?.clone();
        let next = reader.position().line();
        reader.get_mut().mark();
        if let Some(l) = reader.get_mut().cut_in(1, next.max(2)) {
            let why = reader.get_ref().reason(l);
            return Err(ImportError::Header(format!("the CSV header: {why}")));
        }
        let empty = header.is_empty() && reader.is_done();
        let find = |name: &str| {
            header
                .iter()
                .position(|h| h.trim_ascii() == name.as_bytes())
        };
        let mut cols = [0; 10];
        let mut missing = Vec::new();
        for (i, name) in HEADER.iter().enumerate() {
            match find(name) {
                Some(c) => cols[i] = c,
                None => missing.push(*name),
            }
        }
        if !missing.is_empty() && !empty {
            return Err(ImportError::Header(format!(
                "line 1: the CSV header lacks {} (expected {}; for gateway exports use --format jsonl --mapping FILE)",
                missing.join(", "),
                HEADER.join(",")
            )));
        }
        Ok(Self {
            error_text: find("error_text"),
            outcome: find("outcome"),
            vantage: find("vantage"),
            reader,
            cols,
            record: csv::ByteRecord::new(),
            empty,
            bounds,
        })
    }

    fn parse(&self) -> Result<StoredObservation, String> {
        let r = &self.record;
        let field = |i: usize| -> Result<&str, String> {
            let b = r.get(i).unwrap_or(b"");
            std::str::from_utf8(b)
                .map(str::trim)
                .map_err(|_| format!("column {} is not UTF-8", i + 1))
        };
        let get = |k: usize| field(self.cols[k]);
        let opt = |k: usize| -> Result<Option<&str>, String> {
            let s = get(k)?;
            Ok((!s.is_empty()).then_some(s))
        };
        if r.len() < HEADER.len() {
            return Err(format!(
                "{} fields, expected at least {}",
                r.len(),
                HEADER.len()
            ));
        }
        let t = get(0)?;
        let received_at_ms = DateTime::parse_from_rfc3339(t)
            .map_err(|e| format!("received_at {t:?} is not RFC 3339 with an offset ({e})"))?
            .timestamp_millis();
        let establishment = get(1)?
            .parse::<EstablishmentCode>()
            .map_err(|e| e.to_string())?;
        let interface = get(2)?.parse::<Interface>().map_err(|e| e.to_string())?;
        let service = get(3)?.parse::<Service>().map_err(|e| e.to_string())?;
        let source = match opt(4)? {
            Some(s) => s.parse::<Source>().map_err(|e| e.to_string())?,
            None => Source::Log,
        };
        let tpp = opt(5)?.map(CompactString::new);
        let status = match opt(6)? {
            None => None,
            Some(s) => match s.parse::<u16>() {
                // Gateways write 0 when no reply came (the JSON-lines import reads it so too).
                Ok(0) => None,
                Ok(n) if (100..=599).contains(&n) => Some(n),
                _ => return Err(format!("status {s:?} is not an HTTP status (100 to 599)")),
            },
        };
        let latency_ms = match opt(7)? {
            None => None,
            // Range (and NaN, inf) checked by the bounds below.
            Some(s) => match s.parse::<f64>() {
                Ok(n) => Some(n),
                Err(_) => return Err(format!("latency_ms {s:?} is not a number")),
            },
        };
        // A time-out logged with how long the gateway waited: still no reply, which has no
        // response time (refusing the line would erase an outage from the figures).
        let latency_ms = latency_ms.filter(|_| status.is_some());
        let error_code = opt(8)?.map(CompactString::new);
        let request_id = CompactString::new(opt(9)?.ok_or("request_id is empty")?);
        let given = match self.outcome.map(field).transpose()? {
            Some(s) if !s.is_empty() => Some(s.parse::<Outcome>().map_err(|e| e.to_string())?),
            _ => None,
        };
        let outcome = imported_outcome(given, source, status, error_code.as_deref())?;
        let error_text = match self.error_text.map(field).transpose()? {
            Some(s) if !s.is_empty() => Some(s.to_owned()),
            _ => None,
        };
        self.bounds.check_error_text(error_text.as_deref())?;
        // Logs are the gateway's whatever a column says: only probes have a node.
        let vantage = match (source, self.vantage.map(field).transpose()?) {
            (Source::Probe, Some(v)) if v.eq_ignore_ascii_case(Vantage::GATEWAY) => {
                return Err(
                    "vantage \"gateway\" on a probe row: gateway is the vantage of logs (name the node that probed)"
                        .into(),
                );
            }
            (Source::Probe, Some(v)) if !v.is_empty() => {
                v.parse::<Vantage>().map_err(|e| e.to_string())?
            }
            (Source::Log, Some(v)) if !v.is_empty() && v != Vantage::GATEWAY => {
                return Err(format!(
                    "vantage {v:?} on a log row: logs are the gateway's (leave it empty or write gateway)"
                ));
            }
            _ => Vantage::imported(source),
        };
        let mut so = StoredObservation::from(Observation {
            received_at_ms,
            establishment,
            interface,
            service,
            source,
            tpp,
            status,
            latency_ms,
            error_code,
            request_id,
            outcome,
            vantage,
        });
        self.bounds.check(&so.obs)?;
        so.error_text = error_text;
        Ok(so)
    }
}

fn csv_fatal(e: csv::Error) -> ImportError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => ImportError::Read(io),
        other => ImportError::Header(format!("line 1: unreadable CSV header: {other:?}")),
    }
}

impl<R: BufRead + Send> RowSource for CsvRows<R> {
    fn next_row(&mut self) -> Result<Option<Row>, ImportError> {
        if self.empty {
            return Ok(None);
        }
        let more = match self.reader.read_byte_record(&mut self.record) {
            Ok(m) => m,
            Err(e) => {
                self.reader.get_mut().mark();
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                return match e.into_kind() {
                    csv::ErrorKind::Io(io) => Err(ImportError::Read(io)),
                    other => Ok(Some(Row::Reject(RowReject {
                        line,
                        reason: format!("malformed CSV: {other:?}"),
                        raw: String::new(),
                    }))),
                };
            }
        };
        if !more {
            return Ok(None);
        }
        let line = self.record.position().map(|p| p.line()).unwrap_or(0);
        let next = self.reader.position().line();
        self.reader.get_mut().mark();
        if let Some(l) = self.reader.get_mut().cut_in(line, next.max(line + 1)) {
            // Only the start of that line was read: refused, with that much of it.
            let raw: String = self
                .record
                .iter()
                .map(String::from_utf8_lossy)
                .collect::<Vec<_>>()
                .join(",")
                .chars()
                .take(200)
                .collect();
            return Ok(Some(Row::Reject(RowReject {
                line,
                reason: self.reader.get_ref().reason(l),
                raw,
            })));
        }
        Ok(Some(match self.parse() {
            Ok(o) => Row::Obs(o),
            Err(reason) => Row::Reject(RowReject {
                line,
                reason,
                raw: self
                    .record
                    .iter()
                    .map(String::from_utf8_lossy)
                    .collect::<Vec<_>>()
                    .join(","),
            }),
        }))
    }
}

/// Writes observations as the observation CSV (the format this module reads), streaming.
/// Returns how many rows were written.
pub fn write_csv(
    path: &std::path::Path,
    rows: impl IntoIterator<Item = StoredObservation>,
) -> std::io::Result<u64> {
    let file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut w = csv::Writer::from_writer(file);
    // The vantage after the required columns: a probe row read back keeps its node.
    w.write_record(HEADER.iter().chain(&["vantage"]))
        .map_err(std::io::Error::other)?;
    let mut n = 0;
    for r in rows {
        let o = &r.obs;
        w.write_record([
            crate::engine::time::rfc3339(o.received_at_ms).as_str(),
            o.establishment.as_str(),
            o.interface.as_str(),
            o.service.as_str(),
            o.source.as_str(),
            o.tpp.as_deref().unwrap_or(""),
            &o.status.map(|s| s.to_string()).unwrap_or_default(),
            &o.latency_ms.map(|l| l.to_string()).unwrap_or_default(),
            o.error_code.as_deref().unwrap_or(""),
            &o.request_id,
            o.vantage.as_str(),
        ])
        .map_err(std::io::Error::other)?;
        n += 1;
    }
    w.flush()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "received_at,establishment,interface,service,source,tpp,status,latency_ms,error_code,request_id,outcome\n";

    /// Reads `body` (after the header) with bounds max 3 600 s and the clock at
    /// 2026-12-02T12:00:00Z: accepted request ids, and refused lines with their reasons.
    fn read(body: &str) -> (Vec<String>, Vec<(u64, String)>) {
        let bounds = Bounds::new(3600.0, 1_796_212_800_000);
        let text = format!("{HEAD}{body}");
        let mut rows = CsvRows::with_bounds(text.as_bytes(), bounds).unwrap();
        let (mut ok, mut refused) = (Vec::new(), Vec::new());
        while let Some(r) = rows.next_row().unwrap() {
            match r {
                Row::Obs(o) => ok.push(o.obs.request_id.to_string()),
                Row::Reject(r) => refused.push((r.line, r.reason)),
            }
        }
        (ok, refused)
    }

    #[test]
    fn latencies_and_times_outside_the_bounds_are_refused() {
        // Line 1 is the header. Clock 2026-12-02T12:00:00Z: now + 1 h (line 7) passes, 2300 and
        // 1999 do not; 3 600 000 ms (line 8) is the largest latency accepted, 1e11 is not.
        let (ok, refused) = read(
            "2024-07-04T10:00:00Z,13807,api,cbpii,log,T,200,1e11,,big,\n\
             2024-07-04T10:00:01Z,13807,api,cbpii,log,T,200,inf,,inf,\n\
             2024-07-04T10:00:02Z,13807,api,cbpii,log,T,200,NaN,,nan,\n\
             2300-01-01T00:00:00Z,13807,api,cbpii,log,T,200,100,,y2300,\n\
             1999-12-31T23:59:59Z,13807,api,cbpii,log,T,200,100,,y1999,\n\
             2026-12-02T13:00:00Z,13807,api,cbpii,log,T,200,100,,soon,\n\
             2024-07-04T10:00:03Z,13807,api,cbpii,log,T,200,3600000,,hour,\n\
             2024-07-04T10:00:04Z,13807,api,cbpii,log,T,200,-3,,neg,\n",
        );
        assert_eq!(ok, ["soon", "hour"]);
        let lines: Vec<u64> = refused.iter().map(|r| r.0).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6, 9]);
        let why = |l: u64| &refused.iter().find(|r| r.0 == l).unwrap().1;
        assert!(why(2).starts_with("latency_ms 100000000000 is beyond [counting] max_latency_s"));
        assert!(why(3).starts_with("latency_ms inf is not finite"));
        assert!(why(4).starts_with("latency_ms NaN is not a number"));
        for l in [2, 3, 4, 9] {
            assert!(
                why(l).contains("0 to 3600000 ms, max_latency_s = 3600 s"),
                "{}",
                why(l)
            );
        }
        assert!(why(5).contains("2300-01-01T00:00:00.000Z is more than 24 h after the clock"));
        assert!(why(6).contains("1999-12-31T23:59:59.000Z is before 2000-01-01T00:00:00Z"));
    }

    #[test]
    fn a_vantage_column_names_the_node_of_probe_rows_only() {
        let text = format!(
            "{}vantage\n\
             2024-07-04T10:00:00Z,13807,api,cbpii,probe,,200,10,,a,,paris-dc1\n\
             2024-07-04T10:00:01Z,13807,api,cbpii,probe,,200,10,,b,,\n\
             2024-07-04T10:00:02Z,13807,api,cbpii,log,T,200,10,,c,,gateway\n\
             2024-07-04T10:00:03Z,13807,api,cbpii,log,T,200,10,,d,,\n\
             2024-07-04T10:00:04Z,13807,api,cbpii,log,T,200,10,,e,,paris-dc1\n\
             2024-07-04T10:00:05Z,13807,api,cbpii,probe,,200,10,,f,,gate way\n\
             2024-07-04T10:00:06Z,13807,api,cbpii,probe,,200,10,,g,,Gateway\n",
            HEAD.trim_end_matches('\n').to_owned() + ","
        );
        let bounds = Bounds::new(3600.0, 1_796_212_800_000);
        let mut rows = CsvRows::with_bounds(text.as_bytes(), bounds).unwrap();
        let (mut ok, mut refused) = (Vec::new(), Vec::new());
        while let Some(r) = rows.next_row().unwrap() {
            match r {
                Row::Obs(o) => ok.push(format!("{}={}", o.obs.request_id, o.obs.vantage)),
                Row::Reject(r) => refused.push((r.line, r.reason)),
            }
        }
        // b: a probe row naming no node is "import"; d: a log row is the gateway's.
        assert_eq!(ok, ["a=paris-dc1", "b=import", "c=gateway", "d=gateway"]);
        assert_eq!(refused.len(), 3, "{refused:?}");
        assert!(refused[2].1.contains("on a probe row"), "{}", refused[2].1);
        assert_eq!(refused[0].0, 6);
        assert!(
            refused[0].1.contains("logs are the gateway's"),
            "{}",
            refused[0].1
        );
        assert_eq!(refused[1].0, 7);
        assert!(
            refused[1].1.starts_with("vantage \"gate way\" must be"),
            "{}",
            refused[1].1
        );
    }

    #[test]
    fn a_given_outcome_must_agree_with_the_status() {
        let (ok, refused) = read(
            "2024-07-04T10:00:00Z,13807,api,cbpii,log,T,503,10,INTS,a,ok\n\
             2024-07-04T10:00:01Z,13807,api,cbpii,log,T,,,,b,ok\n\
             2024-07-04T10:00:02Z,13807,api,cbpii,log,T,503,10,INTS,c,aspsp_error\n\
             2024-07-04T10:00:03Z,13807,api,cbpii,probe,,200,10,,d,unexpected\n\
             2024-07-04T10:00:04Z,13807,api,cbpii,probe,,,,,e,probe_error\n\
             2024-07-04T10:00:05Z,13807,api,cbpii,log,T,200,10,,f,unexpected\n\
             2024-07-04T10:00:06Z,13807,api,cbpii,log,T,,,,g,\n",
        );
        assert_eq!(ok, ["c", "d", "e", "g"]);
        assert_eq!(refused.len(), 3);
        assert_eq!(refused[0].0, 2);
        assert!(
            refused[0]
                .1
                .starts_with("outcome \"ok\" contradicts status 503 with error code INTS, which is \"aspsp_error\""),
            "{}",
            refused[0].1
        );
        assert_eq!(refused[1].0, 3);
        assert!(
            refused[1]
                .1
                .contains("contradicts no status (no reply), which is \"no_reply\"")
        );
        assert_eq!(refused[2].0, 7);
        assert!(
            refused[2]
                .1
                .contains("only probe rows may say \"unexpected\"")
        );
    }
}

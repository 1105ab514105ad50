//! The daily table as CSV, for those who compute their own: stable column names (documented in
//! the README), each interface also named in words, and a `status` column (final, provisional,
//! synthetic). Deterministic: rows sorted, numbers
//! in their shortest exact form, so the same database and settings give the same bytes.

use std::path::{Path, PathBuf};

use super::{Publication, ReportError};
use crate::escape::csv_text;

pub fn write(p: &Publication, dir: &Path) -> Result<PathBuf, ReportError> {
    let path = dir.join(p.file("-daily.csv"));
    let io = |source| ReportError::Io {
        path: path.clone(),
        source,
    };
    let mut w = ::csv::Writer::from_path(&path).map_err(|e| io(std::io::Error::other(e)))?;
    let mut head: Vec<String> = [
        "date",
        "establishment",
        "interface",
        "interface_name",
        "seconds_in_day",
        "covered_s",
        "coverage_pct",
        "downtime_s",
        "planned_downtime_s",
        "unplanned_downtime_s",
        "uptime_pct",
        "unmonitored_s",
        "requests",
        "no_reply",
        "bank_errors",
        "error_rate_pct",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for s in &p.services {
        head.push(format!("avg_ms_{s}"));
        head.push(format!("p95_ms_{s}"));
    }
    // Provisional while the period is not over; synthetic data says so (methodology section 9).
    head.push("status".into());
    let status = p.req.lang.status(p.provisional, p.synthetic);
    w.write_record(&head)
        .map_err(|e| io(std::io::Error::other(e)))?;
    for d in &p.kpis.days {
        let mut r = vec![
            d.date.to_string(),
            csv_text(&d.establishment.to_string()).into_owned(),
            csv_text(&d.interface.to_string()).into_owned(),
            p.req.lang.interface(d.interface).to_owned(),
            d.seconds_in_day.to_string(),
            d.covered_s.to_string(),
            d.coverage_pct.to_string(),
            d.downtime_s.to_string(),
            d.planned_downtime_s.to_string(),
            (d.downtime_s - d.planned_downtime_s).to_string(),
            nd(d.uptime_pct),
            d.unmonitored_s.to_string(),
            d.requests.to_string(),
            d.no_reply.to_string(),
            d.bank_errors.to_string(),
            nd(d.error_rate_pct),
        ];
        for s in &p.services {
            match d.latency.get(s) {
                Some(l) => {
                    r.push(l.avg_ms.to_string());
                    r.push(l.p95_ms.to_string());
                }
                None => {
                    r.push(String::new());
                    r.push(String::new());
                }
            }
        }
        r.push(status.clone());
        w.write_record(&r)
            .map_err(|e| io(std::io::Error::other(e)))?;
    }
    w.flush().map_err(io)?;
    Ok(path)
}

/// A figure nobody observed is "n.d.", never 0 or 100.
fn nd(v: Option<f64>) -> String {
    v.map_or_else(|| super::labels::ND.to_string(), |x| x.to_string())
}

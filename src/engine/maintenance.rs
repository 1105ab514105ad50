//! The planned-maintenance calendar: weekly local windows turned into UTC spans over a range of
//! local days. Downtime inside them is still downtime (the guidelines make no exception); reports
//! show it apart as planned.

use chrono::{Datelike, Duration, NaiveDate};
use chrono_tz::Tz;

use super::MaintenanceWindow;
use super::intervals::{self, Span};
use super::time::{Fold, local_to_utc_ms};
use crate::domain::EstablishmentCode;

/// The maintenance spans touching local days `from..to` for one establishment, merged.
pub fn spans(
    windows: &[MaintenanceWindow],
    tz: Tz,
    establishment: &EstablishmentCode,
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<Span> {
    let mut out = Vec::new();
    // One day of margin each side: a window may start the day before and run past midnight.
    let mut d = from - Duration::days(1);
    while d <= to {
        for w in windows {
            if d.weekday() != w.weekday
                || !(w.establishments.is_empty() || w.establishments.contains(establishment))
            {
                continue;
            }
            let end_day = if w.end <= w.start {
                d + Duration::days(1)
            } else {
                d
            };
            // A window starting in an autumn fold starts at the first of the two instants and
            // ends at the last, so it covers all it says.
            let s = local_to_utc_ms(tz, d.and_time(w.start), Fold::Earlier);
            let e = local_to_utc_ms(tz, end_day.and_time(w.end), Fold::Later);
            out.push((s, e));
        }
        d += Duration::days(1);
    }
    intervals::merge(out)
}

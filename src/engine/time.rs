//! Local time in the configured zone: day and week boundaries as UTC instants, with daylight
//! saving handled explicitly (23- and 25-hour days are real; a wall time in a spring-forward gap
//! maps to the first instant after the gap; in an autumn fold the caller picks which one).

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
};
use chrono_tz::Tz;

/// Which of two instants to take when a wall time occurs twice (autumn fold).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fold {
    Earlier,
    Later,
}

/// UTC epoch ms of a local wall time.
pub fn local_to_utc_ms(tz: Tz, wall: NaiveDateTime, fold: Fold) -> i64 {
    match tz.from_local_datetime(&wall) {
        LocalResult::Single(t) => t.timestamp_millis(),
        LocalResult::Ambiguous(a, b) => {
            let (a, b) = (a.timestamp_millis(), b.timestamp_millis());
            match fold {
                Fold::Earlier => a.min(b),
                Fold::Later => a.max(b),
            }
        }
        LocalResult::None => {
            // In a gap: the clocks jumped over this wall time. The first valid wall time after
            // it is the instant of the jump (gaps are whole minutes in every real zone).
            let mut probe = wall;
            for _ in 0..(26 * 60) {
                probe += Duration::minutes(1);
                if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                    return t.timestamp_millis();
                }
            }
            wall.and_utc().timestamp_millis()
        }
    }
}

/// UTC epoch ms of the local midnight that starts `date`.
pub fn day_start_ms(tz: Tz, date: NaiveDate) -> i64 {
    local_to_utc_ms(tz, date.and_time(NaiveTime::MIN), Fold::Earlier)
}

/// The local date of an instant.
pub fn local_date(tz: Tz, ms: i64) -> NaiveDate {
    utc(ms).with_timezone(&tz).date_naive()
}

/// An instant as a UTC date-time (out-of-range values clamp to the epoch rather than panic).
pub fn utc(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default()
}

/// RFC 3339 in UTC with milliseconds, as every output prints instants.
pub fn rfc3339(ms: i64) -> String {
    utc(ms).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The Monday that starts the ISO week of `date`.
pub fn monday_of(date: NaiveDate) -> NaiveDate {
    date - Duration::days(date.weekday().num_days_from_monday() as i64)
}

/// ISO week label, `2024-W27`.
pub fn iso_week_label(date: NaiveDate) -> String {
    let w = date.iso_week();
    format!("{}-W{:02}", w.year(), w.week())
}

/// Local days from `from` (inclusive) to `to` (exclusive).
pub fn days(from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    from.iter_days().take_while(move |d| *d < to)
}

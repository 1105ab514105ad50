//! Cron expressions as operators write them. The `cron` crate takes 6 or 7 fields (seconds first)
//! and counts days of the week from 1 = Sunday (Quartz); crontab has 5 fields and 0 (or 7) =
//! Sunday. A 5-field expression gets a `0` seconds field and its numeric days of the week become
//! names (`1-5` → `Mon-Fri`), so `*/5 * * * 1-5` means what crontab means. 6- and 7-field
//! expressions are taken as the `cron` crate reads them; names (`Mon-Fri`) are safest there.

use std::str::FromStr;

const DAYS: [&str; 8] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Parses a 5-, 6- or 7-field expression (or `@hourly`-style shorthand).
pub fn parse(expr: &str) -> Result<cron::Schedule, String> {
    let expr = expr.trim();
    let translated = if expr.starts_with('@') {
        expr.to_owned()
    } else {
        let fields: Vec<&str> = expr.split_whitespace().collect();
        match fields.len() {
            5 => format!(
                "0 {} {} {} {} {}",
                fields[0],
                fields[1],
                fields[2],
                fields[3],
                crontab_dow(fields[4])?
            ),
            6 | 7 => fields.join(" "),
            n => {
                return Err(format!(
                    "{n} fields: a schedule has 5 (crontab: min hour day month weekday) or 6/7 (with seconds first)"
                ));
            }
        }
    };
    // The crate's message draws a caret under the field; keep its one explanatory line.
    let schedule = cron::Schedule::from_str(&translated).map_err(|e| {
        let text = e.to_string();
        let why = text
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty() && *l != "^")
            .unwrap_or("")
            .to_owned();
        format!("invalid cron expression {expr:?}: {why}")
    })?;
    // A valid expression may match no date at all (30 February, a year gone by): it would pass
    // silently and never run. The crate looks up to its last year (2100) and then says none.
    if schedule.upcoming(chrono::Utc).next().is_none() {
        return Err(format!(
            "cron expression {expr:?} never fires: no date from now on matches it \
             (a day the month never has, such as 30 February, or a past year)"
        ));
    }
    Ok(schedule)
}

/// Crontab day-of-week field (0/7 = Sunday) with numbers turned into names.
fn crontab_dow(field: &str) -> Result<String, String> {
    let name = |tok: &str| -> Result<String, String> {
        match tok.parse::<usize>() {
            Ok(n) if n <= 7 => Ok(DAYS[n].to_owned()),
            Ok(n) => Err(format!(
                "day of week {n} is out of range (0-7, 0 and 7 = Sunday)"
            )),
            Err(_) => Ok(tok.to_owned()),
        }
    };
    field
        .split(',')
        .map(|item| {
            let (range, step) = match item.split_once('/') {
                Some((r, s)) => (r, Some(s)),
                None => (item, None),
            };
            let range = match range.split_once('-') {
                Some((a, b)) => format!("{}-{}", name(a)?, name(b)?),
                None => name(range)?,
            };
            Ok(match step {
                Some(s) => format!("{range}/{s}"),
                None => range,
            })
        })
        .collect::<Result<Vec<_>, String>>()
        .map(|v| v.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone, Timelike};

    #[test]
    fn crontab_weekdays_mean_what_crontab_means() {
        // 2024-07-05 is a Friday. "0 9 * * 1-5" (crontab: weekdays at 09:00): the next after
        // Friday 10:00 is Monday 2024-07-08 09:00:00.
        let s = parse("0 9 * * 1-5").unwrap();
        let after = chrono_tz::Europe::Paris
            .with_ymd_and_hms(2024, 7, 5, 10, 0, 0)
            .unwrap();
        let next = s.after(&after).next().unwrap();
        assert_eq!(
            (next.day(), next.hour(), next.minute(), next.second()),
            (8, 9, 0, 0)
        );
        assert_eq!(next.weekday(), chrono::Weekday::Mon);
        // 0 and 7 are both Sunday.
        let sun = parse("30 2 * * 0").unwrap().after(&after).next().unwrap();
        assert_eq!(sun.weekday(), chrono::Weekday::Sun);
        assert_eq!(
            parse("30 2 * * 7").unwrap().after(&after).next().unwrap(),
            sun
        );
        // Six fields (seconds first) pass through.
        let every10 = parse("*/10 * * * * *").unwrap();
        let n: Vec<_> = every10.after(&after).take(2).collect();
        assert_eq!((n[1] - n[0]).num_seconds(), 10);
        assert!(parse("* * *").unwrap_err().contains("3 fields"));
        assert!(parse("0 9 * * 8").unwrap_err().contains("out of range"));
        assert!(parse("61 * * * *").is_err());
        // Valid but never firing: refused, saying so; a leap day still fires.
        for never in ["0 0 30 2 *", "0 0 31 4 *", "0 0 0 1 1 * 2020"] {
            let e = parse(never).unwrap_err();
            assert!(e.contains("never fires"), "{never}: {e}");
        }
        assert!(parse("0 0 29 2 *").is_ok());
    }
}

//! The page's words in French and English, beside the publication's ([`crate::report::labels`],
//! whose interface names, decimals and weekdays are reused), and local times with their offset.

use chrono::TimeZone as _;
use chrono_tz::Tz;

use crate::domain::Service;
use crate::report::Lang;

/// A local date and time with its UTC offset: `03/12/2026 07:15:02 UTC+01:00` in French,
/// `2026-12-03 07:15:02 UTC+01:00` in English.
pub fn local_time(ms: i64, tz: Tz, lang: Lang) -> String {
    let t = tz.from_utc_datetime(&crate::engine::time::utc(ms).naive_utc());
    match lang {
        Lang::Fr => t.format("%d/%m/%Y %H:%M:%S UTC%:z").to_string(),
        Lang::En => t.format("%Y-%m-%d %H:%M:%S UTC%:z").to_string(),
    }
}

/// An instant as RFC 3339 in local time with its offset (`2026-12-03T07:15:02+01:00`): what
/// the JSON and the feed carry.
pub fn rfc3339_local(ms: i64, tz: Tz) -> String {
    tz.from_utc_datetime(&crate::engine::time::utc(ms).naive_utc())
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// A duration in words: `1 h 02 min 05 s`, `12 min 03 s`, `45 s`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as i64;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h} h {m:02} min {s:02} s")
    } else if m > 0 {
        format!("{m} min {s:02} s")
    } else {
        format!("{s} s")
    }
}

/// A service in words (methodology section 9: named in words); unknown ones by their name.
pub fn service(s: &Service, lang: Lang) -> String {
    match s.as_str() {
        "cbpii" => lang.t("confirmation de fonds", "funds confirmation"),
        "aisp" => lang.t("informations sur les comptes", "account information"),
        "pisp" => lang.t("initiation de paiement", "payment initiation"),
        "authorize" => lang.t("authentification", "authentication"),
        "psu_login" => lang.t("connexion", "login"),
        "fallback" => lang.t("accès de secours", "fallback access"),
        other => return other.to_owned(),
    }
    .to_owned()
}

/// The quarter's name: `T4 2026` in French, `2026-Q4` in English.
pub fn quarter(from: chrono::NaiveDate, lang: Lang) -> String {
    use chrono::Datelike as _;
    let q = from.month0() / 3 + 1;
    match lang {
        Lang::Fr => format!("T{q} {}", from.year()),
        Lang::En => format!("{}-Q{q}", from.year()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_carry_their_offset_and_durations_read_as_words() {
        let tz = chrono_tz::Europe::Paris;
        // 2026-12-03T06:15:02Z is 07:15:02 in Paris (winter time).
        let ms = 1_796_278_502_000;
        assert_eq!(
            local_time(ms, tz, Lang::Fr),
            "03/12/2026 07:15:02 UTC+01:00"
        );
        assert_eq!(
            local_time(ms, tz, Lang::En),
            "2026-12-03 07:15:02 UTC+01:00"
        );
        assert_eq!(rfc3339_local(ms, tz), "2026-12-03T07:15:02+01:00");
        // Summer time: 2026-07-01T10:00:00Z is 12:00 in Paris.
        assert_eq!(
            rfc3339_local(1_782_900_000_000, tz),
            "2026-07-01T12:00:00+02:00"
        );
        assert_eq!(duration(45.4), "45 s");
        assert_eq!(duration(723.0), "12 min 03 s");
        assert_eq!(duration(3725.0), "1 h 02 min 05 s");
        assert_eq!(
            service(&Service::new("cbpii").unwrap(), Lang::Fr),
            "confirmation de fonds"
        );
        assert_eq!(
            quarter(
                chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
                Lang::Fr
            ),
            "T4 2026"
        );
    }
}

//! Plausibility bounds of an imported observation (issue 11, point 13): one pure check, applied
//! by both readers (the observation CSV, so also `dispo kpi --input`, and JSON lines).
//!
//! In: an [`Observation`] as parsed. Out: `Ok`, or the reason it is refused, naming the bound.
//! A latency must be a finite number from 0 to `[counting] max_latency_s` (**policy**, default
//! 3 600 s: a gateway's time-out is far shorter, so more is a unit or clock error); `received_at`
//! must be from 2000-01-01T00:00:00Z to 24 hours after the clock at the start of the import.

use chrono::DateTime;

use crate::domain::Observation;

/// 2000-01-01T00:00:00Z: no gateway log of a PSD2 interface is older.
pub const NOT_BEFORE_MS: i64 = 946_684_800_000;

/// How far ahead of the clock a `received_at` may be (clock skew between the gateway and here).
pub const AHEAD_MS: i64 = 24 * 3_600_000;

/// The bounds an imported observation must lie within.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    /// Latencies above this (ms) are refused.
    pub max_latency_ms: f64,
    /// `received_at` after this (UTC epoch ms) is refused.
    pub not_after_ms: i64,
    /// Longest line read, in bytes (`--max-line-bytes`); a longer one is refused unread.
    pub max_line_bytes: usize,
    /// Longest request id and TPP id, in characters (`--max-id-chars`).
    pub max_id_chars: usize,
    /// Longest error text, in characters (`--max-error-text-chars`).
    pub max_error_text_chars: usize,
}

/// Default longest request id and TPP id (characters): a UUID is 36, an eIDAS organization
/// identifier about 20.
pub const DEFAULT_MAX_ID_CHARS: usize = 200;

/// Default longest error text (characters): a STET error message is a sentence.
pub const DEFAULT_MAX_ERROR_TEXT_CHARS: usize = 2000;

impl Bounds {
    /// `max_latency_s` from `[counting]`; `now_ms` the clock (times up to 24 h after it pass).
    pub fn new(max_latency_s: f64, now_ms: i64) -> Self {
        Self {
            max_latency_ms: max_latency_s * 1000.0,
            not_after_ms: now_ms.saturating_add(AHEAD_MS),
            max_line_bytes: super::linecap::DEFAULT_MAX_LINE_BYTES,
            max_id_chars: DEFAULT_MAX_ID_CHARS,
            max_error_text_chars: DEFAULT_MAX_ERROR_TEXT_CHARS,
        }
    }

    /// The same with other length limits (line in bytes, ids and error text in characters).
    pub fn with_lengths(mut self, line_bytes: usize, id_chars: usize, error_chars: usize) -> Self {
        self.max_line_bytes = line_bytes;
        self.max_id_chars = id_chars;
        self.max_error_text_chars = error_chars;
        self
    }

    /// [`Bounds::check`], and the error text's length.
    pub fn check_stored(&self, o: &crate::store::StoredObservation) -> Result<(), String> {
        self.check(&o.obs)?;
        self.check_error_text(o.error_text.as_deref())
    }

    /// An error text of at most `max_error_text_chars` characters.
    pub fn check_error_text(&self, text: Option<&str>) -> Result<(), String> {
        too_long(
            "error_text",
            text,
            self.max_error_text_chars,
            "--max-error-text-chars",
        )
    }

    /// With the system clock.
    pub fn from_clock(max_latency_s: f64) -> Self {
        Self::new(max_latency_s, chrono::Utc::now().timestamp_millis())
    }

    /// Whether the observation is plausible; the reason names the bound it breaks.
    pub fn check(&self, o: &Observation) -> Result<(), String> {
        too_long(
            "request_id",
            Some(&o.request_id),
            self.max_id_chars,
            "--max-id-chars",
        )?;
        too_long("tpp", o.tpp.as_deref(), self.max_id_chars, "--max-id-chars")?;
        too_long(
            "error_code",
            o.error_code.as_deref(),
            self.max_id_chars,
            "--max-id-chars",
        )?;
        // Identifiers with control characters (a NUL that hides the rest, a line break that
        // forges log lines or e-mail headers) are no identifiers.
        control("request_id", Some(&o.request_id))?;
        control("tpp", o.tpp.as_deref())?;
        control("error_code", o.error_code.as_deref())?;
        self.check_time(o.received_at_ms)?;
        match o.latency_ms {
            Some(l) => self.check_latency(l),
            None => Ok(()),
        }
    }

    /// `received_at` from 2000-01-01T00:00:00Z to `not_after_ms`, both included.
    pub fn check_time(&self, at_ms: i64) -> Result<(), String> {
        if at_ms < NOT_BEFORE_MS {
            return Err(format!(
                "received_at {} is before 2000-01-01T00:00:00Z (the earliest accepted time)",
                instant(at_ms)
            ));
        }
        if at_ms > self.not_after_ms {
            return Err(format!(
                "received_at {} is more than 24 h after the clock (latest accepted {}): a wrong year, unit or clock?",
                instant(at_ms),
                instant(self.not_after_ms)
            ));
        }
        Ok(())
    }

    /// A latency (ms): finite, from 0 to `max_latency_ms`, both included.
    pub fn check_latency(&self, ms: f64) -> Result<(), String> {
        let why = if ms.is_nan() {
            "is not a number"
        } else if ms.is_infinite() {
            "is not finite"
        } else if ms < 0.0 {
            "is negative"
        } else if ms > self.max_latency_ms {
            "is beyond [counting] max_latency_s"
        } else {
            return Ok(());
        };
        Err(format!(
            "latency_ms {ms} {why} (accepted: 0 to {} ms, max_latency_s = {} s)",
            self.max_latency_ms,
            self.max_latency_ms / 1000.0
        ))
    }
}

impl Default for Bounds {
    /// The default `max_latency_s` of the counting settings, and the system clock.
    fn default() -> Self {
        Self::from_clock(crate::engine::Settings::default().max_latency_s)
    }
}

/// A field of at most `max` characters; the reason names the field, its length and the setting.
fn too_long(field: &str, v: Option<&str>, max: usize, flag: &str) -> Result<(), String> {
    match v {
        // Bytes bound characters from above: count only when it could matter.
        Some(t) if t.len() > max && t.chars().count() > max => Err(format!(
            "{field} is {} characters long, more than {max} ({flag})",
            t.chars().count()
        )),
        _ => Ok(()),
    }
}

fn control(field: &str, v: Option<&str>) -> Result<(), String> {
    match v.and_then(|t| t.chars().find(|c| c.is_control())) {
        Some(c) => Err(format!(
            "{field} holds a control character (U+{:04X}): not an identifier",
            c as u32
        )),
        None => Ok(()),
    }
}

/// An instant for a message, even one chrono cannot represent.
fn instant(ms: i64) -> String {
    match DateTime::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => format!("{ms} ms after 1970"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-12-02T12:00:00Z.
    const NOW: i64 = 1_796_212_800_000;

    #[test]
    fn latencies_outside_the_bound_are_refused_naming_it() {
        let b = Bounds::new(3600.0, NOW);
        // 3 600 s = 3 600 000 ms is the last accepted value.
        assert_eq!(b.check_latency(0.0), Ok(()));
        assert_eq!(b.check_latency(3_600_000.0), Ok(()));
        for (ms, why) in [
            (3_600_000.5, "beyond [counting] max_latency_s"),
            (1e11, "beyond [counting] max_latency_s"),
            (f64::INFINITY, "not finite"),
            (f64::NAN, "not a number"),
            (-1.0, "negative"),
        ] {
            let e = b.check_latency(ms).unwrap_err();
            assert!(e.contains(why), "{ms}: {e}");
            assert!(e.contains("0 to 3600000 ms, max_latency_s = 3600 s"), "{e}");
        }
        // A stricter policy: 10 s.
        let e = Bounds::new(10.0, NOW).check_latency(10_001.0).unwrap_err();
        assert!(e.contains("0 to 10000 ms"), "{e}");
    }

    #[test]
    fn ids_and_error_texts_longer_than_the_policy_are_refused() {
        let b = Bounds::new(3600.0, NOW);
        let obs = |rid: &str, tpp: Option<&str>| crate::domain::Observation {
            received_at_ms: NOW,
            establishment: "13807".parse().unwrap(),
            interface: crate::domain::Interface::Api,
            service: crate::domain::Service::new("cbpii").unwrap(),
            source: crate::domain::Source::Log,
            tpp: tpp.map(Into::into),
            status: Some(200),
            latency_ms: Some(1.0),
            error_code: None,
            request_id: rid.into(),
            outcome: crate::domain::Outcome::Ok,
            vantage: crate::domain::Vantage::imported(crate::domain::Source::Log),
        };
        // Control characters: a NUL hiding the rest, a line break forging log lines.
        let e = b.check(&obs("r1", Some("VICTIM\u{0}EVIL"))).unwrap_err();
        assert!(e.contains("tpp holds a control character (U+0000)"), "{e}");
        let e = b.check(&obs("r1\nBcc: x", None)).unwrap_err();
        assert!(
            e.contains("request_id holds a control character (U+000A)"),
            "{e}"
        );
        let mut coded = obs("r1", None);
        coded.error_code = Some("C".repeat(201).into());
        let e = b.check(&coded).unwrap_err();
        assert!(e.contains("error_code is 201 characters long"), "{e}");
        let long = "é".repeat(201);
        assert_eq!(
            b.check(&obs(&"é".repeat(200), Some(&"x".repeat(200)))),
            Ok(())
        );
        assert_eq!(
            b.check(&obs(&long, None)).unwrap_err(),
            "request_id is 201 characters long, more than 200 (--max-id-chars)"
        );
        assert_eq!(
            b.check(&obs("r", Some(&"x".repeat(40_000)))).unwrap_err(),
            "tpp is 40000 characters long, more than 200 (--max-id-chars)"
        );
        assert_eq!(b.check_error_text(Some(&"x".repeat(2000))), Ok(()));
        assert!(
            b.check_error_text(Some(&"x".repeat(2001)))
                .unwrap_err()
                .contains("error_text is 2001 characters long, more than 2000")
        );
        // A higher policy lets them through.
        let wide = b.with_lengths(1 << 20, 50_000, 10_000);
        assert_eq!(wide.check(&obs("r", Some(&"x".repeat(40_000)))), Ok(()));
    }

    #[test]
    fn times_before_2000_or_more_than_a_day_ahead_are_refused() {
        let b = Bounds::new(3600.0, NOW);
        assert_eq!(b.check_time(NOT_BEFORE_MS), Ok(()));
        let e = b.check_time(NOT_BEFORE_MS - 1).unwrap_err();
        assert!(
            e.contains("1999-12-31T23:59:59.999Z is before 2000-01-01"),
            "{e}"
        );
        // Now + 1 h passes; now + 24 h is the last accepted instant.
        assert_eq!(b.check_time(NOW + 3_600_000), Ok(()));
        assert_eq!(b.check_time(NOW + AHEAD_MS), Ok(()));
        let e = b.check_time(NOW + AHEAD_MS + 1).unwrap_err();
        assert!(
            e.contains("more than 24 h after the clock (latest accepted 2026-12-03T12:00:00.000Z)"),
            "{e}"
        );
        // Beyond chrono's range: still a message.
        assert!(
            b.check_time(i64::MAX)
                .unwrap_err()
                .contains("ms after 1970")
        );
    }
}

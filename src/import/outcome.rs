//! The outcome of an imported row (issue 11, point 12): it follows the reply, as the
//! methodology classifies it (section 2, [`Outcome::from_reply`]); an `outcome` written in the
//! input is checked against it, never taken over it.
//!
//! In: the outcome given (if any), the row's source, status and STET error code. Out: the
//! outcome to keep, or the reason the row is refused, naming both values. Two exceptions, both
//! on a probe's own rows (probes judge more than the status): `probe_error` (the monitor's own
//! fault), and `unexpected` on a reply whose status alone says `ok` (a 2xx or 3xx with a wrong
//! body or an unexpected redirect).

use crate::domain::{Outcome, Source};

/// The outcome an imported row keeps, or why the row is refused.
pub fn imported_outcome(
    given: Option<Outcome>,
    source: Source,
    status: Option<u16>,
    error_code: Option<&str>,
) -> Result<Outcome, String> {
    let derived = Outcome::from_reply(status, error_code);
    let Some(given) = given else {
        return Ok(derived);
    };
    let probe = source == Source::Probe;
    match given {
        g if g == derived => Ok(g),
        // The monitor's own fault never got a reply from the bank: a `probe_error` with a
        // status would take a bank's error out of every figure.
        Outcome::ProbeError if probe && status.is_none() => Ok(given),
        Outcome::Unexpected if probe && derived == Outcome::Ok => Ok(given),
        _ => {
            let reply = match (status, error_code) {
                (None, _) => "no status (no reply)".to_string(),
                (Some(s), Some(c)) => format!("status {s} with error code {c}"),
                (Some(s), None) => format!("status {s}"),
            };
            let hint = match given {
                Outcome::ProbeError if probe => {
                    "; a probe's own fault has no reply, so no status".to_string()
                }
                Outcome::ProbeError | Outcome::Unexpected if !probe => {
                    format!("; only probe rows may say \"{given}\"")
                }
                Outcome::Unexpected => {
                    "; a probe finds \"unexpected\" only in a reply whose status says \"ok\"".into()
                }
                _ => String::new(),
            };
            Err(format!(
                "outcome \"{given}\" contradicts {reply}, which is \"{derived}\" (methodology section 2{hint})"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Outcome as O;

    #[test]
    fn a_given_outcome_must_agree_with_the_reply() {
        let log = Source::Log;
        let probe = Source::Probe;
        // Agreeing or absent: kept / derived.
        assert_eq!(
            imported_outcome(None, log, Some(503), None),
            Ok(O::AspspError)
        );
        assert_eq!(
            imported_outcome(Some(O::Ok), log, Some(302), None),
            Ok(O::Ok)
        );
        assert_eq!(
            imported_outcome(Some(O::Rejected), log, Some(400), Some("AC01")),
            Ok(O::Rejected)
        );
        assert_eq!(
            imported_outcome(Some(O::NoReply), probe, None, None),
            Ok(O::NoReply)
        );
        // A probe's own judgements beyond the status.
        assert_eq!(
            imported_outcome(Some(O::ProbeError), probe, None, None),
            Ok(O::ProbeError)
        );
        assert_eq!(
            imported_outcome(Some(O::Unexpected), probe, Some(200), None),
            Ok(O::Unexpected)
        );
        assert_eq!(
            imported_outcome(Some(O::Unexpected), probe, Some(302), None),
            Ok(O::Unexpected)
        );

        // A "probe_error" on a bank's 503 INTS would drop the bank's error from every figure.
        let e = imported_outcome(Some(O::ProbeError), probe, Some(503), Some("INTS")).unwrap_err();
        assert!(e.contains("a probe's own fault has no reply"), "{e}");

        // Contradictions: refused, naming both values.
        let e = imported_outcome(Some(O::Ok), log, Some(503), Some("INTS")).unwrap_err();
        assert!(
            e.starts_with("outcome \"ok\" contradicts status 503 with error code INTS, which is \"aspsp_error\""),
            "{e}"
        );
        let e = imported_outcome(Some(O::Ok), probe, None, None).unwrap_err();
        assert!(
            e.contains("\"ok\" contradicts no status (no reply), which is \"no_reply\""),
            "{e}"
        );
        let e = imported_outcome(Some(O::Ok), log, Some(200), Some("INTE")).unwrap_err();
        assert!(e.contains("which is \"aspsp_error\""), "{e}");
        assert!(imported_outcome(Some(O::AspspError), probe, Some(200), None).is_err());
        assert!(imported_outcome(Some(O::Rejected), log, Some(500), None).is_err());
        assert!(imported_outcome(Some(O::NoReply), log, Some(200), None).is_err());
        // Only probes may say unexpected or probe_error; unexpected only where the status says ok.
        let e = imported_outcome(Some(O::Unexpected), log, Some(200), None).unwrap_err();
        assert!(e.contains("only probe rows may say \"unexpected\""), "{e}");
        let e = imported_outcome(Some(O::ProbeError), log, None, None).unwrap_err();
        assert!(e.contains("only probe rows may say \"probe_error\""), "{e}");
        let e = imported_outcome(Some(O::Unexpected), probe, Some(503), None).unwrap_err();
        assert!(e.contains("\"unexpected\" contradicts status 503"), "{e}");
    }
}

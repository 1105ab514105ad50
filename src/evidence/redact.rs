//! Scrubs secrets from free text before it enters a pack: bearer tokens, OAuth tokens and codes,
//! SMS/OTP codes, passwords, client secrets, JWTs and PEM private keys. Error texts come from the
//! bank or the gateway and may echo a request: evidence goes to third parties, secrets never do.
//!
//! In: text. Out: the same text with each secret value replaced by `[redacted]`.

const REDACTED: &str = "[redacted]";

/// Keys whose value is a secret (matched case-insensitively, followed by `=` or `:`).
const SECRET_KEYS: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "authorization_code",
    "code_verifier",
    "password",
    "passwd",
    "otp",
    "sms_code",
    "smscode",
    "code",
    "assertion",
    "private_key",
    "authorization",
];

fn is_value_end(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '&' | '"' | '\'' | ',' | '}' | ';' | ')' | ']' | '<' | '>'
        )
}

/// Replaces secret values in `s`.
pub fn redact(s: &str) -> String {
    let mut out = redact_pem(s);
    out = redact_after(&out, "bearer ", false);
    for key in SECRET_KEYS {
        out = redact_after(&out, key, true);
    }
    redact_jwt(&out)
}

/// Redacts the value after each occurrence of `key` (followed by `=`/`:` when `keyed`).
fn redact_after(s: &str, key: &str, keyed: bool) -> String {
    let lower = s.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while let Some(found) = lower[i..].find(key) {
        let at = i + found;
        let after_key = at + key.len();
        // Whole words only: `errorcode=` is not `code=`, `INTERNAL_CODE` neither.
        let word_start = at == 0
            || !lower[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let mut j = after_key;
        let bytes = s.as_bytes();
        if keyed {
            while j < s.len() && matches!(bytes[j], b'"' | b'\'' | b' ') {
                j += 1;
            }
            if !(word_start && j < s.len() && matches!(bytes[j], b'=' | b':')) {
                out.push_str(&s[i..after_key]);
                i = after_key;
                continue;
            }
            j += 1;
            while j < s.len() && matches!(bytes[j], b'"' | b'\'' | b' ') {
                j += 1;
            }
            // `Authorization: Bearer x` is handled by the bearer rule.
            if key == "authorization" && lower[j..].starts_with("bearer ") {
                out.push_str(&s[i..j]);
                i = j;
                continue;
            }
        } else if !word_start {
            out.push_str(&s[i..after_key]);
            i = after_key;
            continue;
        }
        let end = s[j..].find(is_value_end).map(|k| j + k).unwrap_or(s.len());
        out.push_str(&s[i..j]);
        if end > j {
            out.push_str(REDACTED);
        }
        i = end;
    }
    out.push_str(&s[i..]);
    out
}

/// Three base64url segments starting `eyJ` (a JSON header): a JWT.
fn redact_jwt(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while let Some(found) = s[i..].find("eyJ") {
        let at = i + found;
        let end = s[at..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '=')))
            .map(|k| at + k)
            .unwrap_or(s.len());
        out.push_str(&s[i..at]);
        if s[at..end].matches('.').count() >= 2 {
            out.push_str(REDACTED);
        } else {
            out.push_str(&s[at..end]);
        }
        i = end;
    }
    out.push_str(&s[i..]);
    out
}

fn redact_pem(s: &str) -> String {
    let mut out = s.to_owned();
    while let Some(b) = out.find("-----BEGIN") {
        let Some(head_end) = out[b + 10..].find("-----").map(|k| b + 10 + k + 5) else {
            break;
        };
        if !out[b..head_end].contains("PRIVATE KEY") {
            // Certificates are public; skip past this header.
            let rest = redact_pem(&out[head_end..]);
            out.truncate(head_end);
            out.push_str(&rest);
            break;
        }
        let end = out[head_end..]
            .find("-----END")
            .and_then(|k| {
                out[head_end + k + 8..]
                    .find("-----")
                    .map(|m| head_end + k + 8 + m + 5)
            })
            .unwrap_or(out.len());
        out.replace_range(b..end, REDACTED);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_scrubbed() {
        assert_eq!(
            redact("Authorization: Bearer abc.def-123 failed"),
            "Authorization: Bearer [redacted] failed"
        );
        assert_eq!(
            redact("grant_type=authorization_code&code=XYZ987&refresh_token=r1"),
            "grant_type=authorization_code&code=[redacted]&refresh_token=[redacted]"
        );
        assert_eq!(
            redact(r#"{"access_token": "tok-1", "code":"AC01"}"#),
            r#"{"access_token": "[redacted]", "code":"[redacted]"}"#
        );
        assert_eq!(redact("otp=123456 sent"), "otp=[redacted] sent");
        assert_eq!(redact("see eyJhbGc.eyJzdWI.sig1 now"), "see [redacted] now");
        assert_eq!(
            redact("k -----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY----- z"),
            "k [redacted] z"
        );
        // Plain STET errors stay readable.
        assert_eq!(
            redact("INTS: internal server error, errorcode=5"),
            "INTS: internal server error, errorcode=5"
        );
    }
}

//! Scrubs secrets from free text before it enters a pack: `Authorization` headers whatever the
//! scheme, `Bearer` tokens (any spacing), `Basic` credentials, OAuth tokens and codes, SMS/OTP
//! codes, passwords and pass phrases, client secrets, API keys, cookies and session ids, JWTs and
//! PEM private keys; IBANs are masked (`FR76 **** **** 5255`). Error texts come from the bank or
//! the gateway and may echo a request: evidence goes to third parties, secrets never do.
//!
//! In: text. Out: the same text with each secret value replaced by `[redacted]`.

use std::sync::LazyLock;

use regex::Regex;

const REDACTED: &str = "[redacted]";

/// Keys whose value is a secret without spaces (matched case-insensitively as whole words,
/// followed by `=`, `:` or, for a value that looks like a token, just a space).
const TOKEN_KEYS: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "auth_token",
    "token",
    "x-auth-token",
    "client_assertion",
    "assertion",
    "authorization_code",
    "code_verifier",
    "code",
    "otp",
    "sms_code",
    "smscode",
    "pin",
    "private_key",
    "api_key",
    "apikey",
    "api-key",
    "x-api-key",
    "ocp-apim-subscription-key",
    "subscription-key",
    "session",
    "sessionid",
    "session-token",
    "session_token",
    "x-session-token",
    "security-token",
    "x-amz-security-token",
    "sid",
    "session_id",
    "jsessionid",
    "phpsessid",
];

/// Keys whose value may hold spaces (a pass phrase; a cookie header with its `;`): unquoted, it
/// runs to the end of the clause (cookies: to the end of the line).
const PHRASE_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "mot de passe",
    "mdp",
    "client_secret",
    "secret",
    "cookie",
    "set-cookie",
];

fn is_value_end(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '&' | '"' | '\'' | ',' | '}' | ';' | ')' | ']' | '<' | '>'
        )
}

/// Replaces secret values in `s`, and masks IBANs to their country, check digits and last four
/// characters (`FR76 **** **** 5255`).
pub fn redact(s: &str) -> String {
    // A URL-encoded secret (`Bearer%20…`, `access_token%3D…`) is one once decoded: the text is
    // scrubbed (and kept) decoded.
    let decoded = percent_decoded(s);
    let mut out = redact_pem(&decoded);
    out = redact_authorization(&out);
    out = redact_schemes(&out);
    out = redact_keys(&out);
    out = redact_jwt(&out);
    mask_ibans(&out)
}

/// `s` with `%XX` escapes undone (as UTF-8, lossy), when it has any.
fn percent_decoded(s: &str) -> std::borrow::Cow<'_, str> {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    if !b
        .windows(3)
        .any(|w| w[0] == b'%' && hex(w[1]).is_some() && hex(w[2]).is_some())
    {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(h * 16 + l);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    std::borrow::Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// `Authorization: <scheme> <credentials>` (and `Proxy-Authorization`), whatever the scheme:
/// the credentials run to the end of the line (Digest and AWS put `, key=value` pairs there).
fn redact_authorization(s: &str) -> String {
    static RE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r#"(?i)\b((?:proxy-)?authorization["']?[ \t]*[:=][ \t]*["']?)(?:([A-Za-z][A-Za-z0-9-]*)([ \t]+))?([^\r\n"'<>]+)"#,
        )
        .expect("valid pattern")
    });
    RE.replace_all(s, |c: &regex::Captures| {
        let scheme = c.get(2).map_or("", |m| m.as_str());
        let (sp, rest) = (c.get(3).map_or("", |m| m.as_str()), &c[4]);
        // Schemes whose credentials are one token keep what follows it readable.
        let one_token = ["bearer", "basic", "negotiate", "ntlm"]
            .iter()
            .any(|k| k.eq_ignore_ascii_case(scheme));
        let tail = if one_token {
            rest.find(|ch: char| ch.is_whitespace() || "\"',;&<>".contains(ch))
                .map_or("", |e| &rest[e..])
        } else {
            ""
        };
        format!("{}{scheme}{sp}{REDACTED}{tail}", &c[1])
    })
    .into_owned()
}

/// `Bearer <token>` with any number of spaces; `Basic <base64 of user:password>`.
fn redact_schemes(s: &str) -> String {
    static RE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)\b(bearer|basic)(\s*[:=]\s*|\s+)([A-Za-z0-9\-._~+/]+=*)")
            .expect("valid pattern")
    });
    RE.replace_all(s, |c: &regex::Captures| {
        let secret = c[1].eq_ignore_ascii_case("bearer") || is_basic_credentials(&c[3]);
        if secret {
            format!("{}{}{REDACTED}", &c[1], &c[2])
        } else {
            c[0].to_owned()
        }
    })
    .into_owned()
}

/// Base64 of `user:password` (so "Basic authentication failed" stays readable).
fn is_basic_credentials(v: &str) -> bool {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(v)
        .is_ok_and(|b| b.contains(&b':'))
}

/// A word after a key and a space that is a secret: long enough, with a digit, token characters.
fn looks_like_token(w: &str) -> bool {
    w.len() >= 6
        && w.chars().any(|c| c.is_ascii_digit())
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~+/=".contains(c))
}

/// Redacts the value after each secret key (`key=v`, `key: v`, `"key": "v w"`, `key v1234`).
fn redact_keys(s: &str) -> String {
    static RE: LazyLock<Regex> = LazyLock::new(|| {
        let mut keys: Vec<&str> = TOKEN_KEYS.iter().chain(PHRASE_KEYS).copied().collect();
        keys.sort_by_key(|k| std::cmp::Reverse(k.len()));
        let alt = keys
            .iter()
            .map(|k| regex::escape(k))
            .collect::<Vec<_>>()
            .join("|");
        Regex::new(&format!(r"(?i)(?:^|[^A-Za-z0-9_-])({alt})\b")).expect("valid pattern")
    });
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while let Some(c) = RE.captures_at(s, i) {
        let key = c.get(1).expect("group 1");
        let phrase = PHRASE_KEYS
            .iter()
            .any(|k| k.eq_ignore_ascii_case(key.as_str()));
        let cookie = key.as_str().to_ascii_lowercase().ends_with("cookie");
        let mut j = key.end();
        // The closing quote of a JSON key, then blanks.
        if j < b.len() && matches!(b[j], b'"' | b'\'') {
            j += 1;
        }
        let blanks = |mut j: usize| {
            while j < b.len() && matches!(b[j], b' ' | b'\t') {
                j += 1;
            }
            j
        };
        let k = blanks(j);
        let (start, end) = if k < b.len() && matches!(b[k], b'=' | b':') {
            let v = blanks(k + 1);
            if v < b.len() && matches!(b[v], b'"' | b'\'') {
                // Quoted: the whole quoted value, spaces and all.
                let q = b[v] as char;
                let e = s[v + 1..].find(q).map_or(s.len(), |e| v + 1 + e);
                (v + 1, e)
            } else if phrase {
                let stop: &[char] = if cookie {
                    &['\r', '\n', '"', '\'']
                } else {
                    &['\r', '\n', '"', '\'', ',', '&', ';', '}']
                };
                let e = s[v..].find(stop).map_or(s.len(), |e| v + e);
                (v, v + s[v..e].trim_end().len())
            } else {
                (v, s[v..].find(is_value_end).map_or(s.len(), |e| v + e))
            }
        } else if k > j {
            let e = s[k..].find(is_value_end).map_or(s.len(), |e| k + e);
            if looks_like_token(&s[k..e]) {
                (k, e)
            } else {
                (k, k)
            }
        } else {
            (key.end(), key.end())
        };
        out.push_str(&s[i..start]);
        if end > start && &s[start..end] != REDACTED {
            out.push_str(REDACTED);
        } else {
            out.push_str(&s[start..end]);
        }
        i = end.max(key.end());
        if i >= s.len() {
            break;
        }
    }
    out.push_str(&s[i.min(s.len())..]);
    out
}

/// IBANs (checksum verified) masked to `FR76 **** **** 5255`: the supervisor sees the country,
/// the check digits and the last four characters, never the account.
fn mask_ibans(s: &str) -> String {
    static RE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)\b[A-Z]{2}[0-9]{2}(?:[ -]?[A-Z0-9]){11,30}\b").expect("valid pattern")
    });
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut at = 0;
    while let Some(m) = RE.find_at(s, at) {
        // The longest start of the match (ending before a space or dash, or at its end) that is
        // an IBAN: an upper-case word after it ("... 185 INTS") is not part of it, nor is a
        // second IBAN after "to".
        let text = m.as_str();
        let cuts = text
            .char_indices()
            .filter(|(_, c)| matches!(c, ' ' | '-'))
            .map(|(p, _)| p)
            .chain([text.len()])
            .collect::<Vec<_>>();
        let found = cuts.iter().rev().find_map(|&cut| {
            text[..cut]
                .replace('-', " ")
                .parse::<crate::domain::Iban>()
                .ok()
                .map(|iban| (cut, iban))
        });
        match found {
            Some((cut, iban)) => {
                let a = iban.as_str();
                out.push_str(&s[i..m.start()]);
                out.push_str(&format!("{} **** **** {}", &a[..4], &a[a.len() - 4..]));
                i = m.start() + cut;
                at = i;
            }
            // Not an IBAN from here: one may start further on, inside this match.
            None => {
                at = m.start() + text.chars().next().map_or(1, char::len_utf8);
            }
        }
        if at >= s.len() {
            break;
        }
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

    /// Every shape of secret met in gateway and bank error texts, and what must stay readable.
    #[test]
    fn secret_shapes() {
        for (raw, want) in [
            (
                "Authorization: Bearer abc.def-123 failed",
                "Authorization: Bearer [redacted] failed",
            ),
            ("Bearer  two-spaces-tok9 then", "Bearer  [redacted] then"),
            ("bearer\ttab.tok", "bearer\t[redacted]"),
            (
                "Authorization: Basic dXNlcjpwYXNz",
                "Authorization: Basic [redacted]",
            ),
            ("sent Basic dXNlcjpwYXNz to", "sent Basic [redacted] to"),
            ("Basic authentication failed", "Basic authentication failed"),
            (
                "authorization=Digest abc123",
                "authorization=Digest [redacted]",
            ),
            (
                "Proxy-Authorization: Negotiate YIIG",
                "Proxy-Authorization: Negotiate [redacted]",
            ),
            (
                "grant_type=authorization_code&code=XYZ987&refresh_token=r1",
                "grant_type=authorization_code&code=[redacted]&refresh_token=[redacted]",
            ),
            (
                r#"{"access_token": "tok-1", "code":"AC01"}"#,
                r#"{"access_token": "[redacted]", "code":"[redacted]"}"#,
            ),
            ("otp=123456 sent", "otp=[redacted] sent"),
            ("otp 842913 rejected", "otp [redacted] rejected"),
            (
                "refresh_token RT-secret-999 expired",
                "refresh_token [redacted] expired",
            ),
            ("token a1b2c3d4e5 revoked", "token [redacted] revoked"),
            ("the refresh token expired", "the refresh token expired"),
            (
                "password: correct horse battery staple",
                "password: [redacted]",
            ),
            (
                "password=correct horse, user=bob",
                "password=[redacted], user=bob",
            ),
            (
                r#"{"password": "two words"}"#,
                r#"{"password": "[redacted]"}"#,
            ),
            ("password hunter22 refused", "password [redacted] refused"),
            ("password expired for user", "password expired for user"),
            ("client_secret=s3cr3t&x=1", "client_secret=[redacted]&x=1"),
            (
                "Cookie: SESSION=abc; theme=dark\nnext",
                "Cookie: [redacted]\nnext",
            ),
            (
                "Set-Cookie: sid=1234; Path=/; HttpOnly",
                "Set-Cookie: [redacted]",
            ),
            ("JSESSIONID=ABCDEF0123", "JSESSIONID=[redacted]"),
            ("X-API-Key: k-123456789", "X-API-Key: [redacted]"),
            ("api_key=abcd1234&q=1", "api_key=[redacted]&q=1"),
            ("apikey: 0f0f0f0f", "apikey: [redacted]"),
            (
                "Ocp-Apim-Subscription-Key: 0123abcd",
                "Ocp-Apim-Subscription-Key: [redacted]",
            ),
            ("see eyJhbGc.eyJzdWI.sig1 now", "see [redacted] now"),
            (
                "k -----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY----- z",
                "k [redacted] z",
            ),
            (
                "debtor FR7613807008043001965405255 refused",
                "debtor FR76 **** **** 5255 refused",
            ),
            (
                "iban: FR76 1380 7008 0430 0196 5405 158 INTS",
                "iban: FR76 **** **** 5158 INTS",
            ),
            ("fr7613807008043001965405255", "FR76 **** **** 5255"),
            // Not an IBAN (checksum), not a secret: kept.
            ("FR7613807008043001965405159", "FR7613807008043001965405159"),
            (
                "INTS: internal server error, errorcode=5",
                "INTS: internal server error, errorcode=5",
            ),
            ("INTERNAL_CODE: 17", "INTERNAL_CODE: 17"),
            ("code 404", "code 404"),
            // Found by an outside review: a second IBAN after a first, grouped or dashed.
            (
                "from FR7630006000011234567890189 to FR76 1380 7008 0430 0196 5405 255",
                "from FR76 **** **** 0189 to FR76 **** **** 5255",
            ),
            (
                "FR76-1380-7008-0430-0196-5405-255 x",
                "FR76 **** **** 5255 x",
            ),
            // Credentials after a comma, whatever the scheme.
            (
                "Proxy-Authorization: Digest username=a, response=SECRETO\nnext",
                "Proxy-Authorization: Digest [redacted]\nnext",
            ),
            (
                "Authorization: AWS4-HMAC-SHA256 Credential=AK/1, Signature=SECRETX",
                "Authorization: AWS4-HMAC-SHA256 [redacted]",
            ),
            ("Bearer: SECRETZ1 x", "Bearer: [redacted] x"),
            ("Bearer\nSEC9abc", "Bearer\n[redacted]"),
            // URL-encoded: scrubbed once decoded.
            ("h=Bearer%20SECRETQ1", "h=Bearer [redacted]"),
            (
                "u?access_token%3DSECRETR1&x=1",
                "u?access_token=[redacted]&x=1",
            ),
            // French, and more names of session tokens.
            ("mot de passe: SECRETY", "mot de passe: [redacted]"),
            ("mdp=SEC19", "mdp=[redacted]"),
            ("X-Session-Token: SEC21", "X-Session-Token: [redacted]"),
            ("sid=SEC22;", "sid=[redacted];"),
            (
                "x-amz-security-token: SECRETV",
                "x-amz-security-token: [redacted]",
            ),
        ] {
            assert_eq!(redact(raw), want, "{raw:?}");
        }
    }
}

//! draft-cavage HTTP signatures (`Signature` + `Digest`), rsa-sha256, as STET asks TPPs to sign
//! their requests with the QSealC key. The list of signed headers and the `keyId` are settings:
//! banks differ (STET part 1 asks for `(request-target)`, `Date`, `Content-Type`, `X-Request-ID`,
//! `Digest` and every `PSU-*` header present; some banks check only `(request-target)
//! x-request-id`).
//!
//! The signing string is one `name: value` line per listed header, in list order, joined by
//! `\n`; `(request-target)` is `<lower-case method> <path?query>`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use http::{HeaderMap, HeaderValue, Method};
use ring::rand::SystemRandom;
use ring::signature::{self, RsaKeyPair, UnparsedPublicKey};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;

/// The headers signed when a configuration does not say otherwise (STET part 1; PSU-* headers
/// are added when present).
pub const DEFAULT_HEADERS: &[&str] = &[
    "(request-target)",
    "date",
    "content-type",
    "x-request-id",
    "digest",
    "content-length",
];

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("the signing key is not an RSA PKCS#8 private key in PEM: {0}")]
    Key(String),
    #[error("the request has no {0} header, which the signature must cover")]
    MissingHeader(String),
    #[error("RSA signing failed")]
    Crypto,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("no Signature header")]
    Missing,
    #[error("Signature header is malformed: {0}")]
    Malformed(String),
    #[error("unsupported signature algorithm {0:?} (rsa-sha256 expected)")]
    Algorithm(String),
    #[error("the signature must cover {0}")]
    NotCovered(&'static str),
    #[error("signed header {0} is absent from the request")]
    Absent(String),
    #[error("Digest header does not match the body")]
    Digest,
    #[error("the signature does not verify with the certificate's key")]
    Invalid,
}

/// `SHA-256=<base64>` of a body.
pub fn digest_header(body: &[u8]) -> String {
    format!(
        "SHA-256={}",
        B64.encode(ring::digest::digest(&ring::digest::SHA256, body))
    )
}

/// Signs requests with one key.
pub struct Signer {
    key: RsaKeyPair,
    key_id: String,
    headers: Vec<String>,
    rng: SystemRandom,
}

impl std::fmt::Debug for Signer {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("key_id", &self.key_id)
            .field("headers", &self.headers)
            .finish()
    }
}

impl Signer {
    /// A signer from a PKCS#8 PEM RSA key. `headers` are lower-cased; empty means
    /// [`DEFAULT_HEADERS`].
    pub fn from_pkcs8_pem(
        pem: &[u8],
        key_id: impl Into<String>,
        headers: &[String],
    ) -> Result<Self, SignError> {
        let der =
            PrivatePkcs8KeyDer::from_pem_slice(pem).map_err(|e| SignError::Key(e.to_string()))?;
        let key = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
            .map_err(|e| SignError::Key(e.to_string()))?;
        let headers = if headers.is_empty() {
            DEFAULT_HEADERS.iter().map(|h| h.to_string()).collect()
        } else {
            headers.iter().map(|h| h.to_ascii_lowercase()).collect()
        };
        Ok(Self {
            key,
            key_id: key_id.into(),
            headers,
            rng: SystemRandom::new(),
        })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Adds `Digest` (when there is a body or `digest` is listed), `Date` (when listed and
    /// absent) and `Signature`. Listed headers absent from the request are left out of the
    /// signature, except `(request-target)` and `x-request-id`, which are always required.
    /// Every `psu-*` header present is signed too.
    pub fn sign(
        &self,
        method: &Method,
        path_and_query: &str,
        headers: &mut HeaderMap,
        body: &[u8],
    ) -> Result<(), SignError> {
        let wants = |h: &str| self.headers.iter().any(|x| x == h);
        if !body.is_empty() || wants("digest") {
            headers.insert("digest", header_value(&digest_header(body)));
        }
        if wants("date") && !headers.contains_key("date") {
            let now = chrono::Utc::now()
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string();
            headers.insert("date", header_value(&now));
        }
        if !headers.contains_key("x-request-id") {
            return Err(SignError::MissingHeader("X-Request-ID".into()));
        }
        let mut names: Vec<String> = Vec::new();
        for h in &self.headers {
            if h == "(request-target)" || headers.contains_key(h.as_str()) {
                names.push(h.clone());
            }
        }
        if !names.iter().any(|h| h == "(request-target)") {
            names.insert(0, "(request-target)".into());
        }
        if !names.iter().any(|h| h == "x-request-id") {
            names.push("x-request-id".into());
        }
        let mut psu: Vec<String> = headers
            .keys()
            .map(|k| k.as_str().to_owned())
            .filter(|k| k.starts_with("psu-") && !names.contains(k))
            .collect();
        psu.sort();
        names.extend(psu);
        let text = signing_string(method, path_and_query, headers, &names)
            .map_err(SignError::MissingHeader)?;
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &self.rng,
                text.as_bytes(),
                &mut sig,
            )
            .map_err(|_| SignError::Crypto)?;
        let value = format!(
            "keyId=\"{}\",algorithm=\"rsa-sha256\",headers=\"{}\",signature=\"{}\"",
            self.key_id,
            names.join(" "),
            B64.encode(sig)
        );
        headers.insert("signature", header_value(&value));
        Ok(())
    }
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Builds the signing string; `Err(name)` when a listed header is absent.
pub fn signing_string(
    method: &Method,
    path_and_query: &str,
    headers: &HeaderMap,
    names: &[String],
) -> Result<String, String> {
    let mut lines = Vec::with_capacity(names.len());
    for name in names {
        if name == "(request-target)" {
            lines.push(format!(
                "(request-target): {} {}",
                method.as_str().to_ascii_lowercase(),
                path_and_query
            ));
            continue;
        }
        let values: Vec<&str> = headers
            .get_all(name.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::trim)
            .collect();
        if values.is_empty() {
            return Err(name.clone());
        }
        lines.push(format!("{name}: {}", values.join(", ")));
    }
    Ok(lines.join("\n"))
}

/// The parts of a `Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedSignature {
    pub key_id: String,
    pub algorithm: Option<String>,
    pub headers: Vec<String>,
    pub signature: Vec<u8>,
}

/// Parses `keyId="..",algorithm="..",headers="..",signature=".."`.
pub fn parse_signature(value: &str) -> Result<ParsedSignature, VerifyError> {
    let mut key_id = None;
    let mut algorithm = None;
    let mut headers = None;
    let mut signature = None;
    let mut rest = value.trim();
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once('=')
            .ok_or_else(|| VerifyError::Malformed("expected name=\"value\"".into()))?;
        let after = after.trim_start();
        let inner = after
            .strip_prefix('"')
            .ok_or_else(|| VerifyError::Malformed(format!("{} is not quoted", name.trim())))?;
        let end = inner
            .find('"')
            .ok_or_else(|| VerifyError::Malformed("unterminated quote".into()))?;
        let v = &inner[..end];
        match name.trim() {
            "keyId" => key_id = Some(v.to_owned()),
            "algorithm" => algorithm = Some(v.to_owned()),
            "headers" => {
                headers = Some(
                    v.split_whitespace()
                        .map(|h| h.to_ascii_lowercase())
                        .collect::<Vec<_>>(),
                )
            }
            "signature" => {
                signature = Some(
                    B64.decode(v)
                        .map_err(|_| VerifyError::Malformed("signature is not base64".into()))?,
                )
            }
            _ => {}
        }
        rest = inner[end + 1..]
            .trim_start()
            .trim_start_matches(',')
            .trim_start();
    }
    Ok(ParsedSignature {
        key_id: key_id.ok_or_else(|| VerifyError::Malformed("no keyId".into()))?,
        algorithm,
        // draft-cavage: without `headers`, only `date` is signed.
        headers: headers.unwrap_or_else(|| vec!["date".into()]),
        signature: signature.ok_or_else(|| VerifyError::Malformed("no signature".into()))?,
    })
}

/// Verifies a request's `Signature` (and `Digest`) with an RSA public key (PKCS#1
/// `RSAPublicKey` DER, as [`super::certs::CertInfo::public_key`] gives it). The signature must
/// cover `(request-target)` and `x-request-id`, and `digest` when there is a body.
pub fn verify(
    method: &Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: &[u8],
    rsa_public_key: &[u8],
) -> Result<ParsedSignature, VerifyError> {
    let raw = headers.get("signature").ok_or(VerifyError::Missing)?;
    let parsed = parse_signature(
        raw.to_str()
            .map_err(|_| VerifyError::Malformed("not ASCII".into()))?,
    )?;
    if let Some(a) = &parsed.algorithm
        && !a.eq_ignore_ascii_case("rsa-sha256")
        && !a.eq_ignore_ascii_case("hs2019")
    {
        return Err(VerifyError::Algorithm(a.clone()));
    }
    let covers = |h: &str| parsed.headers.iter().any(|x| x == h);
    if !covers("(request-target)") {
        return Err(VerifyError::NotCovered("(request-target)"));
    }
    if !covers("x-request-id") {
        return Err(VerifyError::NotCovered("x-request-id"));
    }
    if !body.is_empty() && !covers("digest") {
        return Err(VerifyError::NotCovered("digest"));
    }
    if let Some(d) = headers.get("digest") {
        if d.to_str().ok() != Some(digest_header(body).as_str()) {
            return Err(VerifyError::Digest);
        }
    } else if !body.is_empty() {
        return Err(VerifyError::Absent("digest".into()));
    }
    let text = signing_string(method, path_and_query, headers, &parsed.headers)
        .map_err(VerifyError::Absent)?;
    UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, rsa_public_key)
        .verify(text.as_bytes(), &parsed.signature)
        .map_err(|_| VerifyError::Invalid)?;
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2048-bit RSA key made once for these tests (the `rsa` crate, optimised in dev).
    fn key_pem() -> (String, Vec<u8>) {
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};
        use rsa::traits::PublicKeyParts;
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let public = rsa::pkcs1::EncodeRsaPublicKey::to_pkcs1_der(&key.to_public_key())
            .unwrap()
            .as_bytes()
            .to_vec();
        assert_eq!(key.size(), 256);
        (pem, public)
    }

    fn request() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "x-request-id",
            HeaderValue::from_static("0f2d7b1a-5c1e-4c8b-9a43-2f1d3b9d0e11"),
        );
        h.insert("content-type", HeaderValue::from_static("application/json"));
        h.insert("psu-ip-address", HeaderValue::from_static("192.0.2.10"));
        h
    }

    #[test]
    fn digest_matches_the_draft_example() {
        // draft-cavage-http-signatures-12 §2.1.3 example body {"hello": "world"}.
        assert_eq!(
            digest_header(br#"{"hello": "world"}"#),
            "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="
        );
    }

    #[test]
    fn signing_string_layout() {
        let mut h = request();
        h.insert(
            "date",
            HeaderValue::from_static("Tue, 07 Jun 2014 20:51:35 GMT"),
        );
        let names: Vec<String> = ["(request-target)", "date", "x-request-id"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            signing_string(
                &Method::POST,
                "/stet/psd2/v1/funds-confirmations?x=1",
                &h,
                &names
            )
            .unwrap(),
            "(request-target): post /stet/psd2/v1/funds-confirmations?x=1\ndate: Tue, 07 Jun 2014 20:51:35 GMT\nx-request-id: 0f2d7b1a-5c1e-4c8b-9a43-2f1d3b9d0e11"
        );
    }

    #[test]
    fn sign_then_verify_and_tampering_fails() {
        let (pem, public) = key_pem();
        let signer = Signer::from_pkcs8_pem(pem.as_bytes(), "SN=1a2b,CA=CN=Test CA", &[]).unwrap();
        let body = br#"{"paymentCoverageRequestId":"r1"}"#;
        let path = "/stet/psd2/v1/funds-confirmations";
        let mut h = request();
        signer.sign(&Method::POST, path, &mut h, body).unwrap();
        let parsed = verify(&Method::POST, path, &h, body, &public).unwrap();
        assert_eq!(parsed.key_id, "SN=1a2b,CA=CN=Test CA");
        // Default list, present ones kept, psu-* added.
        assert_eq!(
            parsed.headers,
            [
                "(request-target)",
                "date",
                "content-type",
                "x-request-id",
                "digest",
                "psu-ip-address"
            ]
        );
        assert_eq!(
            verify(&Method::POST, path, &h, b"{}", &public),
            Err(VerifyError::Digest)
        );
        assert_eq!(
            verify(&Method::POST, "/other", &h, body, &public),
            Err(VerifyError::Invalid)
        );
        let mut t = h.clone();
        t.insert("x-request-id", HeaderValue::from_static("changed"));
        assert_eq!(
            verify(&Method::POST, path, &t, body, &public),
            Err(VerifyError::Invalid)
        );
        let mut t = h.clone();
        t.remove("signature");
        assert_eq!(
            verify(&Method::POST, path, &t, body, &public),
            Err(VerifyError::Missing)
        );
        // Another key does not verify.
        let (_, other) = key_pem();
        assert_eq!(
            verify(&Method::POST, path, &h, body, &other),
            Err(VerifyError::Invalid)
        );
    }

    #[test]
    fn minimal_header_lists_and_what_must_be_covered() {
        let (pem, public) = key_pem();
        let only = vec!["(request-target)".to_string(), "x-request-id".to_string()];
        let signer = Signer::from_pkcs8_pem(pem.as_bytes(), "k", &only).unwrap();
        let mut h = request();
        h.remove("psu-ip-address");
        // No body: no digest needed.
        signer.sign(&Method::GET, "/x", &mut h, b"").unwrap();
        assert_eq!(
            verify(&Method::GET, "/x", &h, b"", &public)
                .unwrap()
                .headers,
            ["(request-target)", "x-request-id"]
        );
        // A body the signature does not cover is refused.
        let mut h2 = request();
        h2.remove("psu-ip-address");
        signer.sign(&Method::POST, "/x", &mut h2, b"").unwrap();
        h2.insert(
            "digest",
            HeaderValue::from_str(&digest_header(b"{}")).unwrap(),
        );
        assert_eq!(
            verify(&Method::POST, "/x", &h2, b"{}", &public),
            Err(VerifyError::NotCovered("digest"))
        );
        // No X-Request-ID: refuse to sign.
        let mut h3 = HeaderMap::new();
        assert!(matches!(
            signer.sign(&Method::GET, "/x", &mut h3, b""),
            Err(SignError::MissingHeader(_))
        ));
    }

    #[test]
    fn malformed_signature_headers() {
        assert!(matches!(
            parse_signature("keyId=abc"),
            Err(VerifyError::Malformed(_))
        ));
        assert!(matches!(
            parse_signature(r#"keyId="a",signature="!!""#),
            Err(VerifyError::Malformed(_))
        ));
        let p = parse_signature(r#"keyId="a", algorithm="rsa-sha256", headers="(request-target) Date", signature="AAAA""#).unwrap();
        assert_eq!(p.headers, ["(request-target)", "date"]);
    }
}

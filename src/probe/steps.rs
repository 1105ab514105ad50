//! The probe steps against one establishment — token, funds confirmation (STET 1.4.0/1.4.2),
//! fallback, customer page — and the classification of each answer into an outcome
//! (methodology section 2). A funds confirmation uses a cached access token, fetched (and
//! recorded as a `token` observation) when missing or about to expire.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use serde_json::Value;
use tokio::sync::Mutex;

use super::http::{Endpoint, NoReply, Reply};
use crate::config::{Establishment, Grant, Probe, Step};
use crate::domain::{
    EstablishmentCode, Interface, NoReplyKind, Observation, Outcome, Service, Source,
};
use crate::stet::models::{AUTHORIZE_PATH, StetError, StetVersion, TOKEN_PATH, TokenResponse};
use crate::stet::signing::Signer;
use crate::store::StoredObservation;

/// Refresh the access token this long before it expires.
const REFRESH_MARGIN_MS: i64 = 60_000;
/// A refresh token the bank refused (400) is tried again after this long, then twice as long
/// after each refusal, up to [`REFRESH_RETRY_MAX`]; a renewed `refresh_token_file` at once.
const REFRESH_RETRY_FIRST: Duration = Duration::from_secs(5);
const REFRESH_RETRY_MAX: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
struct CachedToken {
    access: String,
    expires_at_ms: i64,
}

/// What a running monitor knows about an establishment.
pub struct Target {
    pub est: Establishment,
    /// The monitor's id: every observation of this target is recorded under it.
    pub vantage: crate::domain::Vantage,
    pub api: Endpoint,
    pub psu: Option<Endpoint>,
    pub signer: Signer,
    tokens: Mutex<std::collections::HashMap<String, CachedToken>>,
    /// The customer refresh token (refresh or authorization-code grants); never logged.
    refresh: Mutex<Refresh>,
}

/// The customer refresh token, and whether the bank refused it.
#[derive(Default)]
struct Refresh {
    token: Option<String>,
    refused: Option<Refused>,
}

/// The bank answered 400 to the refresh grant: the token is kept and tried again after a
/// backoff (a passing refusal must not stop probing for good); meanwhile the probes are the
/// monitor's own error (not covered, alerted as `probe_error`).
struct Refused {
    /// When the same token may be tried again.
    retry_at: tokio::time::Instant,
    /// The wait before that try (doubled by the next refusal).
    backoff: Duration,
    /// The configured token (file or environment) when refused: a changed one is tried at once.
    source: Option<String>,
    /// What the bank said (status, code, text).
    why: String,
}

/// The refresh token as configured now (`refresh_token_file`, else `refresh_token_env`).
fn refresh_source(est: &Establishment) -> Option<String> {
    est.refresh_token_file
        .as_ref()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| {
            est.refresh_token_env
                .as_ref()
                .and_then(|v| std::env::var(v).ok())
        })
}

/// A refresh token the bank rotated replaces the old one in `refresh_token_file` (written beside
/// it, synced, then renamed over it, mode 0600), so a restart does not present the revoked one.
/// A token from `refresh_token_env` cannot be kept: said once, with what to do.
fn keep_rotated(est: &Establishment, token: &str) {
    let Some(path) = &est.refresh_token_file else {
        if est.refresh_token_env.is_some() {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                tracing::warn!(establishment = %est.code, "the bank rotated the refresh token: kept in memory only, since refresh_token_env cannot be rewritten (a restart would present the revoked one): use refresh_token_file");
            });
        }
        return;
    };
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".new");
        let tmp = std::path::PathBuf::from(tmp);
        let mut f = crate::files::create_private(&tmp)?;
        f.write_all(token.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    match write() {
        Ok(()) => {
            tracing::info!(establishment = %est.code, file = %path.display(), "the bank rotated the refresh token: kept in the token file")
        }
        Err(e) => {
            tracing::error!(establishment = %est.code, file = %path.display(), error = %e, "the bank rotated the refresh token and it cannot be kept in the token file: a restart would present the revoked one")
        }
    }
}

/// Token metadata worth keeping (never the token itself).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenEvent {
    pub establishment: EstablishmentCode,
    pub grant: &'static str,
    pub scope: String,
    pub obtained_at_ms: i64,
    pub expires_at_ms: Option<i64>,
    pub has_refresh_token: bool,
    /// First 12 hex digits of the SHA-256 of the access token, to tell tokens apart.
    pub fingerprint: String,
}

/// What one run of a step produced.
#[derive(Debug, Default)]
pub struct StepResult {
    pub observations: Vec<StoredObservation>,
    pub tokens: Vec<TokenEvent>,
}

impl StepResult {
    /// The outcome of the step's own request (the last observation).
    pub fn outcome(&self) -> Option<Outcome> {
        self.observations.last().map(|o| o.obs.outcome)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("establishment {code}: {source}")]
    Cert {
        code: String,
        source: crate::stet::certs::CertError,
    },
    #[error("establishment {code}: the QSealC key cannot sign: {source}")]
    Signer {
        code: String,
        source: crate::stet::signing::SignError,
    },
}

impl Target {
    pub fn new(
        est: Establishment,
        vantage: crate::domain::Vantage,
        reuse: bool,
        max_body: usize,
    ) -> Result<Arc<Self>, TargetError> {
        let code = est.code.to_string();
        let tls = super::http::client_config(&est.ca, &est.qwac_cert, &est.qwac_key).map_err(
            |source| TargetError::Cert {
                code: code.clone(),
                source,
            },
        )?;
        let pem = std::fs::read(&est.qseal_key).map_err(|e| TargetError::Cert {
            code: code.clone(),
            source: crate::stet::certs::CertError::Read {
                path: est.qseal_key.clone(),
                source: e,
            },
        })?;
        let signer = Signer::from_pkcs8_pem(&pem, est.key_id.clone(), &est.signed_headers)
            .map_err(|source| TargetError::Signer {
                code: code.clone(),
                source,
            })?;
        let api = Endpoint::new(est.host.clone(), est.port, est.resolve, tls.clone(), reuse)
            .with_max_body(max_body);
        let psu = est.psu_url.as_ref().map(|u| {
            Endpoint::new(
                u.host_str().unwrap_or_default().to_owned(),
                u.port_or_known_default().unwrap_or(443),
                est.resolve,
                tls.clone(),
                reuse,
            )
            .with_max_body(max_body)
        });
        let refresh = Refresh {
            token: refresh_source(&est),
            refused: None,
        };
        Ok(Arc::new(Self {
            est,
            vantage,
            api,
            psu,
            signer,
            tokens: Mutex::new(Default::default()),
            refresh: Mutex::new(refresh),
        }))
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Builds an observation of this target.
#[allow(clippy::too_many_arguments)]
fn observation(
    t: &Target,
    probe: &str,
    interface: Interface,
    service: &str,
    at_ms: i64,
    rid: String,
    result: &Result<Reply, NoReply>,
    outcome: Outcome,
    error_code: Option<String>,
    error_text: Option<String>,
) -> StoredObservation {
    let (status, latency, phases, kind) = match result {
        Ok(r) => (Some(r.status), Some(r.total_ms), Some(r.phases), None),
        Err(n) => (None, None, None, Some(n.kind)),
    };
    let error_text = error_text.or_else(|| result.as_ref().err().map(|n| n.message.clone()));
    let (outcome, error_text) = match result {
        Ok(r) => body_cut(r, outcome, error_text),
        Err(_) => (outcome, error_text),
    };
    StoredObservation {
        obs: Observation {
            received_at_ms: at_ms,
            establishment: t.est.code,
            interface,
            service: Service::new(service)
                .unwrap_or_else(|_| Service::new("other").expect("valid")),
            source: Source::Probe,
            tpp: Some(t.est.client_id.as_str().into()),
            status,
            latency_ms: latency,
            error_code: error_code.map(|c| bank_code(&c).into()),
            request_id: rid.into(),
            outcome,
            vantage: t.vantage.clone(),
        },
        error_text: error_text.map(|s| s.chars().take(500).collect()),
        no_reply_kind: kind,
        probe_id: Some(format!("{probe}@{}", t.est.code)),
        phases,
        synthetic: false,
    }
}

/// An answer whose body went past `max_body_bytes` was read no further: whatever its status
/// promised, it is `unexpected` (a 5xx stays the bank's error), and the error text says why.
fn body_cut(r: &Reply, outcome: Outcome, text: Option<String>) -> (Outcome, Option<String>) {
    let Some(limit) = r.body_cut else {
        return (outcome, text);
    };
    let why = format!(
        "the answer's body exceeds max_body_bytes ({limit} bytes): reading stopped after \
         {} bytes, {:.0} ms after the request",
        r.body.len(),
        r.total_ms
    );
    match outcome {
        Outcome::AspspError => (outcome, Some(why)),
        _ => (Outcome::Unexpected, Some(why)),
    }
}

/// Longest error code kept from a bank's answer: STET codes have 4 characters, OAuth error
/// names about 20; a hostile answer's megabyte "code" must not fill the database.
const MAX_BANK_CODE_CHARS: usize = 35;

/// An error code as the bank gave it, without control characters, cut to
/// [`MAX_BANK_CODE_CHARS`] (then ending in `…`).
fn bank_code(c: &str) -> String {
    let clean: String = c.chars().filter(|ch| !ch.is_control()).collect();
    if clean.chars().count() <= MAX_BANK_CODE_CHARS {
        return clean;
    }
    let mut cut: String = clean.chars().take(MAX_BANK_CODE_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// The STET/CFONB code and message of an error answer, if its body is a STET error.
fn stet_error(r: &Reply) -> (Option<String>, Option<String>) {
    match serde_json::from_slice::<StetError>(&r.body) {
        Ok(e) => (
            e.code().map(|c| c.as_str().to_owned()).or(e.error.clone()),
            Some(e.message),
        ),
        Err(_) => {
            // OAuth errors (RFC 6749) name themselves in `error`.
            let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            (
                v["error"].as_str().map(str::to_owned),
                v["error_description"].as_str().map(str::to_owned),
            )
        }
    }
}

/// Outcome, STET code and error text of one answer.
type Judged = (Outcome, Option<String>, Option<String>);

/// Judges a step's answer: the expected status, checked by `check` (`ok`, or `unexpected` with
/// the reason); any other status below 400 `unexpected`; errors by their status and STET code;
/// no answer `no_reply`.
fn judge(
    result: &Result<Reply, NoReply>,
    expected: impl Fn(u16) -> bool,
    check: impl FnOnce(&Reply) -> Result<(), String>,
) -> Judged {
    match result {
        Ok(r) if expected(r.status) => match check(r) {
            Ok(()) => (Outcome::Ok, None, None),
            Err(why) => (Outcome::Unexpected, None, Some(why)),
        },
        Ok(r) if r.status < 400 => (
            Outcome::Unexpected,
            None,
            Some(format!("unexpected status {}", r.status)),
        ),
        Ok(r) => by_status(r),
        Err(_) => (Outcome::NoReply, None, None),
    }
}

/// The outcome of an answer that is not the expected success.
fn by_status(r: &Reply) -> Judged {
    let (code, text) = stet_error(r);
    (
        Outcome::from_reply(Some(r.status), code.as_deref()),
        code,
        text,
    )
}

fn form_request(
    t: &Target,
    path: &str,
    fields: &[(&str, &str)],
    fallback: bool,
    rid: &str,
) -> http::Request<Full<Bytes>> {
    let body = serde_urlencoded::to_string(fields).unwrap_or_default();
    let mut b = http::Request::post(path)
        .header(http::header::HOST, t.api.authority())
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header("x-request-id", rid);
    if fallback {
        b = b.header("fallback", "1");
    }
    b.body(Full::new(Bytes::from(body))).unwrap_or_default()
}

/// Runs one step once.
pub async fn run(t: &Target, probe: &Probe, timeout: Duration) -> StepResult {
    let mut out = StepResult::default();
    match &probe.step {
        Step::Token => {
            let scope = "cbpii";
            fetch_token(t, probe, scope, timeout, &mut out).await;
        }
        Step::FundsConfirmation {
            stet,
            iban,
            amount,
            expect,
        } => {
            let scope = stet.scope();
            let token = {
                let cached = t.tokens.lock().await.get(scope).cloned();
                match cached {
                    Some(c) if c.expires_at_ms - REFRESH_MARGIN_MS > now_ms() => Some(c.access),
                    _ => fetch_token(t, probe, scope, timeout, &mut out).await,
                }
            };
            let Some(token) = token else { return out };
            let o = funds(
                t,
                probe,
                *stet,
                iban.as_str(),
                &amount.to_string(),
                *expect,
                &token,
                timeout,
            )
            .await;
            if o.obs.status == Some(401) {
                // The bank no longer accepts the token: fetch a new one next time.
                t.tokens.lock().await.remove(scope);
            }
            out.observations.push(o);
        }
        Step::Fallback => {
            let rid = new_request_id();
            let at = now_ms();
            let req = form_request(
                t,
                TOKEN_PATH,
                &[
                    ("client_id", &t.est.client_id),
                    ("grant_type", "client_credentials"),
                    ("scope", "cbpii"),
                ],
                true,
                &rid,
            );
            let result = t.api.send(req, timeout).await;
            let (outcome, code, text) = judge(
                &result,
                |s| s == 302,
                |r| {
                    let loc = r
                        .headers
                        .get(http::header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    let jwt = url::Url::parse(loc).ok().and_then(|u| {
                        u.query_pairs()
                            .find(|(k, _)| k == "fallback")
                            .map(|(_, v)| v.into_owned())
                    });
                    match jwt {
                        Some(j) if j.split('.').count() == 3 => Ok(()),
                        _ => Err("302 without a fallback=<JWT> in Location".into()),
                    }
                },
            );
            out.observations.push(observation(
                t,
                &probe.name,
                Interface::Fallback,
                Service::FALLBACK,
                at,
                rid,
                &result,
                outcome,
                code,
                text,
            ));
        }
        Step::Psu { marker } => {
            let Some(ep) = &t.psu else { return out };
            let url = t.est.psu_url.as_ref().map(|u| {
                let mut s = u.path().to_owned();
                if let Some(q) = u.query() {
                    s.push('?');
                    s.push_str(q);
                }
                s
            });
            let rid = new_request_id();
            let at = now_ms();
            let req = http::Request::get(url.unwrap_or_else(|| "/".into()))
                .header(http::header::HOST, ep.authority())
                .header("x-request-id", &rid)
                .body(Full::new(Bytes::new()))
                .unwrap_or_default();
            let result = ep.send(req, timeout).await;
            let (outcome, code, text) = judge(
                &result,
                |s| (200..300).contains(&s),
                |r| {
                    if String::from_utf8_lossy(&r.body).contains(marker.as_str()) {
                        Ok(())
                    } else {
                        Err(format!("the page lacks the marker {marker:?}"))
                    }
                },
            );
            out.observations.push(observation(
                t,
                &probe.name,
                Interface::PsuWeb,
                Service::PSU_LOGIN,
                at,
                rid,
                &result,
                outcome,
                code,
                text,
            ));
        }
    }
    out
}

/// Gets an access token by the probe's grant, records the token request, caches the token.
async fn fetch_token(
    t: &Target,
    probe: &Probe,
    scope: &str,
    timeout: Duration,
    out: &mut StepResult,
) -> Option<String> {
    if let Grant::AuthorizationCode { login, sms_code } = &probe.grant
        && t.refresh.lock().await.token.is_none()
    {
        authorization_code(t, probe, scope, login, sms_code, timeout, out).await?;
    }
    let refresh = {
        let mut g = t.refresh.lock().await;
        if matches!(probe.grant, Grant::RefreshToken) {
            // A refused token renewed by the operator (or one configured late) is tried now; a
            // token the bank rotated is kept over the file's older one.
            let source = refresh_source(&t.est);
            let renewed = source.is_some()
                && match &g.refused {
                    None => g.token.is_none(),
                    Some(r) => r.source != source && source != g.token,
                };
            match &g.refused {
                _ if renewed => {
                    g.token = source;
                    g.refused = None;
                }
                Some(r) if tokio::time::Instant::now() < r.retry_at => {
                    let left = r.retry_at - tokio::time::Instant::now();
                    let why = format!(
                        "the bank refused the refresh token ({}): no access token; tried again in {:.0} s \
                         (backoff {:.0} s), or as soon as refresh_token_file changes",
                        r.why,
                        left.as_secs_f64().ceil(),
                        r.backoff.as_secs_f64()
                    );
                    drop(g);
                    out.observations.push(probe_error(t, probe, &why));
                    return None;
                }
                _ => {}
            }
        }
        g.token.clone()
    };
    let (grant, fields): (&'static str, Vec<(&str, String)>) = match (&probe.grant, refresh) {
        (Grant::ClientCredentials, _) => (
            "client_credentials",
            vec![
                ("grant_type", "client_credentials".into()),
                ("client_id", t.est.client_id.clone()),
                ("scope", scope.into()),
            ],
        ),
        (_, Some(rt)) => (
            "refresh_token",
            vec![
                ("grant_type", "refresh_token".into()),
                ("refresh_token", rt),
                ("client_id", t.est.client_id.clone()),
            ],
        ),
        (_, None) => {
            out.observations.push(probe_error(
                t,
                probe,
                "no refresh token: set refresh_token_file or refresh_token_env",
            ));
            return None;
        }
    };
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    token_exchange(t, probe, grant, scope, &pairs, timeout, out).await
}

async fn token_exchange(
    t: &Target,
    probe: &Probe,
    grant: &'static str,
    scope: &str,
    fields: &[(&str, &str)],
    timeout: Duration,
    out: &mut StepResult,
) -> Option<String> {
    let rid = new_request_id();
    let at = now_ms();
    let result = t
        .api
        .send(form_request(t, TOKEN_PATH, fields, false, &rid), timeout)
        .await;
    let mut token = None;
    let mut refused_now: Option<Duration> = None;
    let (outcome, code, text) = match &result {
        Ok(r) if r.status == 200 => match serde_json::from_slice::<TokenResponse>(&r.body) {
            Ok(tr) if !tr.access_token.is_empty() => {
                let expires_at_ms = tr.expires_in.map(|s| at + s as i64 * 1000);
                out.tokens.push(TokenEvent {
                    establishment: t.est.code,
                    grant,
                    scope: scope.into(),
                    obtained_at_ms: at,
                    expires_at_ms,
                    has_refresh_token: tr.refresh_token.is_some(),
                    fingerprint: fingerprint(&tr.access_token),
                });
                {
                    let mut g = t.refresh.lock().await;
                    if grant == "refresh_token" {
                        g.refused = None;
                    }
                    if let Some(rt) = &tr.refresh_token
                        && g.token.as_deref() != Some(rt.as_str())
                    {
                        g.token = Some(rt.clone());
                        keep_rotated(&t.est, rt);
                    }
                }
                t.tokens.lock().await.insert(
                    scope.to_owned(),
                    CachedToken {
                        access: tr.access_token.clone(),
                        expires_at_ms: expires_at_ms.unwrap_or(at + 3_600_000),
                    },
                );
                token = Some(tr.access_token);
                (Outcome::Ok, None, None)
            }
            _ => (
                Outcome::Unexpected,
                None,
                Some("200 without a valid token answer".into()),
            ),
        },
        Ok(r) => {
            let judged = by_status(r);
            if r.status == 400 && grant == "refresh_token" {
                let mut g = t.refresh.lock().await;
                if let Grant::AuthorizationCode { .. } = probe.grant {
                    // A new one by the authorization code next time.
                    g.token = None;
                } else {
                    // Kept and tried again after a backoff: a passing refusal must not stop
                    // probing for good. Until then the probes are the monitor's own error.
                    let backoff = g.refused.as_ref().map_or(REFRESH_RETRY_FIRST, |r| {
                        (r.backoff * 2).min(REFRESH_RETRY_MAX)
                    });
                    let why: String = format!(
                        "400 {} {}",
                        judged.1.as_deref().unwrap_or(""),
                        judged.2.as_deref().unwrap_or("")
                    )
                    .trim()
                    .chars()
                    .take(200)
                    .collect();
                    tracing::warn!(establishment = %t.est.code, backoff_s = backoff.as_secs_f64(), reason = %why, "the bank refused the refresh token; tried again after the backoff");
                    g.refused = Some(Refused {
                        retry_at: tokio::time::Instant::now() + backoff,
                        backoff,
                        source: refresh_source(&t.est),
                        why,
                    });
                    refused_now = Some(backoff);
                }
            }
            judged
        }
        Err(_) => (Outcome::NoReply, None, None),
    };
    out.observations.push(observation(
        t,
        &probe.name,
        Interface::Api,
        Service::TOKEN,
        at,
        rid,
        &result,
        outcome,
        code,
        text,
    ));
    if let Some(backoff) = refused_now {
        // Nothing else can be sent without a token: the monitor's own error from here.
        out.observations.push(probe_error(
            t,
            probe,
            &format!(
                "the bank refused the refresh token: no access token; tried again in {:.0} s, or as \
                 soon as refresh_token_file changes",
                backoff.as_secs_f64()
            ),
        ));
    }
    token
}

/// The sandbox's authorization-code flow: the persona logs in and consents, the code comes back
/// on the redirect, then it is exchanged for a token pair.
#[allow(clippy::too_many_arguments)]
async fn authorization_code(
    t: &Target,
    probe: &Probe,
    scope: &str,
    login: &str,
    sms: &str,
    timeout: Duration,
    out: &mut StepResult,
) -> Option<()> {
    let redirect = "https://dispo.invalid/callback";
    let rid = new_request_id();
    let at = now_ms();
    let fields = [
        ("response_type", "code"),
        ("client_id", t.est.client_id.as_str()),
        ("redirect_uri", redirect),
        ("scope", scope),
        ("state", "dispo"),
        ("login", login),
        ("sms_code", sms),
    ];
    let result = t
        .api
        .send(
            form_request(t, AUTHORIZE_PATH, &fields, false, &rid),
            timeout,
        )
        .await;
    let code = match &result {
        Ok(r) if r.status == 302 => r
            .headers
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| url::Url::parse(l).ok())
            .and_then(|u| {
                u.query_pairs()
                    .find(|(k, _)| k == "code")
                    .map(|(_, v)| v.into_owned())
            }),
        _ => None,
    };
    let (outcome, ecode, text) = match (&result, &code) {
        (Ok(_), Some(_)) => (Outcome::Ok, None, None),
        (Ok(r), None) if r.status < 400 => (
            Outcome::Unexpected,
            None,
            Some("no code in the redirect".into()),
        ),
        (Ok(r), None) => by_status(r),
        (Err(_), _) => (Outcome::NoReply, None, None),
    };
    out.observations.push(observation(
        t,
        &probe.name,
        Interface::Api,
        Service::AUTHORIZE,
        at,
        rid,
        &result,
        outcome,
        ecode,
        text,
    ));
    let code = code?;
    let fields = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect),
        ("client_id", t.est.client_id.as_str()),
    ];
    token_exchange(t, probe, "authorization_code", scope, &fields, timeout, out)
        .await
        .map(|_| ())
}

#[allow(clippy::too_many_arguments)]
async fn funds(
    t: &Target,
    probe: &Probe,
    stet: StetVersion,
    iban: &str,
    amount: &str,
    expect: bool,
    token: &str,
    timeout: Duration,
) -> StoredObservation {
    let rid = new_request_id();
    let body = serde_json::json!({
        "paymentCoverageRequestId": format!("dispo-{}", &rid[..8]),
        "instructedAmount": {"currency": "EUR", "amount": amount},
        "accountId": {"iban": iban},
    });
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let path = stet.funds_path();
    let mut headers = http::HeaderMap::new();
    let hv = |s: &str| {
        http::HeaderValue::from_str(s).unwrap_or_else(|_| http::HeaderValue::from_static(""))
    };
    headers.insert(http::header::HOST, hv(&t.api.authority()));
    headers.insert("x-request-id", hv(&rid));
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    headers.insert(http::header::AUTHORIZATION, hv(&format!("Bearer {token}")));
    if let Some(ip) = &t.est.psu_ip_address {
        headers.insert("psu-ip-address", hv(ip));
    }
    if let Err(e) = t
        .signer
        .sign(&http::Method::POST, path, &mut headers, &bytes)
    {
        return probe_error(t, probe, &format!("cannot sign the request: {e}"));
    }
    let mut req = http::Request::post(path)
        .body(Full::new(Bytes::from(bytes)))
        .unwrap_or_default();
    *req.headers_mut() = headers;
    let at = now_ms();
    let result = t.api.send(req, timeout).await;
    let (outcome, code, text) = judge(
        &result,
        |s| s == 200,
        |r| check_answer(&r.body, &body, expect),
    );
    observation(
        t,
        &probe.name,
        Interface::Api,
        Service::CBPII,
        at,
        rid,
        &result,
        outcome,
        code,
        text,
    )
}

/// A 200 must echo the request, carry a boolean `result` equal to the known answer, and
/// `_links.self.href`.
pub fn check_answer(body: &[u8], sent: &Value, expect: bool) -> Result<(), String> {
    let v: Value = serde_json::from_slice(body).map_err(|_| "the body is not JSON".to_string())?;
    let result = v
        .get("result")
        .and_then(Value::as_bool)
        .ok_or("no boolean `result`")?;
    if v.get("request") != Some(sent) {
        return Err("`request` does not echo the request sent".into());
    }
    if v.pointer("/_links/self/href")
        .and_then(Value::as_str)
        .is_none()
    {
        return Err("no `_links.self.href`".into());
    }
    if result != expect {
        return Err(format!(
            "known account answered {result}, expected {expect}"
        ));
    }
    Ok(())
}

/// The monitor's own fault: recorded, excluded from every figure.
pub fn probe_error(t: &Target, probe: &Probe, why: &str) -> StoredObservation {
    let err: Result<Reply, NoReply> = Err(NoReply {
        kind: NoReplyKind::Other,
        message: why.into(),
        elapsed_ms: 0.0,
    });
    // Of the series the probe observes: its coverage is what the error interrupts.
    let service = match &probe.step {
        Step::Token => Service::TOKEN,
        Step::FundsConfirmation { .. } => Service::CBPII,
        Step::Fallback => Service::FALLBACK,
        Step::Psu { .. } => Service::PSU_LOGIN,
    };
    let mut o = observation(
        t,
        &probe.name,
        probe.step.interface(),
        service,
        now_ms(),
        new_request_id(),
        &err,
        Outcome::ProbeError,
        None,
        Some(why.into()),
    );
    o.no_reply_kind = None;
    o
}

fn fingerprint(token: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bank_error_code_is_cut_and_cleaned() {
        assert_eq!(bank_code("INTS"), "INTS");
        assert_eq!(bank_code("invalid_grant\r\n"), "invalid_grant");
        let huge = bank_code(&"C".repeat(900_000));
        assert_eq!(huge.chars().count(), 35);
        assert!(huge.ends_with("C…"));
    }

    #[test]
    fn answers_are_checked_against_the_known_result() {
        let sent = serde_json::json!({"paymentCoverageRequestId": "x"});
        let ok = serde_json::json!({"request": sent, "result": true, "_links": {"self": {"href": "/p"}}});
        assert_eq!(check_answer(ok.to_string().as_bytes(), &sent, true), Ok(()));
        assert!(
            check_answer(ok.to_string().as_bytes(), &sent, false)
                .unwrap_err()
                .contains("expected false")
        );
        let no_links = serde_json::json!({"request": sent, "result": true});
        assert!(check_answer(no_links.to_string().as_bytes(), &sent, true).is_err());
        let wrong_echo =
            serde_json::json!({"request": {}, "result": true, "_links": {"self": {"href": "/p"}}});
        assert!(
            check_answer(wrong_echo.to_string().as_bytes(), &sent, true)
                .unwrap_err()
                .contains("echo")
        );
        assert!(check_answer(b"<html>", &sent, true).is_err());
    }

    #[test]
    fn a_cut_body_makes_the_probe_unexpected_and_says_why() {
        let reply = |status, cut: Option<usize>| Reply {
            status,
            headers: http::HeaderMap::new(),
            body: Bytes::from(vec![b'x'; 1 << 20]),
            body_cut: cut,
            phases: crate::domain::Phases::default(),
            total_ms: 1234.4,
        };
        let limit = Some(1 << 20);
        let (o, text) = body_cut(&reply(200, limit), Outcome::Ok, None);
        assert_eq!(o, Outcome::Unexpected);
        assert_eq!(
            text.as_deref(),
            Some(
                "the answer's body exceeds max_body_bytes (1048576 bytes): reading stopped \
                 after 1048576 bytes, 1234 ms after the request"
            )
        );
        let (o, _) = body_cut(&reply(404, limit), Outcome::Rejected, None);
        assert_eq!(o, Outcome::Unexpected);
        let (o, text) = body_cut(&reply(503, limit), Outcome::AspspError, None);
        assert_eq!(o, Outcome::AspspError);
        assert!(text.unwrap().contains("max_body_bytes"));
        // Within the limit nothing changes.
        assert_eq!(
            body_cut(&reply(200, None), Outcome::Ok, None),
            (Outcome::Ok, None)
        );
    }
}

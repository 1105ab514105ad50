//! The simulated bank's endpoints: OAuth2 (authorize, token, revoke), funds confirmation in STET
//! 1.4.0 and 1.4.2, the fallback (302 to online banking with a signed JWT), and the customer
//! online-banking page the statistics compare against.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde_json::{Value, json};

use super::bank::{self, AccessGrant, AccountStatus, CodeGrant};
use super::{Ctx, SimState, now_ms};
use crate::domain::{Amount, Iban, Interface};
use crate::stet::models::{
    ErrorCode, FundsConfirmationResponse, Href, SelfLink, StetError, StetVersion, TokenResponse,
};
use crate::stet::signing;

/// The scopes this bank knows.
pub const KNOWN_SCOPES: &[&str] = &[
    "aisp",
    "pisp",
    "piisp",
    "cbpii",
    "extended_transaction_history",
];

/// Text present on the customer online-banking page: what a `psu` probe checks.
pub const PSU_MARKER: &str = "Espace client Banque Populaire";

/// A STET error answer (`ErrorModel`), the bank's short code in `error` and `message`.
pub fn stet_error(status: u16, code: Option<ErrorCode>, message: &str, path: &str) -> Response {
    let body = StetError {
        timestamp: Some(
            chrono::Utc::now()
                .format("%Y-%m-%dT%H:%M:%S%.3f%z")
                .to_string(),
        ),
        status,
        error: code.map(|c| c.as_str().to_owned()),
        message: match code {
            Some(c) => format!("{} : {}", c.as_str(), message),
            None => message.to_owned(),
        }
        .chars()
        .take(140)
        .collect(),
        path: Some(path.chars().take(140).collect()),
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        axum::Json(body),
    )
        .into_response()
}

pub fn code_error(code: ErrorCode, path: &str) -> Response {
    stet_error(code.http_status(), Some(code), code.description(), path)
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn token_json(t: TokenResponse) -> Response {
    (
        StatusCode::OK,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        axum::Json(t),
    )
        .into_response()
}

fn scopes(s: Option<&String>) -> Result<Vec<String>, Box<Response>> {
    let list: Vec<String> = s
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let refuse = |why: &str| Box::new(oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", why));
    if list.is_empty() {
        return Err(refuse("scope is required"));
    }
    if let Some(bad) = list.iter().find(|s| !KNOWN_SCOPES.contains(&s.as_str())) {
        return Err(refuse(&format!("unknown scope {bad}")));
    }
    Ok(list)
}

/// `POST /stet/psd2/oauth/token`: client credentials, authorization code, refresh token; with
/// `fallback: 1`, the contingency access.
pub async fn token(
    State(st): State<Arc<SimState>>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> Response {
    let form: HashMap<String, String> = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the body must be form-encoded",
            );
        }
    };
    let Some(client_id) = form.get("client_id") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id is required",
        );
    };
    if ctx.org_id.as_deref() != Some(client_id.as_str()) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_id must be the organization identifier of the client certificate",
        );
    }
    if ctx.interface == Interface::Fallback {
        return fallback(&st, &ctx, client_id, form.get("scope"));
    }
    let now = now_ms();
    let mut bank = st.bank(&ctx.code);
    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {
            let scope = match scopes(form.get("scope")) {
                Ok(s) => s,
                Err(r) => return *r,
            };
            let access = bank.issue_access(AccessGrant {
                client_id: client_id.clone(),
                scope: scope.clone(),
                expires_at_ms: now + bank::ACCESS_TOKEN_S * 1000,
                customer: None,
                accounts: None,
                pair: None,
            });
            token_json(TokenResponse {
                access_token: access,
                token_type: "Bearer".into(),
                expires_in: Some(bank::ACCESS_TOKEN_S as u64),
                refresh_token: None,
                scope: Some(scope.join(" ")),
            })
        }
        Some("authorization_code") => {
            let (Some(code), Some(redirect)) = (form.get("code"), form.get("redirect_uri")) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "code and redirect_uri are required",
                );
            };
            // Single use: removed whatever happens next.
            let Some(g) = bank.codes.remove(code) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "unknown or already used code",
                );
            };
            if g.expires_at_ms < now {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the code has expired",
                );
            }
            if &g.redirect_uri != redirect || &g.client_id != client_id {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "redirect_uri or client_id differ from the authorization request",
                );
            }
            let (access, refresh) =
                bank.issue_pair(client_id, g.scope.clone(), &g.customer, g.accounts, now);
            token_json(TokenResponse {
                access_token: access,
                token_type: "Bearer".into(),
                expires_in: Some(bank::ACCESS_TOKEN_S as u64),
                refresh_token: Some(refresh),
                scope: Some(g.scope.join(" ")),
            })
        }
        Some("refresh_token") => {
            let Some(rt) = form.get("refresh_token") else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "refresh_token is required",
                );
            };
            let Some(r) = bank.refresh.get(rt).cloned() else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "unknown or revoked refresh token",
                );
            };
            if r.expires_at_ms < now {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the refresh token has expired",
                );
            }
            if &r.client_id != client_id {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the refresh token was issued to another client",
                );
            }
            bank.access.remove(&r.access_token);
            let access = bank.issue_access(AccessGrant {
                client_id: client_id.clone(),
                scope: r.scope.clone(),
                expires_at_ms: now + bank::ACCESS_TOKEN_S * 1000,
                customer: Some(r.customer.clone()),
                accounts: Some(r.accounts.clone()),
                pair: Some(r.pair),
            });
            // Rotation (RFC 9700 4.14.2): each refresh answers a new refresh token and revokes
            // the one used, so a client that forgets the new one is locked out at its restart.
            let rotated = bank::new_token();
            if let Some(mut stored) = bank.refresh.remove(rt) {
                stored.access_token = access.clone();
                bank.refresh.insert(rotated.clone(), stored);
            }
            token_json(TokenResponse {
                access_token: access,
                token_type: "Bearer".into(),
                expires_in: Some(bank::ACCESS_TOKEN_S as u64),
                refresh_token: Some(rotated),
                scope: Some(r.scope.join(" ")),
            })
        }
        Some(other) => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("grant_type {other} is not supported"),
        ),
        None => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "grant_type is required",
        ),
    }
}

/// The fallback: 302 to online banking with a `fallback=<JWT>` parameter.
fn fallback(st: &SimState, ctx: &Ctx, client_id: &str, scope: Option<&String>) -> Response {
    let now = now_ms() / 1000;
    let claims = json!({
        "iss": "dispo-simulator",
        "sub": client_id,
        "cdetab": ctx.code,
        "scope": scope.cloned().unwrap_or_default(),
        "iat": now,
        "exp": now + 300,
        "jti": bank::new_token(),
    });
    let jwt = st.sign_jwt(&claims);
    let location = format!(
        "https://{}:{}/se-connecter/sso?service=cyber&cdetab={}&fallback={}",
        super::pki::psu_host(&ctx.code),
        st.port(),
        ctx.code,
        jwt
    );
    let body = format!(
        "<!DOCTYPE html><html><head><title>302 Found</title></head><body><h1>Found</h1><p>The document has moved <a href=\"{location}\">here</a>.</p></body></html>"
    );
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CONTENT_TYPE, "text/html; charset=utf-8".into()),
        ],
        body,
    )
        .into_response()
}

/// `POST /stet/psd2/oauth/revoke` (RFC 7009): revokes a token and its pair.
pub async fn revoke(
    State(st): State<Arc<SimState>>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> Response {
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    match form.get("token") {
        Some(t) => {
            st.bank(&ctx.code).revoke(t);
            StatusCode::OK.into_response()
        }
        None => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is required",
        ),
    }
}

/// `GET /stet/psd2/oauth/authorize`: the sandbox login page.
pub async fn authorize_page(Query(q): Query<HashMap<String, String>>) -> Response {
    if q.get("response_type").map(String::as_str) != Some("code") {
        return (
            StatusCode::BAD_REQUEST,
            Html("<p>response_type=code is required</p>".to_string()),
        )
            .into_response();
    }
    let hidden: String = ["client_id", "redirect_uri", "scope", "state"]
        .iter()
        .map(|k| {
            format!(
                "<input type=\"hidden\" name=\"{k}\" value=\"{}\">",
                html_escape(q.get(*k).map(String::as_str).unwrap_or(""))
            )
        })
        .collect();
    Html(format!(
        "<!DOCTYPE html><html lang=\"fr\"><head><meta charset=\"utf-8\"><title>Authentification</title></head><body>\
         <h1>Banque Populaire — authentification (bac à sable)</h1>\
         <form method=\"post\"><input type=\"hidden\" name=\"response_type\" value=\"code\">{hidden}\
         <label>Identifiant <input name=\"login\"></label>\
         <label>Code SMS <input name=\"sms_code\"></label>\
         <label>Comptes consentis (IBAN, séparés par des virgules; vide = tous) <input name=\"accounts\"></label>\
         <button>Valider</button></form></body></html>"
    ))
    .into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `POST /stet/psd2/oauth/authorize`: the customer's login and consent; redirects back with a
/// single-use code.
pub async fn authorize_submit(
    State(st): State<Arc<SimState>>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> Response {
    let f: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    let (client_id, redirect, login) = (get("client_id"), get("redirect_uri"), get("login"));
    if client_id.is_empty() || redirect.is_empty() || url::Url::parse(redirect).is_err() {
        return (
            StatusCode::BAD_REQUEST,
            Html("<p>client_id and an absolute redirect_uri are required</p>".to_string()),
        )
            .into_response();
    }
    let scope = match scopes(f.get("scope")) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    if bank::persona(login).is_none() || get("sms_code") != bank::SANDBOX_SMS_CODE {
        return (
            StatusCode::UNAUTHORIZED,
            Html("<p>Identifiant ou code SMS incorrect.</p>".to_string()),
        )
            .into_response();
    }
    let mut b = st.bank(&ctx.code);
    let owned = b.persona_accounts(login);
    let wanted: Vec<String> = get("accounts")
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let accounts = if wanted.is_empty() {
        owned.clone()
    } else {
        wanted
    };
    if let Some(x) = accounts.iter().find(|a| !owned.contains(a)) {
        return (
            StatusCode::BAD_REQUEST,
            Html(format!(
                "<p>{} n'est pas un compte du client</p>",
                html_escape(x)
            )),
        )
            .into_response();
    }
    let code = bank::new_token();
    b.codes.insert(
        code.clone(),
        CodeGrant {
            client_id: client_id.into(),
            redirect_uri: redirect.into(),
            scope,
            customer: login.into(),
            accounts,
            expires_at_ms: now_ms() + bank::CODE_S * 1000,
        },
    );
    let mut target = match url::Url::parse(redirect) {
        Ok(u) => u,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    target.query_pairs_mut().append_pair("code", &code);
    if !get("state").is_empty() {
        target.query_pairs_mut().append_pair("state", get("state"));
    }
    (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
}

/// The largest body the bank reads.
pub const MAX_BODY: usize = 1 << 20;

/// `POST /stet/psd2/v1/funds-confirmations` and `/v1.4.2/...`; any other verb answers NIMP.
pub async fn funds(
    State(st): State<Arc<SimState>>,
    Extension(ctx): Extension<Ctx>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let path = uri.path().to_owned();
    let Some(version) = StetVersion::from_path(&path) else {
        return stet_error(404, None, "unknown resource", &path);
    };
    if method != Method::POST {
        let mut r = code_error(ErrorCode::NIMP, &path);
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return stet_error(
                413,
                Some(ErrorCode::FF01),
                "the body is larger than 1 MiB",
                &path,
            );
        }
    };
    // The TPP authenticates itself before each request: token, then signature.
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    let grant = {
        let b = st.bank(&ctx.code);
        bearer.and_then(|t| b.access.get(t).cloned())
    };
    let grant = match grant {
        Some(g)
            if g.expires_at_ms >= now_ms()
                && ctx.org_id.as_deref() == Some(g.client_id.as_str()) =>
        {
            g
        }
        _ => {
            let mut r = stet_error(401, None, "missing, invalid or expired access token", &path);
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            return r;
        }
    };
    let pq = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or(&path)
        .to_owned();
    if let Err(why) = check_signature(&st, &method, &pq, &headers, &body) {
        return stet_error(
            400,
            None,
            &format!("invalid or missing signature: {why}"),
            &path,
        );
    }
    if !grant.scope.iter().any(|s| s == version.scope()) {
        return code_error(ErrorCode::BADS, &path);
    }
    let Ok(raw) = serde_json::from_slice::<Value>(&body) else {
        return code_error(ErrorCode::FF01, &path);
    };
    match decide(&st, &ctx, &grant, &raw) {
        Ok(result) => {
            let answer = FundsConfirmationResponse {
                request: raw,
                result,
                links: SelfLink {
                    self_: Href { href: path.clone() },
                },
            };
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/hal+json; charset=utf-8")],
                axum::Json(answer),
            )
                .into_response()
        }
        Err(code) => code_error(code, &path),
    }
}

fn check_signature(
    st: &SimState,
    method: &Method,
    pq: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), String> {
    let raw = headers
        .get("signature")
        .ok_or("no Signature header")?
        .to_str()
        .map_err(|_| "not ASCII")?;
    let parsed = signing::parse_signature(raw).map_err(|e| e.to_string())?;
    // keyId "SN=<serial hex>,CA=<issuer DN>": matched on the serial.
    let sn = parsed
        .key_id
        .split(',')
        .find_map(|p| p.trim().strip_prefix("SN="))
        .ok_or("keyId must read SN=<serial hex>,CA=<issuer DN>")?;
    let norm = |s: &str| {
        s.trim_start_matches("0x")
            .trim_start_matches('0')
            .to_ascii_lowercase()
    };
    if norm(sn) != norm(&st.qseal.serial_hex) {
        return Err(format!("keyId serial {sn} is not a known QSealC"));
    }
    signing::verify(method, pq, headers, body, &st.qseal.public_key)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Validates the body (FF01 for the shape, AC01 for the account) and answers yes or no.
fn decide(st: &SimState, ctx: &Ctx, grant: &AccessGrant, raw: &Value) -> Result<bool, ErrorCode> {
    let ff01 = ErrorCode::FF01;
    let obj = raw.as_object().ok_or(ff01)?;
    let id = obj
        .get("paymentCoverageRequestId")
        .and_then(Value::as_str)
        .ok_or(ff01)?;
    if id.is_empty() || id.chars().count() > 35 {
        return Err(ff01);
    }
    if let Some(p) = obj.get("payee")
        && p.as_str().is_none_or(|p| p.chars().count() > 70)
    {
        return Err(ff01);
    }
    let amt = obj
        .get("instructedAmount")
        .and_then(Value::as_object)
        .ok_or(ff01)?;
    let currency = amt.get("currency").and_then(Value::as_str).ok_or(ff01)?;
    if currency.parse::<crate::domain::Currency>().is_err() {
        return Err(ff01);
    }
    let amount: Amount = match amt.get("amount") {
        Some(Value::String(s)) => s.parse().map_err(|_| ff01)?,
        Some(Value::Number(n)) => n.to_string().parse().map_err(|_| ff01)?,
        _ => return Err(ff01),
    };
    let acc = obj
        .get("accountId")
        .and_then(Value::as_object)
        .ok_or(ff01)?;
    // This bank answers for the IBAN of a current account only.
    let iban = acc
        .get("iban")
        .and_then(Value::as_str)
        .ok_or(ErrorCode::AC01)?;
    if !Iban::matches_stet_pattern(iban) {
        return Err(ErrorCode::AC01);
    }
    let b = st.bank(&ctx.code);
    let account = b.accounts.get(iban).ok_or(ErrorCode::AC01)?;
    if bank::persona(account.login).is_some_and(|p| p.terminated) {
        return Err(ErrorCode::IPSU);
    }
    match account.status {
        AccountStatus::Closed => return Err(ErrorCode::AC04),
        AccountStatus::Blocked => return Err(ErrorCode::AC06),
        AccountStatus::Open => {}
    }
    if let Some(consented) = &grant.accounts
        && !consented.iter().any(|a| a == iban)
    {
        return Err(ErrorCode::NGAC);
    }
    Ok(currency == "EUR" && amount <= account.available)
}

/// The customer online-banking page (interface `psu_web`).
pub async fn psu_page(Extension(ctx): Extension<Ctx>) -> Response {
    let name = crate::domain::known_establishment(&ctx.code)
        .map(|e| e.name)
        .unwrap_or("Banque Populaire");
    Html(format!(
        "<!DOCTYPE html><html lang=\"fr\"><head><meta charset=\"utf-8\"><title>{PSU_MARKER}</title></head>\
         <body><h1>{PSU_MARKER}</h1><p>{name} — code établissement {}</p>\
         <form method=\"post\"><label>Identifiant <input name=\"login\"></label><button>Se connecter</button></form>\
         </body></html>",
        ctx.code
    ))
    .into_response()
}

/// Signs a JWT (HS256) with the simulator's key.
pub fn sign_jwt(key: &ring::hmac::Key, claims: &Value) -> String {
    let head = B64URL.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = B64URL.encode(claims.to_string());
    let input = format!("{head}.{body}");
    let sig = ring::hmac::sign(key, input.as_bytes());
    format!("{input}.{}", B64URL.encode(sig.as_ref()))
}

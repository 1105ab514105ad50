//! The status page over HTTP (`dispo run --http-listen`): `/` (HTML, `?lang=en`),
//! `/status.json`, `/feed.atom`, and `/health`, ready (200) when the store takes writes and
//! probes run, 503 otherwise with a short body saying why.

use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::service::StatusService;
use crate::domain::CoverageKind;
use crate::probe::daemon::WriterHealth;
use crate::report::Lang;
use crate::store::Store;

#[derive(Debug, serde::Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

impl LangQuery {
    /// French unless `en` is asked for.
    fn lang(&self) -> Lang {
        match self.lang.as_deref() {
            Some(l) if l.eq_ignore_ascii_case("en") => Lang::En,
            _ => Lang::Fr,
        }
    }
}

/// `/`, `/status.json` and `/feed.atom`.
pub fn router(status: StatusService) -> Router {
    let (s1, s2, s3) = (status.clone(), status.clone(), status);
    Router::new()
        .route(
            "/",
            get(move |q: Query<LangQuery>| async move {
                match s1.page().await {
                    Ok(p) => {
                        let json = super::json::to_json(&p);
                        let rev = json["revision"].as_str().unwrap_or_default().to_owned();
                        reply(
                            "text/html; charset=utf-8",
                            super::html::render(&p, q.lang(), &rev),
                        )
                    }
                    Err(e) => unavailable(&e),
                }
            }),
        )
        .route(
            "/status.json",
            get(move || async move {
                match s2.page().await {
                    Ok(p) => reply("application/json", super::json::to_json(&p).to_string()),
                    Err(e) => unavailable(&e),
                }
            }),
        )
        .route(
            "/feed.atom",
            get(move |q: Query<LangQuery>| async move {
                match s3.page().await {
                    Ok(p) => reply(
                        "application/atom+xml; charset=utf-8",
                        super::atom::render(&p, q.lang()),
                    ),
                    Err(e) => unavailable(&e),
                }
            }),
        )
}

fn reply(content_type: &'static str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// The cause goes to the log only: the page is public and the error may name files.
fn unavailable(e: &super::StatusError) -> Response {
    tracing::warn!(error = %e, "status page not available");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CACHE_CONTROL, "no-store")],
        "the status is not available right now\n",
    )
        .into_response()
}

/// What `/health` checks.
#[derive(Debug, Clone)]
pub struct HealthCheck {
    pub store: Store,
    /// How the writing of observations goes (the daemon's).
    pub writer: Option<WriterHealth>,
    /// Whether probes are configured (a `dispo run` that only follows logs runs none).
    pub probes: bool,
}

impl HealthCheck {
    /// `Ok` with a short sentence when ready, `Err` saying why not.
    pub async fn check(&self, now_ms: i64) -> Result<String, String> {
        if let Some(w) = &self.writer {
            if w.waiting() > 0 {
                return Err(format!(
                    "not ready: the database refuses writes ({} observations held in memory: the spill journal refuses them too)",
                    w.waiting()
                ));
            }
            if w.spilled() > 0 {
                return Err(format!(
                    "not ready: the database refuses writes ({} observations kept in the spill journal until it takes them)",
                    w.spilled()
                ));
            }
        }
        let spans = tokio::time::timeout(
            Duration::from_secs(2),
            self.store
                .coverage(now_ms - super::FRESH_MS, now_ms + 1, now_ms),
        )
        .await
        .map_err(|_| "not ready: the database does not answer within 2 s".to_owned())?
        .map_err(|e| {
            tracing::warn!(error = %e, "health: cannot read the heartbeats");
            "not ready: the database cannot be read".to_owned()
        })?;
        if self.probes
            && !spans
                .iter()
                .any(|c| c.kind == CoverageKind::Monitor && c.ongoing)
        {
            return Err(
                "not ready: no probe running (no heartbeat recorded in the last 120 s)".into(),
            );
        }
        Ok(if self.probes {
            "ready: the database takes writes and probes run\n".into()
        } else {
            "ready: the database takes writes\n".into()
        })
    }

    /// `/health`.
    pub fn router(self) -> Router {
        Router::new().route(
            "/health",
            get(move || {
                let h = self.clone();
                async move {
                    let now = chrono::Utc::now().timestamp_millis();
                    let (code, body) = match h.check(now).await {
                        Ok(s) => (StatusCode::OK, s),
                        Err(s) => (StatusCode::SERVICE_UNAVAILABLE, s + "\n"),
                    };
                    (
                        code,
                        [
                            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                            (header::CACHE_CONTROL, "no-store"),
                        ],
                        body,
                    )
                }
            }),
        )
    }
}

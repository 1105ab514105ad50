//! The embedded Banque Populaire STET sandbox: dispo's default target, so that probing, alerting
//! and reporting run and are tested on one machine with no bank at hand.
//!
//! In: a listen address, a PKI directory, a fault plan. Out: an HTTPS server (mutual TLS on the
//! API hosts `www.<code>.sim.localhost`; none on the customer web host `psu.<code>.sim.localhost`,
//! the TLS configuration being chosen by SNI), a loopback admin API (faults, access log), and an
//! access log of every request served, so tests can compare what the bank saw with what a monitor
//! recorded. Every establishment code has its own state and faults.

pub mod api;
pub mod bank;
pub mod faults;
pub mod pki;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use hyper_util::rt::TokioIo;
use rand::{Rng, SeedableRng};
use rustls::server::WebPkiClientVerifier;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio_rustls::LazyConfigAcceptor;
use tower::ServiceExt as _;

use crate::domain::{Interface, SEED_ESTABLISHMENT_CODES};
use crate::stet::certs::{self, CertInfo};
use crate::stet::models::{ErrorCode, TOKEN_PATH};
use bank::Bank;
use faults::{Fault, FaultKind, FaultPlan};
pub use pki::PkiPaths;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    #[error(transparent)]
    Cert(#[from] certs::CertError),
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the admin listener must be on a loopback address, not {0}")]
    AdminNotLoopback(SocketAddr),
    #[error(transparent)]
    Faults(#[from] faults::FaultError),
}

/// How to start the simulator.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub listen: SocketAddr,
    pub admin_listen: Option<SocketAddr>,
    pub pki_dir: PathBuf,
    pub faults: FaultPlan,
}

/// One request as the bank saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessEntry {
    pub at_ms: i64,
    pub establishment: String,
    pub interface: Interface,
    pub method: String,
    pub path: String,
    /// `None` when no answer was sent (refused, hung, reset).
    pub status: Option<u16>,
    pub latency_ms: Option<f64>,
    pub request_id: Option<String>,
}

const ACCESS_LOG_CAP: usize = 200_000;

/// Shared state of a running simulator.
pub struct SimState {
    banks: BTreeMap<String, Mutex<Bank>>,
    plan: RwLock<(FaultPlan, i64)>,
    rng: Mutex<rand::rngs::StdRng>,
    log: Mutex<VecDeque<AccessEntry>>,
    rate: Mutex<BTreeMap<String, (i64, u32)>>,
    pub qseal: CertInfo,
    jwt_key: ring::hmac::Key,
    port: AtomicU16,
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the whole bank down.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SimState {
    fn new(plan: FaultPlan, qseal: CertInfo) -> Self {
        let seed = plan.seed.unwrap_or(0x5eed);
        let mut key = [0u8; 32];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key);
        Self {
            banks: SEED_ESTABLISHMENT_CODES
                .iter()
                .chain(["10548", "40978"].iter())
                .map(|c| (c.to_string(), Mutex::new(Bank::default())))
                .collect(),
            plan: RwLock::new((plan, now_ms())),
            rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)),
            log: Mutex::new(VecDeque::new()),
            rate: Mutex::new(BTreeMap::new()),
            qseal,
            jwt_key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
            port: AtomicU16::new(0),
        }
    }

    /// The bank of an establishment (known to exist: the middleware checked).
    pub fn bank(&self, code: &str) -> MutexGuard<'_, Bank> {
        lock(
            self.banks
                .get(code)
                .or_else(|| self.banks.values().next())
                .expect("at least one establishment"),
        )
    }

    pub fn port(&self) -> u16 {
        self.port.load(Ordering::Relaxed)
    }

    pub fn sign_jwt(&self, claims: &serde_json::Value) -> String {
        api::sign_jwt(&self.jwt_key, claims)
    }

    /// Faults in force now for an establishment and interface.
    pub fn active_faults(&self, code: &str, iface: Interface) -> Vec<Fault> {
        let g = self.plan.read().unwrap_or_else(|e| e.into_inner());
        let now = now_ms();
        g.0.faults
            .iter()
            .filter(|f| f.covers(code, iface) && f.active(now, g.1))
            .cloned()
            .collect()
    }

    pub fn set_plan(&self, plan: FaultPlan) {
        if let Some(seed) = plan.seed {
            *lock(&self.rng) = rand::rngs::StdRng::seed_from_u64(seed);
        }
        *self.plan.write().unwrap_or_else(|e| e.into_inner()) = (plan, now_ms());
    }

    pub fn plan(&self) -> FaultPlan {
        self.plan
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    fn record(&self, e: AccessEntry) {
        let mut log = lock(&self.log);
        if log.len() >= ACCESS_LOG_CAP {
            log.pop_front();
        }
        log.push_back(e);
    }

    pub fn access_log(&self, since_ms: i64) -> Vec<AccessEntry> {
        lock(&self.log)
            .iter()
            .filter(|e| e.at_ms >= since_ms)
            .cloned()
            .collect()
    }
}

/// What the middleware learned about a request, for the handlers.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub code: String,
    pub interface: Interface,
    /// The organization identifier of the verified client certificate.
    pub org_id: Option<String>,
}

/// Per connection: the client's identity and a switch to reset the connection.
#[derive(Debug, Clone)]
struct ConnInfo {
    org_id: Option<String>,
    kill: Arc<Notify>,
}

/// Which establishment and interface a host (SNI or Host header) and path address.
fn classify(host: &str, path: &str, fallback_header: bool) -> Option<(String, Interface)> {
    let host = host.split(':').next().unwrap_or(host);
    let mut labels = host.split('.');
    let kind = labels.next()?;
    let code = labels.next()?;
    if code.len() != 5 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let iface = match kind {
        "psu" => Interface::PsuWeb,
        "www" if fallback_header && path == TOKEN_PATH => Interface::Fallback,
        "www" => Interface::Api,
        _ => return None,
    };
    Some((code.to_owned(), iface))
}

/// A running simulator.
pub struct RunningSimulator {
    pub api_addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    pub pki: PkiPaths,
    pub state: Arc<SimState>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningSimulator {
    /// Stops accepting and waits for the listeners to close.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

pub struct Simulator;

impl Simulator {
    /// Creates (or reuses) the PKI, binds the listeners and serves until shut down.
    pub async fn start(opts: SimOptions) -> Result<RunningSimulator, SimError> {
        opts.faults.validate()?;
        if let Some(a) = opts.admin_listen
            && !a.ip().is_loopback()
        {
            return Err(SimError::AdminNotLoopback(a));
        }
        let paths = pki::ensure(&opts.pki_dir)?;
        let qseal = pki::qseal_info(&paths)?;
        let (api_cfg, psu_cfg) = tls_configs(&paths)?;
        let state = Arc::new(SimState::new(opts.faults, qseal));
        let listener = TcpListener::bind(opts.listen)
            .await
            .map_err(|source| SimError::Bind {
                addr: opts.listen,
                source,
            })?;
        let api_addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: opts.listen,
            source,
        })?;
        state.port.store(api_addr.port(), Ordering::Relaxed);
        let (tx, rx) = watch::channel(false);
        let mut tasks = vec![tokio::spawn(accept_loop(
            listener,
            state.clone(),
            api_cfg,
            psu_cfg,
            rx.clone(),
        ))];
        let mut admin_addr = None;
        if let Some(a) = opts.admin_listen {
            let l = TcpListener::bind(a)
                .await
                .map_err(|source| SimError::Bind { addr: a, source })?;
            admin_addr = Some(
                l.local_addr()
                    .map_err(|source| SimError::Bind { addr: a, source })?,
            );
            let app = admin_router(state.clone());
            let mut rx2 = rx.clone();
            tasks.push(tokio::spawn(async move {
                let _ = axum::serve(l, app)
                    .with_graceful_shutdown(async move {
                        let _ = rx2.wait_for(|s| *s).await;
                    })
                    .await;
            }));
        }
        tracing::info!(%api_addr, admin = ?admin_addr, pki = %paths.dir.display(), "simulator listening");
        Ok(RunningSimulator {
            api_addr,
            admin_addr,
            pki: paths,
            state,
            shutdown: tx,
            tasks,
        })
    }
}

fn tls_configs(
    paths: &PkiPaths,
) -> Result<(Arc<rustls::ServerConfig>, Arc<rustls::ServerConfig>), SimError> {
    let tls = |e: &dyn std::fmt::Display| SimError::Tls(e.to_string());
    let chain = certs::read_certs(&paths.server_cert)?;
    let key = certs::read_key(&paths.server_key)?;
    let mut roots = rustls::RootCertStore::empty();
    for c in certs::read_certs(&paths.ca_cert)? {
        roots.add(c).map_err(|e| tls(&e))?;
    }
    // Unknown or missing client certificates are refused during the handshake.
    let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
        .build()
        .map_err(|e| tls(&e))?;
    let mut api = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain.clone(), key.clone_key())
        .map_err(|e| tls(&e))?;
    api.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut psu = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| tls(&e))?;
    psu.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(api), Arc::new(psu)))
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<SimState>,
    api_cfg: Arc<rustls::ServerConfig>,
    psu_cfg: Arc<rustls::ServerConfig>,
    mut shutdown: watch::Receiver<bool>,
) {
    let app = api_router(state.clone());
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = async { let _ = shutdown.wait_for(|s| *s).await; } => return,
        };
        let (state, app, api_cfg, psu_cfg) =
            (state.clone(), app.clone(), api_cfg.clone(), psu_cfg.clone());
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let start = match tokio::time::timeout(
                Duration::from_secs(10),
                LazyConfigAcceptor::new(Default::default(), tcp),
            )
            .await
            {
                Ok(Ok(s)) => s,
                _ => return,
            };
            let sni = start.client_hello().server_name().map(str::to_owned);
            let target = sni.as_deref().and_then(|h| classify(h, "", false));
            let is_psu = matches!(target, Some((_, Interface::PsuWeb)));
            if let Some((code, iface)) = &target {
                let faults = state.active_faults(code, *iface);
                if faults.iter().any(|f| f.kind == FaultKind::Refuse) {
                    state.record(AccessEntry {
                        at_ms: now_ms(),
                        establishment: code.clone(),
                        interface: *iface,
                        method: String::new(),
                        path: String::new(),
                        status: None,
                        latency_ms: None,
                        request_id: None,
                    });
                    tracing::debug!(%peer, establishment = %code, "refused connection (fault)");
                    return; // dropping the handshake closes the connection
                }
                if faults.iter().any(|f| f.kind == FaultKind::Reset) {
                    // Closing this connection later must send a RST, not a FIN.
                    let _ = start.io.set_zero_linger();
                }
            }
            let tls = match start
                .into_stream(if is_psu { psu_cfg } else { api_cfg })
                .await
            {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let org_id = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| certs::cert_info(c).ok())
                .and_then(|i| i.organization_identifier);
            let info = ConnInfo {
                org_id,
                kill: Arc::new(Notify::new()),
            };
            let kill = info.kill.clone();
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(info.clone());
                    app.clone().oneshot(req.map(axum::body::Body::new))
                },
            );
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(tls), svc);
            tokio::select! {
                _ = conn => {}
                _ = kill.notified() => {} // dropped: with zero linger, a RST
            }
        });
    }
}

fn api_router(state: Arc<SimState>) -> Router {
    Router::new()
        .route(TOKEN_PATH, post(api::token))
        .route("/stet/psd2/oauth/revoke", post(api::revoke))
        .route(
            crate::stet::models::AUTHORIZE_PATH,
            get(api::authorize_page).post(api::authorize_submit),
        )
        .route("/stet/psd2/v1/funds-confirmations", any(api::funds))
        .route("/stet/psd2/v1.4.2/funds-confirmations", any(api::funds))
        .route("/se-connecter/sso", get(api::psu_page))
        .fallback(|req: Request| async move {
            api::stet_error(404, None, "unknown resource", req.uri().path())
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            bank_middleware,
        ))
        .with_state(state)
}

/// Every request: find its establishment and interface, apply the faults in force, log it, and
/// return its `X-Request-ID`.
async fn bank_middleware(
    State(st): State<Arc<SimState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let at_ms = now_ms();
    let rid = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().host().map(str::to_owned))
        .unwrap_or_default();
    let path = req.uri().path().to_owned();
    let method = req.method().to_string();
    let fb = req
        .headers()
        .get("fallback")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "1");
    let conn = req.extensions().get::<ConnInfo>().cloned();
    let Some((code, iface)) = classify(&host, &path, fb).filter(|(c, _)| st.banks.contains_key(c))
    else {
        return with_rid(
            api::stet_error(
                404,
                None,
                &format!("unknown establishment host {host:?}"),
                &path,
            ),
            rid,
        );
    };
    let entry = |status: Option<u16>, latency: Option<f64>| AccessEntry {
        at_ms,
        establishment: code.clone(),
        interface: iface,
        method: method.clone(),
        path: path.clone(),
        status,
        latency_ms: latency,
        request_id: rid.clone(),
    };
    let faults = st.active_faults(&code, iface);
    let mut slow_body = None;
    let mut early: Option<Response> = None;
    for f in &faults {
        match f.kind {
            FaultKind::Hang => {
                st.record(entry(None, None));
                // Never answer; the client gives up first (its timeout is 30 s by default).
                tokio::time::sleep(Duration::from_secs(900)).await;
                return StatusCode::GATEWAY_TIMEOUT.into_response();
            }
            FaultKind::Reset => {
                st.record(entry(None, None));
                if let Some(c) = &conn {
                    c.kill.notify_one();
                }
                std::future::pending::<()>().await;
            }
            FaultKind::Error500 => early = early.or(Some(api::code_error(ErrorCode::INTE, &path))),
            FaultKind::Error503 => early = early.or(Some(api::code_error(ErrorCode::INTS, &path))),
            FaultKind::ErrorRate => {
                if lock(&st.rng).gen_bool(f.rate.unwrap_or(0.0).clamp(0.0, 1.0)) {
                    early = early.or(Some(api::code_error(ErrorCode::INTE, &path)));
                }
            }
            FaultKind::RateLimit => {
                let sec = at_ms / 1000;
                let mut r = lock(&st.rate);
                let e = r.entry(code.clone()).or_insert((sec, 0));
                if e.0 != sec {
                    *e = (sec, 0);
                }
                e.1 += 1;
                if e.1 > f.per_s.unwrap_or(u32::MAX) {
                    early = early.or(Some(api::code_error(ErrorCode::TMRQ, &path)));
                }
            }
            FaultKind::Latency => {
                let lo = f.latency_ms.unwrap_or(0.0);
                let ms = match f.latency_max_ms {
                    Some(hi) if hi > lo => lock(&st.rng).gen_range(lo..hi),
                    _ => lo,
                };
                precise_sleep(Duration::from_secs_f64(ms / 1000.0)).await;
            }
            FaultKind::SlowBody => slow_body = f.body_ms,
            FaultKind::Refuse => {} // connection-level, handled at accept
        }
    }
    let resp = match early {
        Some(r) => r,
        None => {
            req.extensions_mut().insert(Ctx {
                code: code.clone(),
                interface: iface,
                org_id: conn.and_then(|c| c.org_id),
            });
            next.run(req).await
        }
    };
    let resp = match slow_body {
        Some(ms) => trickle(resp, ms).await,
        None => resp,
    };
    st.record(entry(
        Some(resp.status().as_u16()),
        Some(started.elapsed().as_secs_f64() * 1000.0),
    ));
    with_rid(resp, rid)
}

/// Sleeps `d` to within a fraction of a millisecond: tokio's timer works in whole milliseconds
/// and wakes late, so the last two milliseconds are spent yielding. An injected delay must be
/// exact, or the probes' accuracy cannot be measured against it.
async fn precise_sleep(d: Duration) {
    let deadline = Instant::now() + d;
    if let Some(coarse) = d.checked_sub(Duration::from_millis(2)) {
        tokio::time::sleep(coarse).await;
    }
    while Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
}

fn with_rid(mut resp: Response, rid: Option<String>) -> Response {
    if let Some(v) = rid.and_then(|r| HeaderValue::from_str(&r).ok()) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// Sends the body in ten pieces spread over `ms`.
async fn trickle(resp: Response, ms: f64) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, api::MAX_BODY * 4)
        .await
        .unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    let n = 10usize;
    let step = Duration::from_secs_f64(ms / 1000.0 / n as f64);
    let chunk = bytes.len().div_ceil(n).max(1);
    let pieces: Vec<axum::body::Bytes> = bytes
        .chunks(chunk)
        .map(axum::body::Bytes::copy_from_slice)
        .collect();
    let stream = futures_util::stream::unfold(pieces.into_iter(), move |mut it| async move {
        let next = it.next()?;
        tokio::time::sleep(step).await;
        Some((Ok::<_, std::io::Error>(next), it))
    });
    Response::from_parts(parts, axum::body::Body::from_stream(stream))
}

#[derive(Deserialize)]
struct SinceQuery {
    since_ms: Option<i64>,
}

fn admin_router(state: Arc<SimState>) -> Router {
    Router::new()
        .route(
            "/health",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route(
            "/faults",
            get(|State(st): State<Arc<SimState>>| async move { axum::Json(st.plan()) })
                .put(
                    |State(st): State<Arc<SimState>>, body: axum::body::Bytes| async move {
                        let plan: FaultPlan = match serde_json::from_slice(&body) {
                            Ok(p) => p,
                            Err(e) => {
                                return (
                                    StatusCode::BAD_REQUEST,
                                    format!("invalid fault plan: {e}"),
                                )
                                    .into_response();
                            }
                        };
                        if let Err(e) = plan.validate() {
                            return (StatusCode::BAD_REQUEST, e.to_string()).into_response();
                        }
                        tracing::info!(faults = plan.faults.len(), "fault plan replaced");
                        st.set_plan(plan);
                        axum::Json(st.plan()).into_response()
                    },
                )
                .delete(|State(st): State<Arc<SimState>>| async move {
                    st.set_plan(FaultPlan::default());
                    StatusCode::NO_CONTENT
                }),
        )
        .route(
            "/access-log",
            get(
                |State(st): State<Arc<SimState>>, Query(q): Query<SinceQuery>| async move {
                    axum::Json(st.access_log(q.since_ms.unwrap_or(0)))
                },
            )
            .delete(|State(st): State<Arc<SimState>>| async move {
                lock(&st.log).clear();
                StatusCode::NO_CONTENT
            }),
        )
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_paths_classify() {
        assert_eq!(
            classify("www.13807.sim.localhost:8443", "/x", false),
            Some(("13807".into(), Interface::Api))
        );
        assert_eq!(
            classify("www.13807.sim.localhost", TOKEN_PATH, true),
            Some(("13807".into(), Interface::Fallback))
        );
        assert_eq!(
            classify("www.13807.sim.localhost", "/other", true),
            Some(("13807".into(), Interface::Api))
        );
        assert_eq!(
            classify("psu.10807.sim.localhost", "/", false),
            Some(("10807".into(), Interface::PsuWeb))
        );
        assert_eq!(classify("localhost", "/", false), None);
        assert_eq!(classify("www.abc.sim.localhost", "/", false), None);
    }
}

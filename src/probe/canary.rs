//! The monitor's own failures are not the bank's (methodology section 1; issue 12.5). When the
//! monitor loses its network or its name resolution, every establishment "fails" at once; so a
//! request that got no reply while no establishment answered is checked against the canaries
//! (`[monitor] canary`: URLs that should answer whenever the monitor's own network works, reached
//! through the same resolver and TLS stack as the bank) before it is written or handed on.
//!
//! **At once**, precisely: a request that ended without a reply (`no_reply`) is *suspect* when no
//! establishment this monitor probes has answered (any HTTP reply, whatever its status) since
//! that request was sent: as far as the monitor can tell, everything failed during its lifetime.
//! A suspect request waits for a canary check started after it ended (one check serves every
//! request that ended before it began; checks run one at a time, each within the time-out). If
//! every canary fails too, and still no establishment answered meanwhile, the monitor is offline: its no-replies are the monitor's own fault, `probe_error` ("monitor
//! offline: ..."), a gap in coverage, never an episode, alerted to the operator as
//! `monitor_offline`. If any canary answers, the failures stand: the bank is down. Without
//! canaries nothing is checked and every failure stands.
//!
//! A QWAC refused because it has expired is the monitor's fault too, known without a canary: a
//! TLS failure of an establishment whose QWAC had expired when the request was sent is
//! `probe_error` ("the QWAC expired ..."), alerted per establishment; so is a TLS failure whose
//! alert from the bank is about the client certificate (revoked, unknown CA, ...): TPPs with
//! their own certificates are not concerned. Any other TLS failure stands as the bank's.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use tokio::sync::Mutex;

use super::http::Endpoint;
use super::steps::StepResult;
use crate::config::Config;
use crate::domain::{EstablishmentCode, NoReplyKind, Outcome, Source};

/// How the error text of an observation the monitor made while offline begins.
pub const OFFLINE: &str = "monitor offline";

/// The canaries and what the monitor last heard.
pub struct Connectivity {
    canaries: Vec<(url::Url, Arc<Endpoint>)>,
    timeout: Duration,
    /// Per establishment, when its QWAC expires (epoch ms).
    qwac_not_after: std::collections::BTreeMap<EstablishmentCode, i64>,
    /// When an establishment last answered (the answer's completion, epoch ms).
    last_answer_ms: AtomicI64,
    /// The last canary check.
    check: Mutex<Option<Check>>,
}

#[derive(Debug, Clone)]
struct Check {
    started_ms: i64,
    online: bool,
    /// Why every canary failed (when offline).
    why: String,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Connectivity {
    /// The canaries of `cfg`; HTTPS ones are checked against the public web roots and the
    /// establishments' CA bundles, without a client certificate.
    pub fn new(cfg: &Config) -> Self {
        let cas: Vec<_> = cfg.establishments.iter().map(|e| e.ca.clone()).collect();
        let mut c = Self::with(&cfg.monitor.canary, &cas, cfg.monitor.timeout);
        for e in &cfg.establishments {
            for (which, at) in &e.cert_not_after_ms {
                if which == "qwac" {
                    c.qwac_not_after.insert(e.code, *at);
                }
            }
        }
        c
    }

    /// Canaries at `urls`, HTTPS ones trusting the public roots and `cas`.
    fn with(urls: &[url::Url], cas: &[std::path::PathBuf], timeout: Duration) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for ca in cas {
            for c in crate::stet::certs::read_certs(ca).unwrap_or_default() {
                let _ = roots.add(c);
            }
        }
        let mut tls = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tls = Arc::new(tls);
        let canaries = urls
            .iter()
            .map(|u| {
                let host = u.host_str().unwrap_or_default().to_owned();
                let port = u.port_or_known_default().unwrap_or(443);
                let ep = match u.scheme() {
                    "https" => Endpoint::new(host, port, None, tls.clone(), false),
                    _ => Endpoint::plain(host, port),
                };
                (u.clone(), Arc::new(ep))
            })
            .collect();
        Self {
            canaries,
            timeout,
            qwac_not_after: Default::default(),
            last_answer_ms: AtomicI64::new(i64::MIN),
            check: Mutex::new(None),
        }
    }

    /// Judges a run's result before it is written or handed on: its no-replies become the
    /// monitor's own error when everything fails at once and the canaries fail too.
    pub async fn judge(&self, mut r: StepResult) -> StepResult {
        let now = now_ms();
        for o in r.observations.iter().filter(|o| o.obs.status.is_some()) {
            let done = o.obs.completed_at_ms().unwrap_or(now);
            self.last_answer_ms.fetch_max(done, Ordering::Relaxed);
        }
        for o in r.observations.iter_mut().filter(|o| {
            o.obs.outcome == Outcome::NoReply && o.no_reply_kind == Some(NoReplyKind::Tls)
        }) {
            // The bank said, in a TLS alert, that it refuses this monitor's QWAC (revoked, from
            // a CA it does not trust, ...): TPPs with their own certificates are not concerned.
            if let Some(alert) = o.error_text.as_deref().and_then(qwac_refusal) {
                o.obs.outcome = Outcome::ProbeError;
                o.no_reply_kind = None;
                let text = format!(
                    "the bank refuses the QWAC (TLS alert {alert}): check or renew it (the request: {})",
                    o.error_text.as_deref().unwrap_or("no reply")
                );
                o.error_text = Some(text.chars().take(500).collect());
                continue;
            }
            let Some(&expired) = self
                .qwac_not_after
                .get(&o.obs.establishment)
                .filter(|&&at| at <= o.obs.received_at_ms)
            else {
                continue;
            };
            o.obs.outcome = Outcome::ProbeError;
            o.no_reply_kind = None;
            let text = format!(
                "the QWAC expired at {}: the bank refuses it; renew it (the request: {})",
                crate::engine::time::rfc3339(expired),
                o.error_text.as_deref().unwrap_or("no reply")
            );
            o.error_text = Some(text.chars().take(500).collect());
        }
        if self.canaries.is_empty() {
            return r;
        }
        let Some(sent) = r
            .observations
            .iter()
            .filter(|o| o.obs.outcome == Outcome::NoReply && o.obs.source == Source::Probe)
            .map(|o| o.obs.received_at_ms)
            .min()
        else {
            return r;
        };
        let answered = || self.last_answer_ms.load(Ordering::Relaxed) >= sent;
        if answered() {
            return r;
        }
        let check = self.check_since(now).await;
        if check.online || answered() {
            return r;
        }
        for o in r
            .observations
            .iter_mut()
            .filter(|o| o.obs.outcome == Outcome::NoReply)
        {
            o.obs.outcome = Outcome::ProbeError;
            o.no_reply_kind = None;
            let text = format!(
                "{OFFLINE}: no establishment answered and no canary either ({}); the request: {}",
                check.why,
                o.error_text.as_deref().unwrap_or("no reply")
            );
            o.error_text = Some(text.chars().take(500).collect());
        }
        r
    }

    /// The first canary check started at or after `ended_ms` (one is started if needed).
    async fn check_since(&self, ended_ms: i64) -> Check {
        let mut last = self.check.lock().await;
        if let Some(c) = last.as_ref().filter(|c| c.started_ms >= ended_ms) {
            return c.clone();
        }
        let was = last.as_ref().map(|c| c.online);
        let c = self.ask().await;
        match (was, c.online) {
            (Some(false), true) => {
                tracing::warn!("the canaries answer again: the monitor is online")
            }
            (Some(true) | None, false) => {
                tracing::error!(why = %c.why, "no establishment answers and no canary either: the monitor is offline; its no-replies are recorded as its own errors")
            }
            _ => {}
        }
        *last = Some(c.clone());
        c
    }

    /// Asks every canary at once: online as soon as one answers (any HTTP status).
    async fn ask(&self) -> Check {
        let started_ms = now_ms();
        let mut set = tokio::task::JoinSet::new();
        for (u, ep) in &self.canaries {
            let (u, ep, timeout) = (u.clone(), ep.clone(), self.timeout);
            set.spawn(async move {
                let mut path = u.path().to_owned();
                if let Some(q) = u.query() {
                    path.push('?');
                    path.push_str(q);
                }
                let req = http::Request::get(path)
                    .header(http::header::HOST, ep.authority())
                    .header(http::header::USER_AGENT, "dispo-canary")
                    .body(Full::new(Bytes::new()))
                    .unwrap_or_default();
                let host = u.host_str().unwrap_or_default().to_owned();
                ep.send(req, timeout)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("{host}: {}", e.message))
            });
        }
        let mut errors = Vec::new();
        while let Some(done) = set.join_next().await {
            match done {
                Ok(Ok(())) => {
                    return Check {
                        started_ms,
                        online: true,
                        why: String::new(),
                    };
                }
                Ok(Err(e)) => errors.push(e),
                Err(e) => errors.push(e.to_string()),
            }
        }
        Check {
            started_ms,
            online: false,
            why: errors.join("; "),
        }
    }
}

/// The TLS alert, in an error text, by which a server refuses the client's certificate
/// (rustls writes "received fatal alert: CertificateRevoked"); `None` for any other failure,
/// such as the bank's own certificate refused by the monitor ("invalid peer certificate").
fn qwac_refusal(text: &str) -> Option<&'static str> {
    const ABOUT_THE_CLIENT: [&str; 8] = [
        "BadCertificate",
        "UnsupportedCertificate",
        "CertificateRevoked",
        "CertificateExpired",
        "CertificateUnknown",
        "UnknownCA",
        "CertificateRequired",
        "AccessDenied",
    ];
    let after = text.split("received fatal alert: ").nth(1)?;
    ABOUT_THE_CLIENT.into_iter().find(|a| after.starts_with(a))
}

#[cfg(test)]
mod tests {
    //! The rule, against loopback canaries (one answering, one closed port).

    use super::*;
    use crate::domain::{Interface, Observation, Service};
    use crate::store::StoredObservation;

    fn obs(sent_ms: i64, status: Option<u16>) -> StoredObservation {
        Observation {
            received_at_ms: sent_ms,
            establishment: "13807".parse().unwrap(),
            interface: Interface::Api,
            service: Service::new("cbpii").unwrap(),
            source: Source::Probe,
            tpp: None,
            status,
            latency_ms: status.map(|_| 20.0),
            error_code: None,
            request_id: format!("r{sent_ms}").into(),
            outcome: Outcome::from_reply(status, None),
            vantage: crate::domain::Vantage::imported(Source::Probe),
        }
        .into()
    }

    fn result(o: StoredObservation) -> StepResult {
        StepResult {
            observations: vec![o],
            tokens: vec![],
        }
    }

    /// A loopback HTTP server answering 204 to anything.
    async fn answering() -> u16 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf).await;
                    let _ = s
                        .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                        .await;
                });
            }
        });
        port
    }

    fn closed() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn canaries(ports: &[u16]) -> Connectivity {
        let urls: Vec<url::Url> = ports
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}/health").parse().unwrap())
            .collect();
        Connectivity::with(&urls, &[], Duration::from_secs(2))
    }

    #[tokio::test]
    async fn no_reply_is_the_monitors_own_error_only_when_nothing_answers_and_no_canary() {
        let now = now_ms();
        // Every canary fails and nothing answered: the monitor is offline.
        let c = canaries(&[closed(), closed()]);
        let r = c.judge(result(obs(now - 100, None))).await;
        let o = &r.observations[0];
        assert_eq!(o.obs.outcome, Outcome::ProbeError);
        assert!(
            o.error_text.as_deref().unwrap().starts_with(OFFLINE),
            "{:?}",
            o.error_text
        );
        assert_eq!(o.no_reply_kind, None);
        // An establishment answered since the request was sent: it stands, no canary asked.
        c.judge(result(obs(now - 50, Some(200)))).await;
        let r = c.judge(result(obs(now - 60, None))).await;
        assert_eq!(r.outcome(), Some(Outcome::NoReply));
        // One canary of two answers: the failures stand.
        let c = canaries(&[closed(), answering().await]);
        let r = c.judge(result(obs(now_ms(), None))).await;
        assert_eq!(r.outcome(), Some(Outcome::NoReply));
        // Without canaries nothing is checked.
        let mut c = canaries(&[]);
        let r = c.judge(result(obs(now_ms(), None))).await;
        assert_eq!(r.outcome(), Some(Outcome::NoReply));
        // A TLS failure after the QWAC expired is the monitor's own error; before, it stands.
        c.qwac_not_after.insert("13807".parse().unwrap(), now);
        let tls = |at: i64| {
            let mut o = obs(at, None);
            o.no_reply_kind = Some(NoReplyKind::Tls);
            result(o)
        };
        let r = c.judge(tls(now - 1)).await;
        assert_eq!(r.outcome(), Some(Outcome::NoReply));
        // Before it, the bank refusing the QWAC in a TLS alert is the monitor's own error too;
        // the bank's certificate refused by the monitor stands.
        let alert = |text: &str| {
            let mut r = tls(now - 1);
            r.observations[0].error_text = Some(text.into());
            r
        };
        let r = c
            .judge(alert(
                "tls handshake: received fatal alert: CertificateRevoked",
            ))
            .await;
        assert_eq!(r.outcome(), Some(Outcome::ProbeError));
        assert!(
            r.observations[0]
                .error_text
                .as_deref()
                .unwrap()
                .starts_with("the bank refuses the QWAC (TLS alert CertificateRevoked)")
        );
        let r = c
            .judge(alert("invalid peer certificate: BadSignature"))
            .await;
        assert_eq!(r.outcome(), Some(Outcome::NoReply));
        let r = c
            .judge(alert("received fatal alert: HandshakeFailure"))
            .await;
        assert_eq!(r.outcome(), Some(Outcome::NoReply));
        let r = c.judge(tls(now + 1)).await;
        assert_eq!(r.outcome(), Some(Outcome::ProbeError));
        assert!(
            r.observations[0]
                .error_text
                .as_deref()
                .unwrap()
                .starts_with("the QWAC expired")
        );
    }
}

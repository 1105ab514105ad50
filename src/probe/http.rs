//! One HTTPS exchange timed by phase, as blackbox_exporter names them: resolve, connect, tls,
//! processing (request sent to first byte of the answer) and transfer (to the last byte). reqwest
//! hides these, so the connection is driven here: DNS (or the configured address pin), TCP,
//! tokio-rustls with the QWAC as client certificate and the establishment's host as SNI, then a
//! hyper HTTP/1.1 connection. A failure is classified into the no-reply kinds of the methodology.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_rustls::TlsConnector;

use crate::domain::{NoReplyKind, Phases};

/// Where and how to connect.
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub pin: Option<IpAddr>,
    /// `None`: plain HTTP (a canary, [`super::canary`]).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Keep one connection open between probes (then resolve, connect and tls are 0).
    pub reuse: bool,
    idle: Mutex<Option<SendRequest<Full<Bytes>>>>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("pin", &self.pin)
            .finish()
    }
}

/// An answer, with its timings.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub phases: Phases,
    pub total_ms: f64,
}

/// No answer: why, and after how long.
#[derive(Debug, Clone, PartialEq)]
pub struct NoReply {
    pub kind: NoReplyKind,
    pub message: String,
    pub elapsed_ms: f64,
}

impl Endpoint {
    pub fn new(
        host: String,
        port: u16,
        pin: Option<IpAddr>,
        tls: Arc<rustls::ClientConfig>,
        reuse: bool,
    ) -> Self {
        Self {
            host,
            port,
            pin,
            tls: Some(tls),
            reuse,
            idle: Mutex::new(None),
        }
    }

    /// A plain HTTP endpoint (no TLS), reached through the same resolver.
    pub fn plain(host: String, port: u16) -> Self {
        Self {
            host,
            port,
            pin: None,
            tls: None,
            reuse: false,
            idle: Mutex::new(None),
        }
    }

    /// The `Host` header value.
    pub fn authority(&self) -> String {
        if self.port == 443 {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Sends one request and reads the whole answer within `timeout`.
    pub async fn send(
        &self,
        req: http::Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<Reply, NoReply> {
        let start = Instant::now();
        match tokio::time::timeout(timeout, self.exchange(req, start)).await {
            Ok(r) => r,
            Err(_) => Err(NoReply {
                kind: NoReplyKind::Timeout,
                message: format!("no complete reply within {:.1} s", timeout.as_secs_f64()),
                elapsed_ms: ms(start.elapsed()),
            }),
        }
    }

    async fn exchange(
        &self,
        req: http::Request<Full<Bytes>>,
        start: Instant,
    ) -> Result<Reply, NoReply> {
        let fail = |kind, message: String| NoReply {
            kind,
            message,
            elapsed_ms: ms(start.elapsed()),
        };
        let reused = if self.reuse {
            self.idle.lock().await.take().filter(|s| !s.is_closed())
        } else {
            None
        };
        let (mut sender, t_resolve, t_connect, t_tls) = match reused {
            Some(mut s) => {
                if s.ready().await.is_err() {
                    return Err(fail(
                        NoReplyKind::Reset,
                        "the kept-alive connection closed".into(),
                    ));
                }
                (s, Duration::ZERO, Duration::ZERO, Duration::ZERO)
            }
            None => {
                let addr = match self.pin {
                    Some(ip) => SocketAddr::new(ip, self.port),
                    None => tokio::net::lookup_host((self.host.as_str(), self.port))
                        .await
                        .map_err(|e| {
                            fail(
                                NoReplyKind::Dns,
                                format!("cannot resolve {}: {e}", self.host),
                            )
                        })?
                        .next()
                        .ok_or_else(|| {
                            fail(NoReplyKind::Dns, format!("{} has no address", self.host))
                        })?,
                };
                let t_resolve = start.elapsed();
                let tcp = TcpStream::connect(addr).await.map_err(|e| {
                    let kind = match e.kind() {
                        std::io::ErrorKind::ConnectionRefused => NoReplyKind::Refused,
                        std::io::ErrorKind::ConnectionReset => NoReplyKind::Reset,
                        std::io::ErrorKind::TimedOut => NoReplyKind::Timeout,
                        _ => NoReplyKind::Other,
                    };
                    fail(kind, format!("cannot connect to {addr}: {e}"))
                })?;
                let _ = tcp.set_nodelay(true);
                let t_connect = start.elapsed();
                let handshake =
                    |e: hyper::Error| fail(classify(&e), format!("HTTP handshake failed: {e}"));
                let (sender, t_tls) = match &self.tls {
                    Some(cfg) => {
                        let name = ServerName::try_from(self.host.clone()).map_err(|_| {
                            fail(
                                NoReplyKind::Tls,
                                format!("{} is not a valid TLS server name", self.host),
                            )
                        })?;
                        let tls = TlsConnector::from(cfg.clone())
                            .connect(name, tcp)
                            .await
                            .map_err(|e| {
                                fail(
                                    classify(&e),
                                    format!("TLS handshake with {} failed: {e}", self.host),
                                )
                            })?;
                        let t_tls = start.elapsed();
                        (http1(TokioIo::new(tls)).await.map_err(handshake)?, t_tls)
                    }
                    None => (
                        http1(TokioIo::new(tcp)).await.map_err(handshake)?,
                        t_connect,
                    ),
                };
                (sender, t_resolve, t_connect, t_tls)
            }
        };
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| fail(classify(&e), format!("no reply: {e}")))?;
        let t_first = start.elapsed();
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| fail(classify(&e), format!("the reply broke off: {e}")))?
            .to_bytes();
        let t_end = start.elapsed();
        if self.reuse && !sender.is_closed() {
            *self.idle.lock().await = Some(sender);
        }
        Ok(Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
            phases: Phases {
                resolve_ms: ms(t_resolve),
                connect_ms: ms(t_connect - t_resolve),
                tls_ms: ms(t_tls - t_connect),
                // Sending the request is part of processing, as blackbox_exporter counts it;
                // the phases add up to the total.
                processing_ms: ms(t_first - t_tls),
                transfer_ms: ms(t_end - t_first),
            },
            total_ms: ms(t_end),
        })
    }
}

/// An HTTP/1.1 connection over `io`, driven in its own task.
async fn http1<IO>(io: IO) -> Result<SendRequest<Full<Bytes>>, hyper::Error>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Walks an error's sources to name the kind of failure. A TLS 1.3 server refusing the client
/// certificate is only seen on the first read, as a rustls alert: that is TLS too.
pub fn classify(e: &(dyn std::error::Error + 'static)) -> NoReplyKind {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut kind = NoReplyKind::Other;
    while let Some(err) = cur {
        if err.downcast_ref::<rustls::Error>().is_some() {
            return NoReplyKind::Tls;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::ConnectionAborted => kind = NoReplyKind::Reset,
                std::io::ErrorKind::ConnectionRefused => return NoReplyKind::Refused,
                std::io::ErrorKind::TimedOut => return NoReplyKind::Timeout,
                std::io::ErrorKind::UnexpectedEof => kind = NoReplyKind::Tls,
                _ => {}
            }
            if let Some(inner) = io.get_ref()
                && inner.downcast_ref::<rustls::Error>().is_some()
            {
                return NoReplyKind::Tls;
            }
        }
        if let Some(h) = err.downcast_ref::<hyper::Error>()
            && h.is_incomplete_message()
            && kind == NoReplyKind::Other
        {
            // The server closed the connection without answering.
            kind = NoReplyKind::Reset;
        }
        cur = err.source();
    }
    kind
}

/// A TLS client configuration trusting `ca` and presenting the QWAC.
pub fn client_config(
    ca: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<rustls::ClientConfig>, crate::stet::certs::CertError> {
    use crate::stet::certs;
    let mut roots = rustls::RootCertStore::empty();
    for c in certs::read_certs(ca)? {
        let _ = roots.add(c);
    }
    let chain = certs::read_certs(cert)?;
    let key_der = certs::read_key(key)?;
    let mut cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key_der)
        .map_err(|e| certs::CertError::Parse(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

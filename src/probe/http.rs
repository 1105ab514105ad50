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
    /// The most of an answer's body read (`[monitor] max_body_bytes`); past it reading stops.
    pub max_body: usize,
    idle: Mutex<Option<SendRequest<Full<Bytes>>>>,
}

/// Default `[monitor] max_body_bytes`: 1 MiB, far above any STET answer or login page.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;

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
    /// At most `max_body` bytes: the start of a longer body.
    pub body: Bytes,
    /// `Some(limit)` when the body went on past `limit` bytes and reading stopped there (the
    /// timings end at the last byte read).
    pub body_cut: Option<usize>,
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
            max_body: DEFAULT_MAX_BODY,
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
            max_body: DEFAULT_MAX_BODY,
            idle: Mutex::new(None),
        }
    }

    /// The same, reading at most `n` bytes of a body.
    pub fn with_max_body(mut self, n: usize) -> Self {
        self.max_body = n;
        self
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
                let handshake = |e: hyper::Error| {
                    fail(
                        classify(&e),
                        format!("HTTP handshake failed: {}", with_causes(&e)),
                    )
                };
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
            .map_err(|e| fail(classify(&e), format!("no reply: {}", with_causes(&e))))?;
        let t_first = start.elapsed();
        let (parts, mut body) = resp.into_parts();
        // Read frame by frame, never more than `max_body` bytes: a bank streaming without end
        // must not fill the memory. Past the limit the connection is dropped, unread.
        let mut buf = bytes::BytesMut::new();
        let mut body_cut = None;
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| fail(classify(&e), format!("the reply broke off: {e}")))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let room = self.max_body - buf.len();
            if data.len() > room {
                buf.extend_from_slice(&data[..room]);
                body_cut = Some(self.max_body);
                break;
            }
            buf.extend_from_slice(&data);
        }
        let t_end = start.elapsed();
        let body = buf.freeze();
        if body_cut.is_none() && self.reuse && !sender.is_closed() {
            *self.idle.lock().await = Some(sender);
        }
        Ok(Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
            body_cut,
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

/// An error and its causes, each said once ("connection error: received fatal alert:
/// CertificateRevoked"): hyper's own message alone ("connection error") hides why.
fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        cur = c.source();
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A plain HTTP server answering one request with a `len`-byte body, as fast as the
    /// connection takes it; returns its port and how many body bytes it managed to write.
    async fn streaming_server(len: usize) -> (u16, tokio::task::JoinHandle<usize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut b = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut b).await.unwrap();
                assert!(n > 0);
                head.extend_from_slice(&b[..n]);
            }
            let h = format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n");
            s.write_all(h.as_bytes()).await.unwrap();
            let chunk = vec![b'x'; 64 * 1024];
            let mut written = 0;
            while written < len {
                let n = chunk.len().min(len - written);
                if s.write_all(&chunk[..n]).await.is_err() {
                    break;
                }
                written += n;
            }
            written
        });
        (port, task)
    }

    fn get() -> http::Request<Full<Bytes>> {
        http::Request::get("/")
            .header(http::header::HOST, "127.0.0.1")
            .body(Full::new(Bytes::new()))
            .unwrap()
    }

    #[tokio::test]
    async fn a_body_past_the_limit_is_read_no_further() {
        // 8 MiB against the default 1 MiB: the reply holds 1 MiB, says it was cut, and is timed
        // to the last byte read.
        let (port, server) = streaming_server(8 << 20).await;
        let ep = Endpoint::plain("127.0.0.1".into(), port);
        assert_eq!(ep.max_body, DEFAULT_MAX_BODY);
        let r = ep.send(get(), Duration::from_secs(10)).await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body_cut, Some(DEFAULT_MAX_BODY));
        assert_eq!(r.body.len(), DEFAULT_MAX_BODY);
        assert!(r.total_ms > 0.0 && r.total_ms < 10_000.0, "{}", r.total_ms);
        let p = r.phases;
        let sum = p.resolve_ms + p.connect_ms + p.tls_ms + p.processing_ms + p.transfer_ms;
        assert!((sum - r.total_ms).abs() < 0.01, "{p:?} {}", r.total_ms);
        drop(r);
        drop(ep);
        let _ = server.await;

        // 256 MiB offered, 64 KiB taken: the connection is dropped, so the server cannot write
        // it all (what the kernel's buffers hold is all that moves).
        let (port, server) = streaming_server(256 << 20).await;
        let ep = Endpoint::plain("127.0.0.1".into(), port).with_max_body(64 * 1024);
        let r = ep.send(get(), Duration::from_secs(10)).await.unwrap();
        assert_eq!((r.body_cut, r.body.len()), (Some(64 * 1024), 64 * 1024));
        drop(ep);
        let written = tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("the server stops writing once the client is gone")
            .unwrap();
        assert!(written < 64 << 20, "{written} bytes went out");

        // A body within the limit is read whole.
        let (port, _server) = streaming_server(1000).await;
        let ep = Endpoint::plain("127.0.0.1".into(), port).with_max_body(1000);
        let r = ep.send(get(), Duration::from_secs(10)).await.unwrap();
        assert_eq!((r.body_cut, r.body.len()), (None, 1000));
    }
}

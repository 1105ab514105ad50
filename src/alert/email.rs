//! E-mail over SMTP to the bank's relay: EHLO, optional STARTTLS (tokio-rustls, then EHLO
//! again), MAIL FROM, RCPT TO, DATA. A small hand-written client, kept to the protocol's core on
//! purpose: an internal relay that takes mail from the monitor's host, so no authentication (and
//! so no password to keep out of logs). With `starttls = true` the relay must offer STARTTLS and
//! its certificate must verify against `ca_file` (PEM) or, without it, the public web roots.

use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{DeliveryError, EmailChannel, Notice};

/// The message: headers and body, lines ending in CRLF, dots stuffed.
pub fn message(c: &EmailChannel, n: &Notice) -> String {
    let subject =
        format!("[dispo {}] {}", n.event.as_str(), n.alert.summary).replace(['\r', '\n'], " ");
    let body = format!(
        "{}\n\nkey: {}\nseverity: {}\n",
        n.alert.description,
        n.alert.key,
        n.alert.severity.as_str()
    );
    let mut m = format!(
        "From: {}\r\nTo: {}\r\nSubject: {}\r\nDate: {}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        c.from,
        c.to.join(", "),
        subject,
        chrono::Utc::now().to_rfc2822()
    );
    for line in body.lines() {
        if line.starts_with('.') {
            m.push('.');
        }
        // A bare CR from data is no line end of its own.
        m.push_str(&line.replace('\r', " "));
        m.push_str("\r\n");
    }
    m
}

pub async fn send(c: &EmailChannel, n: &Notice) -> Result<(), DeliveryError> {
    let fail = |why: String| DeliveryError::Smtp {
        relay: c.smtp.clone(),
        why,
    };
    let run = async {
        let tcp = TcpStream::connect(&c.smtp)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let mut s = BufReader::new(tcp);
        expect(&mut s, "220").await.map_err(&fail)?;
        let caps = command(&mut s, "EHLO dispo", "250").await.map_err(&fail)?;
        if !c.starttls {
            return transaction(&mut s, c, n).await.map_err(&fail);
        }
        if !caps.iter().any(|l| {
            l.get(4..)
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("STARTTLS")
        }) {
            return Err(fail(
                "the relay does not offer STARTTLS (set starttls = false for a plain relay)".into(),
            ));
        }
        command(&mut s, "STARTTLS", "220").await.map_err(&fail)?;
        let tls = tls_connector(c).map_err(&fail)?;
        let host = c.smtp.rsplit_once(':').map_or(c.smtp.as_str(), |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = rustls_pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| fail(format!("{host:?} is not a server name: {e}")))?;
        let tls = tls
            .connect(name, s.into_inner())
            .await
            .map_err(|e| fail(format!("STARTTLS handshake: {e}")))?;
        let mut s = BufReader::new(tls);
        command(&mut s, "EHLO dispo", "250").await.map_err(&fail)?;
        transaction(&mut s, c, n).await.map_err(&fail)
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), run)
        .await
        .map_err(|_| fail("timed out".into()))?
}

fn tls_connector(c: &EmailChannel) -> Result<tokio_rustls::TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    match &c.ca_file {
        Some(f) => {
            let certs = crate::stet::certs::read_certs(f).map_err(|e| e.to_string())?;
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: {e}", f.display()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
}

/// MAIL FROM, RCPT TO, DATA, the message, QUIT.
async fn transaction<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut BufReader<S>,
    c: &EmailChannel,
    n: &Notice,
) -> Result<(), String> {
    command(s, &format!("MAIL FROM:<{}>", c.from), "250").await?;
    for t in &c.to {
        command(s, &format!("RCPT TO:<{t}>"), "250").await?;
    }
    command(s, "DATA", "354").await?;
    let mut m = message(c, n);
    m.push_str(".\r\n");
    s.write_all(m.as_bytes()).await.map_err(|e| e.to_string())?;
    s.flush().await.map_err(|e| e.to_string())?;
    expect(s, "250")
        .await
        .map_err(|e| format!("end of DATA: {e}"))?;
    let _ = s.write_all(b"QUIT\r\n").await;
    let _ = s.flush().await;
    Ok(())
}

/// Sends one command and checks the reply's code; returns the reply's lines.
async fn command<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut BufReader<S>,
    cmd: &str,
    code: &str,
) -> Result<Vec<String>, String> {
    s.write_all(format!("{cmd}\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    s.flush().await.map_err(|e| e.to_string())?;
    let verb = cmd.split([' ', ':']).next().unwrap_or(cmd);
    expect(s, code).await.map_err(|e| format!("{verb}: {e}"))
}

/// Reads one (possibly multi-line) reply and checks its code.
async fn expect<S: AsyncRead + Unpin>(
    r: &mut BufReader<S>,
    code: &str,
) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await.map_err(|e| e.to_string())? == 0 {
            return Err("the relay closed the connection".into());
        }
        if !line.starts_with(code) || line.len() < 4 {
            return Err(format!("expected {code}, got {}", line.trim_end()));
        }
        let more = line.as_bytes()[3] == b'-';
        lines.push(line.trim_end().to_owned());
        // "250-..." continues, "250 ..." ends.
        if !more {
            return Ok(lines);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The client against a loopback relay offering STARTTLS with a certificate of our own CA.

    use super::*;
    use crate::alert::{Alert, Event, Severity};

    fn notice() -> Notice {
        Notice {
            event: Event::Firing,
            alert: Alert {
                key: "13807-api-20241105T100000.000Z".into(),
                kind: "interface_down".into(),
                severity: Severity::Critical,
                establishment: Some("13807".into()),
                interface: Some("api".into()),
                summary: "dedicated interface of 13807 deemed unavailable".into(),
                description: "first line\n.a line starting with a dot".into(),
                starts_at_ms: 0,
                ends_at_ms: None,
            },
        }
    }

    /// A relay that offers STARTTLS, refuses MAIL before it, and records the DATA.
    async fn relay(acceptor: tokio_rustls::TlsAcceptor) -> (u16, tokio::task::JoinHandle<String>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let h = tokio::spawn(async move {
            let (tcp, _) = l.accept().await.unwrap();
            let mut s = BufReader::new(tcp);
            s.write_all(b"220 relay\r\n").await.unwrap();
            let mut line = String::new();
            s.read_line(&mut line).await.unwrap();
            assert_eq!(line, "EHLO dispo\r\n");
            s.write_all(b"250-relay\r\n250-8BITMIME\r\n250 STARTTLS\r\n")
                .await
                .unwrap();
            line.clear();
            s.read_line(&mut line).await.unwrap();
            assert_eq!(line, "STARTTLS\r\n");
            s.write_all(b"220 go ahead\r\n").await.unwrap();
            let tls = acceptor.accept(s.into_inner()).await.unwrap();
            let mut s = BufReader::new(tls);
            let (mut data, mut in_data, mut log) = (String::new(), false, Vec::new());
            loop {
                line.clear();
                if s.read_line(&mut line).await.unwrap() == 0 {
                    break;
                }
                if in_data {
                    if line == ".\r\n" {
                        in_data = false;
                        s.write_all(b"250 queued\r\n").await.unwrap();
                    } else {
                        data.push_str(&line);
                    }
                    continue;
                }
                log.push(line.trim_end().to_owned());
                let reply: &[u8] = match line.split(' ').next().unwrap_or("") {
                    "DATA\r\n" => {
                        in_data = true;
                        b"354 go on\r\n"
                    }
                    "QUIT\r\n" => b"221 bye\r\n",
                    _ => b"250 ok\r\n",
                };
                s.write_all(reply).await.unwrap();
                s.flush().await.unwrap();
                if line == "QUIT\r\n" {
                    break;
                }
            }
            format!("{}\n--\n{data}", log.join("\n"))
        });
        (port, h)
    }

    #[tokio::test]
    async fn starttls_then_the_mail_transaction() {
        crate::install_crypto_provider();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let dir = std::env::temp_dir().join(format!("dispo-smtp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("relay.pem");
        std::fs::write(&ca, cert.pem()).unwrap();
        let server = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let (port, h) = relay(tokio_rustls::TlsAcceptor::from(Arc::new(server))).await;
        let c = EmailChannel {
            smtp: format!("127.0.0.1:{port}"),
            from: "dispo@bank.example".into(),
            to: vec!["a@bank.example".into(), "b@bank.example".into()],
            starttls: true,
            ca_file: Some(ca),
            name: None,
        };
        send(&c, &notice()).await.unwrap();
        let got = h.await.unwrap();
        let (log, data) = got.split_once("\n--\n").unwrap();
        assert_eq!(
            log,
            "EHLO dispo\nMAIL FROM:<dispo@bank.example>\nRCPT TO:<a@bank.example>\nRCPT TO:<b@bank.example>\nDATA\nQUIT"
        );
        assert!(data.contains("To: a@bank.example, b@bank.example\r\n"));
        assert!(data.contains(
            "Subject: [dispo firing] dedicated interface of 13807 deemed unavailable\r\n"
        ));
        // The body line starting with a dot is stuffed.
        assert!(
            data.contains("\r\n..a line starting with a dot\r\n"),
            "{data}"
        );
    }

    #[tokio::test]
    async fn starttls_required_but_not_offered_is_an_error() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (tcp, _) = l.accept().await.unwrap();
            let mut s = BufReader::new(tcp);
            s.write_all(b"220 relay\r\n").await.unwrap();
            let mut line = String::new();
            s.read_line(&mut line).await.unwrap();
            s.write_all(b"250 relay\r\n").await.unwrap();
            s.read_line(&mut line).await.ok();
        });
        let c = EmailChannel {
            smtp: format!("127.0.0.1:{port}"),
            from: "dispo@bank.example".into(),
            to: vec!["a@bank.example".into()],
            starttls: true,
            ca_file: None,
            name: None,
        };
        let e = send(&c, &notice()).await.unwrap_err().to_string();
        assert!(e.contains("does not offer STARTTLS"), "{e}");
    }
}

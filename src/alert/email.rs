//! E-mail over plain SMTP to the bank's relay: EHLO, MAIL FROM, RCPT TO, DATA. Kept to the
//! protocol's core on purpose (an internal relay); no authentication, no TLS.

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
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
        "From: {}\r\nTo: {}\r\nSubject: {}\r\nDate: {}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
        c.from,
        c.to.join(", "),
        subject,
        chrono::Utc::now().to_rfc2822()
    );
    for line in body.lines() {
        if line.starts_with('.') {
            m.push('.');
        }
        m.push_str(line);
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
        let stream = TcpStream::connect(&c.smtp)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::new(r);
        expect(&mut r, "220").await.map_err(fail)?;
        let mut cmds = vec!["EHLO dispo".to_string(), format!("MAIL FROM:<{}>", c.from)];
        cmds.extend(c.to.iter().map(|t| format!("RCPT TO:<{t}>")));
        cmds.push("DATA".into());
        for cmd in cmds {
            w.write_all(format!("{cmd}\r\n").as_bytes())
                .await
                .map_err(|e| fail(e.to_string()))?;
            let want = if cmd == "DATA" { "354" } else { "250" };
            expect(&mut r, want)
                .await
                .map_err(|e| fail(format!("{cmd}: {e}")))?;
        }
        w.write_all(message(c, n).as_bytes())
            .await
            .map_err(|e| fail(e.to_string()))?;
        w.write_all(b".\r\n")
            .await
            .map_err(|e| fail(e.to_string()))?;
        expect(&mut r, "250").await.map_err(fail)?;
        let _ = w.write_all(b"QUIT\r\n").await;
        Ok(())
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), run)
        .await
        .map_err(|_| fail("timed out".into()))?
}

/// Reads one (possibly multi-line) reply and checks its code.
async fn expect(
    r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    code: &str,
) -> Result<(), String> {
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await.map_err(|e| e.to_string())? == 0 {
            return Err("the relay closed the connection".into());
        }
        if !line.starts_with(code) {
            return Err(format!("expected {code}, got {}", line.trim_end()));
        }
        // "250-..." continues, "250 ..." ends.
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
}

//! `dispo check-config --print`: the configuration as `dispo run` will use it, `[defaults]`
//! applied and `${VAR}` expanded, in TOML an operator can read. Secrets are masked: the
//! sandbox login and SMS code, the refresh token (only whether its variable is set), and the
//! path and query of webhook URLs (Slack and most webhooks carry their token there).

use std::fmt::Write as _;

use super::{Config, Grant, Step};

/// What a masked value is printed as.
pub const MASK: &str = "********";

fn q(s: &str) -> String {
    // TOML basic strings escape like JSON strings.
    serde_json::to_string(s).unwrap_or_default()
}

/// An URL without what may be a secret (path, query, user info).
fn masked_url(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(p) => {
            let port = p.port().map(|n| format!(":{n}")).unwrap_or_default();
            let rest = if p.path().len() > 1 || p.query().is_some() {
                format!("/{MASK}")
            } else {
                String::new()
            };
            format!(
                "{}://{}{port}{rest}",
                p.scheme(),
                p.host_str().unwrap_or_default()
            )
        }
        Err(_) => MASK.into(),
    }
}

/// A JSON value as a TOML value (objects as inline tables); `None` for null.
fn toml_value(v: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    Some(match v {
        Value::Null => return None,
        Value::String(s) => q(s),
        Value::Array(a) => format!(
            "[{}]",
            a.iter()
                .filter_map(toml_value)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Object(o) => format!(
            "{{ {} }}",
            o.iter()
                .filter_map(|(k, v)| toml_value(v).map(|v| format!("{k} = {v}")))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    })
}

/// The resolved configuration, secrets masked.
pub fn render(cfg: &Config) -> String {
    let mut o = String::new();
    let m = &cfg.monitor;
    let _ = writeln!(
        o,
        "# {} as dispo run reads it: [defaults] applied, variables expanded, paths resolved, secrets masked",
        cfg.path.display()
    );
    let _ = writeln!(o, "\n[monitor]");
    let _ = writeln!(o, "id = {}", q(&m.id));
    let _ = writeln!(o, "schedule_tz = {}", q(m.schedule_tz.name()));
    let _ = writeln!(o, "timeout_s = {}", m.timeout.as_secs_f64());
    let _ = writeln!(
        o,
        "burst_interval_s = {}",
        m.burst_interval.map(|d| d.as_secs_f64()).unwrap_or(0.0)
    );
    let _ = writeln!(o, "heartbeat_s = {}", m.heartbeat.as_secs_f64());
    let _ = writeln!(o, "reuse_connections = {}", m.reuse_connections);
    let _ = writeln!(o, "max_body_bytes = {}", m.max_body_bytes);
    let canary: Vec<String> = m.canary.iter().map(|u| q(u.as_str())).collect();
    let _ = writeln!(o, "canary = [{}]", canary.join(", "));

    for e in &cfg.establishments {
        let _ = writeln!(o, "\n[[establishment]]");
        let _ = writeln!(o, "code = {}", q(e.code.as_str()));
        let _ = writeln!(o, "name = {}", q(&e.name));
        let _ = writeln!(o, "base_url = {}", q(e.base_url.as_str()));
        if let Some(u) = &e.psu_url {
            let _ = writeln!(o, "psu_url = {}", q(u.as_str()));
        }
        if let Some(ip) = &e.resolve {
            let _ = writeln!(o, "resolve = {}", q(&ip.to_string()));
        }
        let path = |p: &std::path::Path| q(&p.display().to_string());
        let _ = writeln!(o, "ca = {}", path(&e.ca));
        let _ = writeln!(o, "client_id = {}", q(&e.client_id));
        let _ = writeln!(o, "qwac_cert = {}", path(&e.qwac_cert));
        let _ = writeln!(o, "qwac_key = {}", path(&e.qwac_key));
        let _ = writeln!(o, "qseal_key = {}", path(&e.qseal_key));
        let _ = writeln!(o, "key_id = {}", q(&e.key_id));
        if !e.signed_headers.is_empty() {
            let h: Vec<String> = e.signed_headers.iter().map(|s| q(s)).collect();
            let _ = writeln!(o, "signed_headers = [{}]", h.join(", "));
        }
        if let Some(ip) = &e.psu_ip_address {
            let _ = writeln!(o, "psu_ip_address = {}", q(ip));
        }
        if let Some(f) = &e.refresh_token_file {
            let _ = writeln!(o, "refresh_token_file = {}", path(f));
        }
        if let Some(v) = &e.refresh_token_env {
            let state = match std::env::var_os(v) {
                Some(x) if !x.is_empty() => format!("set, value {MASK}"),
                _ => "NOT SET".to_string(),
            };
            let _ = writeln!(o, "refresh_token_env = {}  # {state}", q(v));
        }
    }

    for p in &cfg.probes {
        let _ = writeln!(o, "\n[[probe]]");
        let _ = writeln!(o, "name = {}", q(&p.name));
        let _ = writeln!(o, "step = {}", q(p.step.name()));
        let _ = writeln!(o, "schedule = {}", q(&p.schedule_text));
        if !p.establishments.is_empty() {
            let c: Vec<String> = p.establishments.iter().map(|c| q(c.as_str())).collect();
            let _ = writeln!(o, "establishments = [{}]", c.join(", "));
        }
        match &p.step {
            Step::FundsConfirmation {
                stet,
                iban,
                amount,
                expect,
            } => {
                let _ = writeln!(
                    o,
                    "stet = {}",
                    q(match stet {
                        crate::stet::models::StetVersion::V140 => "1.4.0",
                        crate::stet::models::StetVersion::V142 => "1.4.2",
                    })
                );
                let _ = writeln!(o, "iban = {}", q(&iban.to_string()));
                let _ = writeln!(o, "amount = {}", q(&amount.to_string()));
                let _ = writeln!(o, "expect = {expect}");
            }
            Step::Psu { marker } => {
                let _ = writeln!(o, "marker = {}", q(marker));
            }
            Step::Token | Step::Fallback => {}
        }
        match &p.grant {
            Grant::ClientCredentials => {}
            Grant::RefreshToken => {
                let _ = writeln!(o, "grant = \"refresh_token\"");
            }
            Grant::AuthorizationCode { .. } => {
                let _ = writeln!(o, "grant = \"authorization_code\"");
                let _ = writeln!(o, "login = {}", q(MASK));
                let _ = writeln!(o, "sms_code = {}", q(MASK));
            }
        }
    }

    for s in &cfg.sources {
        let _ = writeln!(o, "\n[[source]]");
        let _ = writeln!(o, "name = {}", q(&s.name));
        let _ = writeln!(o, "path = {}", q(&s.path.display().to_string()));
        let _ = writeln!(
            o,
            "format = {}",
            q(&format!("{:?}", s.format).to_lowercase())
        );
        let _ = writeln!(o, "hold_s = {}", s.hold.as_secs_f64());
        let _ = writeln!(o, "poll_s = {}", s.poll.as_secs_f64());
        let _ = writeln!(
            o,
            "from = {}",
            q(if s.from_start { "start" } else { "end" })
        );
    }

    if let serde_json::Value::Object(c) = crate::engine::json::settings(&cfg.counting) {
        let _ = writeln!(o, "\n[counting]");
        for (k, v) in &c {
            if let Some(v) = toml_value(v) {
                let _ = writeln!(o, "{k} = {v}");
            }
        }
    }

    let a = &cfg.alerts;
    let _ = writeln!(o, "\n[alerts]");
    let _ = writeln!(o, "reminder_s = {}", a.reminder_s);
    let _ = writeln!(o, "cert_expiry_days = {}", a.cert_expiry_days);
    let _ = writeln!(o, "refresh_expiry_days = {}", a.refresh_expiry_days);
    let _ = writeln!(
        o,
        "unjustified_fallback_per_day = {}",
        a.unjustified_fallback_per_day
    );
    let _ = writeln!(o, "check_interval_s = {}", a.check_interval_s);
    let _ = writeln!(o, "max_delivery_attempts = {}", a.max_delivery_attempts);
    let _ = writeln!(o, "keep_delivered_days = {}", a.keep_delivered_days);
    for (kind, list) in [
        ("webhook", &a.webhook),
        ("slack", &a.slack),
        ("alertmanager", &a.alertmanager),
    ] {
        for c in list {
            let _ = writeln!(o, "\n[[alerts.{kind}]]");
            if let Some(n) = &c.name {
                let _ = writeln!(o, "name = {}", q(n));
            }
            let _ = writeln!(o, "url = {}", q(&masked_url(&c.url)));
        }
    }
    for c in &a.email {
        let _ = writeln!(o, "\n[[alerts.email]]");
        if let Some(n) = &c.name {
            let _ = writeln!(o, "name = {}", q(n));
        }
        let _ = writeln!(o, "smtp = {}", q(&c.smtp));
        let _ = writeln!(o, "from = {}", q(&c.from));
        let to: Vec<String> = c.to.iter().map(|t| q(t)).collect();
        let _ = writeln!(o, "to = [{}]", to.join(", "));
        let _ = writeln!(o, "starttls = {}", c.starttls);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::masked_url;

    #[test]
    fn urls_lose_their_path_and_query() {
        assert_eq!(
            masked_url("https://hooks.slack.com/services/T0/B0/secret"),
            "https://hooks.slack.com/********"
        );
        assert_eq!(
            masked_url("http://127.0.0.1:9093/"),
            "http://127.0.0.1:9093"
        );
        assert_eq!(
            masked_url("https://user:pw@x.example/?token=1"),
            "https://x.example/********"
        );
    }
}

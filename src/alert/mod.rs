//! Live Art. 33 detection and alert delivery.
//!
//! In: observations as `dispo run` records them (the live detector runs the engine's own episode
//! state machine over them), the probe configuration (certificates, `[alerts]` channels) and the
//! store (weekly watch, fallback use). Out: alerts — firing when the dedicated interface is deemed
//! down (five failures within 30 s), resolved with the duration when it recovers, reminders while
//! it stays down, and warnings (weekly watch levels, certificates expiring, unjustified fallback
//! use, the monitor's own errors) — written to a durable outbox in SQLite first, then delivered to
//! every channel with retries and backoff, so no alert is lost when a channel or the monitor
//! restarts. One file per channel.

pub mod alertmanager;
pub mod checks;
pub mod email;
pub mod live;
pub mod outbox;
pub mod quorum;
pub mod slack;
pub mod webhook;

use serde::{Deserialize, Serialize};

/// The `[alerts]` table of a probe configuration.
///
/// ```toml
/// [alerts]
/// reminder_s = 3600                 # re-send while an episode stays open (0 = never)
/// unjustified_fallback_per_day = 1  # alert when a TPP's unjustified fallback uses reach this
/// [[alerts.webhook]]
/// url = "http://127.0.0.1:9000/hook"
/// [[alerts.slack]]
/// url = "https://hooks.slack.com/services/..."
/// [[alerts.alertmanager]]
/// url = "http://127.0.0.1:9093"     # POSTs to <url>/api/v2/alerts
/// [[alerts.email]]
/// smtp = "127.0.0.1:25"
/// from = "dispo@bank.example"
/// to = ["oncall@bank.example"]
/// starttls = false                  # true: upgrade with STARTTLS; ca_file = "relay-ca.pem"
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    #[serde(deserialize_with = "unique_names")]
    pub webhook: Vec<UrlChannel>,
    #[serde(deserialize_with = "unique_names")]
    pub slack: Vec<UrlChannel>,
    #[serde(deserialize_with = "unique_names")]
    pub alertmanager: Vec<UrlChannel>,
    #[serde(deserialize_with = "unique_names")]
    pub email: Vec<EmailChannel>,
    /// Seconds between reminders of an alert still firing (at most daily for certificates,
    /// tokens, weekly watch and fallback use); 0 = no reminders. Default 3600.
    pub reminder_s: u64,
    /// Certificates expiring within this many days raise a warning. Default 30.
    pub cert_expiry_days: i64,
    /// Refresh tokens within this many days of the end of their 180 days raise a warning.
    /// Default 14.
    pub refresh_expiry_days: i64,
    /// Unjustified fallback uses by one TPP in a day that raise an alert. Default 1.
    pub unjustified_fallback_per_day: u64,
    /// Seconds between the periodic checks (weekly watch, fallback, certificates). Default 300.
    pub check_interval_s: u64,
    /// Failed attempts after which a notice is given up: it stays in the outbox marked
    /// abandoned, and an `alert_undelivered` alert goes to the other channels. Default 50 (with
    /// the backoff, about 3 h 30 min of retrying); 0 = never give up.
    pub max_delivery_attempts: u64,
    /// Notices delivered (or given up) more than this many days ago are pruned from the outbox.
    /// Default 30; 0 = keep them all.
    pub keep_delivered_days: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            webhook: vec![],
            slack: vec![],
            alertmanager: vec![],
            email: vec![],
            reminder_s: 3600,
            cert_expiry_days: 30,
            refresh_expiry_days: 14,
            unjustified_fallback_per_day: 1,
            check_interval_s: 300,
            max_delivery_attempts: 50,
            keep_delivered_days: 30,
        }
    }
}

/// What every channel of a configuration does with notices it cannot deliver, and how long it
/// keeps those it delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// 0: never give up.
    pub max_attempts: u64,
    /// 0: never prune.
    pub keep_delivered_ms: i64,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        let d = AlertsConfig::default();
        Self {
            max_attempts: d.max_delivery_attempts,
            keep_delivered_ms: d.keep_delivered_days as i64 * 86_400_000,
        }
    }
}

/// A channel table that may be named.
trait Named {
    fn name(&self) -> Option<&str>;
}
impl Named for UrlChannel {
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}
impl Named for EmailChannel {
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

/// Channels of a kind, their names unique (they key the outbox).
fn unique_names<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Named + Deserialize<'de>,
{
    let v = Vec::<T>::deserialize(d)?;
    let mut seen = std::collections::BTreeSet::new();
    for c in &v {
        if let Some(n) = c.name()
            && !seen.insert(n.to_owned())
        {
            return Err(serde::de::Error::custom(format!(
                "two channels of a kind are named {n:?}: a name keys the channel's waiting alerts, give each its own"
            )));
        }
    }
    Ok(v)
}

/// A channel's name: letters, digits, `-`, `_`, `.`; 1 to 64 of them.
fn channel_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(serde::de::Error::custom(format!(
            "channel name {s:?}: use 1 to 64 letters, digits, '-', '_' or '.' (e.g. \"oncall\")"
        )));
    }
    Ok(Some(s))
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlChannel {
    /// An `http` or `https` URL (checked when the configuration is read).
    #[serde(deserialize_with = "http_url")]
    pub url: String,
    /// Names the channel in the outbox and the logs, so its waiting notices follow it when its
    /// URL changes. Default: the kind (`slack`), then `slack-2`, `slack-3` ... in the order of
    /// the file: name channels when a kind has several.
    #[serde(default, deserialize_with = "channel_name")]
    pub name: Option<String>,
}

fn http_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    match url::Url::parse(&s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(s),
        _ => Err(serde::de::Error::custom(format!(
            "{:?} is not an http(s) URL (e.g. \"https://hooks.example/alert\")",
            redact_url_for_error(&s)
        ))),
    }
}

/// What of a bad URL an error message may show: its start, never a path that may be secret.
fn redact_url_for_error(s: &str) -> String {
    s.chars()
        .take_while(|c| *c != '/' || s.len() < 12)
        .take(24)
        .collect()
}

fn smtp_relay<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    match s.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok() => Ok(s),
        _ => Err(serde::de::Error::custom(format!(
            "{s:?} is not host:port (e.g. \"relay.bank.example:25\")"
        ))),
    }
}

/// An address fit for an SMTP command and a mail header: one `@`, no control character (a CR or
/// LF would add a header or an SMTP command), no space, `<`, `>`, `,` or quote.
fn plain_address(a: &str) -> bool {
    a.contains('@')
        && !a
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "<>,\"\\;".contains(c))
}

fn sender<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if !plain_address(&s) {
        return Err(serde::de::Error::custom(format!(
            "`from` = {s:?} is not a plain address like dispo@bank.example (no line break, space, <, >, comma or quote)"
        )));
    }
    Ok(s)
}

fn recipients<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    if v.is_empty() {
        return Err(serde::de::Error::custom(
            "`to` needs at least one address, each like oncall@bank.example",
        ));
    }
    if let Some(bad) = v.iter().find(|a| !plain_address(a)) {
        return Err(serde::de::Error::custom(format!(
            "`to` needs at least one address, each like oncall@bank.example: {bad:?} is not (no line break, space, <, >, comma or quote)"
        )));
    }
    Ok(v)
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailChannel {
    /// `host:port` of the SMTP relay (a relay inside the bank's network; no authentication).
    #[serde(deserialize_with = "smtp_relay")]
    pub smtp: String,
    /// The sender address (plain: no line break, space, `<`, `>`, comma or quote).
    #[serde(deserialize_with = "sender")]
    pub from: String,
    #[serde(deserialize_with = "recipients")]
    pub to: Vec<String>,
    /// Upgrade the connection with STARTTLS (the relay must offer it). Default false.
    #[serde(default)]
    pub starttls: bool,
    /// PEM file of the CA that signed the relay's certificate; default: the public web roots.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// As for the other channels (default `email`, `email-2` ...).
    #[serde(default, deserialize_with = "channel_name")]
    pub name: Option<String>,
}

/// How urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// What happened to an alert, as a delivery says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Firing,
    Reminder,
    Resolved,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Firing => "firing",
            Event::Reminder => "reminder",
            Event::Resolved => "resolved",
        }
    }
}

/// One alert, deduplicated by `key` (one per episode, per week, per certificate...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub key: String,
    /// `interface_down`, `weekly_watch`, `certificate_expiry`, `unjustified_fallback`, `probe_error`,
    /// `monitor_offline` (everything fails at once and the canaries too: `probe::canary`),
    /// `vantage_fault` (this node sees an outage the other vantages do not: `quorum`).
    pub kind: String,
    pub severity: Severity,
    pub establishment: Option<String>,
    pub interface: Option<String>,
    pub summary: String,
    pub description: String,
    pub starts_at_ms: i64,
    pub ends_at_ms: Option<i64>,
}

/// One delivery to make: an alert and what happened to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub event: Event,
    pub alert: Alert,
}

/// A channel failed to take a notice (it will be retried).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("HTTP delivery to {url} failed: {why}")]
    Http { url: String, why: String },
    /// Never followed: a client that follows a 301/302 turns the POST into a body-less GET, gets
    /// 200 and the alert is lost while marked delivered.
    #[error(
        "HTTP delivery to {url} failed: answered {status}, a redirect to {location}, not followed (a redirected POST loses its body): configure the channel with the final URL"
    )]
    Redirect {
        url: String,
        status: u16,
        location: String,
    },
    #[error("e-mail delivery through {relay} failed: {why}")]
    Smtp { relay: String, why: String },
}

impl DeliveryError {
    /// Why, in one word, for the `dispo_alert_delivery_failures_total` metric.
    pub fn reason(&self) -> &'static str {
        match self {
            DeliveryError::Http { .. } => "http",
            DeliveryError::Redirect { .. } => "redirect",
            DeliveryError::Smtp { .. } => "smtp",
        }
    }
}

/// The HTTP client of alert deliveries: never follows a redirect (a 3xx is a failed delivery),
/// gives up on a request after 10 s.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}

/// Where a channel delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Webhook(String),
    Slack(String),
    Alertmanager(String),
    Email(EmailChannel),
}

/// A configured channel: its name (which keys its notices in the outbox), where it delivers,
/// and the configuration's delivery policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub name: String,
    pub target: Target,
    pub policy: DeliveryPolicy,
}

/// A URL fit for logs: scheme, host and port only. The path of a Slack hook and any user
/// information are secrets.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}/…",
            u.scheme(),
            u.host_str().unwrap_or("?"),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "(unparsable URL)".into(),
    }
}

impl Channel {
    /// A channel named after its kind, with the default policy.
    pub fn new(target: Target) -> Self {
        let name = Self::kind_of(&target).to_owned();
        Self {
            name,
            target,
            policy: DeliveryPolicy::default(),
        }
    }

    fn kind_of(t: &Target) -> &'static str {
        match t {
            Target::Webhook(_) => "webhook",
            Target::Slack(_) => "slack",
            Target::Alertmanager(_) => "alertmanager",
            Target::Email(_) => "email",
        }
    }

    /// The kind of channel, as configured (`webhook`, `slack`, `alertmanager`, `email`).
    pub fn kind(&self) -> &'static str {
        Self::kind_of(&self.target)
    }

    /// The failure of a send that took longer than `limit`.
    pub fn timed_out(&self, limit: std::time::Duration) -> DeliveryError {
        let why = format!("no outcome within {} s", limit.as_secs());
        match &self.target {
            Target::Webhook(u) | Target::Slack(u) | Target::Alertmanager(u) => {
                DeliveryError::Http {
                    url: redact_url(u),
                    why,
                }
            }
            Target::Email(e) => DeliveryError::Smtp {
                relay: e.smtp.clone(),
                why,
            },
        }
    }

    /// How logs and errors name the channel: its name, no URL path, no credentials.
    pub fn label(&self) -> String {
        let at = match &self.target {
            Target::Webhook(u) | Target::Slack(u) | Target::Alertmanager(u) => redact_url(u),
            Target::Email(e) => format!("via {}", e.smtp),
        };
        format!("{} {:?} {at}", self.kind(), self.name)
    }

    /// The channel's key in the outbox: `<kind>:<name>`. No URL: a changed URL keeps the
    /// channel's waiting notices, and no secret path sits in the database.
    pub fn id(&self) -> String {
        format!("{}:{}", self.kind(), self.name)
    }

    /// The key of earlier versions, which held the URL (the outbox moves those rows over).
    pub fn legacy_id(&self) -> String {
        match &self.target {
            Target::Webhook(u) => format!("webhook:{u}"),
            Target::Slack(u) => format!("slack:{u}"),
            Target::Alertmanager(u) => format!("alertmanager:{u}"),
            Target::Email(e) => format!("email:{}:{}", e.smtp, e.to.join(",")),
        }
    }

    pub async fn deliver(&self, http: &reqwest::Client, n: &Notice) -> Result<(), DeliveryError> {
        match &self.target {
            Target::Webhook(u) => webhook::send(http, u, n).await,
            Target::Slack(u) => slack::send(http, u, n).await,
            Target::Alertmanager(u) => alertmanager::send(http, u, n).await,
            Target::Email(e) => email::send(e, n).await,
        }
    }
}

impl AlertsConfig {
    /// The channels, named (their own name, or the kind, then `<kind>-2` ...), with the policy.
    pub fn channels(&self) -> Vec<Channel> {
        let policy = DeliveryPolicy {
            max_attempts: self.max_delivery_attempts,
            keep_delivered_ms: (self.keep_delivered_days as i64).saturating_mul(86_400_000),
        };
        let mut v: Vec<Channel> = Vec::new();
        let mut push = |i: usize, name: Option<&String>, target: Target| {
            let kind = Channel::kind_of(&target);
            let name = name.cloned().unwrap_or_else(|| {
                if i == 0 {
                    kind.to_owned()
                } else {
                    format!("{kind}-{}", i + 1)
                }
            });
            v.push(Channel {
                name,
                target,
                policy,
            });
        };
        for (i, c) in self.webhook.iter().enumerate() {
            push(i, c.name.as_ref(), Target::Webhook(c.url.clone()));
        }
        for (i, c) in self.slack.iter().enumerate() {
            push(i, c.name.as_ref(), Target::Slack(c.url.clone()));
        }
        for (i, c) in self.alertmanager.iter().enumerate() {
            push(i, c.name.as_ref(), Target::Alertmanager(c.url.clone()));
        }
        for (i, c) in self.email.iter().enumerate() {
            push(i, c.name.as_ref(), Target::Email(c.clone()));
        }
        v
    }
}

/// Posts JSON, mapping any failure (including a non-2xx answer) to a retryable error.
pub(crate) async fn post_json(
    http: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> Result<(), DeliveryError> {
    let r = http
        .post(url)
        .json(body)
        .send()
        .await
        .map_err(|e| DeliveryError::Http {
            url: redact_url(url),
            why: error_chain(&e.without_url()),
        })?;
    if r.status().is_success() {
        Ok(())
    } else if r.status().is_redirection() {
        let location = r
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(|l| match url::Url::parse(url).and_then(|u| u.join(l)) {
                Ok(to) => redact_url(to.as_str()),
                Err(_) => "(unparsable location)".into(),
            })
            .unwrap_or_else(|| "(no location)".into());
        Err(DeliveryError::Redirect {
            url: redact_url(url),
            status: r.status().as_u16(),
            location,
        })
    } else {
        Err(DeliveryError::Http {
            url: redact_url(url),
            why: format!("answered {}", r.status()),
        })
    }
}

/// An error and its causes on one line ("connection refused" hides below reqwest's words).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_logs_lose_their_secrets() {
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T00/B00/XXXXsecret"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            redact_url("http://user:pw@127.0.0.1:9093/x?token=1"),
            "http://127.0.0.1:9093/…"
        );
        let c = Channel::new(Target::Slack(
            "https://hooks.slack.com/services/T00/B00/XXXXsecret".into(),
        ));
        assert!(!c.label().contains("secret"));
        assert_eq!(
            c.id(),
            "slack:slack",
            "the outbox knows the channel by its name"
        );
    }

    /// A relay answering 302 (http -> https, a moved hook) is a failed delivery: the POST is
    /// not turned into a GET that "succeeds" at the new place.
    #[tokio::test]
    async fn a_redirect_is_a_failed_delivery_never_followed() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        crate::install_crypto_provider();
        let reached = std::sync::Arc::new(AtomicUsize::new(0));
        let r = reached.clone();
        let app = axum::Router::new()
            .route(
                "/moved/secret-path",
                axum::routing::any(move || {
                    r.fetch_add(1, Ordering::SeqCst);
                    async { "ok" }
                }),
            )
            .fallback(|| async {
                (
                    http::StatusCode::FOUND,
                    [(http::header::LOCATION, "/moved/secret-path")],
                )
            });
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(l, app).await });
        let notice = Notice {
            event: Event::Firing,
            alert: Alert {
                key: "k".into(),
                kind: "interface_down".into(),
                severity: Severity::Critical,
                establishment: None,
                interface: None,
                summary: "down".into(),
                description: "d".into(),
                starts_at_ms: 0,
                ends_at_ms: None,
            },
        };
        let url = format!("http://127.0.0.1:{port}/hook");
        for c in [
            Channel::new(Target::Webhook(url.clone())),
            Channel::new(Target::Slack(url.clone())),
            Channel::new(Target::Alertmanager(format!("http://127.0.0.1:{port}"))),
        ] {
            let e = c.deliver(&http_client(), &notice).await.unwrap_err();
            assert_eq!(e.reason(), "redirect", "{}: {e}", c.kind());
            let msg = e.to_string();
            assert!(msg.contains("302") && msg.contains("not followed"), "{msg}");
            assert!(!msg.contains("secret-path"), "{msg}");
        }
        assert_eq!(
            reached.load(Ordering::SeqCst),
            0,
            "the redirect was followed"
        );
    }

    #[test]
    fn alerts_configuration_defaults_and_typos() {
        let c: AlertsConfig = toml::from_str("").unwrap();
        assert_eq!(c, AlertsConfig::default());
        assert_eq!(
            (c.reminder_s, c.cert_expiry_days, c.refresh_expiry_days),
            (3600, 30, 14)
        );
        let e = toml::from_str::<AlertsConfig>("reminders_s = 5").unwrap_err();
        assert!(e.to_string().contains("reminders_s"), "{e}");
        let c: AlertsConfig = toml::from_str(
            "[[email]]\nsmtp = \"relay:25\"\nfrom = \"a@b\"\nto = [\"c@d\"]\n[[alertmanager]]\nurl = \"http://am:9093\"",
        )
        .unwrap();
        assert_eq!(c.channels().len(), 2);
        // Names key the outbox: given, or the kind then <kind>-2 ...
        let c: AlertsConfig = toml::from_str(
            "max_delivery_attempts = 7\n[[slack]]\nurl = \"https://a/b\"\n[[slack]]\nurl = \"https://c/d\"\n[[webhook]]\nurl = \"https://e/f\"\nname = \"oncall\"",
        )
        .unwrap();
        let ids: Vec<String> = c.channels().iter().map(Channel::id).collect();
        assert_eq!(ids, ["webhook:oncall", "slack:slack", "slack:slack-2"]);
        assert_eq!(c.channels()[0].policy.max_attempts, 7);
        assert_eq!(
            (
                AlertsConfig::default().max_delivery_attempts,
                AlertsConfig::default().keep_delivered_days
            ),
            (50, 30)
        );
        for (bad, says) in [
            (
                "[[slack]]\nurl = \"hooks.slack.com/services/T0/B0/secret\"",
                "not an http(s) URL",
            ),
            ("[[webhook]]\nurl = \"ftp://x/y\"", "not an http(s) URL"),
            (
                "[[email]]\nsmtp = \"relay\"\nfrom = \"a@b\"\nto = [\"c@d\"]",
                "not host:port",
            ),
            (
                "[[email]]\nsmtp = \"relay:25\"\nfrom = \"a@b\"\nto = []",
                "at least one address",
            ),
            (
                "[[slack]]\nurl = \"https://a/b\"\nname = \"x\"\n[[slack]]\nurl = \"https://c/d\"\nname = \"x\"",
                "two channels of a kind are named \"x\"",
            ),
            (
                "[[webhook]]\nurl = \"https://a/b\"\nname = \"on call\"",
                "channel name",
            ),
            // Header and SMTP command injection through the addresses.
            (
                "[[email]]\nsmtp = \"relay:25\"\nfrom = \"a@b\\r\\nBcc: all@bank\"\nto = [\"c@d\"]",
                "not a plain address",
            ),
            (
                "[[email]]\nsmtp = \"relay:25\"\nfrom = \"a@b\"\nto = [\"c@d\\nRCPT TO:<x@y>\"]",
                "is not (no line break",
            ),
            (
                "[[email]]\nsmtp = \"relay:25\"\nfrom = \"a@b\"\nto = [\"c@d>\"]",
                "is not (no line break",
            ),
            (
                "[[email]]\nsmtp = \"relay:25\"\nfrom = \"Dispo <a@b>\"\nto = [\"c@d\"]",
                "not a plain address",
            ),
        ] {
            // The configuration loader shows the message (with the file and line).
            let e = toml::from_str::<AlertsConfig>(bad).unwrap_err();
            let e = e.message();
            assert!(e.contains(says), "{bad}: {e}");
            assert!(!e.contains("secret"), "{e}");
        }
    }
}

/// Fixtures the alert tests share: a store in a fresh temporary directory, an observation.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::domain::{Interface, Observation, Outcome, Service, Source};
    use crate::store::Store;

    pub async fn store(area: &str, name: &str) -> Store {
        let dir = std::env::temp_dir().join(format!("dispo-{area}-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Store::open(&dir.join("t.db")).await.unwrap()
    }

    /// A gateway-logged cbpii request of 13807 by PSDFR-ACPR-12345 (200 ms when answered).
    pub fn obs(at: i64, id: &str, iface: Interface, status: Option<u16>) -> Observation {
        Observation {
            received_at_ms: at,
            establishment: "13807".parse().unwrap(),
            interface: iface,
            service: Service::new("cbpii").unwrap(),
            source: Source::Log,
            tpp: Some("PSDFR-ACPR-12345".into()),
            status,
            latency_ms: status.map(|_| 200.0),
            error_code: None,
            request_id: id.into(),
            outcome: Outcome::from_reply(status, None),
            vantage: crate::domain::Vantage::imported(Source::Log),
        }
    }
}

//! Probe definitions: a TOML file an operator reads and edits, turned once into validated types.
//! Every problem is reported with its file and line, all of them at once (`dispo check-config`),
//! so the rest of the code never re-checks configuration.
//!
//! ```toml
//! [monitor]                      # all optional
//! id = "sandbox"                 # names this monitor in heartbeats
//! schedule_tz = "Europe/Paris"   # zone of the cron schedules
//! timeout_s = 30                 # per request
//! burst_interval_s = 5           # confirmation burst after a failure (0 = off)
//! max_body_bytes = 1048576       # most of an answer's body read (past it: unexpected)
//! canary = ["https://www.example.org/"]  # asked when everything fails at once (probe::canary)
//!
//! [[establishment]]
//! code = "13807"
//! base_url = "https://www.13807.sim.localhost:8443"
//! psu_url = "https://psu.13807.sim.localhost:8443/se-connecter/sso"
//! resolve = "127.0.0.1"          # optional address pin, like curl --resolve
//! ca = "../sandbox-pki/ca.pem"   # paths are relative to this file
//! client_id = "PSDFR-ACPR-12345"
//! qwac_cert = "..."; qwac_key = "..."; qseal_cert = "..."; qseal_key = "..."
//!
//! [[probe]]
//! name = "cbpii-1.4.2"
//! step = "funds-confirmation"    # token | funds-confirmation | fallback | psu
//! schedule = "* * * * *"         # crontab (5 fields) or with seconds (6/7 fields)
//! stet = "1.4.2"
//! iban = "FR7613807008043001965405255"
//! amount = "10.00"
//! expect = true
//! ```
//! `[counting]` holds the counting settings (`engine::Settings`) and `[alerts]` the alert channels.
//! `[[source]]` names gateway logs `dispo run` follows as they are written ([`crate::follow`]):
//!
//! ```toml
//! [[source]]
//! path = "/var/log/kong/psd2.log"            # relative to this file
//! format = "jsonl"                           # jsonl (needs mapping) or csv (observation CSV)
//! mapping = "gateways/kong-file-log.toml"    # an import mapping (dispo import --mapping)
//! # name = "kong-1"  hold_s = 30  poll_s = 0.25  from = "end"
//! ```

pub mod cron;
pub mod print;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use serde::Deserialize;
use toml::Spanned;

use crate::domain::{Amount, EstablishmentCode, Iban, known_establishment};
use crate::engine::Settings;
use crate::stet::certs;
use crate::stet::models::StetVersion;

/// One problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
    /// Warnings (e.g. a certificate expiring within 30 days) do not stop `dispo run`.
    pub warning: bool,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.warning { "warning" } else { "error" };
        // Line 0: the file as a whole (it cannot be read).
        if self.line == 0 {
            return write!(f, "{}: {kind}: {}", self.file.display(), self.message);
        }
        write!(
            f,
            "{}:{}: {kind}: {}",
            self.file.display(),
            self.line,
            self.message
        )
    }
}

/// Every problem of a file.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<Problem>);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    monitor: RawMonitor,
    /// Keys shared by every establishment (each may override them); `{code}` in a value
    /// stands for the establishment's code.
    #[serde(default)]
    defaults: Option<RawEstablishment>,
    #[serde(default)]
    establishment: Vec<Spanned<RawEstablishment>>,
    #[serde(default)]
    probe: Vec<RawProbe>,
    #[serde(default)]
    counting: Option<Settings>,
    #[serde(default)]
    alerts: Option<crate::alert::AlertsConfig>,
    #[serde(default)]
    source: Vec<RawSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    path: Spanned<String>,
    format: Option<Spanned<String>>,
    mapping: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
    hold_s: Option<Spanned<f64>>,
    poll_s: Option<Spanned<f64>>,
    from: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMonitor {
    id: Option<Spanned<String>>,
    schedule_tz: Option<Spanned<String>>,
    timeout_s: Option<Spanned<f64>>,
    burst_interval_s: Option<Spanned<f64>>,
    heartbeat_s: Option<Spanned<f64>>,
    reuse_connections: Option<bool>,
    max_body_bytes: Option<Spanned<i64>>,
    canary: Option<Vec<Spanned<String>>>,
}

/// An `[[establishment]]` table, or the `[defaults]` table its missing keys come from.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEstablishment {
    code: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
    base_url: Option<Spanned<String>>,
    psu_url: Option<Spanned<String>>,
    resolve: Option<Spanned<String>>,
    ca: Option<Spanned<String>>,
    client_id: Option<Spanned<String>>,
    qwac_cert: Option<Spanned<String>>,
    qwac_key: Option<Spanned<String>>,
    qseal_cert: Option<Spanned<String>>,
    qseal_key: Option<Spanned<String>>,
    key_id: Option<Spanned<String>>,
    signed_headers: Option<Vec<String>>,
    psu_ip_address: Option<Spanned<String>>,
    refresh_token_file: Option<Spanned<String>>,
    refresh_token_env: Option<Spanned<String>>,
}

/// An establishment once `[defaults]` filled its gaps and `${VAR}` / `{code}` were expanded:
/// the keys every establishment needs are there.
#[derive(Debug)]
struct EstablishmentFields {
    code: Spanned<String>,
    name: Option<String>,
    base_url: Spanned<String>,
    psu_url: Option<Spanned<String>>,
    resolve: Option<Spanned<String>>,
    ca: Spanned<String>,
    client_id: String,
    qwac_cert: Spanned<String>,
    qwac_key: Spanned<String>,
    qseal_cert: Option<Spanned<String>>,
    qseal_key: Spanned<String>,
    key_id: Option<String>,
    signed_headers: Option<Vec<String>>,
    psu_ip_address: Option<String>,
    refresh_token_file: Option<Spanned<String>>,
    refresh_token_env: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProbe {
    name: Spanned<String>,
    step: Spanned<String>,
    schedule: Spanned<String>,
    #[serde(default)]
    establishments: Vec<Spanned<String>>,
    stet: Option<Spanned<String>>,
    iban: Option<Spanned<String>>,
    amount: Option<Spanned<String>>,
    expect: Option<bool>,
    grant: Option<Spanned<String>>,
    login: Option<String>,
    sms_code: Option<String>,
    marker: Option<String>,
}

/// Monitor-wide settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Monitor {
    pub id: String,
    /// The same id as the vantage its probes are recorded under (methodology section 10).
    pub vantage: crate::domain::Vantage,
    pub schedule_tz: Tz,
    pub timeout: std::time::Duration,
    /// `None` when confirmation bursts are off.
    pub burst_interval: Option<std::time::Duration>,
    pub heartbeat: std::time::Duration,
    pub reuse_connections: bool,
    /// The most of an answer's body a probe reads; past it the probe is `unexpected`.
    pub max_body_bytes: usize,
    /// URLs that should answer whenever the monitor's own network works ([`crate::probe::canary`]).
    pub canary: Vec<url::Url>,
}

/// How a probe gets its access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    ClientCredentials,
    /// A customer's refresh token, from a file or an environment variable.
    RefreshToken,
    /// The sandbox's authorization-code flow with a persona's login and SMS code.
    AuthorizationCode {
        login: String,
        sms_code: String,
    },
}

/// A validated establishment.
#[derive(Debug, Clone)]
pub struct Establishment {
    pub code: EstablishmentCode,
    pub name: String,
    pub base_url: url::Url,
    pub host: String,
    pub port: u16,
    pub psu_url: Option<url::Url>,
    pub resolve: Option<IpAddr>,
    pub ca: PathBuf,
    pub client_id: String,
    pub qwac_cert: PathBuf,
    pub qwac_key: PathBuf,
    pub qseal_key: PathBuf,
    pub key_id: String,
    pub signed_headers: Vec<String>,
    pub psu_ip_address: Option<String>,
    pub refresh_token_file: Option<PathBuf>,
    pub refresh_token_env: Option<String>,
    /// Expiry of the QWAC and QSealC (epoch ms), for alerts and /metrics.
    pub cert_not_after_ms: Vec<(String, i64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Token,
    FundsConfirmation {
        stet: StetVersion,
        iban: Iban,
        amount: Amount,
        expect: bool,
    },
    Fallback,
    Psu {
        marker: String,
    },
}

impl Step {
    /// The interface this step observes (its heartbeats cover that series).
    pub fn interface(&self) -> crate::domain::Interface {
        use crate::domain::Interface;
        match self {
            Step::Token | Step::FundsConfirmation { .. } => Interface::Api,
            Step::Fallback => Interface::Fallback,
            Step::Psu { .. } => Interface::PsuWeb,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Step::Token => "token",
            Step::FundsConfirmation { .. } => "funds-confirmation",
            Step::Fallback => "fallback",
            Step::Psu { .. } => "psu",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Probe {
    pub name: String,
    pub step: Step,
    pub schedule: ::cron::Schedule,
    pub schedule_text: String,
    /// Codes this probe runs for; empty = every establishment.
    pub establishments: Vec<EstablishmentCode>,
    pub grant: Grant,
}

/// A whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub monitor: Monitor,
    pub establishments: Vec<Establishment>,
    pub probes: Vec<Probe>,
    pub counting: Settings,
    pub alerts: crate::alert::AlertsConfig,
    /// Gateway logs to follow (`[[source]]`).
    pub sources: Vec<crate::follow::Source>,
    /// Warnings found while loading (e.g. certificates expiring soon).
    pub warnings: Vec<Problem>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

/// Expands `${NAME}` and `${NAME:-default}` with `lookup`; `$$` is a literal `$`. A `$` not
/// followed by `{` or `$` stays as it is.
pub fn expand_env(s: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            let Some(end) = r.find('}') else {
                return Err(format!("{s:?}: ${{ without its closing }}"));
            };
            let inner = &r[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(format!(
                    "{s:?}: ${{{inner}}} is not an environment variable name"
                ));
            }
            match (lookup(name).filter(|v| !v.is_empty()), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(format!(
                        "{s:?}: the environment variable {name} is not set (or give a default: ${{{name}:-...}})"
                    ));
                }
            }
            rest = &r[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Loads and validates a configuration; `Err` lists every error (and the warnings).
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    load_at(path, chrono::Utc::now().timestamp_millis())
}

/// As [`load`], judging certificate expiry against `now_ms`.
pub fn load_at(path: &Path, now_ms: i64) -> Result<Config, ConfigErrors> {
    let problem = |line: usize, message: String| Problem {
        file: path.to_owned(),
        line,
        message,
        warning: false,
    };
    let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![Problem {
            file: shown.clone(),
            line: 0,
            message: format!("cannot read it: {}", crate::messages::io_reason(&e)),
            warning: false,
        }])
    })?;
    let raw: RawFile = toml::from_str(&text).map_err(|e| {
        let line = e.span().map(|s| line_of(&text, s.start)).unwrap_or(1);
        ConfigErrors(vec![problem(line, e.message().trim().to_owned())])
    })?;
    // Paths in the file are relative to it; messages show them resolved.
    let dir = shown.parent().unwrap_or(Path::new(".")).to_owned();
    let mut v = Validator {
        text: &text,
        path,
        dir: &dir,
        problems: Vec::new(),
        now_ms,
    };
    let cfg = v.validate(raw);
    let errors = v.problems.iter().any(|p| !p.warning);
    match cfg {
        Some(mut c) if !errors => {
            c.warnings = v.problems;
            Ok(c)
        }
        _ => Err(ConfigErrors(v.problems)),
    }
}

struct Validator<'a> {
    text: &'a str,
    path: &'a Path,
    dir: &'a Path,
    problems: Vec<Problem>,
    now_ms: i64,
}

impl Validator<'_> {
    fn err<T>(&mut self, at: &Spanned<T>, message: impl Into<String>) {
        let line = line_of(self.text, at.span().start);
        self.problems.push(Problem {
            file: self.path.into(),
            line,
            message: crate::messages::without_os_error(&message.into()),
            warning: false,
        });
    }
    fn warn<T>(&mut self, at: &Spanned<T>, message: impl Into<String>) {
        let line = line_of(self.text, at.span().start);
        self.problems.push(Problem {
            file: self.path.into(),
            line,
            message: crate::messages::without_os_error(&message.into()),
            warning: true,
        });
    }
    /// A number of seconds from `min` to `max` (`default` when absent); NaN, infinities and
    /// values out of range are errors at their line (the default stands in meanwhile).
    fn seconds(
        &mut self,
        v: &Option<Spanned<f64>>,
        default: f64,
        min: f64,
        max: f64,
        key: &str,
    ) -> std::time::Duration {
        match v {
            None => std::time::Duration::from_secs_f64(default),
            Some(x) if x.get_ref().is_finite() && (min..=max).contains(x.get_ref()) => {
                std::time::Duration::from_secs_f64(*x.get_ref())
            }
            Some(x) => {
                self.err(
                    x,
                    format!(
                        "{key} must be from {min} to {max} seconds, not {}",
                        x.get_ref()
                    ),
                );
                std::time::Duration::from_secs_f64(default)
            }
        }
    }
    fn path_of(&self, s: &str) -> PathBuf {
        let p = Path::new(s);
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.dir.join(p)
        }
    }
    fn readable(&mut self, at: &Spanned<String>) -> PathBuf {
        let p = self.path_of(at.get_ref());
        if let Err(e) = std::fs::metadata(&p) {
            self.err(at, format!("cannot read {}: {e}", p.display()));
        }
        p
    }

    /// Checks a certificate file: readable, not expired, warns within 30 days. Returns its
    /// expiry and SPKI.
    fn cert(
        &mut self,
        at: &Spanned<String>,
        what: &str,
    ) -> Option<(i64, certs::CertInfo, Vec<u8>)> {
        let p = self.path_of(at.get_ref());
        let der = match certs::read_certs(&p) {
            Ok(mut c) => c.remove(0),
            Err(e) => {
                self.err(at, format!("{what}: {e}"));
                return None;
            }
        };
        let info = match certs::cert_info(&der) {
            Ok(i) => i,
            Err(e) => {
                self.err(at, format!("{what}: {e}"));
                return None;
            }
        };
        let days = (info.not_after_ms - self.now_ms) as f64 / 86_400_000.0;
        if days < 0.0 {
            self.err(
                at,
                format!("{what} {} expired {:.0} days ago", p.display(), -days),
            );
        } else if days < 30.0 {
            self.warn(
                at,
                format!("{what} {} expires in {days:.0} days", p.display()),
            );
        }
        let spki = x509_parser::parse_x509_certificate(&der)
            .map(|(_, c)| c.public_key().raw.to_vec())
            .unwrap_or_default();
        Some((info.not_after_ms, info, spki))
    }

    /// Checks that a key file is readable and belongs to the certificate (same public key).
    /// Warns when a secret (a private key, a refresh token) can be read by others than its
    /// owner: the QSealC key signs requests in the bank's name.
    fn private(&mut self, at: &Spanned<String>, what: &str) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let p = self.path_of(at.get_ref());
            if let Ok(m) = std::fs::metadata(&p)
                && m.permissions().mode() & 0o077 != 0
            {
                self.warn(
                    at,
                    format!(
                        "{what} {} can be read by others (mode {:o}): chmod 600 it",
                        p.display(),
                        m.permissions().mode() & 0o777
                    ),
                );
            }
        }
    }

    fn key_matches(&mut self, at: &Spanned<String>, spki: Option<&[u8]>, what: &str) {
        self.private(at, what);
        let p = self.path_of(at.get_ref());
        let key = match certs::read_key(&p) {
            Ok(k) => k,
            Err(e) => return self.err(at, format!("{what}: {e}")),
        };
        let signing = match rustls::crypto::ring::sign::any_supported_type(&key) {
            Ok(k) => k,
            Err(e) => return self.err(at, format!("{what} {}: unusable key: {e}", p.display())),
        };
        if let (Some(cert_spki), Some(key_spki)) = (spki, signing.public_key())
            && cert_spki != key_spki.as_ref()
        {
            self.err(
                at,
                format!(
                    "{what} {} does not belong to its certificate (public keys differ)",
                    p.display()
                ),
            );
        }
    }

    /// Expands `${VAR}` (and `${VAR:-default}`) in a value from the environment, and `{code}`
    /// with the establishment's code; an unset variable is an error at the value's line.
    fn expand(&mut self, v: Spanned<String>, code: Option<&str>) -> Spanned<String> {
        let span = v.span();
        let text = match code {
            Some(c) => v.get_ref().replace("{code}", c),
            None => v.get_ref().clone(),
        };
        match expand_env(&text, |name| std::env::var(name).ok()) {
            Ok(x) => Spanned::new(span, x),
            Err(e) => {
                self.err(&v, e);
                Spanned::new(span, text)
            }
        }
    }

    /// `[defaults]` with `${VAR}` expanded once (so an unset variable is said once); `true`
    /// when a value did not expand.
    fn expand_defaults(&mut self, mut d: RawEstablishment) -> (RawEstablishment, bool) {
        let before = self.problems.len();
        for f in [
            &mut d.base_url,
            &mut d.psu_url,
            &mut d.resolve,
            &mut d.ca,
            &mut d.client_id,
            &mut d.qwac_cert,
            &mut d.qwac_key,
            &mut d.qseal_cert,
            &mut d.qseal_key,
            &mut d.key_id,
            &mut d.psu_ip_address,
            &mut d.refresh_token_file,
            &mut d.refresh_token_env,
        ] {
            if let Some(v) = f.take() {
                *f = Some(self.expand(v, None));
            }
        }
        let failed = self.problems.len() > before;
        (d, failed)
    }

    /// One `[[establishment]]` with the gaps filled from `[defaults]` and values expanded;
    /// `None` (with an error at the table) when a key it needs is in neither.
    fn fill(
        &mut self,
        table: Spanned<RawEstablishment>,
        d: &RawEstablishment,
        defaults_failed: bool,
    ) -> Option<EstablishmentFields> {
        let table_span = table.span();
        let e = table.into_inner();
        let errors_before = self.problems.len();
        let Some(code) = e.code else {
            self.err(
                &Spanned::new(table_span, ()),
                "this [[establishment]] has no code",
            );
            return None;
        };
        let c = code.get_ref().clone();
        let mut missing = Vec::new();
        // Its own values are expanded here; those of [defaults] were once, only {code} remains.
        let pick = |this: Option<Spanned<String>>,
                    default: &Option<Spanned<String>>,
                    v: &mut Self|
         -> Option<Spanned<String>> {
            match this {
                Some(x) => Some(v.expand(x, Some(&c))),
                None => default
                    .as_ref()
                    .map(|x| Spanned::new(x.span(), x.get_ref().replace("{code}", &c))),
            }
        };
        let base_url = pick(e.base_url, &d.base_url, self);
        let psu_url = pick(e.psu_url, &d.psu_url, self);
        let resolve = pick(e.resolve, &d.resolve, self);
        let ca = pick(e.ca, &d.ca, self);
        let client_id = pick(e.client_id, &d.client_id, self);
        let qwac_cert = pick(e.qwac_cert, &d.qwac_cert, self);
        let qwac_key = pick(e.qwac_key, &d.qwac_key, self);
        let qseal_cert = pick(e.qseal_cert, &d.qseal_cert, self);
        let qseal_key = pick(e.qseal_key, &d.qseal_key, self);
        let key_id = pick(e.key_id, &d.key_id, self);
        let psu_ip_address = pick(e.psu_ip_address, &d.psu_ip_address, self);
        let refresh_token_file = pick(e.refresh_token_file, &d.refresh_token_file, self);
        let refresh_token_env = pick(e.refresh_token_env, &d.refresh_token_env, self);
        for (key, v) in [
            ("base_url", &base_url),
            ("ca", &ca),
            ("client_id", &client_id),
            ("qwac_cert", &qwac_cert),
            ("qwac_key", &qwac_key),
            ("qseal_key", &qseal_key),
        ] {
            if v.is_none() {
                missing.push(key);
            }
        }
        if !missing.is_empty() {
            self.err(
                &code,
                format!(
                    "establishment {c} has no {} (give it here or in [defaults])",
                    missing.join(", ")
                ),
            );
            return None;
        }
        if let Some(env) = &refresh_token_env
            && std::env::var_os(env.get_ref()).is_none_or(|v| v.is_empty())
        {
            self.err(
                env,
                format!(
                    "refresh_token_env {}: that environment variable is not set here (dispo run would have no refresh token for {c})",
                    env.get_ref()
                ),
            );
        }
        if self.problems.len() > errors_before || defaults_failed {
            // A value that did not expand would only add "cannot read .../${X}/..." errors.
            return None;
        }
        Some(EstablishmentFields {
            name: e.name.map(|n| self.expand(n, Some(&c)).into_inner()),
            code,
            base_url: base_url?,
            psu_url,
            resolve,
            ca: ca?,
            client_id: client_id?.into_inner(),
            qwac_cert: qwac_cert?,
            qwac_key: qwac_key?,
            qseal_cert,
            qseal_key: qseal_key?,
            key_id: key_id.map(Spanned::into_inner),
            signed_headers: e.signed_headers.or_else(|| d.signed_headers.clone()),
            psu_ip_address: psu_ip_address.map(Spanned::into_inner),
            refresh_token_file,
            refresh_token_env,
        })
    }

    fn validate(&mut self, raw: RawFile) -> Option<Config> {
        let m = raw.monitor;
        let schedule_tz = match &m.schedule_tz {
            None => chrono_tz::Europe::Paris,
            Some(s) => match s.get_ref().parse::<Tz>() {
                Ok(tz) => tz,
                Err(_) => {
                    self.err(
                        s,
                        format!(
                            "unknown time zone {:?}: give an IANA name such as Europe/Paris",
                            s.get_ref()
                        ),
                    );
                    chrono_tz::Europe::Paris
                }
            },
        };
        let timeout = self.seconds(&m.timeout_s, 30.0, 0.1, 3600.0, "timeout_s");
        // 0 turns bursts off; otherwise from 0.1 s.
        let burst_interval = match &m.burst_interval_s {
            Some(b) if *b.get_ref() == 0.0 => None,
            b => Some(self.seconds(b, 5.0, 0.1, 3600.0, "burst_interval_s (0: off)")),
        };
        let heartbeat = self.seconds(&m.heartbeat_s, 5.0, 0.2, 3600.0, "heartbeat_s");
        let max_body_bytes = match &m.max_body_bytes {
            None => crate::probe::http::DEFAULT_MAX_BODY,
            Some(n) if (1024..=1 << 30).contains(n.get_ref()) => *n.get_ref() as usize,
            Some(n) => {
                self.err(
                    n,
                    format!(
                        "max_body_bytes must be from 1024 to 1073741824 (1 GiB), not {}",
                        n.get_ref()
                    ),
                );
                crate::probe::http::DEFAULT_MAX_BODY
            }
        };
        let vantage = match &m.id {
            None => crate::domain::Vantage::new("dispo").expect("valid"),
            Some(id) => match id.get_ref().parse::<crate::domain::Vantage>() {
                Ok(v) if v.is_reserved() => {
                    self.err(
                        id,
                        format!(
                            "monitor id {:?} is taken (gateway: the bank's gateway logs; import: imported probe rows): name the node (e.g. paris-dc1)",
                            v.as_str()
                        ),
                    );
                    v
                }
                Ok(v) => v,
                Err(e) => {
                    self.err(id, format!("monitor id: {e}"));
                    crate::domain::Vantage::new("dispo").expect("valid")
                }
            },
        };
        let mut monitor = Monitor {
            id: vantage.to_string(),
            vantage,
            schedule_tz,
            timeout,
            burst_interval,
            heartbeat,
            reuse_connections: m.reuse_connections.unwrap_or(false),
            max_body_bytes,
            canary: Vec::new(),
        };
        for c in m.canary.iter().flatten() {
            match url::Url::parse(c.get_ref()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
                    monitor.canary.push(u)
                }
                Ok(_) => self.err(
                    c,
                    format!(
                        "canary {:?}: give an http:// or https:// URL with a host",
                        c.get_ref()
                    ),
                ),
                Err(e) => self.err(c, format!("canary {:?}: {e}", c.get_ref())),
            }
        }

        let mut establishments = Vec::new();
        let (defaults, defaults_failed) = self.expand_defaults(raw.defaults.unwrap_or_default());
        for at in ["code", "name"] {
            let given = if at == "code" {
                defaults.code.as_ref()
            } else {
                defaults.name.as_ref()
            };
            if let Some(v) = given {
                self.err(
                    v,
                    format!("{at} is per establishment: it has no place in [defaults]"),
                );
            }
        }
        for table in raw.establishment {
            let Some(e) = self.fill(table, &defaults, defaults_failed) else {
                continue;
            };
            let code = match e.code.get_ref().parse::<EstablishmentCode>() {
                Ok(c) if known_establishment(c.as_str()).is_some() => Some(c),
                Ok(_) => {
                    self.err(
                        &e.code,
                        format!(
                            "unknown establishment code {} (not in the Banque Populaire list)",
                            e.code.get_ref()
                        ),
                    );
                    None
                }
                Err(err) => {
                    self.err(&e.code, err.to_string());
                    None
                }
            };
            if establishments
                .iter()
                .any(|x: &Establishment| Some(&x.code) == code.as_ref())
            {
                self.err(
                    &e.code,
                    format!("establishment {} is defined twice", e.code.get_ref()),
                );
            }
            let base = match url::Url::parse(e.base_url.get_ref()) {
                Ok(u) if u.scheme() == "https" && u.host_str().is_some() => Some(u),
                _ => {
                    self.err(&e.base_url, "base_url must be an https:// URL with a host");
                    None
                }
            };
            let psu_url = e
                .psu_url
                .as_ref()
                .and_then(|p| match url::Url::parse(p.get_ref()) {
                    Ok(u) if u.host_str().is_some() => Some(u),
                    _ => {
                        self.err(p, "psu_url must be an absolute URL");
                        None
                    }
                });
            let resolve = e
                .resolve
                .as_ref()
                .and_then(|r| match r.get_ref().parse::<IpAddr>() {
                    Ok(ip) => Some(ip),
                    Err(_) => {
                        self.err(
                            r,
                            "resolve must be an IP address (the host name stays in SNI and Host)",
                        );
                        None
                    }
                });
            let ca = self.readable(&e.ca);
            if certs::read_certs(&ca).is_err() && ca.exists() {
                self.err(&e.ca, format!("{} holds no PEM certificate", ca.display()));
            }
            let qwac = self.cert(&e.qwac_cert, "QWAC certificate");
            self.key_matches(
                &e.qwac_key,
                qwac.as_ref().map(|q| q.2.as_slice()),
                "QWAC key",
            );
            let mut not_after = Vec::new();
            if let Some(q) = &qwac {
                not_after.push(("qwac".to_string(), q.0));
                if q.1.organization_identifier.as_deref() != Some(e.client_id.as_str()) {
                    self.err(
                        &e.qwac_cert,
                        format!(
                            "client_id {} differs from the QWAC's organization identifier {}",
                            e.client_id,
                            q.1.organization_identifier.as_deref().unwrap_or("(none)")
                        ),
                    );
                }
            }
            let qseal = e
                .qseal_cert
                .as_ref()
                .and_then(|c| self.cert(c, "QSealC certificate"));
            self.key_matches(
                &e.qseal_key,
                qseal.as_ref().map(|q| q.2.as_slice()),
                "QSealC key",
            );
            if let Some(q) = &qseal {
                not_after.push(("qseal".to_string(), q.0));
            }
            let key_id = match (e.key_id, &qseal) {
                (Some(k), _) => k,
                (None, Some(q)) => q.1.key_id(),
                (None, None) if e.qseal_cert.is_some() => String::new(), // its error is reported
                (None, None) => {
                    self.err(
                        &e.qseal_key,
                        "give qseal_cert (keyId is derived from it) or key_id",
                    );
                    String::new()
                }
            };
            let refresh_token_file = e.refresh_token_file.as_ref().map(|f| {
                self.private(f, "refresh token file");
                self.readable(f)
            });
            let (Some(code), Some(base)) = (code, base) else {
                continue;
            };
            let host = base.host_str().unwrap_or_default().to_owned();
            let port = base.port_or_known_default().unwrap_or(443);
            establishments.push(Establishment {
                name: e.name.clone().unwrap_or_else(|| {
                    known_establishment(code.as_str())
                        .map(|k| k.short.to_owned())
                        .unwrap_or_default()
                }),
                code,
                host,
                port,
                base_url: base,
                psu_url,
                resolve,
                ca,
                client_id: e.client_id,
                qwac_cert: self.path_of(e.qwac_cert.get_ref()),
                qwac_key: self.path_of(e.qwac_key.get_ref()),
                qseal_key: self.path_of(e.qseal_key.get_ref()),
                key_id,
                signed_headers: e.signed_headers.unwrap_or_default(),
                psu_ip_address: e.psu_ip_address,
                refresh_token_file,
                refresh_token_env: e.refresh_token_env.map(Spanned::into_inner),
                cert_not_after_ms: not_after,
            });
        }

        let mut probes = Vec::new();
        let mut names: Vec<Spanned<String>> = Vec::new();
        for p in raw.probe {
            let schedule = match cron::parse(p.schedule.get_ref()) {
                Ok(s) => Some(s),
                Err(e) => {
                    self.err(&p.schedule, e);
                    None
                }
            };
            let mut codes = Vec::new();
            for c in &p.establishments {
                match c.get_ref().parse::<EstablishmentCode>() {
                    Ok(code) if establishments.iter().any(|e| e.code == code) => codes.push(code),
                    _ => self.err(
                        c,
                        format!("establishment {} is not defined in this file", c.get_ref()),
                    ),
                }
            }
            let grant = match p.grant.as_ref().map(|g| g.get_ref().as_str()) {
                None | Some("client_credentials") => Grant::ClientCredentials,
                Some("refresh_token") => Grant::RefreshToken,
                Some("authorization_code") => match (&p.login, &p.sms_code) {
                    (Some(l), Some(s)) => Grant::AuthorizationCode {
                        login: l.clone(),
                        sms_code: s.clone(),
                    },
                    _ => {
                        self.err(
                            p.grant.as_ref().unwrap_or(&p.step),
                            "grant authorization_code needs login and sms_code (sandbox only)",
                        );
                        Grant::ClientCredentials
                    }
                },
                Some(other) => {
                    let at = p.grant.as_ref().unwrap_or(&p.step);
                    self.err(at, format!("unknown grant {other:?}: client_credentials, refresh_token or authorization_code"));
                    Grant::ClientCredentials
                }
            };
            let step = match p.step.get_ref().as_str() {
                "token" => Some(Step::Token),
                "fallback" => Some(Step::Fallback),
                "psu" => Some(Step::Psu {
                    marker: p
                        .marker
                        .clone()
                        .unwrap_or_else(|| crate::sim::api::PSU_MARKER.into()),
                }),
                "funds-confirmation" => self.funds_step(&p),
                other => {
                    self.err(
                        &p.step,
                        format!(
                            "unknown step {other:?}: token, funds-confirmation, fallback or psu"
                        ),
                    );
                    None
                }
            };
            if matches!(step, Some(Step::Psu { .. })) {
                let missing: Vec<_> = establishments
                    .iter()
                    .filter(|e| {
                        e.psu_url.is_none() && (codes.is_empty() || codes.contains(&e.code))
                    })
                    .map(|e| e.code.to_string())
                    .collect();
                if !missing.is_empty() {
                    self.err(
                        &p.step,
                        format!(
                            "step psu needs psu_url on establishment(s) {}",
                            missing.join(", ")
                        ),
                    );
                }
            }
            if let Some(first) = names
                .iter()
                .find(|n: &&Spanned<String>| n.get_ref() == p.name.get_ref())
            {
                let line = line_of(self.text, first.span().start);
                self.err(
                    &p.name,
                    format!(
                        "probe name {:?} is already used at line {line}: names identify probes in the database and the alerts",
                        p.name.get_ref()
                    ),
                );
            }
            names.push(p.name.clone());
            if let (Some(step), Some(schedule)) = (step, schedule) {
                probes.push(Probe {
                    name: p.name.get_ref().clone(),
                    step,
                    schedule,
                    schedule_text: p.schedule.get_ref().clone(),
                    establishments: codes,
                    grant,
                });
            }
        }
        let counting = raw.counting.unwrap_or_default();
        self.counting(&counting);
        let sources = self.sources(raw.source);
        Some(Config {
            path: self.path.to_owned(),
            monitor,
            establishments,
            probes,
            counting,
            alerts: raw.alerts.unwrap_or_default(),
            sources,
            warnings: Vec::new(),
        })
    }

    /// The `[counting]` settings: what the engine would refuse later (a target of 150 %), and a
    /// maintenance window that ends before it starts for more than 12 hours (read as running
    /// into the next day: more likely start and end swapped). The line is the key's.
    fn counting(&mut self, c: &Settings) {
        let at = |v: &Self, key: &str| {
            let offset = v
                .text
                .lines()
                .scan(0usize, |off, l| {
                    let here = *off;
                    *off += l.len() + 1;
                    Some((here, l))
                })
                .find(|(_, l)| {
                    let t = l.trim_start();
                    t.strip_prefix(key)
                        .is_some_and(|r| r.trim_start().starts_with('='))
                })
                .or_else(|| v.text.find("[counting").map(|i| (i, "")))
                .map(|(o, _)| o)
                .unwrap_or(0);
            Spanned::new(offset..offset, ())
        };
        if let Err(crate::engine::EngineError::Setting { name, why }) =
            crate::engine::check_settings(c)
        {
            let key = name.rsplit('.').next().unwrap_or(name);
            let here = at(self, key);
            self.err(&here, format!("[counting] {name} {why}"));
        }
        for w in &c.maintenance {
            if w.end < w.start {
                let hours =
                    (w.end - w.start + chrono::Duration::days(1)).num_minutes() as f64 / 60.0;
                let here = at(self, "maintenance");
                let what = format!(
                    "[counting] maintenance {:?} {}-{} ends before it starts: read as {hours:.1} h running into the next day",
                    w.weekday, w.start, w.end
                );
                if hours > 12.0 {
                    self.err(&here, format!("{what}; start and end swapped? (an overnight window over 12 h is refused)"));
                } else {
                    self.warn(&here, what);
                }
            }
        }
    }

    /// The `[[source]]` tables: gateway logs to follow.
    fn sources(&mut self, raw: Vec<RawSource>) -> Vec<crate::follow::Source> {
        use crate::import::Format;
        let mut out: Vec<crate::follow::Source> = Vec::new();
        for r in raw {
            let path = self.path_of(r.path.get_ref());
            match path.parent().map(std::fs::metadata) {
                Some(Ok(m)) if m.is_dir() => {}
                _ => self.err(
                    &r.path,
                    format!(
                        "the directory of {} does not exist (the file itself may appear later)",
                        path.display()
                    ),
                ),
            }
            let format = match r.format.as_ref().map(|f| f.get_ref().as_str()) {
                Some("jsonl") => Format::Jsonl,
                Some("csv") => Format::Csv,
                None if r.mapping.is_some() => Format::Jsonl,
                None => Format::Csv,
                Some(other) => {
                    let at = r.format.as_ref().expect("matched Some");
                    self.err(at, format!("unknown format {other:?}: jsonl or csv"));
                    continue;
                }
            };
            let mapping = match (&r.mapping, format) {
                (Some(m), Format::Jsonl) => {
                    match crate::import::mapping::Mapping::load(&self.path_of(m.get_ref())) {
                        Ok(x) => Some(x),
                        Err(e) => {
                            self.err(m, e.to_string());
                            continue;
                        }
                    }
                }
                (None, Format::Jsonl) => {
                    self.err(
                        r.format.as_ref().unwrap_or(&r.path),
                        "format jsonl needs mapping = \"FILE\" (the gateway's field names; probes/gateways/ has Kong, NGINX and Envoy)",
                    );
                    continue;
                }
                (Some(m), Format::Csv) => {
                    self.err(
                        m,
                        "a mapping is for format jsonl; the CSV is the observation CSV",
                    );
                    continue;
                }
                (None, Format::Csv) => None,
            };
            let name = r
                .name
                .as_ref()
                .map(|n| n.get_ref().clone())
                .unwrap_or_else(|| r.path.get_ref().clone());
            if out.iter().any(|s| s.name == name) {
                let at = r.name.as_ref().unwrap_or(&r.path);
                self.err(
                    at,
                    format!("source {name:?} is defined twice (give each a name)"),
                );
            }
            let hold = self.seconds(&r.hold_s, 30.0, 0.0, 3600.0, "hold_s");
            let poll = self.seconds(&r.poll_s, 0.25, 0.01, 60.0, "poll_s");
            let from_start = match r.from.as_ref().map(|f| f.get_ref().as_str()) {
                None | Some("end") => false,
                Some("start") => true,
                Some(other) => {
                    let at = r.from.as_ref().expect("matched Some");
                    self.err(at, format!("from {other:?}: end (default) or start"));
                    false
                }
            };
            out.push(crate::follow::Source {
                name,
                path,
                format,
                mapping,
                hold,
                poll,
                from_start,
            });
        }
        out
    }

    fn funds_step(&mut self, p: &RawProbe) -> Option<Step> {
        let stet = match p.stet.as_ref().map(|s| s.get_ref().as_str()) {
            Some("1.4.0") | None => StetVersion::V140,
            Some("1.4.2") => StetVersion::V142,
            Some(other) => {
                self.err(
                    p.stet.as_ref().unwrap_or(&p.step),
                    format!("stet {other:?}: 1.4.0 or 1.4.2"),
                );
                return None;
            }
        };
        let Some(iban_s) = &p.iban else {
            self.err(&p.step, "funds-confirmation needs iban");
            return None;
        };
        let iban = match iban_s.get_ref().parse::<Iban>() {
            Ok(i) => i,
            Err(e) => {
                self.err(iban_s, e.to_string());
                return None;
            }
        };
        let amount = match &p.amount {
            None => Amount::from_cents(100),
            Some(a) => match a.get_ref().parse::<Amount>() {
                Ok(v) => v,
                Err(e) => {
                    self.err(a, e.to_string());
                    return None;
                }
            },
        };
        Some(Step::FundsConfirmation {
            stet,
            iban,
            amount,
            expect: p.expect.unwrap_or(true),
        })
    }
}

#[cfg(test)]
mod source_tests {
    use super::*;

    fn load_text(name: &str, text: &str) -> Result<Config, ConfigErrors> {
        let d = std::env::temp_dir().join(format!(
            "dispo-cfg-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(d.join("gateways")).unwrap();
        std::fs::write(
            d.join("gateways/kong.toml"),
            include_str!("../../probes/gateways/kong-file-log.toml"),
        )
        .unwrap();
        std::fs::write(d.join("bad.toml"), "[fields]\nreceived_at = 3\n").unwrap();
        let p = d.join("p.toml");
        std::fs::write(&p, text).unwrap();
        let r = load(&p);
        let _ = std::fs::remove_dir_all(&d);
        r
    }

    #[test]
    fn sources_are_checked_with_their_lines() {
        let c = load_text(
            "ok",
            "[[source]]\npath = \"kong.log\"\nmapping = \"gateways/kong.toml\"\nhold_s = 5\n\
             [[source]]\nname = \"csv\"\npath = \"obs.csv\"\nformat = \"csv\"\nfrom = \"start\"\n",
        )
        .unwrap();
        assert_eq!(c.sources.len(), 2);
        let (k, v) = (&c.sources[0], &c.sources[1]);
        assert_eq!(
            (k.name.as_str(), k.format),
            ("kong.log", crate::import::Format::Jsonl)
        );
        assert!(k.path.ends_with("kong.log") && k.mapping.is_some() && !k.from_start);
        assert_eq!(k.hold, std::time::Duration::from_secs(5));
        assert_eq!((v.format, v.from_start), (crate::import::Format::Csv, true));

        let e = load_text(
            "bad",
            "[[source]]\npath = \"a.log\"\nformat = \"jsonl\"\n\
             [[source]]\npath = \"b.log\"\nformat = \"xml\"\n\
             [[source]]\npath = \"c.log\"\nmapping = \"bad.toml\"\n\
             [[source]]\npath = \"nowhere/d.log\"\nformat = \"csv\"\nhold_s = -1\n",
        )
        .unwrap_err()
        .to_string();
        for want in [
            ":3: error: format jsonl needs mapping",
            ":6: error: unknown format \"xml\"",
            ":9: error: mapping file",
            "line 2",
            ":11: error: the directory of",
            ":13: error: hold_s must be from 0 to 3600 seconds",
        ] {
            assert!(e.contains(want), "{want} not in\n{e}");
        }
        let e = load_text("unknown", "[[source]]\npath = \"a.log\"\ntail = true\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains(":3: error: unknown field `tail`"), "{e}");
    }

    #[test]
    fn vantage_quorum_parses_prints_and_refuses_nonsense() {
        let c = load_text("quorum", "[counting]\nvantage_quorum = 2\n").unwrap();
        assert_eq!(
            c.counting.vantage_quorum,
            crate::engine::vantage::VantageQuorum::AtLeast(2)
        );
        assert!(print::render(&c).contains("\nvantage_quorum = 2\n"));
        // The default is printed too, though left out of the settings' JSON.
        let c = load_text("quorum-default", "").unwrap();
        assert!(print::render(&c).contains("\nvantage_quorum = \"majority\"\n"));
        let e = load_text("quorum-bad", "[counting]\nvantage_quorum = \"most\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(":2: error:") && e.contains("vantage_quorum must be \"majority\""),
            "{e}"
        );
    }

    #[test]
    fn canaries_are_http_urls_checked_with_their_lines() {
        let c = load_text(
            "canary",
            "[monitor]\ncanary = [\"https://www.example.org/\", \"http://127.0.0.1:9/health\"]\n",
        )
        .unwrap();
        let got: Vec<&str> = c.monitor.canary.iter().map(url::Url::as_str).collect();
        assert_eq!(
            got,
            ["https://www.example.org/", "http://127.0.0.1:9/health"]
        );
        let e = load_text(
            "canary-bad",
            "[monitor]\nid = \"m\"\ncanary = [\n  \"ftp://x.example/\",\n  \"not a url\",\n]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(":4: error: canary \"ftp://x.example/\""), "{e}");
        assert!(e.contains(":5: error: canary \"not a url\""), "{e}");
    }
}

#[cfg(test)]
mod expand_tests {
    use super::expand_env;

    fn env(name: &str) -> Option<String> {
        match name {
            "KEYS" => Some("/etc/dispo".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn variables_expand_with_defaults_and_escapes() {
        assert_eq!(
            expand_env("${KEYS}/qwac.pem", env).unwrap(),
            "/etc/dispo/qwac.pem"
        );
        assert_eq!(expand_env("${NOPE:-/srv/k}/a", env).unwrap(), "/srv/k/a");
        assert_eq!(expand_env("${EMPTY:-d}", env).unwrap(), "d");
        assert_eq!(expand_env("$$5 and $x", env).unwrap(), "$5 and $x");
        assert_eq!(
            expand_env("${NOPE}/a", env).unwrap_err(),
            "\"${NOPE}/a\": the environment variable NOPE is not set (or give a default: ${NOPE:-...})"
        );
        assert!(
            expand_env("${KEYS", env)
                .unwrap_err()
                .contains("without its closing")
        );
        assert!(
            expand_env("${1X}", env)
                .unwrap_err()
                .contains("not an environment variable name")
        );
    }
}

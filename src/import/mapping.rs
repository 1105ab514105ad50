//! The field mapping of a gateway's JSON-lines export: which JSON field holds each observation
//! field, how times are written, which request path is which service.
//!
//! In: a TOML file (`--mapping`), parsed once into [`Mapping`]. Out: per JSON line, an
//! observation or the reason it cannot be one ([`Mapping::apply_after`]). Field names are paths
//! into the JSON object: `status`, `request.headers.X-Request-ID` (an exact key is tried before a
//! dotted path; the last segment also matches case-insensitively, as HTTP header names do).
//!
//! Local times (a pattern without offset, in `[timestamp] timezone`): a wall time that never
//! happened (spring gap) is refused; one that happened twice (the autumn fold, e.g. 02:00 to 03:00
//! in Paris on the last Sunday of October) is placed by the order of the file, from the previous
//! accepted line's instant ([`resolve_fold`]); with no previous line it is refused as ambiguous.
//!
//! A field may also be written as a table, `{ field = "request.headers.host", pattern =
//! "^www\\.(\\d{5})\\." }` (the first capture group of a regular expression, or the whole match
//! without a group) and/or `table = { "api.bank.example" = "13807" }` (a value translated, after
//! the pattern): real gateways log the establishment inside a host name ([`FieldRef`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::domain::{EstablishmentCode, Interface, Observation, Outcome, Service, Source};
use crate::store::StoredObservation;

/// The mapping file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Where each observation field is found.
    pub fields: Fields,
    /// How `received_at` is written. Default: RFC 3339 with offset.
    #[serde(default)]
    pub timestamp: TimestampFormat,
    /// Unit of the latency field: `ms` (default), `s` or `us`.
    #[serde(default)]
    pub latency_unit: LatencyUnit,
    /// Request path fragment → service (`"/oauth/token" = "token"`). The longest fragment found
    /// in the path wins.
    #[serde(default)]
    pub services: BTreeMap<String, Service>,
    /// Values used when the line lacks the field.
    #[serde(default)]
    pub defaults: Defaults,
    /// Statuses that mean no reply came (the client gave up waiting: NGINX and Kong log 499):
    /// such a line is a `no_reply`, its status kept in `error_text`.
    #[serde(default)]
    pub no_reply_status: Vec<u16>,
}

/// JSON field names (paths) of each observation field. Only `received_at` and `request_id` are
/// required; the others fall back to `[defaults]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fields {
    pub received_at: FieldRef,
    pub request_id: FieldRef,
    pub establishment: Option<FieldRef>,
    pub interface: Option<FieldRef>,
    /// A header or flag that, when `1`/`true`/`yes`, marks a use of the fallback interface.
    pub fallback: Option<FieldRef>,
    pub service: Option<FieldRef>,
    /// The request path, turned into a service through `[services]`.
    pub path: Option<FieldRef>,
    pub tpp: Option<FieldRef>,
    /// The TLS client certificate's subject DN; the organization identifier
    /// (`2.5.4.97=` / `organizationIdentifier=`) is taken from it.
    pub tpp_dn: Option<FieldRef>,
    pub status: Option<FieldRef>,
    pub latency: Option<FieldRef>,
    pub error_code: Option<FieldRef>,
    pub error_text: Option<FieldRef>,
    pub source: Option<FieldRef>,
}

/// Where one observation field is found: a path into the JSON object (`"status"`), or a table
/// `{ field = "request.headers.host", pattern = "^www\\.(\\d{5})\\.", table = { ... } }`: the
/// value at `field`, narrowed by `pattern` (a regular expression: its first capture group, or the
/// whole match without one; a value it does not match refuses the line), then translated through
/// `table` (a value missing from it refuses the line; keys match case-insensitively when no key
/// matches exactly, as host names do).
#[derive(Debug, Clone, Default)]
pub struct FieldRef {
    pub field: String,
    pub pattern: Option<regex::Regex>,
    pub table: Option<BTreeMap<String, String>>,
}

impl FieldRef {
    /// A plain path.
    pub fn path(field: &str) -> Self {
        Self {
            field: field.to_owned(),
            ..Default::default()
        }
    }

    /// The value of this field in `v`: `None` when absent, null or (with a pattern or table)
    /// empty; `Err` when the pattern does not match or the table lacks the value.
    pub fn get<'a>(&self, v: &'a Value) -> Result<Option<Cow<'a, Value>>, String> {
        let Some(x) = lookup(v, &self.field).filter(|x| !x.is_null()) else {
            return Ok(None);
        };
        if self.pattern.is_none() && self.table.is_none() {
            return Ok(Some(Cow::Borrowed(x)));
        }
        let Some(s) = text(Some(x)).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let mut out = s.as_str();
        if let Some(re) = &self.pattern {
            let caps = re.captures(out).ok_or_else(|| {
                format!(
                    "{} {s:?} does not match its pattern {:?}",
                    self.field,
                    re.as_str()
                )
            })?;
            out = caps
                .get(1)
                .or_else(|| caps.get(0))
                .map_or("", |m| m.as_str());
        }
        if let Some(t) = &self.table {
            let found = t.get(out).or_else(|| {
                t.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(out))
                    .map(|(_, x)| x)
            });
            out = found.ok_or_else(|| {
                format!(
                    "{} {out:?} is not in its table (known: {})",
                    self.field,
                    t.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })?;
        }
        Ok(Some(Cow::Owned(Value::String(out.to_owned()))))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFieldRef {
    field: String,
    pattern: Option<String>,
    table: Option<BTreeMap<String, String>>,
}

impl<'de> Deserialize<'de> for FieldRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = FieldRef;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a field name, or a table { field = \"...\", pattern = \"...\", table = { ... } }",
                )
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<FieldRef, E> {
                Ok(FieldRef::path(s))
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, m: M) -> Result<FieldRef, M::Error> {
                let raw =
                    RawFieldRef::deserialize(serde::de::value::MapAccessDeserializer::new(m))?;
                let pattern = raw
                    .pattern
                    .map(|p| {
                        regex::Regex::new(&p).map_err(|e| {
                            serde::de::Error::custom(format!("pattern {p:?} of {}: {e}", raw.field))
                        })
                    })
                    .transpose()?;
                Ok(FieldRef {
                    field: raw.field,
                    pattern,
                    table: raw.table,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// How times are written in the export.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimestampFormat {
    /// `rfc3339` (default), `epoch_ms`, `epoch_s`, or a chrono `strftime` pattern such as
    /// `%d/%b/%Y:%H:%M:%S%.3f %z`.
    #[serde(default = "default_format")]
    pub format: String,
    /// Zone of times written without an offset. Default UTC.
    #[serde(default = "default_tz")]
    pub timezone: Tz,
    /// What the time marks: `start` (default: when the request arrived) or `end` (when it was
    /// logged, as NGINX's `$time_local`): then `received_at` is that time less the latency.
    #[serde(default)]
    pub marks: TimeMarks,
}

/// What a logged time marks.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TimeMarks {
    #[default]
    Start,
    End,
}

fn default_format() -> String {
    "rfc3339".into()
}
fn default_tz() -> Tz {
    chrono_tz::UTC
}

impl Default for TimestampFormat {
    fn default() -> Self {
        Self {
            format: default_format(),
            timezone: default_tz(),
            marks: TimeMarks::Start,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LatencyUnit {
    #[default]
    Ms,
    S,
    Us,
}

/// Values for fields a line does not carry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub establishment: Option<EstablishmentCode>,
    #[serde(default = "default_interface")]
    pub interface: Interface,
    pub service: Option<Service>,
    #[serde(default = "default_source")]
    pub source: Source,
}

fn default_interface() -> Interface {
    Interface::Api
}
fn default_source() -> Source {
    Source::Log
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            establishment: None,
            interface: default_interface(),
            service: None,
            source: default_source(),
        }
    }
}

/// A mapping file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("cannot read mapping file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("mapping file {path}: {message}")]
    Parse { path: String, message: String },
}

impl Mapping {
    /// Reads and checks a mapping file; errors name the file and line.
    pub fn load(path: &Path) -> Result<Self, MappingError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| MappingError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text).map_err(|message| MappingError::Parse {
            path: shown,
            message,
        })
    }

    /// Parses the TOML text of a mapping.
    pub fn parse(text: &str) -> Result<Self, String> {
        let m: Mapping = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            match line {
                Some(l) => format!("line {l}: {}", e.message()),
                None => e.message().to_owned(),
            }
        })?;
        if m.fields.service.is_none() && m.fields.path.is_none() && m.defaults.service.is_none() {
            return Err(
                "no service: set fields.service, fields.path (with [services]) or defaults.service"
                    .into(),
            );
        }
        if m.fields.establishment.is_none() && m.defaults.establishment.is_none() {
            return Err(
                "no establishment: set fields.establishment or defaults.establishment (e.g. \"13807\")"
                    .into(),
            );
        }
        if m.fields.path.is_some() && m.services.is_empty() && m.defaults.service.is_none() {
            return Err("fields.path is set but [services] is empty: map path fragments to services, e.g. \"/oauth/token\" = \"token\"".into());
        }
        Ok(m)
    }

    /// Turns one JSON object, alone, into an observation, or says why not: a local time in the
    /// autumn fold is refused as ambiguous (see [`Mapping::apply_after`]).
    pub fn apply(&self, v: &Value) -> Result<StoredObservation, String> {
        self.apply_after(v, None)
    }

    /// Turns one JSON object into an observation, or says why not. `previous_ms` is the instant
    /// of the previous accepted line of the same file, which places a local time of the autumn
    /// fold ([`resolve_fold`]).
    pub fn apply_after(
        &self,
        v: &Value,
        previous_ms: Option<i64>,
    ) -> Result<StoredObservation, String> {
        let f = &self.fields;
        let received_at_ms = {
            let raw = f
                .received_at
                .get(v)?
                .ok_or_else(|| format!("missing time field {:?}", f.received_at.field))?;
            self.parse_time(&raw, previous_ms)?
        };
        let request_id = text(f.request_id.get(v)?.as_deref())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("missing request id field {:?}", f.request_id.field))?;
        let establishment = match opt_text(v, &f.establishment)? {
            Some(s) => s.parse::<EstablishmentCode>().map_err(|e| e.to_string())?,
            None => self.defaults.establishment.ok_or("missing establishment")?,
        };
        let fallback = opt_field(v, &f.fallback)?.is_some_and(|x| truthy(&x));
        let interface = if fallback {
            Interface::Fallback
        } else {
            match opt_text(v, &f.interface)? {
                Some(s) => s.parse::<Interface>().map_err(|e| e.to_string())?,
                None => self.defaults.interface,
            }
        };
        let service = match opt_text(v, &f.service)? {
            Some(s) => s.parse::<Service>().map_err(|e| e.to_string())?,
            None => match opt_text(v, &f.path)? {
                Some(p) => self
                    .service_for_path(&p)
                    .or_else(|| self.defaults.service.clone())
                    .ok_or_else(|| format!("path {p:?} matches no entry of [services]"))?,
                None => self.defaults.service.clone().ok_or("missing service")?,
            },
        };
        let source = match opt_text(v, &f.source)? {
            Some(s) => s.parse::<Source>().map_err(|e| e.to_string())?,
            None => self.defaults.source,
        };
        let tpp = match opt_text(v, &f.tpp)? {
            Some(t) => Some(t),
            None => match opt_text(v, &f.tpp_dn)? {
                Some(dn) => organization_identifier(&dn)?,
                None => None,
            },
        };
        let mut gave_up = None;
        let status = match opt_field(v, &f.status)? {
            None => None,
            Some(x) => {
                let n = number(&x).ok_or_else(|| format!("status {x} is not a number"))?;
                // Gateways often write 0 or -1 for "no reply".
                if n <= 0.0 {
                    None
                } else if n.fract() == 0.0 && (100.0..=599.0).contains(&n) {
                    let n = n as u16;
                    if self.no_reply_status.contains(&n) {
                        gave_up = Some(n);
                        None
                    } else {
                        Some(n)
                    }
                } else {
                    return Err(format!("status {x} is not an HTTP status (100 to 599)"));
                }
            }
        };
        let latency_ms = match opt_field(v, &f.latency)? {
            None => None,
            Some(x) => {
                // Range (and NaN, inf, given as strings) checked by the reader's bounds.
                let n = number(&x).ok_or_else(|| format!("latency {x} is not a number"))?;
                Some(match self.latency_unit {
                    LatencyUnit::Ms => n,
                    LatencyUnit::S => n * 1000.0,
                    LatencyUnit::Us => n / 1000.0,
                })
            }
        };
        let received_at_ms = match (self.timestamp.marks, latency_ms) {
            (TimeMarks::End, Some(l)) if l.is_finite() && l >= 0.0 => {
                received_at_ms - l.round() as i64
            }
            _ => received_at_ms,
        };
        let latency_ms = if status.is_none() { None } else { latency_ms };
        let error_code = opt_text(v, &f.error_code)?;
        let error_text = opt_text(v, &f.error_text)?.or_else(|| {
            gave_up.map(|n| format!("status {n}: the client gave up waiting (no_reply_status)"))
        });
        let outcome = Outcome::from_reply(status, error_code.as_deref());
        let mut so = StoredObservation::from(Observation {
            received_at_ms,
            establishment,
            interface,
            service,
            source,
            tpp: tpp.map(Into::into),
            status,
            latency_ms,
            error_code: error_code.map(Into::into),
            request_id: request_id.into(),
            outcome,
            vantage: crate::domain::Vantage::imported(source),
        });
        so.error_text = error_text;
        Ok(so)
    }

    fn service_for_path(&self, path: &str) -> Option<Service> {
        let path = path.split(['?', '#']).next().unwrap_or(path);
        self.services
            .iter()
            .filter(|(frag, _)| path.contains(frag.as_str()))
            .max_by_key(|(frag, _)| frag.len())
            .map(|(_, s)| s.clone())
    }

    fn parse_time(&self, raw: &Value, previous_ms: Option<i64>) -> Result<i64, String> {
        let fmt = self.timestamp.format.as_str();
        let bad = || format!("time {raw} does not match format {fmt:?}");
        let epoch = |scale: f64| {
            let n = number(raw).ok_or_else(bad)?;
            epoch_ms(n * scale).ok_or_else(|| format!("time {raw} is not a finite epoch time"))
        };
        match fmt {
            "epoch_ms" => epoch(1.0),
            "epoch_s" => epoch(1000.0),
            "rfc3339" => {
                let s = raw.as_str().ok_or_else(bad)?;
                DateTime::parse_from_rfc3339(s)
                    .map(|t| t.timestamp_millis())
                    .map_err(|e| format!("time {s:?} is not RFC 3339 ({e})"))
            }
            pattern => {
                let s = raw.as_str().ok_or_else(bad)?;
                if let Ok(t) = DateTime::parse_from_str(s, pattern) {
                    return Ok(t.timestamp_millis());
                }
                let naive = NaiveDateTime::parse_from_str(s, pattern)
                    .map_err(|e| format!("time {s:?} does not match {pattern:?} ({e})"))?;
                let tz = self.timestamp.timezone;
                match tz.from_local_datetime(&naive) {
                    LocalResult::Single(t) => Ok(t.timestamp_millis()),
                    LocalResult::Ambiguous(a, b) => {
                        let (first, second) = if a <= b { (a, b) } else { (b, a) };
                        resolve_fold(tz, &first, &second, previous_ms).ok_or_else(|| {
                            format!(
                                "time {s:?} is ambiguous in {tz}: it happened twice when the clocks went back ({} or {}), and no earlier line of this file tells which",
                                first.to_rfc3339(),
                                second.to_rfc3339()
                            )
                        })
                    }
                    LocalResult::None => Err(format!(
                        "time {s:?} does not exist in {tz}: the clocks went forward over it"
                    )),
                }
            }
        }
    }
}

/// Epoch milliseconds from a float, when finite and representable.
fn epoch_ms(ms: f64) -> Option<i64> {
    // Well inside i64 (9.2e18); the bounds refuse anything past year 2000 + a few decades anyway.
    (ms.is_finite() && ms.abs() < 9e18).then(|| ms.round() as i64)
}

/// Which of the two instants of a wall time in the autumn fold a log line means (`first` in the
/// first pass, before the clocks went back, `second` an hour later), from the order of the file:
/// the one nearest to the previous accepted line's instant (a tie goes to the later one, as logs
/// run forward), except that once the file has reached the second pass (the previous instant at
/// or after the clocks went back) it stays there: a log's clock goes back only once. `None`
/// without a previous line: nothing tells.
///
/// With Paris lines 01:50, 02:10, 02:50, 02:05, 02:40, 03:10 on 2024-10-27: 02:10 and 02:50 are
/// nearest in the first pass (+02:00); 02:05 is 15 min after 02:50+02:00 in the second pass but
/// 45 min before it in the first: second pass (+01:00); 02:40 follows a line of the second pass,
/// so stays in it although its first-pass instant (25 min back) is nearer than its second (35 min
/// on).
pub fn resolve_fold(
    tz: Tz,
    first: &DateTime<Tz>,
    second: &DateTime<Tz>,
    previous_ms: Option<i64>,
) -> Option<i64> {
    let p = previous_ms?;
    let (a, b) = (first.timestamp_millis(), second.timestamp_millis());
    // From `first` to the turn-back the offset is the first pass's; from there to the next change
    // of offset (months later), the second pass's.
    let p_offset = DateTime::from_timestamp_millis(p)
        .map(|t| tz.offset_from_utc_datetime(&t.naive_utc()).fix())?;
    if p >= a && p_offset == second.offset().fix() {
        return Some(b);
    }
    let (da, db) = ((p as i128 - a as i128).abs(), (b as i128 - p as i128).abs());
    Some(if da < db { a } else { b })
}

/// Finds a field: the exact key first, then a dotted path; the last segment may differ in case.
fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let obj = v.as_object()?;
    if let Some(x) = obj.get(path) {
        return Some(x);
    }
    if let Some((head, rest)) = path.split_once('.')
        && let Some(inner) = obj.get(head)
        && let Some(x) = lookup(inner, rest)
    {
        return Some(x);
    }
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(path))
        .map(|(_, x)| x)
}

fn opt_field<'a>(v: &'a Value, r: &Option<FieldRef>) -> Result<Option<Cow<'a, Value>>, String> {
    match r {
        Some(r) => r.get(v),
        None => Ok(None),
    }
}

fn opt_text(v: &Value, r: &Option<FieldRef>) -> Result<Option<String>, String> {
    Ok(text(opt_field(v, r)?.as_deref()).filter(|s| !s.is_empty()))
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        ),
        _ => false,
    }
}

/// The organization identifier (`PSDFR-ACPR-12345`) in a certificate subject DN, written either
/// RFC 4514 style (`CN=x,2.5.4.97=PSDFR-ACPR-12345,O=y`) or OpenSSL's one-line style
/// (`/C=FR/organizationIdentifier=PSDFR-ACPR-12345/CN=x`).
///
/// The DN is parsed, never searched: attribute-value pairs are split on unescaped `,` and `+`
/// (`/` in the one-line style), escapes (`\,`, `\2C`) and quoted values are undone, a DER hex
/// value (`#0c10…`) is decoded, and only an attribute whose type is exactly
/// `organizationIdentifier`, `2.5.4.97` or `OID.2.5.4.97` (any case) counts. So an organization
/// name `Evil organizationIdentifier=VICTIM` (or `Evil\, organizationIdentifier=VICTIM`) is an
/// organization name. `Ok(None)`: the DN has no such attribute. `Err`: the DN cannot be read,
/// or names two different identifiers (OpenSSL's one-line style does not escape `/`, so a
/// name holding `/organizationIdentifier=…` shows up as a second one there).
pub fn organization_identifier(dn: &str) -> Result<Option<String>, String> {
    let avas = parse_dn(dn).map_err(|why| format!("certificate DN {dn:?}: {why}"))?;
    if dn.trim_start().starts_with('/') {
        // The one-line style cannot tell `O=Evil/organizationIdentifier=VICTIM` (one name) from
        // a genuine identifier after an organization: never charged to anyone. The request
        // still counts; its TPP is unknown.
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            tracing::warn!("certificate DNs in OpenSSL's one-line form (/C=FR/O=...) name no TPP: '/' is not escaped there, so an organization name could forge another TPP's identifier; log the RFC 4514 form (nginx: $ssl_client_s_dn)");
        });
        let ids = avas
            .iter()
            .filter(|(t, _)| {
                let t = t.trim();
                t.eq_ignore_ascii_case("organizationIdentifier") || t.ends_with("2.5.4.97")
            })
            .map(|(_, v)| v)
            .collect::<std::collections::BTreeSet<_>>();
        if ids.len() > 1 {
            return Err(format!(
                "certificate DN {dn:?} names two organization identifiers"
            ));
        }
        return Ok(None);
    }
    let mut found: Option<String> = None;
    for (ty, value) in avas {
        let ty = ty.trim();
        let ty = match ty.get(..4) {
            Some(p) if p.eq_ignore_ascii_case("oid.") => &ty[4..],
            _ => ty,
        };
        if !(ty.eq_ignore_ascii_case("organizationIdentifier") || ty == "2.5.4.97") {
            continue;
        }
        match &found {
            Some(f) if *f != value => {
                return Err(format!(
                    "certificate DN {dn:?} names two organization identifiers ({f:?}, {value:?})"
                ));
            }
            _ => found = Some(value),
        }
    }
    Ok(found.filter(|v| !v.is_empty()))
}

/// Attribute-value pairs of a DN, types as written and values unescaped, in order.
fn parse_dn(dn: &str) -> Result<Vec<(String, String)>, String> {
    let dn = dn.trim();
    if let Some(rest) = dn.strip_prefix('/') {
        // OpenSSL one-line: `/type=value/type=value`, no escaping of `/`.
        return rest
            .split('/')
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.split_once('=')
                    .map(|(t, v)| (t.to_owned(), v.trim().to_owned()))
                    .ok_or_else(|| format!("{p:?} is not type=value"))
            })
            .collect();
    }
    let b = dn.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        // Type: up to the first `=` (never escaped in a type).
        let eq = b[i..]
            .iter()
            .position(|&c| c == b'=')
            .map(|p| i + p)
            .ok_or_else(|| format!("{:?} has no '='", &dn[i..]))?;
        let ty = &dn[i..eq];
        if ty.trim().is_empty() || ty.contains([',', '+', '\\', '"']) {
            return Err(format!("bad attribute type {:?}", ty.trim()));
        }
        i = eq + 1;
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let mut value: Vec<u8> = Vec::new();
        if b.get(i) == Some(&b'#') {
            // A hex string: the DER encoding of the value.
            let start = i + 1;
            while i < b.len() && b[i] != b',' && b[i] != b'+' {
                i += 1;
            }
            value = decode_der_string(dn[start..i].trim_end())
                .ok_or_else(|| format!("bad hex value {:?}", &dn[start - 1..i]))?
                .into_bytes();
        } else if b.get(i) == Some(&b'"') {
            // A quoted value (RFC 2253 readers accept it): up to the unescaped closing quote.
            i += 1;
            loop {
                match b.get(i) {
                    None => return Err("unterminated quoted value".into()),
                    Some(b'"') => break,
                    Some(b'\\') => i = unescape(b, i, &mut value)?,
                    Some(&c) => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
            i += 1;
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
            if i < b.len() && b[i] != b',' && b[i] != b'+' {
                return Err("text after a quoted value".into());
            }
        } else {
            // Trailing spaces are dropped unless escaped.
            let mut kept = 0;
            while i < b.len() && b[i] != b',' && b[i] != b'+' {
                if b[i] == b'\\' {
                    i = unescape(b, i, &mut value)?;
                    kept = value.len();
                } else {
                    value.push(b[i]);
                    if b[i] != b' ' {
                        kept = value.len();
                    }
                    i += 1;
                }
            }
            value.truncate(kept);
        }
        let value = String::from_utf8(value).map_err(|_| "a value is not UTF-8".to_owned())?;
        out.push((ty.to_owned(), value));
        if i < b.len() {
            i += 1; // the separator
            if i == b.len() {
                return Err("ends with a separator".into());
            }
        }
    }
    Ok(out)
}

/// Undoes the escape at `b[i]` (a backslash): `\,` or `\2C`. Returns the index after it.
fn unescape(b: &[u8], i: usize, value: &mut Vec<u8>) -> Result<usize, String> {
    let hex = |c: u8| (c as char).to_digit(16);
    match (b.get(i + 1), b.get(i + 2)) {
        (Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
            value.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
            Ok(i + 3)
        }
        (Some(&c), _) if b" \"#+,;<>\\=/".contains(&c) => {
            value.push(c);
            Ok(i + 2)
        }
        _ => Err("bad escape (a backslash before a character that needs none)".into()),
    }
}

/// A DER-encoded string (tag, length, bytes) given in hex: UTF8String, PrintableString,
/// IA5String, TeletexString (read as UTF-8) or BMPString.
fn decode_der_string(hex: &str) -> Option<String> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    let bytes = bytes?;
    let (len, at) = match *bytes.get(1)? {
        n if n < 0x80 => (n as usize, 2usize),
        0x81 => (*bytes.get(2)? as usize, 3),
        0x82 => ((*bytes.get(2)? as usize) << 8 | *bytes.get(3)? as usize, 4),
        _ => return None,
    };
    let body = bytes.get(at..at.checked_add(len)?)?;
    if at + len != bytes.len() {
        return None;
    }
    match bytes[0] {
        0x0c | 0x13 | 0x16 | 0x14 => String::from_utf8(body.to_vec()).ok(),
        0x1e if len % 2 == 0 => {
            char::decode_utf16(body.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])))
                .collect::<Result<String, _>>()
                .ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPPING: &str = r#"
latency_unit = "ms"
[fields]
received_at = "ts"
request_id = "headers.X-Request-ID"
establishment = "bank"
fallback = "headers.fallback"
path = "path"
tpp_dn = "tls.client_dn"
status = "status"
latency = "duration"
error_code = "error.code"
[timestamp]
format = "%d/%m/%Y %H:%M:%S%.3f"
timezone = "Europe/Paris"
[services]
"/stet/psd2/oauth/token" = "token"
"/funds-confirmations" = "cbpii"
"/stet/psd2" = "other"
"#;

    #[test]
    fn a_gateway_line_becomes_an_observation() {
        let m = Mapping::parse(MAPPING).unwrap();
        let v: Value = serde_json::from_str(
            r#"{"ts":"04/07/2024 12:00:01.250","headers":{"x-request-id":"r1","fallback":"1"},
            "bank":"13807","path":"/stet/psd2/v1.4/funds-confirmations?x=1",
            "tls":{"client_dn":"CN=tpp,2.5.4.97=PSDFR-ACPR-12345,O=TPP SA,C=FR"},
            "status":503,"duration":"12.5","error":{"code":"INTS"}}"#,
        )
        .unwrap();
        let o = m.apply(&v).unwrap().obs;
        // 12:00:01.250 in Paris in July (UTC+2) is 10:00:01.250 UTC = 1720087201250.
        assert_eq!(o.received_at_ms, 1_720_087_201_250);
        assert_eq!(o.request_id, "r1");
        assert_eq!(o.interface, Interface::Fallback);
        assert_eq!(o.service.as_str(), "cbpii");
        assert_eq!(o.tpp.as_deref(), Some("PSDFR-ACPR-12345"));
        assert_eq!(o.status, Some(503));
        assert_eq!(o.latency_ms, Some(12.5));
        assert_eq!(o.outcome, Outcome::AspspError);
    }

    #[test]
    fn bad_lines_say_why() {
        let m = Mapping::parse(MAPPING).unwrap();
        let v: Value = serde_json::from_str(
            r#"{"ts":"2024-07-04","headers":{"X-Request-ID":"r"},"bank":"13807","path":"/stet/psd2/oauth/token"}"#,
        )
        .unwrap();
        assert!(m.apply(&v).unwrap_err().contains("does not match"));
        let v: Value = serde_json::from_str(
            r#"{"ts":"04/07/2024 12:00:01.250","headers":{"X-Request-ID":"r"},"bank":"1380","path":"/x"}"#,
        )
        .unwrap();
        assert!(m.apply(&v).unwrap_err().contains("5 digits"));
    }

    #[test]
    fn organization_identifiers_from_dns() {
        let oi = |dn: &str| organization_identifier(dn);
        let ok = |s: &str| Ok(Some(s.to_owned()));
        // (DN as a gateway logs it, what it attributes)
        let table: &[(&str, Result<Option<String>, String>)] = &[
            // OpenSSL's one-line form does not escape '/': `O=Evil/organizationIdentifier=X`
            // may be one name, so it names no TPP (the request still counts).
            (
                "/C=FR/O=TPP/organizationIdentifier=PSDFR-ACPR-1/CN=x",
                Ok(None),
            ),
            ("/C=GB/O=Evil/organizationIdentifier=VICTIM", Ok(None)),
            ("CN=x,2.5.4.97=PSDFR-ACPR-1,O=y", ok("PSDFR-ACPR-1")),
            (
                "CN=x, ORGANIZATIONIDENTIFIER = PSDFR-ACPR-1",
                ok("PSDFR-ACPR-1"),
            ),
            ("OID.2.5.4.97=PSDFR-ACPR-1,C=FR", ok("PSDFR-ACPR-1")),
            (
                "CN=x+organizationIdentifier=PSDFR-ACPR-1,C=FR",
                ok("PSDFR-ACPR-1"),
            ),
            // "PSD" as a DER UTF8String: tag 0c, length 03, 'P' 'S' 'D'.
            ("CN=x,2.5.4.97=#0c03505344", ok("PSD")),
            // Escapes and hex pairs are undone in the value.
            ("2.5.4.97=PSD\\2CX,CN=x", ok("PSD,X")),
            ("2.5.4.97=\"PSD,X\",CN=x", ok("PSD,X")),
            ("CN=x,O=y", Ok(None)),
            ("", Ok(None)),
            // The attack: an organization name that reads like the attribute.
            (
                "CN=evil,O=Evil organizationIdentifier=PSDFR-ACPR-VICTIM,organizationIdentifier=PSDFR-ACPR-EVIL",
                ok("PSDFR-ACPR-EVIL"),
            ),
            (
                "CN=evil,O=Evil\\, organizationIdentifier=PSDFR-ACPR-VICTIM,2.5.4.97=PSDFR-ACPR-EVIL",
                ok("PSDFR-ACPR-EVIL"),
            ),
            (
                "O=Evil\\2C2.5.4.97=PSDFR-ACPR-VICTIM,CN=evil,2.5.4.97=PSDFR-ACPR-EVIL",
                ok("PSDFR-ACPR-EVIL"),
            ),
            ("O=x;organizationIdentifier=PSDFR-ACPR-VICTIM", Ok(None)),
            ("CN=xorganizationIdentifier=PSDFR-ACPR-VICTIM", Ok(None)),
            ("myorganizationIdentifier=PSDFR-ACPR-VICTIM", Ok(None)),
            ("2.5.4.970=PSDFR-ACPR-VICTIM", Ok(None)),
        ];
        for (dn, want) in table {
            assert_eq!(&oi(dn), want, "{dn}");
        }
        // Ambiguous or unreadable: refused (the line is), never guessed.
        for (dn, why) in [
            (
                "/O=Evil/organizationIdentifier=PSDFR-ACPR-VICTIM/organizationIdentifier=PSDFR-ACPR-EVIL",
                "two organization identifiers",
            ),
            ("CN=x\\", "bad escape"),
            ("CN=x\\q", "bad escape"),
            ("2.5.4.97=#0c0350", "bad hex value"),
            ("CN=\"x", "unterminated"),
            ("CN=x,", "ends with a separator"),
            ("CN", "no '='"),
        ] {
            let e = oi(dn).unwrap_err();
            assert!(e.contains(why), "{dn}: {e}");
        }
    }

    /// A Paris log of local wall times, read line after line as the JSON-lines reader does:
    /// each line placed after the previous accepted one.
    fn place(lines: &[&str]) -> Vec<Result<i64, String>> {
        let m = Mapping::parse(
            "[fields]\nreceived_at = \"t\"\nrequest_id = \"id\"\n\
             [timestamp]\nformat = \"%Y-%m-%d %H:%M\"\ntimezone = \"Europe/Paris\"\n\
             [defaults]\nestablishment = \"13807\"\nservice = \"cbpii\"\n",
        )
        .unwrap();
        let mut previous = None;
        lines
            .iter()
            .map(|t| {
                let v = serde_json::json!({"t": t, "id": "r"});
                let r = m.apply_after(&v, previous).map(|o| o.obs.received_at_ms);
                if let Ok(ms) = r {
                    previous = Some(ms);
                }
                r
            })
            .collect()
    }

    #[test]
    fn the_autumn_fold_is_placed_by_the_order_of_the_file() {
        // 2024-10-27 in Paris: at 03:00 CEST (+02:00, 01:00Z) clocks go back to 02:00 CET
        // (+01:00), so 02:00 to 02:59 happen twice.
        //   01:50        unique, +02:00                        2024-10-26T23:50Z 1729986600000
        //   02:10        00:10Z (20 min on) or 01:10Z: first    2024-10-27T00:10Z 1729987800000
        //   02:50        00:50Z (40 min on) or 01:50Z: first    2024-10-27T00:50Z 1729990200000
        //   02:05        00:05Z (45 min back) or 01:05Z (15 min on): second
        //                                                       2024-10-27T01:05Z 1729991100000
        //   02:40        after a second-pass line: second       2024-10-27T01:40Z 1729993200000
        //                (its first pass, 00:40Z, is 25 min back, nearer than 35 min on)
        //   03:10        unique, +01:00                        2024-10-27T02:10Z 1729995000000
        let got = place(&[
            "2024-10-27 01:50",
            "2024-10-27 02:10",
            "2024-10-27 02:50",
            "2024-10-27 02:05",
            "2024-10-27 02:40",
            "2024-10-27 03:10",
        ]);
        let want = [
            1_729_986_600_000,
            1_729_987_800_000,
            1_729_990_200_000,
            1_729_991_100_000,
            1_729_993_200_000,
            1_729_995_000_000,
        ];
        assert_eq!(got, want.map(Ok));
    }

    #[test]
    fn an_ambiguous_first_line_and_a_skipped_time_are_refused() {
        let got = place(&[
            // Nothing before it tells which 02:30.
            "2024-10-27 02:30",
            // Clocks went from 02:00 to 03:00 CEST on 2024-03-31: 02:30 never happened.
            "2024-03-31 02:30",
            // 03:30 CEST = 01:30Z = 1711848600000.
            "2024-03-31 03:30",
        ]);
        let e = got[0].as_ref().unwrap_err();
        assert!(
            e.contains("is ambiguous in Europe/Paris")
                && e.contains("2024-10-27T02:30:00+02:00 or 2024-10-27T02:30:00+01:00"),
            "{e}"
        );
        let e = got[1].as_ref().unwrap_err();
        assert!(
            e.contains("\"2024-03-31 02:30\" does not exist in Europe/Paris"),
            "{e}"
        );
        assert_eq!(got[2], Ok(1_711_848_600_000));
    }

    #[test]
    fn fold_ties_and_late_files_take_the_later_instant() {
        let tz: Tz = "Europe/Paris".parse().unwrap();
        let naive = NaiveDateTime::parse_from_str("2024-10-27 02:00", "%Y-%m-%d %H:%M").unwrap();
        let LocalResult::Ambiguous(a, b) = tz.from_local_datetime(&naive) else {
            panic!("02:00 is in the fold")
        };
        // a = 00:00Z, b = 01:00Z. Previous at 00:30Z: 30 min either way, the later wins.
        assert_eq!(a.timestamp_millis(), 1_729_987_200_000);
        let half = a.timestamp_millis() + 1_800_000;
        assert_eq!(
            resolve_fold(tz, &a, &b, Some(half)),
            Some(b.timestamp_millis())
        );
        // Previous a minute before a: a.
        let before = a.timestamp_millis() - 60_000;
        assert_eq!(
            resolve_fold(tz, &a, &b, Some(before)),
            Some(a.timestamp_millis())
        );
        // Previous a day later: b.
        let later = b.timestamp_millis() + 86_400_000;
        assert_eq!(
            resolve_fold(tz, &a, &b, Some(later)),
            Some(b.timestamp_millis())
        );
        assert_eq!(resolve_fold(tz, &a, &b, None), None);
    }

    #[test]
    fn epoch_times_must_be_finite() {
        let m = Mapping::parse(
            "[fields]\nreceived_at = \"t\"\nrequest_id = \"id\"\n\
             [timestamp]\nformat = \"epoch_s\"\n\
             [defaults]\nestablishment = \"13807\"\nservice = \"cbpii\"\n",
        )
        .unwrap();
        for t in [
            serde_json::json!("inf"),
            serde_json::json!("NaN"),
            serde_json::json!(1e300),
        ] {
            let e = m
                .apply(&serde_json::json!({"t": t, "id": "r"}))
                .unwrap_err();
            assert!(e.contains("is not a finite epoch time"), "{e}");
        }
        let o = m
            .apply(&serde_json::json!({"t": 1_720_087_200.25, "id": "r"}))
            .unwrap();
        assert_eq!(o.obs.received_at_ms, 1_720_087_200_250);
    }

    #[test]
    fn a_field_is_taken_by_a_pattern_or_through_a_table() {
        let m = Mapping::parse(
            r#"
[fields]
received_at = "t"
request_id = "id"
establishment = { field = "request.headers.host", pattern = '^www\.(\d{5})\.' }
service = { field = "route", table = { "fc" = "cbpii", "tok" = "token" } }
interface = { field = "request.headers.host", pattern = '^[a-z]+', table = { "www" = "api", "psu" = "psu_web" } }
"#,
        )
        .unwrap();
        let line = |host: &str, route: &str| {
            serde_json::json!({"t": "2024-07-04T10:00:00Z", "id": "r",
                "request": {"headers": {"host": host}}, "route": route})
        };
        let o = m
            .apply(&line("www.13807.live.api.89c3.com", "fc"))
            .unwrap()
            .obs;
        assert_eq!(o.establishment.as_str(), "13807");
        assert_eq!(o.service.as_str(), "cbpii");
        assert_eq!(o.interface, Interface::Api);
        // Table keys match case-insensitively when no key matches exactly (host names).
        let o = m
            .apply(&line("www.10548.live.api.89c3.com", "TOK"))
            .unwrap()
            .obs;
        assert_eq!(
            (o.establishment.as_str(), o.service.as_str()),
            ("10548", "token")
        );
        // A value the pattern does not match, or one missing from the table, refuses the line.
        let e = m.apply(&line("api.bank.example", "fc")).unwrap_err();
        assert!(
            e.contains("request.headers.host \"api.bank.example\" does not match its pattern"),
            "{e}"
        );
        let e = m.apply(&line("www.13807.x", "other")).unwrap_err();
        assert!(
            e.contains("route \"other\" is not in its table (known: fc, tok)"),
            "{e}"
        );
        // Without a capture group, the whole match.
        let o = m.apply(&line("psu.13807.x", "fc"));
        assert!(o.unwrap_err().contains("does not match its pattern"));
    }

    #[test]
    fn bad_patterns_and_unknown_keys_name_the_line() {
        let e = Mapping::parse(
            "[fields]\nreceived_at = \"t\"\nrequest_id = \"id\"\n\
             establishment = { field = \"h\", pattern = \"(\" }\n",
        )
        .unwrap_err();
        assert!(
            e.starts_with("line 4") && e.contains("pattern \"(\" of h"),
            "{e}"
        );
        let e = Mapping::parse(
            "[fields]\nreceived_at = \"t\"\nrequest_id = { field = \"id\", regex = \"x\" }\n",
        )
        .unwrap_err();
        assert!(
            e.starts_with("line 3") && e.contains("unknown field `regex`"),
            "{e}"
        );
    }

    #[test]
    fn give_up_statuses_are_no_replies_and_end_times_are_moved_to_the_start() {
        let m = Mapping::parse(
            "latency_unit = \"s\"\nno_reply_status = [499]\n\
             [fields]\nreceived_at = \"t\"\nrequest_id = \"id\"\nstatus = \"s\"\nlatency = \"l\"\n\
             [timestamp]\nformat = \"%d/%b/%Y:%H:%M:%S %z\"\nmarks = \"end\"\n\
             [defaults]\nestablishment = \"13807\"\nservice = \"cbpii\"\n",
        )
        .unwrap();
        // Logged at 12:00:30 +02:00 = 10:00:30Z after 30.000 s: it arrived at 10:00:00Z.
        let o = m
            .apply(&serde_json::json!({"t": "04/Jul/2024:12:00:30 +0200", "id": "r", "s": 499, "l": 30.0}))
            .unwrap();
        assert_eq!(o.obs.received_at_ms, 1_720_087_200_000);
        assert_eq!(o.obs.status, None);
        assert_eq!(o.obs.latency_ms, None);
        assert_eq!(o.obs.outcome, Outcome::NoReply);
        assert!(o.error_text.unwrap().contains("status 499"));
        let o = m
            .apply(&serde_json::json!({"t": "04/Jul/2024:12:00:30 +0200", "id": "r", "s": 200, "l": 0.25}))
            .unwrap()
            .obs;
        assert_eq!(o.received_at_ms, 1_720_087_229_750);
        assert_eq!((o.status, o.latency_ms), (Some(200), Some(250.0)));
    }

    #[test]
    fn mapping_errors_name_the_line() {
        let e = Mapping::parse("[fields]\nreceived_at = 3\n").unwrap_err();
        assert!(e.starts_with("line 2"), "{e}");
    }
}

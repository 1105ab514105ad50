//! Fault injection: what can go wrong with the simulated bank, per establishment and interface,
//! and when. A plan comes from `--faults FILE` (TOML) and can be replaced while running through
//! the admin listener (the same shape in JSON).
//!
//! ```toml
//! seed = 7                      # random draws (error_rate, latency ranges) are reproducible
//! [[fault]]
//! establishment = "13807"       # or "*" (default)
//! interface = "api"             # api | fallback | psu_web | "*" (default)
//! kind = "hang"                 # refuse | hang | reset | error500 | error503 | latency |
//!                               # error_rate | slow_body | rate_limit
//! after_s = 60                  # starts 60 s after the plan was loaded (default 0) ...
//! for_s = 120                   # ... and lasts 120 s (default: until removed)
//! # from = "2026-11-24T10:00:00Z", until = "..."   (absolute window instead)
//! ```
//! Kind parameters: `latency_ms` (+ optional `latency_max_ms` for a uniform range) for
//! `latency`; `rate` (0..1) for `error_rate`; `body_ms` for `slow_body`; `per_s` for `rate_limit`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::Interface;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The connection is closed before the TLS handshake completes (as a failing load balancer
    /// does): the client sees a TLS handshake failure. Connection-level, so it covers the whole
    /// host (api and fallback share it).
    Refuse,
    /// The request is read and never answered: the client times out.
    Hang,
    /// The request is read, then the connection is reset (TCP RST).
    Reset,
    /// 500 with STET error INTE.
    Error500,
    /// 503 with STET error INTS.
    Error503,
    /// Answers are delayed.
    Latency,
    /// A random share of requests gets 500 INTE.
    ErrorRate,
    /// The body of answers trickles out over `body_ms`.
    SlowBody,
    /// Above `per_s` requests per second, 429 TMRQ.
    RateLimit,
}

/// Which interfaces a fault covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultInterface {
    Api,
    Fallback,
    PsuWeb,
    #[default]
    #[serde(rename = "*")]
    Any,
}

impl FaultInterface {
    pub fn covers(self, i: Interface) -> bool {
        match self {
            FaultInterface::Any => true,
            FaultInterface::Api => i == Interface::Api,
            FaultInterface::Fallback => i == Interface::Fallback,
            FaultInterface::PsuWeb => i == Interface::PsuWeb,
        }
    }
}

fn any() -> String {
    "*".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    #[serde(default = "any")]
    pub establishment: String,
    #[serde(default)]
    pub interface: FaultInterface,
    pub kind: FaultKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_max_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_s: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPlan {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, rename = "fault")]
    pub faults: Vec<Fault>,
}

#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    #[error("cannot read fault plan {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("fault plan {path}: {message}")]
    Parse { path: String, message: String },
    #[error("fault #{index} ({kind:?}): {why}")]
    Invalid {
        index: usize,
        kind: FaultKind,
        why: String,
    },
}

impl FaultPlan {
    pub fn from_toml_file(path: &std::path::Path) -> Result<Self, FaultError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| FaultError::Read {
            path: shown.clone(),
            source,
        })?;
        let plan: FaultPlan = toml::from_str(&text).map_err(|e| FaultError::Parse {
            path: shown,
            message: e.to_string(),
        })?;
        plan.validate()?;
        Ok(plan)
    }

    /// Checks each fault has the parameters its kind needs, with sensible values.
    pub fn validate(&self) -> Result<(), FaultError> {
        for (index, f) in self.faults.iter().enumerate() {
            let bad = |why: &str| {
                Err(FaultError::Invalid {
                    index: index + 1,
                    kind: f.kind,
                    why: why.into(),
                })
            };
            if f.establishment != "*"
                && f.establishment
                    .parse::<crate::domain::EstablishmentCode>()
                    .is_err()
            {
                return bad("establishment must be a 5-digit code or \"*\"");
            }
            if f.after_s.is_some_and(|v| v < 0.0) || f.for_s.is_some_and(|v| v < 0.0) {
                return bad("after_s and for_s must not be negative");
            }
            if (f.after_s.is_some() || f.for_s.is_some()) && (f.from.is_some() || f.until.is_some())
            {
                return bad(
                    "give a relative window (after_s/for_s) or an absolute one (from/until), not both",
                );
            }
            match f.kind {
                FaultKind::Latency => match (f.latency_ms, f.latency_max_ms) {
                    (None, _) => return bad("latency needs latency_ms"),
                    (Some(a), _) if a < 0.0 => return bad("latency_ms must not be negative"),
                    (Some(a), Some(b)) if b < a => {
                        return bad("latency_max_ms must be at least latency_ms");
                    }
                    _ => {}
                },
                FaultKind::ErrorRate if !f.rate.is_some_and(|r| (0.0..=1.0).contains(&r)) => {
                    return bad("error_rate needs rate between 0 and 1");
                }
                FaultKind::SlowBody if !f.body_ms.is_some_and(|b| b > 0.0) => {
                    return bad("slow_body needs body_ms > 0");
                }
                FaultKind::RateLimit if f.per_s.is_none_or(|p| p == 0) => {
                    return bad("rate_limit needs per_s > 0");
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl Fault {
    /// Whether the fault is in force at `now_ms`, the plan having been loaded at `loaded_ms`.
    pub fn active(&self, now_ms: i64, loaded_ms: i64) -> bool {
        if self.from.is_some() || self.until.is_some() {
            let after_from = self.from.is_none_or(|f| now_ms >= f.timestamp_millis());
            let before_until = self.until.is_none_or(|u| now_ms < u.timestamp_millis());
            return after_from && before_until;
        }
        let start = loaded_ms + (self.after_s.unwrap_or(0.0) * 1000.0) as i64;
        let end = self.for_s.map(|f| start + (f * 1000.0) as i64);
        now_ms >= start && end.is_none_or(|e| now_ms < e)
    }

    pub fn covers(&self, establishment: &str, interface: Interface) -> bool {
        (self.establishment == "*" || self.establishment == establishment)
            && self.interface.covers(interface)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_parse_validate_and_windows_apply() {
        let plan: FaultPlan = toml::from_str(
            r#"
            seed = 7
            [[fault]]
            establishment = "13807"
            interface = "api"
            kind = "hang"
            after_s = 10
            for_s = 20
            [[fault]]
            kind = "latency"
            latency_ms = 200
            "#,
        )
        .unwrap();
        plan.validate().unwrap();
        let hang = &plan.faults[0];
        assert!(
            !hang.active(9_999, 0)
                && hang.active(10_000, 0)
                && hang.active(29_999, 0)
                && !hang.active(30_000, 0)
        );
        assert!(hang.covers("13807", Interface::Api) && !hang.covers("13807", Interface::Fallback));
        assert!(!hang.covers("10807", Interface::Api));
        assert!(plan.faults[1].covers("10807", Interface::PsuWeb) && plan.faults[1].active(0, 0));

        let bad: FaultPlan =
            toml::from_str("[[fault]]\nkind = \"error_rate\"\nrate = 2.0").unwrap();
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("rate between 0 and 1")
        );
        assert!(toml::from_str::<FaultPlan>("[[fault]]\nkind = \"melt\"").is_err());
        assert!(toml::from_str::<FaultPlan>("[[fault]]\nkind = \"hang\"\ncolour = 1").is_err());
    }
}

//! Prometheus Alertmanager API v2 (`POST /api/v2/alerts`): labels `alertname`, `establishment`,
//! `interface`, `severity`; annotations `summary`, `description`; `startsAt`, `endsAt`.
//!
//! Alertmanager forgets a firing alert once its `endsAt` passes, as it does for Prometheus: a
//! firing alert is sent valid for [`VALIDITY_MS`] and re-sent every [`REFRESH_MS`] while it fires
//! (see `outbox::run`), so a long outage stays visible and a dead monitor's alerts lapse on their
//! own. A resolution is the same labels with `endsAt` at the end of the episode.

use super::{Alert, DeliveryError, Event, Notice};
use crate::engine::time::rfc3339;

/// How long a firing alert stays valid in Alertmanager without news.
pub const VALIDITY_MS: i64 = 5 * 60_000;
/// How often firing alerts are re-sent.
pub const REFRESH_MS: i64 = 60_000;

/// One alert of the API's `postableAlerts` array, as of `now_ms`.
pub fn alert_json(a: &Alert, event: Event, now_ms: i64) -> serde_json::Value {
    let mut labels = serde_json::Map::new();
    labels.insert("alertname".into(), format!("dispo_{}", a.kind).into());
    labels.insert("severity".into(), a.severity.as_str().into());
    labels.insert("dedup_key".into(), a.key.clone().into());
    if let Some(e) = &a.establishment {
        labels.insert("establishment".into(), e.clone().into());
    }
    if let Some(i) = &a.interface {
        labels.insert("interface".into(), i.clone().into());
    }
    let ends = match event {
        Event::Resolved => a.ends_at_ms.unwrap_or(now_ms),
        Event::Firing | Event::Reminder => now_ms + VALIDITY_MS,
    };
    serde_json::json!({
        "labels": labels,
        "annotations": {"summary": a.summary, "description": a.description},
        "startsAt": rfc3339(a.starts_at_ms),
        "endsAt": rfc3339(ends),
    })
}

pub fn payload(n: &Notice) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp_millis();
    serde_json::json!([alert_json(&n.alert, n.event, now)])
}

fn endpoint(base: &str) -> String {
    format!("{}/api/v2/alerts", base.trim_end_matches('/'))
}

pub async fn send(http: &reqwest::Client, base: &str, n: &Notice) -> Result<(), DeliveryError> {
    super::post_json(http, &endpoint(base), &payload(n)).await
}

/// Re-sends every alert still firing (best effort: the outbox holds the durable notices).
pub async fn refresh(
    http: &reqwest::Client,
    base: &str,
    firing: &[Alert],
    now_ms: i64,
) -> Result<(), DeliveryError> {
    if firing.is_empty() {
        return Ok(());
    }
    let body: Vec<serde_json::Value> = firing
        .iter()
        .map(|a| alert_json(a, Event::Firing, now_ms))
        .collect();
    super::post_json(http, &endpoint(base), &serde_json::Value::Array(body)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Severity;

    #[test]
    fn firing_is_valid_five_minutes_and_resolved_ends_with_the_episode() {
        let a = Alert {
            key: "13807-api-20241105T101502.000Z".into(),
            kind: "interface_down".into(),
            severity: Severity::Critical,
            establishment: Some("13807".into()),
            interface: Some("api".into()),
            summary: "down".into(),
            description: "five failures".into(),
            // 2024-11-05T10:15:02Z
            starts_at_ms: 1_730_801_702_000,
            ends_at_ms: None,
        };
        // Sent at 10:16:00Z: valid until 10:21:00Z.
        let now = 1_730_801_760_000;
        let f = alert_json(&a, Event::Firing, now);
        assert_eq!(f["labels"]["alertname"], "dispo_interface_down");
        assert_eq!(f["labels"]["severity"], "critical");
        assert_eq!(f["labels"]["establishment"], "13807");
        assert_eq!(f["labels"]["interface"], "api");
        assert_eq!(f["startsAt"], "2024-11-05T10:15:02.000Z");
        assert_eq!(f["endsAt"], "2024-11-05T10:21:00.000Z");
        // Recovered at 10:17:30.5Z.
        let r = Alert {
            ends_at_ms: Some(1_730_801_850_500),
            ..a
        };
        let r = alert_json(&r, Event::Resolved, now + 120_000);
        assert_eq!(r["labels"], f["labels"]);
        assert_eq!(r["endsAt"], "2024-11-05T10:17:30.500Z");
    }
}

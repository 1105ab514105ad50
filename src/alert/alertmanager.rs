//! Prometheus Alertmanager API v2 (`POST /api/v2/alerts`): labels `alertname`, `establishment`,
//! `interface`, `severity`; `startsAt`; a resolved alert is the same labels with `endsAt` set.

use super::{DeliveryError, Event, Notice};
use crate::engine::time::rfc3339;

pub fn payload(n: &Notice) -> serde_json::Value {
    let a = &n.alert;
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
    let mut alert = serde_json::json!({
        "labels": labels,
        "annotations": {"summary": a.summary, "description": a.description},
        "startsAt": rfc3339(a.starts_at_ms),
    });
    if n.event == Event::Resolved {
        alert["endsAt"] = rfc3339(
            a.ends_at_ms
                .unwrap_or_else(|| chrono::Utc::now().timestamp_millis()),
        )
        .into();
    }
    serde_json::json!([alert])
}

pub async fn send(http: &reqwest::Client, base: &str, n: &Notice) -> Result<(), DeliveryError> {
    let url = format!("{}/api/v2/alerts", base.trim_end_matches('/'));
    super::post_json(http, &url, &payload(n)).await
}

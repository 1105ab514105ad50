//! Generic JSON webhook: the notice as one JSON object.

use super::{DeliveryError, Notice};
use crate::engine::time::rfc3339;

/// The JSON a webhook receives (documented in the README).
pub fn payload(n: &Notice) -> serde_json::Value {
    let a = &n.alert;
    serde_json::json!({
        "event": n.event.as_str(),
        "key": a.key,
        "kind": a.kind,
        "severity": a.severity.as_str(),
        "establishment": a.establishment,
        "interface": a.interface,
        "summary": a.summary,
        "description": a.description,
        "starts_at": rfc3339(a.starts_at_ms),
        "ends_at": a.ends_at_ms.map(rfc3339),
    })
}

pub async fn send(http: &reqwest::Client, url: &str, n: &Notice) -> Result<(), DeliveryError> {
    super::post_json(http, url, &payload(n)).await
}

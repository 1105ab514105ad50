//! Slack-compatible incoming webhook (`{"text": ...}`), also understood by Mattermost and others.

use super::{DeliveryError, Event, Notice};

pub fn payload(n: &Notice) -> serde_json::Value {
    let icon = match n.event {
        Event::Firing => ":red_circle:",
        Event::Reminder => ":large_orange_circle:",
        Event::Resolved => ":large_green_circle:",
    };
    serde_json::json!({
        "text": format!("{icon} [{}] {}\n{}", n.event.as_str().to_uppercase(), n.alert.summary, n.alert.description),
    })
}

pub async fn send(http: &reqwest::Client, url: &str, n: &Notice) -> Result<(), DeliveryError> {
    super::post_json(http, url, &payload(n)).await
}

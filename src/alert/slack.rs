//! Slack-compatible incoming webhook (`{"text": ...}`), also understood by Mattermost and others.

use super::{DeliveryError, Event, Notice};
use crate::escape::slack;

pub fn payload(n: &Notice) -> serde_json::Value {
    let icon = match n.event {
        Event::Firing => ":red_circle:",
        Event::Reminder => ":large_orange_circle:",
        Event::Resolved => ":large_green_circle:",
    };
    // Summaries and descriptions carry data (TPP names, error texts, ids): escaped, so they can
    // neither mention (`<!channel>`) nor link (`<https://x|text>`).
    serde_json::json!({
        "text": format!(
            "{icon} [{}] {}\n{}",
            n.event.as_str().to_uppercase(),
            slack(&n.alert.summary),
            slack(&n.alert.description)
        ),
    })
}

pub async fn send(http: &reqwest::Client, url: &str, n: &Notice) -> Result<(), DeliveryError> {
    super::post_json(http, url, &payload(n)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Alert, Severity};

    #[test]
    fn text_from_data_neither_mentions_nor_links() {
        let n = Notice {
            event: Event::Firing,
            alert: Alert {
                key: "k".into(),
                kind: "unjustified_fallback".into(),
                severity: Severity::Warning,
                establishment: Some("13807".into()),
                interface: None,
                summary: "TPP <!channel> <https://evil|URGENT> used the fallback".into(),
                description: "error: <@U123> & <!here>".into(),
                starts_at_ms: 0,
                ends_at_ms: None,
            },
        };
        let t = payload(&n)["text"].as_str().unwrap().to_owned();
        assert_eq!(
            t,
            ":red_circle: [FIRING] TPP &lt;!channel&gt; &lt;https://evil|URGENT&gt; used the fallback\nerror: &lt;@U123&gt; &amp; &lt;!here&gt;"
        );
    }
}

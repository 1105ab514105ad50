//! Delivery from the outbox: twice a second, the notices that are due go to their channels; a
//! failure is retried with exponential backoff (1 s, 2 s, 4 s ... at most 5 minutes). Every
//! minute, the alerts still firing are re-sent to Alertmanager, which otherwise lets them lapse.

use std::time::Duration;

use tokio::sync::watch;

use super::Channel;
use crate::store::Store;

/// Sends what is due once; returns how many were delivered.
pub async fn deliver_due(store: &Store, channels: &[Channel], http: &reqwest::Client) -> usize {
    let now = chrono::Utc::now().timestamp_millis();
    let due = match store.due_deliveries(now, 100).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the alert outbox");
            return 0;
        }
    };
    let mut n = 0;
    for d in due {
        let Some(ch) = channels.iter().find(|c| c.id() == d.channel) else {
            // The channel left the configuration: keep the notice, retry later.
            let _ = store
                .mark_failed(d.id, now + 300_000, "channel no longer configured")
                .await;
            continue;
        };
        match ch.deliver(http, &d.notice).await {
            Ok(()) => {
                n += 1;
                tracing::info!(key = %d.notice.alert.key, event = d.notice.event.as_str(), channel = %ch.label(), "alert delivered");
                let _ = store
                    .mark_delivered(d.id, chrono::Utc::now().timestamp_millis())
                    .await;
            }
            Err(e) => {
                let backoff = 1_000i64 << d.attempts.clamp(0, 8);
                tracing::warn!(key = %d.notice.alert.key, channel = %ch.label(), attempts = d.attempts + 1, error = %e, "alert delivery failed; will retry");
                let _ = store
                    .mark_failed(d.id, now + backoff.min(300_000), &e.to_string())
                    .await;
            }
        }
    }
    n
}

/// Runs the delivery loop until `stop`, then one last pass.
pub async fn run(store: Store, channels: Vec<Channel>, mut stop: watch::Receiver<bool>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let mut refreshed_at = chrono::Utc::now().timestamp_millis();
    loop {
        let now = chrono::Utc::now().timestamp_millis();
        if now - refreshed_at >= super::alertmanager::REFRESH_MS {
            refreshed_at = now;
            refresh_alertmanagers(&store, &channels, &http, now).await;
        }
        deliver_due(&store, &channels, &http).await;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.changed() => {
                deliver_due(&store, &channels, &http).await;
                return;
            }
        }
    }
}

/// Re-sends the firing alerts to every Alertmanager. Runs in the delivery task, so a resolution
/// is never overtaken by a refresh of the alert it ends.
async fn refresh_alertmanagers(
    store: &Store,
    channels: &[Channel],
    http: &reqwest::Client,
    now: i64,
) {
    let ams: Vec<&Channel> = channels
        .iter()
        .filter(|c| matches!(c, Channel::Alertmanager(_)))
        .collect();
    if ams.is_empty() {
        return;
    }
    let firing = match store.all_firing_alerts().await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the firing alerts");
            return;
        }
    };
    for c in ams {
        if let Channel::Alertmanager(base) = c
            && let Err(e) = super::alertmanager::refresh(http, base, &firing, now).await
        {
            tracing::warn!(channel = %c.label(), error = %e, "cannot refresh the firing alerts");
        }
    }
}

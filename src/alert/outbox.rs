//! Delivery from the outbox. Each channel has its own loop, so a relay that hangs never delays
//! another channel's alert: twice a second it sends its notices that are due, in order; a
//! failure is retried with exponential backoff (1 s, 2 s, 4 s ... at most 5 minutes), recorded
//! on the notice (so a restarted monitor keeps the pace) and applied to the whole channel (a
//! channel that is down is not asked again for each notice); news about an alert (its
//! resolution) brings its waiting notices forward, so they are tried again at once. Every minute, the Alertmanager
//! loops re-send the alerts still firing, which Alertmanager otherwise lets lapse.

use std::time::Duration;

use tokio::sync::watch;

use super::Channel;
use crate::store::Store;

/// Longest wait between two attempts.
const MAX_BACKOFF_MS: i64 = 300_000;

/// The wait after the `failures`-th failure in a row: 1 s, 2 s, 4 s ... 5 min.
pub fn backoff_ms(failures: i64) -> i64 {
    (1_000i64 << (failures - 1).clamp(0, 9)).min(MAX_BACKOFF_MS)
}

/// One channel's delivery state.
struct ChannelLoop {
    channel: Channel,
    id: String,
    /// Failures in a row, and when to try again.
    failures: i64,
    retry_at_ms: i64,
}

impl ChannelLoop {
    /// Sends this channel's due notices, in order, until one fails. Returns how many went out.
    async fn pass(&mut self, store: &Store, http: &reqwest::Client) -> usize {
        let now = chrono::Utc::now().timestamp_millis();
        if now < self.retry_at_ms {
            return 0;
        }
        let due = match store.due_deliveries_for(&self.id, now, 100).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the alert outbox");
                return 0;
            }
        };
        let mut n = 0;
        for d in due {
            match self.channel.deliver(http, &d.notice).await {
                Ok(()) => {
                    n += 1;
                    self.failures = 0;
                    tracing::info!(key = %d.notice.alert.key, event = d.notice.event.as_str(), channel = %self.channel.label(), "alert delivered");
                    if let Err(e) = store
                        .mark_delivered(d.id, chrono::Utc::now().timestamp_millis())
                        .await
                    {
                        // Sent but not marked: it will be sent again (at least once).
                        tracing::warn!(error = %e, "cannot mark the alert delivered");
                    }
                }
                Err(e) => {
                    crate::metrics::alert_delivery_failed(self.channel.kind(), e.reason());
                    self.failures += 1;
                    let wait = backoff_ms(d.attempts + 1).max(backoff_ms(self.failures));
                    let now = chrono::Utc::now().timestamp_millis();
                    self.retry_at_ms = now + wait;
                    if e.reason() == "redirect" {
                        // Will not mend by itself: the configured URL is wrong.
                        tracing::error!(key = %d.notice.alert.key, channel = %self.channel.label(), attempts = d.attempts + 1, retry_in_ms = wait, error = %e, "alert not delivered: the channel redirects; will retry");
                    } else {
                        tracing::warn!(key = %d.notice.alert.key, channel = %self.channel.label(), attempts = d.attempts + 1, retry_in_ms = wait, error = %e, "alert delivery failed; will retry");
                    }
                    let _ = store.mark_failed(d.id, now + wait, &e.to_string()).await;
                    break;
                }
            }
        }
        n
    }
}

/// Runs one delivery loop per channel until `stop`, then one last pass each.
pub async fn run(store: Store, channels: Vec<Channel>, stop: watch::Receiver<bool>) {
    let http = super::http_client();
    let mut tasks = Vec::new();
    for channel in channels {
        let (store, http, mut stop) = (store.clone(), http.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut l = ChannelLoop {
                id: channel.id(),
                channel,
                failures: 0,
                retry_at_ms: 0,
            };
            let mut refreshed_at = chrono::Utc::now().timestamp_millis();
            loop {
                let now = chrono::Utc::now().timestamp_millis();
                if now - refreshed_at >= super::alertmanager::REFRESH_MS {
                    refreshed_at = now;
                    refresh_alertmanager(&store, &l.channel, &http, now).await;
                }
                l.pass(&store, &http).await;
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = stop.changed() => {
                        l.pass(&store, &http).await;
                        return;
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// Re-sends the firing alerts to an Alertmanager. Runs in the channel's own loop, so a
/// resolution is never overtaken by a refresh of the alert it ends.
async fn refresh_alertmanager(store: &Store, channel: &Channel, http: &reqwest::Client, now: i64) {
    let Channel::Alertmanager(base) = channel else {
        return;
    };
    let firing = match store.all_firing_alerts().await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the firing alerts");
            return;
        }
    };
    if let Err(e) = super::alertmanager::refresh(http, base, &firing, now).await {
        tracing::warn!(channel = %channel.label(), error = %e, "cannot refresh the firing alerts");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::alert::{Alert, Severity};

    #[tokio::test]
    async fn a_hanging_channel_does_not_delay_another() {
        crate::install_crypto_provider();
        let dir = std::env::temp_dir().join(format!("dispo-outbox-run-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&dir.join("t.db")).await.unwrap();
        // A receiver that accepts connections and never answers (10 s client time-out)...
        let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hang_port = hang.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = hang.accept().await {
                held.push(s);
            }
        });
        // ...and one that records what it gets.
        let got: Arc<Mutex<Vec<serde_json::Value>>> = Default::default();
        let g = got.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |axum::Json(v): axum::Json<serde_json::Value>| {
                let g = g.clone();
                async move { g.lock().unwrap().push(v) }
            }),
        );
        let ok = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ok_port = ok.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(ok, app).await });
        // The hanging channel comes first in the configuration.
        let channels = vec![
            Channel::Webhook(format!("http://127.0.0.1:{hang_port}/hook")),
            Channel::Webhook(format!("http://127.0.0.1:{ok_port}/hook")),
        ];
        let ids: Vec<String> = channels.iter().map(Channel::id).collect();
        let alert = Alert {
            key: "k".into(),
            kind: "interface_down".into(),
            severity: Severity::Critical,
            establishment: Some("13807".into()),
            interface: Some("api".into()),
            summary: "down".into(),
            description: "d".into(),
            starts_at_ms: 0,
            ends_at_ms: None,
        };
        let now = chrono::Utc::now().timestamp_millis();
        store.raise_alert(&alert, &ids, now).await.unwrap();
        let (stop_tx, stop) = watch::channel(false);
        let run = tokio::spawn(run(store.clone(), channels, stop));
        let start = std::time::Instant::now();
        while got.lock().unwrap().is_empty() {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "the working channel waited for the hanging one"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(got.lock().unwrap()[0]["event"], "firing");
        // The hanging channel's notice stays in the outbox (its request is still in flight).
        drop(stop_tx);
        run.abort();
        let left = store.due_deliveries(i64::MAX, 10).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].channel, ids[0]);
    }

    /// A channel answering 302: the notice stays pending with the redirect as its error, and
    /// `/metrics` counts it.
    #[tokio::test]
    async fn a_redirecting_channel_keeps_the_notice_and_counts_the_failure() {
        crate::install_crypto_provider();
        let dir = std::env::temp_dir().join(format!("dispo-outbox-302-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&dir.join("t.db")).await.unwrap();
        let app = axum::Router::new().fallback(|| async {
            (
                http::StatusCode::FOUND,
                [(http::header::LOCATION, "https://elsewhere.example/hook")],
            )
        });
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(l, app).await });
        let channel = Channel::Slack(format!("http://127.0.0.1:{port}/services/T/B/x"));
        let alert = Alert {
            key: "k302".into(),
            kind: "interface_down".into(),
            severity: Severity::Critical,
            establishment: None,
            interface: None,
            summary: "down".into(),
            description: "d".into(),
            starts_at_ms: 0,
            ends_at_ms: None,
        };
        store
            .raise_alert(
                &alert,
                &[channel.id()],
                chrono::Utc::now().timestamp_millis(),
            )
            .await
            .unwrap();
        let mut l = ChannelLoop {
            id: channel.id(),
            channel,
            failures: 0,
            retry_at_ms: 0,
        };
        assert_eq!(l.pass(&store, &super::super::http_client()).await, 0);
        let left = store.due_deliveries(i64::MAX, 10).await.unwrap();
        assert_eq!((left.len(), left[0].attempts), (1, 1), "still pending");
        let m = crate::metrics::Metrics::with(&Default::default(), Default::default()).render();
        let line = m
            .lines()
            .find(|l| {
                l.starts_with(
                    "dispo_alert_delivery_failures_total{channel=\"slack\",reason=\"redirect\"}",
                )
            })
            .unwrap_or_else(|| panic!("{m}"));
        assert!(!line.ends_with(" 0"), "{line}");
    }

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        let waits: Vec<i64> = (1..=11).map(backoff_ms).collect();
        assert_eq!(
            waits,
            [
                1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000,
                300_000
            ]
        );
    }
}

//! Delivery from the outbox. Each channel has its own loop, so a relay that hangs never delays
//! another channel's alert: twice a second it sends its notices that are due, in order; a
//! failure is retried with exponential backoff (1 s, 2 s, 4 s ... at most 5 minutes), recorded
//! on the notice (so a restarted monitor keeps the pace) and applied to the whole channel (a
//! channel that is down is not asked again for each notice); news about an alert (its
//! resolution) brings its waiting notices forward, so they are tried again at once. Every minute, the Alertmanager
//! loops re-send the alerts still firing, which Alertmanager otherwise lets lapse.
//!
//! Hygiene ([`super::DeliveryPolicy`]): notices are keyed by the channel's name, so a changed URL
//! keeps them (rows of older versions, keyed by URL, are moved over at start); a notice that
//! failed `max_delivery_attempts` times is given up, with an `alert_undelivered` alert to the
//! other channels (resolved when the channel delivers again); notices delivered more than
//! `keep_delivered_days` ago are pruned, at start (every channel's, configured or not) and
//! hourly.

use std::time::Duration;

use tokio::sync::watch;

use super::{Alert, Channel, Severity};
use crate::store::{PendingDelivery, Store};

/// The kind of the alert raised when a channel's notice is given up.
pub const UNDELIVERED: &str = "alert_undelivered";

/// Between two prunings of delivered notices.
const PRUNE_EVERY_MS: i64 = 3_600_000;

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
    /// The ids of the other channels (where a give-up is told).
    others: Vec<String>,
    /// Failures in a row, and when to try again.
    failures: i64,
    retry_at_ms: i64,
}

/// How long a claimed notice is left to its sender before another may send it (see
/// [`Store::claim_delivery`]): twice [`SEND_LIMIT`], so a send ends, and its outcome is
/// written, well within its claim.
const CLAIM_MS: i64 = 120_000;

/// The longest a send may take, whatever the channel: past it the attempt counts as failed
/// (the channels' own time-outs come first: 10 s for HTTP, 30 s for e-mail). Only a machine
/// stalled for a minute between the send and its mark can outlive its claim; then another node
/// may send the notice again (at least once), and the late outcome marks nothing
/// ([`Store::mark_delivered_claimed`]).
const SEND_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);
const _: () = assert!(SEND_LIMIT.as_millis() as i64 * 2 <= CLAIM_MS);

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
            // Monitors sharing a PostgreSQL outbox each run this loop: the one whose claim
            // lands sends; another's means it is on its way (or it will be, once the claim
            // lapses), and the later notices of its alert wait behind it.
            let claim = now + CLAIM_MS;
            match store.claim_delivery(d.id, now, claim).await {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim a notice of the alert outbox");
                    break;
                }
            }
            let sent = tokio::time::timeout(SEND_LIMIT, self.channel.deliver(http, &d.notice))
                .await
                .unwrap_or_else(|_| Err(self.channel.timed_out(SEND_LIMIT)));
            match sent {
                Ok(()) => {
                    n += 1;
                    if self.failures > 0 || n == 1 {
                        self.resolve_undelivered(store).await;
                    }
                    self.failures = 0;
                    tracing::info!(key = %d.notice.alert.key, event = d.notice.event.as_str(), channel = %self.channel.label(), "alert delivered");
                    match store
                        .mark_delivered_claimed(d.id, claim, chrono::Utc::now().timestamp_millis())
                        .await
                    {
                        Ok(true) => {}
                        // Another node claimed it after ours lapsed: its send and mark stand.
                        Ok(false) => {
                            tracing::warn!(key = %d.notice.alert.key, channel = %self.channel.label(), "alert delivered after its claim lapsed: another node may send it too")
                        }
                        // Sent but not marked: it will be sent again (at least once).
                        Err(e) => tracing::warn!(error = %e, "cannot mark the alert delivered"),
                    }
                }
                Err(e) => {
                    crate::metrics::alert_delivery_failed(self.channel.kind(), e.reason());
                    self.failures += 1;
                    let wait = backoff_ms(d.attempts + 1).max(backoff_ms(self.failures));
                    let now = chrono::Utc::now().timestamp_millis();
                    self.retry_at_ms = now + wait;
                    let limit = self.channel.policy.max_attempts;
                    if limit > 0 && (d.attempts + 1) as u64 >= limit {
                        self.give_up(store, &d, &e.to_string(), now).await;
                        break;
                    }
                    if e.reason() == "redirect" {
                        // Will not mend by itself: the configured URL is wrong.
                        tracing::error!(key = %d.notice.alert.key, channel = %self.channel.label(), attempts = d.attempts + 1, retry_in_ms = wait, error = %e, "alert not delivered: the channel redirects; will retry");
                    } else {
                        tracing::warn!(key = %d.notice.alert.key, channel = %self.channel.label(), attempts = d.attempts + 1, retry_in_ms = wait, error = %e, "alert delivery failed; will retry");
                    }
                    let _ = store
                        .mark_failed_claimed(d.id, claim, now + wait, &e.to_string())
                        .await;
                    break;
                }
            }
        }
        n
    }
}

impl ChannelLoop {
    fn new(channel: Channel, all: &[Channel]) -> Self {
        let id = channel.id();
        Self {
            others: all.iter().map(Channel::id).filter(|o| *o != id).collect(),
            id,
            channel,
            failures: 0,
            retry_at_ms: 0,
        }
    }

    /// The notice failed its last allowed attempt: kept as abandoned (its alert's later notices
    /// go on), said in the log and to the other channels.
    async fn give_up(&self, store: &Store, d: &PendingDelivery, error: &str, now: i64) {
        let attempts = d.attempts + 1;
        tracing::error!(key = %d.notice.alert.key, event = d.notice.event.as_str(), channel = %self.channel.label(), attempts, error, "alert not delivered: given up after the retry limit");
        if let Err(e) = store.abandon_delivery(d.id, now, error).await {
            tracing::warn!(error = %e, "cannot mark the alert given up");
        }
        crate::metrics::alert_delivery_failed(self.channel.kind(), "gave_up");
        // Told once a day per channel; a notice of that very alert given up says nothing more.
        if d.notice.alert.kind == UNDELIVERED || self.others.is_empty() {
            return;
        }
        let day = crate::engine::time::rfc3339(now);
        let day = day.get(..10).unwrap_or(&day);
        let a = &d.notice.alert;
        let alert = Alert {
            key: format!("{UNDELIVERED}-{}-{day}", self.channel.name),
            kind: UNDELIVERED.into(),
            severity: Severity::Critical,
            establishment: a.establishment.clone(),
            interface: None,
            summary: format!(
                "alerts not delivered to {} channel {:?}: given up after {attempts} attempts",
                self.channel.kind(),
                self.channel.name
            ),
            description: format!(
                "The {} notice of \"{}\" ({}) could not be delivered to {} after {attempts} attempts; last error: {error}. Later notices are still tried; check the channel.",
                d.notice.event.as_str(),
                a.summary,
                a.key,
                self.channel.label()
            ),
            starts_at_ms: now,
            ends_at_ms: None,
        };
        if let Err(e) = store.raise_alert(&alert, &self.others, now).await {
            tracing::warn!(error = %e, "cannot queue the alert_undelivered alert");
        }
    }

    /// The channel delivers again: its `alert_undelivered` alerts are resolved.
    async fn resolve_undelivered(&self, store: &Store) {
        let prefix = format!("{UNDELIVERED}-{}-", self.channel.name);
        let now = chrono::Utc::now().timestamp_millis();
        let r = store
            .resolve_firing_except(
                UNDELIVERED,
                |a| !a.key.starts_with(&prefix),
                "The channel delivers again.",
                &self.others,
                now,
            )
            .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "cannot resolve the alert_undelivered alerts");
        }
    }

    /// Deletes this channel's notices delivered or given up longer ago than the policy keeps.
    async fn prune(&self, store: &Store, now: i64) {
        let keep = self.channel.policy.keep_delivered_ms;
        if keep <= 0 {
            return;
        }
        match store.prune_deliveries(&self.id, now - keep).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(channel = %self.channel.label(), pruned = n, "old delivered alerts pruned from the outbox")
            }
            Err(e) => tracing::warn!(error = %e, "cannot prune the alert outbox"),
        }
    }
}

/// Moves notices keyed by a channel's URL (older versions) to its name, and says which waiting
/// notices belong to no configured channel.
async fn adopt(store: &Store, channels: &[Channel]) {
    for c in channels {
        match store.rename_channel(&c.legacy_id(), &c.id()).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(channel = %c.label(), notices = n, "outbox rows keyed by the channel's URL now keyed by its name")
            }
            Err(e) => tracing::warn!(error = %e, "cannot rename outbox rows"),
        }
    }
    // Channels no longer configured have no loop to prune them: old rows go here, at start.
    if let Some(keep) = channels
        .first()
        .map(|c| c.policy.keep_delivered_ms)
        .filter(|k| *k > 0)
    {
        let before = chrono::Utc::now().timestamp_millis() - keep;
        if let Err(e) = store.prune_all_deliveries(before).await {
            tracing::warn!(error = %e, "cannot prune the alert outbox");
        }
    }
    let known: Vec<String> = channels.iter().map(Channel::id).collect();
    if let Ok(pending) = store.pending_per_channel().await {
        for (id, n) in pending.into_iter().filter(|(id, _)| !known.contains(id)) {
            // An id of a removed channel may hold a URL: log its kind and name only.
            let shown = if id.contains("://") {
                id.split(':').next().unwrap_or("?").to_owned()
            } else {
                id
            };
            tracing::warn!(channel = %shown, notices = n, "alerts waiting for a channel no longer configured (name it as before to deliver them)");
        }
    }
}

/// Runs one delivery loop per channel until `stop`, then one last pass each.
pub async fn run(store: Store, channels: Vec<Channel>, stop: watch::Receiver<bool>) {
    let http = super::http_client();
    adopt(&store, &channels).await;
    let mut tasks = Vec::new();
    for channel in channels.clone() {
        let (store, http, mut stop) = (store.clone(), http.clone(), stop.clone());
        let mut l = ChannelLoop::new(channel, &channels);
        tasks.push(tokio::spawn(async move {
            let mut refreshed_at = chrono::Utc::now().timestamp_millis();
            let mut pruned_at = i64::MIN;
            loop {
                let now = chrono::Utc::now().timestamp_millis();
                if now.saturating_sub(pruned_at) >= PRUNE_EVERY_MS {
                    pruned_at = now;
                    l.prune(&store, now).await;
                }
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
    let super::Target::Alertmanager(base) = &channel.target else {
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
    use crate::alert::Target;

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
        let named = |name: &str, url: String| Channel {
            name: name.into(),
            ..Channel::new(Target::Webhook(url))
        };
        let channels = vec![
            named("hang", format!("http://127.0.0.1:{hang_port}/hook")),
            named("ok", format!("http://127.0.0.1:{ok_port}/hook")),
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
        // The hanging channel's notice stays in the outbox (its request is still in flight);
        // the working one's is marked once its answer is read, a moment after the webhook got
        // it (stopping the loop at once could beat the mark on a loaded machine).
        let mut left = store.due_deliveries(i64::MAX, 10).await.unwrap();
        while left.len() > 1 && start.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            left = store.due_deliveries(i64::MAX, 10).await.unwrap();
        }
        drop(stop_tx);
        run.abort();
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
        let channel = Channel::new(Target::Slack(format!(
            "http://127.0.0.1:{port}/services/T/B/x"
        )));
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
        let mut l = ChannelLoop::new(channel.clone(), &[channel]);
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

    async fn temp_store(name: &str) -> Store {
        let dir = std::env::temp_dir().join(format!(
            "dispo-outbox-{name}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Store::open(&dir.join("t.db")).await.unwrap()
    }

    fn alert(key: &str) -> Alert {
        Alert {
            key: key.into(),
            kind: "interface_down".into(),
            severity: Severity::Critical,
            establishment: Some("13807".into()),
            interface: Some("api".into()),
            summary: "down".into(),
            description: "d".into(),
            starts_at_ms: 0,
            ends_at_ms: None,
        }
    }

    /// A receiver answering `status` and recording the JSON it gets.
    async fn receiver(status: u16) -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
        let got: Arc<Mutex<Vec<serde_json::Value>>> = Default::default();
        let g = got.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |axum::Json(v): axum::Json<serde_json::Value>| {
                let g = g.clone();
                async move {
                    g.lock().unwrap().push(v);
                    http::StatusCode::from_u16(status).unwrap()
                }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(l, app).await });
        (format!("http://127.0.0.1:{port}/hook"), got)
    }

    fn webhook(name: &str, url: &str) -> Channel {
        Channel {
            name: name.into(),
            ..Channel::new(Target::Webhook(url.into()))
        }
    }

    /// Notices follow the channel's name: its URL changes (or rows an older version keyed by
    /// the URL) and they still reach it.
    #[tokio::test]
    async fn a_changed_url_keeps_the_channels_waiting_notices() {
        crate::install_crypto_provider();
        let store = temp_store("rename").await;
        let now = chrono::Utc::now().timestamp_millis();
        // Queued while the channel pointed at a URL since retired...
        let (url, got) = receiver(200).await;
        let new = webhook("oncall", &url);
        assert_eq!(new.id(), "webhook:oncall");
        // Queued while the channel pointed at a URL since retired...
        let old = webhook("oncall", "http://127.0.0.1:9/old-secret-path");
        store
            .raise_alert(&alert("a1"), &[old.id()], now)
            .await
            .unwrap();
        // ...and by an older version, which keyed rows by the URL (this one).
        store
            .raise_alert(&alert("a2"), &[new.legacy_id()], now)
            .await
            .unwrap();
        adopt(&store, std::slice::from_ref(&new)).await;
        let mut l = ChannelLoop::new(new.clone(), std::slice::from_ref(&new));
        assert_eq!(l.pass(&store, &super::super::http_client()).await, 2);
        let keys: Vec<_> = got
            .lock()
            .unwrap()
            .iter()
            .map(|v| v["key"].clone())
            .collect();
        assert_eq!(keys, ["a1", "a2"]);
        let ids: Vec<String> = sqlx::query_scalar("SELECT DISTINCT channel FROM alert_deliveries")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert_eq!(ids, ["webhook:oncall"], "no URL left in the outbox");
    }

    /// A channel that keeps failing: its notice is given up at the limit, the other channels
    /// get an `alert_undelivered` alert, later notices go on, and the alert is resolved once the
    /// channel delivers again.
    #[tokio::test]
    async fn a_notice_is_given_up_at_the_limit_with_an_operator_alert() {
        crate::install_crypto_provider();
        let store = temp_store("give-up").await;
        let (bad_url, _) = receiver(500).await;
        let (good_url, good_got) = receiver(200).await;
        let mut bad = webhook("bad", &bad_url);
        bad.policy.max_attempts = 2;
        let good = webhook("good", &good_url);
        let all = [bad.clone(), good.clone()];
        let now = chrono::Utc::now().timestamp_millis();
        store
            .raise_alert(&alert("k1"), &[bad.id()], now)
            .await
            .unwrap();
        store
            .raise_alert(&alert("k2"), &[bad.id()], now)
            .await
            .unwrap();
        let http = super::super::http_client();
        let mut lb = ChannelLoop::new(bad.clone(), &all);
        let mut lg = ChannelLoop::new(good.clone(), &all);
        lb.pass(&store, &http).await;
        assert!(lg.pass(&store, &http).await == 0, "nothing for good yet");
        // The retry is due at once.
        lb.retry_at_ms = 0;
        sqlx::query("UPDATE alert_deliveries SET next_attempt_at = 0")
            .execute(store.pool())
            .await
            .unwrap();
        lb.pass(&store, &http).await;
        // k1 given up; k2 waits for its own attempts.
        let left = store.due_deliveries(i64::MAX, 10).await.unwrap();
        let left: Vec<_> = left
            .iter()
            .map(|d| (d.channel.as_str(), d.notice.alert.key.as_str()))
            .collect();
        assert!(left.contains(&("webhook:bad", "k2")), "{left:?}");
        assert!(!left.iter().any(|(_, k)| *k == "k1"), "{left:?}");
        assert_eq!(lg.pass(&store, &http).await, 1);
        let told = good_got.lock().unwrap()[0].clone();
        assert_eq!(told["kind"], UNDELIVERED);
        assert!(
            told["summary"]
                .as_str()
                .unwrap()
                .contains("given up after 2 attempts"),
            "{told}"
        );
        assert!(!told.to_string().contains("/hook"), "no URL path: {told}");
        // The bad channel mends: its alert_undelivered is resolved.
        let mut mended = bad.clone();
        mended.target = Target::Webhook(good_url.clone());
        let mut lm = ChannelLoop::new(mended, &all);
        assert_eq!(lm.pass(&store, &http).await, 1, "k2 delivered");
        assert!(store.firing_alerts(UNDELIVERED).await.unwrap().is_empty());
    }

    /// Delivered notices older than the policy's age are pruned; recent and waiting ones stay.
    #[tokio::test]
    async fn delivered_notices_past_the_policy_age_are_pruned() {
        let store = temp_store("prune").await;
        let c = webhook("w", "http://127.0.0.1:9/x");
        let day = 86_400_000;
        let now = 100 * day;
        for (k, at) in [
            ("old", now - 40 * day),
            ("recent", now - day),
            ("waiting", now),
        ] {
            store.raise_alert(&alert(k), &[c.id()], at).await.unwrap();
        }
        let rows = store.due_deliveries(i64::MAX, 10).await.unwrap();
        store
            .mark_delivered(rows[0].id, now - 40 * day)
            .await
            .unwrap();
        store.mark_delivered(rows[1].id, now - day).await.unwrap();
        let l = ChannelLoop::new(c.clone(), std::slice::from_ref(&c));
        assert_eq!(
            l.channel.policy.keep_delivered_ms,
            30 * day,
            "30 days by default"
        );
        l.prune(&store, now).await;
        let keys: Vec<String> =
            sqlx::query_scalar("SELECT alert_key FROM alert_deliveries ORDER BY id")
                .fetch_all(store.pool())
                .await
                .unwrap();
        assert_eq!(keys, ["recent", "waiting"]);
    }

    /// Rows of a channel no longer configured (an old URL-keyed id) are pruned at start too.
    #[tokio::test]
    async fn old_rows_of_removed_channels_are_pruned_at_start() {
        let store = temp_store("prune-removed").await;
        let day = 86_400_000;
        let now = chrono::Utc::now().timestamp_millis();
        let gone = "slack:https://hooks.slack.com/services/T/B/secret";
        store
            .raise_alert(&alert("old"), &[gone.into()], now - 40 * day)
            .await
            .unwrap();
        store
            .raise_alert(&alert("waiting"), &[gone.into()], now)
            .await
            .unwrap();
        let rows = store.due_deliveries(i64::MAX, 10).await.unwrap();
        store
            .mark_delivered(rows[0].id, now - 40 * day)
            .await
            .unwrap();
        let c = webhook("w", "http://127.0.0.1:9/x");
        adopt(&store, &[c]).await;
        let keys: Vec<String> = sqlx::query_scalar("SELECT alert_key FROM alert_deliveries")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert_eq!(keys, ["waiting"], "undelivered rows are never pruned");
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

//! The alert outbox: alerts deduplicated by key, and each notice to each channel kept until it
//! is delivered, so an alert survives a channel outage or a monitor restart. Notices of one alert
//! reach one channel in the order they were written (a retried "firing" never arrives after its
//! "resolved").

use sqlx::Row;

use super::{Store, StoreError};
use crate::alert::{Alert, Event, Notice};

/// A notice waiting for a channel.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingDelivery {
    pub id: i64,
    pub channel: String,
    pub notice: Notice,
    pub attempts: i64,
}

fn pending(rows: &[sqlx::any::AnyRow]) -> Vec<PendingDelivery> {
    rows.iter()
        .filter_map(|r| {
            Some(PendingDelivery {
                id: r.get(0),
                channel: r.get(1),
                notice: serde_json::from_str(&r.get::<String, _>(2)).ok()?,
                attempts: r.get(3),
            })
        })
        .collect()
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

impl Store {
    /// A transaction that reads then writes: it takes the write lock at once (waiting for another
    /// writer, such as an import or the probes' inserts, up to the busy timeout). A deferred
    /// one would fail outright when another connection wrote between its read and its write,
    /// and an alert or its resolution would not be queued.
    /// (PostgreSQL: a plain transaction; rows are locked as they are written, and every
    /// write below is conditional, so two monitors racing on one alert write it once.)
    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(self
            .pool()
            .begin_with(self.pick("BEGIN IMMEDIATE", "BEGIN"))
            .await?)
    }

    async fn enqueue(
        &self,
        tx: &mut sqlx::AnyConnection,
        notice: &Notice,
        channels: &[String],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        for c in channels {
            self.q(
                "INSERT INTO alert_deliveries (alert_key, channel, notice, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(&notice.alert.key)
            .bind(c)
            .bind(json(notice))
            .bind(now_ms)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            // A later notice waits for the earlier ones of its alert on that channel: retry those
            // now rather than after their backoff, so the news goes out in order and promptly.
            self.q(self.pick(
                "UPDATE alert_deliveries SET next_attempt_at = MIN(next_attempt_at, ?) \
                 WHERE alert_key = ? AND channel = ? AND delivered_at IS NULL AND abandoned_at IS NULL",
                "UPDATE alert_deliveries SET next_attempt_at = LEAST(next_attempt_at, ?) \
                 WHERE alert_key = ? AND channel = ? AND delivered_at IS NULL AND abandoned_at IS NULL",
            ))
            .bind(now_ms)
            .bind(&notice.alert.key)
            .bind(c)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }

    /// Raises an alert unless one with the same key is already firing (or was, for kinds that
    /// fire once). Returns whether it was raised.
    pub async fn raise_alert(
        &self,
        alert: &Alert,
        channels: &[String],
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        // Nothing when the key exists (or, on PostgreSQL, another monitor's alert for the same
        // episode fires: see migrations/postgres); the transaction then ends unused.
        let added = self
            .q("INSERT INTO alerts (key, kind, establishment, interface, state, starts_at, last_notified_at, alert) \
                VALUES (?, ?, ?, ?, 'firing', ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id")
            .bind(&alert.key)
            .bind(&alert.kind)
            .bind(&alert.establishment)
            .bind(&alert.interface)
            .bind(alert.starts_at_ms)
            .bind(now_ms)
            .bind(json(alert))
            .fetch_optional(&mut *tx)
            .await?;
        if added.is_none() {
            return Ok(false);
        }
        self.enqueue(
            &mut tx,
            &Notice {
                event: Event::Firing,
                alert: alert.clone(),
            },
            channels,
            now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Resolves a firing alert, with its final description. Returns whether it was firing.
    pub async fn resolve_alert(
        &self,
        key: &str,
        ends_at_ms: i64,
        description: Option<String>,
        channels: &[String],
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let Some(row) = self
            .q("SELECT alert FROM alerts WHERE key = ? AND state = 'firing'")
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(false);
        };
        let mut alert: Alert = serde_json::from_str(&row.get::<String, _>(0))
            .map_err(|e| StoreError::Sql(sqlx::Error::Decode(Box::new(e))))?;
        alert.ends_at_ms = Some(ends_at_ms);
        if let Some(d) = description {
            alert.description = d;
        }
        // Conditional: of two monitors resolving it at once, one writes the resolution.
        let changed = self
            .q("UPDATE alerts SET state = 'resolved', ends_at = ?, alert = ? WHERE key = ? AND state = 'firing'")
            .bind(ends_at_ms)
            .bind(json(&alert))
            .bind(key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if changed == 0 {
            return Ok(false);
        }
        self.enqueue(
            &mut tx,
            &Notice {
                event: Event::Resolved,
                alert,
            },
            channels,
            now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Resolves the firing alerts of `kind` whose key `keep` rejects (a renewed certificate, a
    /// day or week that is over), saying why. Returns how many were resolved.
    pub async fn resolve_firing_except(
        &self,
        kind: &str,
        keep: impl Fn(&Alert) -> bool,
        why: &str,
        channels: &[String],
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        let mut n = 0;
        for a in self.firing_alerts(kind).await? {
            if !keep(&a) {
                let description = format!("{} {why}", a.description);
                if self
                    .resolve_alert(&a.key, now_ms, Some(description), channels, now_ms)
                    .await?
                {
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Every alert firing now, of any kind.
    pub async fn all_firing_alerts(&self) -> Result<Vec<Alert>, StoreError> {
        let rows = self
            .q("SELECT alert FROM alerts WHERE state = 'firing' ORDER BY id")
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| serde_json::from_str(&r.get::<String, _>(0)).ok())
            .collect())
    }

    /// Keys of firing alerts of a kind for a series (to resolve what a previous run left open).
    pub async fn firing_alerts(&self, kind: &str) -> Result<Vec<Alert>, StoreError> {
        let rows = self
            .q("SELECT alert FROM alerts WHERE kind = ? AND state = 'firing' ORDER BY id")
            .bind(kind)
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| serde_json::from_str(&r.get::<String, _>(0)).ok())
            .collect())
    }

    /// Queues reminders for alerts firing unnotified for `interval_ms(kind)` (0 or less: never).
    /// Returns how many alerts were reminded.
    pub async fn queue_reminders(
        &self,
        interval_ms: impl Fn(&str) -> i64,
        channels: &[String],
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        let mut tx = self.write_tx().await?;
        let rows: Vec<_> =
            self.q("SELECT key, alert, kind, last_notified_at FROM alerts WHERE state = 'firing' ORDER BY id")
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .filter(|r| {
                    let every = interval_ms(&r.get::<String, _>(2));
                    every > 0 && r.get::<i64, _>(3) <= now_ms - every
                })
                .collect();
        let mut reminded = 0;
        for r in &rows {
            let Ok(alert) = serde_json::from_str::<Alert>(&r.get::<String, _>(1)) else {
                continue;
            };
            let key: String = r.get(0);
            // Conditional: of two monitors reminding at once, one does.
            let claimed = self
                .q("UPDATE alerts SET last_notified_at = ? WHERE key = ? AND last_notified_at = ?")
                .bind(now_ms)
                .bind(&key)
                .bind(r.get::<i64, _>(3))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if claimed == 0 {
                continue;
            }
            reminded += 1;
            // A channel that has not taken the previous notice yet gets no pile of reminders.
            let mut idle = Vec::new();
            for c in channels {
                let pending: i64 = self
                    .q("SELECT COUNT(*) FROM alert_deliveries WHERE alert_key = ? AND channel = ? AND delivered_at IS NULL AND abandoned_at IS NULL")
                    .bind(&key)
                    .bind(c)
                    .fetch_one(&mut *tx)
                    .await?
                    .get(0);
                if pending == 0 {
                    idle.push(c.clone());
                }
            }
            self.enqueue(
                &mut tx,
                &Notice {
                    event: Event::Reminder,
                    alert,
                },
                &idle,
                now_ms,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(reminded)
    }

    /// Notices due at `now_ms`, every channel, oldest first; a notice waits while an earlier
    /// one of the same alert to the same channel is undelivered.
    pub async fn due_deliveries(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<PendingDelivery>, StoreError> {
        let rows = self.q(
            "SELECT id, channel, notice, attempts FROM alert_deliveries d WHERE delivered_at IS NULL AND abandoned_at IS NULL AND next_attempt_at <= ? \
             AND NOT EXISTS (SELECT 1 FROM alert_deliveries p WHERE p.alert_key = d.alert_key AND p.channel = d.channel \
             AND p.delivered_at IS NULL AND p.abandoned_at IS NULL AND p.id < d.id) ORDER BY id LIMIT ?",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(pending(&rows))
    }

    /// As [`Store::due_deliveries`], for one channel.
    pub async fn due_deliveries_for(
        &self,
        channel: &str,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<PendingDelivery>, StoreError> {
        let rows = self.q(
            "SELECT id, channel, notice, attempts FROM alert_deliveries d WHERE channel = ? AND delivered_at IS NULL AND abandoned_at IS NULL \
             AND next_attempt_at <= ? AND NOT EXISTS (SELECT 1 FROM alert_deliveries p WHERE p.alert_key = d.alert_key \
             AND p.channel = d.channel AND p.delivered_at IS NULL AND p.abandoned_at IS NULL AND p.id < d.id) ORDER BY id LIMIT ?",
        )
        .bind(channel)
        .bind(now_ms)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(pending(&rows))
    }

    /// Claims a due notice for sending: moves its next attempt to `until_ms`, if it is still
    /// due at `now_ms` and undelivered. Of several monitors sharing the outbox, the one whose
    /// claim lands sends it; the others see it claimed and leave it. A monitor that dies while
    /// sending leaves the claim to lapse at `until_ms`, and the notice goes out then (at least
    /// once, as before).
    ///
    /// `until_ms` is also the claim's token, the owner's mark: a later claim can land only once
    /// this one lapsed (`now >= until_ms`), so its own `until` is later. The sender finishes
    /// with [`Store::mark_delivered_claimed`] and [`Store::mark_failed_claimed`], which do
    /// nothing once another claim replaced its own.
    pub async fn claim_delivery(
        &self,
        id: i64,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        Ok(self
            .q("UPDATE alert_deliveries SET next_attempt_at = ? WHERE id = ? AND delivered_at IS NULL \
                AND abandoned_at IS NULL AND next_attempt_at <= ?")
            .bind(until_ms)
            .bind(id)
            .bind(now_ms)
            .execute(self.pool())
            .await?
            .rows_affected()
            == 1)
    }

    /// Marks a notice delivered if the claim that ends at `claimed_until_ms` is still its
    /// own (see [`Store::claim_delivery`]). Returns whether it was: a sender whose claim lapsed
    /// while it sent, and which another node claimed since, leaves that node's claim alone.
    pub async fn mark_delivered_claimed(
        &self,
        id: i64,
        claimed_until_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        Ok(self
            .q("UPDATE alert_deliveries SET delivered_at = ?, attempts = attempts + 1, last_error = NULL \
                WHERE id = ? AND next_attempt_at = ? AND delivered_at IS NULL AND abandoned_at IS NULL")
            .bind(now_ms)
            .bind(id)
            .bind(claimed_until_ms)
            .execute(self.pool())
            .await?
            .rows_affected()
            == 1)
    }

    /// As [`Store::mark_failed`], if the claim that ends at `claimed_until_ms` is still the
    /// notice's own. Returns whether it was.
    pub async fn mark_failed_claimed(
        &self,
        id: i64,
        claimed_until_ms: i64,
        next_attempt_ms: i64,
        error: &str,
    ) -> Result<bool, StoreError> {
        Ok(self
            .q("UPDATE alert_deliveries SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? \
                WHERE id = ? AND next_attempt_at = ? AND delivered_at IS NULL AND abandoned_at IS NULL")
            .bind(next_attempt_ms)
            .bind(error)
            .bind(id)
            .bind(claimed_until_ms)
            .execute(self.pool())
            .await?
            .rows_affected()
            == 1)
    }

    pub async fn mark_delivered(&self, id: i64, now_ms: i64) -> Result<(), StoreError> {
        self.q("UPDATE alert_deliveries SET delivered_at = ?, attempts = attempts + 1, last_error = NULL WHERE id = ?")
            .bind(now_ms)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Gives a notice up after the retry limit: kept, with its last error, and no longer holding
    /// back the later notices of its alert on its channel.
    pub async fn abandon_delivery(
        &self,
        id: i64,
        now_ms: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        self.q("UPDATE alert_deliveries SET attempts = attempts + 1, abandoned_at = ?, last_error = ? WHERE id = ?")
            .bind(now_ms)
            .bind(error)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Moves the notices of a channel known by an older id (before channels had names, the id
    /// held the URL) to its id now. Returns how many moved.
    pub async fn rename_channel(&self, old: &str, new: &str) -> Result<u64, StoreError> {
        Ok(self
            .q("UPDATE alert_deliveries SET channel = ? WHERE channel = ?")
            .bind(new)
            .bind(old)
            .execute(self.pool())
            .await?
            .rows_affected())
    }

    /// Notices still waiting, per channel id.
    pub async fn pending_per_channel(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = self.q(
            "SELECT channel, COUNT(*) FROM alert_deliveries WHERE delivered_at IS NULL AND abandoned_at IS NULL GROUP BY channel ORDER BY channel",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Deletes the notices of `channel` delivered (or given up) before `before_ms`. Returns how
    /// many went.
    pub async fn prune_deliveries(&self, channel: &str, before_ms: i64) -> Result<u64, StoreError> {
        Ok(self.q(
            "DELETE FROM alert_deliveries WHERE channel = ? AND (delivered_at < ? OR abandoned_at < ?)",
        )
        .bind(channel)
        .bind(before_ms)
        .bind(before_ms)
        .execute(self.pool())
        .await?
        .rows_affected())
    }

    /// Deletes the notices of every channel, configured or not, delivered (or given up) before
    /// `before_ms`. Returns how many went.
    pub async fn prune_all_deliveries(&self, before_ms: i64) -> Result<u64, StoreError> {
        Ok(self
            .q("DELETE FROM alert_deliveries WHERE delivered_at < ? OR abandoned_at < ?")
            .bind(before_ms)
            .bind(before_ms)
            .execute(self.pool())
            .await?
            .rows_affected())
    }

    pub async fn mark_failed(
        &self,
        id: i64,
        next_attempt_ms: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        self.q("UPDATE alert_deliveries SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?")
            .bind(next_attempt_ms)
            .bind(error)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Dedup, resolution, ordering per channel and reminders, with explicit clock values.

    use super::*;
    use crate::alert::Severity;
    use crate::store::testing::{Backend, on_both};

    async fn store(name: &str) -> Store {
        Backend::Sqlite.store(&format!("outbox-{name}")).await
    }

    on_both!(
        one_alert_per_key_and_one_resolution,
        a_retried_firing_goes_out_before_its_resolution,
        reminders_at_the_interval_and_not_to_a_channel_still_behind,
        stale_alerts_of_a_kind_are_resolved,
        two_monitors_racing_write_one_alert_one_resolution_one_send,
    );

    fn alert(key: &str) -> Alert {
        Alert {
            key: key.into(),
            kind: "interface_down".into(),
            severity: Severity::Critical,
            establishment: Some("13807".into()),
            interface: Some("api".into()),
            summary: "s".into(),
            description: "d".into(),
            starts_at_ms: 1_000,
            ends_at_ms: None,
        }
    }

    fn events(d: &[PendingDelivery]) -> Vec<(&str, &str)> {
        d.iter()
            .map(|d| (d.channel.as_str(), d.notice.event.as_str()))
            .collect()
    }

    #[tokio::test]
    async fn a_resolution_is_queued_while_another_connection_writes() {
        // Another writer (an import, the probes' inserts) holds the write lock while the
        // resolution is queued, then commits. A deferred transaction would have read first and
        // failed on its write with a stale snapshot ("database is locked"): the resolution
        // must wait its turn instead, and land.
        let s = store("busy").await;
        let ch = ["a".to_string()];
        assert!(s.raise_alert(&alert("k"), &ch, 1_000).await.unwrap());
        let mut holder = s.pool().acquire().await.unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *holder)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO heartbeats (monitor_id, started_at, last_beat) VALUES ('x', 1, 1)",
        )
        .execute(&mut *holder)
        .await
        .unwrap();
        let s2 = s.clone();
        let queued = tokio::spawn(async move {
            s2.resolve_alert("k", 5_000, None, &["a".to_string()], 5_000)
                .await
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        sqlx::query("COMMIT").execute(&mut *holder).await.unwrap();
        assert!(queued.await.unwrap().unwrap());
        drop(holder);
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM alert_deliveries")
            .fetch_one(s.pool())
            .await
            .unwrap();
        assert_eq!(n, 2, "the firing and the resolution are both queued");
    }

    async fn one_alert_per_key_and_one_resolution(b: Backend) {
        let s = b.store("outbox-dedup").await;
        let ch = ["a".to_string(), "b".to_string()];
        assert!(s.raise_alert(&alert("k"), &ch, 1_000).await.unwrap());
        assert!(!s.raise_alert(&alert("k"), &ch, 2_000).await.unwrap());
        assert!(s.resolve_alert("k", 5_000, None, &ch, 5_000).await.unwrap());
        assert!(!s.resolve_alert("k", 6_000, None, &ch, 6_000).await.unwrap());
        // Resolved keys do not fire again (the episode is over).
        assert!(!s.raise_alert(&alert("k"), &ch, 7_000).await.unwrap());
        // Firing to a then b; the resolutions wait behind them.
        let due = s.due_deliveries(10_000, 100).await.unwrap();
        assert_eq!(events(&due), [("a", "firing"), ("b", "firing")]);
        for d in &due {
            s.mark_delivered(d.id, 10_000).await.unwrap();
        }
        let due = s.due_deliveries(10_000, 100).await.unwrap();
        assert_eq!(events(&due), [("a", "resolved"), ("b", "resolved")]);
        assert_eq!(due[0].notice.alert.ends_at_ms, Some(5_000));
    }

    async fn a_retried_firing_goes_out_before_its_resolution(b: Backend) {
        let s = b.store("outbox-order").await;
        let ch = ["a".to_string()];
        s.raise_alert(&alert("k"), &ch, 1_000).await.unwrap();
        let first = s.due_deliveries(1_000, 100).await.unwrap();
        // Failed; retry at 9 000.
        s.mark_failed(first[0].id, 9_000, "down").await.unwrap();
        assert!(s.due_deliveries(2_000, 100).await.unwrap().is_empty());
        // The resolution is written at 2 000: news for this alert, so the firing notice is tried
        // again at once (not at 9 000), and the resolution waits until it is through.
        s.resolve_alert("k", 2_000, None, &ch, 2_000).await.unwrap();
        assert!(
            s.due_deliveries_for("b", 2_000, 100)
                .await
                .unwrap()
                .is_empty()
        );
        let due = s.due_deliveries_for("a", 2_000, 100).await.unwrap();
        assert_eq!(events(&due), [("a", "firing")]);
        assert_eq!(due[0].attempts, 1);
        s.mark_delivered(due[0].id, 2_100).await.unwrap();
        let due = s.due_deliveries(2_100, 100).await.unwrap();
        assert_eq!(events(&due), [("a", "resolved")]);
    }

    async fn reminders_at_the_interval_and_not_to_a_channel_still_behind(b: Backend) {
        let s = b.store("outbox-remind").await;
        let ch = ["a".to_string(), "b".to_string()];
        s.raise_alert(&alert("k"), &ch, 0).await.unwrap();
        for d in s.due_deliveries(0, 100).await.unwrap() {
            if d.channel == "a" {
                s.mark_delivered(d.id, 0).await.unwrap();
            }
        }
        // Interval 60 s: nothing at 59.999 s, one at 60 s (only for `a`: `b` still holds the
        // firing notice), none again until 120 s.
        assert_eq!(s.queue_reminders(|_| 60_000, &ch, 59_999).await.unwrap(), 0);
        assert_eq!(s.queue_reminders(|_| 60_000, &ch, 60_000).await.unwrap(), 1);
        assert_eq!(
            s.queue_reminders(|_| 60_000, &ch, 119_999).await.unwrap(),
            0
        );
        let due = s.due_deliveries(60_000, 100).await.unwrap();
        assert_eq!(events(&due), [("b", "firing"), ("a", "reminder")]);
        // Resolved alerts are not reminded.
        s.resolve_alert("k", 100_000, None, &ch, 100_000)
            .await
            .unwrap();
        assert_eq!(
            s.queue_reminders(|_| 60_000, &ch, 500_000).await.unwrap(),
            0
        );
    }

    async fn stale_alerts_of_a_kind_are_resolved(b: Backend) {
        let s = b.store("outbox-stale").await;
        let ch = ["a".to_string()];
        s.raise_alert(&alert("old"), &ch, 0).await.unwrap();
        // Another series (PostgreSQL keeps one firing "interface down" per series).
        let mut new = alert("new");
        new.interface = Some("fallback".into());
        assert!(s.raise_alert(&new, &ch, 0).await.unwrap());
        let n = s
            .resolve_firing_except("interface_down", |a| a.key == "new", "(renewed)", &ch, 50)
            .await
            .unwrap();
        assert_eq!(n, 1);
        let firing: Vec<String> = s
            .firing_alerts("interface_down")
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.key)
            .collect();
        assert_eq!(firing, ["new"]);
        assert_eq!(s.firing_alerts("probe_error").await.unwrap(), []);
    }

    /// Two monitors on one database (two handles: two pools) see the same outage, each from
    /// its own probes, at its own instants: their episode keys differ by milliseconds. They
    /// raise, resolve and deliver at the same time: the outbox holds one alert, one firing and
    /// one resolution notice, and each notice is claimed for sending once.
    async fn two_monitors_racing_write_one_alert_one_resolution_one_send(b: Backend) {
        let s1 = b.store("outbox-race").await;
        let s2 = Store::open(s1.target()).await.unwrap();
        let ch = ["a".to_string()];
        let (a1, mut a2) = (alert("13807-api-20260101T000000.010Z"), alert("x"));
        a2.key = "13807-api-20260101T000000.013Z".into();
        a2.starts_at_ms = 1_003;
        let (r1, r2) = tokio::join!(
            s1.raise_alert(&a1, &ch, 1_000),
            s2.raise_alert(&a2, &ch, 1_000)
        );
        let (r1, r2) = (r1.unwrap(), r2.unwrap());
        match b {
            // One firing "interface down" per series (a unique index of the PostgreSQL schema).
            Backend::Postgres => assert!(r1 ^ r2, "exactly one raised: {r1} {r2}"),
            // One monitor per SQLite file: keys alone deduplicate.
            Backend::Sqlite => assert!(r1 && r2),
        }
        if b == Backend::Sqlite {
            return;
        }
        let key = if r1 { &a1.key } else { &a2.key };
        let (x1, x2) = tokio::join!(
            s1.resolve_alert(key, 9_000, None, &ch, 9_000),
            s2.resolve_alert(key, 9_000, None, &ch, 9_000)
        );
        assert!(x1.unwrap() ^ x2.unwrap(), "exactly one resolution");
        let due = s1.due_deliveries(10_000, 100).await.unwrap();
        assert_eq!(events(&due), [("a", "firing")]);
        let (c1, c2) = tokio::join!(
            s1.claim_delivery(due[0].id, 10_000, 130_000),
            s2.claim_delivery(due[0].id, 10_000, 130_000)
        );
        let (c1, c2) = (c1.unwrap(), c2.unwrap());
        assert!(c1 ^ c2, "exactly one sender");
        let (first, second) = if c1 { (&s1, &s2) } else { (&s2, &s1) };
        // Claimed: due to nobody until the claim lapses, then due again.
        assert!(s2.due_deliveries(129_999, 100).await.unwrap().is_empty());
        assert_eq!(s2.due_deliveries(130_000, 100).await.unwrap().len(), 1);
        // The first sender's send outlived its claim (the send limit forbids it; a stalled
        // machine may not): the other claims at 130 000 until 250 000 and sends.
        let id = due[0].id;
        assert!(second.claim_delivery(id, 130_000, 250_000).await.unwrap());
        // The first's late outcome marks nothing: the claim is the other's now.
        assert!(
            !first
                .mark_failed_claimed(id, 130_000, 140_000, "slow")
                .await
                .unwrap()
        );
        assert!(
            !first
                .mark_delivered_claimed(id, 130_000, 131_000)
                .await
                .unwrap()
        );
        let (at, next, attempts): (Option<i64>, i64, i64) = sqlx::query_as(
            "SELECT delivered_at, next_attempt_at, attempts FROM alert_deliveries WHERE id = $1",
        )
        .bind(id)
        .fetch_one(s1.pool())
        .await
        .unwrap();
        assert_eq!(
            (at, next, attempts),
            (None, 250_000, 0),
            "the second claim intact"
        );
        assert!(
            second
                .mark_delivered_claimed(id, 250_000, 132_000)
                .await
                .unwrap()
        );
        assert!(
            s1.due_deliveries(i64::MAX, 100).await.unwrap().len() == 1,
            "the resolution"
        );
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM alert_deliveries")
            .fetch_one(s1.pool())
            .await
            .unwrap();
        assert_eq!(n, 2, "one firing and one resolution notice");
    }
}

//! The alert outbox: alerts deduplicated by key, and each notice to each channel kept until it
//! is delivered, so an alert survives a channel outage or a monitor restart.

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

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

impl Store {
    async fn enqueue(
        tx: &mut sqlx::SqliteConnection,
        notice: &Notice,
        channels: &[String],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        for c in channels {
            sqlx::query(
                "INSERT INTO alert_deliveries (alert_key, channel, notice, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(&notice.alert.key)
            .bind(c)
            .bind(json(notice))
            .bind(now_ms)
            .bind(now_ms)
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
        let mut tx = self.pool().begin().await?;
        let exists: Option<String> = sqlx::query("SELECT state FROM alerts WHERE key = ?")
            .bind(&alert.key)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.get(0));
        if exists.is_some() {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO alerts (key, kind, establishment, interface, state, starts_at, last_notified_at, alert) \
             VALUES (?, ?, ?, ?, 'firing', ?, ?, ?)",
        )
        .bind(&alert.key)
        .bind(&alert.kind)
        .bind(&alert.establishment)
        .bind(&alert.interface)
        .bind(alert.starts_at_ms)
        .bind(now_ms)
        .bind(json(alert))
        .execute(&mut *tx)
        .await?;
        Self::enqueue(
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
        let mut tx = self.pool().begin().await?;
        let Some(row) = sqlx::query("SELECT alert FROM alerts WHERE key = ? AND state = 'firing'")
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
        sqlx::query("UPDATE alerts SET state = 'resolved', ends_at = ?, alert = ? WHERE key = ?")
            .bind(ends_at_ms)
            .bind(json(&alert))
            .bind(key)
            .execute(&mut *tx)
            .await?;
        Self::enqueue(
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

    /// Keys of firing alerts of a kind for a series (to resolve what a previous run left open).
    pub async fn firing_alerts(&self, kind: &str) -> Result<Vec<Alert>, StoreError> {
        let rows = sqlx::query("SELECT alert FROM alerts WHERE kind = ? AND state = 'firing'")
            .bind(kind)
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| serde_json::from_str(&r.get::<String, _>(0)).ok())
            .collect())
    }

    /// Queues reminders for alerts firing unnotified for `interval_ms`.
    pub async fn queue_reminders(
        &self,
        interval_ms: i64,
        channels: &[String],
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        let mut tx = self.pool().begin().await?;
        let rows = sqlx::query(
            "SELECT key, alert FROM alerts WHERE state = 'firing' AND last_notified_at <= ?",
        )
        .bind(now_ms - interval_ms)
        .fetch_all(&mut *tx)
        .await?;
        for r in &rows {
            let Ok(alert) = serde_json::from_str::<Alert>(&r.get::<String, _>(1)) else {
                continue;
            };
            Self::enqueue(
                &mut tx,
                &Notice {
                    event: Event::Reminder,
                    alert,
                },
                channels,
                now_ms,
            )
            .await?;
            sqlx::query("UPDATE alerts SET last_notified_at = ? WHERE key = ?")
                .bind(now_ms)
                .bind(r.get::<String, _>(0))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(rows.len())
    }

    pub async fn due_deliveries(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<PendingDelivery>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, channel, notice, attempts FROM alert_deliveries WHERE delivered_at IS NULL AND next_attempt_at <= ? \
             ORDER BY id LIMIT ?",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(PendingDelivery {
                    id: r.get(0),
                    channel: r.get(1),
                    notice: serde_json::from_str(&r.get::<String, _>(2)).ok()?,
                    attempts: r.get(3),
                })
            })
            .collect())
    }

    pub async fn mark_delivered(&self, id: i64, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE alert_deliveries SET delivered_at = ?, attempts = attempts + 1, last_error = NULL WHERE id = ?")
            .bind(now_ms)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn mark_failed(
        &self,
        id: i64,
        next_attempt_ms: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE alert_deliveries SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?")
            .bind(next_attempt_ms)
            .bind(error)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

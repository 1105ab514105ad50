//! The live detector inside `dispo run`: the engine's episode state machine over observations as
//! they are recorded. The moment a fifth qualifying failure arrives, an `interface_down` alert
//! fires (Art. 33(1)); the first reply that is not a failure resolves it with the duration. Every
//! few minutes it also checks the weekly watch, unjustified fallback use and certificate expiry,
//! and queues reminders for alerts still firing.

use std::time::Duration;

use chrono_tz::Tz;
use tokio::sync::{broadcast, watch};

use super::{Alert, AlertsConfig, Channel, Severity};
use crate::config::Config;
use crate::domain::{Interface, Outcome, known_establishment};
use crate::engine::live::{EpisodeTracker, LiveEvent};
use crate::engine::{self, EngineInput, Episode, Period, Settings, WatchLevel, time};
use crate::store::{Store, StoredObservation};

fn local(ms: i64, tz: Tz) -> String {
    time::utc(ms)
        .with_timezone(&tz)
        .format("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

fn name(code: &str) -> String {
    match known_establishment(code) {
        Some(k) => format!("{code} ({})", k.short),
        None => code.to_owned(),
    }
}

fn iface_words(i: Interface) -> &'static str {
    match i {
        Interface::Api => "dedicated interface",
        Interface::Fallback => "fallback access",
        Interface::PsuWeb => "customer web interface",
        Interface::PsuApp => "customer app",
    }
}

/// The alert for an episode that just opened.
pub fn down_alert(e: &Episode, tz: Tz) -> Alert {
    let severity = if e.interface == Interface::Api {
        Severity::Critical
    } else {
        Severity::Warning
    };
    Alert {
        key: e.id(),
        kind: "interface_down".into(),
        severity,
        establishment: Some(e.establishment.to_string()),
        interface: Some(e.interface.to_string()),
        summary: format!(
            "{} of {} deemed unavailable since {}",
            iface_words(e.interface),
            name(e.establishment.as_str()),
            local(e.start_ms, tz)
        ),
        description: format!(
            "Five consecutive requests got no reply (or a bank error) within 30 s (RTS 2018/389 Art. 33(1)); \
             first failure at {} ({}), request ids {}. Notify the ACPR without delay (Art. 33(3)); TPPs may use the \
             fallback meanwhile (Art. 33(4)). Evidence: dispo evidence --episode {}",
            local(e.start_ms, tz),
            time::rfc3339(e.start_ms),
            e.request_ids.join(", "),
            e.id()
        ),
        starts_at_ms: e.start_ms,
        ends_at_ms: None,
    }
}

/// The final description of a recovered episode.
pub fn recovery_text(e: &Episode, tz: Tz) -> String {
    format!(
        "{} of {} available again at {} after {:.1} s of unavailability (from {}).",
        iface_words(e.interface),
        name(e.establishment.as_str()),
        local(e.end_ms, tz),
        e.duration_s(),
        local(e.start_ms, tz)
    )
}

/// Runs the live detector, the periodic checks and the delivery loop until the observation
/// channel closes (the daemon stopped); then delivers what is due one last time.
pub async fn run(store: Store, cfg: Config, mut rx: broadcast::Receiver<StoredObservation>) {
    let (stop_tx, stop) = watch::channel(false);
    let alerts: AlertsConfig = cfg.alerts.clone();
    let channels: Vec<Channel> = alerts.channels();
    let ids: Vec<String> = channels.iter().map(Channel::id).collect();
    let tz = cfg.counting.tz;
    let delivery = tokio::spawn(super::outbox::run(store.clone(), channels, stop.clone()));
    let checks = tokio::spawn(periodic(
        store.clone(),
        cfg.clone(),
        ids.clone(),
        stop.clone(),
    ));
    let mut tracker = EpisodeTracker::new(&cfg.counting);
    loop {
        let o = match rx.recv().await {
            Ok(o) => o,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "live detection fell behind; the recorded data stays complete and the figures exact"
                );
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => break,
        };
        let now = chrono::Utc::now().timestamp_millis();
        if o.obs.outcome == Outcome::ProbeError
            && !o
                .error_text
                .as_deref()
                .unwrap_or("")
                .starts_with("interrupted")
        {
            let hour = now / 3_600_000;
            let a = Alert {
                key: format!("probe_error/{}/{hour}", o.obs.establishment),
                kind: "probe_error".into(),
                severity: Severity::Warning,
                establishment: Some(o.obs.establishment.to_string()),
                interface: None,
                summary: format!(
                    "the monitor cannot probe {}",
                    name(o.obs.establishment.as_str())
                ),
                description: format!(
                    "The monitor's own error (not counted in any figure): {}",
                    o.error_text.clone().unwrap_or_default()
                ),
                starts_at_ms: o.obs.received_at_ms,
                ends_at_ms: None,
            };
            let _ = store.raise_alert(&a, &ids, now).await;
        }
        let failure = o
            .obs
            .outcome
            .is_failure(cfg.counting.aspsp_error_is_failure);
        match tracker.push(&o.obs) {
            Some(LiveEvent::Opened(e)) => {
                let a = down_alert(&e, tz);
                tracing::error!(establishment = %e.establishment, interface = %e.interface, since = %time::rfc3339(e.start_ms), "{}", a.summary);
                if let Err(err) = store.raise_alert(&a, &ids, now).await {
                    tracing::error!(error = %err, "cannot queue the alert");
                }
            }
            Some(LiveEvent::Closed(e)) => {
                tracing::warn!(establishment = %e.establishment, interface = %e.interface, duration_s = e.duration_s(), "interface available again");
                let _ = store
                    .resolve_alert(&e.id(), e.end_ms, Some(recovery_text(&e, tz)), &ids, now)
                    .await;
            }
            None if !failure && tracker.counts(&o.obs) => {
                // An episode a previous run left firing ends with this reply.
                let series = (o.obs.establishment.to_string(), o.obs.interface.to_string());
                if let Ok(stale) = store.firing_alerts("interface_down").await {
                    for a in stale {
                        if (
                            a.establishment.clone().unwrap_or_default(),
                            a.interface.clone().unwrap_or_default(),
                        ) == series
                        {
                            let end = o.obs.completed_at_ms().unwrap_or(o.obs.received_at_ms);
                            let text = format!(
                                "Available again at {} (episode left open by an earlier monitor run).",
                                local(end, tz)
                            );
                            let _ = store
                                .resolve_alert(&a.key, end, Some(text), &ids, now)
                                .await;
                        }
                    }
                }
            }
            None => {}
        }
    }
    let _ = stop_tx.send(true);
    let _ = checks.await;
    let _ = delivery.await;
}

/// Reminders, certificates, weekly watch and fallback use, every `check_interval_s`.
async fn periodic(store: Store, cfg: Config, ids: Vec<String>, mut stop: watch::Receiver<bool>) {
    let a = &cfg.alerts;
    loop {
        let now = chrono::Utc::now().timestamp_millis();
        if a.reminder_s > 0 {
            let _ = store
                .queue_reminders(a.reminder_s as i64 * 1000, &ids, now)
                .await;
        }
        for e in &cfg.establishments {
            for (which, not_after) in &e.cert_not_after_ms {
                let days = (not_after - now) as f64 / 86_400_000.0;
                if days < a.cert_expiry_days as f64 {
                    let alert = Alert {
                        key: format!("certificate/{}/{which}/{not_after}", e.code),
                        kind: "certificate_expiry".into(),
                        severity: if days < 7.0 {
                            Severity::Critical
                        } else {
                            Severity::Warning
                        },
                        establishment: Some(e.code.to_string()),
                        interface: None,
                        summary: format!(
                            "{} certificate used for {} expires in {days:.0} days",
                            which.to_uppercase(),
                            name(e.code.as_str())
                        ),
                        description: format!(
                            "Renew it before {} or the probes (and the TPPs using it) will fail.",
                            time::rfc3339(*not_after)
                        ),
                        starts_at_ms: now,
                        ends_at_ms: None,
                    };
                    let _ = store.raise_alert(&alert, &ids, now).await;
                }
            }
        }
        for (code, obtained_ms) in refresh_tokens(&store, &cfg).await {
            let expires = obtained_ms + REFRESH_TOKEN_DAYS * 86_400_000;
            let days = (expires - now) as f64 / 86_400_000.0;
            if days < a.refresh_expiry_days as f64 {
                let alert = Alert {
                    key: format!("refresh-token/{code}/{expires}"),
                    kind: "refresh_token_expiry".into(),
                    severity: if days < 3.0 {
                        Severity::Critical
                    } else {
                        Severity::Warning
                    },
                    establishment: Some(code.clone()),
                    interface: None,
                    summary: format!(
                        "the refresh token used for {} expires in {days:.0} days",
                        name(&code)
                    ),
                    description: format!(
                        "Refresh tokens last 180 days; this one ends {}. Renew the customer's consent (authorization-code flow) before then.",
                        time::rfc3339(expires)
                    ),
                    starts_at_ms: now,
                    ends_at_ms: None,
                };
                let _ = store.raise_alert(&alert, &ids, now).await;
            }
        }
        if let Err(e) = watch_and_fallback(&store, &cfg.counting, a, &ids, now).await {
            tracing::warn!(error = %e, "periodic alert checks failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(a.check_interval_s.max(1))) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Weekly watch levels and unjustified fallback use over the last three weeks.
pub async fn watch_and_fallback(
    store: &Store,
    settings: &Settings,
    a: &AlertsConfig,
    ids: &[String],
    now: i64,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let today = time::local_date(settings.tz, now);
    let period = Period {
        from: time::monday_of(today) - chrono::Duration::days(14),
        to: today + chrono::Duration::days(1),
    };
    let (from_ms, to_ms) = (
        time::day_start_ms(settings.tz, period.from),
        time::day_start_ms(settings.tz, period.to),
    );
    let obs = store.load_observations(from_ms, to_ms, &[]).await?;
    if obs.is_empty() {
        return Ok(());
    }
    let monitored = store.monitored_intervals(from_ms, to_ms).await?;
    let input = EngineInput {
        observations: obs.into_iter().map(|o| o.obs).collect(),
        monitored,
    };
    let k = engine::compute(&input, period, settings)?;
    for w in k.weeks.iter().filter(|w| w.level.is_some()) {
        let level = w.level.unwrap_or(WatchLevel::Notice);
        let alert = Alert {
            key: format!("week/{}/{}/{:?}", w.establishment, w.week, level),
            kind: "weekly_watch".into(),
            severity: if level == WatchLevel::Critical {
                Severity::Critical
            } else {
                Severity::Warning
            },
            establishment: Some(w.establishment.to_string()),
            interface: Some("api".into()),
            summary: format!(
                "weekly watch {:?} for {}: {} consecutive week(s) missed ({})",
                level,
                name(w.establishment.as_str()),
                w.consecutive_missed,
                w.week
            ),
            description: format!(
                "Art. 33(7): the exemption is revoked when its conditions are not met for more than two consecutive weeks. Misses: {}",
                serde_json::to_string(&w.misses).unwrap_or_default()
            ),
            starts_at_ms: now,
            ends_at_ms: None,
        };
        store.raise_alert(&alert, ids, now).await?;
    }
    for f in k
        .fallback
        .iter()
        .filter(|f| f.unjustified >= a.unjustified_fallback_per_day.max(1))
    {
        let tpp = f.tpp.clone().unwrap_or_else(|| "unknown TPP".into());
        let alert = Alert {
            key: format!("fallback/{}/{tpp}/{}", f.establishment, f.date),
            kind: "unjustified_fallback".into(),
            severity: Severity::Warning,
            establishment: Some(f.establishment.to_string()),
            interface: Some("fallback".into()),
            summary: format!("{tpp} used the fallback of {} {} time(s) on {} outside any outage", name(f.establishment.as_str()), f.unjustified, f.date),
            description: "The contingency access is not to be the main access route (Art. 33(4)-(5)); possible misuse to report to the ACPR.".into(),
            starts_at_ms: now,
            ends_at_ms: None,
        };
        store.raise_alert(&alert, ids, now).await?;
    }
    Ok(())
}

/// Refresh tokens last 180 days.
pub const REFRESH_TOKEN_DAYS: i64 = 180;

/// When each establishment's refresh token was obtained: the modification time of its
/// `refresh_token_file`, or the last time a probe obtained one by the authorization-code grant.
async fn refresh_tokens(store: &Store, cfg: &Config) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for e in &cfg.establishments {
        if let Some(f) = &e.refresh_token_file
            && let Ok(m) = std::fs::metadata(f).and_then(|m| m.modified())
            && let Ok(d) = m.duration_since(std::time::UNIX_EPOCH)
        {
            out.push((e.code.to_string(), d.as_millis() as i64));
        }
    }
    let rows = sqlx::query(
        "SELECT establishment, MAX(obtained_at) FROM token_metadata WHERE grant_type = 'authorization_code' \
         AND has_refresh_token = 1 GROUP BY establishment",
    )
    .fetch_all(store.pool())
    .await
    .unwrap_or_default();
    for r in rows {
        use sqlx::Row;
        if let (Ok(code), Ok(at)) = (r.try_get::<String, _>(0), r.try_get::<i64, _>(1))
            && !out.iter().any(|(c, _)| *c == code)
        {
            out.push((code, at));
        }
    }
    out
}

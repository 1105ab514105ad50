//! The periodic checks inside `dispo run`, beside the live detector (`live.rs`): every
//! `check_interval_s`, reminders for alerts still firing, QWAC/QSealC certificates and refresh
//! tokens near their end, the weekly watch (Art. 33(7)) when a week completes, and unjustified
//! fallback use. Each reads what it needs from the store and raises or resolves alerts through
//! the outbox.

use std::time::Duration;

use tokio::sync::watch;

use super::live::name;
use super::{Alert, AlertsConfig, Severity};
use crate::config::Config;
use crate::engine::{self, Period, Settings, WatchLevel, time};
use crate::store::Store;

/// Reminders, certificates, refresh tokens, weekly watch and fallback use, every
/// `check_interval_s`.
pub async fn periodic(
    store: Store,
    cfg: Config,
    ids: Vec<String>,
    mut stop: watch::Receiver<bool>,
) {
    let a = &cfg.alerts;
    // The weekly watch changes once a week: computed at start, then when a week completes.
    let mut watched_week: Option<chrono::NaiveDate> = None;
    loop {
        let now = chrono::Utc::now().timestamp_millis();
        if let Err(e) = store
            .queue_reminders(|k| reminder_ms(a, k), &ids, now)
            .await
        {
            tracing::warn!(error = %e, "cannot queue reminders");
        }
        if let Err(e) = expiries(&store, &cfg, &ids, now).await {
            tracing::warn!(error = %e, "certificate and refresh-token checks failed");
        }
        let this_monday = time::monday_of(time::local_date(cfg.counting.tz, now));
        if watched_week != Some(this_monday) {
            match weekly_watch(&store, &cfg.counting, &ids, now).await {
                Ok(()) => watched_week = Some(this_monday),
                Err(e) => tracing::warn!(error = %e, "weekly watch check failed"),
            }
        }
        if let Err(e) = unjustified_fallback(&store, &cfg.counting, a, &ids, now).await {
            tracing::warn!(error = %e, "fallback use check failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(a.check_interval_s.max(1))) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Reminders every `reminder_s` while the interface is down or the monitor cannot probe; at
/// most daily for the slow kinds (a certificate expiring in 30 days, a weekly watch level).
pub fn reminder_ms(a: &AlertsConfig, kind: &str) -> i64 {
    let every = a.reminder_s as i64 * 1000;
    match kind {
        "interface_down" | "probe_error" | super::quorum::VANTAGE_FAULT => every,
        _ if every > 0 => every.max(86_400_000),
        _ => 0,
    }
}

type CheckError = Box<dyn std::error::Error + Send + Sync>;

/// The kind of the alert a node raises when it stops because another process took its
/// monitor id's lock ([`crate::store::MonitorLock::watch`]).
pub const MONITOR_ID_TAKEN: &str = "monitor_id_taken";

/// The key of that alert for `monitor`: one per monitor id, resolved when a node with that id
/// next starts.
pub fn monitor_id_taken_key(monitor: &str) -> String {
    format!("{MONITOR_ID_TAKEN}/{monitor}")
}

/// A node stopped probing: another process holds its monitor id (`why`, the error it stopped
/// with).
pub fn monitor_id_taken_alert(monitor: &str, why: &str, now_ms: i64) -> Alert {
    Alert {
        key: monitor_id_taken_key(monitor),
        kind: MONITOR_ID_TAKEN.into(),
        severity: Severity::Critical,
        establishment: None,
        interface: None,
        summary: format!("the monitor node '{monitor}' stopped: another node runs with its id"),
        description: format!(
            "Two nodes were configured with one monitor id ([monitor] id): this one lost its \
             lock and stopped probing so that one node only writes under that id. {}",
            why.chars().take(500).collect::<String>()
        ),
        starts_at_ms: now_ms,
        ends_at_ms: None,
    }
}

/// QWAC/QSealC certificates and refresh tokens near their end; alerts whose certificate or
/// token was renewed since are resolved.
async fn expiries(store: &Store, cfg: &Config, ids: &[String], now: i64) -> Result<(), CheckError> {
    let a = &cfg.alerts;
    let mut certs = Vec::new();
    for e in &cfg.establishments {
        for (which, not_after) in &e.cert_not_after_ms {
            if let Some(alert) =
                certificate_alert(e.code.as_str(), which, *not_after, a.cert_expiry_days, now)
            {
                certs.push(alert);
            }
        }
    }
    let mut tokens = Vec::new();
    for (code, obtained_ms) in refresh_tokens(store, cfg).await {
        if let Some(alert) = refresh_token_alert(&code, obtained_ms, a.refresh_expiry_days, now) {
            tokens.push(alert);
        }
    }
    for (kind, current) in [
        ("certificate_expiry", &certs),
        ("refresh_token_expiry", &tokens),
    ] {
        for alert in current.iter() {
            store.raise_alert(alert, ids, now).await?;
        }
        store
            .resolve_firing_except(
                kind,
                |f| current.iter().any(|c| c.key == f.key),
                "Renewed since.",
                ids,
                now,
            )
            .await?;
    }
    Ok(())
}

/// A certificate ending within `within_days` of `now`; keyed by its end, so a renewed one is
/// a new alert.
pub fn certificate_alert(
    code: &str,
    which: &str,
    not_after: i64,
    within_days: i64,
    now: i64,
) -> Option<Alert> {
    let days = (not_after - now) as f64 / 86_400_000.0;
    (days < within_days as f64).then(|| Alert {
        key: format!("certificate/{code}/{which}/{not_after}"),
        kind: "certificate_expiry".into(),
        severity: if days < 7.0 {
            Severity::Critical
        } else {
            Severity::Warning
        },
        establishment: Some(code.to_owned()),
        interface: None,
        summary: if days < 0.0 {
            format!(
                "{} certificate used for {} has expired",
                which.to_uppercase(),
                name(code)
            )
        } else {
            format!(
                "{} certificate used for {} expires in {days:.0} days",
                which.to_uppercase(),
                name(code)
            )
        },
        description: format!(
            "Its validity ends {}: renew it before then or the probes (and the TPPs using it) will fail.",
            time::rfc3339(not_after)
        ),
        starts_at_ms: now,
        ends_at_ms: None,
    })
}

/// A refresh token obtained at `obtained_ms`, within `within_days` of its 180 days.
pub fn refresh_token_alert(
    code: &str,
    obtained_ms: i64,
    within_days: i64,
    now: i64,
) -> Option<Alert> {
    let expires = obtained_ms + REFRESH_TOKEN_DAYS * 86_400_000;
    let days = (expires - now) as f64 / 86_400_000.0;
    (days < within_days as f64).then(|| Alert {
        key: format!("refresh-token/{code}/{expires}"),
        kind: "refresh_token_expiry".into(),
        severity: if days < 3.0 {
            Severity::Critical
        } else {
            Severity::Warning
        },
        establishment: Some(code.to_owned()),
        interface: None,
        summary: format!(
            "the refresh token used for {} expires in {days:.0} days",
            name(code)
        ),
        description: format!(
            "Refresh tokens last 180 days; this one ends {}. Renew the customer's consent (authorization-code flow) before then.",
            time::rfc3339(expires)
        ),
        starts_at_ms: now,
        ends_at_ms: None,
    })
}

/// The figures of `from..to` (local days), read as every command reads a period, one
/// establishment at a time: a check holds one establishment's weeks in memory, never the whole
/// bank's (the daemon stays small over a database of millions of rows). The establishments are
/// those the store's coverage names (monitor runs, imported and followed logs).
/// `only`: just these establishments (`None`: every one the coverage names).
async fn figures(
    store: &Store,
    settings: &Settings,
    period: Period,
    only: Option<&[crate::domain::EstablishmentCode]>,
) -> Result<Option<engine::Kpis>, CheckError> {
    let now = chrono::Utc::now().timestamp_millis();
    let (from, to) = engine::load_range(period, settings);
    let coverage = store.coverage(from, to, now).await?;
    let mut codes: Vec<crate::domain::EstablishmentCode> = coverage
        .iter()
        .filter_map(|c| c.establishment)
        .filter(|c| only.is_none_or(|o| o.contains(c)))
        .collect();
    codes.sort();
    codes.dedup();
    // Coverage recorded before it was kept per series names no establishment: read all at once.
    let batches: Vec<Vec<crate::domain::EstablishmentCode>> =
        if codes.is_empty() || coverage.iter().any(|c| c.establishment.is_none()) {
            vec![vec![]]
        } else {
            codes.into_iter().map(|c| vec![c]).collect()
        };
    let mut all: Option<engine::Kpis> = None;
    for ests in batches {
        let counted = crate::period::count(store, period, settings, &ests, now).await?;
        if counted.read == 0 {
            continue;
        }
        let k = counted.kpis;
        match &mut all {
            None => all = Some(k),
            Some(a) => {
                a.days.extend(k.days);
                a.episodes.extend(k.episodes);
                a.weeks.extend(k.weeks);
                a.fallback.extend(k.fallback);
                a.period_latency.extend(k.period_latency);
                a.vantage_faults.extend(k.vantage_faults);
                a.vantages.extend(k.vantages);
            }
        }
    }
    Ok(all)
}

/// The weekly watch of the last complete ISO week (Art. 33(7), its run of missed weeks counted
/// across the two before): an alert for its level; earlier weekly alerts are resolved (the
/// latest week supersedes them).
pub async fn weekly_watch(
    store: &Store,
    settings: &Settings,
    ids: &[String],
    now: i64,
) -> Result<(), CheckError> {
    let this_monday = time::monday_of(time::local_date(settings.tz, now));
    let last_monday = this_monday - chrono::Duration::days(7);
    // The last complete week: the engine judges the two before it too, so its run of missed
    // weeks (and level) is the one every other output gives that week.
    let period = Period {
        from: last_monday,
        to: this_monday,
    };
    let Some(k) = figures(store, settings, period, None).await? else {
        return Ok(());
    };
    let current: Vec<Alert> = k
        .weeks
        .iter()
        .filter(|w| w.monday == last_monday)
        .filter_map(|w| w.level.map(|l| week_alert(w, l, now)))
        .collect();
    for alert in &current {
        store.raise_alert(alert, ids, now).await?;
    }
    store
        .resolve_firing_except(
            "weekly_watch",
            |f| current.iter().any(|c| c.key == f.key),
            "Superseded by the weekly watch of a later week.",
            ids,
            now,
        )
        .await?;
    Ok(())
}

fn week_alert(w: &engine::WeekWatch, level: WatchLevel, now: i64) -> Alert {
    Alert {
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
    }
}

/// Unjustified fallback use (methodology section 6) of yesterday and today, per TPP, at or above
/// `unjustified_fallback_per_day`; alerts of earlier days are resolved (the day is over and the
/// use is on record).
pub async fn unjustified_fallback(
    store: &Store,
    settings: &Settings,
    a: &AlertsConfig,
    ids: &[String],
    now: i64,
) -> Result<(), CheckError> {
    let today = time::local_date(settings.tz, now);
    let yesterday = today - chrono::Duration::days(1);
    let period = Period {
        from: yesterday,
        to: today + chrono::Duration::days(1),
    };
    // Only where TPPs used the fallback in those days (gateway logs): with probes alone there
    // is no TPP fallback use, and nothing is loaded (this runs every `check_interval_s`).
    let from_ms = time::day_start_ms(settings.tz, yesterday);
    let to_ms = time::day_start_ms(settings.tz, today + chrono::Duration::days(1));
    let used = store.fallback_users(from_ms, to_ms).await?;
    if used.is_empty() {
        return resolve_earlier_fallback(store, yesterday, ids, now).await;
    }
    let current: Vec<Alert> = match figures(store, settings, period, Some(&used)).await? {
        Some(k) => k
            .fallback
            .iter()
            .filter(|f| f.unjustified >= a.unjustified_fallback_per_day.max(1))
            .map(|f| fallback_alert(f, now))
            .collect(),
        None => vec![],
    };
    for alert in &current {
        store.raise_alert(alert, ids, now).await?;
    }
    resolve_earlier_fallback(store, yesterday, ids, now).await
}

/// Resolves the fallback alerts of days before `yesterday`.
async fn resolve_earlier_fallback(
    store: &Store,
    yesterday: chrono::NaiveDate,
    ids: &[String],
    now: i64,
) -> Result<(), CheckError> {
    let since = yesterday.to_string();
    store
        .resolve_firing_except(
            "unjustified_fallback",
            // Keys end with the date: keep the alerts of yesterday and today.
            |f| {
                f.key
                    .rsplit('/')
                    .next()
                    .is_some_and(|d| d >= since.as_str())
            },
            "The day is over; its fallback use stays on record.",
            ids,
            now,
        )
        .await?;
    Ok(())
}

fn fallback_alert(f: &engine::FallbackUse, now: i64) -> Alert {
    let tpp = f.tpp.clone().unwrap_or_else(|| "unknown TPP".into());
    Alert {
        key: format!("fallback/{}/{tpp}/{}", f.establishment, f.date),
        kind: "unjustified_fallback".into(),
        severity: Severity::Warning,
        establishment: Some(f.establishment.to_string()),
        interface: Some("fallback".into()),
        summary: format!(
            "{tpp} used the fallback of {} {} time(s) on {} outside any outage",
            name(f.establishment.as_str()),
            f.unjustified,
            f.date
        ),
        description: "The contingency access is not to be the main access route (Art. 33(4)-(5)); possible misuse to report to the ACPR.".into(),
        starts_at_ms: now,
        ends_at_ms: None,
    }
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
    let rows = store.q(
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

#[cfg(test)]
mod tests {
    //! The checks against a real store, with explicit clock values.

    use super::*;
    use crate::domain::Interface;
    use crate::store::StoredObservation;

    async fn store(name: &str) -> Store {
        crate::alert::test_support::store("checks", name).await
    }

    use crate::alert::test_support::obs;

    // 2024-11-05T10:00:00Z
    const T0: i64 = 1_730_800_800_000;

    #[tokio::test]
    async fn unjustified_fallback_at_the_threshold_alerts_once_per_tpp_and_day() {
        let s = store("fallback").await;
        let ch = ["hook".to_string()];
        let now = chrono::Utc::now().timestamp_millis();
        // Two fallback uses by the TPP a second apart in the last minute, no outage of the API:
        // unjustified. (A second apart: both fall on one local day even when run near midnight.)
        let first = now - 61_000;
        let rows: Vec<StoredObservation> = [first, first + 1_000]
            .into_iter()
            .enumerate()
            .map(|(i, at)| obs(at, &format!("fb{i}"), Interface::Fallback, Some(200)).into())
            .collect();
        s.insert_observations(&rows[..]).await.unwrap();
        let settings = Settings::default();
        let mut a = AlertsConfig {
            unjustified_fallback_per_day: 3,
            ..Default::default()
        };
        // Threshold 3: two uses are below it. Threshold 2: at it.
        unjustified_fallback(&s, &settings, &a, &ch, now)
            .await
            .unwrap();
        assert!(s.all_firing_alerts().await.unwrap().is_empty());
        a.unjustified_fallback_per_day = 2;
        unjustified_fallback(&s, &settings, &a, &ch, now)
            .await
            .unwrap();
        unjustified_fallback(&s, &settings, &a, &ch, now)
            .await
            .unwrap();
        let firing = s.all_firing_alerts().await.unwrap();
        assert_eq!(firing.len(), 1);
        let day = time::local_date(settings.tz, first);
        assert_eq!(
            firing[0].key,
            format!("fallback/13807/PSDFR-ACPR-12345/{day}")
        );
        assert!(
            firing[0].summary.contains("2 time(s)"),
            "{}",
            firing[0].summary
        );
        // Two days later the day is over: resolved.
        unjustified_fallback(&s, &settings, &a, &ch, now + 2 * 86_400_000)
            .await
            .unwrap();
        assert!(s.all_firing_alerts().await.unwrap().is_empty());
    }

    #[test]
    fn reminders_hourly_while_down_daily_for_slow_kinds() {
        let a = AlertsConfig::default();
        assert_eq!(reminder_ms(&a, "interface_down"), 3_600_000);
        assert_eq!(reminder_ms(&a, "probe_error"), 3_600_000);
        assert_eq!(reminder_ms(&a, "certificate_expiry"), 86_400_000);
        let never = AlertsConfig {
            reminder_s: 0,
            ..Default::default()
        };
        assert_eq!(reminder_ms(&never, "interface_down"), 0);
        assert_eq!(reminder_ms(&never, "weekly_watch"), 0);
    }

    #[test]
    fn certificates_and_refresh_tokens_near_their_end() {
        let day = 86_400_000;
        // 30 days is not "within 30 days"; 29.5 is, as a warning; 6 days is critical.
        assert!(certificate_alert("13807", "qwac", T0 + 30 * day, 30, T0).is_none());
        let w = certificate_alert("13807", "qwac", T0 + 29 * day + day / 2, 30, T0).unwrap();
        assert_eq!(w.severity, Severity::Warning);
        assert!(
            w.summary
                .starts_with("QWAC certificate used for 13807 (BPGO) expires in 30 days"),
            "{}",
            w.summary
        );
        let c = certificate_alert("13807", "qseal", T0 + 6 * day, 30, T0).unwrap();
        assert_eq!(c.severity, Severity::Critical);
        assert!(
            certificate_alert("13807", "qseal", T0 - day, 30, T0)
                .unwrap()
                .summary
                .contains("has expired")
        );
        // Obtained 166 days ago: 14 days left, not within 14. 167 days ago: 13 left, warning.
        assert!(refresh_token_alert("13807", T0 - 166 * day, 14, T0).is_none());
        let r = refresh_token_alert("13807", T0 - 167 * day, 14, T0).unwrap();
        assert_eq!(r.severity, Severity::Warning);
        assert!(r.summary.contains("expires in 13 days"));
    }
}

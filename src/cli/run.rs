//! `dispo run`: the probe daemon, recording every observation in SQLite.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::probe::daemon::{self, RunOptions};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Probe definitions (TOML).
    #[arg(long, default_value = "probes/sandbox.toml")]
    pub config: PathBuf,
    /// The database: a SQLite file (created when missing) or a postgres:// URL.
    #[arg(long, value_parser = crate::cli::DbParser, default_value = "dispo.db", env = "DISPO_DB", hide_env_values = true)]
    pub db: crate::store::Target,
    /// Stop after this long (`90s`, `2m`, `1h`); default: until Ctrl-C or SIGTERM.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9464; `:9464` is every
    /// interface).
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Serve the status page on this address: `/` (HTML, French; `?lang=en`), `/status.json`,
    /// `/feed.atom`, `/health` and `/metrics`.
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Option<std::net::SocketAddr>,
    /// How often the served status page refreshes itself.
    #[arg(long, value_parser = parse_duration, default_value = "30s", value_name = "DURATION")]
    pub status_refresh: Duration,
}

/// `HOST:PORT`, or `:PORT` for every interface (as Prometheus exporters write it).
pub fn parse_listen(s: &str) -> Result<std::net::SocketAddr, String> {
    let full = match s.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => s.to_owned(),
    };
    full.parse().map_err(|_| {
        format!(
            "{s:?} is not an address: give HOST:PORT (127.0.0.1:9464) or :PORT (every interface)"
        )
    })
}

/// `90s`, `2m`, `1h`, `500ms` or a number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    // A bare number (`1e23`, `nan` included, refused below) is seconds.
    let (num, unit) = if s.parse::<f64>().is_ok() {
        (s, "s")
    } else {
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .map(|i| s.split_at(i))
            .unwrap_or((s, "s"))
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 90s, 2m, 1h)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("unknown unit {unit:?} in {s:?}: use ms, s, m or h")),
    };
    // At most ten years: beyond, the clock arithmetic overflows (`1e23` panicked).
    const MAX_SECS: f64 = 10.0 * 366.0 * 86_400.0;
    if !secs.is_finite() || !(0.0..=MAX_SECS).contains(&secs) {
        return Err(format!(
            "{s:?} is out of range: a duration from 0 to ten years (87840h)"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cfg = match crate::config::load(&args.config) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            anyhow::bail!(
                "{} is not valid: fix the problems above (dispo check-config lists them)",
                args.config.display()
            );
        }
    };
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    // One `dispo run` per monitor id and database (held until the process ends, watched
    // meanwhile: `store::lock`).
    let mut lock = crate::store::lock_monitor(&args.db, &cfg.monitor.id).await?;
    let store = Store::open(&args.db)
        .await
        .with_context(|| format!("database {}", args.db))?;
    // Earlier runs of this id: those over are closed; a live one refuses this start.
    lock.admit(&store, chrono::Utc::now().timestamp_millis())
        .await?;
    let alert_ids: Vec<String> = cfg.alerts.channels().iter().map(|c| c.id()).collect();
    {
        let now = chrono::Utc::now().timestamp_millis();
        let key = crate::alert::checks::monitor_id_taken_key(&cfg.monitor.id);
        let resolved = store
            .resolve_alert(
                &key,
                now,
                Some(format!(
                    "A node with monitor id '{}' runs again, alone with that id.",
                    cfg.monitor.id
                )),
                &alert_ids,
                now,
            )
            .await;
        if let Err(e) = resolved {
            tracing::warn!(error = %e, "cannot resolve the earlier monitor_id_taken alert");
        }
    }
    let (lock_stop, lock_stopped) = tokio::sync::watch::channel(false);
    let (taken_tx, taken_rx) = tokio::sync::watch::channel(false);
    // The lock watched until the end: lost to another process, probing stops, the operator
    // is alerted and the command fails.
    let watcher = tokio::spawn({
        let (store, ids) = (store.clone(), alert_ids.clone());
        async move {
            let lost = lock.watch(lock_stopped).await;
            if let Some(e) = &lost {
                tracing::error!(error = %e, "monitor id taken by another node: stopping");
                let now = chrono::Utc::now().timestamp_millis();
                let alert = crate::alert::checks::monitor_id_taken_alert(
                    lock.monitor(),
                    &e.to_string(),
                    now,
                );
                if let Err(e) = store.raise_alert(&alert, &ids, now).await {
                    tracing::warn!(error = %e, "cannot raise the monitor_id_taken alert");
                }
                let _ = taken_tx.send(true);
            }
            (lock, lost)
        }
    });
    tracing::info!(
        config = %super::shown_path(&args.config),
        db = %args.db.shown(),
        monitor = %cfg.monitor.id,
        establishments = cfg.establishments.len(),
        probes = cfg.probes.len(),
        sources = cfg.sources.len(),
        "dispo run starting"
    );
    let a = &cfg.alerts;
    if a.webhook.is_empty() && a.slack.is_empty() && a.alertmanager.is_empty() && a.email.is_empty()
    {
        tracing::warn!(
            config = %super::shown_path(&args.config),
            "no alert channel configured ([alerts] webhook, slack, alertmanager or email): outages are recorded but nobody is told"
        );
    }
    // Observations reach their observers in order, none lost (`probe::order`).
    let mut observers = crate::probe::order::Observers::default();
    let since = chrono::Utc::now().timestamp_millis();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Live Art. 33 detection and alert delivery, fed what the daemon has durably written; it
    // ends when the daemon drops the channel, after draining it.
    let mut tasks = vec![tokio::spawn(crate::alert::live::run(
        store.clone(),
        cfg.clone(),
        observers.subscribe(),
        since,
    ))];
    let health = daemon::WriterHealth::default();
    // Bound before probing starts, so a taken port stops the command at once.
    let metrics_listener = match args.metrics_listen {
        Some(addr) => Some((
            addr,
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for metrics"))?,
        )),
        None => None,
    };
    let http_listener = match args.http_listen {
        Some(addr) => Some((
            addr,
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for the status page"))?,
        )),
        None => None,
    };
    if metrics_listener.is_some() || http_listener.is_some() {
        let metrics = crate::metrics::Metrics::new(&cfg).watching(health.clone());
        let mut rx = observers.subscribe();
        let m = metrics.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(o) = rx.recv().await {
                m.observe(&o);
            }
        }));
        let check = crate::status::http::HealthCheck {
            store: store.clone(),
            writer: Some(health.clone()),
            probes: !cfg.probes.is_empty(),
        };
        let mut serve = |listener, app, what: &'static str| {
            let stop = stop_rx.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = crate::metrics::serve(listener, app, stop).await {
                    tracing::error!(error = %e, "{what} server stopped");
                }
            }));
        };
        if let Some((addr, listener)) = metrics_listener {
            let app = crate::metrics::router(metrics.clone()).merge(check.clone().router());
            serve(listener, app, "metrics");
            tracing::info!(%addr, "metrics on /metrics, readiness on /health");
        }
        if let Some((addr, listener)) = http_listener {
            let page = crate::status::service::StatusService::new(
                store.clone(),
                crate::status::Scope::of_config(&cfg),
                crate::status::service::Ttl::default(),
                Some(args.status_refresh.as_secs().max(1)),
            );
            let app = crate::status::http::router(page)
                .merge(crate::metrics::router(metrics))
                .merge(check.router());
            serve(listener, app, "status page");
            tracing::info!(%addr, "status page on /, /status.json, /feed.atom; /health, /metrics");
        }
    }
    let opts = RunOptions {
        duration: args.duration,
        status_line: std::io::IsTerminal::is_terminal(&std::io::stdout()),
        health,
        id_taken: Some(taken_rx.clone()),
    };
    // Gateway logs ([[source]]): stored as imports are, and handed to the same observers.
    let following = crate::follow::Following::start(&store, &cfg, &observers);
    let summary = if cfg.probes.is_empty() && following.is_some() {
        // Only logs to follow: no monitor runs (its heartbeats would cover every series).
        drop(observers);
        let until = async {
            match args.duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let mut taken = taken_rx.clone();
        let taken = async move {
            if taken.wait_for(|t| *t).await.is_err() {
                std::future::pending::<()>().await
            }
        };
        tokio::select! { _ = super::shutdown_signal() => {}, _ = until => {}, _ = taken => {} }
        daemon::RunSummary::default()
    } else {
        daemon::run(
            cfg,
            store.clone(),
            opts,
            observers,
            super::shutdown_signal(),
        )
        .await?
    };
    if let Some(f) = following {
        println!("{} gateway log rows followed", f.stop().await);
    }
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(15), t).await;
    }
    let _ = lock_stop.send(true);
    let (lock, lost) = watcher.await.context("the monitor lock's watch failed")?;
    // The log written back into the database file: a copy of `dispo.db` alone is complete.
    store.close().await;
    drop(lock);
    println!(
        "{} observations recorded in {}",
        summary.observations_written, args.db
    );
    match lost {
        Some(e) => Err(e.into()),
        None => Ok(ExitCode::SUCCESS),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn a_listen_address_may_leave_the_host_out() {
        use super::parse_listen;
        assert_eq!(parse_listen(":9464").unwrap().to_string(), "0.0.0.0:9464");
        assert_eq!(
            parse_listen("127.0.0.1:9464").unwrap().to_string(),
            "127.0.0.1:9464"
        );
        assert!(parse_listen("9464").is_err());
    }

    #[test]
    fn durations_out_of_range_are_refused() {
        assert_eq!(
            parse_duration("90s"),
            Ok(std::time::Duration::from_secs(90))
        );
        assert_eq!(
            parse_duration("1.5m"),
            Ok(std::time::Duration::from_secs(90))
        );
        for bad in [
            "1e23",
            "100000000000000000000000",
            "1e400h",
            "nan",
            "inf",
            "-5s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad} accepted");
        }
        for huge in ["1e23", "100000000000000000000000", "nan"] {
            let e = parse_duration(huge).unwrap_err();
            assert!(e.contains("out of range"), "{huge}: {e}");
        }
    }
}

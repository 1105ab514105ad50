//! Prometheus exposition of the probes (`dispo run --metrics-listen`), with blackbox_exporter's
//! names so existing dashboards work: `probe_success`, `probe_duration_seconds`,
//! `probe_http_duration_seconds{phase}`, `probe_ssl_earliest_cert_expiry`, plus
//! `dispo_interface_up` (the Art. 33(1) verdict) and `dispo_episodes_total`. Labels stay
//! low-cardinality: establishment, interface, probe.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::domain::Phases;
use crate::engine::live::{EpisodeTracker, LiveEvent};
use crate::store::StoredObservation;

type Series = (String, String); // establishment, interface
/// (establishment, interface, probe) -> (succeeded, total seconds, phases of the last answer).
type LastRuns = BTreeMap<(String, String, String), (bool, f64, Option<Phases>)>;

#[derive(Debug)]
struct State {
    last: LastRuns,
    up: BTreeMap<Series, bool>,
    episodes: BTreeMap<Series, u64>,
    cert_expiry: BTreeMap<String, i64>,
    tracker: EpisodeTracker,
    aspsp_error_is_failure: bool,
}

/// The metrics of a running monitor; cheap to clone.
#[derive(Debug, Clone)]
pub struct Metrics(Arc<Mutex<State>>);

impl Metrics {
    pub fn new(cfg: &Config) -> Self {
        let cert_expiry = cfg
            .establishments
            .iter()
            .filter_map(|e| {
                e.cert_not_after_ms
                    .iter()
                    .map(|(_, t)| *t)
                    .min()
                    .map(|t| (e.code.to_string(), t))
            })
            .collect();
        Self(Arc::new(Mutex::new(State {
            last: BTreeMap::new(),
            up: BTreeMap::new(),
            episodes: BTreeMap::new(),
            cert_expiry,
            tracker: EpisodeTracker::new(&cfg.counting),
            aspsp_error_is_failure: cfg.counting.aspsp_error_is_failure,
        })))
    }

    pub fn observe(&self, o: &StoredObservation) {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let series = (o.obs.establishment.to_string(), o.obs.interface.to_string());
        if o.obs.outcome != crate::domain::Outcome::ProbeError {
            let probe = o
                .probe_id
                .as_deref()
                .and_then(|p| p.split('@').next())
                .unwrap_or("log")
                .to_owned();
            let ok = o.obs.outcome == crate::domain::Outcome::Ok;
            let total = o.obs.latency_ms.unwrap_or(0.0) / 1000.0;
            // Phases are those of the last answered request (a request with no reply has none).
            let phases = o.phases.or_else(|| {
                s.last
                    .get(&(series.0.clone(), series.1.clone(), probe.clone()))
                    .and_then(|l| l.2)
            });
            s.last.insert(
                (series.0.clone(), series.1.clone(), probe),
                (ok, total, phases),
            );
        }
        match s.tracker.push(&o.obs) {
            Some(LiveEvent::Opened(_)) => {
                *s.episodes.entry(series.clone()).or_default() += 1;
                s.up.insert(series, false);
            }
            Some(LiveEvent::Closed(_)) => {
                s.up.insert(series, true);
            }
            None => {
                let failure = o.obs.outcome.is_failure(s.aspsp_error_is_failure);
                let open = s.tracker.open_episodes().any(|e| {
                    e.establishment.as_str() == series.0 && e.interface.as_str() == series.1
                });
                if !open && !failure {
                    s.up.insert(series.clone(), true);
                }
                s.episodes.entry(series).or_default();
            }
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        let head = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        head(
            &mut out,
            "probe_success",
            "gauge",
            "Whether the last run of the probe succeeded.",
        );
        for ((e, i, p), (ok, _, _)) in &s.last {
            let _ = writeln!(
                out,
                "probe_success{{establishment=\"{e}\",interface=\"{i}\",probe=\"{p}\"}} {}",
                u8::from(*ok)
            );
        }
        head(
            &mut out,
            "probe_duration_seconds",
            "gauge",
            "Duration of the last run of the probe.",
        );
        for ((e, i, p), (_, d, _)) in &s.last {
            let _ = writeln!(
                out,
                "probe_duration_seconds{{establishment=\"{e}\",interface=\"{i}\",probe=\"{p}\"}} {d}"
            );
        }
        head(
            &mut out,
            "probe_http_duration_seconds",
            "gauge",
            "Duration of each phase of the last answered request.",
        );
        for ((e, i, p), (_, _, ph)) in &s.last {
            if let Some(ph) = ph {
                for (name, v) in [
                    ("resolve", ph.resolve_ms),
                    ("connect", ph.connect_ms),
                    ("tls", ph.tls_ms),
                    ("processing", ph.processing_ms),
                    ("transfer", ph.transfer_ms),
                ] {
                    let _ = writeln!(
                        out,
                        "probe_http_duration_seconds{{establishment=\"{e}\",interface=\"{i}\",probe=\"{p}\",phase=\"{name}\"}} {}",
                        v / 1000.0
                    );
                }
            }
        }
        head(
            &mut out,
            "probe_ssl_earliest_cert_expiry",
            "gauge",
            "Earliest expiry of the client certificates (unix seconds).",
        );
        for (e, t) in &s.cert_expiry {
            let _ = writeln!(
                out,
                "probe_ssl_earliest_cert_expiry{{establishment=\"{e}\"}} {}",
                t / 1000
            );
        }
        head(
            &mut out,
            "dispo_interface_up",
            "gauge",
            "0 while the interface is deemed unavailable (Art. 33(1)), else 1.",
        );
        for ((e, i), up) in &s.up {
            let _ = writeln!(
                out,
                "dispo_interface_up{{establishment=\"{e}\",interface=\"{i}\"}} {}",
                u8::from(*up)
            );
        }
        head(
            &mut out,
            "dispo_episodes_total",
            "counter",
            "Unavailability episodes opened since the monitor started.",
        );
        for ((e, i), n) in &s.episodes {
            let _ = writeln!(
                out,
                "dispo_episodes_total{{establishment=\"{e}\",interface=\"{i}\"}} {n}"
            );
        }
        out
    }
}

/// Serves `/metrics` on `addr` until `stop`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Metrics,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let m = metrics.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    m.render(),
                )
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.changed().await;
        })
        .await
}

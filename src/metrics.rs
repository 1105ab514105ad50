//! Prometheus exposition of the probes (`dispo run --metrics-listen`), with blackbox_exporter's
//! names so existing dashboards work: `probe_success`, `probe_duration_seconds`,
//! `probe_http_duration_seconds{phase}`, `probe_ssl_earliest_cert_expiry`, plus
//! `dispo_interface_up` (the Art. 33(1) verdict as this node's probes see it: with several vantage
//! points the combined verdict is the `interface_down` alert's) and `dispo_episodes_total`. Labels
//! stay low-cardinality: establishment, interface, probe.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::domain::Phases;
use crate::engine::Settings;
use crate::engine::live::{EpisodeTracker, LiveEvent};
use crate::probe::daemon::WriterHealth;
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
    writer: Option<WriterHealth>,
}

/// The metrics of a running monitor; cheap to clone.
#[derive(Debug, Clone)]
pub struct Metrics(Arc<Mutex<State>>);

impl Metrics {
    pub fn new(cfg: &Config) -> Self {
        let cert_expiry: BTreeMap<String, i64> = cfg
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
        Self::with(&cfg.counting, cert_expiry)
    }

    /// From the counting settings and the earliest client-certificate expiry (epoch ms) per
    /// establishment.
    pub fn with(settings: &Settings, cert_expiry: BTreeMap<String, i64>) -> Self {
        Self(Arc::new(Mutex::new(State {
            last: BTreeMap::new(),
            up: BTreeMap::new(),
            episodes: BTreeMap::new(),
            cert_expiry,
            tracker: EpisodeTracker::new(settings),
            aspsp_error_is_failure: settings.aspsp_error_is_failure,
            writer: None,
        })))
    }

    /// Also shows how the writing of observations goes (the monitor's own health).
    pub fn watching(self, writer: WriterHealth) -> Self {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).writer = Some(writer);
        self
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
        let last: Vec<_> = s
            .last
            .iter()
            .map(|((e, i, p), v)| ((esc(e), esc(i), esc(p)), v))
            .collect();
        for ((e, i, p), (ok, _, _)) in &last {
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
        for ((e, i, p), (_, d, _)) in &last {
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
        for ((e, i, p), (_, _, ph)) in &last {
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
            let e = esc(e);
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
            "0 while this node's probes deem the interface unavailable (Art. 33(1)), else 1.",
        );
        for ((e, i), up) in &s.up {
            let (e, i) = (esc(e), esc(i));
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
            let (e, i) = (esc(e), esc(i));
            let _ = writeln!(
                out,
                "dispo_episodes_total{{establishment=\"{e}\",interface=\"{i}\"}} {n}"
            );
        }
        if let Some(w) = &s.writer {
            head(
                &mut out,
                "dispo_observations_unwritten",
                "gauge",
                "Observations held in memory because neither the database nor its spill journal takes them (retried until kept; probing pauses meanwhile); above 0, live detection is blind.",
            );
            let _ = writeln!(out, "dispo_observations_unwritten {}", w.waiting());
            head(
                &mut out,
                "dispo_observations_spilled",
                "gauge",
                "Observations kept in the spill journal beside the database because it refuses writes (replayed once it takes them again).",
            );
            let _ = writeln!(out, "dispo_observations_spilled {}", w.spilled());
            head(
                &mut out,
                "dispo_store_write_failures_total",
                "counter",
                "Failed attempts to write observations since the monitor started.",
            );
            let _ = writeln!(out, "dispo_store_write_failures_total {}", w.failures());
            if let Some(t) = w.last_write_ms() {
                head(
                    &mut out,
                    "dispo_last_write_timestamp_seconds",
                    "gauge",
                    "When observations were last written (unix seconds).",
                );
                let _ = writeln!(
                    out,
                    "dispo_last_write_timestamp_seconds {}",
                    t as f64 / 1000.0
                );
            }
        }
        head(
            &mut out,
            "dispo_probe_ticks_skipped_total",
            "counter",
            "Scheduled probe runs skipped because the job's previous run was still in flight (the monitor cannot keep up, or the bank is slower than the schedule).",
        );
        let _ = writeln!(
            out,
            "dispo_probe_ticks_skipped_total {}",
            crate::probe::daemon::SKIPPED_TICKS.load(std::sync::atomic::Ordering::Relaxed)
        );
        render_delivery_failures(&mut out);
        out
    }
}

/// Failed alert deliveries since the process started, by channel kind and reason
/// ([`crate::alert::DeliveryError::reason`]). Process-wide: the outbox's loops count here and
/// every `/metrics` shows it.
static DELIVERY_FAILURES: Mutex<BTreeMap<(&'static str, &'static str), u64>> =
    Mutex::new(BTreeMap::new());

/// Counts a failed alert delivery (`dispo_alert_delivery_failures_total`).
pub fn alert_delivery_failed(channel: &'static str, reason: &'static str) {
    *DELIVERY_FAILURES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry((channel, reason))
        .or_default() += 1;
}

fn render_delivery_failures(out: &mut String) {
    let _ = writeln!(
        out,
        "# HELP dispo_alert_delivery_failures_total Failed alert deliveries (retried), by channel kind and reason: http (no answer or a non-2xx status), redirect (a 3xx, never followed), smtp; gave_up counts notices given up after the retry limit.\n# TYPE dispo_alert_delivery_failures_total counter"
    );
    for ((c, r), n) in DELIVERY_FAILURES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        let _ = writeln!(
            out,
            "dispo_alert_delivery_failures_total{{channel=\"{c}\",reason=\"{r}\"}} {n}"
        );
    }
}

/// A label value as the text format wants it: backslash, double quote and newline escaped.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `/metrics` alone, to serve beside other routes (`dispo run --http-listen`).
pub fn router(metrics: Metrics) -> axum::Router {
    axum::Router::new().route(
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
    )
}

/// Serves `app` (`/metrics`, and `/health` from `dispo run`) on `listener` until `stop`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.changed().await;
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Interface, Observation, Outcome, Service, Source};

    fn obs(at: i64, id: &str, status: Option<u16>) -> StoredObservation {
        StoredObservation {
            obs: Observation {
                received_at_ms: at,
                establishment: "13807".parse().unwrap(),
                interface: Interface::Api,
                service: Service::new("cbpii").unwrap(),
                source: Source::Probe,
                tpp: None,
                status,
                latency_ms: status.map(|_| 250.0),
                error_code: None,
                request_id: id.into(),
                outcome: Outcome::from_reply(status, None),
                vantage: crate::domain::Vantage::imported(Source::Probe),
            },
            error_text: None,
            no_reply_kind: None,
            probe_id: Some("v142@13807".into()),
            phases: status.map(|_| Phases {
                resolve_ms: 0.5,
                connect_ms: 1.0,
                tls_ms: 12.0,
                processing_ms: 200.0,
                transfer_ms: 36.5,
            }),
            synthetic: false,
        }
    }

    fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
    }

    #[test]
    fn an_episode_seen_through_the_metrics() {
        // Client certificates end 2027-01-01T00:00:00Z = 1 798 761 600 s.
        let m = Metrics::with(
            &Settings::default(),
            [("13807".to_owned(), 1_798_761_600_000)].into(),
        );
        let labels = "establishment=\"13807\",interface=\"api\"";
        m.observe(&obs(0, "a", Some(200)));
        let t = m.render();
        assert_eq!(
            line(&t, "probe_success{"),
            format!("probe_success{{{labels},probe=\"v142\"}} 1")
        );
        assert_eq!(
            line(&t, "probe_duration_seconds{"),
            format!("probe_duration_seconds{{{labels},probe=\"v142\"}} 0.25")
        );
        assert_eq!(
            line(&t, "probe_http_duration_seconds{"),
            format!(
                "probe_http_duration_seconds{{{labels},probe=\"v142\",phase=\"resolve\"}} 0.0005"
            )
        );
        assert!(t.contains("phase=\"tls\"} 0.012\n"));
        assert_eq!(
            line(&t, "probe_ssl_earliest_cert_expiry{"),
            "probe_ssl_earliest_cert_expiry{establishment=\"13807\"} 1798761600"
        );
        assert_eq!(
            line(&t, "dispo_interface_up{"),
            format!("dispo_interface_up{{{labels}}} 1")
        );
        // Five failures 5 s apart (20 s from first to fifth): down, one episode.
        for i in 1..=5 {
            m.observe(&obs(i * 5_000, &format!("f{i}"), None));
        }
        let t = m.render();
        assert_eq!(
            line(&t, "probe_success{"),
            format!("probe_success{{{labels},probe=\"v142\"}} 0")
        );
        // The phases stay those of the last answered request.
        assert!(t.contains("phase=\"tls\"} 0.012\n"));
        assert_eq!(
            line(&t, "dispo_interface_up{"),
            format!("dispo_interface_up{{{labels}}} 0")
        );
        assert_eq!(
            line(&t, "dispo_episodes_total{"),
            format!("dispo_episodes_total{{{labels}}} 1")
        );
        m.observe(&obs(40_000, "b", Some(200)));
        let t = m.render();
        assert_eq!(
            line(&t, "dispo_interface_up{"),
            format!("dispo_interface_up{{{labels}}} 1")
        );
        assert_eq!(
            line(&t, "dispo_episodes_total{"),
            format!("dispo_episodes_total{{{labels}}} 1")
        );
        assert!(t.contains("# TYPE dispo_episodes_total counter\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(esc(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(esc("x\ny"), "x\\ny");
    }
}

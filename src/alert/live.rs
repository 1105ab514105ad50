//! The live detector inside `dispo run`: the engine's episode state machine over observations as
//! they are recorded. The moment a fifth qualifying failure arrives, an `interface_down` alert
//! fires (Art. 33(1)); the first reply that is not a failure resolves it with the duration, and a
//! gap in coverage (the monitor stopped, was killed, or fails on its own side) cuts it, saying
//! monitoring was interrupted. The periodic checks run beside it (`checks.rs`).

use chrono_tz::Tz;
use tokio::sync::{mpsc, watch};

use super::{Alert, AlertsConfig, Channel, Severity};
use crate::config::Config;
use crate::domain::{EstablishmentCode, Interface, Observation, Outcome, known_establishment};
use crate::engine::live::{EpisodeTracker, LiveEvent};
use crate::engine::{self, Episode, Settings, time};
use crate::store::{Store, StoredObservation};

fn local(ms: i64, tz: Tz) -> String {
    time::utc(ms)
        .with_timezone(&tz)
        .format("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

pub(super) fn name(code: &str) -> String {
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

/// The final description of an episode cut by a gap in coverage.
pub fn cut_text(e: &Episode, tz: Tz) -> String {
    format!(
        "Monitoring of the {} of {} was interrupted at {}: the episode is cut there, after {:.1} s \
         (from {}); nothing is known of what followed. If the interface still fails, a new episode \
         is alerted once five new failures confirm it.",
        iface_words(e.interface),
        name(e.establishment.as_str()),
        local(e.end_ms, tz),
        e.duration_s(),
        local(e.start_ms, tz)
    )
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
/// channel closes (the daemon stopped); then delivers what is due one last time. The channel
/// brings the observations of this run (received from `since_ms` on), per series in
/// (`received_at`, `request_id`) order ([`crate::probe::order`]); those before are replayed from
/// the store.
pub async fn run(
    store: Store,
    cfg: Config,
    mut rx: mpsc::Receiver<StoredObservation>,
    since_ms: i64,
) {
    let (stop_tx, stop) = watch::channel(false);
    let alerts: AlertsConfig = cfg.alerts.clone();
    let channels: Vec<Channel> = alerts.channels();
    let ids: Vec<String> = channels.iter().map(Channel::id).collect();
    let delivery = tokio::spawn(super::outbox::run(store.clone(), channels, stop.clone()));
    let checks = tokio::spawn(super::checks::periodic(
        store.clone(),
        cfg.clone(),
        ids.clone(),
        stop.clone(),
    ));
    // Earlier runs of this monitor whose heartbeat is stale are over: their coverage ends at
    // their last heartbeat, and what they left open is cut there. (`dispo run` closed those
    // its lock proves over at its admission; a fresh heartbeat may be a live node's.)
    let stale = since_ms - crate::store::coverage::STALE_HEARTBEAT_MS;
    if let Err(e) = store
        .end_earlier_runs(&cfg.monitor.id, since_ms, stale)
        .await
    {
        tracing::warn!(error = %e, "cannot close the earlier runs' heartbeats");
    }
    let mut episodes = Episodes::new(&cfg.counting).shared_as(super::quorum::Node {
        vantage: cfg.monitor.vantage.clone(),
        quorum: cfg.counting.vantage_quorum,
        grace_ms: cfg.counting.window_ms,
        tz: cfg.counting.tz,
        probes: OwnCopies::of(&cfg).series(),
    });
    episodes.replay(&store, &ids, since_ms).await;
    // The vantages' states are judged again every heartbeat: another node's episode, a fault's
    // grace, a vantage whose heartbeat went stale.
    let mut tick = tokio::time::interval(
        cfg.monitor
            .heartbeat
            .max(std::time::Duration::from_millis(200)),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut probe_errors = ProbeErrors::load(&store).await;
    let copies = OwnCopies::of(&cfg);
    let mut merge = Merge::new(Merge::wait_for(&cfg));
    loop {
        let due = merge.next_due_ms();
        let wait = due.map(|d| {
            let now = chrono::Utc::now().timestamp_millis();
            std::time::Duration::from_millis(d.saturating_sub(now).max(0) as u64)
        });
        let open = tokio::select! {
            o = rx.recv() => match o {
                Some(o) => { merge.push(o); true }
                None => false,
            },
            _ = tokio::time::sleep(wait.unwrap_or_default()), if wait.is_some() => true,
            _ = tick.tick() => {
                episodes.tick(&store, &ids, chrono::Utc::now().timestamp_millis()).await;
                continue;
            }
        };
        let now = chrono::Utc::now().timestamp_millis();
        let ready = if open {
            merge.release(now)
        } else {
            merge.drain()
        };
        for o in ready {
            probe_errors.push(&store, &o, &ids, now).await;
            if copies.is_copy(&o.obs) {
                continue;
            }
            let counted = crate::period::counted(&o, &cfg.counting);
            episodes.push(&store, &counted, &ids, now).await;
        }
        if !open {
            break;
        }
    }
    episodes.stopped(&store, &ids).await;
    let _ = stop_tx.send(true);
    let _ = checks.await;
    let _ = delivery.await;
}

/// Probes and followed gateway logs merged into one order, the batch's (methodology 8): each
/// source hands its observations over in (`received_at`, `request_id`) order, but a gateway logs a
/// request when it ends and the follower holds its rows `hold_s` for that, so a TPP's request
/// that began between two probes reaches the detector well after them. Every observation waits
/// here until `hold_s` (plus the follower's poll and a second's slack) has passed since it began,
/// then all go in order: a TPP's success between five probe failures breaks their run live as it
/// does in `kpi`. Without `[[source]]` nothing waits; with one, probe alerts come `hold_s` later.
struct Merge {
    wait_ms: i64,
    held: std::collections::BTreeMap<(i64, crate::domain::CompactString, u64), StoredObservation>,
    arrivals: u64,
}

impl Merge {
    /// How long observations wait: 0 without followed logs.
    fn wait_for(cfg: &Config) -> std::time::Duration {
        cfg.sources
            .iter()
            .map(|s| s.hold + s.poll + std::time::Duration::from_secs(1))
            .max()
            .unwrap_or_default()
    }

    fn new(wait: std::time::Duration) -> Self {
        Self {
            wait_ms: wait.as_millis().min(i64::MAX as u128) as i64,
            held: Default::default(),
            arrivals: 0,
        }
    }

    fn push(&mut self, o: StoredObservation) {
        self.arrivals += 1;
        let key = (
            o.obs.received_at_ms,
            o.obs.request_id.clone(),
            self.arrivals,
        );
        self.held.insert(key, o);
    }

    /// When the earliest held observation is due (epoch ms).
    fn next_due_ms(&self) -> Option<i64> {
        self.held
            .keys()
            .next()
            .map(|k| k.0.saturating_add(self.wait_ms))
    }

    /// What is due at `now_ms`, in order.
    fn release(&mut self, now_ms: i64) -> Vec<StoredObservation> {
        let mut out = Vec::new();
        while let Some(e) = self.held.first_entry() {
            if e.key().0.saturating_add(self.wait_ms) > now_ms {
                break;
            }
            out.push(e.remove());
        }
        out
    }

    /// Everything, in order (the daemon stopped).
    fn drain(&mut self) -> Vec<StoredObservation> {
        std::mem::take(&mut self.held).into_values().collect()
    }
}

/// One request counts once (methodology 1): a gateway's log line of one of this monitor's own
/// probes (its client id, on a series it probes) is a copy of the probe's record, which the
/// engine keeps; live, the copy is left out, so the request does not count twice.
struct OwnCopies {
    /// Per establishment: this monitor's client id and the interfaces it probes there.
    own: std::collections::BTreeMap<EstablishmentCode, (String, Vec<Interface>)>,
}

impl OwnCopies {
    fn of(cfg: &Config) -> Self {
        let mut own = std::collections::BTreeMap::new();
        for e in &cfg.establishments {
            let ifaces = cfg
                .probes
                .iter()
                .filter(|p| p.establishments.is_empty() || p.establishments.contains(&e.code))
                .map(|p| p.step.interface())
                .collect();
            own.insert(e.code, (e.client_id.clone(), ifaces));
        }
        Self { own }
    }

    /// The series this monitor probes.
    fn series(&self) -> Vec<(EstablishmentCode, Interface)> {
        self.own
            .iter()
            .flat_map(|(e, (_, ifaces))| ifaces.iter().map(|i| (*e, *i)))
            .collect()
    }

    fn is_copy(&self, o: &Observation) -> bool {
        o.source == crate::domain::Source::Log
            && self.own.get(&o.establishment).is_some_and(|(id, ifaces)| {
                o.tpp.as_deref() == Some(id.as_str()) && ifaces.contains(&o.interface)
            })
    }
}

/// Whether `c` is another node's monitor run than `me`'s.
fn of_other(c: &crate::domain::CoverageSpan, me: &crate::domain::Vantage) -> bool {
    c.kind == crate::domain::CoverageKind::Monitor && !crate::engine::vantage::is_run_of(c, me)
}

/// Episodes and their `interface_down` alerts.
pub struct Episodes {
    /// One tracker per series, started afresh after each gap in coverage (methodology 3).
    series: std::collections::BTreeMap<(EstablishmentCode, Interface), SeriesLive>,
    settings: Settings,
    /// Alerts and resolutions not yet in the outbox, oldest first: one the database refused
    /// (busy past its timeout, failing) is queued again with the next observation, so a passing
    /// error never leaves an outage unannounced.
    unqueued: std::collections::VecDeque<Unqueued>,
    /// This node as a vantage, when it shares its store with other nodes' (`dispo run`); `None`
    /// judges alone and publishes nothing.
    node: Option<super::quorum::Node>,
    /// Episode (or gap) states not yet published (the store refused), oldest first.
    unpublished: std::collections::VecDeque<Unpublished>,
}

/// The live state of one series.
struct SeriesLive {
    tracker: EpisodeTracker,
    /// The monitor's probes of the series fail on its own side (`probe_error`) since then: not
    /// covered until a probe gets another outcome (methodology 1).
    gap: Option<i64>,
}

/// An episode (or, `gap`, a span of the monitor's own errors) of this node's vantage to publish.
#[derive(Debug, Clone, Copy)]
struct Unpublished {
    series: (EstablishmentCode, Interface),
    gap: bool,
    start_ms: i64,
    end_ms: Option<i64>,
}

/// An alert or resolution waiting to enter the outbox.
enum Unqueued {
    Raise(Alert),
    Resolve {
        key: String,
        end_ms: i64,
        text: String,
        duration_s: f64,
    },
}

/// How far back the start-up replay reaches at most.
const REPLAY_MAX_MS: i64 = 7 * 86_400_000;
/// How far back it reaches at least (an episode needs 30 s of failures to open).
const REPLAY_MIN_MS: i64 = 10 * 60_000;

impl Episodes {
    pub fn new(settings: &Settings) -> Self {
        Self {
            series: Default::default(),
            settings: settings.clone(),
            unqueued: Default::default(),
            node: None,
            unpublished: Default::default(),
        }
    }

    /// Publishes this node's episodes as `node`'s and lets the vantage quorum decide whenever
    /// another node covers the series too (methodology section 10).
    pub fn shared_as(mut self, node: super::quorum::Node) -> Self {
        self.node = Some(node);
        self
    }

    /// Whether another node covers `series` since `from_ms`: the quorum decides then. A store
    /// that cannot tell leaves this node to alert alone (an alert too many, none missed).
    async fn shared(
        &self,
        store: &Store,
        series: (EstablishmentCode, Interface),
        from_ms: i64,
        now: i64,
    ) -> bool {
        let Some(node) = &self.node else {
            return false;
        };
        match node.others_cover(store, series, from_ms, now).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the other vantages' coverage; alerting alone");
                false
            }
        }
    }

    /// Publishes an episode (or gap) state of this node's vantage (and what waited).
    async fn publish(
        &mut self,
        store: &Store,
        series: (EstablishmentCode, Interface),
        gap: bool,
        start_ms: i64,
        end_ms: Option<i64>,
        now: i64,
    ) {
        if self.node.is_none() {
            return;
        }
        self.unpublished.push_back(Unpublished {
            series,
            gap,
            start_ms,
            end_ms,
        });
        self.flush_published(store, now).await;
    }

    async fn flush_published(&mut self, store: &Store, now: i64) {
        let Some(node) = &self.node else {
            return;
        };
        while let Some(&u) = self.unpublished.front() {
            let v = node.vantage_of(u.series);
            if let Err(e) = store
                .publish_vantage_episode(u.series, &v, u.gap, u.start_ms, u.end_ms, now)
                .await
            {
                tracing::warn!(error = %e, waiting = self.unpublished.len(), "cannot publish this vantage's episode; retried");
                return;
            }
            self.unpublished.pop_front();
        }
    }

    /// Judges `series` from every vantage (the quorum) and alerts accordingly.
    async fn judge(
        &mut self,
        store: &Store,
        series: (EstablishmentCode, Interface),
        ids: &[String],
        now: i64,
    ) {
        let Some(node) = &self.node else {
            return;
        };
        if let Err(e) = super::quorum::evaluate(node, store, series, ids, now).await {
            tracing::error!(error = %e, "cannot judge the vantages' states; tried again at the next heartbeat");
        }
    }

    /// Every heartbeat: publishes what waits, and judges again each series some vantage is or
    /// was lately down on, or an alert fires for, where another node covers it.
    pub async fn tick(&mut self, store: &Store, ids: &[String], now: i64) {
        self.queue(store, ids, now).await;
        self.flush_published(store, now).await;
        let Some(node) = self.node.clone() else {
            return;
        };
        let since = now - super::quorum::RECENT_MS;
        let mut series: std::collections::BTreeSet<(EstablishmentCode, Interface)> =
            match store.series_with_vantage_episodes(since).await {
                Ok(s) => s.into_iter().collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the vantages' episodes");
                    return;
                }
            };
        for kind in ["interface_down", super::quorum::VANTAGE_FAULT] {
            for a in store.firing_alerts(kind).await.unwrap_or_default() {
                let s = a
                    .establishment
                    .as_deref()
                    .and_then(|e| e.parse().ok())
                    .zip(a.interface.as_deref().and_then(|i| i.parse().ok()));
                series.extend(s);
            }
        }
        for s in series {
            if self.shared(store, s, since, now).await
                && let Err(e) = super::quorum::evaluate(&node, store, s, ids, now).await
            {
                tracing::warn!(error = %e, "cannot judge the vantages' states");
            }
        }
    }

    /// At start-up, settles what happened before this run (`since_ms`) by the coverage rule
    /// (methodology 3), as `kpi` counts it: the observations of the last minutes (back to the
    /// start of any episode alert still firing) and the monitor runs that covered them go through
    /// the engine. An episode that ended, or was cut where an earlier run stopped (its last
    /// heartbeat), is alerted if it never was and resolved, a cut one saying monitoring was
    /// interrupted; failures after the restart need their own five. Alerts left firing that no
    /// episode explains (older than the look-back) are resolved as interrupted too. A series still
    /// covered at `since_ms` (a gateway log, another monitor) carries on in the live tracker.
    /// Returns how many observations it read.
    pub async fn replay(&mut self, store: &Store, ids: &[String], since_ms: i64) -> usize {
        use std::collections::BTreeMap;
        let now = chrono::Utc::now().timestamp_millis();
        let tz = self.settings.tz;
        let firing = store
            .firing_alerts("interface_down")
            .await
            .unwrap_or_default();
        let from = firing
            .iter()
            .map(|a| a.starts_at_ms)
            .fold(since_ms - REPLAY_MIN_MS, i64::min)
            .max(since_ms - REPLAY_MAX_MS);
        let (stored, coverage) = match tokio::try_join!(
            store.load_observations(from, since_ms, &[]),
            store.coverage(from, since_ms, now)
        ) {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "cannot replay the recent observations");
                return 0;
            }
        };
        // Other nodes running beside this one (methodology 10): this node replays its own
        // vantage (its probes, the gateway's logs, its coverage), and the quorum, not the replay,
        // decides the alerts of the series they share.
        let others: std::collections::BTreeSet<crate::domain::Vantage> = match &self.node {
            Some(node) => coverage
                .iter()
                .filter(|c| of_other(c, &node.vantage))
                .filter_map(|c| c.vantage.clone())
                .collect(),
            None => Default::default(),
        };
        let shared = coverage
            .iter()
            .any(|c| c.ongoing && c.vantage.as_ref().is_some_and(|v| others.contains(v)));
        if let Some(node) = &self.node {
            // What a killed run of this node left open ends where its coverage ended.
            let own_end = coverage
                .iter()
                .filter(|c| {
                    c.kind == crate::domain::CoverageKind::Monitor
                        && crate::engine::vantage::is_run_of(c, &node.vantage)
                })
                .map(|c| c.end_ms)
                .max()
                .unwrap_or(since_ms);
            if let Err(e) = store
                .end_open_vantage_episodes(&node.vantage, own_end, now)
                .await
            {
                tracing::warn!(error = %e, "cannot end this vantage's episodes left open");
            }
        }
        let coverage: Vec<crate::domain::CoverageSpan> = coverage
            .into_iter()
            .filter(|c| !shared || c.vantage.as_ref().is_none_or(|v| !others.contains(v)))
            .collect();
        let mut obs: Vec<Observation> = stored
            .iter()
            .filter(|o| {
                !shared
                    || o.obs.source != crate::domain::Source::Probe
                    || !others.contains(&o.obs.vantage)
            })
            .map(|o| crate::period::counted(o, &self.settings))
            .collect();
        obs.sort_by(|a, b| {
            (a.received_at_ms, &a.request_id).cmp(&(b.received_at_ms, &b.request_id))
        });
        let mut by_series: BTreeMap<(EstablishmentCode, Interface), Vec<&Observation>> =
            BTreeMap::new();
        for o in engine::dedupe::one_request_once(obs.iter().collect()) {
            by_series
                .entry((o.establishment, o.interface))
                .or_default()
                .push(o);
        }
        let mut known = std::collections::BTreeSet::new();
        let mut covered_until: BTreeMap<(EstablishmentCode, Interface), i64> = BTreeMap::new();
        for ((est, iface), series) in &by_series {
            let cov = engine::coverage::of_series(&coverage, est, *iface, series, (from, since_ms));
            if let Some(end) = cov.spans.last().map(|s| s.1) {
                covered_until.insert((*est, *iface), end);
            }
            // A span reaching the restart (a gateway log, another monitor) carries on live: no
            // gap there. Any other ends before this run began: a gap, so what it left down is
            // cut there (the engine calls the last span's episode open only while the data ends
            // with it, and this run's coverage follows).
            let carried = cov.spans.last().filter(|s| s.1 >= since_ms).map(|s| s.0);
            for e in engine::episodes::detect(series, &self.settings, &cov) {
                if carried.is_some_and(|c| e.start_ms >= c) {
                    continue;
                }
                // Shared: the quorum raised and resolves what its episodes made (its key may be
                // one of these ids while the others still see the outage).
                if shared {
                    continue;
                }
                known.insert(e.id());
                self.unqueued.push_back(Unqueued::Raise(down_alert(&e, tz)));
                self.unqueued.push_back(Unqueued::Resolve {
                    key: e.id(),
                    end_ms: e.end_ms,
                    text: if e.cut || e.open {
                        cut_text(&e, tz)
                    } else {
                        recovery_text(&e, tz)
                    },
                    duration_s: e.duration_s(),
                });
            }
            if let Some(c) = carried {
                for o in series.iter().filter(|o| o.received_at_ms >= c) {
                    self.push(store, o, ids, now).await;
                }
            }
        }
        let open: Vec<String> = self.open_episodes().map(Episode::id).collect();
        for a in firing {
            // Shared: what fires is the quorum's, judged at each heartbeat.
            if shared || known.contains(&a.key) || open.contains(&a.key) {
                continue;
            }
            // Firing from an earlier run, its episode beyond the look-back: that run's coverage
            // ended before this one began.
            let series = a
                .establishment
                .as_deref()
                .and_then(|e| e.parse::<EstablishmentCode>().ok())
                .zip(
                    a.interface
                        .as_deref()
                        .and_then(|i| i.parse::<Interface>().ok()),
                );
            let end = series
                .and_then(|s| covered_until.get(&s).copied())
                .unwrap_or(a.starts_at_ms)
                .max(a.starts_at_ms);
            let text = match series {
                Some((establishment, interface)) => cut_text(
                    &Episode {
                        establishment,
                        interface,
                        start_ms: a.starts_at_ms,
                        end_ms: end,
                        open: false,
                        cut: true,
                        began_before_period: false,
                        request_ids: vec![],
                        ended_by: None,
                        planned_s: 0.0,
                    },
                    tz,
                ),
                None => "Monitoring was interrupted: the episode is cut where it stopped.".into(),
            };
            self.unqueued.push_back(Unqueued::Resolve {
                key: a.key.clone(),
                end_ms: end,
                text,
                duration_s: (end - a.starts_at_ms) as f64 / 1000.0,
            });
        }
        self.queue(store, ids, now).await;
        if !stored.is_empty() {
            tracing::info!(observations = stored.len(), from = %time::rfc3339(from), "replayed recent observations for live detection");
        }
        stored.len()
    }

    /// When the monitor stops: every episode still open is cut where the series' coverage
    /// ended (the heartbeat the daemon closed), as `kpi` will count it.
    pub async fn stopped(&mut self, store: &Store, ids: &[String]) {
        let now = chrono::Utc::now().timestamp_millis();
        let open: Vec<(EstablishmentCode, Interface, i64)> = self
            .open_episodes()
            .map(|e| (e.establishment, e.interface, e.start_ms))
            .collect();
        let me = self.node.as_ref().map(|n| n.vantage.clone());
        for (est, iface, start) in open {
            // This node's coverage and the logs': another node's runs on.
            let end = store
                .coverage(start, now + 1, now)
                .await
                .unwrap_or_default()
                .iter()
                .filter(|c| c.covers(&est, iface) && me.as_ref().is_none_or(|v| !of_other(c, v)))
                .map(|c| c.end_ms)
                .max()
                .unwrap_or(now);
            self.cut(store, (est, iface), end, ids, now).await;
        }
    }

    /// Episodes open now.
    pub fn open_episodes(&self) -> impl Iterator<Item = &Episode> {
        self.series.values().flat_map(|s| s.tracker.open_episodes())
    }

    /// A coverage gap of `series` begins at `at_ms`: the episode open there is cut (resolved,
    /// saying monitoring was interrupted), and failures after need their own five.
    async fn cut(
        &mut self,
        store: &Store,
        series: (EstablishmentCode, Interface),
        at_ms: i64,
        ids: &[String],
        now: i64,
    ) {
        let Some(s) = self.series.get_mut(&series) else {
            return;
        };
        let old = std::mem::replace(&mut s.tracker, EpisodeTracker::new(&self.settings));
        for still in old.finish() {
            let mut e = still.episode;
            e.end_ms = at_ms.max(e.start_ms);
            e.open = false;
            e.cut = true;
            self.publish(store, series, false, e.start_ms, Some(e.end_ms), now)
                .await;
            if self.shared(store, series, e.start_ms, now).await {
                self.judge(store, series, ids, now).await;
                continue;
            }
            self.unqueued.push_back(Unqueued::Resolve {
                key: e.id(),
                end_ms: e.end_ms,
                text: cut_text(&e, self.settings.tz),
                duration_s: e.duration_s(),
            });
        }
        self.queue(store, ids, now).await;
    }

    /// One observation: raises the alert of an episode that opens, resolves the one that ends.
    pub async fn push(&mut self, store: &Store, o: &Observation, ids: &[String], now: i64) {
        let tz = self.settings.tz;
        let key = (o.establishment, o.interface);
        let probe = o.source == crate::domain::Source::Probe;
        let settings = &self.settings;
        let s = self.series.entry(key).or_insert_with(|| SeriesLive {
            tracker: EpisodeTracker::new(settings),
            gap: None,
        });
        if probe && o.outcome == Outcome::ProbeError {
            // The monitor cannot see the bank: not covered from here (methodology 1).
            if s.gap.is_none() {
                s.gap = Some(o.received_at_ms);
                self.publish(store, key, true, o.received_at_ms, None, now)
                    .await;
                self.cut(store, key, o.received_at_ms, ids, now).await;
            }
            return;
        }
        if probe && let Some(since) = s.gap.take() {
            self.publish(store, key, true, since, Some(o.received_at_ms), now)
                .await;
        }
        let s = self.series.get_mut(&key).expect("just inserted");
        match s.tracker.push(o) {
            Some(LiveEvent::Opened(e)) => {
                // Alone on the series: alerted at once, as ever, then published. Shared: published,
                // then the quorum decides.
                if self.shared(store, key, e.start_ms, now).await {
                    self.publish(store, key, false, e.start_ms, None, now).await;
                    self.judge(store, key, ids, now).await;
                    self.queue(store, ids, now).await;
                } else {
                    self.unqueued.push_back(Unqueued::Raise(down_alert(&e, tz)));
                    self.queue(store, ids, now).await;
                    self.publish(store, key, false, e.start_ms, None, now).await;
                }
            }
            Some(LiveEvent::Closed(e)) => {
                if self.shared(store, key, e.start_ms, now).await {
                    self.publish(store, key, false, e.start_ms, Some(e.end_ms), now)
                        .await;
                    self.judge(store, key, ids, now).await;
                    self.queue(store, ids, now).await;
                } else {
                    self.unqueued.push_back(Unqueued::Resolve {
                        key: e.id(),
                        end_ms: e.end_ms,
                        text: recovery_text(&e, tz),
                        duration_s: e.duration_s(),
                    });
                    self.queue(store, ids, now).await;
                    self.publish(store, key, false, e.start_ms, Some(e.end_ms), now)
                        .await;
                }
            }
            None => self.queue(store, ids, now).await,
        }
    }

    /// Puts what waits into the outbox, in order; stops at the first refusal (a resolution
    /// never goes before its alert) and keeps the rest for the next observation.
    async fn queue(&mut self, store: &Store, ids: &[String], now: i64) {
        while let Some(next) = self.unqueued.front() {
            let done = match next {
                Unqueued::Raise(a) => store.raise_alert(a, ids, now).await.map(|new| {
                    if new {
                        tracing::error!(alert = %a.key, since = %time::rfc3339(a.starts_at_ms), "{}", a.summary);
                    }
                }),
                Unqueued::Resolve {
                    key,
                    end_ms,
                    text,
                    duration_s,
                } => store
                    .resolve_alert(key, *end_ms, Some(text.clone()), ids, now)
                    .await
                    .map(|resolved| {
                        if resolved {
                            tracing::warn!(alert = %key, duration_s, "interface available again");
                        }
                    }),
            };
            match done {
                Ok(()) => {
                    self.unqueued.pop_front();
                }
                Err(err) => {
                    tracing::error!(error = %err, waiting = self.unqueued.len(), "cannot queue the alert; retried with the next observation");
                    return;
                }
            }
        }
    }
}

/// The monitor's own errors (not counted in any figure): one alert per establishment while its
/// probes keep failing on our side, resolved by the next probe that gets an answer or a
/// countable failure.
struct ProbeErrors {
    /// Establishments with a firing `probe_error` alert, and the keys of this node's (raised by
    /// it, or left firing by an earlier run): another node sharing the store resolves its own.
    firing: std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
    /// The firing `monitor_offline` alert: everything failed at once and the canaries too
    /// ([`crate::probe::canary`]). One alert for the monitor, none per establishment.
    offline: Option<String>,
}

impl ProbeErrors {
    /// Picks up the alerts an earlier run left firing.
    async fn load(store: &Store) -> Self {
        let mut firing: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
            Default::default();
        for a in store.firing_alerts("probe_error").await.unwrap_or_default() {
            if let Some(e) = a.establishment {
                firing.entry(e).or_default().insert(a.key);
            }
        }
        let offline = store
            .firing_alerts("monitor_offline")
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|a| a.key)
            .next();
        Self { firing, offline }
    }

    async fn push(&mut self, store: &Store, o: &StoredObservation, ids: &[String], now: i64) {
        let code = o.obs.establishment.to_string();
        if o.obs.outcome == Outcome::ProbeError {
            // A probe cut short by the monitor's own shutdown is no fault.
            let interrupted = o
                .error_text
                .as_deref()
                .is_some_and(|t| t.starts_with("interrupted"));
            if interrupted {
                return;
            }
            let offline = o
                .error_text
                .as_deref()
                .is_some_and(|t| t.starts_with(crate::probe::canary::OFFLINE));
            if offline {
                if self.offline.is_none() {
                    let a = monitor_offline_alert(o);
                    match store.raise_alert(&a, ids, now).await {
                        Ok(_) => self.offline = Some(a.key),
                        Err(e) => tracing::error!(error = %e, "cannot queue the alert"),
                    }
                }
                return;
            }
            if self.firing.contains_key(&code) {
                return;
            }
            let a = probe_error_alert(o);
            match store.raise_alert(&a, ids, now).await {
                Ok(_) => {
                    self.firing.entry(code).or_default().insert(a.key);
                }
                Err(e) => tracing::error!(error = %e, "cannot queue the alert"),
            }
        } else if o.probe_id.is_some() {
            if let Some(key) = self.offline.take() {
                let at = o.obs.completed_at_ms().unwrap_or(o.obs.received_at_ms);
                let text = format!(
                    "The monitor reaches the banks again since {}; the time it was offline is \
                     unmonitored (neither uptime nor downtime).",
                    time::rfc3339(at)
                );
                if let Err(e) = store.resolve_alert(&key, at, Some(text), ids, now).await {
                    tracing::error!(error = %e, "cannot queue the resolution");
                    self.offline = Some(key);
                }
            }
            // A refused token request (a refresh token the bank refuses, tried again after a
            // backoff) shows no probe working again: the alert stays until one does.
            let refused_token = o.obs.service.as_str() == crate::domain::Service::TOKEN
                && o.obs.outcome == Outcome::Rejected;
            if refused_token {
                return;
            }
            let Some(keys) = self.firing.remove(&code) else {
                return;
            };
            let at = o.obs.completed_at_ms().unwrap_or(o.obs.received_at_ms);
            let r = store
                .resolve_firing_except(
                    "probe_error",
                    |a| !keys.contains(&a.key),
                    &format!("The probes work again since {}.", time::rfc3339(at)),
                    ids,
                    now,
                )
                .await;
            if let Err(e) = r {
                tracing::error!(error = %e, "cannot queue the resolution");
            }
        }
    }
}

/// The monitor cannot reach the banks nor its canaries: its own network, resolver or TLS.
pub fn monitor_offline_alert(o: &StoredObservation) -> Alert {
    Alert {
        key: format!("monitor_offline/{}", o.obs.received_at_ms),
        kind: "monitor_offline".into(),
        severity: Severity::Critical,
        establishment: None,
        interface: None,
        summary: "the monitor is offline: no establishment answers and no canary either".into(),
        description: format!(
            "Every establishment fails at once and the canaries fail too, so the fault is the \
             monitor's (its network, name resolution or TLS), not the banks': its failed requests are \
             recorded as its own errors (probe_error), not covered, outside every figure, and no \
             interface_down alert is raised for them. First: {}",
            o.error_text
                .as_deref()
                .unwrap_or("unknown")
                .chars()
                .take(500)
                .collect::<String>()
        ),
        starts_at_ms: o.obs.received_at_ms,
        ends_at_ms: None,
    }
}

pub fn probe_error_alert(o: &StoredObservation) -> Alert {
    Alert {
        key: format!(
            "probe_error/{}/{}",
            o.obs.establishment, o.obs.received_at_ms
        ),
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
            o.error_text
                .as_deref()
                .unwrap_or("unknown")
                .chars()
                .take(500)
                .collect::<String>()
        ),
        starts_at_ms: o.obs.received_at_ms,
        ends_at_ms: None,
    }
}

#[cfg(test)]
mod tests {
    //! The live detector against a real store, with explicit clock values.

    use super::*;

    async fn store(name: &str) -> Store {
        crate::alert::test_support::store("live", name).await
    }

    use crate::alert::test_support::obs;

    fn events(d: &[crate::store::PendingDelivery]) -> Vec<(&str, &str)> {
        d.iter()
            .map(|d| (d.notice.event.as_str(), d.notice.alert.key.as_str()))
            .collect()
    }

    // 2024-11-05T10:00:00Z
    const T0: i64 = 1_730_800_800_000;

    #[test]
    fn merged_sources_go_in_the_batch_order_once_the_gateway_had_its_time() {
        // A wait of 3 s: probes at 0 and 2 s arrive first, a TPP's request that began at 1 s
        // comes from the follower later; released at 3 s after each began, in time order.
        let mut m = Merge::new(std::time::Duration::from_secs(3));
        let o = |at: i64, id: &str| StoredObservation::from(obs(T0 + at, id, Interface::Api, None));
        m.push(o(2_000, "p2"));
        m.push(o(0, "p0"));
        assert_eq!(m.next_due_ms(), Some(T0 + 3_000));
        assert!(m.release(T0 + 2_999).is_empty());
        m.push(o(1_000, "tpp1"));
        m.push(o(1_000, "a-same-time")); // ties by request id, as the batch sorts
        let ids = |v: Vec<StoredObservation>| -> Vec<String> {
            v.iter().map(|o| o.obs.request_id.to_string()).collect()
        };
        assert_eq!(ids(m.release(T0 + 3_000)), ["p0"]);
        assert_eq!(ids(m.release(T0 + 4_000)), ["a-same-time", "tpp1"]);
        m.push(o(9_000, "late"));
        assert_eq!(ids(m.drain()), ["p2", "late"]);
        assert_eq!(m.next_due_ms(), None);
        // Without followed logs nothing waits.
        let mut m = Merge::new(std::time::Duration::ZERO);
        m.push(o(5_000, "x"));
        assert_eq!(ids(m.release(T0 + 5_000)), ["x"]);
    }

    #[tokio::test]
    async fn the_fifth_failure_fires_and_the_next_reply_resolves() {
        let s = store("fire").await;
        let ch = ["hook".to_string()];
        let mut ep = Episodes::new(&Settings::default());
        // No reply at 0, 7, 14, 21, 28 s: five within 28 s, the fifth opens the episode.
        for i in 0..5 {
            let o = obs(T0 + i * 7_000, &format!("r{i}"), Interface::Api, None);
            ep.push(&s, &o, &ch, o.received_at_ms).await;
            let due = s.due_deliveries(i64::MAX, 10).await.unwrap();
            assert_eq!(due.len(), usize::from(i == 4), "after failure {i}");
        }
        let due = s.due_deliveries(i64::MAX, 10).await.unwrap();
        assert_eq!(events(&due), [("firing", "13807-api-20241105T100000.000Z")]);
        let a = &due[0].notice.alert;
        assert_eq!(a.severity, Severity::Critical);
        // 10:00:00Z is 11:00:00 in Paris (CET).
        assert!(
            a.summary
                .starts_with("dedicated interface of 13807 (BPGO) deemed unavailable since 2024-11-05 11:00:00 CET"),
            "{}",
            a.summary
        );
        assert!(a.description.contains("r0, r1, r2, r3, r4"));
        s.mark_delivered(due[0].id, T0 + 29_000).await.unwrap();
        // More failures: nothing new (one alert per episode).
        let o = obs(T0 + 35_000, "r5", Interface::Api, None);
        ep.push(&s, &o, &ch, T0 + 35_000).await;
        assert!(s.due_deliveries(i64::MAX, 10).await.unwrap().is_empty());
        // A 200 received at 42 s, completed 200 ms later: down 42.2 s.
        let o = obs(T0 + 42_000, "r6", Interface::Api, Some(200));
        ep.push(&s, &o, &ch, T0 + 42_300).await;
        let due = s.due_deliveries(i64::MAX, 10).await.unwrap();
        assert_eq!(
            events(&due),
            [("resolved", "13807-api-20241105T100000.000Z")]
        );
        assert_eq!(due[0].notice.alert.ends_at_ms, Some(T0 + 42_200));
        assert!(
            due[0].notice.alert.description.contains("after 42.2 s"),
            "{}",
            due[0].notice.alert.description
        );
    }

    async fn refuse_notices(s: &Store, refuse: bool) {
        let sql = if refuse {
            "CREATE TRIGGER refuse BEFORE INSERT ON alert_deliveries \
             BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END"
        } else {
            "DROP TRIGGER refuse"
        };
        sqlx::query(sql).execute(s.pool()).await.unwrap();
    }

    #[tokio::test]
    async fn an_alert_the_database_refused_goes_in_with_the_next_observation() {
        let s = store("refused").await;
        let ch = ["hook".to_string()];
        let mut ep = Episodes::new(&Settings::default());
        // The outbox refuses notices while the outage is confirmed: no reply at 0, 5, 10, 15,
        // 20 s opens the episode at the fifth, and its alert cannot be queued.
        refuse_notices(&s, true).await;
        for i in 0..5 {
            let o = obs(T0 + i * 5_000, &format!("r{i}"), Interface::Api, None);
            ep.push(&s, &o, &ch, o.received_at_ms).await;
        }
        assert!(s.all_firing_alerts().await.unwrap().is_empty());
        // Writable again: the next observation, a sixth failure (no new event), brings it in.
        refuse_notices(&s, false).await;
        let o = obs(T0 + 25_000, "r5", Interface::Api, None);
        ep.push(&s, &o, &ch, o.received_at_ms).await;
        let due = s.due_deliveries(i64::MAX, 10).await.unwrap();
        assert_eq!(events(&due), [("firing", "13807-api-20241105T100000.000Z")]);
        s.mark_delivered(due[0].id, T0 + 26_000).await.unwrap();
        // Refused again at recovery (a reply at 30 s, completed at 30.2 s): the resolution
        // waits for the next observation, with the episode's own end.
        refuse_notices(&s, true).await;
        let o = obs(T0 + 30_000, "ok1", Interface::Api, Some(200));
        ep.push(&s, &o, &ch, T0 + 30_300).await;
        assert_eq!(s.all_firing_alerts().await.unwrap().len(), 1);
        refuse_notices(&s, false).await;
        let o = obs(T0 + 35_000, "ok2", Interface::Api, Some(200));
        ep.push(&s, &o, &ch, T0 + 35_300).await;
        assert!(s.all_firing_alerts().await.unwrap().is_empty());
        let due = s.due_deliveries(i64::MAX, 10).await.unwrap();
        assert_eq!(
            events(&due),
            [("resolved", "13807-api-20241105T100000.000Z")]
        );
        assert_eq!(due[0].notice.alert.ends_at_ms, Some(T0 + 30_200));
    }

    #[tokio::test]
    async fn four_failures_then_a_fifth_after_30_s_fire_nothing() {
        let s = store("window").await;
        let mut ep = Episodes::new(&Settings::default());
        // 0, 7.5, 15, 22.5, 30.001 s: the fifth comes 30.001 s after the first (over 30 s).
        for (i, at) in [0, 7_500, 15_000, 22_500, 30_001].into_iter().enumerate() {
            let o = obs(T0 + at, &format!("r{i}"), Interface::Api, None);
            ep.push(&s, &o, &["hook".into()], T0 + at).await;
        }
        assert!(s.due_deliveries(i64::MAX, 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_restart_during_an_outage_cuts_its_episode_at_the_last_heartbeat() {
        let s = store("restart").await;
        let ch = ["hook".to_string()];
        // A monitor ran from now - 60 s, beat last at now - 12 s, then was killed; failures
        // every 5 s from now - 60 s to now - 5 s were recorded and the first run alerted.
        let now = chrono::Utc::now().timestamp_millis();
        let start = now - 60_000;
        let series = [("13807".parse().unwrap(), Interface::Api)];
        let hb = s.start_monitor("m", &series, start).await.unwrap();
        s.beat(hb, now - 12_000).await.unwrap();
        let rows: Vec<StoredObservation> = (0..12)
            .map(|i| obs(start + i * 5_000, &format!("f{i}"), Interface::Api, None).into())
            .collect();
        s.insert_observations(&rows[..]).await.unwrap();
        let mut first = Episodes::new(&Settings::default());
        for r in &rows {
            first.push(&s, &r.obs, &ch, now).await;
        }
        assert_eq!(s.all_firing_alerts().await.unwrap().len(), 1);
        // The monitor restarts: the episode is cut at the last heartbeat, saying so.
        // (Its lock proves the killed run over: closed however fresh its heartbeat.)
        s.end_earlier_runs("m", now, i64::MAX).await.unwrap();
        let mut second = Episodes::new(&Settings::default());
        assert_eq!(second.replay(&s, &ch, now).await, 12);
        assert!(s.all_firing_alerts().await.unwrap().is_empty());
        let due = s.due_deliveries(i64::MAX, 10).await.unwrap();
        assert_eq!(events(&due).len(), 1, "the firing notice first");
        s.mark_delivered(due[0].id, now).await.unwrap();
        let due = s.due_deliveries(i64::MAX, 10).await.unwrap();
        let resolved = &due[0].notice;
        assert_eq!(resolved.event, crate::alert::Event::Resolved);
        let id = format!(
            "13807-api-{}",
            time::utc(start).format("%Y%m%dT%H%M%S%.3fZ")
        );
        assert_eq!(resolved.alert.key, id);
        assert_eq!(resolved.alert.ends_at_ms, Some(now - 12_000));
        assert!(
            resolved.alert.description.contains("was interrupted"),
            "{}",
            resolved.alert.description
        );
        // Failures after the restart need their own five: a new episode, a new alert.
        for i in 0..5 {
            let o = obs(
                now + 1_000 + i * 1_000,
                &format!("g{i}"),
                Interface::Api,
                None,
            );
            second.push(&s, &o, &ch, now).await;
            let firing = s.all_firing_alerts().await.unwrap().len();
            assert_eq!(firing, usize::from(i == 4), "after failure {i}");
        }
        let firing = s.all_firing_alerts().await.unwrap();
        assert_eq!(firing[0].starts_at_ms, now + 1_000);
    }

    /// Nodes `a` and `b`, both probing 13807's API since `now` - 60 s (heartbeats still fresh),
    /// sharing `s`; quorum majority, a 30 s window.
    async fn two_nodes(s: &Store, now: i64) -> (Episodes, Episodes) {
        let series = [("13807".parse().unwrap(), Interface::Api)];
        let node = |n: &str| super::super::quorum::Node {
            vantage: crate::domain::Vantage::new(n).unwrap(),
            quorum: Default::default(),
            grace_ms: 30_000,
            tz: chrono_tz::Europe::Paris,
            probes: series.to_vec(),
        };
        for n in ["a", "b"] {
            let hb = s.start_monitor(n, &series, now - 60_000).await.unwrap();
            s.beat(hb, now).await.unwrap();
        }
        let e = |n| Episodes::new(&Settings::default()).shared_as(node(n));
        (e("a"), e("b"))
    }

    /// A probe of node `n`.
    fn probe(n: &str, at: i64, id: &str, status: Option<u16>) -> Observation {
        let mut o = obs(at, id, Interface::Api, status);
        o.source = crate::domain::Source::Probe;
        o.vantage = crate::domain::Vantage::new(n).unwrap();
        o
    }

    fn key(at: i64) -> String {
        format!("13807-api-{}", time::utc(at).format("%Y%m%dT%H%M%S%.3fZ"))
    }

    #[tokio::test]
    async fn two_nodes_alert_once_when_both_see_it_and_a_lone_one_is_a_fault() {
        let s = store("nodes").await;
        let ch = ["hook".to_string()];
        let now = chrono::Utc::now().timestamp_millis();
        let (mut a, mut b) = two_nodes(&s, now).await;
        // a: no reply at -50, -45, ... -30 s: its episode opens (from -50 s), b sees nothing
        // yet: 1 of 2 covering, no downtime; a's fault waits 30 s past its confirmation.
        for i in 0..5 {
            let o = probe("a", now - 50_000 + i * 5_000, &format!("a{i}"), None);
            a.push(&s, &o, &ch, now).await;
        }
        let f = s.all_firing_alerts().await.unwrap();
        assert!(f.is_empty(), "{f:#?}");
        // b: the same from -49 s: 2 of 2 from there, one alert keyed at -49 s.
        for i in 0..5 {
            let o = probe("b", now - 49_000 + i * 5_000, &format!("b{i}"), None);
            b.push(&s, &o, &ch, now).await;
        }
        a.tick(&s, &ch, now).await;
        b.tick(&s, &ch, now).await;
        let firing = s.all_firing_alerts().await.unwrap();
        let keys: Vec<&str> = firing.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(keys, [key(now - 49_000)]);
        // a's reply at -20 s (200 ms): 1 of 2 from -19.8 s, the alert resolved there.
        let o = probe("a", now - 20_000, "a-ok", Some(200));
        a.push(&s, &o, &ch, now).await;
        assert!(s.all_firing_alerts().await.unwrap().is_empty());
        let due = s.due_deliveries(i64::MAX, 10).await.unwrap();
        let resolved: Vec<Option<i64>> = due
            .iter()
            .map(|d| d.notice.alert.ends_at_ms)
            .filter(Option::is_some)
            .collect();
        assert!(resolved.is_empty(), "the firing notice first");
        s.mark_delivered(due[0].id, now).await.unwrap();
        let due = s.due_deliveries(i64::MAX, 10).await.unwrap();
        assert_eq!(due[0].notice.alert.ends_at_ms, Some(now - 19_800));
        // b still down alone: its fault, from -19.8 s, is alerted 30 s after the later of its
        // start and b's confirmation (its episode published at `now`).
        b.tick(&s, &ch, now + 29_999).await;
        assert!(s.all_firing_alerts().await.unwrap().is_empty());
        b.tick(&s, &ch, now + 30_000).await;
        let firing = s.all_firing_alerts().await.unwrap();
        assert_eq!(firing.len(), 1);
        assert_eq!(firing[0].kind, "vantage_fault");
        assert_eq!(
            firing[0].key,
            format!("vantage_fault/b/{}", key(now - 19_800))
        );
        // a's own tick raises no fault of b's.
        a.tick(&s, &ch, now + 30_100).await;
        assert_eq!(s.all_firing_alerts().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_node_restarted_mid_outage_leaves_the_quorums_alert_to_the_quorum() {
        let s = store("restart-shared").await;
        let ch = ["hook".to_string()];
        let now = chrono::Utc::now().timestamp_millis();
        let (mut a, mut b) = two_nodes(&s, now).await;
        // b fails from -52 s, a from -50 s: down from -50 s (2 of 2), keyed there, a's own
        // episode id too.
        let mut rows = Vec::new();
        for (n, from) in [("b", now - 52_000), ("a", now - 50_000)] {
            for i in 0..5 {
                let o = probe(n, from + i * 5_000, &format!("{n}{i}"), None);
                let node = if n == "a" { &mut a } else { &mut b };
                node.push(&s, &o, &ch, now).await;
                rows.push(StoredObservation::from(o));
            }
        }
        s.insert_observations(&rows[..]).await.unwrap();
        let firing = || async { s.all_firing_alerts().await.unwrap() };
        assert_eq!(firing().await[0].key, key(now - 50_000));
        // a is killed and restarts at +1 s while b runs on: its replay settles its own
        // episode (cut at its last beat, `now`) but resolves nothing: b alone still sees it down.
        s.end_earlier_runs("a", now + 1_000, i64::MAX)
            .await
            .unwrap();
        let mut a = Episodes::new(&Settings::default()).shared_as(a.node.clone().unwrap());
        a.replay(&s, &ch, now + 1_000).await;
        b.tick(&s, &ch, now + 1_500).await;
        let keys: Vec<String> = firing().await.into_iter().map(|a| a.key).collect();
        assert_eq!(keys, [key(now - 50_000)]);
    }

    #[tokio::test]
    async fn a_node_failing_on_its_own_side_leaves_the_other_to_decide() {
        let s = store("blind").await;
        let ch = ["hook".to_string()];
        let now = chrono::Utc::now().timestamp_millis();
        let (mut a, mut b) = two_nodes(&s, now).await;
        // b cannot see the bank from -55 s (its own error): it covers nothing from there.
        let mut o = probe("b", now - 55_000, "b-err", None);
        o.outcome = Outcome::ProbeError;
        b.push(&s, &o, &ch, now).await;
        // a's five failures from -50 s: it is the only covering vantage, so down at once.
        for i in 0..5 {
            let o = probe("a", now - 50_000 + i * 5_000, &format!("a{i}"), None);
            a.push(&s, &o, &ch, now).await;
        }
        let firing = s.all_firing_alerts().await.unwrap();
        let keys: Vec<&str> = firing.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(keys, [key(now - 50_000)]);
    }

    #[tokio::test]
    async fn an_alert_an_earlier_run_left_firing_is_resolved_as_interrupted() {
        let s = store("stale").await;
        let ch = ["hook".to_string()];
        // An episode of eight days ago, never resolved (beyond the replay's reach).
        let now = chrono::Utc::now().timestamp_millis();
        let e = Episode {
            establishment: "13807".parse().unwrap(),
            interface: Interface::Api,
            start_ms: now - 8 * 86_400_000,
            end_ms: now - 8 * 86_400_000,
            open: true,
            cut: false,
            began_before_period: false,
            request_ids: vec![],
            ended_by: None,
            planned_s: 0.0,
        };
        s.raise_alert(&down_alert(&e, chrono_tz::Europe::Paris), &ch, now)
            .await
            .unwrap();
        let mut ep = Episodes::new(&Settings::default());
        ep.replay(&s, &ch, now).await;
        assert!(s.all_firing_alerts().await.unwrap().is_empty());
    }
}

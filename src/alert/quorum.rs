//! Live alerts across vantage points (methodology section 10). Several `dispo run` nodes, each
//! its own vantage (`[monitor] id`), share one store: each publishes its own episodes per series
//! ([`Store::publish_vantage_episode`]), and any node judges the series from every vantage's
//! published episodes and heartbeat coverage with the engine's [`combine`]. The interface is down
//! while the quorum holds: one `interface_down` alert per down span, keyed by the series and the
//! instant the quorum was reached (computed from the stored states, so every node derives the
//! same key, and the outbox keeps one row whichever node writes it first); resolved once the
//! quorum no longer holds. A node in an episode without the quorum raises a `vantage_fault` for
//! its own vantage, once the others have had the time to confirm (`window_ms` past both the
//! fault's start and its own confirmation), and resolves it when the fault ends.
//!
//! With one vantage covering the series nothing here runs: the detector alerts as it always did.

use chrono_tz::Tz;

use super::live::{cut_text, down_alert, name, recovery_text};
use super::{Alert, Severity};
use crate::domain::{CoverageKind, CoverageSpan, EstablishmentCode, Interface, Vantage};
use crate::engine::intervals::{self, Span};
use crate::engine::vantage::{VantageQuorum, View, combine, is_run_of};
use crate::engine::{Episode, time};
use crate::store::coverage::STALE_HEARTBEAT_MS;
use crate::store::{Store, StoreError, VantageEpisode};

/// The alert kind of an outage seen from a minority of vantages.
pub const VANTAGE_FAULT: &str = "vantage_fault";

/// How far back the published episodes and coverage are read to judge a series now.
pub const RECENT_MS: i64 = 10 * 60_000;

/// This node as a vantage.
#[derive(Debug, Clone)]
pub struct Node {
    /// Its `[monitor] id`.
    pub vantage: Vantage,
    pub quorum: VantageQuorum,
    /// The counting window (`window_ms`): how long another vantage needs to confirm an outage
    /// after its first failure, so how long a fault waits before it is alerted.
    pub grace_ms: i64,
    pub tz: Tz,
    /// The series this node probes: its vantage there; elsewhere it only reads gateway logs.
    pub probes: Vec<(EstablishmentCode, Interface)>,
}

type Series = (EstablishmentCode, Interface);

impl Node {
    /// The vantage this node's episodes of `series` are published under.
    pub fn vantage_of(&self, series: Series) -> Vantage {
        if self.probes.contains(&series) {
            self.vantage.clone()
        } else {
            Vantage::gateway()
        }
    }

    /// Whether some other node's heartbeats covered `series` at any time in `[from_ms, now_ms]`:
    /// then the quorum decides; otherwise this node alone does, as it always did.
    pub async fn others_cover(
        &self,
        store: &Store,
        series: Series,
        from_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        // Read from where a running node may have beaten last (its heartbeat every
        // `heartbeat_s`, up to the stale delay), its coverage running to now.
        let read_from = from_ms.min(now_ms - STALE_HEARTBEAT_MS);
        Ok(store
            .coverage(read_from, now_ms + 1, now_ms)
            .await?
            .iter()
            .any(|c| {
                c.kind == CoverageKind::Monitor
                    && c.end_ms >= from_ms
                    && !is_run_of(c, &self.vantage)
                    && c.covers(&series.0, series.1)
            }))
    }
}

/// What the stored states say of one series at `now_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// The down spans (sorted, maximal); one reaching `now_ms` means down now.
    pub down: Vec<Span>,
    /// This node's vantage fault spans.
    pub own_faults: Vec<Span>,
    /// This node's open episode: (start, when it confirmed it).
    pub own_open: Option<(i64, i64)>,
    /// Every vantage covering now, and those of them in an episode now.
    pub covering: Vec<Vantage>,
    pub failing: Vec<Vantage>,
    /// The union of every vantage's coverage (where a down span ending inside it recovered,
    /// elsewhere monitoring stopped).
    pub covered: Vec<Span>,
}

impl Judgement {
    /// The start of the down span reaching `now_ms`, if down now.
    pub fn down_since(&self, now_ms: i64) -> Option<i64> {
        self.down.last().filter(|s| s.1 >= now_ms).map(|s| s.0)
    }
    /// The start of this node's fault reaching `now_ms`, if any.
    pub fn own_fault_since(&self, now_ms: i64) -> Option<i64> {
        self.own_faults
            .last()
            .filter(|s| s.1 >= now_ms)
            .map(|s| s.0)
    }
}

/// Judges `series` at `now_ms` from every node's coverage (as [`Store::coverage`] gives it)
/// and published episodes. Pure: the rule is the engine's
/// ([`combine`]); here only the views are built. A probing vantage's view is its heartbeats'
/// coverage plus the gateway logs' (the bank's side is seen from everywhere), and its episodes
/// (an open one lasting until now); with no probing vantage, the gateway is the only one.
pub fn judge(
    node: &Node,
    series: Series,
    coverage: &[CoverageSpan],
    episodes: &[VantageEpisode],
    now_ms: i64,
) -> Judgement {
    use std::collections::BTreeMap;
    let (est, iface) = series;
    let mut logs: Vec<Span> = Vec::new();
    let mut probing: BTreeMap<Vantage, Vec<Span>> = BTreeMap::new();
    for c in coverage.iter().filter(|c| c.covers(&est, iface)) {
        let span = (c.start_ms, c.end_ms);
        match c.kind {
            CoverageKind::Monitor => probing
                .entry(c.vantage.clone().unwrap_or_else(Vantage::unknown_monitor))
                .or_default()
                .push(span),
            CoverageKind::Log => logs.push(span),
        }
    }
    let spans_of = |v: &Vantage, gap: bool| -> Vec<Span> {
        intervals::merge(
            episodes
                .iter()
                .filter(|e| &e.vantage == v && e.gap == gap)
                .map(|e| (e.start_ms, e.end_ms.unwrap_or(now_ms).max(e.start_ms)))
                .filter(|s| s.1 > s.0)
                .collect(),
        )
    };
    // Its runs, less where its own probes failed on its side, and the logs (as the batch's
    // coverage of a vantage).
    let mut vantages: Vec<(Vantage, Vec<Span>)> = probing
        .into_iter()
        .map(|(v, spans)| {
            let mut spans = intervals::subtract(&intervals::merge(spans), &spans_of(&v, true));
            spans.extend(&logs);
            (v, intervals::merge(spans))
        })
        .collect();
    if vantages.is_empty() {
        vantages.push((Vantage::gateway(), intervals::merge(logs)));
    }
    let downs: Vec<Vec<Span>> = vantages.iter().map(|(v, _)| spans_of(v, false)).collect();
    let views: Vec<View<'_>> = vantages
        .iter()
        .zip(&downs)
        .map(|((v, covered), down)| View {
            vantage: v,
            covered,
            down,
        })
        .collect();
    let verdict = combine(node.quorum, &views);
    let me = node.vantage_of(series);
    let at = |spans: &[Span]| spans.iter().any(|s| s.0 <= now_ms && now_ms <= s.1);
    let mut covering = Vec::new();
    let mut failing = Vec::new();
    for ((v, covered), down) in vantages.iter().zip(&downs) {
        if at(covered) {
            covering.push(v.clone());
            if at(down) {
                failing.push(v.clone());
            }
        }
    }
    Judgement {
        down: verdict.down,
        own_faults: verdict
            .faults
            .iter()
            .filter(|(v, _)| *v == me)
            .map(|(_, s)| *s)
            .collect(),
        own_open: episodes
            .iter()
            .filter(|e| e.vantage == me && !e.gap && e.end_ms.is_none())
            .map(|e| (e.start_ms, e.opened_at_ms))
            .next_back(),
        covering,
        failing,
        covered: intervals::merge(vantages.iter().flat_map(|(_, c)| c.clone()).collect()),
    }
}

/// What to do about one series now, given its judgement and the alerts firing for it.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// The quorum holds since this instant and no `interface_down` fires for the series.
    RaiseDown { since_ms: i64 },
    /// The firing `interface_down` (this key) ended there; `cut` when monitoring stopped.
    ResolveDown { key: String, end_ms: i64, cut: bool },
    /// This node's fault, since then, waited its grace and is not alerted yet.
    RaiseFault { since_ms: i64 },
    /// This node's firing `vantage_fault` (this key) ended there.
    ResolveFault { key: String, end_ms: i64 },
}

/// The actions for `series` at `now_ms`: pure, so every node decides alike from the same
/// stored states.
pub fn decide(
    node: &Node,
    j: &Judgement,
    firing_down: &[Alert],
    firing_faults: &[Alert],
    now_ms: i64,
) -> Vec<Action> {
    let mut out = Vec::new();
    match j.down_since(now_ms) {
        Some(since_ms) => {
            if firing_down.is_empty() {
                out.push(Action::RaiseDown { since_ms });
            }
        }
        None => {
            for a in firing_down {
                // The down span it announced: the last one ending after it began.
                let end = j
                    .down
                    .iter()
                    .rev()
                    .find(|s| s.1 > a.starts_at_ms)
                    .map_or(now_ms, |s| s.1);
                let recovered = j.covered.iter().any(|c| c.0 <= end && end < c.1);
                out.push(Action::ResolveDown {
                    key: a.key.clone(),
                    end_ms: end.max(a.starts_at_ms),
                    cut: !recovered,
                });
            }
        }
    }
    match j.own_fault_since(now_ms) {
        Some(since_ms) => {
            let confirmed = j.own_open.map_or(since_ms, |(_, opened)| opened);
            if firing_faults.is_empty() && now_ms >= since_ms.max(confirmed) + node.grace_ms {
                out.push(Action::RaiseFault { since_ms });
            }
        }
        None => {
            for a in firing_faults {
                let end = j
                    .own_faults
                    .iter()
                    .rev()
                    .find(|s| s.1 > a.starts_at_ms)
                    .map_or(now_ms, |s| s.1);
                out.push(Action::ResolveFault {
                    key: a.key.clone(),
                    end_ms: end.max(a.starts_at_ms),
                });
            }
        }
    }
    out
}

fn series_of(a: &Alert) -> Option<Series> {
    Some((
        a.establishment.as_deref()?.parse().ok()?,
        a.interface.as_deref()?.parse().ok()?,
    ))
}

fn episode(series: Series, start_ms: i64, end_ms: i64) -> Episode {
    Episode {
        establishment: series.0,
        interface: series.1,
        start_ms,
        end_ms,
        open: false,
        cut: false,
        began_before_period: false,
        request_ids: vec![],
        ended_by: None,
        planned_s: 0.0,
    }
}

fn list(v: &[Vantage]) -> String {
    let names: Vec<&str> = v.iter().map(Vantage::as_str).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// The `interface_down` alert of a down span reached at `since_ms`: the key is the series and
/// that instant, as a single monitor's episode id.
pub fn quorum_down_alert(node: &Node, series: Series, since_ms: i64, j: &Judgement) -> Alert {
    let e = episode(series, since_ms, since_ms);
    let mut a = down_alert(&e, node.tz);
    a.description = format!(
        "Seen down from {} of the {} vantages covering it ({}; covering: {}; policy vantage_quorum = {}) \
         since {}: from each, five consecutive requests got no reply (or a bank error) within 30 s \
         (RTS 2018/389 Art. 33(1)). Notify the ACPR without delay (Art. 33(3)); TPPs may use the \
         fallback meanwhile (Art. 33(4)). Evidence: dispo evidence --episode {}",
        j.failing.len(),
        j.covering.len(),
        list(&j.failing),
        list(&j.covering),
        node.quorum,
        time::rfc3339(since_ms),
        e.id()
    );
    a
}

/// The `vantage_fault` alert of this node's fault since `since_ms`.
pub fn fault_alert(node: &Node, series: Series, since_ms: i64, j: &Judgement) -> Alert {
    let e = episode(series, since_ms, since_ms);
    let me = node.vantage_of(series);
    let others: Vec<Vantage> = j.covering.iter().filter(|v| **v != me).cloned().collect();
    Alert {
        key: format!("{VANTAGE_FAULT}/{me}/{}", e.id()),
        kind: VANTAGE_FAULT.into(),
        severity: Severity::Warning,
        establishment: Some(series.0.to_string()),
        interface: Some(series.1.to_string()),
        summary: format!(
            "vantage {me} sees the {} of {} down, the other vantages do not (since {})",
            series.1,
            name(series.0.as_str()),
            time::rfc3339(since_ms)
        ),
        description: format!(
            "From vantage {me} the {} of {} fails (an episode: consecutive failures within {} s), but \
             only {} of the {} vantages covering it see it down (the others: {}; policy vantage_quorum = {}): not \
             downtime, no interface_down. Most likely this node's own network or route to the bank: \
             check {me}'s connectivity. An interface_down alert follows if the others confirm.",
            series.1,
            name(series.0.as_str()),
            node.grace_ms as f64 / 1000.0,
            j.failing.len(),
            j.covering.len(),
            list(&others),
            node.quorum,
        ),
        starts_at_ms: since_ms,
        ends_at_ms: None,
    }
}

/// Judges `series` now from the store and writes what follows to the outbox (insert-or-ignore
/// by key, resolve-once): any node may do it, as often as it likes.
pub async fn evaluate(
    node: &Node,
    store: &Store,
    series: Series,
    ids: &[String],
    now_ms: i64,
) -> Result<(), StoreError> {
    let episodes = store.vantage_episodes(series, now_ms - RECENT_MS).await?;
    let from = episodes
        .iter()
        .map(|e| e.start_ms)
        .fold(now_ms - RECENT_MS, i64::min);
    let coverage = store.coverage(from, now_ms + 1, now_ms).await?;
    let j = judge(node, series, &coverage, &episodes, now_ms);
    let of_series = |a: &Alert| series_of(a) == Some(series);
    let firing_down: Vec<Alert> = store
        .firing_alerts("interface_down")
        .await?
        .into_iter()
        .filter(of_series)
        .collect();
    let prefix = format!("{VANTAGE_FAULT}/{}/", node.vantage_of(series));
    let firing_faults: Vec<Alert> = store
        .firing_alerts(VANTAGE_FAULT)
        .await?
        .into_iter()
        .filter(|a| of_series(a) && a.key.starts_with(&prefix))
        .collect();
    for action in decide(node, &j, &firing_down, &firing_faults, now_ms) {
        match action {
            Action::RaiseDown { since_ms } => {
                let a = quorum_down_alert(node, series, since_ms, &j);
                if store.raise_alert(&a, ids, now_ms).await? {
                    tracing::error!(alert = %a.key, since = %time::rfc3339(since_ms), vantages = %list(&j.failing), "{}", a.summary);
                }
            }
            Action::ResolveDown { key, end_ms, cut } => {
                let start = firing_down
                    .iter()
                    .find(|a| a.key == key)
                    .map_or(end_ms, |a| a.starts_at_ms);
                let mut e = episode(series, start, end_ms);
                e.cut = cut;
                let text = if cut {
                    cut_text(&e, node.tz)
                } else {
                    recovery_text(&e, node.tz)
                };
                if store
                    .resolve_alert(&key, end_ms, Some(text), ids, now_ms)
                    .await?
                {
                    tracing::warn!(alert = %key, duration_s = e.duration_s(), "interface available again (vantage quorum)");
                }
            }
            Action::RaiseFault { since_ms } => {
                let a = fault_alert(node, series, since_ms, &j);
                if store.raise_alert(&a, ids, now_ms).await? {
                    tracing::warn!(alert = %a.key, "{}", a.summary);
                }
            }
            Action::ResolveFault { key, end_ms } => {
                let text = format!(
                    "The vantage fault ended at {}: vantage {} sees the interface as the others do.",
                    time::rfc3339(end_ms),
                    node.vantage_of(series)
                );
                store
                    .resolve_alert(&key, end_ms, Some(text), ids, now_ms)
                    .await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The live rule across vantages, on hand-built states (times in ms from 0).

    use super::*;

    fn v(s: &str) -> Vantage {
        Vantage::new(s).unwrap()
    }

    fn series() -> Series {
        ("13807".parse().unwrap(), Interface::Api)
    }

    fn node(me: &str) -> Node {
        Node {
            vantage: v(me),
            quorum: VantageQuorum::Majority,
            grace_ms: 6_000,
            tz: chrono_tz::Europe::Paris,
            probes: vec![series()],
        }
    }

    fn run(of: &str, start: i64, end: i64) -> CoverageSpan {
        CoverageSpan {
            kind: CoverageKind::Monitor,
            establishment: Some(series().0),
            interface: Some(series().1),
            start_ms: start,
            end_ms: end,
            ongoing: false,
            vantage: Some(v(of)),
        }
    }

    fn ep(of: &str, start: i64, end: Option<i64>, opened: i64) -> VantageEpisode {
        VantageEpisode {
            vantage: v(of),
            gap: false,
            start_ms: start,
            end_ms: end,
            opened_at_ms: opened,
        }
    }

    fn firing(key: &str, start: i64) -> Alert {
        let mut a = quorum_down_alert(&node("a"), series(), start, &judge_at(&[], &[], 0));
        a.key = key.into();
        a
    }

    fn judge_at(cov: &[CoverageSpan], eps: &[VantageEpisode], now: i64) -> Judgement {
        judge(&node("b"), series(), cov, eps, now)
    }

    #[test]
    fn both_vantages_down_is_downtime_from_where_the_second_joined() {
        // a and b cover 0..50 s (now). a down from 10 s, b from 12 s: 2 of 2 from 12 s.
        let cov = [run("a", 0, 50_000), run("b", 0, 50_000)];
        let eps = [ep("a", 10_000, None, 14_000), ep("b", 12_000, None, 16_000)];
        let j = judge_at(&cov, &eps, 50_000);
        assert_eq!(j.down, [(12_000, 50_000)]);
        assert_eq!(j.down_since(50_000), Some(12_000));
        assert_eq!(j.own_faults, [], "b's episode is downtime");
        assert_eq!((j.covering.len(), j.failing.len()), (2, 2));
        let n = node("b");
        assert_eq!(
            decide(&n, &j, &[], &[], 50_000),
            [Action::RaiseDown { since_ms: 12_000 }]
        );
        // Whichever node judges it: the same key, the series and 12 s.
        let a = quorum_down_alert(&n, series(), 12_000, &j);
        assert_eq!(a.key, "13807-api-19700101T000012.000Z");
        // Already firing: nothing more.
        assert_eq!(decide(&n, &j, &[a], &[], 50_000), []);
    }

    #[test]
    fn one_vantage_down_is_its_fault_alerted_after_the_grace() {
        // b down from 12 s, confirmed (opened) at 16 s; a answers. Majority of 2 needs 2.
        let cov = [run("a", 0, 40_000), run("b", 0, 40_000)];
        let eps = [ep("b", 12_000, None, 16_000)];
        let n = node("b");
        let j = judge_at(&cov, &eps, 21_999);
        assert_eq!(j.down, []);
        assert_eq!(j.own_fault_since(21_999), Some(12_000));
        // The grace: 6 s after the later of the fault's start (12 s) and b's confirmation (16 s).
        assert_eq!(decide(&n, &j, &[], &[], 21_999), []);
        let j = judge_at(&cov, &eps, 22_000);
        assert_eq!(
            decide(&n, &j, &[], &[], 22_000),
            [Action::RaiseFault { since_ms: 12_000 }]
        );
        let f = fault_alert(&n, series(), 12_000, &j);
        assert_eq!(f.key, "vantage_fault/b/13807-api-19700101T000012.000Z");
        assert_eq!(f.kind, VANTAGE_FAULT);
        // Node a judges the same states: no fault of its own, no downtime, nothing to do.
        let ja = judge(&node("a"), series(), &cov, &eps, 22_000);
        assert_eq!(decide(&node("a"), &ja, &[], &[], 22_000), []);
        // b recovers at 30 s: its fault ends there, resolved with that end.
        let eps = [ep("b", 12_000, Some(30_000), 16_000)];
        let j = judge_at(&cov, &eps, 35_000);
        assert_eq!(
            decide(&n, &j, &[], std::slice::from_ref(&f), 35_000),
            [Action::ResolveFault {
                key: f.key.clone(),
                end_ms: 30_000
            }]
        );
    }

    #[test]
    fn the_quorum_lost_resolves_at_its_end_and_a_lone_vantage_left_decides() {
        let cov = [run("a", 0, 60_000), run("b", 0, 60_000)];
        // Down 12..30 s (a recovered at 30 s); b still down at 40 s.
        let eps = [
            ep("a", 10_000, Some(30_000), 14_000),
            ep("b", 12_000, None, 16_000),
        ];
        let j = judge_at(&cov, &eps, 40_000);
        assert_eq!(j.down, [(12_000, 30_000)]);
        let fired = firing("k", 12_000);
        let acts = decide(&node("b"), &j, &[fired], &[], 40_000);
        // Recovered (a covers 30 s): not cut. b's tail, 30..40 s, is its own fault, alerted
        // at 36 s (6 s after it began, b confirmed long before).
        assert_eq!(
            acts,
            [
                Action::ResolveDown {
                    key: "k".into(),
                    end_ms: 30_000,
                    cut: false
                },
                Action::RaiseFault { since_ms: 30_000 }
            ]
        );
        // a stops at 45 s: from there b alone covers, and it is down: downtime again.
        let cov = [run("a", 0, 45_000), run("b", 0, 60_000)];
        let j = judge_at(&cov, &eps, 60_000);
        assert_eq!(j.down, [(12_000, 30_000), (45_000, 60_000)]);
        assert_eq!(j.down_since(60_000), Some(45_000));
    }

    #[test]
    fn a_vantage_failing_on_its_own_side_covers_nothing_there() {
        // b's own probes fail on its side (probe_error) from 5 s: it covers nothing from there,
        // so a, down from 10 s, is the only covering vantage: down, no fault.
        let cov = [run("a", 0, 40_000), run("b", 0, 40_000)];
        let eps = [
            ep("a", 10_000, None, 14_000),
            VantageEpisode {
                gap: true,
                ..ep("b", 5_000, None, 5_000)
            },
        ];
        let j = judge(&node("a"), series(), &cov, &eps, 40_000);
        assert_eq!(j.down, [(10_000, 40_000)]);
        assert_eq!(j.covering, [v("a")]);
        // b sees the bank again from 20 s and does not see it down: 1 of 2 from there.
        let eps = [
            ep("a", 10_000, None, 14_000),
            VantageEpisode {
                gap: true,
                ..ep("b", 5_000, Some(20_000), 5_000)
            },
        ];
        let j = judge(&node("a"), series(), &cov, &eps, 40_000);
        assert_eq!(j.down, [(10_000, 20_000)]);
        assert_eq!(j.own_faults, [(20_000, 40_000)]);
    }

    #[tokio::test]
    async fn a_running_node_that_beat_a_while_ago_still_covers() {
        let s = crate::alert::test_support::store("quorum", "beat").await;
        let now = chrono::Utc::now().timestamp_millis();
        // b runs with a one-minute heartbeat: its last beat 60 s ago, before a's episode
        // (from -30 s) began; still running (stale only past 120 s), so it covers the episode.
        let hb = s
            .start_monitor("b", &[series()], now - 300_000)
            .await
            .unwrap();
        s.beat(hb, now - 60_000).await.unwrap();
        let a = node("a");
        assert!(
            a.others_cover(&s, series(), now - 30_000, now)
                .await
                .unwrap()
        );
        // Stopped at its last beat: it covered nothing of the episode.
        s.stop_heartbeat(hb, now - 60_000, "signal").await.unwrap();
        assert!(
            !a.others_cover(&s, series(), now - 30_000, now)
                .await
                .unwrap()
        );
        // a's own runs never make it shared.
        let own = s
            .start_monitor("a", &[series()], now - 10_000)
            .await
            .unwrap();
        s.beat(own, now).await.unwrap();
        assert!(
            !a.others_cover(&s, series(), now - 30_000, now)
                .await
                .unwrap()
        );
    }

    #[test]
    fn the_last_covering_node_stopping_cuts_the_down_span() {
        // Both down from 12 s; a stops at 20 s, b at 25 s (now 26 s).
        let cov = [run("a", 0, 20_000), run("b", 0, 25_000)];
        let eps = [
            ep("a", 10_000, Some(20_000), 14_000),
            ep("b", 12_000, Some(25_000), 16_000),
        ];
        let j = judge_at(&cov, &eps, 26_000);
        assert_eq!(j.down, [(12_000, 25_000)]);
        assert_eq!(
            decide(&node("a"), &j, &[firing("k", 12_000)], &[], 26_000),
            [Action::ResolveDown {
                key: "k".into(),
                end_ms: 25_000,
                cut: true
            }]
        );
    }

    #[test]
    fn with_no_probing_vantage_the_gateway_is_the_only_one() {
        let logs = CoverageSpan {
            kind: CoverageKind::Log,
            vantage: None,
            ..run("a", 0, 30_000)
        };
        let eps = [ep("gateway", 5_000, None, 9_000)];
        let mut n = node("x");
        n.probes.clear();
        let j = judge(&n, series(), &[logs], &eps, 30_000);
        assert_eq!(j.down, [(5_000, 30_000)]);
        assert_eq!(j.covering, [Vantage::gateway()]);
    }
}

//! The two snapshots of the page, read from the store through the engine, and the cache that
//! keeps the page cheap: the quarter to date is recomputed at most once per `quarter_ttl` (and
//! never more often than ten times its last computing time, so it takes at most a tenth of one
//! core however large the quarter), in the background while the previous figures are served; the
//! state now is recomputed at most once per `live_ttl`, over the last minutes only.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{LiveSeries, LiveSnapshot, Page, QuarterSnapshot, Scope, StatusError};
use crate::domain::{EstablishmentCode, Interface, Observation};
use crate::engine::{self, Period, intervals, time};
use crate::store::Store;

/// The live window reaches at least this far back.
pub const LIVE_WINDOW_MS: i64 = 15 * 60_000;

/// The quarter to date, from the store: `period::count` (the engine as the rows stream), reduced.
pub async fn quarter(
    store: &Store,
    scope: &Scope,
    now_ms: i64,
) -> Result<QuarterSnapshot, StatusError> {
    let settings = scope.settings.clone();
    let today = time::local_date(settings.tz, now_ms);
    let (first, _) = super::quarter_of(today);
    let period = Period {
        from: first,
        to: today + chrono::Duration::days(1),
    };
    // Counted as the store streams the rows (off the async threads): memory follows a day of a
    // series, not the quarter, so a monitor serving the page stays small.
    let counted = crate::period::count(store, period, &settings, &[], now_ms).await?;
    Ok(QuarterSnapshot::from_kpis(
        &counted.kpis,
        now_ms,
        counted.synthetic,
    ))
}

/// Where the live window starts: at least [`LIVE_WINDOW_MS`] back, before the quarter
/// snapshot was computed (with room for a failure run), and at the start of every episode of
/// the snapshot that was open or ended inside the window, so that the window never begins in
/// the middle of a failure run the engine has already counted.
pub fn live_from(q: &QuarterSnapshot, now_ms: i64, window_ms: i64) -> i64 {
    let margin = 60_000i64.max(2 * window_ms);
    let mut from = (now_ms - LIVE_WINDOW_MS).min(q.computed_at_ms - margin);
    // Episodes never overlap, so one pass from the latest back settles it.
    for e in q.episodes.iter().rev() {
        if e.open || e.end_ms > from {
            from = from.min(e.start_ms);
        }
    }
    from
}

/// The series now: the engine's coverage and episode rule over `[from_ms, now_ms]`, one
/// request counted once, planned seconds from the maintenance calendar.
pub async fn live(
    store: &Store,
    scope: &Scope,
    from_ms: i64,
    now_ms: i64,
) -> Result<LiveSnapshot, StatusError> {
    let settings = &scope.settings;
    let rows = store
        .load_for_counting(from_ms, now_ms + 1, &[], settings.probe_latency)
        .await?;
    let coverage = store.coverage(from_ms, now_ms + 1, now_ms).await?;
    let mut sorted: Vec<&Observation> = rows.observations.iter().collect();
    sorted.sort_unstable_by(|a, b| {
        a.received_at_ms
            .cmp(&b.received_at_ms)
            .then_with(|| a.request_id.cmp(&b.request_id))
    });
    let sorted = engine::dedupe::one_request_once(sorted);
    let mut by_series: BTreeMap<(EstablishmentCode, Interface), Vec<&Observation>> =
        BTreeMap::new();
    for o in sorted {
        by_series
            .entry((o.establishment, o.interface))
            .or_default()
            .push(o);
    }
    // Series configured, or covered, even without an observation in the window.
    for k in &scope.series {
        by_series.entry(*k).or_default();
    }
    for c in &coverage {
        if let (Some(e), Some(i)) = (c.establishment, c.interface) {
            by_series.entry((e, i)).or_default();
        }
    }
    let tz = settings.tz;
    let series = by_series
        .into_iter()
        .map(|((est, iface), obs)| {
            let cov = engine::coverage::of_series(&coverage, &est, iface, &obs, (from_ms, now_ms));
            let mut episodes = engine::episodes::detect(&obs, settings, &cov);
            let maint = engine::maintenance::spans(
                &settings.maintenance,
                tz,
                &est,
                time::local_date(tz, from_ms),
                time::local_date(tz, now_ms) + chrono::Duration::days(1),
            );
            for e in &mut episodes {
                e.planned_s =
                    intervals::total(&intervals::intersect(&[(e.start_ms, e.end_ms)], &maint))
                        as f64
                        / 1000.0;
            }
            (
                (est, iface),
                LiveSeries {
                    coverage: cov,
                    episodes,
                },
            )
        })
        .collect();
    Ok(LiveSnapshot {
        from_ms,
        computed_at_ms: now_ms,
        series,
        synthetic: rows.synthetic,
    })
}

/// How often each part is recomputed.
#[derive(Debug, Clone, Copy)]
pub struct Ttl {
    pub quarter: Duration,
    pub live: Duration,
}

impl Default for Ttl {
    fn default() -> Self {
        Self {
            quarter: Duration::from_secs(60),
            live: Duration::from_secs(2),
        }
    }
}

#[derive(Default)]
struct QuarterCache {
    snapshot: Option<Arc<QuarterSnapshot>>,
    /// Not recomputed before this instant (epoch ms).
    next_ms: i64,
    running: bool,
    last_error: Option<String>,
}

/// The page of a running monitor, cached. Cheap to clone.
#[derive(Clone)]
pub struct StatusService(Arc<Inner>);

struct Inner {
    store: Store,
    scope: Scope,
    ttl: Ttl,
    refresh_s: Option<u64>,
    quarter: Mutex<QuarterCache>,
    /// Held while the first quarter is computed, so concurrent first requests wait for one.
    first: tokio::sync::Mutex<()>,
    live: tokio::sync::Mutex<Option<Arc<LiveSnapshot>>>,
}

impl StatusService {
    pub fn new(store: Store, scope: Scope, ttl: Ttl, refresh_s: Option<u64>) -> Self {
        Self(Arc::new(Inner {
            store,
            scope,
            ttl,
            refresh_s,
            quarter: Mutex::new(QuarterCache::default()),
            first: tokio::sync::Mutex::new(()),
            live: tokio::sync::Mutex::new(None),
        }))
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// The page now.
    pub async fn page(&self) -> Result<Page, StatusError> {
        let q = self.quarter().await?;
        let live = self.live(&q).await?;
        // The page is as of the live window's end.
        Ok(super::build(
            &self.0.scope,
            &q,
            &live,
            live.computed_at_ms,
            self.0.refresh_s,
        ))
    }

    async fn quarter(&self) -> Result<Arc<QuarterSnapshot>, StatusError> {
        let now = chrono::Utc::now().timestamp_millis();
        {
            let mut c = self.lock_quarter();
            if let Some(s) = c.snapshot.clone() {
                let stale = now >= c.next_ms
                    || time::local_date(self.0.scope.settings.tz, now) >= s.period.to;
                if stale && !c.running {
                    c.running = true;
                    let me = self.clone();
                    tokio::spawn(async move { me.recompute_quarter().await });
                }
                return Ok(s);
            }
        }
        // No figures yet: the first request computes them, the others wait for it.
        let _first = self.0.first.lock().await;
        if let Some(s) = &self.lock_quarter().snapshot {
            return Ok(s.clone());
        }
        self.recompute_quarter().await;
        let c = self.lock_quarter();
        match (&c.snapshot, &c.last_error) {
            (Some(s), _) => Ok(s.clone()),
            (None, e) => Err(StatusError::Task(
                e.clone().unwrap_or_else(|| "no figures".into()),
            )),
        }
    }

    async fn recompute_quarter(&self) {
        let started = std::time::Instant::now();
        let now = chrono::Utc::now().timestamp_millis();
        let r = quarter(&self.0.store, &self.0.scope, now).await;
        let took = started.elapsed();
        let mut c = self.lock_quarter();
        c.running = false;
        // At most a tenth of one core, however large the quarter.
        let wait = self.0.ttl.quarter.max(took * 10);
        c.next_ms = now + wait.as_millis() as i64;
        match r {
            Ok(s) => {
                tracing::debug!(
                    secs = took.as_secs_f64(),
                    "status: quarter to date computed"
                );
                c.snapshot = Some(Arc::new(s));
                c.last_error = None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "status: cannot compute the quarter to date");
                c.last_error = Some(e.to_string());
            }
        }
    }

    async fn live(&self, q: &QuarterSnapshot) -> Result<Arc<LiveSnapshot>, StatusError> {
        let mut cached = self.0.live.lock().await;
        let now = chrono::Utc::now().timestamp_millis();
        if let Some(s) = cached.as_ref()
            && now - s.computed_at_ms < self.0.ttl.live.as_millis() as i64
        {
            return Ok(s.clone());
        }
        let from = live_from(q, now, self.0.scope.settings.window_ms);
        let s = Arc::new(live(&self.0.store, &self.0.scope, from, now).await?);
        *cached = Some(s.clone());
        Ok(s)
    }

    fn lock_quarter(&self) -> std::sync::MutexGuard<'_, QuarterCache> {
        self.0.quarter.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The page once, for `dispo status`.
pub async fn once(store: &Store, scope: &Scope, now_ms: i64) -> Result<Page, StatusError> {
    let q = quarter(store, scope, now_ms).await?;
    let from = live_from(&q, now_ms, scope.settings.window_ms);
    let live = live(store, scope, from, now_ms).await?;
    Ok(super::build(scope, &q, &live, now_ms, None))
}

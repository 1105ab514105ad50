//! The two snapshots of the page, read from the store through the engine, and the cache that
//! keeps the page cheap: the quarter to date is recomputed at most once per `quarter_ttl` (and
//! never more often than ten times its last computing time, so it takes at most a tenth of one
//! core however large the quarter), in the background while the previous figures are served; the
//! state now is recomputed at most once per `live_ttl`, over the last minutes only.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{LiveSeries, LiveSnapshot, Page, QuarterSnapshot, Scope, StatusError};
use crate::engine::{self, Period, VantageFault, intervals, time};
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
/// the middle of a failure run the engine has already counted. With several vantage points
/// (section 10) a vantage's own episode may begin before the quarter's (where the quorum was
/// reached): its faults place the window too, and pieces that touch chain back to its start,
/// so each vantage's episode is found whole and the quorum is reached where `kpi` finds it.
pub fn live_from(q: &QuarterSnapshot, now_ms: i64, window_ms: i64) -> i64 {
    let margin = 60_000i64.max(2 * window_ms);
    let mut from = (now_ms - LIVE_WINDOW_MS).min(q.computed_at_ms - margin);
    // Episodes never overlap, so one pass from the latest back settles it.
    for e in q.episodes.iter().rev() {
        if e.open || e.end_ms > from {
            from = from.min(e.start_ms);
        }
    }
    if q.vantage_faults.is_empty() {
        return from;
    }
    // Several vantages: pieces of several series and vantages overlap; settle by repeating.
    let pieces: Vec<(i64, i64, bool)> = q
        .episodes
        .iter()
        .map(|e| (e.start_ms, e.end_ms, e.open))
        .chain(
            q.vantage_faults
                .iter()
                .map(|f| (f.start_ms, f.end_ms, false)),
        )
        .collect();
    loop {
        let before = from;
        for &(start, end, open) in &pieces {
            if (open || end >= from) && start < from {
                from = start;
            }
        }
        if from == before {
            return from;
        }
    }
}

/// The series now: the engine's coverage and episode rule over `[from_ms, now_ms]`, one
/// request counted once, each vantage's own series combined by policy `vantage_quorum`
/// (section 10, [`engine::window`]), planned seconds from the maintenance calendar.
pub async fn live(
    store: &Store,
    scope: &Scope,
    from_ms: i64,
    now_ms: i64,
) -> Result<LiveSnapshot, StatusError> {
    live_with_faults(store, scope, from_ms, now_ms)
        .await
        .map(|(s, _)| s)
}

/// As [`live`], with the window's vantage faults (section 10): the operator's, never the page's.
pub async fn live_with_faults(
    store: &Store,
    scope: &Scope,
    from_ms: i64,
    now_ms: i64,
) -> Result<(LiveSnapshot, Vec<VantageFault>), StatusError> {
    let settings = &scope.settings;
    let rows = store
        .load_for_counting(from_ms, now_ms + 1, &[], settings.probe_latency)
        .await?;
    let coverage = store.coverage(from_ms, now_ms + 1, now_ms).await?;
    // Series configured, or covered, even without an observation in the window.
    let extra = scope.series.iter().copied().chain(
        coverage
            .iter()
            .filter_map(|c| Some((c.establishment?, c.interface?))),
    );
    let window = engine::window::episodes(
        &rows.observations,
        &coverage,
        settings,
        (from_ms, now_ms),
        extra,
    );
    let tz = settings.tz;
    let mut faults = Vec::new();
    let series = window
        .into_iter()
        .map(|((est, iface), w)| {
            let mut episodes = w.episodes;
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
            faults.extend(w.faults);
            (
                (est, iface),
                LiveSeries {
                    coverage: w.coverage,
                    episodes,
                },
            )
        })
        .collect();
    Ok((
        LiveSnapshot {
            from_ms,
            computed_at_ms: now_ms,
            series,
            synthetic: rows.synthetic,
        },
        faults,
    ))
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
    Ok(once_for_operator(store, scope, now_ms).await?.page)
}

/// What `dispo status` shows: the page, and beside it (for the operator, never on the page)
/// the vantage faults open or ended within [`super::RECENT_MS`].
#[derive(Debug, Clone, PartialEq)]
pub struct Once {
    pub page: Page,
    /// By (establishment, interface, start, vantage); an open one ends at `now`.
    pub vantage_faults: Vec<VantageFault>,
}

/// As [`once`], with the recent vantage faults: the quarter's before the live window, then the
/// window's (as the page takes its episodes).
pub async fn once_for_operator(
    store: &Store,
    scope: &Scope,
    now_ms: i64,
) -> Result<Once, StatusError> {
    let q = quarter(store, scope, now_ms).await?;
    let from = live_from(&q, now_ms, scope.settings.window_ms);
    let (live, window_faults) = live_with_faults(store, scope, from, now_ms).await?;
    let mut vantage_faults: Vec<VantageFault> = q
        .vantage_faults
        .iter()
        .filter(|f| f.start_ms < from)
        .cloned()
        .chain(window_faults)
        .filter(|f| f.end_ms >= now_ms - super::RECENT_MS)
        .collect();
    crate::engine::VantageFault::sort(&mut vantage_faults);
    Ok(Once {
        page: super::build(scope, &q, &live, now_ms, None),
        vantage_faults,
    })
}

//! The engine as a stream: observations go in in time order (the store's order) and are counted
//! as they pass, in memory bounded by a day of traffic rather than by the period.
//!
//! What is held, and why it is enough for the figures to be those of the whole period at once:
//! - one request counts once: the last 24 hours of request ids ([`Dedupe`]);
//! - per series, the current local day's counts and response times ([`DayAcc`]), closed into a
//!   tally when the series' next day begins; the period's replies per service
//!   ([`PeriodReplies`], written out past a bound) for the period summary;
//! - per series, the input of the episode rule: every counted failure and the reply after each
//!   run of them (a reply after a reply changes nothing in the rule's state), and the spans its
//!   probes failed on the monitor's side ([`ProbeErrors`]); episodes are detected over the
//!   series' final coverage once the stream ends, exactly as over the whole series;
//! - the fallback requests of the period, an instant and a TPP each;
//! - for a series probed from several vantages (section 10, [`super::vantage`]), the rule's
//!   input kept for each and each one's monitor-side errors; its episodes are combined from the
//!   vantages' at the end, with its days' downtime. Each vantage's probes that may lie in one of
//!   its episodes are held too (about as many as the rule's input), with their day: those inside
//!   its vantage faults are taken back out of their days' counts and response times at the end
//!   (a day holding such a timed probe keeps its response times whole until then, so the
//!   percentiles stay exact). A series probed from one vantage has none of this: its path is
//!   unchanged.
//!
//! [`super::compute`] is this over observations in memory: one engine, one method.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use rustc_hash::FxHashMap;

use super::coverage::{self, ProbeErrors};
use super::days::{self, DayAcc, DayTally};
use super::dedupe::Dedupe;
use super::fallback::FallbackCalls;
use super::replies::{self, PeriodReplies};
use super::vantage::SeriesVantages;
use super::{
    EngineError, Episode, Kpis, Period, PeriodLatency, Settings, WeekWatch, episodes, intervals,
    live, maintenance, time, weeks,
};
use crate::domain::{
    CompactString, CoverageSpan, EstablishmentCode, Interface, Observation, Service, Vantage,
};

/// One series (establishment, interface) as the stream passes.
struct SeriesAcc {
    establishment: EstablishmentCode,
    interface: Interface,
    /// The day being accumulated (index into the computed days) and its accumulator.
    day: Option<usize>,
    acc: DayAcc,
    /// One per computed day, filled as days close.
    tallies: Vec<DayTally>,
    /// Services with replies timed inside the period.
    period_services: BTreeSet<Service>,
    errors: ProbeErrors,
    /// The episode rule's input: counted failures and the first counted reply after each run.
    rule_input: Vec<Observation>,
    /// For entries of `rule_input` kept over an earlier log's record of the same request (a
    /// probe's), that first record: the supervisor's annex shows a request as first recorded.
    replaced: Vec<(usize, Observation)>,
    /// Whether the last counted observation was a failure.
    after_failure: bool,
    /// Its probing vantages when more than one (section 10); `None`, the usual case, counts the
    /// series as one vantage.
    vantages: Option<Box<SeriesVantages>>,
}

/// Counts a period from a stream of observations in `received_at` order.
pub struct Counter {
    period: Period,
    settings: Settings,
    coverage: Vec<CoverageSpan>,
    range: (i64, i64),
    period_ms: (i64, i64),
    dates: Vec<NaiveDate>,
    /// `bounds[i]..bounds[i + 1]` is `dates[i]`.
    bounds: Vec<i64>,
    /// The day the stream is in (index into `dates`).
    today: usize,
    /// Observations received at the same instant as the last one, sorted by request id before
    /// they go on (the engine's order is (received_at, request_id); the store's, time only).
    same_instant: Vec<Observation>,
    last_ms: i64,
    dedupe: Dedupe<Observation>,
    index: FxHashMap<(EstablishmentCode, Interface), usize>,
    series: Vec<SeriesAcc>,
    /// Services seen, when `counted_services` must be checked against them.
    services: Option<BTreeSet<Service>>,
    any: bool,
    fallback: FallbackCalls,
    replies: PeriodReplies,
    /// The first record of each establishment's requests without an id ("" or "-"), which
    /// de-duplication does not join: what the annex shows for such an id.
    anonymous: std::collections::BTreeMap<(EstablishmentCode, CompactString), Observation>,
}

impl Counter {
    /// A counter for `period`, with the coverage of [`super::load_range`] (section 1).
    pub fn new(
        period: Period,
        settings: &Settings,
        coverage: Vec<CoverageSpan>,
    ) -> Result<Self, EngineError> {
        Self::with_reply_memory(period, settings, coverage, replies::DEFAULT_IN_MEMORY)
    }

    /// As [`Counter::new`], holding at most `replies_in_memory` response times of the period in
    /// memory (the rest in a temporary file).
    pub fn with_reply_memory(
        period: Period,
        settings: &Settings,
        coverage: Vec<CoverageSpan>,
        replies_in_memory: usize,
    ) -> Result<Self, EngineError> {
        super::validate(period, settings)?;
        let tz = settings.tz;
        let (ext_from, ext_to) = super::extended_days(period);
        let dates: Vec<NaiveDate> = time::days(ext_from, ext_to).collect();
        let mut bounds: Vec<i64> = dates.iter().map(|d| time::day_start_ms(tz, *d)).collect();
        bounds.push(time::day_start_ms(tz, ext_to));
        // Several vantages: a log record a probe stands for still counts for the others.
        let dedupe = if super::vantage::several(&coverage) {
            Dedupe::with_shadows()
        } else {
            Dedupe::default()
        };
        Ok(Self {
            period,
            settings: settings.clone(),
            coverage,
            range: super::load_range(period, settings),
            period_ms: (
                time::day_start_ms(tz, period.from),
                time::day_start_ms(tz, period.to),
            ),
            dates,
            bounds,
            today: 0,
            same_instant: Vec::new(),
            last_ms: i64::MIN,
            dedupe,
            index: FxHashMap::default(),
            series: Vec::new(),
            services: settings.counted_services.as_ref().map(|_| BTreeSet::new()),
            any: false,
            fallback: FallbackCalls::default(),
            replies: PeriodReplies::new(replies_in_memory),
            anonymous: Default::default(),
        })
    }

    /// Asks the processor for what [`Counter::push`] will look up for `o` (its request id in the
    /// de-duplication window): called some rows ahead, that look-up finds it in cache.
    pub fn prefetch(&self, o: &Observation) {
        self.dedupe.prefetch(o);
    }

    /// Takes the next observation. `received_at` must not go back in time; observations outside
    /// [`super::load_range`] are ignored.
    pub fn push(&mut self, o: Observation) -> Result<(), EngineError> {
        self.push_before(o, None)
    }

    /// As [`Counter::push`], told when the next observation was received (`None`: not known):
    /// one alone at its instant, the usual case, goes on at once instead of waiting for the next
    /// (one copy of it fewer; at 100 M rows copies were a tenth of the counting).
    pub fn push_before(&mut self, o: Observation, next_ms: Option<i64>) -> Result<(), EngineError> {
        let t = o.received_at_ms;
        if t < self.last_ms {
            return Err(EngineError::OutOfOrder {
                at_ms: t,
                after_ms: self.last_ms,
            });
        }
        if t < self.range.0 || t >= self.range.1 {
            return Ok(());
        }
        if (o.request_id.is_empty() || o.request_id == "-")
            && !self
                .anonymous
                .contains_key(&(o.establishment, o.request_id.clone()))
        {
            self.anonymous
                .insert((o.establishment, o.request_id.clone()), o.clone());
        }
        if t > self.last_ms {
            self.release_instant()?;
            self.last_ms = t;
        }
        if self.same_instant.is_empty() && next_ms.is_some_and(|n| n > t) {
            return self.release_one(o);
        }
        self.same_instant.push(o);
        Ok(())
    }

    /// An observation alone at its instant, on to de-duplication and counting.
    fn release_one(&mut self, o: Observation) -> Result<(), EngineError> {
        let mut err = Ok(());
        let mut dedupe = std::mem::take(&mut self.dedupe);
        dedupe.push(o, &mut |kept, h| {
            if err.is_ok() {
                match h.shadowed_by {
                    None => err = self.count(kept, h.replaced),
                    Some(v) => self.count_shadowed(kept, v),
                }
            }
        });
        self.dedupe = dedupe;
        err
    }

    fn release_instant(&mut self) -> Result<(), EngineError> {
        if self.same_instant.is_empty() {
            return Ok(());
        }
        let mut group = std::mem::take(&mut self.same_instant);
        if group.len() > 1 {
            group.sort_by(|a, b| a.request_id.cmp(&b.request_id));
        }
        let mut err = Ok(());
        for o in group.drain(..) {
            if err.is_ok() {
                err = self.release_one(o);
            }
        }
        self.same_instant = group;
        err
    }

    /// One request (after de-duplication), in (received_at, request_id) order; `first`, the
    /// log's record it was kept over.
    fn count(
        &mut self,
        o: Observation,
        first: Option<Box<Observation>>,
    ) -> Result<(), EngineError> {
        let t = o.received_at_ms;
        self.any = true;
        if let Some(seen) = &mut self.services
            && !seen.contains(&o.service)
        {
            seen.insert(o.service.clone());
        }
        while self.today + 1 < self.dates.len() && t >= self.bounds[self.today + 1] {
            self.today += 1;
        }
        let day = (t >= self.bounds[0]).then_some(self.today);
        let i = self.series_of(o.establishment, o.interface);
        if let Some(d) = day
            && self.series[i].day != Some(d)
        {
            self.close_day(i)?;
            self.series[i].day = Some(d);
        }
        let (p_start, p_end) = self.period_ms;
        if t >= p_start && t < p_end {
            self.fallback.push(&o, &self.settings);
        }
        let s = &mut self.series[i];
        match &mut s.vantages {
            None => s.errors.push(&o),
            Some(v) => {
                v.push_errors(&o);
                if let Some(d) = day {
                    v.watch(&o, d, &self.settings);
                }
            }
        }
        if day.is_some() {
            s.acc.add(&o, &self.settings);
        }
        if live::counts(&self.settings, &o) {
            let failure = o.outcome.is_failure(self.settings.aspsp_error_is_failure);
            let keep = match &mut s.vantages {
                None => {
                    let keep = failure || s.after_failure;
                    s.after_failure = failure;
                    keep
                }
                Some(v) => v.keep(&o, failure),
            };
            if keep {
                if let Some(f) = first {
                    s.replaced.push((s.rule_input.len(), *f));
                }
                s.rule_input.push(o);
            }
        }
        Ok(())
    }

    /// The index of series `(est, iface)`, added when first seen.
    fn series_of(&mut self, est: EstablishmentCode, iface: Interface) -> usize {
        let key = (est, iface);
        match self.index.get(&key) {
            Some(i) => *i,
            None => {
                let i = self.series.len();
                self.index.insert(key, i);
                self.series.push(SeriesAcc {
                    establishment: est,
                    interface: iface,
                    day: None,
                    acc: DayAcc::default(),
                    tallies: vec![DayTally::default(); self.dates.len()],
                    period_services: BTreeSet::new(),
                    errors: ProbeErrors::default(),
                    rule_input: Vec::new(),
                    replaced: Vec::new(),
                    after_failure: false,
                    vantages: SeriesVantages::of(&self.coverage, &est, iface, self.range),
                });
                i
            }
        }
    }

    /// A log record that vantage `by`'s probe of the same request stands for (section 10): in
    /// the episode rule of the series' other vantages only, in no other figure.
    fn count_shadowed(&mut self, o: Observation, by: &Vantage) {
        let i = self.series_of(o.establishment, o.interface);
        let s = &mut self.series[i];
        if let Some(v) = &mut s.vantages
            && live::counts(&self.settings, &o)
        {
            let failure = o.outcome.is_failure(self.settings.aspsp_error_is_failure);
            if v.keep_shadowed(&o, by, failure, s.rule_input.len()) {
                s.rule_input.push(o);
            }
        }
    }

    /// Closes the day series `i` is accumulating, if any.
    fn close_day(&mut self, i: usize) -> Result<(), EngineError> {
        let s = &mut self.series[i];
        let Some(d) = s.day.take() else {
            return Ok(());
        };
        let in_period =
            self.bounds[d] >= self.period_ms.0 && self.bounds[d + 1] <= self.period_ms.1;
        let mut err = Ok(());
        let replies = &mut self.replies;
        let services = &mut s.period_services;
        let to_replies = |svc: &Service, v: Vec<f64>| {
            if in_period && err.is_ok() {
                if !services.contains(svc) {
                    services.insert(svc.clone());
                }
                err = replies.add(i, svc, v);
            }
        };
        let acc = std::mem::take(&mut s.acc);
        // A day some of whose probes a vantage may have made during its fault keeps its
        // response times until the faults are known (section 10).
        s.tallies[d] = match &s.vantages {
            Some(v) if v.holds_timed(d) => acc.close_holding(to_replies),
            _ => acc.close(to_replies),
        };
        err
    }

    /// The end of the stream: every figure of the period.
    pub fn finish(self) -> Result<Kpis, EngineError> {
        self.finish_with_requests().map(|(k, _)| k)
    }

    /// As [`Counter::finish`], with the first record of each request the episodes name (their
    /// failures and closing replies), in time order: what the supervisor's annex details.
    pub fn finish_with_requests(self) -> Result<(Kpis, Vec<Observation>), EngineError> {
        let settings = self.settings.clone();
        Part::merge(self.finish_part()?, Vec::new(), &settings)
    }

    /// The figures of the establishments this counter was given, to be merged with those of
    /// counters given the others ([`Part::merge`]): establishments are independent (one
    /// request counts once within an establishment), so counters may share a period's.
    pub fn finish_part(mut self) -> Result<Part, EngineError> {
        self.release_instant()?;
        let mut err = Ok(());
        let dedupe = std::mem::take(&mut self.dedupe);
        dedupe.finish(&mut |kept, h| {
            if err.is_ok() {
                match h.shadowed_by {
                    None => err = self.count(kept, h.replaced),
                    Some(v) => self.count_shadowed(kept, v),
                }
            }
        });
        err?;
        for i in 0..self.series.len() {
            self.close_day(i)?;
        }
        let settings = &self.settings;
        let tz = settings.tz;
        let period = self.period;
        let (range_start, range_end) = self.range;
        let (p_start, p_end) = self.period_ms;
        let (ext_from, ext_to) = super::extended_days(period);
        // Where the data ends: the latest covered instant. Weeks past it are not judged.
        let data_end = self
            .coverage
            .iter()
            .map(|c| c.end_ms.min(range_end))
            .max()
            .unwrap_or(range_start);

        let mut order: Vec<usize> = (0..self.series.len()).collect();
        order.sort_by_key(|i| (self.series[*i].establishment, self.series[*i].interface));
        let mut maint_cache: std::collections::BTreeMap<EstablishmentCode, Vec<intervals::Span>> =
            Default::default();
        let mut all_episodes: Vec<Episode> = Vec::new();
        let mut named: Vec<Observation> = Vec::new();
        let mut ext_days = Vec::new();
        let mut period_latency = Vec::new();
        let (mut vantage_faults, mut vantages) = (Vec::new(), Vec::new());
        let mut series = std::mem::take(&mut self.series);
        for i in order {
            let s = &mut series[i];
            let est = s.establishment;
            let m = maint_cache
                .entry(est)
                .or_insert_with(|| {
                    maintenance::spans(
                        &settings.maintenance,
                        tz,
                        &est,
                        ext_from - chrono::Duration::days(settings.lookback_days.clamp(0, 366) + 1),
                        ext_to,
                    )
                })
                .clone();
            let range = (range_start, range_end);
            let mut tallies = std::mem::take(&mut s.tallies);
            // Response times of the period set aside (section 10), per service.
            let mut unreplied: Vec<(Service, f64)> = Vec::new();
            let (mut eps, cov, shadowed) = match s.vantages.take() {
                None => {
                    let errors = std::mem::take(&mut s.errors).finish(range_end);
                    let cov =
                        coverage::with_errors(&self.coverage, &est, s.interface, errors, range);
                    let rule_input: Vec<&Observation> = s.rule_input.iter().collect();
                    (
                        episodes::detect(&rule_input, settings, &cov),
                        cov,
                        Vec::new(),
                    )
                }
                Some(v) => {
                    let series = (&est, s.interface);
                    let c = v.finish(&s.rule_input, &self.coverage, series, settings, range);
                    vantages.extend(c.covered_in((p_start, p_end)));
                    let mut faults = c.faults;
                    unreplied = set_aside(
                        &c.set_aside,
                        &mut faults,
                        &mut tallies,
                        &self.bounds,
                        (p_start, p_end),
                        settings,
                    );
                    vantage_faults.extend(faults);
                    (c.episodes, c.coverage, c.shadowed)
                }
            };
            let wanted: BTreeSet<&str> = eps
                .iter()
                .flat_map(|e| e.request_ids.iter().chain(e.ended_by.iter()))
                .map(|id| id.as_str())
                .collect();
            let mut replaced = std::mem::take(&mut s.replaced).into_iter().peekable();
            let mut shadowed = shadowed.into_iter().peekable();
            for (j, o) in std::mem::take(&mut s.rule_input).into_iter().enumerate() {
                let first = replaced.next_if(|(k, _)| *k == j).map(|(_, f)| f);
                // A log record another vantage's probe stands for: that probe is named.
                if shadowed.next_if(|k| *k == j).is_some() {
                    continue;
                }
                if wanted.contains(o.request_id.as_str()) {
                    named.push(first.unwrap_or(o));
                }
            }
            for ((e, id), o) in &self.anonymous {
                if *e == est && wanted.contains(id.as_str()) {
                    named.push(o.clone());
                }
            }
            for e in &mut eps {
                e.planned_s = intervals::total(&intervals::intersect(&[(e.start_ms, e.end_ms)], &m))
                    as f64
                    / 1000.0;
                e.began_before_period = e.start_ms < p_start;
            }
            let down = intervals::merge(eps.iter().map(|e| (e.start_ms, e.end_ms)).collect());
            let sd = days::SeriesDays {
                establishment: &est,
                interface: s.interface,
                downtime: &down,
                maintenance: &m,
                covered: &cov.spans,
            };
            ext_days.extend(days::day_rows(&sd, tallies, &self.dates, &self.bounds));
            for service in std::mem::take(&mut s.period_services) {
                let mut v = self.replies.take(i, &service)?;
                for (_, l) in unreplied.iter().filter(|(svc, _)| *svc == service) {
                    days::remove_one(&mut v, *l);
                }
                if v.is_empty() {
                    continue;
                }
                period_latency.push(PeriodLatency {
                    establishment: est,
                    interface: s.interface,
                    service,
                    stats: days::stats(&mut v),
                });
            }
            all_episodes.extend(eps);
        }
        ext_days.sort_by(|a, b| {
            (a.date, &a.establishment, a.interface).cmp(&(b.date, &b.establishment, b.interface))
        });
        let week_bounds = |monday: NaiveDate| {
            (
                time::day_start_ms(tz, monday),
                time::day_start_ms(tz, monday + chrono::Duration::days(7)),
            )
        };
        let weeks: Vec<WeekWatch> = weeks::watch(&ext_days, &settings.targets, |monday| {
            week_bounds(monday).1 <= data_end
        })
        .into_iter()
        .filter(|w| {
            let (ws, we) = week_bounds(w.monday);
            ws < p_end && we > p_start
        })
        .collect();
        let days_out = ext_days
            .into_iter()
            .filter(|d| d.date >= period.from && d.date < period.to)
            .collect();
        let fallback = self.fallback.classify(&all_episodes, settings, tz);
        // Listed: the episodes with time inside the period (one ending exactly at its first
        // midnight belongs to the period before).
        let episodes = all_episodes
            .into_iter()
            .filter(|e| e.start_ms < p_end && e.end_ms > p_start)
            .map(|mut e| {
                // Still down while the monitor runs: listed as closed at the period end.
                if e.open {
                    e.end_ms = e.end_ms.min(p_end.max(e.start_ms));
                }
                e
            })
            .collect();
        // Listed: the faults with time inside the period, ending there at the latest.
        vantage_faults.retain(|f: &super::VantageFault| f.start_ms < p_end && f.end_ms > p_start);
        for f in &mut vantage_faults {
            f.end_ms = f.end_ms.min(p_end);
        }
        super::VantageFault::sort(&mut vantage_faults);
        Ok(Part {
            kpis: Kpis {
                period,
                settings: self.settings.clone(),
                days: days_out,
                episodes,
                weeks,
                fallback,
                period_latency,
                vantage_faults,
                vantages,
            },
            named,
            services: self.services.take(),
            any: self.any,
        })
    }
}

/// Section 10: the probes vantages made during their faults (with the index of the day each
/// counted on) taken back out of their days' figures, each fault told how many of its own
/// inside the period; gives the response times to take out of the period's.
fn set_aside(
    probes: &[(usize, Observation)],
    faults: &mut [super::VantageFault],
    tallies: &mut [DayTally],
    bounds: &[i64],
    (p_start, p_end): (i64, i64),
    settings: &Settings,
) -> Vec<(Service, f64)> {
    let mut unreplied = Vec::new();
    for (d, o) in probes {
        tallies[*d].set_aside(o, settings);
        let t = o.received_at_ms;
        let in_period = bounds[*d] >= p_start && bounds[*d + 1] <= p_end;
        if in_period && let Some(l) = days::timed(o, &settings.timed_outcomes) {
            unreplied.push((o.service.clone(), l));
        }
        if (p_start..p_end).contains(&t)
            && let Some(f) = faults
                .iter_mut()
                .find(|f| f.vantage == o.vantage && f.start_ms <= t && t < f.end_ms)
        {
            f.set_aside += 1;
        }
    }
    for t in tallies.iter_mut() {
        t.settle();
    }
    unreplied
}

/// What one [`Counter`] found, before it is merged with the others of the same period.
pub struct Part {
    kpis: Kpis,
    named: Vec<Observation>,
    services: Option<BTreeSet<Service>>,
    any: bool,
}

impl Part {
    /// The period's figures from counters given disjoint sets of establishments, in the order
    /// one counter given them all would list them, and the requests the episodes name.
    pub fn merge(
        first: Part,
        others: Vec<Part>,
        settings: &Settings,
    ) -> Result<(Kpis, Vec<Observation>), EngineError> {
        let mut any = first.any;
        let mut seen = first.services.unwrap_or_default();
        let (mut k, mut named) = (first.kpis, first.named);
        for p in others {
            any |= p.any;
            seen.extend(p.services.into_iter().flatten());
            named.extend(p.named);
            k.days.extend(p.kpis.days);
            k.episodes.extend(p.kpis.episodes);
            k.weeks.extend(p.kpis.weeks);
            k.fallback.extend(p.kpis.fallback);
            k.period_latency.extend(p.kpis.period_latency);
            k.vantage_faults.extend(p.kpis.vantage_faults);
            k.vantages.extend(p.kpis.vantages);
        }
        if let Some(list) = &settings.counted_services
            && any
        {
            super::check_counted_services(list, &seen)?;
        }
        // Each part is in order; stable sorts on keys that tell establishments apart put the
        // parts together as one counter would have.
        k.days.sort_by(|a, b| {
            (a.date, &a.establishment, a.interface).cmp(&(b.date, &b.establishment, b.interface))
        });
        k.episodes.sort_by_key(|e| (e.establishment, e.interface));
        k.weeks.sort_by_key(|w| (w.establishment, w.monday));
        k.fallback.sort_by(|a, b| {
            (a.date, a.establishment, &a.tpp).cmp(&(b.date, b.establishment, &b.tpp))
        });
        k.period_latency.sort_by(|a, b| {
            (a.establishment, a.interface, &a.service).cmp(&(
                b.establishment,
                b.interface,
                &b.service,
            ))
        });
        super::VantageFault::sort(&mut k.vantage_faults);
        k.vantages.sort_by(|a, b| {
            (a.establishment, a.interface, &a.vantage).cmp(&(
                b.establishment,
                b.interface,
                &b.vantage,
            ))
        });
        named.sort_by_key(|o| o.received_at_ms);
        Ok((k, named))
    }
}

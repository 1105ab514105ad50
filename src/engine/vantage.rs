//! Vantage points (methodology section 10): several monitors, each probing from its own network,
//! each with its own episodes (section 3) over its own coverage. The interface is down at an
//! instant when enough of the vantages covering that instant are inside one of their episodes
//! (policy `vantage_quorum`); an outage seen from fewer is a vantage fault: the vantage's own
//! network, most likely, never downtime.
//!
//! Pure and shared: the batch engine combines each series' vantages with [`combine`], the live
//! detector applies the same rule across nodes.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::coverage::{self, ProbeErrors, SeriesCoverage};
use super::intervals::{self, Span};
use super::{Episode, Settings, VantageCoverage, VantageFault, episodes};
use crate::domain::{CoverageSpan, EstablishmentCode, Interface, Observation, Source, Vantage};

/// How many of the vantages covering an instant must see the interface down (policy
/// `vantage_quorum`, `[counting]`): `"majority"` (default), `"all"`, `"any"`, or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VantageQuorum {
    /// More than half: `floor(n / 2) + 1`.
    #[default]
    Majority,
    /// Every covering vantage.
    All,
    /// One is enough (every vantage fault becomes downtime).
    Any,
    /// At least k, or every one when fewer than k cover.
    AtLeast(u32),
}

impl VantageQuorum {
    pub fn is_majority(&self) -> bool {
        *self == Self::Majority
    }

    /// Vantages down needed when `covering` vantages cover the instant (0 when none covers:
    /// callers never count an instant nobody covers as down).
    pub fn needed(self, covering: usize) -> usize {
        if covering == 0 {
            return 0;
        }
        match self {
            Self::Majority => covering / 2 + 1,
            Self::All => covering,
            Self::Any => 1,
            Self::AtLeast(k) => (k.max(1) as usize).min(covering),
        }
    }
}

impl fmt::Display for VantageQuorum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Majority => f.write_str("majority"),
            Self::All => f.write_str("all"),
            Self::Any => f.write_str("any"),
            Self::AtLeast(k) => write!(f, "{k}"),
        }
    }
}

impl Serialize for VantageQuorum {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::AtLeast(k) => s.serialize_u32(*k),
            other => s.serialize_str(&other.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for VantageQuorum {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(i64),
            Name(String),
        }
        let bad = || {
            serde::de::Error::custom(
                "vantage_quorum must be \"majority\", \"all\", \"any\" or a whole number of vantages from 1",
            )
        };
        match Raw::deserialize(d).map_err(|_| bad())? {
            Raw::Number(k) if k >= 1 => Ok(Self::AtLeast(u32::try_from(k).map_err(|_| bad())?)),
            Raw::Number(_) => Err(bad()),
            Raw::Name(n) => match n.as_str() {
                "majority" => Ok(Self::Majority),
                "all" => Ok(Self::All),
                "any" => Ok(Self::Any),
                _ => Err(bad()),
            },
        }
    }
}

/// What one vantage saw of one series: when it covered it and when it was inside an episode.
/// Both sorted and disjoint; `down` within `covered` (what lies outside is ignored).
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    pub vantage: &'a Vantage,
    pub covered: &'a [Span],
    pub down: &'a [Span],
}

/// The combined verdict of a series: when the interface is down, and each vantage's episode time
/// that is not (its vantage faults).
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Sorted, disjoint, maximal.
    pub down: Vec<Span>,
    /// Per vantage (in the order of the views), its spans in an episode while the interface is
    /// not down; sorted within each vantage.
    pub faults: Vec<(Vantage, Span)>,
}

/// Combines the views of one series under quorum `q`: down at `t` when `C(t)`, the vantages
/// covering `t`, is not empty and at least `q.needed(|C(t)|)` of them are inside an episode.
pub fn combine(q: VantageQuorum, views: &[View<'_>]) -> Verdict {
    // One vantage: majority, all, any and any k all need it alone, so it is its own verdict.
    if let [v] = views {
        return Verdict {
            down: intervals::intersect(v.down, v.covered),
            faults: Vec::new(),
        };
    }
    let downs: Vec<Vec<Span>> = views
        .iter()
        .map(|v| intervals::intersect(v.down, v.covered))
        .collect();
    // Every instant where some view's coverage or episode state changes: between two of them
    // C(t) and D(t) are constant.
    let mut edges: Vec<i64> = views
        .iter()
        .flat_map(|v| v.covered.iter())
        .chain(downs.iter().flatten())
        .flat_map(|s| [s.0, s.1])
        .collect();
    edges.sort_unstable();
    edges.dedup();
    let mut cov_at = vec![0usize; views.len()];
    let mut down_at = vec![0usize; views.len()];
    let mut down: Vec<Span> = Vec::new();
    for w in edges.windows(2) {
        let (a, b) = (w[0], w[1]);
        let (mut covering, mut failing) = (0usize, 0usize);
        for (k, v) in views.iter().enumerate() {
            if inside(v.covered, &mut cov_at[k], a) {
                covering += 1;
                if inside(&downs[k], &mut down_at[k], a) {
                    failing += 1;
                }
            }
        }
        if covering > 0 && failing >= q.needed(covering) {
            match down.last_mut() {
                Some(last) if last.1 == a => last.1 = b,
                _ => down.push((a, b)),
            }
        }
    }
    let faults = views
        .iter()
        .zip(&downs)
        .flat_map(|(v, d)| {
            intervals::subtract(d, &down)
                .into_iter()
                .map(|s| (v.vantage.clone(), s))
        })
        .collect();
    Verdict { down, faults }
}

/// Whether `t` lies in one of `spans`, advancing `at` (queries come in increasing `t`).
fn inside(spans: &[Span], at: &mut usize, t: i64) -> bool {
    while *at < spans.len() && spans[*at].1 <= t {
        *at += 1;
    }
    spans.get(*at).is_some_and(|s| s.0 <= t)
}

/// Whether the probing coverage of `all` (monitor runs, imported vantages' spans) is of two
/// vantages or more (an unnamed run is the unknown monitor's): then the engine keeps what each
/// vantage needs (section 10).
pub fn several(all: &[CoverageSpan]) -> bool {
    let mut runs = all.iter().filter_map(CoverageSpan::probing_vantage);
    let Some(first) = runs.next() else {
        return false;
    };
    runs.any(|v| v != first)
}

/// Whether `c` is coverage of probing vantage `v`: its monitor run (a run that names no vantage
/// is the unknown monitor's), or the span of its imported probes.
pub fn is_run_of(c: &CoverageSpan, v: &Vantage) -> bool {
    c.probing_vantage() == Some(v.as_str())
}

/// The probing vantages of one series in the batch engine, when more than one probes it (section
/// 10). A series probed from a single vantage (or none) has none of this: it is counted exactly
/// as before, at no cost.
///
/// Logs (the bank's side) and probe rows of a vantage that does not probe the series (a probe
/// export imported from a file, covered as a log) reach every vantage's series.
#[derive(Debug)]
pub(crate) struct SeriesVantages {
    /// Sorted.
    names: Vec<Vantage>,
    /// Per vantage: whether its series' last counted observation was a failure.
    after_failure: Vec<bool>,
    /// Per vantage: when its own probes failed on its side.
    errors: Vec<ProbeErrors>,
    /// Log records kept in the rule's input that a vantage's probe stands for: (index in the
    /// input, that vantage), in input order. That vantage's series holds the probe instead.
    shadowed: Vec<(usize, usize)>,
    /// Per vantage: where the reply that last ended a run of failures in its series completed
    /// (an episode ends there, after the reply was received).
    reply_end: Vec<i64>,
    /// The vantages' own probes that may lie inside one of their episodes, with the day they
    /// were counted on (an index of the counter's days): those inside a vantage fault are set
    /// aside at the end. About what the rule's input holds: failures, the reply after each run.
    watched: Vec<(usize, Observation)>,
    /// The last day holding a watched probe whose response time is counted.
    timed_day: Option<usize>,
}

/// What [`SeriesVantages::finish`] gives back.
pub(crate) struct Combined {
    /// The series' episodes (section 10), before planned time and period flags.
    pub episodes: Vec<Episode>,
    /// Every vantage's coverage together: time some vantage covered.
    pub coverage: SeriesCoverage,
    pub faults: Vec<VantageFault>,
    /// Each vantage's own coverage.
    covered: Vec<(Vantage, Vec<Span>)>,
    series: (EstablishmentCode, Interface),
    /// Indexes in the rule's input of log records a vantage's probe stands for, in order.
    pub shadowed: Vec<usize>,
    /// The probes the vantages made during their faults, with the day each was counted on, in
    /// time order: they count in no public figure (section 10).
    pub set_aside: Vec<(usize, Observation)>,
}

impl SeriesVantages {
    /// `None` unless two vantages or more cover the series within `range` (their monitor runs,
    /// or the spans of their imported probes).
    pub fn of(
        all: &[CoverageSpan],
        est: &EstablishmentCode,
        iface: Interface,
        range: Span,
    ) -> Option<Box<Self>> {
        let mut runs = all.iter().filter(|c| {
            c.probing_vantage().is_some()
                && c.covers(est, iface)
                && c.end_ms > range.0
                && c.start_ms < range.1
        });
        let first = runs.next()?;
        // The usual case, one vantage: decided without allocating (an unnamed run and one named
        // `monitor` are the same vantage).
        if runs
            .clone()
            .all(|c| c.probing_vantage() == first.probing_vantage())
        {
            return None;
        }
        // A probing span naming no vantage is an unnamed monitor run.
        let mut names: Vec<Vantage> = std::iter::once(first)
            .chain(runs)
            .map(|c| c.vantage.clone().unwrap_or_else(Vantage::unknown_monitor))
            .collect();
        names.sort_unstable();
        names.dedup();
        Some(Box::new(Self {
            after_failure: vec![false; names.len()],
            errors: vec![ProbeErrors::default(); names.len()],
            reply_end: vec![i64::MIN; names.len()],
            names,
            shadowed: Vec::new(),
            watched: Vec::new(),
            timed_day: None,
        }))
    }

    /// Notes a counted row `o` of day `day` before [`Self::keep`] sees it: a vantage's own
    /// probe that may lie in one of its episodes (a failure, a probe while its series is in a
    /// run of failures or before the reply that ended one completed) is held until the faults
    /// are known. Any other row lies in no episode of its vantage.
    pub fn watch(&mut self, o: &Observation, day: usize, settings: &Settings) {
        let Some(k) = self.which(o) else {
            return;
        };
        let failure = super::live::counts(settings, o)
            && o.outcome.is_failure(settings.aspsp_error_is_failure);
        if failure || self.after_failure[k] || o.received_at_ms < self.reply_end[k] {
            if super::days::timed(o, &settings.timed_outcomes).is_some() {
                self.timed_day = Some(day);
            }
            self.watched.push((day, o.clone()));
        }
    }

    /// Whether day `day` holds a watched probe whose response time is counted: the day's
    /// response times are then kept until the faults are known.
    pub fn holds_timed(&self, day: usize) -> bool {
        self.timed_day == Some(day)
    }

    /// Vantage `k`'s series goes on with `o` (`failure` or not): a reply ending a run ends an
    /// episode where it completes.
    fn follow(&mut self, k: usize, o: &Observation, failure: bool) {
        if self.after_failure[k] && !failure {
            let end = o.completed_at_ms().unwrap_or(o.received_at_ms);
            self.reply_end[k] = self.reply_end[k].max(end);
        }
        self.after_failure[k] = failure;
    }

    /// The probing vantage whose own row `o` is; `None` for a row every vantage sees.
    fn which(&self, o: &Observation) -> Option<usize> {
        if o.source != Source::Probe {
            return None;
        }
        self.names.iter().position(|v| *v == o.vantage)
    }

    /// Whether the episode rule needs `o` (a counted row; `failure` whether it is one): a
    /// failure, or the first reply after a run in the series of some vantage it reaches.
    pub fn keep(&mut self, o: &Observation, failure: bool) -> bool {
        match self.which(o) {
            Some(k) => {
                let keep = failure || self.after_failure[k];
                self.follow(k, o, failure);
                keep
            }
            None => {
                let keep = failure || self.after_failure.contains(&true);
                for k in 0..self.names.len() {
                    self.follow(k, o, failure);
                }
                keep
            }
        }
    }

    /// As [`Self::keep`] for a log record that vantage `by`'s probe stands for (it reaches every
    /// other vantage's series), to be kept at index `at` of the rule's input. A probe of a
    /// vantage not probing the series reaches every series itself: its log record none.
    pub fn keep_shadowed(
        &mut self,
        o: &Observation,
        by: &Vantage,
        failure: bool,
        at: usize,
    ) -> bool {
        let Some(x) = self.names.iter().position(|n| n == by) else {
            return false;
        };
        let mut keep = failure;
        for k in 0..self.names.len() {
            if k != x {
                keep |= self.after_failure[k];
                self.follow(k, o, failure);
            }
        }
        if keep {
            self.shadowed.push((at, x));
        }
        keep
    }

    /// Follows the monitor-side errors of each vantage's own probes.
    pub fn push_errors(&mut self, o: &Observation) {
        if let Some(k) = self.which(o) {
            self.errors[k].push(o);
        }
    }

    /// Each vantage's episodes over its own series and coverage (section 3), combined under
    /// `settings.vantage_quorum`. `rule_input` as kept by [`Self::keep`], in time order.
    pub fn finish(
        self,
        rule_input: &[Observation],
        all: &[CoverageSpan],
        (est, iface): (&EstablishmentCode, Interface),
        settings: &Settings,
        range: Span,
    ) -> Combined {
        let mut covs = Vec::with_capacity(self.names.len());
        let mut eps = Vec::with_capacity(self.names.len());
        let mut downs = Vec::with_capacity(self.names.len());
        for (k, (v, errors)) in self.names.iter().zip(self.errors).enumerate() {
            let cov = coverage::of_vantage(all, est, iface, Some(v), errors.finish(range.1), range);
            let mut shadowed = self.shadowed.iter().peekable();
            let own: Vec<&Observation> = rule_input
                .iter()
                .enumerate()
                .filter(|(at, o)| {
                    if let Some((_, by)) = shadowed.next_if(|(s, _)| s == at) {
                        return *by != k;
                    }
                    o.source != Source::Probe || o.vantage == *v || !self.names.contains(&o.vantage)
                })
                .map(|(_, o)| o)
                .collect();
            let e = episodes::detect(&own, settings, &cov);
            downs.push(intervals::merge(
                e.iter().map(|e| (e.start_ms, e.end_ms)).collect(),
            ));
            covs.push(cov);
            eps.push(e);
        }
        let views: Vec<View<'_>> = self
            .names
            .iter()
            .zip(covs.iter().zip(&downs))
            .map(|(vantage, (c, d))| View {
                vantage,
                covered: &c.spans,
                down: d,
            })
            .collect();
        let verdict = combine(settings.vantage_quorum, &views);
        let episodes = verdict
            .down
            .iter()
            .map(|&span| episode_of(span, &eps))
            .collect();
        // A watched probe inside one of its vantage's faults is set aside.
        let mut faulted: Vec<Vec<Span>> = vec![Vec::new(); self.names.len()];
        for (v, span) in &verdict.faults {
            if let Some(k) = self.names.iter().position(|n| n == v) {
                faulted[k].push(*span);
            }
        }
        let set_aside = self
            .watched
            .into_iter()
            .filter(|(_, o)| {
                let Some(k) = self.names.iter().position(|n| *n == o.vantage) else {
                    return false;
                };
                // Sorted and disjoint: the last span starting at or before the probe.
                let t = o.received_at_ms;
                let at = faulted[k].partition_point(|s| s.0 <= t);
                at > 0 && t < faulted[k][at - 1].1
            })
            .collect();
        let faults = verdict
            .faults
            .into_iter()
            .map(|(vantage, (start_ms, end_ms))| VantageFault {
                establishment: *est,
                interface: iface,
                vantage,
                start_ms,
                end_ms,
                set_aside: 0,
            })
            .collect();
        let mut spans: Vec<(Span, bool)> = covs
            .iter()
            .flat_map(|c| c.spans.iter().copied().zip(c.open_end.iter().copied()))
            .collect();
        spans.sort_unstable();
        let union = intervals::merge(spans.iter().map(|s| s.0).collect());
        // A span of the union ends open when some vantage's span ending there does.
        let open_end = union
            .iter()
            .map(|u| spans.iter().any(|(s, open)| *open && s.1 == u.1))
            .collect();
        Combined {
            episodes,
            coverage: SeriesCoverage {
                spans: union,
                open_end,
            },
            faults,
            covered: self
                .names
                .into_iter()
                .zip(covs)
                .map(|(v, c)| (v, c.spans))
                .collect(),
            series: (*est, iface),
            shadowed: self.shadowed.iter().map(|s| s.0).collect(),
            set_aside,
        }
    }
}

impl Combined {
    /// How long each vantage covered the series inside `period`.
    pub fn covered_in(&self, period: Span) -> impl Iterator<Item = VantageCoverage> + '_ {
        self.covered
            .iter()
            .map(move |(vantage, spans)| VantageCoverage {
                establishment: self.series.0,
                interface: self.series.1,
                vantage: vantage.clone(),
                covered_s: intervals::total(&intervals::intersect(spans, &[period])) as f64
                    / 1000.0,
            })
    }
}

/// The series' episode for a span where the quorum held: it starts where the quorum was
/// reached (the five failures are those of the vantage episode that reached it, the latest
/// begun), ends where it was lost (by the reply, cut or open end of a vantage episode ending
/// there, if one does; otherwise by a change of coverage, neither cut nor open).
fn episode_of(span: Span, per_vantage: &[Vec<Episode>]) -> Episode {
    let (start, end) = span;
    let holding = per_vantage
        .iter()
        .flatten()
        .filter(|e| e.start_ms <= start && e.end_ms > start);
    let starter = holding
        .max_by_key(|e| e.start_ms)
        .expect("a vantage is down where the quorum is reached");
    let ending: Vec<&Episode> = per_vantage
        .iter()
        .flatten()
        .filter(|e| e.end_ms == end && e.start_ms < end)
        .collect();
    let mut ep = starter.clone();
    ep.start_ms = start;
    ep.end_ms = end;
    ep.open = ending.iter().any(|e| e.open);
    ep.cut = !ep.open && ending.iter().any(|e| e.cut);
    ep.ended_by = ending.iter().find_map(|e| e.ended_by.clone());
    ep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vantage {
        Vantage::new(s).unwrap()
    }

    #[test]
    fn quorum_needed() {
        use VantageQuorum::*;
        // n:            0  1  2  3  4  5
        let cases = [
            (Majority, [0, 1, 2, 2, 3, 3]),
            (All, [0, 1, 2, 3, 4, 5]),
            (Any, [0, 1, 1, 1, 1, 1]),
            (AtLeast(2), [0, 1, 2, 2, 2, 2]),
            (AtLeast(4), [0, 1, 2, 3, 4, 4]),
        ];
        for (q, want) in cases {
            let got: Vec<usize> = (0..6).map(|n| q.needed(n)).collect();
            assert_eq!(got, want, "{q}");
        }
    }

    #[test]
    fn quorum_parses_and_prints() {
        #[derive(Deserialize)]
        struct C {
            q: VantageQuorum,
        }
        let p = |s: &str| toml::from_str::<C>(s).map(|c| c.q);
        assert_eq!(p("q = \"majority\"").unwrap(), VantageQuorum::Majority);
        assert_eq!(p("q = \"all\"").unwrap(), VantageQuorum::All);
        assert_eq!(p("q = \"any\"").unwrap(), VantageQuorum::Any);
        assert_eq!(p("q = 2").unwrap(), VantageQuorum::AtLeast(2));
        for bad in ["q = 0", "q = -1", "q = \"most\"", "q = 1.5"] {
            let e = p(bad).unwrap_err().to_string();
            assert!(e.contains("vantage_quorum must be"), "{bad}: {e}");
        }
        assert_eq!(
            serde_json::to_string(&VantageQuorum::AtLeast(3)).unwrap(),
            "3"
        );
        assert_eq!(
            serde_json::to_string(&VantageQuorum::Majority).unwrap(),
            "\"majority\""
        );
    }

    #[test]
    fn one_view_is_its_own_verdict() {
        let a = v("a");
        let views = [View {
            vantage: &a,
            covered: &[(0, 100)],
            down: &[(10, 20), (50, 60)],
        }];
        let got = combine(VantageQuorum::Majority, &views);
        assert_eq!(got.down, vec![(10, 20), (50, 60)]);
        assert!(got.faults.is_empty());
    }

    #[test]
    fn two_views_one_down_is_a_fault() {
        let (a, b) = (v("a"), v("b"));
        let views = [
            View {
                vantage: &a,
                covered: &[(0, 100)],
                down: &[(10, 20)],
            },
            View {
                vantage: &b,
                covered: &[(0, 100)],
                down: &[],
            },
        ];
        // Majority of 2 is 2: one alone is a fault.
        let got = combine(VantageQuorum::Majority, &views);
        assert_eq!(got.down, vec![]);
        assert_eq!(got.faults, vec![(a.clone(), (10, 20))]);
        // Policy "any": the same outage is downtime.
        let any = combine(VantageQuorum::Any, &views);
        assert_eq!(any.down, vec![(10, 20)]);
        assert!(any.faults.is_empty());
    }

    #[test]
    fn two_down_overlapping_is_downtime_on_the_overlap() {
        let (a, b) = (v("a"), v("b"));
        let views = [
            View {
                vantage: &a,
                covered: &[(0, 100)],
                down: &[(10, 40)],
            },
            View {
                vantage: &b,
                covered: &[(0, 100)],
                down: &[(30, 60)],
            },
        ];
        // Both down on [30, 40): downtime; a alone on [10, 30), b alone on [40, 60): faults.
        let got = combine(VantageQuorum::Majority, &views);
        assert_eq!(got.down, vec![(30, 40)]);
        assert_eq!(
            got.faults,
            vec![(a.clone(), (10, 30)), (b.clone(), (40, 60))]
        );
    }

    #[test]
    fn three_views_need_two() {
        let (a, b, c) = (v("a"), v("b"), v("c"));
        let views = [
            View {
                vantage: &a,
                covered: &[(0, 100)],
                down: &[(10, 50)],
            },
            View {
                vantage: &b,
                covered: &[(0, 100)],
                down: &[(20, 30), (45, 70)],
            },
            View {
                vantage: &c,
                covered: &[(0, 100)],
                down: &[(60, 80)],
            },
        ];
        // Count down: [10,20) 1, [20,30) 2, [30,45) 1, [45,50) 2, [50,60) 1, [60,70) 2, [70,80) 1.
        let got = combine(VantageQuorum::Majority, &views);
        assert_eq!(got.down, vec![(20, 30), (45, 50), (60, 70)]);
        assert_eq!(
            got.faults,
            vec![
                (a.clone(), (10, 20)),
                (a.clone(), (30, 45)),
                (b.clone(), (50, 60)),
                (c.clone(), (70, 80)),
            ]
        );
        // All three needed: never; every episode is a fault, whole (a 1, b 2, c 1).
        let all = combine(VantageQuorum::All, &views);
        assert!(all.down.is_empty());
        assert_eq!(all.faults.len(), 4);
    }

    #[test]
    fn a_view_not_covering_shrinks_n() {
        let (a, b, c) = (v("a"), v("b"), v("c"));
        let views = [
            View {
                vantage: &a,
                covered: &[(0, 100)],
                down: &[(10, 90)],
            },
            View {
                vantage: &b,
                covered: &[(0, 100)],
                down: &[(10, 90)],
            },
            // c stops covering at 50: from then on n = 2 and 2 down are needed, still there.
            View {
                vantage: &c,
                covered: &[(0, 50)],
                down: &[],
            },
        ];
        let got = combine(VantageQuorum::Majority, &views);
        assert_eq!(got.down, vec![(10, 90)]);
        assert!(got.faults.is_empty());
        // a alone down, b up; c covers [0, 50) only, d [40, 100): n is 3 on [40, 50), 2 else.
        let d = v("d");
        let views = [
            View {
                vantage: &a,
                covered: &[(0, 100)],
                down: &[(10, 90)],
            },
            View {
                vantage: &c,
                covered: &[(0, 50)],
                down: &[(0, 50)],
            },
            View {
                vantage: &d,
                covered: &[(40, 100)],
                down: &[],
            },
        ];
        // [0,10): c only down of {a,c}: 1 < 2. [10,40): a, c of {a,c}: down. [40,50): a, c of
        // {a,c,d}: 2 >= 2, down. [50,90): a of {a,d}: 1 < 2, fault.
        let got = combine(VantageQuorum::Majority, &views);
        assert_eq!(got.down, vec![(10, 50)]);
        assert_eq!(
            got.faults,
            vec![(a.clone(), (50, 90)), (c.clone(), (0, 10))]
        );
    }

    #[test]
    fn nobody_covering_is_never_down() {
        let (a, b) = (v("a"), v("b"));
        // Down outside its coverage is ignored; with nobody covering, nothing is down.
        let views = [
            View {
                vantage: &a,
                covered: &[(0, 10)],
                down: &[(20, 30)],
            },
            View {
                vantage: &b,
                covered: &[],
                down: &[],
            },
        ];
        let got = combine(VantageQuorum::Any, &views);
        assert!(got.down.is_empty());
        assert!(got.faults.is_empty());
        assert_eq!(combine(VantageQuorum::Majority, &[]).down, vec![]);
    }

    #[test]
    fn ties_at_span_edges() {
        let (a, b) = (v("a"), v("b"));
        // a down [10, 20), b down [20, 30): they touch, never overlap: no downtime.
        let views = [
            View {
                vantage: &a,
                covered: &[(0, 100)],
                down: &[(10, 20)],
            },
            View {
                vantage: &b,
                covered: &[(0, 100)],
                down: &[(20, 30)],
            },
        ];
        let got = combine(VantageQuorum::Majority, &views);
        assert!(got.down.is_empty());
        assert_eq!(
            got.faults,
            vec![(a.clone(), (10, 20)), (b.clone(), (20, 30))]
        );
        // b's coverage ends exactly where a's episode starts: a alone from 20 on, down.
        let views = [
            View {
                vantage: &a,
                covered: &[(0, 100)],
                down: &[(20, 40)],
            },
            View {
                vantage: &b,
                covered: &[(0, 20), (40, 100)],
                down: &[],
            },
        ];
        let got = combine(VantageQuorum::Majority, &views);
        assert_eq!(got.down, vec![(20, 40)]);
        assert!(got.faults.is_empty());
        // Adjacent down pieces under different quorums merge into one span.
        let views = [
            View {
                vantage: &a,
                covered: &[(0, 100)],
                down: &[(10, 30)],
            },
            View {
                vantage: &b,
                covered: &[(0, 20)],
                down: &[(10, 20)],
            },
        ];
        let got = combine(VantageQuorum::Majority, &views);
        assert_eq!(got.down, vec![(10, 30)]);
    }
}

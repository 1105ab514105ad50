//! Confirmation bursts (methodology section 8): detection must not wait for the schedule. Per
//! series (establishment × interface), a burst starts after a failure, or as soon as a scheduled
//! request has been outstanding longer than the burst interval (a hang announces itself by
//! silence). It then sends a request every interval, without waiting for the earlier ones, until
//! a reply comes or five of its requests, sent within the window, have all failed. With 30 s
//! time-outs and 5 s bursts a hang is confirmed by five requests sent within 20 s and alerted when
//! the fifth times out, 50 s after the first.
//!
//! Once a burst has confirmed an outage the series is known down: further failures start no
//! burst (the schedule watches for the recovery; the bank is not loaded five times over while it
//! is down) until a reply comes, or the monitor's own error breaks its coverage (failures after a
//! gap need five new ones). A request of a burst still outstanding after its burst ended
//! starts no new burst by its slowness, only by failing.
//!
//! This module only decides; the daemon sends. All decisions are taken under one lock, so a
//! failure and a reply racing each other never leave a burst half-ended.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::domain::{EstablishmentCode, Interface, Outcome};

/// A series: establishment and interface.
pub type Series = (EstablishmentCode, Interface);

/// The rule a burst confirms: `failures` failures, the last sent at most `window` after the first.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub interval: Duration,
    pub failures: usize,
    pub window: Duration,
    pub aspsp_error_is_failure: bool,
}

#[derive(Debug)]
struct Burst {
    id: u64,
    /// The burst's requests (the one that started it first): run id and when it was sent.
    sends: Vec<(u64, Instant)>,
    failed: BTreeSet<u64>,
}

#[derive(Debug, Default)]
struct SeriesState {
    burst: Option<Burst>,
    /// A burst confirmed the outage and no reply came since.
    down: bool,
}

/// What the caller must do after telling the bursts something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// A burst started: run its sender ([`Bursts::next_send`]) for this burst id.
    Started(u64),
}

/// What the sender of a burst does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Wait until then, and ask again.
    WaitUntil(Instant),
    /// Send a request now, with this run id (already counted in the burst).
    Send(u64),
    /// The burst is over.
    Done,
}

/// The bursts of every series of one monitor.
#[derive(Debug)]
pub struct Bursts {
    rule: Rule,
    series: Mutex<BTreeMap<Series, SeriesState>>,
    ids: AtomicU64,
}

impl Bursts {
    pub fn new(rule: Rule) -> Self {
        Self {
            rule,
            series: Mutex::new(BTreeMap::new()),
            ids: AtomicU64::new(1),
        }
    }

    pub fn rule(&self) -> Rule {
        self.rule
    }

    /// A new run id (every request the daemon sends has one).
    pub fn run_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Series, SeriesState>> {
        self.series.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A scheduled request sent at `sent` has been outstanding for the burst interval.
    pub fn outstanding(&self, series: Series, run: u64, sent: Instant) -> Action {
        let mut g = self.lock();
        let s = g.entry(series).or_default();
        if s.burst.is_some() || s.down {
            return Action::Nothing;
        }
        let id = self.run_id();
        s.burst = Some(Burst {
            id,
            sends: vec![(run, sent)],
            failed: BTreeSet::new(),
        });
        Action::Started(id)
    }

    /// A request of the series ended with `outcome` (`None`: it produced nothing).
    pub fn finished(
        &self,
        series: Series,
        run: u64,
        sent: Instant,
        outcome: Option<Outcome>,
    ) -> Action {
        let Some(outcome) = outcome else {
            return Action::Nothing;
        };
        let mut g = self.lock();
        let s = g.entry(series).or_default();
        if outcome == Outcome::ProbeError {
            // The monitor's own fault tells nothing of the bank: the burst replaces the request.
            // It is a gap in coverage (methodology 1): after it, failures need five new ones,
            // so a confirmed outage is confirmed again.
            s.down = false;
            if let Some(b) = &mut s.burst {
                b.sends.retain(|(r, _)| *r != run);
                if b.sends.is_empty() {
                    s.burst = None;
                }
            }
            return Action::Nothing;
        }
        if !outcome.is_failure(self.rule.aspsp_error_is_failure) {
            // A reply: the interface answers; any burst is over.
            s.down = false;
            s.burst = None;
            return Action::Nothing;
        }
        match &mut s.burst {
            Some(b) => {
                if b.sends.iter().any(|(r, _)| *r == run) {
                    b.failed.insert(run);
                }
                if confirmed(b, &self.rule) {
                    s.burst = None;
                    s.down = true;
                }
                Action::Nothing
            }
            None if s.down => Action::Nothing,
            None => {
                let id = self.run_id();
                s.burst = Some(Burst {
                    id,
                    sends: vec![(run, sent)],
                    failed: BTreeSet::from([run]),
                });
                Action::Started(id)
            }
        }
    }

    /// The sender of burst `id` asks what to do at `now`.
    pub fn next_send(&self, series: Series, id: u64, now: Instant) -> Next {
        let mut g = self.lock();
        let Some(b) = g
            .get_mut(&series)
            .and_then(|s| s.burst.as_mut())
            .filter(|b| b.id == id)
        else {
            return Next::Done;
        };
        let Some(&(_, last)) = b.sends.last() else {
            return Next::Done;
        };
        if sent_enough(b, &self.rule) {
            // The last five are out within the window: their outcomes settle it.
            return Next::WaitUntil(now + self.rule.interval);
        }
        let due = last + self.rule.interval;
        if now < due {
            return Next::WaitUntil(due);
        }
        let run = self.run_id();
        b.sends.push((run, now));
        Next::Send(run)
    }
}

/// The burst's last `failures` requests were sent within the window.
fn sent_enough(b: &Burst, rule: &Rule) -> bool {
    let n = b.sends.len();
    let k = rule.failures.max(1);
    n >= k && b.sends[n - 1].1.duration_since(b.sends[n - k].1) <= rule.window
}

/// The burst's last `failures` requests, sent within the window, all failed.
fn confirmed(b: &Burst, rule: &Rule) -> bool {
    let k = rule.failures.max(1);
    sent_enough(b, rule)
        && b.sends[b.sends.len() - k..]
            .iter()
            .all(|(r, _)| b.failed.contains(r))
}

#[cfg(test)]
mod tests {
    //! The decisions, with explicit instants (no clock is waited on).

    use super::*;

    fn rule() -> Rule {
        Rule {
            interval: Duration::from_secs(5),
            failures: 5,
            window: Duration::from_secs(30),
            aspsp_error_is_failure: true,
        }
    }

    fn series() -> Series {
        ("13807".parse().unwrap(), Interface::Api)
    }

    #[test]
    fn a_hang_is_confirmed_by_five_requests_sent_within_20_s() {
        let b = Bursts::new(rule());
        let t0 = Instant::now();
        let s = series();
        let Action::Started(id) = b.outstanding(s, 100, t0) else {
            panic!("a request outstanding for the interval starts a burst")
        };
        // Another slow request of the series starts no second burst.
        assert_eq!(b.outstanding(s, 101, t0), Action::Nothing);
        let mut runs = vec![100];
        for k in 1..=4 {
            let at = t0 + Duration::from_secs(5 * k);
            assert_eq!(
                b.next_send(s, id, at - Duration::from_secs(1)),
                Next::WaitUntil(at)
            );
            let Next::Send(r) = b.next_send(s, id, at) else {
                panic!("send {k}")
            };
            runs.push(r);
        }
        // Five out within 20 s: no more requests, whatever the wait.
        let later = t0 + Duration::from_secs(40);
        assert!(matches!(b.next_send(s, id, later), Next::WaitUntil(_)));
        // They time out in turn; the fifth confirms the outage, and the series is known down.
        for (i, r) in runs.iter().enumerate() {
            b.finished(s, *r, t0, Some(Outcome::NoReply));
            let over = b.next_send(s, id, later) == Next::Done;
            assert_eq!(over, i == 4, "after failure {i}");
        }
        assert_eq!(
            b.finished(s, 200, later, Some(Outcome::NoReply)),
            Action::Nothing
        );
        // The monitor's own error is a gap in coverage: the next failure is confirmed anew.
        b.finished(s, 201, later, Some(Outcome::ProbeError));
        assert!(matches!(
            b.finished(s, 202, later, Some(Outcome::NoReply)),
            Action::Started(_)
        ));
        b.finished(s, 203, later, Some(Outcome::Ok));
        // A reply: up again; the next failure starts a new burst.
        assert!(matches!(
            b.finished(s, 202, later, Some(Outcome::AspspError)),
            Action::Started(_)
        ));
    }

    #[test]
    fn a_reply_ends_the_burst_and_a_probe_error_is_replaced() {
        let b = Bursts::new(rule());
        let t0 = Instant::now();
        let s = series();
        let Action::Started(id) = b.finished(s, 1, t0, Some(Outcome::NoReply)) else {
            panic!("a failure starts a burst")
        };
        let Next::Send(r) = b.next_send(s, id, t0 + Duration::from_secs(5)) else {
            panic!()
        };
        b.finished(s, r, t0, Some(Outcome::ProbeError));
        // The monitor's own error is no request: the next one is due at once.
        assert!(matches!(
            b.next_send(s, id, t0 + Duration::from_secs(10)),
            Next::Send(_)
        ));
        // A 4xx is a reply.
        b.finished(s, 50, t0, Some(Outcome::Rejected));
        assert_eq!(b.next_send(s, id, t0 + Duration::from_secs(15)), Next::Done);
    }
}

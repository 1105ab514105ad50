//! The polars side of the publication, kept in this one file because polars' Rust API changes
//! between releases. The engine computes every daily figure; polars only reshapes and aggregates
//! them (quarter totals, the bank-wide daily series the charts draw), and counts what the engine
//! does not: successful calls and distinct TPPs per service, from the raw observations, in the
//! engine's local days.

use polars::prelude::*;

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use crate::domain::{EstablishmentCode, Interface, Observation, Outcome, Service, TppId};
use crate::engine::{DayFigures, Period, Settings, time};

pub type FrameResult<T> = Result<T, PolarsError>;

/// The engine's day rows as a frame.
pub fn days(rows: &[DayFigures]) -> FrameResult<DataFrame> {
    let date: Vec<String> = rows.iter().map(|d| d.date.to_string()).collect();
    let est: Vec<String> = rows.iter().map(|d| d.establishment.to_string()).collect();
    let iface: Vec<String> = rows.iter().map(|d| d.interface.to_string()).collect();
    let f = |g: fn(&DayFigures) -> f64| rows.iter().map(g).collect::<Vec<f64>>();
    df!(
        "date" => date,
        "establishment" => est,
        "interface" => iface,
        "seconds" => f(|d| d.seconds_in_day as f64),
        "covered_s" => f(|d| d.covered_s),
        "downtime_s" => f(|d| d.downtime_s),
        "planned_s" => f(|d| d.planned_downtime_s),
        "unmonitored_s" => f(|d| d.unmonitored_s),
        "requests" => f(|d| d.requests as f64),
        "no_reply" => f(|d| d.no_reply as f64),
        "bank_errors" => f(|d| d.bank_errors as f64),
    )
}

fn sums() -> Vec<Expr> {
    [
        "seconds",
        "covered_s",
        "downtime_s",
        "planned_s",
        "unmonitored_s",
        "requests",
        "no_reply",
        "bank_errors",
    ]
    .iter()
    .map(|c| col(*c).sum())
    .collect()
}

fn ratios(lf: LazyFrame) -> LazyFrame {
    lf.with_columns([
        // Over the covered time (methodology section 4); null ("n.d.") when nothing was.
        when(col("covered_s").gt(lit(0.0)))
            .then(lit(100.0) - col("downtime_s") / col("covered_s") * lit(100.0))
            .otherwise(lit(NULL).cast(DataType::Float64))
            .alias("uptime_pct"),
        when(col("requests").gt(lit(0.0)))
            .then(col("bank_errors") / col("requests") * lit(100.0))
            .otherwise(lit(NULL).cast(DataType::Float64))
            .alias("error_rate_pct"),
    ])
}

/// Totals over the period per establishment and interface: uptime over the whole period is
/// 100 − Σdowntime / Σcovered × 100 (each day weighs its real covered length).
pub fn period_summary(days: &DataFrame) -> FrameResult<DataFrame> {
    ratios(
        days.clone()
            .lazy()
            .group_by([col("establishment"), col("interface")])
            .agg(sums()),
    )
    .sort(["establishment", "interface"], Default::default())
    .collect()
}

/// Bank-wide daily series per interface (all establishments together), for the charts.
pub fn bank_daily(days: &DataFrame) -> FrameResult<DataFrame> {
    ratios(
        days.clone()
            .lazy()
            .group_by([col("date"), col("interface")])
            .agg(sums()),
    )
    .sort(["date", "interface"], Default::default())
    .collect()
}

/// Successful calls and distinct TPPs per establishment, interface and service over the period.
///
/// The observations (time-ordered, inside the period) are first counted per establishment,
/// interface, service, TPP and local day — the engine's own days, so both agree on every
/// midnight and DST change: a quarter of ten million rows becomes a frame of some thousands,
/// which polars then aggregates. Observations without a TPP (customer interfaces) count no TPP.
pub fn usage(obs: &[Observation], settings: &Settings, period: Period) -> FrameResult<DataFrame> {
    let mut u = UsageCounts::new(settings, period);
    for o in obs {
        u.add(o);
    }
    u.frame()
}

/// Key of [`UsageCounts`]: establishment, interface, service, TPP, day of the period.
type UsageKey = (EstablishmentCode, Interface, Service, Option<TppId>, u32);

/// The counting of [`usage`] as the observations of the period stream by, in time order (a
/// report counts a quarter as it reads it).
pub struct UsageCounts {
    settings: Settings,
    ends: Vec<i64>,
    day: usize,
    // Few keys, hit millions of times: a fast non-cryptographic hash (the keys are our own).
    counts: HashMap<UsageKey, u32, BuildHasherDefault<rustc_hash::FxHasher>>,
}

impl UsageCounts {
    pub fn new(settings: &Settings, period: Period) -> Self {
        let tz = settings.tz;
        let ends = time::days(period.from, period.to)
            .map(|d| time::day_start_ms(tz, d + chrono::Duration::days(1)))
            .collect();
        Self {
            settings: settings.clone(),
            ends,
            day: 0,
            counts: HashMap::default(),
        }
    }

    /// One observation of the period, in time order.
    pub fn add(&mut self, o: &Observation) {
        // TPP traffic only (methodology section 6): the monitor's own calls are no usage.
        if o.outcome != Outcome::Ok || self.settings.is_monitor(o) {
            return;
        }
        while self.day < self.ends.len() && o.received_at_ms >= self.ends[self.day] {
            self.day += 1;
        }
        if self.day == self.ends.len() {
            return;
        }
        let key = (
            o.establishment,
            o.interface,
            o.service.clone(),
            o.tpp.clone(),
            self.day as u32,
        );
        *self.counts.entry(key).or_default() += 1;
    }

    pub fn frame(self) -> FrameResult<DataFrame> {
        let mut rows: Vec<(UsageKey, u32)> = self.counts.into_iter().collect();
        rows.sort_unstable();
        let frame = df!(
            "establishment" => rows.iter().map(|r| r.0.0.as_str()).collect::<Vec<&str>>(),
            "interface" => rows.iter().map(|r| r.0.1.as_str()).collect::<Vec<&str>>(),
            "service" => rows.iter().map(|r| r.0.2.as_str()).collect::<Vec<&str>>(),
            "tpp" => rows.iter().map(|r| r.0.3.as_deref()).collect::<Vec<Option<&str>>>(),
            "day" => rows.iter().map(|r| r.0.4).collect::<Vec<u32>>(),
            "calls" => rows.iter().map(|r| r.1).collect::<Vec<u32>>(),
        )?;
        frame
            .lazy()
            .group_by([col("establishment"), col("interface"), col("service")])
            .agg([
                col("calls")
                    .sum()
                    .cast(DataType::UInt32)
                    .alias("successful_calls"),
                col("tpp").drop_nulls().n_unique().alias("tpps"),
                col("day").n_unique().alias("days_with_traffic"),
            ])
            .sort(
                ["establishment", "interface", "service"],
                Default::default(),
            )
            .collect()
    }
}

/// A string column as owned values.
pub fn strs(df: &DataFrame, name: &str) -> FrameResult<Vec<String>> {
    let ca = df.column(name)?.str()?;
    Ok((0..ca.len())
        .map(|i| ca.get(i).unwrap_or_default().to_owned())
        .collect())
}

/// A numeric column whose nulls are "n.d.".
pub fn opt_nums(df: &DataFrame, name: &str) -> FrameResult<Vec<Option<f64>>> {
    let c = df.column(name)?.cast(&DataType::Float64)?;
    let ca = c.f64()?;
    Ok((0..ca.len()).map(|i| ca.get(i)).collect())
}

/// A numeric column as f64 values (counts: a null is none).
pub fn nums(df: &DataFrame, name: &str) -> FrameResult<Vec<f64>> {
    let c = df.column(name)?.cast(&DataType::Float64)?;
    let ca = c.f64()?;
    Ok((0..ca.len()).map(|i| ca.get(i).unwrap_or(0.0)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CompactString, Service, Source};

    fn ob(at: &str, iface: Interface, tpp: Option<&str>, status: u16) -> Observation {
        Observation {
            received_at_ms: chrono::DateTime::parse_from_rfc3339(at)
                .unwrap()
                .timestamp_millis(),
            establishment: "13807".parse().unwrap(),
            interface: iface,
            service: Service::new(if iface == Interface::Api {
                "cbpii"
            } else {
                "psu_login"
            })
            .unwrap(),
            source: Source::Log,
            tpp: tpp.map(CompactString::new),
            status: Some(status),
            latency_ms: Some(100.0),
            error_code: None,
            request_id: CompactString::new(at),
            outcome: Outcome::from_reply(Some(status), None),
            vantage: crate::domain::Vantage::gateway(),
        }
    }

    #[test]
    fn usage_counts_successful_calls_tpps_and_local_days() {
        // Paris is UTC+2 in July. API: A at 1 July 21:30Z (23:30 local, 1 July), B at
        // 22:30Z (00:30 local, 2 July), A on 2 July; a 400 from C is not a successful call.
        // → 3 calls, 2 distinct TPPs (A, B), 2 local days. The web page: 1 call, no TPP, 1 day.
        // A call at 3 July 00:30 local lies after the period [1 July, 3 July): not counted.
        // The monitor's own calls are no usage: its probe at 10:30Z, and its request as the
        // gateway logged it (client id M, the configuration's) at 11:00Z.
        let mut probe = ob("2024-07-02T10:30:00Z", Interface::Api, Some("M"), 200);
        probe.source = Source::Probe;
        let obs = [
            ob("2024-07-01T21:30:00Z", Interface::Api, Some("A"), 200),
            ob("2024-07-01T22:00:00Z", Interface::Api, Some("C"), 400),
            ob("2024-07-01T22:30:00Z", Interface::Api, Some("B"), 200),
            ob("2024-07-02T09:00:00Z", Interface::PsuWeb, None, 200),
            ob("2024-07-02T10:00:00Z", Interface::Api, Some("A"), 200),
            probe,
            ob("2024-07-02T11:00:00Z", Interface::Api, Some("M"), 200),
            ob("2024-07-02T22:30:00Z", Interface::Api, Some("A"), 200),
        ];
        let settings = Settings {
            monitor_client_ids: vec!["M".into()],
            ..Settings::default()
        };
        let period = Period {
            from: "2024-07-01".parse().unwrap(),
            to: "2024-07-03".parse().unwrap(),
        };
        let u = usage(&obs, &settings, period).unwrap();
        assert_eq!(strs(&u, "interface").unwrap(), ["api", "psu_web"]);
        assert_eq!(nums(&u, "successful_calls").unwrap(), [3.0, 1.0]);
        assert_eq!(nums(&u, "tpps").unwrap(), [2.0, 0.0]);
        assert_eq!(nums(&u, "days_with_traffic").unwrap(), [2.0, 1.0]);
    }
}

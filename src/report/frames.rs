//! The polars side of the publication, kept in this one file because polars' Rust API changes
//! between releases. The engine computes every daily figure; polars only reshapes and aggregates
//! them (quarter totals, the bank-wide daily series the charts draw), and counts what the engine
//! does not: successful calls and distinct TPPs per service, from the raw observations, in local
//! days of the configured zone.

use polars::prelude::*;

use crate::domain::{Observation, Outcome};
use crate::engine::DayFigures;

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
        (lit(100.0) - col("downtime_s") / col("seconds") * lit(100.0)).alias("uptime_pct"),
        when(col("requests").gt(lit(0.0)))
            .then(col("bank_errors") / col("requests") * lit(100.0))
            .otherwise(lit(0.0))
            .alias("error_rate_pct"),
    ])
}

/// Totals over the period per establishment and interface: uptime over the whole period is
/// 100 − Σdowntime / Σseconds × 100 (each day weighs its real length).
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
/// The observations (time-ordered) are first counted per establishment, interface, service, TPP
/// and quarter of an hour (every zone's offset is a whole number of quarters, so a quarter of an
/// hour lies in one local day): a quarter of ten million rows becomes a frame of some thousands,
/// which polars then turns into local days and aggregates.
pub fn usage(obs: &[Observation], tz: chrono_tz::Tz) -> FrameResult<DataFrame> {
    const QUARTER_HOUR_MS: i64 = 900_000;
    type Key<'a> = (&'a str, &'static str, &'a str, &'a str, i64);
    let mut counts: std::collections::HashMap<Key<'_>, u32> = std::collections::HashMap::new();
    for o in obs.iter().filter(|o| o.outcome == Outcome::Ok) {
        let key = (
            o.establishment.as_str(),
            o.interface.as_str(),
            o.service.as_str(),
            o.tpp.as_deref().unwrap_or_default(),
            o.received_at_ms.div_euclid(QUARTER_HOUR_MS) * QUARTER_HOUR_MS,
        );
        *counts.entry(key).or_default() += 1;
    }
    let mut rows: Vec<(Key<'_>, u32)> = counts.into_iter().collect();
    rows.sort_unstable();
    let frame = df!(
        "establishment" => rows.iter().map(|r| r.0.0).collect::<Vec<&str>>(),
        "interface" => rows.iter().map(|r| r.0.1).collect::<Vec<&str>>(),
        "service" => rows.iter().map(|r| r.0.2).collect::<Vec<&str>>(),
        "tpp" => rows.iter().map(|r| r.0.3).collect::<Vec<&str>>(),
        "received_at" => rows.iter().map(|r| r.0.4).collect::<Vec<i64>>(),
        "calls" => rows.iter().map(|r| r.1).collect::<Vec<u32>>(),
    )?;
    frame
        .lazy()
        .with_column(
            col("received_at")
                .cast(DataType::Datetime(
                    TimeUnit::Milliseconds,
                    Some(TimeZone::UTC),
                ))
                .dt()
                .convert_time_zone(TimeZone::from_chrono(&tz))
                .dt()
                .date()
                .alias("day"),
        )
        .group_by([col("establishment"), col("interface"), col("service")])
        .agg([
            col("calls")
                .sum()
                .cast(DataType::UInt32)
                .alias("successful_calls"),
            col("tpp").n_unique().alias("tpps"),
            col("day").n_unique().alias("days_with_traffic"),
        ])
        .sort(
            ["establishment", "interface", "service"],
            Default::default(),
        )
        .collect()
}

/// A string column as owned values.
pub fn strs(df: &DataFrame, name: &str) -> FrameResult<Vec<String>> {
    let ca = df.column(name)?.str()?;
    Ok((0..ca.len())
        .map(|i| ca.get(i).unwrap_or_default().to_owned())
        .collect())
}

/// A numeric column as f64 values.
pub fn nums(df: &DataFrame, name: &str) -> FrameResult<Vec<f64>> {
    let c = df.column(name)?.cast(&DataType::Float64)?;
    let ca = c.f64()?;
    Ok((0..ca.len()).map(|i| ca.get(i).unwrap_or(0.0)).collect())
}

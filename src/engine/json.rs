//! The JSON view of [`Kpis`] that `dispo kpi --format json` prints and scripts rely on (names
//! documented in the README). Instants in RFC 3339 UTC; numbers unrounded. Built in this one
//! place so every output that shows JSON shows the same names.

use serde_json::{Map, Value, json};

use super::time::rfc3339;
use super::{Kpis, LatencyStats};

fn per_service(
    latency: &std::collections::BTreeMap<crate::domain::Service, LatencyStats>,
    f: fn(&LatencyStats) -> Value,
) -> Value {
    Value::Object(
        latency
            .iter()
            .map(|(s, l)| (s.to_string(), f(l)))
            .collect::<Map<_, _>>(),
    )
}

pub fn to_json(k: &Kpis) -> Value {
    let days: Vec<Value> = k
        .days
        .iter()
        .map(|d| {
            // Every service with requests that day: its average is null when none was timed.
            let timed = |f: fn(&LatencyStats) -> Value| -> Value {
                Value::Object(
                    d.requests_by_service
                        .keys()
                        .chain(d.latency.keys())
                        .map(|s| (s.to_string(), d.latency.get(s).map_or(Value::Null, f)))
                        .collect::<Map<_, _>>(),
                )
            };
            json!({
                "date": d.date.to_string(),
                "establishment": d.establishment,
                "interface": d.interface,
                "seconds_in_day": d.seconds_in_day,
                "covered_s": d.covered_s,
                "coverage_pct": d.coverage_pct,
                "downtime_s": d.downtime_s,
                "planned_downtime_s": d.planned_downtime_s,
                "unplanned_downtime_s": d.unplanned_downtime_s(),
                "downtime_pct": d.downtime_pct,
                "uptime_pct": d.uptime_pct,
                "unmonitored_s": d.unmonitored_s,
                "requests": d.requests,
                "tpp_requests": d.tpp_requests,
                "probe_requests": d.probe_requests,
                "no_reply": d.no_reply,
                "bank_errors": d.bank_errors,
                "error_rate_pct": d.error_rate_pct,
                "replies": per_service(&d.latency, |l| json!(l.replies)),
                "avg_ms": timed(|l| json!(l.avg_ms)),
                "p50_ms": timed(|l| json!(l.p50_ms)),
                "p95_ms": timed(|l| json!(l.p95_ms)),
                "p99_ms": timed(|l| json!(l.p99_ms)),
                "max_ms": timed(|l| json!(l.max_ms)),
            })
        })
        .collect();
    let episodes: Vec<Value> = k
        .episodes
        .iter()
        .map(|e| {
            json!({
                "id": e.id(),
                "establishment": e.establishment,
                "interface": e.interface,
                "start": rfc3339(e.start_ms),
                "end": rfc3339(e.end_ms),
                "duration_s": e.duration_s(),
                "planned_s": e.planned_s,
                "open": e.open,
                "cut": e.cut,
                "began_before_period": e.began_before_period,
                "request_ids": e.request_ids,
                "ended_by": e.ended_by,
            })
        })
        .collect();
    let weeks: Vec<Value> = k
        .weeks
        .iter()
        .map(|w| {
            json!({
                "week": w.week,
                "monday": w.monday.to_string(),
                "establishment": w.establishment,
                "seconds": w.seconds,
                "covered_s": w.covered_s,
                "complete": w.complete,
                "uptime_pct": w.uptime_pct,
                "error_rate_pct": w.error_rate_pct,
                "avg_ms": w.avg_ms,
                "customer_uptime_pct": w.customer_uptime_pct,
                "misses": w.misses,
                "consecutive_missed": w.consecutive_missed,
                "level": w.level,
            })
        })
        .collect();
    let fallback: Vec<Value> = k
        .fallback
        .iter()
        .map(|f| {
            json!({
                "date": f.date.to_string(),
                "establishment": f.establishment,
                "tpp": f.tpp,
                "justified": f.justified,
                "unjustified": f.unjustified,
            })
        })
        .collect();
    // Section 10: empty unless a series was probed from two vantages or more.
    let vantages: Vec<Value> = k
        .vantages
        .iter()
        .map(|v| {
            json!({
                "establishment": v.establishment,
                "interface": v.interface,
                "vantage": v.vantage,
                "covered_s": v.covered_s,
            })
        })
        .collect();
    let vantage_faults: Vec<Value> = k
        .vantage_faults
        .iter()
        .map(|f| {
            json!({
                "establishment": f.establishment,
                "interface": f.interface,
                "vantage": f.vantage,
                "start": rfc3339(f.start_ms),
                "end": rfc3339(f.end_ms),
                "duration_s": f.duration_s(),
                "set_aside": f.set_aside,
            })
        })
        .collect();
    json!({
        "period": {"from": k.period.from.to_string(), "to": k.period.to.to_string(), "tz": k.settings.tz.name()},
        "days": days,
        "episodes": episodes,
        "weeks": weeks,
        "fallback": fallback,
        "vantage_quorum": k.settings.vantage_quorum,
        "vantages": vantages,
        "vantage_faults": vantage_faults,
    })
}

/// Every counting policy as JSON, as the annex's and evidence packs' `settings.json` show it:
/// `vantage_quorum` too, which the settings leave out of JSON when the default (so figures
/// written before it hash alike).
pub fn settings(s: &super::Settings) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.entry("vantage_quorum")
            .or_insert_with(|| json!(s.vantage_quorum));
    }
    v
}

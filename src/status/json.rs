//! `/status.json`: the page's model for scripts and the page's own refresh. Instants are RFC
//! 3339 in local time with their offset; figures nobody observed are `null`. Built field by
//! field, so nothing section 9 keeps out of public outputs can slip in.

use std::hash::{Hash as _, Hasher as _};

use serde_json::{Value, json};

use super::words::rfc3339_local;
use super::{Page, State};

/// The page as JSON. `revision` changes whenever what the page shows changes (not with the
/// time it was generated): the page's script reloads its content only then.
pub fn to_json(p: &Page) -> Value {
    let tz = p.tz;
    let t = |ms: i64| rfc3339_local(ms, tz);
    let establishments: Vec<Value> = p
        .establishments
        .iter()
        .map(|e| {
            let interfaces: Vec<Value> = e
                .interfaces
                .iter()
                .map(|i| {
                    let since = match i.state {
                        State::Up => None,
                        State::Down { since_ms } => Some(since_ms),
                        State::Unmonitored { since_ms } => since_ms,
                    };
                    json!({
                        "interface": i.interface.as_str(),
                        "state": i.state.key(),
                        "since": since.map(t),
                        "quarter": {
                            "uptime_pct": i.quarter.uptime_pct,
                            "coverage_pct": i.quarter.coverage_pct,
                            "avg_ms": i.quarter.avg_ms.iter()
                                .map(|(s, v)| (s.to_string(), json!(v)))
                                .collect::<serde_json::Map<_, _>>(),
                            "episodes": i.episodes,
                        },
                    })
                })
                .collect();
            let episodes: Vec<Value> = e
                .episodes
                .iter()
                .map(|x| {
                    json!({
                        "id": x.id,
                        "interface": x.interface.as_str(),
                        "start": t(x.start_ms),
                        "end": x.end_ms.map(t),
                        "open": x.end_ms.is_none(),
                        "duration_s": x.end_ms.map(|end| (end - x.start_ms) as f64 / 1000.0),
                        "cut": x.cut,
                        "planned_s": x.planned_s,
                    })
                })
                .collect();
            let maintenance: Vec<Value> = e
                .maintenance
                .iter()
                .map(|(a, b)| json!({"start": t(*a), "end": t(*b)}))
                .collect();
            json!({
                "code": e.code.as_str(),
                "name": e.name,
                "interfaces": interfaces,
                "episodes": episodes,
                "maintenance_ahead": maintenance,
            })
        })
        .collect();
    let mut v = json!({
        "quarter": {
            "from": p.quarter.from.to_string(),
            "to": p.quarter.to.to_string(),
            "provisional": true,
            "computed_at": t(p.quarter_computed_at_ms),
        },
        "tz": tz.name(),
        "synthetic": p.synthetic,
        "refresh_s": p.refresh_s,
        "establishments": establishments,
    });
    // Several vantage points (section 10): how many, never which; absent with one.
    if p.vantage_points > 1
        && let Some(o) = v.as_object_mut()
    {
        o.insert("vantage_points".into(), json!(p.vantage_points));
    }
    let revision = revision(&v);
    if let Some(o) = v.as_object_mut() {
        o.insert("revision".into(), json!(revision));
        o.insert("generated_at".into(), json!(t(p.generated_at_ms)));
    }
    v
}

/// A digest of the content (serde_json's maps are sorted: the same content, the same text).
fn revision(v: &Value) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.to_string().hash(&mut h);
    format!("{:016x}", h.finish())
}

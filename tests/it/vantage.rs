//! Live alerts across vantage points (methodology section 10): two `dispo run` nodes, `[monitor]
//! id` a and b, probe the real simulator over real TLS and share one database and one webhook.
//! One cut off from the bank (its establishment points at a port where nothing listens) is a
//! vantage fault: no `interface_down`, one `vantage_fault` for it. The bank failing for both
//! (the simulator's fault plan) is downtime: one `interface_down`, though both nodes saw it.
//!
//! At the shipped ratios scaled down by five: 6 s time-out, 1 s bursts, a 6 s window, a probe
//! every 12 s. Each runs on SQLite (one file) and on PostgreSQL; [`two_nodes`] takes any `--db`.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::sim_support::Sim;
use crate::support;

/// A loopback webhook recording every JSON body posted to `/hook`; returns its URL. It answers
/// after 1.5 s, three of the nodes' delivery polls (every 0.5 s): without a claim on the notice,
/// the other node would send it too meanwhile.
async fn webhook() -> (String, Arc<Mutex<Vec<Value>>>) {
    let got: Arc<Mutex<Vec<Value>>> = Default::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let g = g.clone();
            async move {
                g.lock().unwrap().push(v);
                tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, app).await });
    (format!("http://127.0.0.1:{port}/hook"), got)
}

/// A node's configuration: monitor `id`, the establishment at `port`, the shared webhook.
fn node_config(id: &str, sim: &Sim, port: u16, hook: &str, schedule: &str) -> String {
    format!(
        "[monitor]\nid = \"{id}\"\ntimeout_s = 6\nburst_interval_s = 1\nheartbeat_s = 0.5\n{}\n\
         [counting]\nwindow_ms = 6000\n\
         [alerts]\ncheck_interval_s = 3600\n[[alerts.webhook]]\nname = \"oncall\"\nurl = \"{hook}\"\n\
         [[probe]]\nname = \"v142\"\nstep = \"funds-confirmation\"\nschedule = \"{schedule} * * * * *\"\n\
         stet = \"1.4.2\"\niban = \"FR7613807008043001965405255\"\n",
        dispo::sim::pki::probe_establishment_toml("13807", port, &sim.pki)
    )
}

/// Runs nodes a and b for `run_s` seconds on the database `db` against `sim`, b cut off from it
/// when `cut_b`; returns what the webhook received, once both have stopped. b stops a second
/// before a: once a stops, b alone covers the bank, and what it sees is the verdict.
pub async fn two_nodes(sim: &Sim, dir: &Path, db: &str, cut_b: bool, run_s: u32) -> Vec<Value> {
    use chrono::Timelike;
    let (hook, got) = webhook().await;
    // A probe every 12 s, the first 3 s from now (whole seconds), the same for both nodes.
    let first = chrono::Utc::now().with_nanosecond(0).unwrap() + chrono::Duration::seconds(3);
    let mut secs: Vec<u32> = (0..5).map(|k| (first.second() + k * 12) % 60).collect();
    secs.sort_unstable();
    let schedule = secs
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let closed = support::free_port();
    let mut runs = Vec::new();
    let b_port = if cut_b { closed } else { sim.port };
    for (id, port, secs) in [("a", sim.port, run_s), ("b", b_port, run_s - 1)] {
        let cfg = dir.join(format!("{id}.toml"));
        std::fs::write(&cfg, node_config(id, sim, port, &hook, &schedule)).unwrap();
        let (d, db) = (format!("{secs}s"), db.to_owned());
        runs.push(tokio::task::spawn_blocking(move || {
            Command::new(support::dispo_bin())
                .args(["run", "--duration", &d, "--config"])
                .arg(&cfg)
                .args(["--db", &db])
                .output()
                .unwrap()
        }));
    }
    for r in runs {
        let out = r.await.unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let got = got.lock().unwrap().clone();
    for v in &got {
        eprintln!(
            "webhook: {} {} {} | {}",
            v["event"], v["kind"], v["key"], v["description"]
        );
    }
    got
}

/// What `dispo kpi` counts from the shared database: the episode ids, and the vantage faults
/// (`vantage/series-start`).
fn kpi(db: &str) -> (Vec<String>, Vec<String>) {
    let out = support::dispo_ok(&["kpi", "--format", "json", "--db", db]);
    let k: Value = serde_json::from_slice(&out.stdout).unwrap();
    let strings = |list: &str, field: &str| -> Vec<String> {
        k[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e[field].as_str().unwrap().to_owned())
            .collect()
    };
    let faults = k["vantage_faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            // As the live key names it: vantage/series-start.
            let start: chrono::DateTime<chrono::Utc> =
                f["start"].as_str().unwrap().parse().unwrap();
            format!(
                "{}/13807-api-{}",
                f["vantage"].as_str().unwrap(),
                start.format("%Y%m%dT%H%M%S%.3fZ")
            )
        })
        .collect();
    (strings("episodes", "id"), faults)
}

fn events<'a>(got: &'a [Value], kind: &str) -> Vec<(&'a str, &'a str)> {
    got.iter()
        .filter(|v| v["kind"] == kind)
        .map(|v| {
            (
                v["event"].as_str().unwrap_or(""),
                v["key"].as_str().unwrap_or(""),
            )
        })
        .collect()
}

support::on_both_async!(
    one_node_cut_off_is_a_vantage_fault_not_downtime,
    both_nodes_seeing_the_bank_down_give_one_alert,
);

async fn one_node_cut_off_is_a_vantage_fault_not_downtime(b: support::Backend) {
    let sim = Sim::start();
    let dir = support::tmp_dir("vantage", &format!("cut-{b:?}"));
    let db = b.db(&dir, "shared.db");
    // b's first probe ~3 s in is refused; its burst confirms by ~7 s (five within 4 s, the
    // 6 s window); a answers throughout, so 1 of the 2 covering vantages is down: majority
    // needs 2. The fault is alerted once the window (6 s) has passed since b confirmed, ~13 s
    // (b runs 21 s: room for a loaded machine).
    let got = two_nodes(&sim, &dir, &db, true, 22).await;
    assert_eq!(events(&got, "interface_down"), [], "{got:#?}");
    let faults = events(&got, "vantage_fault");
    assert_eq!(faults.len(), 2, "fired and resolved: {got:#?}");
    assert_eq!(faults[0].0, "firing");
    assert_eq!(faults[1].0, "resolved");
    assert!(
        faults[0].1.starts_with("vantage_fault/b/13807-api-"),
        "{faults:?}"
    );
    assert_eq!(faults[0].1, faults[1].1);
    let fired = got.iter().find(|v| v["kind"] == "vantage_fault").unwrap();
    assert_eq!(fired["severity"], "warning", "{fired}");
    // The batch agrees: no downtime, a vantage fault of b.
    let (episodes, batch_faults) = kpi(&db);
    assert_eq!(episodes, Vec::<String>::new());
    assert_eq!(
        batch_faults
            .iter()
            .map(|f| format!("vantage_fault/{f}"))
            .collect::<Vec<_>>(),
        [faults[0].1]
    );
}

async fn both_nodes_seeing_the_bank_down_give_one_alert(b: support::Backend) {
    let sim = Sim::start();
    sim.set_faults(
        json!({"fault": [{"establishment": "13807", "interface": "api", "kind": "error503"}]}),
    )
    .await;
    let dir = support::tmp_dir("vantage", &format!("both-{b:?}"));
    let db = b.db(&dir, "shared.db");
    // Both get 503s from their first probe (~3 s); each confirms by ~7 s and the second to
    // publish its episode reaches the quorum (2 of 2): one alert, whichever node delivers it.
    let got = two_nodes(&sim, &dir, &db, false, 12).await;
    let down = events(&got, "interface_down");
    assert_eq!(
        down.iter().filter(|(e, _)| *e == "firing").count(),
        1,
        "{got:#?}"
    );
    assert_eq!(
        down.iter().filter(|(e, _)| *e == "resolved").count(),
        1,
        "resolved once, when the last node stopped (a): {got:#?}"
    );
    assert_eq!(down[0].1, down[1].1);
    assert_eq!(events(&got, "vantage_fault"), [], "{got:#?}");
    // The batch counts that very episode, from where the quorum was reached.
    let (episodes, _) = kpi(&db);
    assert_eq!(episodes, [down[0].1]);
}

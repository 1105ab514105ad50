//! Several `dispo run` nodes on one PostgreSQL store (issue 15, part 2): two monitors with their
//! own `[monitor] id` probe the simulator and write into one database; the bank refuses
//! connections for 8 s; each node sees the outage from its own probes, and exactly one alert
//! (one firing, one resolution) reaches the webhook. A third node with an id already running
//! is refused by the advisory lock.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use serde_json::Value;

use crate::sim_support::Sim;
use crate::support;

type Received = Arc<Mutex<Vec<Value>>>;

/// A loopback webhook recording every JSON body posted to `/hook`.
async fn webhook(port: u16) -> Received {
    let got: Received = Default::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |axum::Json(v): axum::Json<Value>| {
            let g = g.clone();
            async move { g.lock().unwrap().push(v) }
        }),
    );
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    got
}

/// A node's configuration: scaled settings (3 s time-out, 1 s bursts, a probe a second, the
/// shipped 30 s / 5 s ratio kept), the shared webhook.
fn config(dir: &Path, sim: &Sim, id: &str, hook_port: u16) -> std::path::PathBuf {
    let text = format!(
        "[monitor]\nid = \"{id}\"\ntimeout_s = 3\nburst_interval_s = 1\nheartbeat_s = 0.5\n\
         [alerts]\ncheck_interval_s = 3600\n[[alerts.webhook]]\nurl = \"http://127.0.0.1:{hook_port}/hook\"\n\
         [[probe]]\nname = \"v142\"\nstep = \"funds-confirmation\"\nschedule = \"* * * * * *\"\n\
         stet = \"1.4.2\"\niban = \"FR7613807008043001965405255\"\n{}",
        dispo::sim::pki::probe_establishment_toml("13807", sim.port, &sim.pki)
    );
    let cfg = dir.join(format!("{id}.toml"));
    std::fs::write(&cfg, text).unwrap();
    cfg
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_on_one_postgresql_send_one_alert() {
    support::init();
    let sim = Sim::start();
    let dir = support::tmp_dir("nodes", "two");
    let db = support::Backend::Postgres.db(&dir, "nodes");
    let port = support::free_port();
    let hooks = webhook(port).await;
    let (paris, lyon) = (
        config(&dir, &sim, "paris", port),
        config(&dir, &sim, "lyon", port),
    );
    let a = support::spawn_run(&paris, &db, &["--duration", "18s"]);
    let b = support::spawn_run(&lyon, &db, &["--duration", "18s"]);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // A second `paris` on the same database is refused: the monitor id is taken.
    let again = Command::new(support::dispo_bin())
        .env("DISPO_STATE_DIR", &dir)
        .args(["run", "--duration", "2s", "--config"])
        .arg(&paris)
        .env("DISPO_DB", &db)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success(), "a second 'paris' ran");
    assert!(
        err.contains("monitor 'paris' already running") && err.contains("dispo run pid"),
        "{err}"
    );
    // The bank refuses connections for 8 s: at a probe a second and five failures to an
    // episode, both nodes open one, a few ms apart (their own probes, their own instants).
    sim.set_faults(
        serde_json::json!({"fault": [{"establishment": "13807", "interface": "api",
        "kind": "refuse", "for_s": 8}]}),
    )
    .await;
    for run in [a, b] {
        let status = tokio::task::spawn_blocking(move || run.wait_with_output().unwrap())
            .await
            .unwrap()
            .status;
        assert!(status.success());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = hooks.lock().unwrap().clone();
    let down = |event: &str| -> Vec<String> {
        got.iter()
            .filter(|v| v["event"] == event && v["kind"] == "interface_down")
            .map(|v| v["key"].as_str().unwrap().to_owned())
            .collect()
    };
    let (fired, resolved) = (down("firing"), down("resolved"));
    assert_eq!(fired.len(), 1, "one alert for the episode: {got:?}");
    assert_eq!(
        resolved, fired,
        "and one resolution, of that alert: {got:?}"
    );
    // Both nodes wrote their probes, each under its vantage.
    let store = support::open_store(&db).await;
    let vantages: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT vantage FROM observations WHERE source = 'probe' ORDER BY vantage",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(vantages, ["lyon", "paris"]);
    let _ = std::fs::remove_dir_all(&dir);
}

//! Several `dispo run` nodes on one PostgreSQL store (issue 15, part 2): two monitors with their
//! own `[monitor] id` probe the simulator and write into one database; the bank refuses
//! connections for 8 s; each node sees the outage from its own probes, and exactly one alert
//! (one firing, one resolution) reaches the webhook. A third node with an id already running
//! is refused by the advisory lock.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::sim_support::Sim;
use crate::support;

use crate::support::webhook;

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

/// `dispo run` of `cfg` on `db` for `duration`, its standard error kept in `log`.
fn spawn_logged(cfg: &Path, db: &str, duration: &str, log: &Path) -> std::process::Child {
    Command::new(support::dispo_bin())
        .env("DISPO_STATE_DIR", cfg.parent().unwrap())
        .args(["run", "--duration", duration, "--config"])
        .arg(cfg)
        .arg("--db")
        .arg(db)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// The heartbeat rows of `monitor`: (stopped, stop reason), oldest first.
async fn runs_of(store: &dispo::store::Store, monitor: &str) -> Vec<(bool, Option<String>)> {
    use sqlx::Row as _;
    store
        .q("SELECT stopped_at IS NOT NULL, stop_reason FROM heartbeats WHERE monitor_id = ? ORDER BY id")
        .bind(monitor)
        .fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<bool, _>(0), r.get(1)))
        .collect()
}

/// Waits (at most 15 s) until `monitor` has a heartbeat row.
async fn until_beating(store: &dispo::store::Store, monitor: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while runs_of(store, monitor).await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "{monitor} never beat");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The reviewer's case (issue 15, outside review): PostgreSQL restarts under two running nodes,
/// which frees their advisory locks; a second `paris` started right then must not run beside
/// the first, nor close its heartbeat (which made the live quorum see a false outage). The
/// running nodes take their locks again within `LOCK_CHECK` (2 s) and go on.
#[tokio::test(flavor = "multi_thread")]
async fn a_database_restart_under_running_nodes_lets_no_second_node_take_an_id() {
    use dispo::store::pg_cluster::{Cluster, Durability};
    support::init();
    let sim = Sim::start();
    let dir = support::tmp_dir("nodes", "restart");
    // Its own cluster: restarting the shared one would cut every other test's connections.
    let cluster = tokio::task::spawn_blocking(|| Cluster::start(Durability::Off).unwrap())
        .await
        .unwrap();
    let cluster = Arc::new(cluster);
    let db = cluster.fresh_db("restart");
    let port = support::free_port();
    let hooks = webhook(port).await;
    let (paris, lyon) = (
        config(&dir, &sim, "paris", port),
        config(&dir, &sim, "lyon", port),
    );
    let a_log = dir.join("paris.log");
    let a = spawn_logged(&paris, &db, "14s", &a_log);
    let b = spawn_logged(&lyon, &db, "14s", &dir.join("lyon.log"));
    let store = support::open_store(&db).await;
    until_beating(&store, "paris").await;
    until_beating(&store, "lyon").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.restart().unwrap())
        .await
        .unwrap();
    // At once a second `paris`: the lock is free until the first takes it again.
    let again = tokio::task::spawn_blocking({
        let (paris, dir, db) = (paris.clone(), dir.clone(), db.clone());
        move || {
            Command::new(support::dispo_bin())
                .env("DISPO_STATE_DIR", &dir)
                .args(["run", "--duration", "3s", "--config"])
                .arg(&paris)
                .env("DISPO_DB", &db)
                .stdout(Stdio::null())
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success(), "a second 'paris' ran: {err}");
    // Refused by the lock the first took again, or by its heartbeat going on without it.
    assert!(
        err.contains("monitor 'paris' already running (dispo run pid")
            || err.contains("another node with monitor id 'paris' is running"),
        "{err}"
    );
    for run in [a, b] {
        let status = tokio::task::spawn_blocking(move || run.wait_with_output().unwrap())
            .await
            .unwrap()
            .status;
        assert!(status.success());
    }
    let log = std::fs::read_to_string(&a_log).unwrap();
    assert!(log.contains("is taken again"), "{log}");
    // One run each, closed by itself at its end, never "not running at restart".
    let store = support::open_store(&db).await;
    for monitor in ["paris", "lyon"] {
        assert_eq!(
            runs_of(&store, monitor).await,
            [(true, Some("duration".to_owned()))],
            "{monitor}"
        );
    }
    // The bank answered throughout: no outage, no alert of one.
    let down: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM alerts WHERE kind = 'interface_down'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(down, 0);
    let got = hooks.lock().unwrap().clone();
    assert!(got.iter().all(|v| v["kind"] != "interface_down"), "{got:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// When another process got the id's lock first (here the test itself, the moment the node's
/// lock connection is killed), the running node stops probing: an error, a non-zero exit, its
/// heartbeat closed saying why, and a `monitor_id_taken` alert to the operator.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_whose_lock_another_process_took_stops_with_an_error_and_an_alert() {
    use sqlx::ConnectOptions as _;
    support::init();
    let sim = Sim::start();
    let dir = support::tmp_dir("nodes", "taken");
    let db = support::Backend::Postgres.db(&dir, "taken");
    let port = support::free_port();
    let hooks = webhook(port).await;
    let paris = config(&dir, &sim, "paris", port);
    let log = dir.join("paris.log");
    let a = spawn_logged(&paris, &db, "30s", &log);
    let store = support::open_store(&db).await;
    until_beating(&store, "paris").await;
    let mut intruder = std::str::FromStr::from_str(&db)
        .map(|o: sqlx::postgres::PgConnectOptions| o.application_name("intruder"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let key: i64 = sqlx::query_scalar(
        "SELECT (l.classid::bigint << 32) | l.objid::bigint FROM pg_locks l \
         JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' \
         AND a.datname = current_database() AND a.application_name LIKE 'dispo run pid%'",
    )
    .fetch_one(&mut intruder)
    .await
    .unwrap();
    // Its lock connection killed, the lock taken at once (the node checks every 2 s).
    sqlx::query(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name LIKE 'dispo run pid%'",
    )
    .execute(&mut intruder)
    .await
    .unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(key)
        .execute(&mut intruder)
        .await
        .unwrap();
    let taken = std::time::Instant::now();
    let out = tokio::task::spawn_blocking(move || a.wait_with_output().unwrap())
        .await
        .unwrap();
    // Three checks 2 s apart find it taken, then the stop: well before the 30 s of --duration.
    assert!(
        taken.elapsed() < Duration::from_secs(15),
        "{:?}",
        taken.elapsed()
    );
    assert!(!out.status.success());
    let err = std::fs::read_to_string(&log).unwrap();
    assert!(
        err.contains("monitor 'paris' lost its lock")
            && err.contains("intruder holds it now")
            && err.contains("check `[monitor] id`"),
        "{err}"
    );
    assert_eq!(
        runs_of(&store, "paris").await,
        [(true, Some("monitor id taken by another node".to_owned()))]
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = hooks.lock().unwrap().clone();
    let taken: Vec<&Value> = got
        .iter()
        .filter(|v| v["kind"] == "monitor_id_taken")
        .collect();
    assert_eq!(taken.len(), 1, "{got:?}");
    assert_eq!(taken[0]["event"], "firing");
    let _ = std::fs::remove_dir_all(&dir);
}

//! Disk full, or any database that refuses writes (issue 13.14), through the real binary: the
//! observations go to the spill journal beside the database instead of waiting in memory, the
//! live path keeps them, and they (and the heartbeats that cover them) reach the database when it
//! takes writes again, or at the next start after a kill -9. The refusal is made by holding the
//! database's write lock from the test for longer than the monitor waits for it (5 s): what a
//! full disk does to every write, without needing a full disk.

use std::path::Path;
use std::time::{Duration, Instant};

use sqlx::{Connection, Row};

use crate::sim_support::Sim;
use crate::support;

/// Scaled settings: a probe a second, 3 s time-out, 1 s bursts, a heartbeat every 0.5 s.
fn config(dir: &Path, sim: &Sim, name: &str) -> std::path::PathBuf {
    let mut text = format!(
        "[monitor]\nid = \"it-{name}\"\ntimeout_s = 3\nburst_interval_s = 1\nheartbeat_s = 0.5\n\
         [[probe]]\nname = \"v142\"\nstep = \"funds-confirmation\"\nschedule = \"* * * * * *\"\n\
         stet = \"1.4.2\"\niban = \"FR7613807008043001965405255\"\n"
    );
    text.push_str(&dispo::sim::pki::probe_establishment_toml(
        "13807", sim.port, &sim.pki,
    ));
    let cfg = dir.join("p.toml");
    std::fs::write(&cfg, text).unwrap();
    cfg
}

async fn count(db: &str) -> i64 {
    let Ok(store) = dispo::store::Store::open(db.parse::<dispo::store::Target>().unwrap()).await
    else {
        return 0;
    };
    let n = store
        .q("SELECT COUNT(*) FROM observations WHERE service = 'cbpii'")
        .fetch_one(store.pool())
        .await
        .map(|r| r.get::<i64, _>(0))
        .unwrap_or(0);
    store.pool().close().await;
    n
}

/// Waits until the run has written some funds confirmations.
async fn until_written(db: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !((db.starts_with("postgres") || Path::new(db).exists()) && count(db).await >= 2) {
        assert!(Instant::now() < deadline, "nothing written");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Holds what stops the monitor's inserts (as a long import or a full disk would).
enum Held {
    Sqlite(#[allow(dead_code)] sqlx::SqliteConnection),
    Postgres(#[allow(dead_code)] sqlx::PgConnection),
}

/// SQLite: the database's write lock. PostgreSQL: the observations table's lock against writes.
async fn lock(db: &str) -> Held {
    if db.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(db).await.unwrap();
        sqlx::raw_sql("BEGIN; LOCK TABLE observations IN EXCLUSIVE MODE")
            .execute(&mut c)
            .await
            .unwrap();
        return Held::Postgres(c);
    }
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{db}"))
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut c)
        .await
        .unwrap();
    Held::Sqlite(c)
}

/// The spill journal of `db`: beside the file, or in the state directory (`dir`, see
/// `support::spawn_run`) for PostgreSQL.
fn journal(dir: &Path, db: &str) -> std::path::PathBuf {
    match db.parse::<dispo::store::Target>().unwrap() {
        dispo::store::Target::Postgres(u) => dir.join(format!("{}-spill.jsonl", u.slug())),
        t => t.sibling("-spill.jsonl"),
    }
}

fn lines(p: &Path) -> usize {
    std::fs::read_to_string(p).map_or(0, |t| t.lines().count())
}

/// Funds confirmations received in `[from, to)` (epoch ms), and the run's last heartbeat.
async fn in_window(db: &str, from: i64, to: i64) -> (i64, i64) {
    let store = support::open_store(db).await;
    let n: i64 = store
        .q("SELECT COUNT(*) FROM observations WHERE service = 'cbpii' AND received_at >= ? AND received_at < ?")
        .bind(from)
        .bind(to)
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get(0);
    let beat: i64 = sqlx::query("SELECT MAX(last_beat) FROM heartbeats")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get(0);
    (n, beat)
}

support::on_both_async!(a_database_refusing_writes_spills_to_the_journal_then_takes_it_all_back);

async fn a_database_refusing_writes_spills_to_the_journal_then_takes_it_all_back(
    b: support::Backend,
) {
    support::init();
    let sim = Sim::start();
    let dir = support::tmp_dir("spill", &format!("refuse-{b:?}"));
    let cfg = config(&dir, &sim, "refuse");
    let db = b.db(&dir, "d.db");
    let db = db.as_str();
    let mut run = support::spawn_run(&cfg, db, &["--duration", "16s"]);
    until_written(db).await;
    // Nine seconds refused: the first batch waits 5 s for the lock, then everything goes to
    // the journal (a probe a second: about 9 funds confirmations, their tokens, heartbeats).
    let held = lock(db).await;
    let from = chrono::Utc::now().timestamp_millis();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let spilled = lines(&journal(&dir, db));
    let before = count(db).await;
    drop(held);
    let to = chrono::Utc::now().timestamp_millis();
    assert!(
        spilled >= 3,
        "the journal holds {spilled} lines after 8 s of refused writes"
    );
    let status = tokio::task::spawn_blocking(move || run.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    assert!(!journal(&dir, db).exists(), "the journal was not replayed");
    // Every second of the refusal has its funds confirmation in the database now: at 1 s a
    // probe, at least 7 of the 8 s (a tick may land on either edge).
    let (n, _) = in_window(db, from, to).await;
    assert!(
        n >= 7,
        "{n} funds confirmations in the 8 s the database refused"
    );
    assert!(count(db).await > before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_journal_left_by_a_killed_monitor_is_replayed_at_the_next_start() {
    support::init();
    let sim = Sim::start();
    let dir = support::tmp_dir("spill", "kill");
    let cfg = config(&dir, &sim, "kill");
    let db = dir.join("d.db");
    let db = db.to_str().unwrap();
    let mut run = support::spawn_run(&cfg, db, &["--duration", "60s"]);
    until_written(db).await;
    let held = lock(db).await;
    let from = chrono::Utc::now().timestamp_millis();
    let deadline = Instant::now() + Duration::from_secs(15);
    while lines(&journal(&dir, db)) < 4 {
        assert!(Instant::now() < deadline, "nothing spilled");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Heartbeats go to the journal too (a beat every 0.5 s): wait for a few.
    let beats =
        |p: &Path| std::fs::read_to_string(p).map_or(0, |t| t.matches("\"kind\":\"beat\"").count());
    while beats(&journal(&dir, db)) < 3 {
        assert!(Instant::now() < deadline, "no heartbeat spilled");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    run.kill().unwrap(); // SIGKILL
    let _ = run.wait();
    let killed = chrono::Utc::now().timestamp_millis();
    drop(held);
    assert!(journal(&dir, db).exists());
    let (n0, beat0) = in_window(db, from, killed).await;
    // `kpi` says the journal waits (and counts none of it yet).
    let out = std::process::Command::new(support::dispo_bin())
        .args(["kpi", "--format", "json", "--db"])
        .arg(db)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("spill journal"), "{err}");
    // The next start replays it before probing.
    let status = support::spawn_run(&cfg, db, &["--duration", "2s"])
        .wait()
        .unwrap();
    assert!(status.success());
    assert!(!journal(&dir, db).exists());
    let (n1, _) = in_window(db, from, killed).await;
    assert!(n1 > n0, "{n1} after replay, {n0} before");
    // The killed run's coverage reaches its last spilled heartbeat, past the lock's start.
    let store = support::open_store(db).await;
    let first_run_beat: i64 = sqlx::query("SELECT last_beat FROM heartbeats ORDER BY id LIMIT 1")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get(0);
    assert!(
        first_run_beat >= from + 3_000 && first_run_beat > beat0.min(from),
        "the killed run's last heartbeat {first_run_beat} (lock from {from})"
    );
    // And never past what was kept: a heartbeat ahead of the observations waiting for the lock
    // would cover, after the kill, requests that were never recorded (a probe a second).
    let last_obs: i64 = store
        .q("SELECT MAX(received_at) FROM observations WHERE received_at < ?")
        .bind(killed)
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get(0);
    assert!(
        first_run_beat <= last_obs + 2_000,
        "the killed run's coverage ends {} ms after its last kept observation",
        first_run_beat - last_obs
    );
}

//! Store round trips: what goes in comes back unchanged, duplicates are skipped, heartbeats merge.

use super::testing::{Backend, on_both};
use super::*;
use sqlx::SqlitePool;

on_both!(
    observations_round_trip_and_duplicates_are_skipped,
    coverage_comes_from_monitor_runs_per_series_and_log_spans,
    an_imported_vantage_covers_its_series_once,
    the_lean_read_gives_what_the_full_read_gives,
    the_lean_read_names_a_bad_row,
    a_batch_that_fails_leaves_nothing_behind,
    a_large_mixed_batch_goes_in_whole_and_once,
);

fn temp_db(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("dispo-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("t.db")
}

fn obs(at: i64, rid: &str, status: Option<u16>) -> StoredObservation {
    StoredObservation {
        obs: Observation {
            received_at_ms: at,
            establishment: "13807".parse().unwrap(),
            interface: Interface::Api,
            service: Service::new("cbpii").unwrap(),
            source: Source::Probe,
            tpp: Some("PSDFR-ACPR-12345".into()),
            status,
            latency_ms: status.map(|_| 123.5),
            error_code: None,
            request_id: rid.into(),
            outcome: Outcome::from_reply(status, None),
            vantage: crate::domain::Vantage::imported(Source::Probe),
        },
        error_text: None,
        no_reply_kind: if status.is_none() {
            Some(NoReplyKind::Timeout)
        } else {
            None
        },
        probe_id: Some("13807/cbpii".into()),
        phases: status.map(|_| Phases {
            resolve_ms: 0.1,
            connect_ms: 0.2,
            tls_ms: 3.0,
            processing_ms: 100.0,
            transfer_ms: 20.2,
        }),
        synthetic: false,
    }
}

async fn observations_round_trip_and_duplicates_are_skipped(b: Backend) {
    let store = b.store("rt").await;
    let rows = [
        obs(1_000, "b", Some(200)),
        obs(1_000, "a", None),
        obs(2_000, "c", Some(503)),
    ];
    assert_eq!(store.insert_observations(&rows[..]).await.unwrap(), 3);
    // The same rows again add nothing: imports are idempotent.
    assert_eq!(store.insert_observations(&rows[..]).await.unwrap(), 0);
    let back = store.load_observations(0, 10_000, &[]).await.unwrap();
    // Ordered by (received_at, request_id): "a" before "b" at the same millisecond.
    let ids: Vec<_> = back.iter().map(|r| r.obs.request_id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert_eq!(back[1], rows[0]);
    assert_eq!(back[0], rows[1]);
    assert_eq!(back[2].obs.outcome, Outcome::AspspError);
    // The period is half-open and the establishment filter applies.
    assert_eq!(
        store
            .load_observations(1_000, 2_000, &[])
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        store
            .load_observations(0, 10_000, &["10807".parse().unwrap()])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.observation_span().await.unwrap(),
        Some((1_000, 2_000))
    );
}

async fn coverage_comes_from_monitor_runs_per_series_and_log_spans(b: Backend) {
    use crate::domain::{CoverageKind, CoverageSpan, Interface};
    use crate::store::coverage::LogSpans;
    let store = b.store("hb").await;
    assert_eq!(store.coverage(0, 1_000_000, 0).await.unwrap(), vec![]);
    let (e1, e2): (EstablishmentCode, EstablishmentCode) =
        ("13807".parse().unwrap(), "10807".parse().unwrap());
    // m1 probes 13807/api from 10 to 50 and stops; m2 probes 10807/api from 45 and its last
    // beat is 60 (killed: at "now" 500 000 the beat is 499 940 ms old, older than 120 s).
    let a = store
        .start_monitor("m1", &[(e1, Interface::Api)], 10)
        .await
        .unwrap();
    store.beat(a, 40).await.unwrap();
    store.stop_heartbeat(a, 50, "signal").await.unwrap();
    let b = store
        .start_monitor("m2", &[(e2, Interface::Api)], 45)
        .await
        .unwrap();
    store.beat(b, 60).await.unwrap();
    // A running monitor (beat 10 s before "now") covers up to now, clipped to the asked end.
    let c = store
        .start_monitor("m1", &[(e1, Interface::Api)], 80)
        .await
        .unwrap();
    store.beat(c, 499_990).await.unwrap();
    // A log of 13807/api from 1 000 to 2 000.
    let mut spans = LogSpans::default();
    spans.add(e1, Interface::Api, 2_000);
    spans.add(e1, Interface::Api, 1_000);
    store
        .record_log_spans("gw.csv", &spans.spans(), 5)
        .await
        .unwrap();
    let got = store.coverage(0, 100_000, 500_000).await.unwrap();
    let span = |kind, e, start_ms, end_ms, ongoing, vantage: Option<&str>| CoverageSpan {
        kind,
        establishment: Some(e),
        interface: Some(Interface::Api),
        start_ms,
        end_ms,
        ongoing,
        // Each run names its monitor, the vantage of section 10.
        vantage: vantage.map(|v| crate::domain::Vantage::new(v).unwrap()),
    };
    assert_eq!(
        got,
        vec![
            span(CoverageKind::Monitor, e1, 10, 50, false, Some("m1")),
            span(CoverageKind::Monitor, e2, 45, 60, false, Some("m2")),
            span(CoverageKind::Monitor, e1, 80, 100_000, true, Some("m1")),
            // A log covers its establishment on every interface.
            CoverageSpan {
                interface: None,
                ..span(CoverageKind::Log, e1, 1_000, 2_000, false, None)
            },
        ]
    );
}

async fn an_imported_vantage_covers_its_series_once(b: Backend) {
    use crate::domain::{CoverageKind, CoverageSpan, Interface, Vantage};
    use crate::store::coverage::LogSpans;
    let store = b.store("imported-vantage").await;
    let e1: EstablishmentCode = "13807".parse().unwrap();
    // A probe file: a's rows of 13807/api at 1 000 and 3 000, b's at 2 000, a row naming no
    // vantage (`import`) at 1 500. The file runs from 1 000 to 3 000: a and b each cover
    // 13807/api over it, the `import` row's establishment is covered as a log (every interface).
    let row = |at: i64, v: &str| {
        let mut o = obs(at, &format!("r{at}"), Some(200));
        o.obs.vantage = Vantage::new(v).unwrap();
        o
    };
    let rows = [
        row(1_000, "a"),
        row(2_000, "b"),
        row(3_000, "a"),
        row(1_500, Vantage::IMPORTED),
    ];
    let mut spans = LogSpans::default();
    for o in &rows {
        spans.add_row(&o.obs);
    }
    store.insert_observations(rows.clone()).await.unwrap();
    // A second file: a's requests again, named c (renamed, or an id's case changed): the store
    // already holds them (under a), so c stored no row and covers nothing. Counted as covering,
    // its empty series would have outvoted an outage a saw.
    let renamed = [row(1_000, "c"), row(3_000, "c")];
    assert_eq!(store.insert_observations(renamed.clone()).await.unwrap(), 0);
    let mut c_spans = LogSpans::default();
    for o in &renamed {
        c_spans.add_row(&o.obs);
    }
    store
        .record_log_spans("renamed.csv", &c_spans.spans(), 5)
        .await
        .unwrap();
    // Imported twice: the vantages' rows are not doubled (the log's is, as always: unioned).
    for _ in 0..2 {
        store
            .record_log_spans("probes.csv", &spans.spans(), 5)
            .await
            .unwrap();
    }
    let got = store.coverage(0, 100_000, 500_000).await.unwrap();
    let span = |interface, vantage: Option<&str>| CoverageSpan {
        kind: CoverageKind::Log,
        establishment: Some(e1),
        interface,
        start_ms: 1_000,
        end_ms: 3_000,
        ongoing: false,
        vantage: vantage.map(|v| Vantage::new(v).unwrap()),
    };
    assert_eq!(
        got,
        vec![
            span(None, None),
            span(Some(Interface::Api), Some("a")),
            span(Some(Interface::Api), Some("b")),
            span(None, None),
        ]
    );
    assert_eq!(spans.coverage(), got[..3]);
}

async fn the_lean_read_gives_what_the_full_read_gives(b: Backend) {
    let store = b.store("scan").await;
    let mut rows = [
        obs(1_000, "b", Some(200)),
        obs(1_000, "a", None),
        obs(2_000, "c", Some(503)),
        obs(3_000, "d", Some(200)),
    ];
    rows[2].obs.error_code = Some("INTE".into());
    rows[3].obs.establishment = "10807".parse().unwrap();
    rows[3].obs.tpp = None;
    // A UUID, longer than the inline size of the string type.
    rows[3].obs.request_id = "0f8fad5b-d9cb-469f-a165-70867728950e".into();
    store.insert_observations(&rows[..]).await.unwrap();
    let full: Vec<Observation> = store
        .load_observations(0, 10_000, &[])
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.obs)
        .collect();
    // Response times as recorded (`total`): the default policy (`request`) takes a probe's
    // processing + transfer instead, checked in the engine's tests.
    let total = crate::engine::ProbeLatency::Total;
    let mut lean = store
        .load_for_counting(0, 10_000, &[], total)
        .await
        .unwrap();
    assert!(!lean.synthetic);
    // Only time order is promised; the engine breaks ties itself.
    lean.observations
        .sort_by(|a, b| (a.received_at_ms, &a.request_id).cmp(&(b.received_at_ms, &b.request_id)));
    assert_eq!(lean.observations, full);
    // Half-open period and the establishment filter, as in the full read.
    let some = store
        .load_for_counting(
            1_000,
            3_000,
            &["13807".parse().unwrap()],
            Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(some.observations.len(), 3);
    let other = store
        .load_for_counting(0, 10_000, &["10807".parse().unwrap()], Default::default())
        .await
        .unwrap();
    assert_eq!(other.observations.len(), 1);
    // Under the default policy (`request`), a probe's response time is processing + transfer,
    // as the period loader's full read counts it too.
    let counted = crate::period::counted(&rows[3], &crate::engine::Settings::default());
    assert_eq!(other.observations[0], counted);
    assert_ne!(counted.latency_ms, rows[3].obs.latency_ms);
    // [0, 4 000) is read as [0, 2 000) and [2 000, 4 000) on two threads: rows from both halves,
    // in time order.
    let split = store
        .load_for_counting(0, 4_000, &[], Default::default())
        .await
        .unwrap();
    let times: Vec<i64> = split
        .observations
        .iter()
        .map(|o| o.received_at_ms)
        .collect();
    assert_eq!(times, [1_000, 1_000, 2_000, 3_000]);
}

async fn the_lean_read_names_a_bad_row(b: Backend) {
    let store = b.store("scan-bad").await;
    // The good row lies in the first half of the read, the bad one in the second: the first
    // half's observations are dropped, the error names the bad row.
    store
        .insert_observations([obs(1_000, "a", Some(200)), obs(8_000, "b", Some(200))])
        .await
        .unwrap();
    store
        .q("UPDATE observations SET interface = 'teletype' WHERE request_id = 'b'")
        .execute(store.pool())
        .await
        .unwrap();
    let err = store
        .load_for_counting(0, 10_000, &[], Default::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "the stored observation of 1970-01-01T00:00:08.000Z (establishment \"13807\", request id \"b\")"
        ) && err.to_string().contains("teletype"),
        "{err}"
    );
}

async fn a_batch_that_fails_leaves_nothing_behind(b: Backend) {
    // A trigger refuses the third row: the two before it, in the same batch, must not land.
    let store = b.store("bulk-abort").await;
    let trigger: &[&str] = match b {
        Backend::Sqlite => &[
            "CREATE TRIGGER refuse BEFORE INSERT ON observations WHEN NEW.request_id = 'boom' \
             BEGIN SELECT RAISE(ABORT, 'refused by test'); END",
        ],
        Backend::Postgres => &[
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.request_id = 'boom' THEN RAISE EXCEPTION 'refused by test'; END IF; \
             RETURN NEW; END $$",
            "CREATE TRIGGER refuse BEFORE INSERT ON observations FOR EACH ROW \
             EXECUTE FUNCTION refuse()",
        ],
    };
    for t in trigger {
        store.q(t).execute(store.pool()).await.unwrap();
    }
    let rows = [
        obs(1_000, "a", Some(200)),
        obs(2_000, "b", Some(200)),
        obs(3_000, "boom", Some(200)),
    ];
    let err = store.insert_observations(&rows[..]).await.unwrap_err();
    assert!(err.to_string().contains("refused by test"), "{err}");
    if b == Backend::Sqlite {
        assert!(
            err.to_string().contains("t.db"),
            "names the database: {err}"
        );
    }
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM observations")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(n, 0);
    // The next batch goes in normally.
    assert_eq!(store.insert_observations(&rows[..2]).await.unwrap(), 2);
}

/// A gateway-log row: nothing beyond the observation.
fn plain(at: i64, rid: &str) -> StoredObservation {
    let mut r = obs(at, rid, Some(200));
    r.obs.source = Source::Log;
    r.error_text = None;
    r.no_reply_kind = None;
    r.probe_id = None;
    r.phases = None;
    r
}

async fn a_large_mixed_batch_goes_in_whole_and_once(b: Backend) {
    let store = b.store("bulk-mixed").await;
    // 200 rows, one second apart: plain ones (gateway logs) go 64 to a statement, the four
    // probe rows with phases (i = 7, 57, 107, 157) one by one, which also breaks the runs of 64
    // around them. The last ten repeat the first ten: 190 are new.
    let mut rows: Vec<StoredObservation> = (0..190)
        .map(|i| {
            let (at, rid) = (i * 1_000, format!("r{i:03}"));
            if i % 50 == 7 {
                obs(at, &rid, Some(503))
            } else {
                plain(at, &rid)
            }
        })
        .collect();
    rows.extend_from_within(0..10);
    assert_eq!(store.insert_observations(rows.clone()).await.unwrap(), 190);
    let back = store.load_observations(0, 1_000_000, &[]).await.unwrap();
    assert_eq!(back.len(), 190);
    assert_eq!(back[..], rows[..190], "every value of every row comes back");
    // Again: nothing new. Then 130 rows of which the first 65 are known: 65 added, through a
    // statement of 64 whose rows are all present and one whose first row is.
    assert_eq!(store.insert_observations(rows.clone()).await.unwrap(), 0);
    let more: Vec<StoredObservation> = (125..255)
        .map(|i| plain(i * 1_000, &format!("r{i:03}")))
        .collect();
    let known = more
        .iter()
        .filter(|r| r.obs.received_at_ms < 190_000)
        .count();
    assert_eq!(known, 65);
    assert_eq!(store.insert_observations(more).await.unwrap(), 65);
}

/// A database as dispo made it before observations were clustered (migrations 1 to 4 only).
async fn rowid_database(name: &str) -> (std::path::PathBuf, SqlitePool) {
    let path = temp_db(name);
    let old = path.with_file_name("migrations");
    std::fs::create_dir_all(&old).unwrap();
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for name in [
        "0001_observations.sql",
        "0002_probe_tokens.sql",
        "0003_alert_outbox.sql",
        "0004_observations_indexes.sql",
    ] {
        std::fs::copy(here.join(name), old.join(name)).unwrap();
    }
    let opts = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal);
    let pool = SqlitePool::connect_with(opts).await.unwrap();
    sqlx::migrate::Migrator::new(old.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    (path, pool)
}

#[tokio::test]
async fn a_database_of_the_rowid_table_keeps_its_observations() {
    // A database made before observations were clustered on their identity key (migrations 1
    // to 4): opening it moves every row over, values unchanged.
    let (path, pool) = rowid_database("migrate-clustered").await;
    sqlx::query(
        "INSERT INTO observations (id, received_at, establishment, interface, service, source, \
         tpp, status, latency_ms, error_code, error_text, request_id, outcome, no_reply_kind, \
         probe_id, resolve_ms, connect_ms, tls_ms, processing_ms, transfer_ms, synthetic) VALUES \
         (7, 2000, '13807', 'api', 'cbpii', 'probe', 'PSDFR-ACPR-12345', 503, 12.5, 'INTS', \
          'busy', 'b', 'aspsp_error', NULL, '13807/cbpii', 0.1, 0.2, 3.0, 9.0, 0.2, 1), \
         (3, 1000, '13807', 'fallback', 'cbpii', 'log', NULL, NULL, NULL, NULL, NULL, 'a', \
          'no_reply', 'timeout', NULL, NULL, NULL, NULL, NULL, NULL, 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = Store::open(&path).await.unwrap();
    let back = store.load_observations(0, 10_000, &[]).await.unwrap();
    let got: Vec<_> = back
        .iter()
        .map(|r| {
            let o = &r.obs;
            (
                o.received_at_ms,
                o.interface.as_str(),
                o.request_id.as_str(),
                o.status,
                o.latency_ms,
                o.error_code.as_deref(),
                o.outcome.as_str(),
                r.error_text.as_deref(),
                r.no_reply_kind.map(|k| k.as_str()),
                r.phases.map(|p| p.tls_ms),
                r.synthetic,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                1_000,
                "fallback",
                "a",
                None,
                None,
                None,
                "no_reply",
                None,
                Some("timeout"),
                None,
                false
            ),
            (
                2_000,
                "api",
                "b",
                Some(503),
                Some(12.5),
                Some("INTS"),
                "aspsp_error",
                Some("busy"),
                None,
                Some(3.0),
                true
            ),
        ]
    );
    let (without_rowid,): (i64,) =
        sqlx::query_as("SELECT wr FROM pragma_table_list WHERE name = 'observations'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(without_rowid, 1);
    // The identity still refuses a second copy.
    assert_eq!(store.insert_observations(back.clone()).await.unwrap(), 0);
}

#[tokio::test]
async fn a_new_database_has_the_larger_pages() {
    let store = Store::open(&temp_db("page-size")).await.unwrap();
    let (size,): (i64,) = sqlx::query_as("PRAGMA page_size")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(size, i64::from(PAGE_SIZE));
}

#[tokio::test]
async fn two_commands_opening_an_old_database_at_once_both_open_it() {
    // A database of migrations 1 to 4 with 20 000 rows: converting it takes long enough for the
    // second command to find the first one converting. Before Store::open ran the migrations
    // again, the second failed on "UNIQUE constraint failed: _sqlx_migrations.version".
    let (path, pool) = rowid_database("migrate-race").await;
    sqlx::query(
        "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 19999) \
         INSERT INTO observations (received_at, establishment, interface, service, source, \
         request_id, outcome) SELECT i * 1000, '13807', 'api', 'cbpii', 'log', 'r' || i, 'ok' \
         FROM c",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let (a, b) = tokio::join!(Store::open(&path), Store::open(&path));
    let (a, b) = (a.unwrap(), b.unwrap());
    for s in [&a, &b] {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM observations")
            .fetch_one(s.pool())
            .await
            .unwrap();
        assert_eq!(n, 20_000);
    }
}

/// Every connection of the pool syncs at each commit (a power cut loses nothing committed).
#[tokio::test]
async fn connections_sync_every_commit() {
    let s = Store::open(&temp_db("sync-full")).await.unwrap();
    for _ in 0..3 {
        let mut c = s.pool().acquire().await.unwrap();
        let v: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *c)
            .await
            .unwrap();
        assert_eq!(v, 2, "synchronous = FULL");
    }
    assert_eq!(SYNCHRONOUS, "FULL", "the inserting connection's setting");
}

/// A new database, and the journal SQLite writes beside it, are readable by their owner only:
/// they hold request ids, TPP ids and error texts.
#[cfg(unix)]
#[tokio::test]
async fn a_new_database_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt as _;
    let path = temp_db("mode");
    let s = Store::open(&path).await.unwrap();
    s.insert_observations([obs(1_000, "a", Some(200))])
        .await
        .unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    let mut wal = path.clone().into_os_string();
    wal.push("-wal");
    assert_eq!(mode(std::path::Path::new(&wal)), 0o600);
}

/// Migration 0009 on a database written before vantages were kept: logs become the gateway's,
/// a probe row the monitor's whose run spans it, a probe row no run spans `monitor`.
#[tokio::test]
async fn vantage_migration_names_the_node_of_older_rows() {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    let migrator = sqlx::migrate!("./migrations");
    for m in migrator.iter().filter(|m| m.version < 9) {
        sqlx::raw_sql(m.sql.clone()).execute(&pool).await.unwrap();
    }
    sqlx::raw_sql(VANTAGE_ROWS).execute(&pool).await.unwrap();
    let m9 = migrator.iter().find(|m| m.version == 9).unwrap();
    sqlx::raw_sql(m9.sql.clone()).execute(&pool).await.unwrap();
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT request_id, vantage FROM observations ORDER BY request_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_vantages(&rows);
}

/// The same on PostgreSQL: its migration 2 is SQLite's 9.
#[tokio::test]
async fn vantage_migration_names_the_node_of_older_rows_on_postgresql() {
    let url = tokio::task::spawn_blocking(|| {
        super::pg_cluster::Cluster::shared().fresh_db("vantage-migration")
    })
    .await
    .unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let migrator = sqlx::migrate!("./migrations/postgres");
    let m = |v| {
        migrator
            .iter()
            .find(|m| m.version == v)
            .unwrap()
            .sql
            .clone()
    };
    sqlx::raw_sql(m(1)).execute(&pool).await.unwrap();
    sqlx::raw_sql(VANTAGE_ROWS).execute(&pool).await.unwrap();
    sqlx::raw_sql(m(2)).execute(&pool).await.unwrap();
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT request_id, vantage FROM observations ORDER BY request_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_vantages(&rows);
}

/// Two runs: "paris" from 1 000 to 5 000 (stopped), "lyon" from 10 000, last beat 20 000; rows
/// written before vantages were kept.
const VANTAGE_ROWS: &str = "INSERT INTO heartbeats (monitor_id, started_at, last_beat, stopped_at) VALUES \
     ('paris', 1000, 4000, 5000), ('lyon', 10000, 20000, NULL); \
     INSERT INTO observations (received_at, establishment, interface, service, source, \
       request_id, outcome) VALUES \
     (2000, '13807', 'api', 'cbpii', 'probe', 'p1', 'ok'), \
     (15000, '13807', 'api', 'cbpii', 'probe', 'l1', 'ok'), \
     (15000, '13807', 'api', 'cbpii', 'log', 'g1', 'ok'), \
     (900000, '13807', 'api', 'cbpii', 'probe', 'x1', 'ok');";

fn assert_vantages(rows: &[(String, String)]) {
    let got: Vec<(&str, &str)> = rows.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    // x1 (900 000) is 880 s past lyon's last beat: more than the 60 s of slack.
    assert_eq!(
        got,
        [
            ("g1", "gateway"),
            ("l1", "lyon"),
            ("p1", "paris"),
            ("x1", "monitor")
        ]
    );
}

#[tokio::test]
async fn the_vantage_round_trips() {
    let store = Store::open(&temp_db("vantage")).await.unwrap();
    let mut a = obs(1_000, "a", Some(200));
    a.obs.vantage = crate::domain::Vantage::new("paris-dc1").unwrap();
    let mut b = obs(1_000, "b", None);
    b.obs.vantage = crate::domain::Vantage::new("lyon.dc2").unwrap();
    store.insert_observations(&[a, b][..]).await.unwrap();
    let back = store.load_observations(0, 10_000, &[]).await.unwrap();
    let v: Vec<_> = back.iter().map(|r| r.obs.vantage.as_str()).collect();
    assert_eq!(v, ["paris-dc1", "lyon.dc2"]);
}

#[test]
fn placeholders_are_numbered_for_postgresql_outside_quoted_text() {
    assert_eq!(
        numbered("UPDATE t SET a = ?, b = 'why?' WHERE c = ? AND d IN (?)"),
        "UPDATE t SET a = $1, b = 'why?' WHERE c = $2 AND d IN ($3)"
    );
}

/// The period read in chunks by two readers in turn comes in the same order as one reader's
/// single read, whatever the chunk: chunk edges falling on rows, empty chunks, rows sharing an
/// instant across readers' chunks; and stopping early stops both readers.
#[tokio::test]
async fn two_readers_taking_chunks_in_turn_give_the_rows_in_order() {
    let path = temp_db("chunks");
    let store = Store::open(&path).await.unwrap();
    // 300 rows: at 0, 7, 14, ... ms (every third instant twice, ids a and b), a gap of 1 000 ms
    // after row 100 (empty chunks), so chunks of 1, 7, 10 and 1 000 ms all cut differently.
    let mut rows = Vec::new();
    for i in 0..300i64 {
        let at = i * 7 + if i > 100 { 1_000 } else { 0 };
        rows.push(obs(at, &format!("a{i:03}"), Some(200)));
        if i % 3 == 0 {
            rows.push(obs(at, &format!("b{i:03}"), None));
        }
    }
    store.insert_observations(rows).await.unwrap();
    let read = |readers: usize, chunk_ms: i64, stop_after: usize| {
        let mut got: Vec<(i64, String)> = Vec::new();
        super::scan::stream_with(
            &path,
            (0, 4_000),
            &[],
            crate::engine::ProbeLatency::Request,
            (readers, chunk_ms),
            |batch| {
                got.extend(
                    batch
                        .into_iter()
                        .map(|o| (o.received_at_ms, o.request_id.to_string())),
                );
                got.len() < stop_after
            },
        )
        .unwrap();
        got
    };
    let whole = read(1, 0, usize::MAX);
    assert_eq!(whole.len(), 400);
    assert!(
        whole.windows(2).all(|w| w[0] <= w[1]),
        "time, then id order"
    );
    for chunk_ms in [1, 7, 10, 1_000] {
        assert_eq!(
            read(2, chunk_ms, usize::MAX),
            whole,
            "chunks of {chunk_ms} ms"
        );
    }
    // Asked to stop after the first batch (the chunk [0, 1): rows a000 and b000): no more
    // come, and the call returns.
    assert_eq!(read(2, 1, 1).len(), 2);
}

/// Several commands creating the same new database at once (nodes started together) all open
/// it: one switching the file to WAL makes SQLite answer the others "database is locked" at
/// once, which they wait out.
#[tokio::test]
async fn several_commands_creating_one_database_at_once_all_open_it() {
    let path = temp_db("create-race");
    let opens: Vec<_> = (0..6)
        .map(|_| {
            let p = path.clone();
            tokio::spawn(async move { Store::open(&p).await.map(|_| ()) })
        })
        .collect();
    for o in opens {
        o.await.unwrap().unwrap();
    }
}

//! Shared test helpers: the binary's path, temporary directories, free ports.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Path of the `dispo` binary cargo built for these tests.
pub fn dispo_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dispo"))
}

/// A free loopback TCP port (bound then released: good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Every test starts with this: the one rustls provider.
pub fn init() {
    dispo::install_crypto_provider();
}

/// Starts `dispo run --config cfg --db db` with `args` before them, output discarded. The
/// state directory (a PostgreSQL store's spill journal) is the configuration's directory.
pub fn spawn_run(cfg: &Path, db: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Child {
    Command::new(dispo_bin())
        .env("DISPO_STATE_DIR", cfg.parent().unwrap())
        .arg("run")
        .args(args)
        .arg("--config")
        .arg(cfg)
        .arg("--db")
        .arg(db.as_ref())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A fresh temporary directory for one test: `dispo-it-<area>-<name>-<pid>`.
pub fn tmp_dir(area: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dispo-it-{area}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `dispo args` to completion and asserts it succeeded (its output in the message if not).
pub fn dispo_ok(args: &[&str]) -> std::process::Output {
    let out = Command::new(dispo_bin()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "dispo {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Which store a test runs on: the store tests run on both (see [`on_both`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// What `--db` gets for a new empty store: `dir/name` (SQLite), or a fresh database on the
    /// test binary's throw-away PostgreSQL cluster (started once, on first use; a missing
    /// PostgreSQL fails the test with what to install).
    pub fn db(self, dir: &Path, name: &str) -> String {
        match self {
            Backend::Sqlite => dir.join(name).to_str().unwrap().to_owned(),
            Backend::Postgres => dispo::store::pg_cluster::Cluster::shared().fresh_db(name),
        }
    }
}

/// Opens the store a test's `--db` names (file or URL).
pub async fn open_store(db: &str) -> dispo::store::Store {
    dispo::store::Store::open(db.parse::<dispo::store::Target>().unwrap())
        .await
        .unwrap()
}

/// Runs `fn NAME(Backend)` as two tests, `NAME::sqlite` and `NAME::postgres`.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(crate::support::Backend::Sqlite)
            }
            #[test]
            fn postgres() {
                super::$name(crate::support::Backend::Postgres)
            }
        }
    )*};
}
pub(crate) use on_both;

/// As [`on_both`], for `async fn NAME(Backend)` (a multi-threaded runtime each).
macro_rules! on_both_async {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                super::$name(crate::support::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                super::$name(crate::support::Backend::Postgres).await
            }
        }
    )*};
}
pub(crate) use on_both_async;

/// JSON bodies a test webhook received, in order.
pub type Received = std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>;

/// A loopback webhook on `port` recording every JSON body posted to `/hook`.
pub async fn webhook(port: u16) -> Received {
    let got: Received = Default::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(v): axum::Json<serde_json::Value>| {
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

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

/// Starts `dispo run --config cfg --db db` with `args` before them, output discarded.
pub fn spawn_run(cfg: &Path, db: &Path, args: &[&str]) -> Child {
    Command::new(dispo_bin())
        .arg("run")
        .args(args)
        .arg("--config")
        .arg(cfg)
        .arg("--db")
        .arg(db)
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

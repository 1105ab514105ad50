//! A throw-away PostgreSQL cluster for tests and benchmarks: `initdb` in a temporary
//! directory, `postgres` on a free port of 127.0.0.1 (its unix socket in the same directory),
//! trust authentication, one superuser `dispo`. Not used by the tool itself.
//!
//! The server runs under a small shell that waits on its standard input: when the process that
//! started it ends (however it ends), that pipe closes, and the shell stops the server (with
//! `pg_ctl`, so also one [`Cluster::restart`] started) and removes the directory. So a cluster kept in a `static` for a whole test binary never
//! outlives it.
//!
//! PostgreSQL refuses to run as root: as root, the shell runs as the `postgres` user (or
//! `nobody`) through `setpriv`, in a directory it owns. Binaries: `DISPO_PG_BIN`, else `initdb`
//! on the PATH, else the newest `/usr/lib/postgresql/*/bin` (Debian's layout). Missing ones are
//! an error that says what to install, never a skipped test.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A running cluster; stopped when the process that started it ends (see the module doc).
#[derive(Debug)]
pub struct Cluster {
    port: u16,
    dir: PathBuf,
    bin: PathBuf,
    /// The user and group the server runs as, when we are root.
    ids: Option<(String, String)>,
    _guard: Mutex<(Child, ChildStdin)>,
}

/// How the server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fsync = off`: for tests, where a crash loses nothing of value.
    Off,
    /// PostgreSQL's defaults: for benchmarks against a real server.
    Default,
}

fn bin_dir() -> Result<PathBuf, String> {
    if let Some(d) = std::env::var_os("DISPO_PG_BIN") {
        return Ok(PathBuf::from(d));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            if d.join("initdb").is_file() && d.join("postgres").is_file() {
                // Debian links initdb from elsewhere: the client tools sit beside the target.
                let real = std::fs::canonicalize(d.join("initdb")).ok();
                return Ok(real
                    .and_then(|r| r.parent().map(Path::to_owned))
                    .unwrap_or(d));
            }
        }
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, d)| d).ok_or_else(|| {
        "PostgreSQL's server binaries (initdb, postgres) are not installed: install Debian's \
         `postgresql` package (apt-get install postgresql; .ci/run does it), or point \
         DISPO_PG_BIN at the directory holding them"
            .to_owned()
    })
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// The ids of an unprivileged user to run the server as, when we are root.
fn unprivileged() -> Option<(String, String)> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return None;
    }
    for user in ["postgres", "nobody"] {
        let u = Command::new("id").args(["-u", user]).output().ok()?;
        let g = Command::new("id").args(["-g", user]).output().ok()?;
        if u.status.success() && g.status.success() {
            return Some((
                String::from_utf8_lossy(&u.stdout).trim().to_owned(),
                String::from_utf8_lossy(&g.stdout).trim().to_owned(),
            ));
        }
    }
    None
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl Cluster {
    /// Creates and starts a cluster; waits until it accepts connections (at most a minute).
    pub fn start(durability: Durability) -> Result<Self, String> {
        Self::start_with(durability, None)
    }

    /// As [`Cluster::start`], with TLS on from the given server certificate and key (PEM files):
    /// clients may then ask for `sslmode=verify-full`, as nodes in other data centres should.
    pub fn start_with(durability: Durability, tls: Option<(&Path, &Path)>) -> Result<Self, String> {
        let bin = bin_dir()?;
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!(
            "dispo-pg-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let ids = unprivileged();
        if let Some((uid, gid)) = &ids {
            let (u, g) = (uid.parse().ok(), gid.parse().ok());
            std::os::unix::fs::chown(&dir, u, g)
                .map_err(|e| format!("chown {}: {e}", dir.display()))?;
        }
        // The server reads its key only if it alone can (0600, its owner).
        let mut tls_settings = String::new();
        if let Some((cert, key)) = tls {
            for (from, to, mode) in [(cert, "server.crt", 0o644), (key, "server.key", 0o600)] {
                let dest = dir.join(to);
                std::fs::copy(from, &dest)
                    .map_err(|e| format!("copy {} to {}: {e}", from.display(), dest.display()))?;
                std::fs::set_permissions(&dest, std::os::unix::fs::PermissionsExt::from_mode(mode))
                    .map_err(|e| format!("chmod {}: {e}", dest.display()))?;
                if let Some((uid, gid)) = &ids {
                    std::os::unix::fs::chown(&dest, uid.parse().ok(), gid.parse().ok())
                        .map_err(|e| format!("chown {}: {e}", dest.display()))?;
                }
            }
            tls_settings = format!(
                "-c ssl=on -c ssl_cert_file={d}/server.crt -c ssl_key_file={d}/server.key",
                d = dir.display()
            );
        }
        let settings = match durability {
            Durability::Off => {
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off \
                 -c max_connections=200 -c shared_buffers=64MB"
            }
            Durability::Default => "-c max_connections=200 -c shared_buffers=256MB",
        };
        // Waits on stdin; at EOF (the starter ended) stops the server and removes everything.
        let script = format!(
            r#"set -u
D='{d}'; B='{b}'
"$B/initdb" -D "$D/data" -U dispo --auth=trust -E UTF8 --locale=C >"$D/initdb.log" 2>&1 || {{ cat "$D/initdb.log" >&2; exit 1; }}
"$B/postgres" -D "$D/data" -p {port} -k "$D" -c listen_addresses=127.0.0.1 {settings} {tls_settings} >"$D/server.log" 2>&1 &
pid=$!
cat >/dev/null
"$B/pg_ctl" -D "$D/data" -m fast -w stop >/dev/null 2>&1 || kill -INT $pid 2>/dev/null
wait $pid 2>/dev/null
rm -rf "$D"
"#,
            d = dir.display(),
            b = bin.display(),
        );
        let mut cmd = match &ids {
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg("sh");
                c
            }
            None => Command::new("sh"),
        };
        let mut child = cmd
            .arg("-c")
            .arg(&script)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the PostgreSQL cluster's shell: {e}"))?;
        let stdin = child.stdin.take().expect("piped");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                return Err(format!(
                    "the PostgreSQL cluster in {} did not start ({status}): {err}{log}",
                    dir.display()
                ));
            }
            let ready = Command::new(bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                break;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                return Err(format!(
                    "the PostgreSQL cluster in {} was not ready within a minute: {log}",
                    dir.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self {
            port,
            dir,
            bin,
            ids,
            _guard: Mutex::new((child, stdin)),
        })
    }

    /// The cluster shared by a whole test binary, started on first use (durability off).
    /// Panics with the reason when it cannot start: a test needing it fails, never skips.
    pub fn shared() -> &'static Cluster {
        static SHARED: OnceLock<Result<Cluster, String>> = OnceLock::new();
        match SHARED.get_or_init(|| Cluster::start(Durability::Off)) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    /// Restarts the server (`pg_ctl restart -m fast`: every connection ends, as in a real
    /// restart); returns once it accepts connections again.
    pub fn restart(&self) -> Result<(), String> {
        let pg_ctl = self.bin.join("pg_ctl");
        let mut cmd = match &self.ids {
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg(pg_ctl);
                c
            }
            None => Command::new(pg_ctl),
        };
        let out = cmd
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-m", "fast", "-w", "restart"])
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run pg_ctl: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "pg_ctl restart failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory of the cluster (its data, logs and unix socket).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory of PostgreSQL's binaries (for `psql` in benchmarks).
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The URL of database `name` on this cluster.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://dispo@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates a new empty database with a unique name made from `hint`; returns its URL.
    pub fn fresh_db(&self, hint: &str) -> String {
        let safe: String = hint
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        let name = format!(
            "t_{safe}_{}_{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "dispo",
                "-d",
                "postgres",
                "-c",
                &format!("CREATE DATABASE {name}"),
            ])
            .output();
        match out {
            Ok(o) if o.status.success() => self.url(&name),
            Ok(o) => panic!(
                "cannot create database {name}: {}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!("cannot run psql: {e}"),
        }
    }
}

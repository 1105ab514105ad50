//! The operator's side (issue 16): probe files without repetition, `check-config --print` and
//! `--connect`, what check-config refuses, exit codes, completions and the man page.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::sim_support::{Sim, shared_pki};
use crate::support::{dispo_bin, tmp_dir};

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// The codes of the shipped live configuration.
const BP_CODES: [&str; 11] = [
    "10807", "16807", "10207", "18707", "13507", "16607", "10907", "14707", "17807", "13807",
    "14607",
];

/// A key directory laid out as `probes/banque-populaire.toml` expects, from the sandbox PKI.
fn keys_dir(d: &Path) -> PathBuf {
    let pki = shared_pki();
    let keys = d.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    for (from, to) in [
        ("ca.pem", "ca-bundle.pem"),
        ("tpp-qwac.pem", "qwac.pem"),
        ("tpp-qwac.key", "qwac.key"),
        ("tpp-qseal.pem", "qseal.pem"),
        ("tpp-qseal.key", "qseal.key"),
    ] {
        std::fs::copy(pki.join(from), keys.join(to)).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(keys.join(to), std::fs::Permissions::from_mode(0o600))
                .unwrap();
        }
    }
    keys
}

#[test]
fn the_shipped_live_file_resolves_its_defaults_and_masks_secrets() {
    let d = tmp_dir("operator", "bp-print");
    let keys = keys_dir(&d);
    let file = repo("probes/banque-populaire.toml");
    let mut cmd = Command::new(dispo_bin());
    cmd.args(["check-config", "--print"])
        .arg(&file)
        .env("DISPO_KEYS", &keys);
    for c in BP_CODES {
        cmd.env(format!("DISPO_REFRESH_TOKEN_{c}"), "rt-very-secret");
    }
    let o = cmd.output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("OK (11 establishments, 3 probes)"), "{t}");
    // [defaults] reached every establishment, ${DISPO_KEYS} and {code} expanded.
    let qwac = format!("qwac_cert = \"{}/qwac.pem\"", keys.display());
    assert_eq!(t.matches(&qwac).count(), 11, "{t}");
    for c in BP_CODES {
        let base = format!("base_url = \"https://www.{c}.live.api.89c3.com/\"");
        assert!(t.contains(&base), "{base} not in\n{t}");
        let env = format!("refresh_token_env = \"DISPO_REFRESH_TOKEN_{c}\"  # set, value ********");
        assert!(t.contains(&env), "{env} not in\n{t}");
    }
    assert!(!t.contains("rt-very-secret"), "{t}");
    assert!(!t.contains("${"), "{t}");

    // One refresh token missing: refused, at the line of [defaults] that names it.
    let mut cmd = Command::new(dispo_bin());
    cmd.arg("check-config").arg(&file).env("DISPO_KEYS", &keys);
    for c in &BP_CODES[1..] {
        cmd.env(format!("DISPO_REFRESH_TOKEN_{c}"), "x");
    }
    let o = cmd.output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    let line = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("refresh_token_env"))
        .unwrap()
        + 1;
    let want = format!(
        "banque-populaire.toml:{line}: error: refresh_token_env DISPO_REFRESH_TOKEN_10807: that environment variable is not set here"
    );
    assert!(t.contains(&want), "{want} not in\n{t}");
    assert_eq!(t.matches("error: refresh_token_env").count(), 1, "{t}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn check_config_refuses_what_cannot_work() {
    let d = tmp_dir("operator", "refuses");
    let keys = keys_dir(&d);
    let k = keys.display();
    let cfg = d.join("p.toml");
    std::fs::write(
        &cfg,
        format!(
            "[monitor]\n\
             id = \"gateway\"\n\
             [counting]\n\
             maintenance = [{{ weekday = \"Sun\", start = \"06:00:00\", end = \"02:00:00\" }}]\n\
             [counting.targets]\n\
             uptime_pct = 150\n\
             [defaults]\n\
             ca = \"{k}/ca-bundle.pem\"\n\
             client_id = \"PSDFR-ACPR-12345\"\n\
             qwac_cert = \"{k}/qwac.pem\"\n\
             qwac_key = \"${{DISPO_TEST_UNSET_DIR}}/qwac.key\"\n\
             qseal_cert = \"{k}/qseal.pem\"\n\
             qseal_key = \"{k}/qseal.key\"\n\
             [[establishment]]\n\
             code = \"13807\"\n\
             base_url = \"https://www.13807.live.api.89c3.com\"\n\
             refresh_token_env = \"DISPO_TEST_UNSET_TOKEN\"\n\
             [[establishment]]\n\
             code = \"10548\"\n\
             [[probe]]\n\
             name = \"t\"\n\
             step = \"token\"\n\
             schedule = \"* * * * *\"\n\
             [[probe]]\n\
             name = \"t\"\n\
             step = \"fallback\"\n\
             schedule = \"* * * * *\"\n"
        ),
    )
    .unwrap();
    let o = Command::new(dispo_bin())
        .arg("check-config")
        .arg(&cfg)
        .env_remove("DISPO_TEST_UNSET_DIR")
        .env_remove("DISPO_TEST_UNSET_TOKEN")
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    for want in [
        "p.toml:4: error: [counting] maintenance Sun 06:00:00-02:00:00 ends before it starts: read as 20.0 h",
        "p.toml:6: error: [counting] targets.uptime_pct must be a percentage from 0 to 100",
        "p.toml:11: error: \"${DISPO_TEST_UNSET_DIR}/qwac.key\": the environment variable DISPO_TEST_UNSET_DIR is not set",
        "p.toml:17: error: refresh_token_env DISPO_TEST_UNSET_TOKEN: that environment variable is not set here",
        "p.toml:19: error: establishment 10548 has no base_url (give it here or in [defaults])",
        "p.toml:25: error: probe name \"t\" is already used at line 21",
        "p.toml:2: error: monitor id \"gateway\" is taken (gateway: the bank's gateway logs; import: imported probe rows): name the node (e.g. paris-dc1)",
    ] {
        assert!(t.contains(want), "{want} not in\n{t}");
    }
    assert!(t.contains("7 error(s)"), "{t}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn check_config_connect_tries_each_establishment() {
    let sim = Sim::start();
    let d = tmp_dir("operator", "connect");
    let pki = sim.pki.clone();
    let mut toml = dispo::sim::pki::probe_establishment_toml("13807", sim.port, &pki);
    // The server's own certificate as CA: not the issuer, so the handshake fails.
    toml.push_str(
        &dispo::sim::pki::probe_establishment_toml("10548", sim.port, &pki)
            .replace("/ca.pem", "/server.pem"),
    );
    let cfg = d.join("c.toml");
    std::fs::write(&cfg, toml).unwrap();
    let o = Command::new(dispo_bin())
        .args(["check-config", "--connect"])
        .arg(&cfg)
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    let lines: Vec<&str> = t.lines().filter(|l| l.contains(".sim.localhost")).collect();
    assert_eq!(lines.len(), 2, "{t}");
    assert!(
        lines[0].starts_with("13807 https://www.13807.sim.localhost")
            && lines[0].contains(": TLS handshake and token request OK (HTTP 200"),
        "{t}"
    );
    assert!(
        lines[1].starts_with("10548 https://www.10548.sim.localhost")
            && lines[1].contains(": FAILED no_reply")
            && lines[1].contains("certificate"),
        "{t}"
    );
    assert!(
        t.contains("1 of 2 establishment(s) could not be reached"),
        "{t}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn exit_codes_follow_one_table() {
    // clap's usage errors: 2.
    let o = Command::new(dispo_bin())
        .args(["kpi", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // Usage errors dispo finds itself: 2 as well, said the same way.
    for args in [
        vec!["kpi"],
        vec![
            "kpi",
            "--input",
            "x.csv",
            "--from",
            "2026-07-02",
            "--to",
            "2026-07-01",
        ],
        vec![
            "synth",
            "--observations",
            "1",
            "--from",
            "2026-07-01",
            "--to",
            "2026-07-02",
        ],
        vec!["evidence", "--db", "x.db", "--out", "p"],
        vec![
            "report",
            "--db",
            "x.db",
            "--from",
            "2026-07-02",
            "--to",
            "2026-07-01",
        ],
        vec!["report", "--db", "x.db", "--quarter", "2026-Q5"],
    ] {
        let o = Command::new(dispo_bin()).args(&args).output().unwrap();
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {t}");
        assert!(
            t.starts_with("error: ") && t.contains("For more information, try '--help'."),
            "{t}"
        );
    }
    // A closed pipe ends the command quietly, with 0 (as `cat` would).
    let d = tmp_dir("operator", "pipe");
    let csv = d.join("o.csv");
    let mut rows = String::from(
        "received_at,establishment,interface,service,source,tpp,status,latency_ms,error_code,request_id\n",
    );
    for i in 0..2000 {
        rows.push_str(&format!(
            "2026-07-01T08:{:02}:{:02}.000Z,13807,api,cbpii,log,T,200,100,,r{i}\n",
            i / 60 % 60,
            i % 60
        ));
    }
    std::fs::write(&csv, rows).unwrap();
    for format in ["table", "json"] {
        let sh = format!(
            "{} kpi --input {} --format {format} | head -1; echo \"status=${{PIPESTATUS[0]}}\"",
            dispo_bin().display(),
            csv.display()
        );
        let o = Command::new("bash").args(["-c", &sh]).output().unwrap();
        let t = text(&o);
        assert!(t.contains("status=0"), "{format}: {t}");
        assert!(!t.contains("error"), "{format}: {t}");
        assert!(!t.contains("panicked"), "{format}: {t}");
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn completions_and_man_page_are_generated() {
    for (shell, want) in [
        ("bash", "_dispo()"),
        ("zsh", "#compdef dispo"),
        ("fish", "complete -c dispo"),
    ] {
        let o = Command::new(dispo_bin())
            .args(["completions", shell])
            .output()
            .unwrap();
        let t = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{shell}");
        assert!(t.contains(want), "{shell}: {want} not in\n{t}");
        assert!(t.contains("check-config"), "{shell}");
    }
    let o = Command::new(dispo_bin()).arg("manpage").output().unwrap();
    let t = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        t.starts_with(".ie \\n(.g") || t.contains(".TH dispo 1"),
        "{t}"
    );
    assert!(t.contains(".TH dispo 1"), "{t}");
    assert!(t.contains("check\\-config"), "{t}");
}

#[test]
fn json_logs_are_one_object_a_line() {
    let d = tmp_dir("operator", "json-log");
    let cfg = d.join("empty.toml");
    std::fs::write(&cfg, "[monitor]\nid = \"json\"\n").unwrap();
    let o = Command::new(dispo_bin())
        .args([
            "--log-format",
            "json",
            "run",
            "--duration",
            "0s",
            "--config",
        ])
        .arg(&cfg)
        .arg("--db")
        .arg(d.join("x.db"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    // No probe to run: an error, said as JSON like the rest.
    assert_eq!(o.status.code(), Some(1), "{err}");
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: not JSON: {l}")))
        .collect();
    let messages: Vec<(&str, &str)> = lines
        .iter()
        .map(|v| (v["level"].as_str().unwrap(), v["message"].as_str().unwrap()))
        .collect();
    assert_eq!(
        messages,
        [
            ("INFO", "dispo run starting"),
            (
                "WARN",
                "no alert channel configured ([alerts] webhook, slack, alertmanager or email): outages are recorded but nobody is told"
            ),
            ("ERROR", "dispo stopped")
        ],
        "{err}"
    );
    // Where it runs from, resolved.
    assert_eq!(lines[0]["config"], cfg.to_str().unwrap(), "{err}");
    assert_eq!(lines[0]["monitor"], "json", "{err}");
    assert!(
        lines[2]["error"]
            .as_str()
            .unwrap()
            .contains("no probe to run"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// A sandbox configuration probing one establishment's token endpoint every second.
fn run_config(sim: &Sim, d: &Path, monitor: &str) -> PathBuf {
    let mut toml = format!("[monitor]\nid = \"{monitor}\"\n");
    toml.push_str(&dispo::sim::pki::probe_establishment_toml(
        "13807", sim.port, &sim.pki,
    ));
    toml.push_str("[[probe]]\nname = \"t\"\nstep = \"token\"\nschedule = \"* * * * * *\"\n");
    let cfg = d.join(format!("{monitor}.toml"));
    std::fs::write(&cfg, toml).unwrap();
    cfg
}

#[test]
fn a_second_run_with_the_same_monitor_id_refuses() {
    let sim = Sim::start();
    let d = tmp_dir("operator", "lock");
    let cfg = run_config(&sim, &d, "sandbox");
    let db = d.join("dispo.db");
    let mut first = crate::support::spawn_run(&cfg, &db, &[]);
    let lock = d.join("dispo.db.sandbox.lock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::read_to_string(&lock).map_or(true, |s| s.is_empty()) {
        assert!(std::time::Instant::now() < deadline, "no lock taken");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let o = Command::new(dispo_bin())
        .args(["run", "--duration", "2s", "--config"])
        .arg(&cfg)
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    let want = format!(
        "error: monitor 'sandbox' already running (pid {}) on {}",
        first.id(),
        db.display()
    );
    assert!(t.contains(&want), "{want} not in\n{t}");
    // Another monitor id on the same database is another monitor: it runs.
    let other = run_config(&sim, &d, "second");
    let o = Command::new(dispo_bin())
        .args(["run", "--duration", "1s", "--config"])
        .arg(&other)
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let _ = first.kill();
    let _ = first.wait();
    // Killed, the lock went with the process: a new run starts.
    let o = Command::new(dispo_bin())
        .args(["run", "--duration", "1s", "--config"])
        .arg(&cfg)
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn the_database_file_alone_holds_everything_after_each_command() {
    let sim = Sim::start();
    let d = tmp_dir("operator", "wal");
    let db = d.join("dispo.db");
    let wal = d.join("dispo.db-wal");
    let copy_holds = |what: &str| {
        // A plain copy of the .db file, as a careless backup would take it.
        let copy = d.join("copy.db");
        let _ = std::fs::remove_file(&copy);
        std::fs::copy(&db, &copy).unwrap();
        let o = Command::new(dispo_bin())
            .args(["kpi", "--format", "json", "--db"])
            .arg(&copy)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{what}: {}", text(&o));
        let k: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        k["days"].as_array().unwrap().len()
    };
    Command::new(dispo_bin())
        .args([
            "synth",
            "--observations",
            "500",
            "--from",
            "2026-07-01",
            "--to",
            "2026-07-08",
            "--establishments",
            "13807",
            "--db",
        ])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "synth left a WAL"
    );
    // 7 days x 3 interfaces.
    assert_eq!(copy_holds("synth"), 21);

    let csv = d.join("o.csv");
    std::fs::write(
        &csv,
        "received_at,establishment,interface,service,source,tpp,status,latency_ms,error_code,request_id\n\
         2026-07-10T08:00:00.000Z,13807,api,cbpii,log,T,200,100,,imp-1\n",
    )
    .unwrap();
    let o = Command::new(dispo_bin())
        .args(["import", "--db"])
        .arg(&db)
        .arg(&csv)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "import left a WAL"
    );
    assert_eq!(copy_holds("import"), 30);

    let cfg = run_config(&sim, &d, "wal");
    let o = Command::new(dispo_bin())
        .args(["run", "--duration", "2s", "--config"])
        .arg(&cfg)
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "run left a WAL"
    );

    // `dispo backup`: one consistent file; an existing target is refused.
    let b = d.join("backup.db");
    let o = Command::new(dispo_bin())
        .args(["backup", "--db"])
        .arg(&db)
        .arg(&b)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = Command::new(dispo_bin())
        .args([
            "kpi",
            "--format",
            "json",
            "--from",
            "2026-07-01",
            "--to",
            "2026-07-11",
            "--db",
        ])
        .arg(&b)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = Command::new(dispo_bin())
        .args(["backup", "--db"])
        .arg(&db)
        .arg(&b)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("backup.db already exists"),
        "{}",
        text(&o)
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn kpi_refuses_a_file_that_is_no_database_and_leaves_it_alone() {
    let d = tmp_dir("operator", "kpi-empty");
    let empty = d.join("notes.txt");
    std::fs::write(&empty, "").unwrap();
    let text_file = d.join("obs.csv");
    std::fs::write(&text_file, "received_at,establishment\n").unwrap();
    for (f, why) in [
        (&empty, "is empty: not a dispo database"),
        (&text_file, "is not a SQLite database"),
        (&d.join("missing.db"), "does not exist"),
    ] {
        let before = std::fs::read(f).ok();
        let o = Command::new(dispo_bin())
            .args(["kpi", "--db"])
            .arg(f)
            .output()
            .unwrap();
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "{t}");
        let want = format!("error: database {}: {why}", f.display());
        assert!(t.contains(&want), "{want} not in\n{t}");
        assert_eq!(std::fs::read(f).ok(), before, "{} changed", f.display());
        let mut wal = f.as_os_str().to_owned();
        wal.push("-wal");
        assert!(!Path::new(&wal).exists());
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn messages_say_one_cause_once_with_the_resolved_path() {
    let d = tmp_dir("operator", "messages");
    let o = Command::new(dispo_bin())
        .current_dir(&d)
        .args(["kpi", "--input", "nope.csv"])
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert_eq!(
        t.trim(),
        format!(
            "error: cannot open {}: No such file or directory",
            d.join("nope.csv").display()
        )
    );
    let o = Command::new(dispo_bin())
        .current_dir(&d)
        .args(["check-config", "nonexist.toml"])
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    let want = format!(
        "{}: error: cannot read it: No such file or directory",
        d.join("nonexist.toml").display()
    );
    assert!(t.contains(&want), "{want} not in\n{t}");
    assert!(!t.contains("os error") && !t.contains(":1:"), "{t}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn metrics_listen_takes_a_port_alone() {
    let d = tmp_dir("operator", "metrics-port");
    let cfg = d.join("c.toml");
    // A followed log only: no probe, no simulator needed.
    std::fs::write(&cfg, "[[source]]\npath = \"g.csv\"\nformat = \"csv\"\n").unwrap();
    let port = crate::support::free_port();
    let o = Command::new(dispo_bin())
        .args([
            "run",
            "--duration",
            "1s",
            "--metrics-listen",
            &format!(":{port}"),
            "--config",
        ])
        .arg(&cfg)
        .arg("--db")
        .arg(d.join("m.db"))
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains(&format!("0.0.0.0:{port}")), "{t}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn why_a_probe_fails_is_logged_once_per_change() {
    let sim = Sim::start_with(Some(
        "[[fault]]\nestablishment = \"13807\"\ninterface = \"api\"\nkind = \"error503\"\nafter_s = 0\nfor_s = 600\n",
    ));
    let d = tmp_dir("operator", "reason");
    let mut toml = String::from("[monitor]\nid = \"reason\"\nburst_interval_s = 0.2\n");
    toml.push_str(&dispo::sim::pki::probe_establishment_toml(
        "13807", sim.port, &sim.pki,
    ));
    toml.push_str("[[probe]]\nname = \"tok\"\nstep = \"token\"\nschedule = \"* * * * * *\"\n");
    let cfg = d.join("r.toml");
    std::fs::write(&cfg, toml).unwrap();
    let db = d.join("r.db");
    let o = Command::new(dispo_bin())
        .args([
            "--log-format",
            "json",
            "run",
            "--duration",
            "3s",
            "--config",
        ])
        .arg(&cfg)
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let failing: Vec<serde_json::Value> = err
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "probe failing")
        .collect();
    // Several failed requests (the schedule and a burst), one reason, said once.
    assert_eq!(failing.len(), 1, "{err}");
    assert_eq!(failing[0]["establishment"], "13807");
    assert_eq!(failing[0]["probe"], "tok");
    let reason = failing[0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("aspsp_error (HTTP 503)"), "{reason}");
    let o = Command::new(dispo_bin())
        .args(["kpi", "--format", "json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let k: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let requests: u64 = k["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["requests"].as_u64().unwrap())
        .sum();
    assert!(requests >= 3, "{requests} requests: {k}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn establishment_codes_are_checked_the_same_way_everywhere() {
    let d = tmp_dir("operator", "codes");
    let db = d.join("c.db");
    let csv = d.join("o.csv");
    std::fs::write(
        &csv,
        "received_at,establishment,interface,service,source,tpp,status,latency_ms,error_code,request_id\n\
         2026-07-10T08:00:00.000Z,13807,api,cbpii,log,T,200,100,,a1\n\
         2026-07-10T08:00:01.000Z,99999,api,cbpii,log,T,200,100,,a2\n\
         2026-07-10T08:00:02.000Z,99999,api,cbpii,log,T,200,100,,a3\n",
    )
    .unwrap();
    let warning = "establishment 99999 is neither a Banque Populaire code nor in the configuration";
    let o = Command::new(dispo_bin())
        .args(["import", "--db"])
        .arg(&db)
        .arg(&csv)
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert_eq!(t.matches(warning).count(), 1, "{t}");
    assert!(!t.contains("establishment 13807 is"), "{t}");
    // With a configuration that names it, 99999 is expected.
    let cfg = d.join("p.toml");
    std::fs::write(&cfg, "[[establishment]]\ncode = \"99999\"\n").unwrap();
    let o = Command::new(dispo_bin())
        .args(["import", "--config"])
        .arg(&cfg)
        .arg("--db")
        .arg(&db)
        .arg(&csv)
        .output()
        .unwrap();
    assert!(!text(&o).contains(warning), "{}", text(&o));

    let o = Command::new(dispo_bin())
        .args([
            "synth",
            "--observations",
            "10",
            "--from",
            "2026-07-01",
            "--to",
            "2026-07-02",
            "--establishments",
            "99999",
            "--db",
        ])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(text(&o).matches(warning).count(), 1, "{}", text(&o));
    let o = Command::new(dispo_bin())
        .args(["evidence", "--db"])
        .arg(&db)
        .args([
            "--from",
            "2026-07-01",
            "--to",
            "2026-07-02",
            "--establishment",
            "99999",
            "--out",
        ])
        .arg(d.join("pack"))
        .output()
        .unwrap();
    assert_eq!(text(&o).matches(warning).count(), 1, "{}", text(&o));
    // Not five digits: refused by every command with the same words.
    for args in [
        vec![
            "synth",
            "--observations",
            "1",
            "--from",
            "2026-07-01",
            "--to",
            "2026-07-02",
            "--establishments",
            "9999",
            "--out",
            "x.csv",
        ],
        vec![
            "evidence",
            "--db",
            "x.db",
            "--from",
            "2026-07-01",
            "--to",
            "2026-07-02",
            "--establishment",
            "9999",
            "--out",
            "p",
        ],
    ] {
        let o = Command::new(dispo_bin())
            .current_dir(&d)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(
            text(&o).contains("establishment code \"9999\" is not 5 digits"),
            "{}",
            text(&o)
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn synthetic_data_says_so_everywhere_and_spans_the_period() {
    let d = tmp_dir("operator", "synthetic");
    let db = d.join("s.db");
    let o = Command::new(dispo_bin())
        .args([
            "synth",
            "--observations",
            "100",
            "--from",
            "2026-07-01",
            "--to",
            "2026-10-01",
            "--establishments",
            "13807",
            "--db",
        ])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = Command::new(dispo_bin())
        .args(["kpi", "--format", "json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let k: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(k["synthetic"], true);
    // A hundred observations over a quarter reach its last month.
    let september = k["days"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| {
            d["date"].as_str().unwrap().starts_with("2026-09") && d["requests"].as_u64() > Some(0)
        })
        .count();
    assert!(september > 0, "no observation in September");
    let o = Command::new(dispo_bin())
        .args(["kpi", "--format", "table", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with(
            "SYNTHETIC DATA (dispo synth): these figures describe no real measurement."
        ),
        "{}",
        text(&o)
    );
    let pack = d.join("pack");
    let o = Command::new(dispo_bin())
        .args([
            "evidence",
            "--lang",
            "en",
            "--from",
            "2026-07-01",
            "--to",
            "2026-07-08",
            "--db",
        ])
        .arg(&db)
        .arg("--out")
        .arg(&pack)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let summary = std::fs::read_to_string(pack.join("summary.md")).unwrap();
    assert!(
        summary.contains("SYNTHETIC DATA (dispo synth): this pack describes no real measurement."),
        "{summary}"
    );
    // Real observations: not flagged.
    let real = d.join("r.db");
    let csv = d.join("o.csv");
    std::fs::write(
        &csv,
        "received_at,establishment,interface,service,source,tpp,status,latency_ms,error_code,request_id\n\
         2026-07-10T08:00:00.000Z,13807,api,cbpii,log,T,200,100,,a1\n",
    )
    .unwrap();
    Command::new(dispo_bin())
        .args(["import", "--db"])
        .arg(&real)
        .arg(&csv)
        .output()
        .unwrap();
    let o = Command::new(dispo_bin())
        .args(["kpi", "--format", "json", "--db"])
        .arg(&real)
        .output()
        .unwrap();
    let k: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(k["synthetic"], false);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn ctrl_c_during_an_import_sums_up_what_landed_and_exits_130() {
    use std::io::Write as _;
    let d = tmp_dir("operator", "sigint");
    let db = d.join("i.db");
    let mut child = Command::new(dispo_bin())
        .args(["import", "--batch-rows", "1000", "--db"])
        .arg(&db)
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut rows = String::from(
        "received_at,establishment,interface,service,source,tpp,status,latency_ms,error_code,request_id\n",
    );
    for i in 0..5000 {
        rows.push_str(&format!(
            "2026-07-01T08:{:02}:{:02}.{:03}Z,13807,api,cbpii,log,T,200,100,,r{i}\n",
            i / 3600 % 60,
            i / 60 % 60,
            i % 1000
        ));
    }
    stdin.write_all(rows.as_bytes()).unwrap();
    stdin.flush().unwrap();
    // The input stays open (a follow-up that never comes): five batches land, then Ctrl-C.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let k = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(k.success());
    let o = child.wait_with_output().unwrap();
    drop(stdin);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(130), "{t}");
    assert!(
        t.contains("imported 5000 rows") && t.contains("5000 added"),
        "{t}"
    );
    assert!(t.contains("import interrupted: 5000 rows committed"), "{t}");
    let o = Command::new(dispo_bin())
        .args(["kpi", "--format", "json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let k: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let requests: u64 = k["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(requests, 5000);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn report_does_not_overwrite_a_publication_unless_forced() {
    let d = tmp_dir("operator", "report-force");
    let db = d.join("r.db");
    let csv = d.join("o.csv");
    std::fs::write(
        &csv,
        "received_at,establishment,interface,service,source,tpp,status,latency_ms,error_code,request_id\n\
         2026-07-04T10:00:00.000Z,13807,api,cbpii,log,T,200,100,,a1\n",
    )
    .unwrap();
    Command::new(dispo_bin())
        .args(["import", "--db"])
        .arg(&db)
        .arg(&csv)
        .output()
        .unwrap();
    let out = d.join("pub");
    let report = |force: bool| {
        let mut c = Command::new(dispo_bin());
        c.args([
            "report",
            "--from",
            "2026-07-04",
            "--to",
            "2026-07-05",
            "--db",
        ])
        .arg(&db)
        .arg("--out")
        .arg(&out);
        if force {
            c.arg("--force");
        }
        c.output().unwrap()
    };
    let o = report(false);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = report(false);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let want = format!(
        "error: {} already holds a publication: give --force to replace it, or another --out",
        out.join("2026-07-04_2026-07-05").display()
    );
    assert_eq!(text(&o).trim(), want);
    let o = report(true);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&d);
}

/// A PostgreSQL URL holds a password: a bad `--db` or `DISPO_DB` is refused without echoing it,
/// and `--help` does not show the variable's value (stderr goes to the journal).
#[test]
fn a_database_url_is_never_echoed_with_its_password() {
    let bad = "postgres://dispo:s3cretPW@127.0.0.1:bad/dispo";
    for args in [
        vec!["kpi", "--db", bad],
        vec!["import", "--db", bad, "x.csv"],
    ] {
        let o = Command::new(dispo_bin()).args(&args).output().unwrap();
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{t}");
        assert!(t.contains("invalid value for --db"), "{t}");
        assert!(!t.contains("s3cretPW"), "{t}");
    }
    let o = Command::new(dispo_bin())
        .args(["run", "--duration", "1s"])
        .env("DISPO_DB", bad)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(!text(&o).contains("s3cretPW"), "{}", text(&o));
    for cmd in ["run", "report", "import", "status", "backup"] {
        let o = Command::new(dispo_bin())
            .args([cmd, "--help"])
            .env("DISPO_DB", "postgres://dispo:s3cretPW@db/dispo")
            .output()
            .unwrap();
        assert!(!text(&o).contains("s3cretPW"), "{cmd}: {}", text(&o));
    }
}

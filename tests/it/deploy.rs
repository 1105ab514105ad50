//! Deployment (issue 16, points 3 and 4): the systemd unit passes `systemd-analyze verify`, the
//! binary runs as a non-root user with a read-only configuration directory, the Grafana
//! dashboard asks only for metrics dispo exports, the Containerfile keeps its promises. No
//! image is built here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{dispo_bin, tmp_dir};

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_systemd_unit_verifies() {
    if !have("systemd-analyze") {
        eprintln!("SKIPPED: systemd-analyze is not installed (apt-get install systemd)");
        return;
    }
    let d = tmp_dir("deploy", "unit");
    let unit = std::fs::read_to_string(repo("deploy/dispo.service")).unwrap();
    for want in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "StateDirectory=dispo",
        "Restart=on-failure",
        "KillSignal=SIGTERM",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
    ] {
        assert!(unit.contains(want), "{want} not in the unit");
    }
    // verify wants the binary to exist: point it at the one under test.
    let f = d.join("dispo.service");
    std::fs::write(
        &f,
        unit.replace("/usr/local/bin/dispo", dispo_bin().to_str().unwrap()),
    )
    .unwrap();
    let o = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&f)
        .output()
        .unwrap();
    let t = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    // Unknown keys are only warnings: none is wanted.
    assert!(o.status.success() && t.trim().is_empty(), "{t}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn runs_as_a_non_root_user_with_a_read_only_configuration() {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        // As root, drop to nobody (65534) for the commands; as anyone else, run as oneself.
        let drop: Vec<String> = if !root {
            vec![]
        } else if have("setpriv") {
            [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--",
            ]
            .map(String::from)
            .to_vec()
        } else if have("runuser") {
            ["runuser", "-u", "nobody", "--"].map(String::from).to_vec()
        } else {
            eprintln!("SKIPPED: running as root without setpriv or runuser to drop to nobody");
            return;
        };
        let d = tmp_dir("deploy", "nonroot");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let etc = d.join("etc");
        let state = d.join("state");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::create_dir_all(&state).unwrap();
        // A configuration needing no bank: a gateway log followed (in the state directory).
        std::fs::write(
            etc.join("probes.toml"),
            format!(
                "[monitor]\nid = \"nonroot\"\n[[source]]\npath = \"{}/gateway.csv\"\nformat = \"csv\"\n",
                state.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(
            etc.join("probes.toml"),
            std::fs::Permissions::from_mode(0o444),
        )
        .unwrap();
        std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o555)).unwrap();
        if root {
            let o = Command::new("chown")
                .args(["65534:65534"])
                .arg(&state)
                .output()
                .unwrap();
            assert!(o.status.success());
        }
        let run = |args: &[&str]| {
            let mut c = Command::new(drop.first().map_or(dispo_bin().to_str().unwrap(), |s| s));
            if !drop.is_empty() {
                c.args(&drop[1..]).arg(dispo_bin());
            }
            c.args(args).output().unwrap()
        };
        let cfg = etc.join("probes.toml");
        let db = state.join("dispo.db");
        let o = run(&["check-config", cfg.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
        let o = run(&[
            "run",
            "--duration",
            "1s",
            "--config",
            cfg.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
        ]);
        assert!(
            o.status.success(),
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let m = std::fs::metadata(&db).unwrap();
        assert_eq!(m.mode() & 0o777, 0o600);
        if root {
            assert_eq!(m.uid(), 65534, "the database belongs to the service user");
        }
        // Nothing was written beside the configuration.
        let names: Vec<_> = std::fs::read_dir(&etc)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["probes.toml"]);
        std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o755)).unwrap();
        let _ = std::fs::remove_dir_all(&d);
    }
}

/// Metric names a PromQL expression uses: identifiers followed by `{`, `[`, `)`, an operator or
/// the end, that are not functions (followed by `(`), keywords or label names inside braces.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const WORDS: [&str; 8] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
    ];
    const AGGREGATIONS: [&str; 12] = [
        "sum",
        "avg",
        "min",
        "max",
        "count",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
        "group",
    ];
    let mut out = BTreeSet::new();
    let (mut in_braces, mut in_quotes, mut in_by) = (false, false, false);
    let b = expr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if in_quotes {
            if c == '"' {
                in_quotes = false;
            }
            i += 1;
            continue;
        }
        match c {
            '"' => in_quotes = true,
            '{' => in_braces = true,
            '}' => in_braces = false,
            ')' => in_by = false,
            '[' => {
                // A range: skip to its end (`5m`).
                while i < b.len() && b[i] != b']' {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':')
                {
                    i += 1;
                }
                let word = &expr[start..i];
                let next = expr[i..].trim_start().chars().next();
                if WORDS.contains(&word) {
                    // A label list follows (`by (a, b)`, `on(e)`).
                    in_by = word != "bool" && word != "offset";
                } else if AGGREGATIONS.contains(&word) {
                } else if !in_braces && !in_by && next != Some('(') {
                    out.insert(word.to_owned());
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

fn exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                match (k.as_str(), x) {
                    ("expr" | "definition", serde_json::Value::String(s)) => out.push(s.clone()),
                    ("query", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => exprs(x, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| exprs(x, out)),
        _ => {}
    }
}

#[test]
fn the_grafana_dashboard_asks_only_for_exported_metrics() {
    // What /metrics exports: every family's TYPE line, writer health included.
    let m = dispo::metrics::Metrics::with(&Default::default(), Default::default())
        .watching(Default::default());
    let mut exported: BTreeSet<String> = m
        .render()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect();
    // Families shown only once they have a value (the last write's time): their declaration.
    let source = std::fs::read_to_string(repo("src/metrics.rs")).unwrap();
    let declared = regex::Regex::new(r#"head\(\s*&mut out,\s*"([a-z_]+)""#).unwrap();
    exported.extend(declared.captures_iter(&source).map(|c| c[1].to_string()));
    assert!(exported.contains("dispo_interface_up"), "{exported:?}");
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo("deploy/grafana-dashboard.json")).unwrap(),
    )
    .unwrap();
    let mut all = Vec::new();
    exprs(&dash, &mut all);
    let mut used = BTreeSet::new();
    for e in &all {
        // Grafana's `label_values(metric, label)`: the metric is the first argument.
        let promql = match e.strip_prefix("label_values(") {
            Some(args) => args.split(',').next().unwrap_or_default(),
            None => e.as_str(),
        };
        for n in metric_names(promql) {
            assert!(
                exported.contains(&n),
                "{n} (in `{e}`) is not exported by dispo: {exported:?}"
            );
            used.insert(n);
        }
    }
    // What the dashboard is for: state, latency by phase, episodes, store health.
    for want in [
        "dispo_interface_up",
        "probe_http_duration_seconds",
        "dispo_episodes_total",
        "dispo_observations_unwritten",
        "dispo_store_write_failures_total",
        "dispo_last_write_timestamp_seconds",
        "dispo_observations_spilled",
    ] {
        assert!(used.contains(want), "the dashboard does not show {want}");
    }
    // The parser itself: functions, labels, keywords and ranges are not metrics.
    assert_eq!(
        metric_names("sum by (establishment) (increase(x_total{a=\"b c\"}[5m])) / on(e) y"),
        BTreeSet::from(["x_total".to_string(), "y".to_string()])
    );
}

#[test]
fn the_containerfile_builds_small_and_runs_unprivileged() {
    let c = std::fs::read_to_string(repo("Containerfile")).unwrap();
    let from: Vec<&str> = c.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(from.len(), 2, "multi-stage: build, then runtime");
    assert!(from[0].contains(" AS build"));
    assert!(from[1].contains("distroless"), "{}", from[1]);
    assert!(c.contains("\nUSER 65532:65532\n"));
    assert!(c.contains("VOLUME [\"/var/lib/dispo\"]"));
    assert!(c.contains("--read-only"));
    assert!(c.contains("cargo build --release --locked --bin dispo"));
}

//! Bounds on what an operator, a bank or a gateway log can hand dispo (issue 13, points 1, 2, 4
//! and 11), through the real binary: refused with a reason, never a panic or unbounded memory.

use std::process::Command;

use crate::support;

fn dispo(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(support::dispo_bin())
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// NaN, infinite or out-of-range seconds and a schedule that can never fire are errors at their
/// line, in `check-config` and `run`; `--duration 1e23` is refused. None of them panics.
#[test]
fn numbers_and_schedules_that_cannot_work_are_refused_with_their_line() {
    let dir = support::tmp_dir("bounded", "numbers");
    let cfg = dir.join("p.toml");
    std::fs::write(
        &cfg,
        "[monitor]\n\
         timeout_s = nan\n\
         heartbeat_s = nan\n\
         burst_interval_s = inf\n\
         max_body_bytes = 10\n\
         [[source]]\n\
         path = \"obs.csv\"\n\
         format = \"csv\"\n\
         poll_s = -inf\n\
         \n\
         [[probe]]\n\
         name = \"never\"\n\
         step = \"token\"\n\
         schedule = \"0 0 30 2 *\"\n",
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    let f = cfg.display();
    let (code, text) = dispo(&["check-config", c]);
    assert_eq!(code, Some(1), "{text}");
    for want in [
        format!("{f}:2: error: timeout_s must be from 0.1 to 3600 seconds, not NaN"),
        format!("{f}:3: error: heartbeat_s must be from 0.2 to 3600 seconds, not NaN"),
        format!(
            "{f}:4: error: burst_interval_s (0: off) must be from 0.1 to 3600 seconds, not inf"
        ),
        format!("{f}:5: error: max_body_bytes must be from 1024 to 1073741824 (1 GiB), not 10"),
        format!("{f}:9: error: poll_s must be from 0.01 to 60 seconds, not -inf"),
        format!("{f}:14: error: cron expression \"0 0 30 2 *\" never fires"),
    ] {
        assert!(text.contains(&want), "missing {want:?} in:\n{text}");
    }
    assert!(!text.contains("panicked"), "{text}");

    // `run` refuses the same file with the same lines, before opening anything.
    let db = dir.join("d.db");
    let (code, text) = dispo(&["run", "--config", c, "--db", db.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert!(
        text.contains(&format!("{f}:2: error: timeout_s")) && text.contains("never fires"),
        "{text}"
    );

    // A duration beyond any clock: refused by the flag's parser (clap's exit status 2).
    for d in ["1e23", "100000000000000000000000", "nan"] {
        let (code, text) = dispo(&["run", "--config", c, "--duration", d]);
        assert_eq!(code, Some(2), "{d}: {text}");
        assert!(text.contains("out of range"), "{d}: {text}");
        assert!(!text.contains("panicked"), "{d}: {text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

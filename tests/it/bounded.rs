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

/// A gzip of one huge JSON line and CSV lines with overlong fields: each refused with its line and
/// reason, the rest imported; the refused line is not kept whole anywhere (the rejects file holds
/// its first 200 characters).
#[test]
fn import_lines_and_fields_are_bounded() {
    use crate::import::{gzip, load_all};
    let dir = support::tmp_dir("bounded", "import");
    let db = dir.join("o.db");
    let rejects = dir.join("rejects.jsonl");
    let mapping = dir.join("m.toml");
    std::fs::write(
        &mapping,
        "[fields]\nreceived_at = \"t\"\nrequest_id = \"id\"\ntpp = \"tpp\"\nstatus = \"s\"\n\
         error_text = \"e\"\n[defaults]\nestablishment = \"13807\"\nservice = \"cbpii\"\n",
    )
    .unwrap();
    // 8 MiB of one value on line 2 (a 300 KB gzip would do as much harm).
    let huge = format!(
        "{{\"t\":\"2024-07-04T10:00:01Z\",\"id\":\"big\",\"s\":200,\"e\":\"{}\"}}\n",
        "x".repeat(8 << 20)
    );
    let jsonl = format!(
        "{{\"t\":\"2024-07-04T10:00:00Z\",\"id\":\"j1\",\"s\":200}}\n{huge}\
         {{\"t\":\"2024-07-04T10:00:02Z\",\"id\":\"j3\",\"s\":503,\"e\":\"{}\"}}\n\
         {{\"t\":\"2024-07-04T10:00:03Z\",\"id\":\"j4\",\"s\":200,\"tpp\":\"{}\"}}\n\
         {{\"t\":\"2024-07-04T10:00:04Z\",\"id\":\"j5\",\"s\":200}}",
        "e".repeat(2001),
        "T".repeat(201)
    );
    let gz = dir.join("a.jsonl.gz");
    std::fs::write(&gz, gzip(jsonl.as_bytes())).unwrap();
    let args = |f: &std::path::Path, extra: &[&str]| {
        let mut a = vec![
            "import".to_owned(),
            "--db".into(),
            db.to_str().unwrap().into(),
            "--rejects".into(),
            rejects.to_str().unwrap().into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a.push(f.to_str().unwrap().into());
        a
    };
    let a = args(
        &gz,
        &["--format", "jsonl", "--mapping", mapping.to_str().unwrap()],
    );
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (code, text) = dispo(&a);
    assert_eq!(code, Some(3), "{text}");
    for want in [
        ":2: line 2 is longer than 65536 bytes (--max-line-bytes)",
        ":3: error_text is 2001 characters long, more than 2000 (--max-error-text-chars)",
        ":4: tpp is 201 characters long, more than 200 (--max-id-chars)",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    let r = std::fs::read_to_string(&rejects).unwrap();
    assert!(r.len() < 20_000, "the rejects file holds {} bytes", r.len());

    // The observation CSV: a 100 KB line, a 201-character request id, an error text too long.
    let head = "received_at,establishment,interface,service,source,tpp,status,latency_ms,error_code,request_id,error_text\n";
    let csv = format!(
        "{head}2024-07-04T11:00:00Z,13807,api,cbpii,log,T,200,12,,c1,\n\
         2024-07-04T11:00:01Z,13807,api,cbpii,log,T,200,12,,c2,{}\n\
         2024-07-04T11:00:02Z,13807,api,cbpii,log,T,200,12,,{},\n\
         2024-07-04T11:00:03Z,13807,api,cbpii,log,T,503,12,INTS,c4,{}\n\
         2024-07-04T11:00:04Z,13807,api,cbpii,log,T,200,12,,c5,\n",
        "y".repeat(100_000),
        "r".repeat(201),
        "z".repeat(2001)
    );
    let f = dir.join("b.csv");
    std::fs::write(&f, csv).unwrap();
    let a = args(&f, &[]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (code, text) = dispo(&a);
    assert_eq!(code, Some(3), "{text}");
    for want in [
        ":3: line 3 is longer than 65536 bytes (--max-line-bytes)",
        ":4: request_id is 201 characters long, more than 200 (--max-id-chars)",
        ":5: error_text is 2001 characters long, more than 2000",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    let mut ids: Vec<String> = load_all(&db)
        .iter()
        .map(|o| o.obs.request_id.to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, ["c1", "c5", "j1", "j5"]);

    // A policy set higher lets the long fields through (not the line).
    let a = args(
        &f,
        &["--max-id-chars", "300", "--max-error-text-chars", "3000"],
    );
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (code, text) = dispo(&a);
    assert_eq!(code, Some(3), "{text}");
    assert!(text.contains(":3: line 3 is longer"), "{text}");
    assert_eq!(load_all(&db).len(), 6);

    // A quote left open would gather the rest of the file into one record: stopped, saying so.
    let f = dir.join("c.csv");
    let open_quote = format!(
        "{head}2024-07-04T12:00:00Z,13807,api,cbpii,log,T,200,12,,q1,\"never closed\n{}",
        "2024-07-04T12:00:01Z,13807,api,cbpii,log,T,200,12,,q2,\n".repeat(20_000)
    );
    std::fs::write(&f, open_quote).unwrap();
    let a = args(&f, &[]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (code, text) = dispo(&a);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("one CSV record runs over more than 327680 bytes (a quote left open?)"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Flags that size memory or multiply into milliseconds are refused at the command line, not
/// turned into a panic or an allocation failure (outside review).
#[test]
fn huge_numeric_flags_are_usage_errors() {
    let dir = support::tmp_dir("bounded", "flags");
    let db = dir.join("x.db");
    let (code, out) = dispo(&[
        "import",
        "--db",
        db.to_str().unwrap(),
        "--batch-rows",
        "18446744073709551615",
        "/dev/null",
    ]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("is not in 1..=1000000"), "{out}");
    let (code, out) = dispo(&[
        "evidence",
        "--db",
        db.to_str().unwrap(),
        "--context-minutes",
        "9223372036854775807",
        "--from",
        "2026-01-01",
        "--to",
        "2026-01-02",
        "--out",
        dir.join("p").to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("is not in 0..=10080"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

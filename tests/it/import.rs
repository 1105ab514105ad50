//! `dispo import` through the real binary: observation CSV plain, gzipped and on stdin, JSON lines
//! with a field mapping, idempotence, rejects (counts, line numbers, rejects file), batches.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use dispo::domain::{Interface, Outcome};
use dispo::store::{Store, StoredObservation};

use crate::support;

/// A fresh directory for one test.
pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "dispo-it-{name}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `dispo` with `args`, feeding `stdin` when given.
pub fn dispo(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(support::dispo_bin());
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("dispo runs");
    if let Some(bytes) = stdin {
        let mut si = child.stdin.take().unwrap();
        si.write_all(bytes).unwrap();
    }
    child.wait_with_output().unwrap()
}

pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Every observation of the store `db` (a file or a postgres:// URL).
pub fn load_all(db: impl AsRef<std::ffi::OsStr>) -> Vec<StoredObservation> {
    let db = db.as_ref().to_str().unwrap().to_owned();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = support::open_store(&db).await;
        s.load_observations(i64::MIN, i64::MAX, &[]).await.unwrap()
    })
}

const HEADER: &str = "received_at,establishment,interface,service,source,tpp,status,latency_ms,error_code,request_id\n";

/// `n` good rows, one second apart from 2024-07-04T10:00:00Z, ids `p{i}`.
fn rows(prefix: &str, n: usize) -> String {
    let mut s = String::from(HEADER);
    for i in 0..n {
        s.push_str(&format!(
            "2024-07-04T10:{:02}:{:02}.000Z,13807,api,cbpii,log,PSDFR-ACPR-1,200,120.5,,{prefix}{i}\n",
            i / 60,
            i % 60
        ));
    }
    s
}

fn summary_line(stdout: &str) -> &str {
    stdout
        .lines()
        .find(|l| l.starts_with("imported "))
        .expect("summary line")
}

support::on_both!(csv_plain_gzip_and_stdin_are_idempotent);

fn csv_plain_gzip_and_stdin_are_idempotent(b: support::Backend) {
    support::init();
    let d = tmp(&format!("import-idem-{b:?}"));
    let db = b.db(&d, "o.db");
    let db_s = db.as_str();
    let csv = rows("p", 25);
    std::fs::write(d.join("a.csv"), &csv).unwrap();
    // The same content gzipped, under a name that does not say so: detected by magic bytes.
    std::fs::write(d.join("a.log"), gzip(csv.as_bytes())).unwrap();

    // Batches of 7 rows: 25 rows are 4 transactions (7+7+7+4).
    let o = dispo(
        &[
            "import",
            "--db",
            db_s,
            "--batch-rows",
            "7",
            d.join("a.csv").to_str().unwrap(),
        ],
        None,
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        summary_line(&out).ends_with("25 added, 0 already present, 0 rejected"),
        "{out}"
    );
    assert_eq!(load_all(&db).len(), 25);

    // Second import of the same rows, gzipped: adds nothing.
    let o = dispo(
        &["import", "--db", db_s, d.join("a.log").to_str().unwrap()],
        None,
    );
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        summary_line(&out).ends_with("0 added, 25 already present, 0 rejected"),
        "{out}"
    );

    // stdin, gzipped: lines 21..25 of the data (p20..p24, already there) and 5 new (q0..q4).
    let mut mixed = rows("p", 25)
        .lines()
        .skip(21)
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    mixed.insert_str(0, HEADER);
    mixed.push_str(&rows("q", 5)[HEADER.len()..]);
    let o = dispo(
        &["import", "--db", db_s, "-"],
        Some(&gzip(mixed.as_bytes())),
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        summary_line(&out).ends_with("5 added, 5 already present, 0 rejected"),
        "{out}"
    );
    let all = load_all(&db);
    assert_eq!(all.len(), 30);
    assert!(all.iter().all(|o| o.obs.outcome == Outcome::Ok));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn bad_lines_are_counted_shown_and_kept() {
    support::init();
    let d = tmp("import-rejects");
    let db = d.join("o.db");
    let rejects = d.join("rejects.jsonl");
    // Line 1 header; lines 2, 4, 7 good; 3, 5, 6, 8 bad.
    let csv = format!(
        "{HEADER}\
2024-07-04T10:00:00Z,13807,api,cbpii,log,T1,200,100,,g1\n\
2024-07-04T10:00:01,13807,api,cbpii,log,T1,200,100,,b1\n\
2024-07-04T10:00:02Z,13807,api,cbpii,log,T1,,,,g2\n\
2024-07-04T10:00:03Z,13807,api,cbpii,log,T1,700,100,,b2\n\
2024-07-04T10:00:04Z,13807,web,cbpii,log,T1,200,100,access_token=s3cr3tT0ken,b3\n\
2024-07-04T10:00:05Z,13807,api,token,,,503,10,INTS,g3\n\
2024-07-04T10:00:06Z,13807,api,cbpii,log,T1,200,100,,\n"
    );
    std::fs::write(d.join("r.csv"), csv).unwrap();
    let o = dispo(
        &[
            "import",
            "--db",
            db.to_str().unwrap(),
            "--rejects",
            rejects.to_str().unwrap(),
            d.join("r.csv").to_str().unwrap(),
        ],
        None,
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}{err}");
    assert!(
        summary_line(&out).ends_with("3 added, 0 already present, 4 rejected"),
        "{out}"
    );
    assert!(err.contains("r.csv:3: received_at"), "{err}");
    assert!(err.contains("r.csv:5: status \"700\""), "{err}");
    assert!(err.contains("r.csv:6: unknown interface \"web\""), "{err}");
    assert!(err.contains("r.csv:8: request_id is empty"), "{err}");
    assert!(err.contains(rejects.to_str().unwrap()), "{err}");

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&rejects)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    let nums: Vec<u64> = lines.iter().map(|v| v["line"].as_u64().unwrap()).collect();
    assert_eq!(nums, vec![3, 5, 6, 8]);
    assert_eq!(
        lines[0]["raw"],
        "2024-07-04T10:00:01,13807,api,cbpii,log,T1,200,100,,b1"
    );
    // A secret in a refused line is kept neither in the rejects file nor on screen (issue
    // 13.9), and the rejects file is its owner's only (13.10).
    assert_eq!(
        lines[2]["raw"],
        "2024-07-04T10:00:04Z,13807,web,cbpii,log,T1,200,100,access_token=[redacted],b3"
    );
    assert!(!err.contains("s3cr3t") && !out.contains("s3cr3t"), "{err}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&rejects).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let all = load_all(&db);
    assert_eq!(all.len(), 3);
    let g2 = all.iter().find(|o| o.obs.request_id == "g2").unwrap();
    assert_eq!(g2.obs.outcome, Outcome::NoReply);
    let g3 = all.iter().find(|o| o.obs.request_id == "g3").unwrap();
    assert_eq!(g3.obs.outcome, Outcome::AspspError);
    assert_eq!(g3.obs.source, dispo::domain::Source::Log);
    let _ = std::fs::remove_dir_all(&d);
}

pub const MAPPING: &str = r#"
latency_unit = "s"

[fields]
received_at = "time"
request_id = "headers.X-Request-ID"
establishment = "bank_code"
fallback = "headers.fallback"
path = "request_path"
tpp_dn = "tls.client_dn"
status = "status"
latency = "duration_s"
error_code = "error.code"
error_text = "error.text"

[timestamp]
format = "%Y-%m-%d %H:%M:%S%.3f"
timezone = "Europe/Paris"

[services]
"/stet/psd2/oauth/token" = "token"
"/funds-confirmations" = "cbpii"
"/fallback/" = "fallback"
"#;

/// One gateway line; `local` is a Paris wall time.
pub fn gw_line(
    local: &str,
    id: &str,
    path: &str,
    status: Option<u16>,
    fallback: bool,
    dn_org: &str,
) -> String {
    let status = status
        .map(|s| s.to_string())
        .unwrap_or_else(|| "null".into());
    format!(
        r#"{{"time":"{local}","headers":{{"X-Request-ID":"{id}"{}}},"bank_code":"13807","request_path":"{path}","tls":{{"client_dn":"CN=tpp.example,2.5.4.97={dn_org},O=TPP,C=FR"}},"status":{status},"duration_s":0.25}}"#,
        if fallback { r#","fallback":"1""# } else { "" }
    )
}

#[test]
fn json_lines_through_a_mapping() {
    support::init();
    let d = tmp("import-jsonl");
    let db = d.join("o.db");
    let mapping = d.join("gw.toml");
    std::fs::write(&mapping, MAPPING).unwrap();
    let lines = [
        gw_line(
            "2024-07-04 12:00:00.000",
            "j1",
            "/stet/psd2/oauth/token",
            Some(200),
            false,
            "PSDFR-ACPR-11111",
        ),
        gw_line(
            "2024-07-04 12:00:01.500",
            "j2",
            "/stet/psd2/v1.4/funds-confirmations",
            Some(200),
            false,
            "PSDFR-ACPR-11111",
        ),
        gw_line(
            "2024-07-04 12:00:02.000",
            "j3",
            "/fallback/funds",
            Some(302),
            true,
            "PSDFR-ACPR-22222",
        ),
        "not json".to_string(),
        String::new(),
        gw_line(
            "2024-07-04 12:00:03.000",
            "j4",
            "/elsewhere",
            Some(200),
            false,
            "X",
        ),
        gw_line(
            "2024-07-04 12:00:04.000",
            "j5",
            "/stet/psd2/v1.4/funds-confirmations",
            None,
            false,
            "PSDFR-ACPR-11111",
        ),
    ];
    let body = lines.join("\n") + "\n";
    std::fs::write(d.join("gw.jsonl.gz"), gzip(body.as_bytes())).unwrap();
    let rejects = d.join("rj.jsonl");
    let o = dispo(
        &[
            "import",
            "--db",
            db.to_str().unwrap(),
            "--format",
            "jsonl",
            "--mapping",
            mapping.to_str().unwrap(),
            "--rejects",
            rejects.to_str().unwrap(),
            d.join("gw.jsonl.gz").to_str().unwrap(),
        ],
        None,
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}{err}");
    assert!(
        summary_line(&out).ends_with("4 added, 0 already present, 2 rejected"),
        "{out}"
    );
    assert!(err.contains(":4: not JSON"), "{err}");
    assert!(
        err.contains(":6: path \"/elsewhere\" matches no entry"),
        "{err}"
    );

    let all = load_all(&db);
    assert_eq!(all.len(), 4);
    let by = |id: &str| {
        all.iter()
            .find(|o| o.obs.request_id == id)
            .unwrap()
            .obs
            .clone()
    };
    // 12:00:00 Paris summer time = 10:00:00Z = 1720087200000.
    assert_eq!(by("j1").received_at_ms, 1_720_087_200_000);
    assert_eq!(by("j1").service.as_str(), "token");
    assert_eq!(by("j1").tpp.as_deref(), Some("PSDFR-ACPR-11111"));
    assert_eq!(by("j1").latency_ms, Some(250.0));
    assert_eq!(by("j2").service.as_str(), "cbpii");
    assert_eq!(by("j2").received_at_ms, 1_720_087_201_500);
    assert_eq!(by("j3").interface, Interface::Fallback);
    assert_eq!(by("j3").tpp.as_deref(), Some("PSDFR-ACPR-22222"));
    assert_eq!(by("j3").outcome, Outcome::Ok);
    assert_eq!(by("j5").outcome, Outcome::NoReply);
    assert_eq!(by("j5").latency_ms, None);

    // The mapping is required for JSON lines.
    let o = dispo(
        &[
            "import",
            "--db",
            db.to_str().unwrap(),
            "--format",
            "jsonl",
            "x",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("--mapping"));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_killed_import_leaves_whole_batches_and_resumes() {
    support::init();
    let d = tmp("import-kill");
    let db = d.join("o.db");
    // 100 000 rows, one every 10 ms from 2024-07-04T00:00:00Z.
    let n = 100_000usize;
    let mut csv = String::with_capacity(n * 90);
    csv.push_str(HEADER);
    let t0 = 1_720_051_200_000i64;
    for i in 0..n {
        let t = chrono::DateTime::from_timestamp_millis(t0 + i as i64 * 10).unwrap();
        csv.push_str(&format!(
            "{},13807,api,cbpii,log,T,200,50,,k{i}\n",
            t.format("%Y-%m-%dT%H:%M:%S%.3fZ")
        ));
    }
    let file = d.join("big.csv");
    std::fs::write(&file, csv).unwrap();
    let mut child = Command::new(support::dispo_bin())
        .args([
            "import",
            "--db",
            db.to_str().unwrap(),
            "--batch-rows",
            "1000",
            file.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it (SIGKILL) as soon as something has landed, or after 20 s at most.
    let count = |db: &Path| -> i64 {
        let o = Command::new("sqlite3")
            .arg(db)
            .arg("SELECT COUNT(*) FROM observations")
            .output();
        match o {
            Ok(o) => String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse()
                .unwrap_or(0),
            Err(_) => 0,
        }
    };
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(20)
        && child.try_wait().unwrap().is_none()
        && (!db.exists() || count(&db) == 0)
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let landed = load_all(&db).len();
    eprintln!("killed after {landed} of {n} rows landed");
    // Whole transactions only: a multiple of the batch size.
    assert_eq!(landed % 1000, 0, "{landed} rows landed");

    // Re-running finishes the job: what landed is skipped, the rest is added.
    let o = dispo(
        &[
            "import",
            "--db",
            db.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
        None,
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        summary_line(&out).ends_with(&format!(
            "{} added, {landed} already present, 0 rejected",
            n - landed
        )),
        "{out}"
    );
    assert_eq!(load_all(&db).len(), n);
    let _ = std::fs::remove_dir_all(&d);
}

/// `dispo import --db db <args> <files>`: its exit code, stdout and stderr.
fn import_files(db: &Path, args: &[&str], files: &[&Path]) -> (Option<i32>, String, String) {
    let mut all = vec!["import", "--db", db.to_str().unwrap()];
    all.extend_from_slice(args);
    all.extend(files.iter().map(|f| f.to_str().unwrap()));
    let o = dispo(&all, None);
    let (out, err) = text(&o);
    (o.status.code(), out, err)
}

/// The `log_spans` table: source, establishment, interface, first and last instant, in order.
fn log_spans(db: &Path) -> Vec<(String, String, String, i64, i64)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}", db.display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let rows = sqlx::query_as(
            "SELECT source, establishment, interface, first_at, last_at FROM log_spans \
             ORDER BY id",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        pool.close().await;
        rows
    })
}

#[test]
fn each_imported_file_records_its_log_span_per_series() {
    support::init();
    let d = tmp("import-spans");
    let db = d.join("o.db");
    // Accepted rows (out of order on purpose), and two refused ones that would otherwise stretch
    // 13807/api to 11:00 and add a span for 17515.
    let a = d.join("a.csv");
    std::fs::write(
        &a,
        format!(
            "{HEADER}\
2024-07-04T10:02:00Z,13807,api,cbpii,log,T1,200,100,,a1\n\
2024-07-04T10:00:00Z,13807,api,cbpii,log,T1,200,100,,a2\n\
2024-07-04T10:05:00Z,13807,api,cbpii,log,T1,503,100,INTS,a3\n\
2024-07-04T10:01:00Z,13807,fallback,cbpii,log,T1,302,100,,a4\n\
2024-07-04T10:03:00Z,30004,api,token,log,T1,,,,a5\n\
2024-07-04T11:00:00Z,13807,api,cbpii,log,T1,700,100,,bad1\n\
2024-07-04T09:00:00Z,17515,api,cbpii,log,T1,200,1e11,,bad2\n"
        ),
    )
    .unwrap();
    let (code, out, err) = import_files(&db, &[], &[&a]);
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(
        summary_line(&out).ends_with("5 added, 0 already present, 2 rejected"),
        "{out}"
    );
    // 2024-07-04T10:00:00Z = 1720087200000; each minute 60 000 ms more. The file runs from
    // 10:00 (a2) to 10:05 (a3), 1720087200000 .. 1720087500000, and covers that for every
    // establishment in it (13807, 30004), every interface ("*": methodology section 1).
    let name = a.display().to_string();
    let span = |e: &str, i: &str, first: i64, last: i64| {
        (name.clone(), e.to_string(), i.to_string(), first, last)
    };
    let want_a = vec![
        span("13807", "*", 1_720_087_200_000, 1_720_087_500_000),
        span("30004", "*", 1_720_087_200_000, 1_720_087_500_000),
    ];
    assert_eq!(log_spans(&db), want_a);

    // As coverage: from the first line to the last (methodology section 1).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cov = rt.block_on(async {
        let s = Store::open(&db).await.unwrap();
        s.coverage(1_720_051_200_000, 1_720_137_600_000, 1_720_137_600_000)
            .await
            .unwrap()
    });
    let got: Vec<(String, Option<Interface>, i64, i64)> = cov
        .iter()
        .map(|c| {
            (
                c.establishment.unwrap().to_string(),
                c.interface,
                c.start_ms,
                c.end_ms,
            )
        })
        .collect();
    assert!(got.contains(&("13807".into(), None, 1_720_087_200_000, 1_720_087_500_000)));
    assert_eq!(got.len(), 2, "{got:?}");

    // stdin is named "-": 2024-07-05T08:00:00Z = 1720166400000, 08:30 = 1720168200000.
    let b = format!(
        "{HEADER}\
2024-07-05T08:30:00Z,13807,api,cbpii,log,T1,200,100,,b1\n\
2024-07-05T08:00:00Z,13807,api,cbpii,log,T1,200,100,,b2\n"
    );
    let o = dispo(
        &["import", "--db", db.to_str().unwrap(), "-"],
        Some(b.as_bytes()),
    );
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    // Re-importing a.csv adds no row but records its spans again (unioned, so harmless).
    let (code, out, err) = import_files(&db, &[], &[&a]);
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(
        summary_line(&out).ends_with("0 added, 5 already present, 2 rejected"),
        "{out}"
    );
    let mut want = want_a.clone();
    want.push((
        "-".into(),
        "13807".into(),
        "*".into(),
        1_720_166_400_000,
        1_720_168_200_000,
    ));
    want.extend(want_a);
    assert_eq!(log_spans(&db), want);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn local_times_in_the_autumn_fold_follow_the_order_of_the_file() {
    support::init();
    let d = tmp("import-fold");
    let db = d.join("o.db");
    let mapping = d.join("gw.toml");
    std::fs::write(&mapping, MAPPING).unwrap();
    let line = |local: &str, id: &str| {
        gw_line(
            local,
            id,
            "/stet/psd2/v1.4/funds-confirmations",
            Some(200),
            false,
            "PSDFR-ACPR-11111",
        )
    };
    // Paris, 2024-10-27: at 03:00 CEST (+02:00) the clocks go back to 02:00 CET (+01:00), so
    // 02:00 to 02:59 happen twice. Each wall time of the fold takes, of its two instants, the
    // one nearest to the previous accepted line's, and stays in the second pass once reached:
    //   line 1  02:30  first line, nothing tells which: refused as ambiguous
    //   line 2  01:50  +02:00 (unique)                         2024-10-26T23:50:00Z 1729986600000
    //   line 3  02:10  00:10Z is 20 min on, 01:10Z 80: +02:00  2024-10-27T00:10:00Z 1729987800000
    //   line 4  02:50  00:50Z is 40 min on, 01:50Z 100: +02:00 2024-10-27T00:50:00Z 1729990200000
    //   line 5  02:05  00:05Z is 45 min back, 01:05Z 15 min on: +01:00
    //                                                          2024-10-27T01:05:00Z 1729991100000
    //   line 6  02:40  follows a second-pass line: +01:00      2024-10-27T01:40:00Z 1729993200000
    //   line 7  03:10  +01:00 (unique)                         2024-10-27T02:10:00Z 1729995000000
    let fold = [
        line("2024-10-27 02:30:00.000", "f0"),
        line("2024-10-27 01:50:00.000", "f1"),
        line("2024-10-27 02:10:00.000", "f2"),
        line("2024-10-27 02:50:00.000", "f3"),
        line("2024-10-27 02:05:00.000", "f4"),
        line("2024-10-27 02:40:00.000", "f5"),
        line("2024-10-27 03:10:00.000", "f6"),
    ];
    // A second file starts afresh: its first line in the fold is ambiguous whatever the first
    // file ended on. 2024-03-31 02:30 never happened in Paris (02:00 CET became 03:00 CEST);
    // 03:30 CEST is 01:30Z = 1711848600000.
    let next = [
        line("2024-10-27 02:20:00.000", "n0"),
        line("2024-03-31 02:30:00.000", "n1"),
        line("2024-03-31 03:30:00.000", "n2"),
    ];
    let (f1, f2) = (d.join("fold.jsonl"), d.join("next.jsonl"));
    std::fs::write(&f1, fold.join("\n") + "\n").unwrap();
    std::fs::write(&f2, next.join("\n") + "\n").unwrap();
    let m = mapping.to_str().unwrap();
    let (code, out, err) = import_files(
        &db,
        &["--format", "jsonl", "--mapping", m],
        &[f1.as_path(), f2.as_path()],
    );
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(
        summary_line(&out).ends_with("7 added, 0 already present, 3 rejected"),
        "{out}"
    );
    assert!(
        err.contains("fold.jsonl:1: time \"2024-10-27 02:30:00.000\" is ambiguous in Europe/Paris"),
        "{err}"
    );
    assert!(
        err.contains("next.jsonl:1: time \"2024-10-27 02:20:00.000\" is ambiguous"),
        "{err}"
    );
    assert!(
        err.contains(
            "next.jsonl:2: time \"2024-03-31 02:30:00.000\" does not exist in Europe/Paris"
        ),
        "{err}"
    );
    let all = load_all(&db);
    let at = |id: &str| {
        all.iter()
            .find(|o| o.obs.request_id == id)
            .unwrap_or_else(|| panic!("{id} imported"))
            .obs
            .received_at_ms
    };
    let got: Vec<i64> = ["f1", "f2", "f3", "f4", "f5", "f6", "n2"]
        .iter()
        .map(|id| at(id))
        .collect();
    assert_eq!(
        got,
        [
            1_729_986_600_000,
            1_729_987_800_000,
            1_729_990_200_000,
            1_729_991_100_000,
            1_729_993_200_000,
            1_729_995_000_000,
            1_711_848_600_000
        ]
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn an_imported_outcome_must_agree_with_the_status() {
    support::init();
    let d = tmp("import-outcome");
    let db = d.join("o.db");
    let f = d.join("o.csv");
    // Line 1 header. Refused: 2 (503/INTS marked ok), 3 (no reply marked ok), 7 (unexpected
    // from a log: only probes judge the body), 9 (a 200 marked rejected). Accepted: 4 (agrees),
    // 5 (a probe's unexpected on a 200), 6 (a probe's own error), 8 (no outcome: derived).
    std::fs::write(
        &f,
        "received_at,establishment,interface,service,source,tpp,status,latency_ms,error_code,request_id,outcome\n\
2024-07-04T10:00:00Z,13807,api,cbpii,log,T1,503,10,INTS,o1,ok\n\
2024-07-04T10:00:01Z,13807,api,cbpii,log,T1,,,,o2,ok\n\
2024-07-04T10:00:02Z,13807,api,cbpii,log,T1,503,10,INTS,o3,aspsp_error\n\
2024-07-04T10:00:03Z,13807,api,cbpii,probe,,200,10,,o4,unexpected\n\
2024-07-04T10:00:04Z,13807,api,cbpii,probe,,,,,o5,probe_error\n\
2024-07-04T10:00:05Z,13807,api,cbpii,log,T1,200,10,,o6,unexpected\n\
2024-07-04T10:00:06Z,13807,api,cbpii,log,T1,400,10,AC01,o7,\n\
2024-07-04T10:00:07Z,13807,api,cbpii,log,T1,200,10,,o8,rejected\n",
    )
    .unwrap();
    let (code, out, err) = import_files(&db, &[], &[&f]);
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(
        summary_line(&out).ends_with("4 added, 0 already present, 4 rejected"),
        "{out}"
    );
    for want in [
        "o.csv:2: outcome \"ok\" contradicts status 503 with error code INTS, which is \"aspsp_error\"",
        "o.csv:3: outcome \"ok\" contradicts no status (no reply), which is \"no_reply\"",
        "o.csv:7: outcome \"unexpected\" contradicts status 200, which is \"ok\"",
        "o.csv:9: outcome \"rejected\" contradicts status 200, which is \"ok\"",
    ] {
        assert!(err.contains(want), "{want}\n{err}");
    }
    let all = load_all(&db);
    let outcome = |id: &str| {
        all.iter()
            .find(|o| o.obs.request_id == id)
            .unwrap()
            .obs
            .outcome
    };
    assert_eq!(outcome("o3"), Outcome::AspspError);
    assert_eq!(outcome("o4"), Outcome::Unexpected);
    assert_eq!(outcome("o5"), Outcome::ProbeError);
    assert_eq!(outcome("o7"), Outcome::Rejected);
    assert_eq!(all.len(), 4);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn implausible_latencies_and_times_are_refused() {
    support::init();
    let d = tmp("import-bounds");
    let soon = chrono::Utc::now() + chrono::Duration::hours(1);
    let soon = soon.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let f = d.join("b.csv");
    // Line 1 header. 1e11 ms (3 years), inf and NaN are refused whatever the policy; 2300 is
    // more than 24 h after the clock, 1999 before 2000; now + 1 h passes. 60 000 ms and 60 001 ms
    // pass the default max_latency_s (3 600 s); with max_latency_s = 60, 60 000 ms (the bound
    // itself) passes and 60 001 ms is refused.
    std::fs::write(
        &f,
        format!(
            "{HEADER}\
2024-07-04T10:00:00Z,13807,api,cbpii,log,T1,200,1e11,,l1\n\
2024-07-04T10:00:01Z,13807,api,cbpii,log,T1,200,inf,,l2\n\
2024-07-04T10:00:02Z,13807,api,cbpii,log,T1,200,NaN,,l3\n\
2300-01-01T00:00:00Z,13807,api,cbpii,log,T1,200,100,,t1\n\
1999-12-31T23:59:59Z,13807,api,cbpii,log,T1,200,100,,t2\n\
{soon},13807,api,cbpii,log,T1,200,100,,t3\n\
2024-07-04T10:00:03Z,13807,api,cbpii,log,T1,200,60000,,l4\n\
2024-07-04T10:00:04Z,13807,api,cbpii,log,T1,200,60001,,l5\n"
        ),
    )
    .unwrap();

    // Default policy: max_latency_s = 3600.
    let db = d.join("default.db");
    let (code, out, err) = import_files(&db, &[], &[&f]);
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(
        summary_line(&out).ends_with("3 added, 0 already present, 5 rejected"),
        "{out}"
    );
    for want in [
        "b.csv:2: latency_ms 100000000000 is beyond [counting] max_latency_s (accepted: 0 to 3600000 ms, max_latency_s = 3600 s)",
        "b.csv:3: latency_ms inf is not finite (accepted: 0 to 3600000 ms",
        "b.csv:4: latency_ms NaN is not a number (accepted: 0 to 3600000 ms",
        "b.csv:5: received_at 2300-01-01T00:00:00.000Z is more than 24 h after the clock",
        "b.csv:6: received_at 1999-12-31T23:59:59.000Z is before 2000-01-01T00:00:00Z",
    ] {
        assert!(err.contains(want), "{want}\n{err}");
    }
    let ids = |db: &Path| {
        let mut v: Vec<String> = load_all(db)
            .iter()
            .map(|o| o.obs.request_id.to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids(&db), ["l4", "l5", "t3"]);

    // A stricter policy from a probe configuration's [counting] table.
    let cfg = d.join("probes.toml");
    std::fs::write(&cfg, "[counting]\nmax_latency_s = 60\n").unwrap();
    let db = d.join("strict.db");
    let (code, out, err) = import_files(&db, &["--config", cfg.to_str().unwrap()], &[&f]);
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(
        summary_line(&out).ends_with("2 added, 0 already present, 6 rejected"),
        "{out}"
    );
    assert!(
        err.contains("b.csv:9: latency_ms 60001 is beyond [counting] max_latency_s (accepted: 0 to 60000 ms, max_latency_s = 60 s)"),
        "{err}"
    );
    assert_eq!(ids(&db), ["l4", "t3"]);

    // JSON lines get the same bounds: 1e8 s is 1e11 ms; 2300 is beyond the clock.
    let mapping = d.join("gw.toml");
    std::fs::write(&mapping, MAPPING).unwrap();
    let ok =
        |local: &str, id: &str| gw_line(local, id, "/funds-confirmations", Some(200), false, "P");
    let lines = [
        ok("2024-07-04 12:00:00.000", "j1").replace("\"duration_s\":0.25", "\"duration_s\":1e8"),
        ok("2300-01-01 00:00:00.000", "j2"),
        ok("2024-07-04 12:00:01.000", "j3"),
    ];
    let j = d.join("gw.jsonl");
    std::fs::write(&j, lines.join("\n") + "\n").unwrap();
    let db = d.join("jsonl.db");
    let m = mapping.to_str().unwrap();
    let (code, out, err) = import_files(&db, &["--format", "jsonl", "--mapping", m], &[&j]);
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(
        summary_line(&out).ends_with("1 added, 0 already present, 2 rejected"),
        "{out}"
    );
    assert!(
        err.contains("gw.jsonl:1: latency_ms 100000000000 is beyond"),
        "{err}"
    );
    assert!(
        err.contains("gw.jsonl:2: received_at 2299-12-31T23:00:00.000Z is more than 24 h after"),
        "{err}"
    );

    // `dispo kpi --input` reads the same CSV through the same checks: the first bad row stops it.
    let o = dispo(&["kpi", "--input", f.to_str().unwrap()], None);
    let (out, err) = text(&o);
    assert_ne!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        err.contains("latency_ms 100000000000 is beyond [counting] max_latency_s"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// A shipped gateway mapping (`probes/gateways/<name>`).
fn gateway_mapping(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("probes/gateways")
        .join(name)
}

/// Imports `lines` through a shipped mapping: exit code, stdout+stderr, rows by request id.
fn import_gateway(
    name: &str,
    lines: &[&str],
) -> (
    Option<i32>,
    String,
    std::collections::BTreeMap<String, StoredObservation>,
) {
    let d = tmp(&format!("gw-{name}"));
    let (db, log) = (d.join("o.db"), d.join("access.jsonl"));
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let o = dispo(
        &[
            "import",
            "--db",
            db.to_str().unwrap(),
            "--format",
            "jsonl",
            "--mapping",
            gateway_mapping(name).to_str().unwrap(),
            "--rejects",
            d.join("rj.jsonl").to_str().unwrap(),
            log.to_str().unwrap(),
        ],
        None,
    );
    let (out, err) = text(&o);
    let rows = load_all(&db)
        .into_iter()
        .map(|r| (r.obs.request_id.to_string(), r))
        .collect();
    let _ = std::fs::remove_dir_all(&d);
    (o.status.code(), format!("{out}{err}"), rows)
}

// 2026-12-02T08:00:00Z.
const GW_T0: i64 = 1_796_198_400_000;

#[test]
fn kong_file_log_lines_map_without_a_script() {
    support::init();
    // Kong's documented file-log object (trimmed of route and service details), for the Banque
    // Populaire host: establishment from the host name, epoch-ms start, latencies in ms.
    let ok = r#"{"request":{"method":"POST","uri":"/stet/psd2/v1.4.2/funds-confirmations","url":"https://www.13807.live.api.89c3.com:443/stet/psd2/v1.4.2/funds-confirmations","size":1103,"querystring":{},"headers":{"host":"www.13807.live.api.89c3.com","x-request-id":"k1","content-type":"application/json"},"tls":{"version":"TLSv1.3","cipher":"TLS_AES_256_GCM_SHA384","client_verify":"SUCCESS"}},"upstream_uri":"/stet/psd2/v1.4.2/funds-confirmations","response":{"status":200,"size":412,"headers":{"content-type":"application/hal+json","x-kong-upstream-latency":"171","x-kong-proxy-latency":"1"}},"latencies":{"kong":1,"proxy":171,"request":173},"tries":[{"balancer_latency":0,"port":8443,"balancer_start":1796198400124,"ip":"10.0.0.7"}],"client_ip":"203.0.113.10","started_at":1796198400123,"consumer":{"username":"PSDFR-ACPR-12345","id":"4e1c"},"workspace":"default"}"#;
    let err = r#"{"request":{"method":"POST","uri":"/stet/psd2/oauth/token","headers":{"host":"www.10548.live.api.89c3.com","x-request-id":"k2","fallback":"1"}},"response":{"status":503,"size":80},"latencies":{"kong":0,"proxy":12,"request":13},"started_at":1796198401000}"#;
    let gave_up = r#"{"request":{"method":"GET","uri":"/stet/psd2/v1/accounts","headers":{"host":"www.13807.live.api.89c3.com","x-request-id":"k3"}},"response":{"status":499,"size":0},"latencies":{"kong":0,"proxy":29990,"request":30000},"started_at":1796198402000}"#;
    let other_host = r#"{"request":{"method":"GET","uri":"/status","headers":{"host":"admin.bank.example","x-request-id":"k4"}},"response":{"status":200},"latencies":{"request":1},"started_at":1796198403000}"#;
    let (code, out, rows) = import_gateway("kong-file-log.toml", &[ok, err, gave_up, other_host]);
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains("3 added, 0 already present, 1 rejected"),
        "{out}"
    );
    assert!(
        out.contains("request.headers.host \"admin.bank.example\" does not match its pattern"),
        "{out}"
    );
    let k1 = &rows["k1"].obs;
    assert_eq!(k1.received_at_ms, GW_T0 + 123);
    assert_eq!(k1.establishment.as_str(), "13807");
    assert_eq!(
        (k1.interface, k1.service.as_str()),
        (Interface::Api, "cbpii")
    );
    assert_eq!((k1.status, k1.latency_ms), (Some(200), Some(173.0)));
    assert_eq!(k1.tpp.as_deref(), Some("PSDFR-ACPR-12345"));
    assert_eq!(k1.outcome, Outcome::Ok);
    let k2 = &rows["k2"].obs;
    assert_eq!(k2.establishment.as_str(), "10548");
    assert_eq!(
        (k2.interface, k2.service.as_str()),
        (Interface::Fallback, "token")
    );
    assert_eq!(k2.outcome, Outcome::AspspError);
    let k3 = &rows["k3"].obs;
    assert_eq!(
        (k3.service.as_str(), k3.outcome),
        ("aisp", Outcome::NoReply)
    );
    assert_eq!((k3.status, k3.latency_ms), (None, None));
}

#[test]
fn nginx_json_lines_map_without_a_script() {
    support::init();
    // The mapping's log_format: $time_local (written at the end, second precision), $request_time
    // in seconds, $ssl_client_s_dn in RFC 2253.
    let ok = r#"{"time_local":"02/Dec/2026:09:00:01 +0100","host":"www.13807.live.api.89c3.com","request_uri":"/stet/psd2/v1.4.2/funds-confirmations?x=1","status":200,"request_time":0.173,"request_id":"n1","ssl_client_s_dn":"CN=tpp.example,organizationIdentifier=PSDFR-ACPR-12345,O=TPP SA,C=FR","fallback":""}"#;
    let hung = r#"{"time_local":"02/Dec/2026:09:00:32 +0100","host":"www.13807.live.api.89c3.com","request_uri":"/stet/psd2/v1.4.2/funds-confirmations","status":504,"request_time":30.000,"request_id":"n2","ssl_client_s_dn":"CN=tpp.example,organizationIdentifier=PSDFR-ACPR-12345,O=TPP SA,C=FR","fallback":""}"#;
    let gave_up = r#"{"time_local":"02/Dec/2026:09:01:00 +0100","host":"www.13807.live.api.89c3.com","request_uri":"/stet/psd2/oauth/token","status":499,"request_time":20.000,"request_id":"n3","ssl_client_s_dn":"","fallback":"1"}"#;
    let (code, out, rows) = import_gateway("nginx-json.toml", &[ok, hung, gave_up]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("3 added"), "{out}");
    let n1 = &rows["n1"].obs;
    // Logged at 08:00:01Z after 0.173 s: arrived at 08:00:00.827Z.
    assert_eq!(n1.received_at_ms, GW_T0 + 827);
    assert_eq!(
        (n1.establishment.as_str(), n1.service.as_str()),
        ("13807", "cbpii")
    );
    assert_eq!((n1.status, n1.latency_ms), (Some(200), Some(173.0)));
    assert_eq!(n1.tpp.as_deref(), Some("PSDFR-ACPR-12345"));
    assert_eq!(n1.interface, Interface::Api);
    let n2 = &rows["n2"].obs;
    assert_eq!(n2.received_at_ms, GW_T0 + 2_000);
    assert_eq!(n2.outcome, Outcome::AspspError);
    let n3 = &rows["n3"].obs;
    assert_eq!(n3.received_at_ms, GW_T0 + 40_000);
    assert_eq!(
        (n3.interface, n3.outcome),
        (Interface::Fallback, Outcome::NoReply)
    );
    assert_eq!(n3.tpp, None);
}

#[test]
fn envoy_json_access_log_lines_map_without_a_script() {
    support::init();
    // The mapping's json_format: %START_TIME% RFC 3339, %DURATION% ms, %RESPONSE_CODE% (0 when
    // nothing was answered), %DOWNSTREAM_PEER_SUBJECT% with the organization identifier as DER hex
    // (how RFC 2253 writes an attribute its printer has no name for).
    let ok = r#"{"start_time":"2026-12-02T08:00:00.123Z","authority":"www.13807.live.api.89c3.com","path":"/stet/psd2/v1.4.2/funds-confirmations","response_code":200,"response_flags":"-","duration":173,"request_id":"e1","fallback":null,"downstream_peer_subject":"CN=tpp,2.5.4.97=#0c1050534446522d414350522d3132333435,O=TPP,C=FR"}"#;
    let dc = r#"{"start_time":"2026-12-02T08:00:01.000Z","authority":"www.13807.live.api.89c3.com","path":"/stet/psd2/oauth/token","response_code":0,"response_flags":"DC","duration":30001,"request_id":"e2","fallback":null,"downstream_peer_subject":"CN=tpp,2.5.4.97=#0c1050534446522d414350522d3132333435,O=TPP,C=FR"}"#;
    let (code, out, rows) = import_gateway("envoy-json.toml", &[ok, dc]);
    assert_eq!(code, Some(0), "{out}");
    let e1 = &rows["e1"].obs;
    assert_eq!(e1.received_at_ms, GW_T0 + 123);
    assert_eq!(
        (e1.establishment.as_str(), e1.service.as_str()),
        ("13807", "cbpii")
    );
    assert_eq!((e1.status, e1.latency_ms), (Some(200), Some(173.0)));
    assert_eq!(e1.tpp.as_deref(), Some("PSDFR-ACPR-12345"));
    let e2 = &rows["e2"].obs;
    assert_eq!(
        (e2.service.as_str(), e2.outcome),
        ("token", Outcome::NoReply)
    );
}

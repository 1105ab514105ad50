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

pub fn load_all(db: &Path) -> Vec<StoredObservation> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = Store::open(db).await.unwrap();
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

#[test]
fn csv_plain_gzip_and_stdin_are_idempotent() {
    support::init();
    let d = tmp("import-idem");
    let db = d.join("o.db");
    let db_s = db.to_str().unwrap();
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
2024-07-04T10:00:04Z,13807,web,cbpii,log,T1,200,100,,b3\n\
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
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
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
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
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

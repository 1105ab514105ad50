//! The counting method, revision 2, through the public commands (`import`, `kpi --db`,
//! `kpi --input`, `report`, `evidence`): the same episodes and day figures everywhere, coverage,
//! quarter edges, one request counted once. Figures worked by hand in the comments; Paris is
//! UTC+2 until 27 October 2024.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support;

fn tmp(name: &str) -> PathBuf {
    support::tmp_dir("rev2", name)
}

fn dispo(args: &[&str]) -> std::process::Output {
    support::dispo_ok(args)
}

fn kpi_json(args: &[&str]) -> Value {
    let mut a = vec!["kpi", "--format", "json"];
    a.extend_from_slice(args);
    serde_json::from_slice(&dispo(&a).stdout).unwrap()
}

fn csv_rows(p: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(p).unwrap();
    let head = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = r
        .records()
        .map(|x| x.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (head, rows)
}

const HEAD: &str = "received_at,establishment,interface,service,source,tpp,status,latency_ms,error_code,request_id\n";

fn line(at: &str, rid: &str, status: &str) -> String {
    let latency = if status.is_empty() { "" } else { "0" };
    format!("{at},13807,api,cbpii,log,PSDFR-ACPR-A,{status},{latency},,{rid}\n")
}

/// Two gateway logs of 13807's API around the Q3/Q4 edge:
/// - gw-a.csv, from 2024-09-30T20:00:00Z: five no-replies 20:00:00–04Z, then one every 15
///   minutes (20:15 … 23:15Z), a reply at 23:30:00Z → episode E1 20:00:00 → 23:30:00Z
///   (12 600 s), across local midnight (22:00Z). A reply on 1 Oct 08:00Z; five no-replies
///   10:00:00–04Z and a last one at 10:05:30Z, where the file ends: E2 from 10:00:00Z, cut where
///   the log's coverage ends, 10:05:30Z (330 s; cut, not open, since gw-b covers later time).
/// - gw-b.csv, from 2024-10-01T12:00:00Z: four no-replies 12:00:00–03Z (after a gap: they need
///   their own five, so no episode), a reply at 12:01:00Z logged twice (an exact copy: one
///   request counts once), one at 2024-10-02T21:59:59Z. (A copy of a gw-a line would stretch
///   gw-b's span back over the gap: a file covers from its first line to its last.)
fn two_logs(dir: &Path) -> (PathBuf, PathBuf) {
    let mut a = String::from(HEAD);
    for i in 0..5 {
        a += &line(&format!("2024-09-30T20:00:0{i}.000Z"), &format!("f{i}"), "");
    }
    for i in 0..13 {
        let (h, m) = (20 + (15 + 15 * i) / 60, (15 + 15 * i) % 60);
        a += &line(
            &format!("2024-09-30T{h}:{m:02}:00.000Z"),
            &format!("s{i:02}"),
            "",
        );
    }
    a += &line("2024-09-30T23:30:00.000Z", "ok1", "200");
    a += &line("2024-10-01T08:00:00.000Z", "ok2", "200");
    for i in 0..5 {
        a += &line(&format!("2024-10-01T10:00:0{i}.000Z"), &format!("g{i}"), "");
    }
    a += &line("2024-10-01T10:05:30.000Z", "g5", "");
    let mut b = String::from(HEAD);
    for i in 0..4 {
        b += &line(&format!("2024-10-01T12:00:0{i}.000Z"), &format!("h{i}"), "");
    }
    b += &line("2024-10-01T12:01:00.000Z", "ok3", "200");
    b += &line("2024-10-01T12:01:00.000Z", "ok3", "200");
    b += &line("2024-10-02T21:59:59.000Z", "ok4", "200");
    let (pa, pb) = (dir.join("gw-a.csv"), dir.join("gw-b.csv"));
    std::fs::write(&pa, a).unwrap();
    std::fs::write(&pb, b).unwrap();
    (pa, pb)
}

/// Maintenance every Tuesday 11:00–13:00 Paris (09:00–11:00Z): E2 (Tuesday 1 Oct,
/// 10:00:00–10:05:30Z) is planned whole.
const CONFIG: &str = "[counting]\n\
maintenance = [{ weekday = \"Tue\", start = \"11:00:00\", end = \"13:00:00\" }]\n";

#[test]
fn kpi_report_and_evidence_give_the_same_episodes_and_days() {
    support::init();
    let dir = tmp("same");
    let (a, b) = two_logs(&dir);
    let db = dir.join("d.db");
    let cfg = dir.join("probes.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let (dbs, cfgs) = (db.to_str().unwrap(), cfg.to_str().unwrap());
    dispo(&[
        "import",
        "--db",
        dbs,
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    let period = ["--from", "2024-10-01", "--to", "2024-10-03"];

    let mut args = vec!["--db", dbs, "--config", cfgs];
    args.extend_from_slice(&period);
    let k = kpi_json(&args);

    // Episodes: E1 (began before the period, listed with its real start) and E2 (cut).
    let eps = k["episodes"].as_array().unwrap();
    let got: Vec<(&str, &str, &str, f64, bool, bool)> = eps
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap(),
                e["start"].as_str().unwrap(),
                e["end"].as_str().unwrap(),
                e["planned_s"].as_f64().unwrap(),
                e["cut"].as_bool().unwrap(),
                e["began_before_period"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "13807-api-20240930T200000.000Z",
                "2024-09-30T20:00:00.000Z",
                "2024-09-30T23:30:00.000Z",
                0.0,
                false,
                true
            ),
            (
                "13807-api-20241001T100000.000Z",
                "2024-10-01T10:00:00.000Z",
                "2024-10-01T10:05:30.000Z",
                330.0,
                true,
                false
            ),
        ]
    );

    // 1 Oct (22:00Z on 30 Sept to 22:00Z): covered by gw-a to 10:05:30Z (43 530 s) and by gw-b
    // from 12:00Z (36 000 s) = 79 530 s; unmonitored 6 870 s. Down: E1's 22:00–23:30Z
    // (5 400 s) + E2 (330 s) = 5 730 s, of which planned 330 s.
    // Requests from 22:00Z: s07..s12 (22:00–23:15Z) = 6 and ok1, ok2, g0..g5 = 6, h0..h3 = 4,
    // ok3 once (its copy is the same request) = 19 requests, of which 6 + 6 + 4 = 16 no-replies.
    let d1 = k["days"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["date"] == "2024-10-01")
        .unwrap();
    assert_eq!(d1["covered_s"].as_f64().unwrap(), 79_530.0);
    assert_eq!(d1["unmonitored_s"].as_f64().unwrap(), 6_870.0);
    assert_eq!(d1["downtime_s"].as_f64().unwrap(), 5_730.0);
    assert_eq!(d1["planned_downtime_s"].as_f64().unwrap(), 330.0);
    assert_eq!(
        d1["uptime_pct"].as_f64().unwrap(),
        100.0 - 5_730.0 / 79_530.0 * 100.0
    );
    assert_eq!(
        (d1["requests"].as_u64(), d1["no_reply"].as_u64()),
        (Some(19), Some(16))
    );

    // The report: the same day figures in its CSV, the same episode ids in its annex.
    let out = dir.join("pub");
    let mut r = vec!["report", "--db", dbs, "--config", cfgs, "--out"];
    r.push(out.to_str().unwrap());
    r.extend_from_slice(&period);
    dispo(&r);
    let pub_dir = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    let daily = std::fs::read_dir(&pub_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-daily.csv"))
        .unwrap();
    let (head, rows) = csv_rows(&daily);
    let col = |n: &str| head.iter().position(|h| h == n).unwrap();
    for (row, day) in rows.iter().zip(k["days"].as_array().unwrap()) {
        assert_eq!(row[col("date")], day["date"].as_str().unwrap());
        for f in [
            "covered_s",
            "downtime_s",
            "planned_downtime_s",
            "uptime_pct",
            "unmonitored_s",
        ] {
            assert_eq!(row[col(f)].parse::<f64>().ok(), day[f].as_f64(), "{f}");
        }
    }
    // Episode ids are in the supervisor's annex, never in the public spreadsheet.
    let xlsx = std::fs::read_dir(pub_dir.join("annexe-acpr"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "xlsx"))
        .unwrap();
    let mut z = zip::ZipArchive::new(std::fs::File::open(&xlsx).unwrap()).unwrap();
    let mut strings = String::new();
    std::io::Read::read_to_string(
        &mut z.by_name("xl/sharedStrings.xml").unwrap(),
        &mut strings,
    )
    .unwrap();
    for (id, ..) in &got {
        assert!(strings.contains(id), "{id} in the spreadsheet");
    }

    // The evidence pack of the same period, with the same --config: same ids, starts, ends and
    // planned seconds (it used to say 0 s planned, not reading the configuration).
    let pack = dir.join("pack");
    let mut e = vec!["evidence", "--db", dbs, "--config", cfgs, "--out"];
    e.push(pack.to_str().unwrap());
    e.extend_from_slice(&period);
    dispo(&e);
    let (head, rows) = csv_rows(&pack.join("episodes.csv"));
    let col = |n: &str| head.iter().position(|h| h == n).unwrap();
    let from_pack: Vec<(String, String, String, f64)> = rows
        .iter()
        .map(|r| {
            (
                r[col("episode_id")].clone(),
                r[col("start")].clone(),
                r[col("end")].clone(),
                r[col("planned_s")].parse().unwrap(),
            )
        })
        .collect();
    let from_kpi: Vec<(String, String, String, f64)> = got
        .iter()
        .map(|g| (g.0.into(), g.1.into(), g.2.into(), g.3))
        .collect();
    assert_eq!(from_pack, from_kpi);
    // `--settings` given the probe configuration reads its `[counting]` table too (it used to
    // refuse the file).
    let pack2 = dir.join("pack2");
    let mut e = vec!["evidence", "--db", dbs, "--settings", cfgs, "--out"];
    e.push(pack2.to_str().unwrap());
    e.extend_from_slice(&period);
    dispo(&e);
    assert_eq!(
        std::fs::read_to_string(pack2.join("episodes.csv")).unwrap(),
        std::fs::read_to_string(pack.join("episodes.csv")).unwrap()
    );
}

#[test]
fn the_quarter_before_counts_its_part_of_an_episode_across_the_edge() {
    // Q3's last day (30 Sept local = 29 Sept 22:00Z to 30 Sept 22:00Z): gw-a covers it from
    // 20:00Z, E1 counts 20:00–22:00Z = 7 200 s of the 7 200 s covered: uptime 0 %. The same
    // episode id as in Q4; Q4 counts the other 5 400 s. 29 Sept: nobody watched, n.d.
    support::init();
    let dir = tmp("edge");
    let (a, _) = two_logs(&dir);
    let k = kpi_json(&[
        "--input",
        a.to_str().unwrap(),
        "--from",
        "2024-09-29",
        "--to",
        "2024-10-01",
    ]);
    let day = |d: &str| {
        k["days"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["date"] == d)
            .unwrap()
            .clone()
    };
    assert_eq!(day("2024-09-30")["downtime_s"].as_f64().unwrap(), 7_200.0);
    assert_eq!(day("2024-09-30")["uptime_pct"].as_f64().unwrap(), 0.0);
    assert_eq!(day("2024-09-29")["uptime_pct"], Value::Null);
    assert_eq!(day("2024-09-29")["error_rate_pct"], Value::Null);
    let eps = k["episodes"].as_array().unwrap();
    assert_eq!(eps.len(), 1);
    assert_eq!(eps[0]["id"], "13807-api-20240930T200000.000Z");
    assert_eq!(eps[0]["began_before_period"], false);
}

#[test]
fn copies_in_an_input_file_count_once() {
    // Three no-replies at 10:00:00, :10, :20Z, each logged twice (two gateway nodes, 3 ms
    // apart) and a reply at 10:00:40Z, logged twice identically. Counted once: 3 failures (no
    // episode; six would have opened one), 4 requests.
    support::init();
    let dir = tmp("dupes");
    let mut s = String::from(HEAD);
    for (i, t) in ["10:00:00", "10:00:10", "10:00:20"].iter().enumerate() {
        s += &line(&format!("2024-07-01T{t}.000Z"), &format!("n{i}"), "");
        s += &line(&format!("2024-07-01T{t}.003Z"), &format!("n{i}"), "");
    }
    s += &line("2024-07-01T10:00:40.000Z", "ok", "200");
    s += &line("2024-07-01T10:00:40.000Z", "ok", "200");
    let f = dir.join("dupes.csv");
    std::fs::write(&f, s).unwrap();
    let k = kpi_json(&["--input", f.to_str().unwrap()]);
    assert!(k["episodes"].as_array().unwrap().is_empty());
    let d = &k["days"][0];
    assert_eq!(
        (d["requests"].as_u64(), d["no_reply"].as_u64()),
        (Some(4), Some(3))
    );
    // And the same through a database.
    let db = dir.join("d.db");
    dispo(&["import", "--db", db.to_str().unwrap(), f.to_str().unwrap()]);
    let k = kpi_json(&["--db", db.to_str().unwrap()]);
    assert!(k["episodes"].as_array().unwrap().is_empty());
    assert_eq!(k["days"][0]["requests"], 4);
}

/// A 1-hour episode on `day` (five no-replies at 10:00:00–04Z, a reply at 11:00:00Z).
fn hour_down(day: &str, p: &str) -> String {
    let mut s = String::new();
    for i in 0..5 {
        s += &line(&format!("{day}T10:00:0{i}.000Z"), &format!("{p}{i}"), "");
    }
    s + &line(&format!("{day}T11:00:00.000Z"), &format!("{p}ok"), "200")
}

#[test]
fn consecutive_missed_weeks_count_across_the_quarter_edge() {
    // The log covers Monday 16 Sept 00:00 Paris (15 Sept 22:00Z) to 8 Oct 00:00Z. A 1-hour
    // episode in W38 (18 Sept), W39 (25 Sept) and W40 (Wed 2 Oct): each week's uptime is
    // 100 − 3 600 / 604 800 × 100 = 99.40 % < 99.5 %, a miss. W40 (30 Sept–6 Oct) is judged
    // whole by both quarters: critical (three in a row) in Q3 as in Q4.
    support::init();
    let dir = tmp("weeks");
    let mut s = String::from(HEAD);
    s += &line("2024-09-15T22:00:00.000Z", "first", "200");
    s += &hour_down("2024-09-18", "a");
    s += &hour_down("2024-09-25", "b");
    s += &hour_down("2024-10-02", "c");
    s += &line("2024-10-08T00:00:00.000Z", "last", "200");
    let f = dir.join("weeks.csv");
    std::fs::write(&f, s).unwrap();
    let week = |k: &Value, label: &str| {
        let w = k["weeks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["week"] == label)
            .unwrap_or_else(|| panic!("no {label}"))
            .clone();
        (
            w["consecutive_missed"].as_u64().unwrap(),
            w["level"].clone(),
        )
    };
    let fs = f.to_str().unwrap();
    let q3 = kpi_json(&["--input", fs, "--from", "2024-07-01", "--to", "2024-10-01"]);
    let q4 = kpi_json(&["--input", fs, "--from", "2024-10-01", "--to", "2025-01-01"]);
    assert_eq!(week(&q3, "2024-W39"), (2, "warning".into()));
    assert_eq!(week(&q3, "2024-W40"), (3, "critical".into()));
    assert_eq!(week(&q4, "2024-W40"), (3, "critical".into()));
    // W41 (7–13 Oct) runs past the data's end: incomplete, not judged.
    let w41 = q4["weeks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["week"] == "2024-W41")
        .unwrap();
    assert_eq!(
        (w41["complete"].as_bool(), &w41["level"]),
        (Some(false), &Value::Null)
    );
}

#[test]
fn response_times_are_over_successful_replies_and_episodes_never_overlap() {
    // 13807's API on 1 July: five 200s of 350 ms and five 400 AC01 of 30 ms: the mean is
    // 350 ms (successful replies only), not (5 × 350 + 5 × 30) / 10 = 190 ms.
    // Then five no-replies 12:00:00–04Z; a slow 200 sent at :25 completing at :45 (20 000 ms);
    // five more no-replies :30–:34Z; a 200 at 12:01:00Z (0 ms). First episode 12:00:00–12:00:45
    // (45 s); the second starts no earlier than 12:00:45 and ends 12:01:00 (15 s): 60 s down in
    // all, and the episodes add up to the day's downtime. The slow reply is timed too:
    // mean of ok replies (5 × 350 + 20 000 + 0) / 7 = 3 107.142857... ms.
    support::init();
    let dir = tmp("times");
    let mut s = String::from(HEAD);
    for i in 0..5 {
        s +=
            &format!("2024-07-01T10:0{i}:00.000Z,13807,api,cbpii,log,PSDFR-ACPR-A,200,350,,s{i}\n");
        s += &format!(
            "2024-07-01T11:0{i}:00.000Z,13807,api,cbpii,log,PSDFR-ACPR-A,400,30,AC01,r{i}\n"
        );
    }
    for i in 0..5 {
        s += &line(&format!("2024-07-01T12:00:0{i}.000Z"), &format!("f{i}"), "");
    }
    s += "2024-07-01T12:00:25.000Z,13807,api,cbpii,log,PSDFR-ACPR-A,200,20000,,slow\n";
    for i in 0..5 {
        s += &line(&format!("2024-07-01T12:00:3{i}.000Z"), &format!("g{i}"), "");
    }
    s += &line("2024-07-01T12:01:00.000Z", "end", "200");
    let f = dir.join("times.csv");
    std::fs::write(&f, s).unwrap();
    let k = kpi_json(&["--input", f.to_str().unwrap()]);
    let d = &k["days"][0];
    assert_eq!(
        d["avg_ms"]["cbpii"].as_f64().unwrap(),
        (5.0 * 350.0 + 20_000.0) / 7.0
    );
    let eps = k["episodes"].as_array().unwrap();
    let spans: Vec<(&str, &str, f64)> = eps
        .iter()
        .map(|e| {
            (
                e["start"].as_str().unwrap(),
                e["end"].as_str().unwrap(),
                e["duration_s"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        spans,
        [
            ("2024-07-01T12:00:00.000Z", "2024-07-01T12:00:45.000Z", 45.0),
            ("2024-07-01T12:00:45.000Z", "2024-07-01T12:01:00.000Z", 15.0),
        ]
    );
    assert_eq!(d["downtime_s"].as_f64().unwrap(), 60.0);
}

#[test]
fn time_outs_logged_with_their_wait_are_no_replies_and_a_bank_error_is_never_a_probe_error() {
    // A gateway export: a 200 at 10:00:00Z, five time-outs 10:00:10–14Z logged with the 30 s the
    // gateway waited (empty status, latency 30000) or status 0, a 200 at 11:00:00Z. They are
    // no-replies (an outage: 10:00:10 → 11:00:00, 3 590 s of the 3 600 s covered), not refused
    // lines that would erase it.
    support::init();
    let dir = tmp("timeouts");
    let mut s = String::from(HEAD);
    s += &line("2024-07-01T10:00:00.000Z", "a", "200");
    for i in 0..5 {
        let status = if i % 2 == 0 { "" } else { "0" };
        s += &format!(
            "2024-07-01T10:00:1{i}.000Z,13807,api,cbpii,log,PSDFR-ACPR-A,{status},30000,,t{i}\n"
        );
    }
    s += &line("2024-07-01T11:00:00.000Z", "b", "200");
    let f = dir.join("timeouts.csv");
    std::fs::write(&f, s).unwrap();
    let k = kpi_json(&["--input", f.to_str().unwrap()]);
    let d = &k["days"][0];
    assert_eq!(d["no_reply"], 5);
    assert_eq!(d["downtime_s"].as_f64().unwrap(), 3_590.0);
    assert_eq!(
        d["uptime_pct"].as_f64().unwrap(),
        100.0 - 3_590.0 / 3_600.0 * 100.0
    );

    // Probe rows marked probe_error on a 503 INTS are refused: the monitor's own fault has no
    // reply, and taking them so would drop the bank's errors from every figure.
    let mut p = String::from(HEAD.trim_end());
    p += ",outcome\n";
    p += "2024-07-01T10:00:00.000Z,13807,api,cbpii,probe,,503,10,INTS,p1,probe_error\n";
    let g = dir.join("pe.csv");
    std::fs::write(&g, p).unwrap();
    let out = Command::new(support::dispo_bin())
        .args(["kpi", "--input", g.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pe.csv:2") && err.contains("no reply"),
        "{err}"
    );
}

#[test]
fn gateway_logs_cover_the_time_after_the_probe_monitor_stopped() {
    // A probe monitor runs 2 s against the simulator, probing 13807's API only, and stops.
    // From a minute later, the gateway logged five TPP no-replies (1 s apart) and a reply one
    // hour after the first (0 ms): the log covers that hour, so the episode (3 600 s) is
    // downtime in the day figures too, whatever the monitor did. And the monitor covered
    // 13807's API only: a one-line log of 10807 leaves 10807 at n.d., not "monitored".
    support::init();
    let sim = crate::sim_support::Sim::start();
    let dir = tmp("gap");
    let cfg = dir.join("p.toml");
    let mut c = String::from(
        "[monitor]\nid = \"it\"\ntimeout_s = 5\nburst_interval_s = 0\nheartbeat_s = 0.5\n",
    );
    c += &dispo::sim::pki::probe_establishment_toml("13807", sim.port, &sim.pki);
    c += "[[probe]]\nname = \"v142\"\nstep = \"funds-confirmation\"\nschedule = \"* * * * * *\"\n\
          stet = \"1.4.2\"\niban = \"FR7613807008043001965405255\"\namount = \"10.00\"\nexpect = true\n";
    std::fs::write(&cfg, c).unwrap();
    let db = dir.join("d.db");
    let dbs = db.to_str().unwrap();
    dispo(&[
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--db",
        dbs,
        "--duration",
        "2s",
    ]);

    let t0 = chrono::Utc::now().timestamp_millis() + 60_000;
    let at = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string()
    };
    let mut s = String::from(HEAD);
    for i in 0..5 {
        s += &line(&at(t0 + i * 1_000), &format!("gw{i}"), "");
    }
    s += &line(&at(t0 + 3_600_000), "gwok", "200");
    let f = dir.join("gw.csv");
    std::fs::write(&f, s).unwrap();
    let other = dir.join("other.csv");
    std::fs::write(
        &other,
        format!(
            "{HEAD}{},10807,api,cbpii,log,PSDFR-ACPR-A,200,10,,o1\n",
            at(t0)
        ),
    )
    .unwrap();
    dispo(&[
        "import",
        "--db",
        dbs,
        f.to_str().unwrap(),
        other.to_str().unwrap(),
    ]);

    let k = kpi_json(&["--db", dbs]);
    let eps = k["episodes"].as_array().unwrap();
    assert_eq!(eps.len(), 1, "{eps:?}");
    assert_eq!(eps[0]["duration_s"].as_f64().unwrap(), 3_600.0);
    let days = k["days"].as_array().unwrap();
    let sum = |est: &str, key: &str| -> f64 {
        days.iter()
            .filter(|d| d["establishment"] == est && d["interface"] == "api")
            .map(|d| d[key].as_f64().unwrap_or(0.0))
            .sum()
    };
    // The hour may straddle local midnight: summed over the days, 3 600 s down.
    assert_eq!(sum("13807", "downtime_s"), 3_600.0);
    // Covered: the monitor's run (about 2 s) and the log's hour.
    let covered = sum("13807", "covered_s");
    assert!((3_600.0..3_700.0).contains(&covered), "{covered}");
    assert!(
        days.iter()
            .filter(|d| d["establishment"] == "10807")
            .all(|d| d["covered_s"] == 0.0 && d["uptime_pct"].is_null()),
        "{days:?}"
    );
}

#[test]
fn an_outage_stays_downtime_when_tpps_stop_calling_and_fall_back() {
    // One gateway log of 13807 from 08:00 to 20:00Z: the API answers at 08:00, then five 503s
    // at 10:00:00–04Z and no API line after; TPPs use the fallback at 12:00 and 18:00 and a
    // customer logs in on the web at 20:00. The log covers 13807 on every interface to its last
    // line (methodology section 1): the API is down from 10:00 to 20:00 (36 000 s of the
    // 43 200 s covered: uptime 16.67 %), open, and both fallback uses are justified.
    support::init();
    let dir = tmp("fallback");
    let mut s = String::from(HEAD);
    s += &line("2024-07-01T08:00:00.000Z", "a0", "200");
    for i in 0..5 {
        s += &line(
            &format!("2024-07-01T10:00:0{i}.000Z"),
            &format!("e{i}"),
            "503",
        );
    }
    for (t, id) in [("12:00", "fb1"), ("18:00", "fb2")] {
        s += &format!(
            "2024-07-01T{t}:00.000Z,13807,fallback,fallback,log,PSDFR-ACPR-B,302,40,,{id}\n"
        );
    }
    s += "2024-07-01T20:00:00.000Z,13807,psu_web,psu_login,log,,200,300,,w1\n";
    let f = dir.join("f.csv");
    std::fs::write(&f, s).unwrap();
    let k = kpi_json(&["--input", f.to_str().unwrap()]);
    let api = k["days"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["interface"] == "api")
        .unwrap();
    assert_eq!(api["covered_s"].as_f64().unwrap(), 43_200.0);
    assert_eq!(api["downtime_s"].as_f64().unwrap(), 36_000.0);
    assert_eq!(
        api["uptime_pct"].as_f64().unwrap(),
        100.0 - 36_000.0 / 43_200.0 * 100.0
    );
    assert_eq!(k["episodes"][0]["open"], true);
    let fb = &k["fallback"][0];
    assert_eq!(
        (fb["justified"].as_u64(), fb["unjustified"].as_u64()),
        (Some(2), Some(0))
    );
}

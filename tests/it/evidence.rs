//! Evidence packs through the real binary: imported data with one hand-worked episode, the pack's
//! files and figures, `verify` passing then failing after alteration, and a scan for secrets.

use std::path::Path;

use crate::import::{dispo, text, tmp};
use crate::support;

/// Establishment 13807, interface api, on 2024-07-04 (Paris = UTC+2, all on the same local day):
///
/// - 09:40:00 ok (outside the ±10 min context)
/// - 09:55:00 fallback use by PSDFR-ACPR-B (before the episode: unjustified)
/// - 10:00:00 ok
/// - 10:01:00, :05, :10, :15, :20: five failures (503 INTS, then no replies): the fifth comes 20 s
///   after the first (≤ 30 s), so the interface is down from 10:01:00.000
/// - 10:01:30 fallback use by PSDFR-ACPR-B (during the episode: justified)
/// - 10:01:40 a sixth failure (same run)
/// - 10:02:00 ok with latency 250 ms: the episode ends at 10:02:00.250, 60.250 s after it began
/// - 10:11:00 ok (inside the context: end + 10 min = 10:12:00.250)
/// - 10:13:00 ok (outside)
/// - 12:00:00 fallback use by PSDFR-ACPR-C (unjustified, outside the context)
///
/// Error texts carry secrets that must never reach a pack.
pub const EPISODE_CSV: &str = "\
received_at,establishment,interface,service,source,tpp,status,latency_ms,error_code,request_id,error_text
2024-07-04T09:40:00.000Z,13807,api,cbpii,log,PSDFR-ACPR-A,200,100,,early
2024-07-04T09:55:00.000Z,13807,fallback,fallback,log,PSDFR-ACPR-B,302,40,,fb-before
2024-07-04T10:00:00.000Z,13807,api,cbpii,log,PSDFR-ACPR-A,200,100,,r0
2024-07-04T10:01:00.000Z,13807,api,cbpii,log,PSDFR-ACPR-A,503,12,INTS,f1,upstream said Authorization: Bearer SECRET-TOKEN-abc123
2024-07-04T10:01:05.000Z,13807,api,token,log,PSDFR-ACPR-B,503,15,INTS,f2,echo grant_type=refresh_token&refresh_token=RT-secret-999&code=AUTHCODE-777
2024-07-04T10:01:10.000Z,13807,api,cbpii,log,PSDFR-ACPR-A,,,,f3,sms otp=842913 rejected
2024-07-04T10:01:15.000Z,13807,api,cbpii,log,PSDFR-ACPR-B,,,,f4,
2024-07-04T10:01:20.000Z,13807,api,cbpii,log,PSDFR-ACPR-A,,,,f5,
2024-07-04T10:01:30.000Z,13807,fallback,fallback,log,PSDFR-ACPR-B,302,35,,fb-during
2024-07-04T10:01:40.000Z,13807,api,cbpii,log,PSDFR-ACPR-A,,,,f6,
2024-07-04T10:02:00.000Z,13807,api,cbpii,log,PSDFR-ACPR-A,200,250,,r1
2024-07-04T10:11:00.000Z,13807,api,cbpii,log,PSDFR-ACPR-A,200,100,,late
2024-07-04T10:13:00.000Z,13807,api,cbpii,log,PSDFR-ACPR-A,200,100,,later
2024-07-04T12:00:00.000Z,13807,fallback,fallback,log,PSDFR-ACPR-C,302,30,,fb-noon
";

pub const SECRETS: [&str; 4] = [
    "SECRET-TOKEN-abc123",
    "RT-secret-999",
    "AUTHCODE-777",
    "842913",
];

pub const EPISODE_ID: &str = "13807-api-20240704T100100.000Z";

/// Every file of a pack is free of every secret.
pub fn assert_no_secrets(dir: &Path, secrets: &[&str]) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        let body = String::from_utf8_lossy(&bytes);
        for s in secrets {
            assert!(
                !body.contains(s),
                "{} contains the secret {s:?}",
                p.display()
            );
        }
    }
}

/// A store (`--db` value) holding the episode's rows, and the test's directory.
fn imported_db(name: &str, b: support::Backend) -> (std::path::PathBuf, String) {
    let d = tmp(&format!("{name}-{b:?}"));
    let db = b.db(&d, "o.db");
    std::fs::write(d.join("e.csv"), EPISODE_CSV).unwrap();
    let o = dispo(
        &["import", "--db", &db, d.join("e.csv").to_str().unwrap()],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    (d, db)
}

fn csv_rows(p: &Path) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_path(p).unwrap();
    r.records()
        .map(|x| x.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

support::on_both!(pack_of_an_imported_episode_verifies_and_detects_tampering);

fn pack_of_an_imported_episode_verifies_and_detects_tampering(b: support::Backend) {
    support::init();
    let (d, db) = imported_db("evidence-pack", b);
    let out = d.join("pack");
    let o = dispo(
        &[
            "evidence",
            "--db",
            &db,
            "--episode",
            EPISODE_ID,
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    let (so, se) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{so}{se}");
    assert!(so.contains(EPISODE_ID), "{so}");
    // Request ids and TPP ids: the pack is its owner's only (issue 13.10).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    // The episode, as worked out above.
    let eps = csv_rows(&out.join("episodes.csv"));
    assert_eq!(eps.len(), 1);
    assert_eq!(
        eps[0][..10],
        [
            EPISODE_ID,
            "13807",
            "api",
            "2024-07-04T10:01:00.000Z",
            "2024-07-04T10:02:00.250Z",
            "60.250",
            "false",
            "false",
            "false",
            "0.000"
        ]
    );
    assert_eq!(eps[0][10], "f1 f2 f3 f4 f5");
    assert_eq!(eps[0][11], "r1");

    // The requests that opened and closed it, with statuses and codes.
    let reqs = csv_rows(&out.join("episode-requests.csv"));
    let roles: Vec<&str> = reqs.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(
        roles,
        [
            "failure_1",
            "failure_2",
            "failure_3",
            "failure_4",
            "failure_5",
            "ended_by"
        ]
    );
    assert_eq!(reqs[0][2], "2024-07-04T10:01:00.000Z");
    assert_eq!(reqs[0][3], "f1");
    assert_eq!(reqs[0][6], "503");
    assert_eq!(reqs[0][8], "INTS");
    assert_eq!(reqs[0][9], "aspsp_error");
    assert_eq!(reqs[2][9], "no_reply");
    assert_eq!(reqs[5][3], "r1");

    // ± 10 minutes of context: 09:51:00 to 10:12:00.250 holds 11 observations.
    let obs = csv_rows(&out.join("observations.csv"));
    let ids: Vec<&str> = obs.iter().map(|r| r[9].as_str()).collect();
    assert_eq!(
        ids,
        [
            "fb-before",
            "r0",
            "f1",
            "f2",
            "f3",
            "f4",
            "f5",
            "fb-during",
            "f6",
            "r1",
            "late"
        ]
    );

    // The engine's fallback classification for the day: B once inside the episode (justified),
    // once before it (unjustified); C once at noon (unjustified).
    let fb = csv_rows(&out.join("fallback.csv"));
    assert_eq!(
        fb,
        [
            ["2024-07-04", "13807", "PSDFR-ACPR-B", "1", "1"],
            ["2024-07-04", "13807", "PSDFR-ACPR-C", "0", "1"],
        ]
    );

    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("réputée indisponible"), "{md}");
    assert!(md.contains("Banque Populaire Grand Ouest"));
    assert!(
        md.contains("2024-07-04 12:01:00.000 +02:00"),
        "local time shown"
    );
    assert!(out.join("summary.html").is_file());
    let settings: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("settings.json")).unwrap()).unwrap();
    assert_eq!(settings["failures_to_down"], 5);
    assert_eq!(settings["tz"], "Europe/Paris");

    // No secret from the error texts made it into any file.
    assert_no_secrets(&out, &SECRETS);
    assert!(
        std::fs::read_to_string(out.join("observations.csv"))
            .unwrap()
            .contains("Bearer [redacted]")
    );

    // The manifest lists every file and `sha256sum -c` agrees with it.
    let manifest = std::fs::read_to_string(out.join("MANIFEST.sha256")).unwrap();
    assert_eq!(manifest.lines().count(), 7, "{manifest}");
    if let Ok(st) = std::process::Command::new("sha256sum")
        .args(["-c", "--quiet", "MANIFEST.sha256"])
        .current_dir(&out)
        .status()
    {
        assert!(st.success());
    }

    let verify = |dir: &Path| {
        let o = dispo(&["evidence", "verify", dir.to_str().unwrap()], None);
        (o.status.code(), text(&o).0)
    };
    let (code, so) = verify(&out);
    assert_eq!(code, Some(0), "{so}");
    assert!(so.contains("intact (7 files"), "{so}");

    // Alter one byte, remove one file, add one: each is reported, exit status 1.
    let p = out.join("observations.csv");
    let mut body = std::fs::read(&p).unwrap();
    let last = body.len() - 2;
    body[last] ^= 1;
    std::fs::write(&p, body).unwrap();
    std::fs::remove_file(out.join("fallback.csv")).unwrap();
    std::fs::write(out.join("note.txt"), "added later").unwrap();
    let (code, so) = verify(&out);
    assert_eq!(code, Some(1), "{so}");
    assert!(so.contains("ALTERED  observations.csv"), "{so}");
    assert!(so.contains("MISSING  fallback.csv"), "{so}");
    assert!(so.contains("EXTRA    note.txt"), "{so}");
    assert!(so.contains("1 altered, 1 missing, 1 extra, 5 ok"), "{so}");

    // The pack does not go into a directory that already holds files.
    let o = dispo(
        &[
            "evidence",
            "--db",
            &db,
            "--episode",
            EPISODE_ID,
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("not empty"));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn period_packs_in_english_and_unknown_episodes() {
    support::init();
    let (d, db) = imported_db("evidence-period", support::Backend::Sqlite);
    let out = d.join("pack-en");
    let o = dispo(
        &[
            "evidence",
            "--db",
            &db,
            "--from",
            "2024-07-04",
            "--to",
            "2024-07-05",
            "--establishment",
            "13807",
            "--lang",
            "en",
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    let (so, se) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{so}{se}");
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains("is deemed unavailable from 2024-07-04T10:01:00.000Z"),
        "{md}"
    );
    assert!(md.contains("that is 60.250 s"), "{md}");
    assert_no_secrets(&out, &SECRETS);

    // A wrong start time: the error names the episodes that do exist around it.
    let o = dispo(
        &[
            "evidence",
            "--db",
            &db,
            "--episode",
            "13807-api-20240704T100105.000Z",
            "--out",
            d.join("none").to_str().unwrap(),
        ],
        None,
    );
    let (_, se) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        se.contains("no episode 13807-api-20240704T100105.000Z"),
        "{se}"
    );
    assert!(se.contains(EPISODE_ID), "{se}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn exemption_dossier_wants_three_months() {
    support::init();
    let (d, db) = imported_db("evidence-exemption", support::Backend::Sqlite);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let day = |s: &str| s.parse::<chrono::NaiveDate>().unwrap();
    let settings = dispo::engine::Settings::default();
    rt.block_on(async {
        let store = support::open_store(&db).await;
        let lang = dispo::evidence::Lang::Fr;
        // 2024-07-01 to 2024-09-30 is one day short of three months.
        let e = dispo::evidence::exemption::build(
            &store,
            day("2024-07-01"),
            day("2024-09-30"),
            &settings,
            lang,
            &d.join("short"),
            false,
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("at least three months"), "{e}");
        assert!(!d.join("short").exists());

        // Three months exactly: 2024-07-01 to 2024-10-01.
        let out = d.join("dossier");
        let files = dispo::evidence::exemption::build(
            &store,
            day("2024-07-01"),
            day("2024-10-01"),
            &settings,
            lang,
            &out,
            false,
        )
        .await
        .unwrap();
        assert!(files.iter().any(|f| f.ends_with("exemption.xlsx")));
        let eps = csv_rows(&out.join("episodes.csv"));
        assert_eq!(eps.len(), 1);
        assert_eq!(eps[0][0], EPISODE_ID);
        assert_eq!(eps[0][5], "60.25");
        // cbpii on api in July: 5 successful calls (early, r0, r1, late, later); 2 distinct
        // TPPs (A, and B whose f4 failed).
        let usage = csv_rows(&out.join("usage.csv"));
        assert!(
            usage.contains(&vec![
                "2024-07".to_string(),
                "13807".into(),
                "cbpii".into(),
                "5".into(),
                "2".into()
            ]),
            "{usage:?}"
        );
        let v = dispo::evidence::manifest::verify(&out).unwrap();
        assert!(v.is_intact(), "{v:?}");

        // A short period when allowed: marked as such.
        let out = d.join("short-ok");
        dispo::evidence::exemption::build(
            &store,
            day("2024-07-01"),
            day("2024-07-08"),
            &settings,
            dispo::evidence::Lang::En,
            &out,
            true,
        )
        .await
        .unwrap();
        let html = std::fs::read_to_string(out.join("exemption.html")).unwrap();
        assert!(html.contains("PERIOD SHORTER THAN THREE MONTHS"), "{html}");
    });
    let _ = std::fs::remove_dir_all(&d);
}

//! `dispo demo --duration 30s --quarter 2024-Q3`: the outputs exist, the scripted outage is an
//! episode, and both publications (the demo day, provisional, and the synthetic quarter) keep
//! the annex's words out of their public files and render at 1 280 px.

use std::process::Command;

use serde_json::Value;

use crate::support;

#[test]
fn the_demo_detects_the_scripted_outage_and_writes_its_outputs() {
    support::init();
    let out = std::env::temp_dir().join(format!("dispo-it-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let run = Command::new(support::dispo_bin())
        .args(["demo", "--duration", "30s", "--quarter", "2024-Q3", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("ALERT FIRING"), "{stdout}");
    assert!(stdout.contains("ALERT RESOLVED"), "{stdout}");

    let kpi: Value = serde_json::from_slice(&std::fs::read(out.join("kpi.json")).unwrap()).unwrap();
    let episodes = kpi["episodes"].as_array().unwrap();
    let outage = episodes
        .iter()
        .find(|e| e["establishment"] == "13807" && e["interface"] == "api")
        .expect("the scripted BPGO outage is an episode");
    // The hang lasts 12 s: the episode runs from the first unanswered request to the first
    // answer after the fault, so about 12 s (more than 8, less than 20).
    let d = outage["duration_s"].as_f64().unwrap();
    assert!((8.0..20.0).contains(&d), "{d}");
    assert_eq!(outage["open"], false);
    // The 503 INTS period of BPAURA is an episode too (bank errors count as failures).
    assert!(episodes.iter().any(|e| e["establishment"] == "16807"));
    // The TPP's fallback use outside any outage is unjustified.
    let fb = kpi["fallback"].as_array().unwrap();
    assert!(
        fb.iter()
            .any(|f| f["establishment"] == "14607" && f["unjustified"] == 3 && f["justified"] == 0)
    );

    let id = outage["id"].as_str().unwrap();
    let pack = out.join(format!("evidence-{id}"));
    assert!(pack.join("MANIFEST.sha256").exists());
    let verify = Command::new(support::dispo_bin())
        .args(["evidence", "verify"])
        .arg(&pack)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    assert!(out.join("demo.db").exists());
    // The publication of the demo day.
    let day = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("demo-"))
        .expect("a demo-<date> publication folder");
    assert!(day.path().join("index.html").exists());
    assert!(
        std::fs::read_dir(day.path()).unwrap().any(|e| e
            .unwrap()
            .path()
            .extension()
            .is_some_and(|x| x == "xlsx"))
    );
    // The demo day is not over: provisional in every output.
    let html = std::fs::read_to_string(day.path().join("index.html")).unwrap();
    assert!(html.contains("CHIFFRES PROVISOIRES"), "the page");
    let csv = std::fs::read_dir(day.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-daily.csv"))
        .unwrap();
    let csv = std::fs::read_to_string(csv).unwrap();
    assert!(
        csv.lines().skip(1).all(|l| l.ends_with(",provisoire")),
        "the CSV"
    );
    let svg = crate::publication::files(&day.path().join("charts"), None)
        .into_iter()
        .find(|p| p.extension().is_some_and(|x| x == "svg"))
        .unwrap();
    assert!(
        std::fs::read_to_string(svg).unwrap().contains("PROVISOIRE"),
        "a chart"
    );
    let readme = std::fs::read_to_string(day.path().join("annexe-acpr/LISEZ-MOI.txt")).unwrap();
    assert!(
        readme.contains("provisoire") && readme.contains("NE PAS PUBLIER"),
        "the annex"
    );
    // Probes only on the dedicated interface: the monitor's own traffic is no provider
    // request (the TPP's three fallback requests at 14607 are).
    assert!(html.contains("par les sondes de la banque"));
    // Both publications keep the annex's words out of every public file, and render at 1 280 px.
    let quarter = out.join("2024-Q3");
    assert!(
        std::fs::read_to_string(quarter.join("index.html"))
            .unwrap()
            .contains("Statistiques T3 2024")
    );
    for dir in [day.path(), quarter] {
        crate::publication::assert_public_apart_from_annex(
            &dir,
            &["vigilance", "alerte", "critique"],
        );
        crate::publication::render_at_1280(&dir.join("index.html"), &out);
    }
}

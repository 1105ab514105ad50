//! The status page (issue 16.1) through the real binary: `dispo run --http-listen` against the
//! simulator, a scripted outage seen in the JSON, the HTML in headless Chromium (1 280 px, no
//! horizontal overflow, the outage shown within one refresh, no reload), the feed, `/health`
//! ready then not, `/metrics` on the same listener, and `dispo status` once afterwards.
//! Settings are the shipped ones scaled down by ten (3 s time-out and window, 0.5 s bursts).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cdp::Browser;
use crate::sim_support::Sim;
use crate::support;

fn tmp(name: &str) -> PathBuf {
    support::tmp_dir("status", name)
}

const PROBES: &str = r#"
[[probe]]
name = "v142"
step = "funds-confirmation"
schedule = "* * * * * *"
stet = "1.4.2"
iban = "FR7613807008043001965405255"
amount = "10.00"
expect = true

[[probe]]
name = "web"
step = "psu"
schedule = "*/2 * * * * *"
"#;

fn config(sim: &Sim) -> String {
    let mut s =
        "[monitor]\nid = \"it-status\"\ntimeout_s = 3\nburst_interval_s = 0.5\nheartbeat_s = 0.5\n\
                 [counting]\nwindow_ms = 3000\n\
                 maintenance = [{ weekday = \"Sun\", start = \"02:00:00\", end = \"06:00:00\" }]\n"
            .to_owned();
    for code in ["13807", "16807"] {
        s += &dispo::sim::pki::probe_establishment_toml(code, sim.port, &sim.pki);
    }
    s + PROBES
}

async fn get(url: &str) -> (u16, String) {
    match reqwest::get(url).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

/// The state of one interface in `/status.json`.
fn state(v: &Value, code: &str, iface: &str) -> String {
    v["establishments"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["code"] == code))
        .and_then(|e| {
            e["interfaces"]
                .as_array()?
                .iter()
                .find(|i| i["interface"] == iface)
        })
        .map(|i| i["state"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

/// Polls `f` every 100 ms until it holds, for at most `secs`.
async fn until<F: std::future::Future<Output = bool>>(
    secs: u64,
    what: &str,
    mut f: impl FnMut() -> F,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(Instant::now() < deadline, "not within {secs} s: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_status_page_shows_an_outage_live_in_a_browser_and_once_afterwards() {
    let sim = Sim::start();
    let dir = tmp("live");
    let cfg = dir.join("p.toml");
    std::fs::write(&cfg, config(&sim)).unwrap();
    let db = dir.join("d.db");
    let port = support::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut run = support::spawn_run(
        &cfg,
        &db,
        &[
            "--duration",
            "30s",
            "--http-listen",
            &format!("127.0.0.1:{port}"),
            "--status-refresh",
            "2s",
        ],
    );

    // Ready once probing runs; both establishments up.
    until(15, "/health ready", || async {
        get(&format!("{base}/health")).await.0 == 200
    })
    .await;
    let (_, body) = get(&format!("{base}/health")).await;
    assert_eq!(body, "ready: the database takes writes and probes run\n");
    let json = |base: String| async move {
        serde_json::from_str::<Value>(&get(&format!("{base}/status.json")).await.1)
            .unwrap_or(Value::Null)
    };
    until(10, "13807 api up", || async {
        state(&json(base.clone()).await, "13807", "api") == "up"
    })
    .await;
    let v = json(base.clone()).await;
    assert_eq!(state(&v, "16807", "psu_web"), "up");
    assert_eq!(v["tz"], "Europe/Paris");
    assert_eq!(v["refresh_s"], 2);
    assert_eq!(v["quarter"]["provisional"], true);
    assert_eq!(
        v["establishments"][0]["maintenance_ahead"][0]["start"]
            .as_str()
            .unwrap()
            .get(11..),
        Some("02:00:00+01:00"),
        "Sunday 02:00 in Paris, winter time: {v}"
    );

    // The page in Chromium, 1 280 px wide: it fits, and shows 13807 up.
    let mut browser = Browser::open(&format!("{base}/"), 1280, 900, &dir);
    let shown = "(function(){var c=document.querySelector('#e13807 td.state');return c?c.getAttribute('data-state'):null;})()";
    let deadline = Instant::now() + Duration::from_secs(15);
    while browser.eval(shown) != json!("up") {
        assert!(Instant::now() < deadline, "the page did not render");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(browser.eval("window.innerWidth"), json!(1280));
    let widths = browser
        .eval("[document.documentElement.scrollWidth, document.documentElement.clientWidth]");
    assert!(
        widths[0].as_i64().unwrap() <= widths[1].as_i64().unwrap(),
        "horizontal overflow at 1280 px: {widths}"
    );
    assert_eq!(browser.eval("document.documentElement.lang"), json!("fr"));
    // Marked, to tell a reload (which would lose it) from the script's refresh.
    browser.eval("window.__loaded = 1");

    // The bank refuses connections on 13807 for 6 s.
    sim.set_faults(json!({"fault": [{"establishment": "13807", "interface": "api", "kind": "refuse", "after_s": 0, "for_s": 6}]}))
        .await;
    until(15, "the outage in /status.json", || async {
        state(&json(base.clone()).await, "13807", "api") == "down"
    })
    .await;
    let in_json = Instant::now();
    let deadline = in_json + Duration::from_secs(10);
    while browser.eval(shown) != json!("down") {
        assert!(
            Instant::now() < deadline,
            "the page never showed the outage"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let lag = in_json.elapsed();
    // Within one refresh (2 s), with room for the page's own fetch.
    assert!(
        lag < Duration::from_millis(3_000),
        "shown {lag:?} after the JSON"
    );
    assert_eq!(
        browser.eval("window.__loaded"),
        json!(1),
        "the page was reloaded"
    );
    let text = browser.eval("document.querySelector('#e13807 td.state').textContent");
    assert!(
        text.as_str()
            .unwrap()
            .starts_with("Indisponible depuis le "),
        "{text}"
    );
    let v = json(base.clone()).await;
    assert_eq!(
        state(&v, "16807", "api"),
        "up",
        "the other establishment stays up"
    );
    let since = v["establishments"][0]["interfaces"][0]["since"].clone();
    assert!(since.as_str().unwrap().ends_with("+01:00"), "{since}");
    drop(browser);

    // The bank answers again: the episode closes, with the same start, in the JSON and the feed.
    until(20, "13807 api up again", || async {
        state(&json(base.clone()).await, "13807", "api") == "up"
    })
    .await;
    let v = json(base.clone()).await;
    let ep = &v["establishments"][0]["episodes"][0];
    assert_eq!(ep["interface"], "api");
    assert_eq!(ep["start"], since);
    assert_eq!(ep["open"], false);
    let id = ep["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("13807-api-"), "{id}");
    let (code, feed) = get(&format!("{base}/feed.atom?lang=en")).await;
    assert_eq!(code, 200);
    assert!(feed.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"en\">"));
    assert!(
        feed.contains(&format!("<id>urn:dispo:episode:{id}</id>")),
        "{feed}"
    );
    assert!(feed.contains("Dedicated interface (API): unavailable from "));
    let (_, en) = get(&format!("{base}/?lang=en")).await;
    assert!(en.contains("<html lang=\"en\">") && en.contains("PSD2 API availability to date"));
    // Nothing section 9 keeps out: no TPP, no request id.
    for out in [&en, &feed, &v.to_string()] {
        assert!(!out.contains("PSDFR"), "a TPP id in {out}");
    }
    let (_, metrics) = get(&format!("{base}/metrics")).await;
    assert!(
        metrics.contains("dispo_episodes_total{establishment=\"13807\",interface=\"api\"} 1"),
        "{metrics}"
    );

    // The database refuses writes: not ready, saying why.
    let store = dispo::store::Store::open(&db).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse BEFORE INSERT ON observations \
         BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END",
    )
    .execute(store.pool())
    .await
    .unwrap();
    until(10, "/health not ready", || async {
        get(&format!("{base}/health")).await.0 == 503
    })
    .await;
    let (_, why) = get(&format!("{base}/health")).await;
    assert!(
        why.starts_with("not ready: the database refuses writes ("),
        "{why}"
    );
    sqlx::query("DROP TRIGGER refuse")
        .execute(store.pool())
        .await
        .unwrap();
    // Stopped as an operator stops it (SIGTERM): the heartbeat is closed.
    let term = std::process::Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(run.wait().unwrap().success());

    // Once afterwards: the same episode; the monitor was stopped, so nothing is monitored now.
    let out = support::dispo_ok(&[
        "status",
        "--db",
        db.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let once: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state(&once, "13807", "api"), "unmonitored");
    assert_eq!(once["establishments"][0]["episodes"][0]["id"], id);
    assert_eq!(once["refresh_s"], Value::Null);
    let page = dir.join("page.html");
    support::dispo_ok(&[
        "status",
        "--db",
        db.to_str().unwrap(),
        "--lang",
        "en",
        "--out",
        page.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("Unmonitored since") && !html.contains("<script"));
}

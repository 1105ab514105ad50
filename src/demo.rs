//! `dispo demo`: the whole product in one command, on loopback only. The embedded simulator
//! starts in-process with a fresh PKI in a temporary directory, the real probe daemon probes every
//! establishment of the bank's documentation over mutual TLS, and a scripted story unfolds:
//! BPGO (13807) stops answering in the middle (an Art. 33(1) episode, alerted live to a local
//! webhook receiver and resolved), BPAURA (16807) answers 503 INTS for a while, BPRI (10207) is
//! slow, and a TPP uses the fallback of BPMED (14607) outside any outage. At the end it writes the
//! figures, the publication (when a period is given) and an evidence pack for the outage.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::domain::{
    Interface, Observation, Outcome, SEED_ESTABLISHMENT_CODES, Service, Source, known_establishment,
};
use crate::engine::live::{EpisodeTracker, LiveEvent};
use crate::engine::{self, Period, time};
use crate::sim::faults::FaultPlan;
use crate::sim::{SimOptions, Simulator};
use crate::store::{Store, StoredObservation};

/// What the demo needs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub duration: Duration,
    pub out: PathBuf,
    /// Print the live table (a terminal) or only milestones.
    pub interactive: bool,
    /// Also fill this quarter with synthetic observations and publish it (`2024-Q3`).
    pub quarter: Option<String>,
}

/// What the demo produced.
#[derive(Debug, Clone, Default)]
pub struct DemoOutcome {
    pub db: PathBuf,
    pub kpi_json: PathBuf,
    pub evidence: Option<PathBuf>,
    pub episodes: Vec<String>,
    pub report_files: Vec<PathBuf>,
}

/// When the outage of the story starts and how long it lasts (seconds from the start).
pub fn outage_window(d: Duration) -> (f64, f64) {
    let d = d.as_secs_f64();
    let start = (d * 0.3).max(5.0);
    let len = (d * 0.3).max(12.0).min((d - start - 6.0).max(8.0));
    (start, len)
}

fn story(d: Duration) -> FaultPlan {
    let secs = d.as_secs_f64();
    let (start, len) = outage_window(d);
    serde_json::from_value(json!({"seed": 42, "fault": [
        {"establishment": "13807", "interface": "api", "kind": "hang", "after_s": start, "for_s": len},
        {"establishment": "16807", "interface": "api", "kind": "error503", "after_s": secs * 0.15, "for_s": (secs * 0.15).max(8.0)},
        {"establishment": "10207", "interface": "api", "kind": "latency", "latency_ms": 600, "latency_max_ms": 900}
    ]}))
    .expect("the demo's fault plan is valid")
}

fn probe_config(port: u16, pki: &Path, hook: SocketAddr) -> String {
    let mut s = format!(
        "[monitor]\nid = \"demo\"\ntimeout_s = 3\nburst_interval_s = 1\nheartbeat_s = 1\n\n[alerts]\ncheck_interval_s = 10\n[[alerts.webhook]]\nurl = \"http://{hook}/alerts\"\n"
    );
    for code in SEED_ESTABLISHMENT_CODES {
        s += &crate::sim::pki::probe_establishment_toml(code, port, pki);
        s += "psu_ip_address = \"192.0.2.10\"\n";
    }
    s + r#"
[[probe]]
name = "cbpii-1.4.2"
step = "funds-confirmation"
schedule = "* * * * * *"
stet = "1.4.2"
iban = "FR7613807008043001965405255"
amount = "10.00"
expect = true

[[probe]]
name = "piisp-1.4.0"
step = "funds-confirmation"
schedule = "*/5 * * * * *"
stet = "1.4.0"
iban = "FR7613807008043001965405158"
amount = "5000.00"
expect = false

[[probe]]
name = "customer-web"
step = "psu"
schedule = "*/2 * * * * *"

[[probe]]
name = "fallback"
step = "fallback"
schedule = "*/10 * * * * *"
"#
}

#[derive(Debug, Default, Clone)]
struct Row {
    down: bool,
    last_ms: Option<f64>,
    last_outcome: Option<Outcome>,
    episodes: u32,
    requests: u64,
}

/// Runs the demo; returns what it wrote.
pub async fn run(
    opts: DemoOptions,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<DemoOutcome> {
    use anyhow::Context;
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("cannot create {}", opts.out.display()))?;
    let tmp = std::env::temp_dir().join(format!(
        "dispo-demo-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_millis()
    ));
    std::fs::create_dir_all(&tmp)?;
    let db = opts.out.join("demo.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let say = |s: String| {
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, "{s}");
    };

    say("dispo demo: starting the embedded Banque Populaire sandbox (loopback only)...".into());
    let sim = Simulator::start(SimOptions {
        listen: "127.0.0.1:0".parse()?,
        admin_listen: None,
        pki_dir: tmp.join("pki"),
        faults: story(opts.duration),
    })
    .await?;
    let started = Instant::now();
    let t0_ms = chrono::Utc::now().timestamp_millis();

    // The on-call side: a webhook receiver printing alerts as they arrive.
    let hook_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = hook_listener.local_addr()?;
    let received: Arc<Mutex<Vec<serde_json::Value>>> = Default::default();
    {
        let received = received.clone();
        let app = axum::Router::new().route(
            "/alerts",
            axum::routing::post(move |axum::Json(v): axum::Json<serde_json::Value>| {
                let received = received.clone();
                async move {
                    let line = format!(
                        "  >>> ALERT {} [{}] {}",
                        v["event"].as_str().unwrap_or("").to_uppercase(),
                        v["severity"].as_str().unwrap_or(""),
                        v["summary"].as_str().unwrap_or("")
                    );
                    println!("{line}");
                    received.lock().unwrap_or_else(|e| e.into_inner()).push(v);
                }
            }),
        );
        tokio::spawn(async move { axum::serve(hook_listener, app).await });
    }
    say(format!("on-call webhook receiver: http://{hook}/alerts"));

    let cfg_path = tmp.join("probes.toml");
    std::fs::write(
        &cfg_path,
        probe_config(sim.api_addr.port(), &sim.pki.dir, hook),
    )?;
    let cfg =
        crate::config::load(&cfg_path).map_err(|e| anyhow::anyhow!("demo configuration: {e}"))?;
    let store = Store::open(&db).await?;
    let mut observers = crate::probe::order::Observers::default();
    let live = tokio::spawn(crate::alert::live::run(
        store.clone(),
        cfg.clone(),
        observers.subscribe(),
        chrono::Utc::now().timestamp_millis(),
    ));

    // The live table.
    let table: Arc<Mutex<BTreeMap<String, Row>>> = Default::default();
    let detected: Arc<Mutex<Vec<(String, f64)>>> = Default::default();
    {
        let (table, detected) = (table.clone(), detected.clone());
        let mut rx = observers.subscribe();
        let mut tracker = EpisodeTracker::new(&cfg.counting);
        tokio::spawn(async move {
            while let Some(o) = rx.recv().await {
                let o: StoredObservation = o;
                if o.obs.interface != Interface::Api {
                    continue;
                }
                let ev = tracker.push(&o.obs);
                let mut t = table.lock().unwrap_or_else(|e| e.into_inner());
                let r = t.entry(o.obs.establishment.to_string()).or_default();
                r.requests += 1;
                r.last_outcome = Some(o.obs.outcome);
                r.last_ms = o.obs.latency_ms;
                match ev {
                    Some(LiveEvent::Opened(e)) => {
                        r.down = true;
                        r.episodes += 1;
                        let at = started.elapsed().as_secs_f64();
                        detected
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((e.id(), at));
                    }
                    Some(LiveEvent::Closed(_)) => r.down = false,
                    None => {}
                }
            }
        });
    }
    let printer = {
        let table = table.clone();
        let interactive = opts.interactive;
        let total = opts.duration.as_secs_f64();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(if interactive { 2 } else { 10 })).await;
                let t = table.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let mut s = format!(
                    "\n[{:>4.0} s / {total:.0} s]  establishment        state  last reply   outcome      episodes\n",
                    started.elapsed().as_secs_f64()
                );
                for (code, r) in &t {
                    let name = known_establishment(code).map(|k| k.short).unwrap_or("");
                    s += &format!(
                        "              {code} {name:<8}   {:<5}  {:>9}   {:<11}  {}\n",
                        if r.down { "DOWN" } else { "up" },
                        r.last_ms
                            .map(|m| format!("{m:.0} ms"))
                            .unwrap_or_else(|| "-".into()),
                        r.last_outcome.map(|o| o.as_str()).unwrap_or("-"),
                        r.episodes
                    );
                }
                print!("{s}");
            }
        })
    };

    // A TPP uses the fallback of BPMED (14607) outside any outage: its requests reach the bank's
    // gateway log, which the demo feeds in as observations (source `log`).
    let tpp_task = {
        let store = store.clone();
        let (port, pki) = (sim.api_addr.port(), sim.pki.clone());
        let delay = opts.duration.mul_f64(0.1);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Err(e) = tpp_fallback_use(&store, port, &pki).await {
                tracing::warn!(error = %e, "the demo TPP could not use the fallback");
            }
        })
    };

    let (start, len) = outage_window(opts.duration);
    say(format!(
        "probing {} establishments over mutual TLS for {:.0} s; BPGO (13807) will stop answering at {start:.0} s for {len:.0} s",
        SEED_ESTABLISHMENT_CODES.len(),
        opts.duration.as_secs_f64()
    ));
    let summary = crate::probe::daemon::run(
        cfg.clone(),
        store.clone(),
        crate::probe::daemon::RunOptions {
            duration: Some(opts.duration),
            status_line: false,
            health: Default::default(),
            id_taken: None,
        },
        observers,
        stop,
    )
    .await?;
    printer.abort();
    let _ = tpp_task.await;
    let _ = tokio::time::timeout(Duration::from_secs(15), live).await;
    sim.shutdown().await;

    // The figures of the demo period.
    let tz = cfg.counting.tz;
    let today = time::local_date(tz, t0_ms);
    let period = Period {
        from: today,
        to: today + chrono::Duration::days(1),
    };
    let now = chrono::Utc::now().timestamp_millis();
    let kpis = crate::period::count(&store, period, &cfg.counting, &[], now)
        .await?
        .kpis;
    let kpi_json = opts.out.join("kpi.json");
    std::fs::write(
        &kpi_json,
        serde_json::to_string_pretty(&engine::json::to_json(&kpis))?,
    )?;

    let mut outcome = DemoOutcome {
        db: db.clone(),
        kpi_json,
        ..Default::default()
    };
    say(format!(
        "\n{} observations recorded in {}",
        summary.observations_written,
        db.display()
    ));
    say("Unavailability episodes (Art. 33(1)):".into());
    let det = detected.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for e in &kpis.episodes {
        let to_detect = det
            .iter()
            .find(|(id, _)| *id == e.id())
            .map(|(_, at)| {
                format!(
                    ", detected {:.1} s after it started",
                    at - (e.start_ms - t0_ms) as f64 / 1000.0
                )
            })
            .unwrap_or_default();
        say(format!(
            "  {}  {:.1} s{}{}",
            e.id(),
            e.duration_s(),
            if e.open { " (open)" } else { "" },
            to_detect
        ));
        outcome.episodes.push(e.id());
    }
    // Uptime is over the time the monitor watched (revision 2): the demo watched minutes.
    say("Uptime of the dedicated interface today, over the time watched:".into());
    for d in kpis.days.iter().filter(|d| d.interface == Interface::Api) {
        say(format!(
            "  {} {:<8} {:>9} %  of {:.0} s watched ({:.2} % of the day; {} requests, error rate {} %)",
            d.establishment,
            known_establishment(d.establishment.as_str())
                .map(|k| k.short)
                .unwrap_or(""),
            d.uptime_pct.map_or("n.d.".into(), |u| format!("{u:.4}")),
            d.covered_s,
            d.coverage_pct,
            d.requests,
            d.error_rate_pct
                .map_or("n.d.".into(), |u| format!("{u:.2}"))
        ));
    }
    for f in &kpis.fallback {
        say(format!(
            "Fallback use: {} at {}: {} justified, {} unjustified",
            f.tpp.as_deref().unwrap_or("?"),
            f.establishment,
            f.justified,
            f.unjustified
        ));
    }
    let alerts = received.lock().unwrap_or_else(|e| e.into_inner()).len();
    say(format!(
        "{alerts} alert notices reached the on-call webhook"
    ));

    if let Some(e) = kpis
        .episodes
        .iter()
        .find(|e| e.establishment.as_str() == "13807")
    {
        let dir = opts.out.join(format!("evidence-{}", e.id()));
        let _ = std::fs::remove_dir_all(&dir);
        let req = crate::evidence::pack::PackRequest {
            selection: crate::evidence::pack::Selection::Episode(crate::evidence::EpisodeId::of(e)),
            establishment: None,
            settings: cfg.counting.clone(),
            lang: crate::evidence::Lang::Fr,
            out_dir: dir.clone(),
            context_ms: 600_000,
            db_name: db.display().to_string(),
        };
        match crate::evidence::pack::build(&store, &req).await {
            Ok(p) => {
                say(format!(
                    "evidence pack for the ACPR: {} ({} files, {} bytes)",
                    p.dir.display(),
                    p.files.len(),
                    p.total_bytes
                ));
                outcome.evidence = Some(p.dir);
            }
            Err(err) => say(format!("evidence pack: {err}")),
        }
    }
    say(format!(
        "figures (dispo kpi JSON): {}",
        outcome.kpi_json.display()
    ));

    // The publication of the demo day.
    let req = crate::report::ReportRequest {
        period,
        label: format!("demo-{today}"),
        establishments: vec![],
        lang: crate::report::Lang::Fr,
        out: opts.out.clone(),
        settings: cfg.counting.clone(),
    };
    match crate::report::generate(&store, &req).await {
        Ok(r) => {
            say(format!(
                "publication of the demo day (provisional: the day is not over): {}/index.html (+ spreadsheet, charts, CSV; the supervisor's annex in annexe-acpr/)",
                r.dir.display()
            ));
            outcome.report_files.extend(r.files);
        }
        Err(e) => say(format!("publication: {e}")),
    }

    // A synthetic quarter, so the charts and tables look as they will after a real one.
    if let Some(q) = &opts.quarter {
        let (qperiod, label) = crate::report::parse_quarter(q)?;
        let qdb = opts.out.join(format!("synthetic-{label}.db"));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", qdb.display()));
        }
        let qstore = Store::open(&qdb).await?;
        let spec = crate::synth::SynthSpec {
            observations: 400_000,
            from_ms: time::day_start_ms(tz, qperiod.from),
            to_ms: time::day_start_ms(tz, qperiod.to),
            establishments: SEED_ESTABLISHMENT_CODES
                .iter()
                .filter_map(|c| c.parse().ok())
                .collect(),
            seed: 42,
        };
        let (spec_establishments, spec_from, spec_to) =
            (spec.establishments.clone(), spec.from_ms, spec.to_ms);
        say(format!(
            "filling {label} with 400 000 synthetic observations (marked synthetic in every output)..."
        ));
        let mut batch = Vec::with_capacity(20_000);
        for o in crate::synth::Synth::new(spec) {
            batch.push(o);
            if batch.len() == 20_000 {
                qstore
                    .insert_observations(std::mem::replace(&mut batch, Vec::with_capacity(20_000)))
                    .await?;
            }
        }
        qstore.insert_observations(batch).await?;
        // The synthetic monitor covered its series over the whole quarter, as `dispo synth`
        // records it: without coverage every day would be n.d.
        let series: Vec<_> = spec_establishments
            .iter()
            .flat_map(|e| [Interface::Api, Interface::Fallback, Interface::PsuWeb].map(|i| (*e, i)))
            .collect();
        qstore
            .record_monitor_run("synth", &series, spec_from, spec_to, "synthetic")
            .await?;
        let req = crate::report::ReportRequest {
            period: qperiod,
            label,
            establishments: vec![],
            lang: crate::report::Lang::Fr,
            out: opts.out.clone(),
            settings: cfg.counting.clone(),
        };
        let r = crate::report::generate(&qstore, &req).await?;
        say(format!(
            "quarterly publication (synthetic): {}/index.html",
            r.dir.display()
        ));
        outcome.report_files.extend(r.files);
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(outcome)
}

/// Plays a TPP: three fallback requests to 14607, recorded as the bank's gateway would log them.
async fn tpp_fallback_use(
    store: &Store,
    port: u16,
    pki: &crate::sim::PkiPaths,
) -> anyhow::Result<()> {
    use crate::stet::certs;
    let mut roots = rustls::RootCertStore::empty();
    for c in certs::read_certs(&pki.ca_cert)? {
        roots.add(c)?;
    }
    let cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            certs::read_certs(&pki.qwac_cert)?,
            certs::read_key(&pki.qwac_key)?,
        )?;
    let host = "www.14607.sim.localhost";
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(cfg)
        .redirect(reqwest::redirect::Policy::none())
        .resolve(host, SocketAddr::from(([127, 0, 0, 1], port)))
        .timeout(Duration::from_secs(5))
        .build()?;
    let mut rows = Vec::new();
    for _ in 0..3 {
        let rid = uuid::Uuid::new_v4().to_string();
        let at = chrono::Utc::now().timestamp_millis();
        let t = Instant::now();
        let r = client
            .post(format!("https://{host}:{port}/stet/psd2/oauth/token"))
            .header("fallback", "1")
            .header("x-request-id", &rid)
            .form(&[
                ("client_id", "PSDFR-ACPR-12345"),
                ("grant_type", "client_credentials"),
                ("scope", "aisp"),
            ])
            .send()
            .await;
        let status = r.as_ref().ok().map(|r| r.status().as_u16());
        rows.push(StoredObservation::from(Observation {
            received_at_ms: at,
            establishment: "14607".parse()?,
            interface: Interface::Fallback,
            service: Service::new(Service::FALLBACK)?,
            source: Source::Log,
            tpp: Some("PSDFR-ACPR-12345".into()),
            status,
            latency_ms: status.map(|_| t.elapsed().as_secs_f64() * 1000.0),
            error_code: None,
            request_id: rid.into(),
            outcome: Outcome::from_reply(status, None),
            vantage: crate::domain::Vantage::imported(Source::Log),
        }));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    store.insert_observations(rows).await?;
    Ok(())
}

//! Simulator throughput: signed funds confirmations over keep-alive mutual TLS against the
//! in-process simulator, beside the customer page (no token, no signature) served by the same
//! server in the same run. Target: at least 2 000 funds confirmations per second on 2 cores, so
//! the simulator is never the probes' bottleneck.
//! Run: `cargo bench --bench sim_throughput` (`DISPO_BENCH_SECS=3` for a quick run).

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dispo::sim::{SimOptions, Simulator};
use dispo::stet::certs;

fn client(pki: &dispo::sim::PkiPaths, port: u16) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs::read_certs(&pki.ca_cert).unwrap() {
        roots.add(c).unwrap();
    }
    let cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            certs::read_certs(&pki.qwac_cert).unwrap(),
            certs::read_key(&pki.qwac_key).unwrap(),
        )
        .unwrap();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    reqwest::Client::builder()
        .tls_backend_preconfigured(cfg)
        .resolve("www.13807.sim.localhost", addr)
        .resolve("psu.13807.sim.localhost", addr)
        .pool_max_idle_per_host(64)
        .build()
        .unwrap()
}

async fn hammer(
    secs: f64,
    conc: usize,
    make: Arc<dyn Fn() -> reqwest::RequestBuilder + Send + Sync>,
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (done, make) = (done.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < end {
                if let Ok(r) = make().send().await
                    && r.status().is_success()
                {
                    let _ = r.bytes().await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    done.load(Ordering::Relaxed) as f64 / secs
}

#[tokio::main]
async fn main() {
    dispo::install_crypto_provider();
    let secs: f64 = std::env::var("DISPO_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    let dir = std::env::temp_dir().join(format!("dispo-bench-sim-{}", std::process::id()));
    let sim = Simulator::start(SimOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: None,
        pki_dir: dir.join("pki"),
        faults: Default::default(),
    })
    .await
    .unwrap();
    let port = sim.api_addr.port();
    let c = client(&sim.pki, port);
    let base = format!("https://www.13807.sim.localhost:{port}");
    let tok: serde_json::Value = c
        .post(format!("{base}/stet/psd2/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "PSDFR-ACPR-12345"),
            ("scope", "cbpii"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = tok["access_token"].as_str().unwrap().to_owned();
    // Signed once: RSA signing is the client's cost, not the bank's; the simulator verifies each.
    let body = serde_json::to_vec(&serde_json::json!({
        "paymentCoverageRequestId": "bench", "instructedAmount": {"currency": "EUR", "amount": "10.00"},
        "accountId": {"iban": "FR7613807008043001965405255"}})).unwrap();
    let info = certs::cert_info(&certs::read_certs(&sim.pki.qseal_cert).unwrap()[0]).unwrap();
    let signer = dispo::stet::signing::Signer::from_pkcs8_pem(
        &std::fs::read(&sim.pki.qseal_key).unwrap(),
        info.key_id(),
        &[],
    )
    .unwrap();
    let mut h = http::HeaderMap::new();
    h.insert("x-request-id", "bench-request".parse().unwrap());
    h.insert("content-type", "application/json".parse().unwrap());
    h.insert("authorization", format!("Bearer {token}").parse().unwrap());
    signer
        .sign(
            &http::Method::POST,
            "/stet/psd2/v1.4.2/funds-confirmations",
            &mut h,
            &body,
        )
        .unwrap();
    let conc = 32;
    let (c1, b1, h1, body1) = (c.clone(), base.clone(), h.clone(), body.clone());
    let funds = hammer(
        secs,
        conc,
        Arc::new(move || {
            c1.post(format!("{b1}/stet/psd2/v1.4.2/funds-confirmations"))
                .headers(h1.clone())
                .body(body1.clone())
        }),
    )
    .await;
    let c2 = c.clone();
    let psu = format!("https://psu.13807.sim.localhost:{port}/se-connecter/sso");
    let page = hammer(secs, conc, Arc::new(move || c2.get(&psu))).await;
    println!("\nsimulator: {conc} keep-alive mTLS connections, {secs} s each");
    common::row(
        "simulator funds confirmations/s (signed, verified, keep-alive mTLS)",
        &format!("{funds:.0}"),
        &format!("{page:.0} (customer page, same server)"),
        &format!("{:.2}", funds / page.max(1.0)),
        ">= 2000 /s",
    );
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

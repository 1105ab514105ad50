//! Starting the real `dispo simulate` binary and talking to it over real mutual TLS, for every
//! test that needs a bank: a guard that kills the process on drop, an mTLS client, signed
//! funds-confirmation requests.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use dispo::stet::certs;
use dispo::stet::signing::Signer;
use serde_json::Value;

use crate::support;

/// One sandbox PKI for the whole test binary (RSA key generation is not free), created in-process
/// before any simulator starts so that no two processes write it at once.
pub fn shared_pki() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("dispo-it-pki-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dispo::sim::pki::ensure(&dir).expect("sandbox PKI");
        dir
    })
    .clone()
}

/// A running simulator; killed when dropped.
pub struct Sim {
    child: Child,
    pub port: u16,
    pub admin: u16,
    pub pki: PathBuf,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sim {
    pub fn start() -> Sim {
        Self::start_with(None)
    }

    /// Starts with a fault plan file (TOML text) if given, and waits until it serves.
    pub fn start_with(faults: Option<&str>) -> Sim {
        support::init();
        let pki = shared_pki();
        let (port, admin) = (support::free_port(), support::free_port());
        let mut cmd = Command::new(support::dispo_bin());
        cmd.args([
            "simulate",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--admin-listen",
            &format!("127.0.0.1:{admin}"),
        ])
        .arg("--pki-dir")
        .arg(&pki)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if let Some(text) = faults {
            let f = pki.join(format!("faults-{port}.toml"));
            std::fs::write(&f, text).unwrap();
            cmd.arg("--faults").arg(f);
        }
        let child = cmd.spawn().expect("start dispo simulate");
        let sim = Sim {
            child,
            port,
            admin,
            pki,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", admin)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the simulator did not start within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        sim
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn base(&self, code: &str) -> String {
        format!("https://www.{code}.sim.localhost:{}", self.port)
    }

    pub fn psu_base(&self, code: &str) -> String {
        format!("https://psu.{code}.sim.localhost:{}", self.port)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.admin)
    }

    /// Replaces the fault plan through the admin API.
    pub async fn set_faults(&self, plan: Value) {
        let r = reqwest::Client::new()
            .put(self.admin_url("/faults"))
            .json(&plan)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "PUT /faults: {}",
            r.text().await.unwrap()
        );
    }

    pub async fn access_log(&self) -> Vec<Value> {
        reqwest::Client::new()
            .get(self.admin_url("/access-log"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// An HTTPS client trusting the sandbox CA, resolving every simulated host to this simulator,
    /// presenting the sandbox QWAC when `with_cert`.
    pub fn client(&self, with_cert: bool) -> reqwest::Client {
        self.client_with(with_cert, Duration::from_secs(10))
    }

    pub fn client_with(&self, with_cert: bool, timeout: Duration) -> reqwest::Client {
        let p = &self.pki;
        let mut roots = rustls::RootCertStore::empty();
        for c in certs::read_certs(&p.join("ca.pem")).unwrap() {
            roots.add(c).unwrap();
        }
        let b = rustls::ClientConfig::builder().with_root_certificates(roots);
        let mut cfg = if with_cert {
            b.with_client_auth_cert(
                certs::read_certs(&p.join("tpp-qwac.pem")).unwrap(),
                certs::read_key(&p.join("tpp-qwac.key")).unwrap(),
            )
            .unwrap()
        } else {
            b.with_no_client_auth()
        };
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(cfg)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout);
        for e in dispo::domain::KNOWN_ESTABLISHMENTS {
            builder = builder
                .resolve(&format!("www.{}.sim.localhost", e.code), self.addr())
                .resolve(&format!("psu.{}.sim.localhost", e.code), self.addr());
        }
        builder.build().unwrap()
    }

    /// The sandbox TPP's request signer (QSealC, keyId `SN=..,CA=..`).
    pub fn signer(&self) -> Arc<Signer> {
        signer_for(&self.pki)
    }

    /// An access token by client credentials.
    pub async fn token(&self, client: &reqwest::Client, code: &str, scope: &str) -> String {
        let r = client
            .post(format!("{}/stet/psd2/oauth/token", self.base(code)))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "PSDFR-ACPR-12345"),
                ("scope", scope),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        v["access_token"].as_str().unwrap().to_owned()
    }

    /// A signed funds-confirmation request; `path` is the STET path.
    pub async fn funds(
        &self,
        client: &reqwest::Client,
        code: &str,
        path: &str,
        token: &str,
        body: &Value,
    ) -> reqwest::Response {
        let bytes = serde_json::to_vec(body).unwrap();
        let mut h = http::HeaderMap::new();
        h.insert(
            "x-request-id",
            uuid::Uuid::new_v4().to_string().parse().unwrap(),
        );
        h.insert("content-type", "application/json".parse().unwrap());
        h.insert("authorization", format!("Bearer {token}").parse().unwrap());
        h.insert("psu-ip-address", "192.0.2.10".parse().unwrap());
        self.signer()
            .sign(&http::Method::POST, path, &mut h, &bytes)
            .unwrap();
        client
            .post(format!("{}{path}", self.base(code)))
            .headers(h)
            .body(bytes)
            .send()
            .await
            .unwrap()
    }
}

pub fn signer_for(pki: &Path) -> Arc<Signer> {
    let info =
        certs::cert_info(&certs::read_certs(&pki.join("tpp-qseal.pem")).unwrap()[0]).unwrap();
    let pem = std::fs::read(pki.join("tpp-qseal.key")).unwrap();
    Arc::new(Signer::from_pkcs8_pem(&pem, info.key_id(), &[]).unwrap())
}

/// A funds-confirmation body.
pub fn body(iban: &str, amount: &str) -> Value {
    serde_json::json!({
        "paymentCoverageRequestId": "MyCoverage123456",
        "instructedAmount": {"currency": "EUR", "amount": amount},
        "accountId": {"iban": iban}
    })
}

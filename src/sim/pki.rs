//! The sandbox PKI: a test CA, the bank's server certificate, and a sandbox TPP's QWAC (TLS
//! client) and QSealC (request signing), both carrying organization identifier
//! `PSDFR-ACPR-12345` and the PSD2 QCStatement with the PSP_IC role. Created in `--pki-dir` when
//! missing, reused when present (so probes configured against it keep working across restarts).

use std::path::{Path, PathBuf};

use chrono::Datelike;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};

use crate::domain::KNOWN_ESTABLISHMENTS;
use crate::stet::certs::{self, CertInfo, Psd2Role};

/// The sandbox TPP's organization identifier (its `client_id`).
pub const SANDBOX_TPP_ID: &str = "PSDFR-ACPR-12345";

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("cannot create or write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("certificate generation failed: {0}")]
    Generate(String),
    #[error(transparent)]
    Cert(#[from] certs::CertError),
}

/// Where the PKI files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiPaths {
    pub dir: PathBuf,
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub qwac_cert: PathBuf,
    pub qwac_key: PathBuf,
    pub qseal_cert: PathBuf,
    pub qseal_key: PathBuf,
}

impl PkiPaths {
    pub fn in_dir(dir: &Path) -> Self {
        let p = |n: &str| dir.join(n);
        Self {
            dir: dir.to_owned(),
            ca_cert: p("ca.pem"),
            ca_key: p("ca.key"),
            server_cert: p("server.pem"),
            server_key: p("server.key"),
            qwac_cert: p("tpp-qwac.pem"),
            qwac_key: p("tpp-qwac.key"),
            qseal_cert: p("tpp-qseal.pem"),
            qseal_key: p("tpp-qseal.key"),
        }
    }

    fn all(&self) -> [&PathBuf; 8] {
        [
            &self.ca_cert,
            &self.ca_key,
            &self.server_cert,
            &self.server_key,
            &self.qwac_cert,
            &self.qwac_key,
            &self.qseal_cert,
            &self.qseal_key,
        ]
    }
}

/// The simulated API host of an establishment.
pub fn api_host(code: &str) -> String {
    format!("www.{code}.sim.localhost")
}

/// The simulated online-banking (customer web interface) host of an establishment.
pub fn psu_host(code: &str) -> String {
    format!("psu.{code}.sim.localhost")
}

/// Creates the PKI in `dir` unless every file is already there. Returns the paths.
pub fn ensure(dir: &Path) -> Result<PkiPaths, PkiError> {
    let paths = PkiPaths::in_dir(dir);
    if paths.all().iter().all(|p| p.exists()) {
        return Ok(paths);
    }
    std::fs::create_dir_all(dir).map_err(|source| PkiError::Io {
        path: dir.into(),
        source,
    })?;
    let gen_err = |e: rcgen::Error| PkiError::Generate(e.to_string());
    let year = chrono::Utc::now().year();
    let validity = |p: &mut CertificateParams| {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(year + 3, 1, 1);
    };

    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
    ca.distinguished_name
        .push(DnType::CommonName, "dispo sandbox CA");
    ca.distinguished_name
        .push(DnType::OrganizationName, "dispo sandbox");
    ca.distinguished_name.push(DnType::CountryName, "FR");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut ca);
    let ca_key = KeyPair::generate().map_err(gen_err)?;
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = CertifiedIssuer::self_signed(ca, ca_key).map_err(gen_err)?;

    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    for e in KNOWN_ESTABLISHMENTS {
        names.push(api_host(e.code));
        names.push(psu_host(e.code));
    }
    let mut server = CertificateParams::new(names).map_err(gen_err)?;
    server
        .subject_alt_names
        .retain(|s| !matches!(s, SanType::DnsName(n) if n.as_ref() == "127.0.0.1"));
    server
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    server
        .distinguished_name
        .push(DnType::CommonName, "dispo sandbox bank");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    validity(&mut server);
    let server_key = KeyPair::generate().map_err(gen_err)?;
    let server_cert = server.signed_by(&server_key, &issuer).map_err(gen_err)?;

    let tpp_params = |client: bool| -> Result<CertificateParams, PkiError> {
        let mut p = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
        p.distinguished_name.push(DnType::CommonName, "Sandbox TPP");
        p.distinguished_name
            .push(DnType::OrganizationName, "Sandbox TPP SAS");
        p.distinguished_name.push(DnType::CountryName, "FR");
        p.distinguished_name
            .push(DnType::CustomDnType(vec![2, 5, 4, 97]), SANDBOX_TPP_ID);
        p.custom_extensions.push(CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 5, 5, 7, 1, 3],
            certs::psd2_qc_statements(
                &[Psd2Role::CardIssuer],
                "Autorité de contrôle prudentiel et de résolution",
                "FR-ACPR",
            ),
        ));
        if client {
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        } else {
            p.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::ContentCommitment,
            ];
        }
        validity(&mut p);
        Ok(p)
    };
    let qwac_key = KeyPair::generate().map_err(gen_err)?;
    let qwac = tpp_params(true)?
        .signed_by(&qwac_key, &issuer)
        .map_err(gen_err)?;

    // ring cannot generate RSA keys; the `rsa` crate does, and rcgen signs with it.
    let qseal_pem = {
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};
        let k = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
            .map_err(|e| PkiError::Generate(e.to_string()))?;
        k.to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| PkiError::Generate(e.to_string()))?
            .to_string()
    };
    let qseal_key = KeyPair::from_pkcs8_pem_and_sign_algo(&qseal_pem, &rcgen::PKCS_RSA_SHA256)
        .map_err(gen_err)?;
    let qseal = tpp_params(false)?
        .signed_by(&qseal_key, &issuer)
        .map_err(gen_err)?;

    // Keys readable by their owner only (0600), certificates by all: a key is a secret even in
    // a sandbox, and `check-config` warns about keys others can read.
    let write = |path: &Path, text: &str| {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        let key = path.extension().is_some_and(|x| x == "key");
        #[cfg(unix)]
        if key {
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        }
        std::io::Write::write_all(&mut o.open(path)?, text.as_bytes())?;
        // A key written over an older one keeps the older file's mode: set it.
        #[cfg(unix)]
        if key {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
        Ok::<(), std::io::Error>(())
    };
    let write = |path: &Path, text: &str| {
        write(path, text).map_err(|source| PkiError::Io {
            path: path.into(),
            source,
        })
    };
    write(&paths.ca_cert, &issuer.pem())?;
    write(&paths.ca_key, &ca_key_pem)?;
    write(&paths.server_cert, &server_cert.pem())?;
    write(&paths.server_key, &server_key.serialize_pem())?;
    write(&paths.qwac_cert, &qwac.pem())?;
    write(&paths.qwac_key, &qwac_key.serialize_pem())?;
    write(&paths.qseal_cert, &qseal.pem())?;
    write(&paths.qseal_key, &qseal_pem)?;
    restrict_keys(&paths);
    tracing::info!(dir = %dir.display(), "created the sandbox PKI");
    Ok(paths)
}

/// Private keys readable by their owner only.
fn restrict_keys(paths: &PkiPaths) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for k in [
            &paths.ca_key,
            &paths.server_key,
            &paths.qwac_key,
            &paths.qseal_key,
        ] {
            let _ = std::fs::set_permissions(k, std::fs::Permissions::from_mode(0o600));
        }
    }
}

/// The sandbox QSealC as the simulator verifies signatures with it.
pub fn qseal_info(paths: &PkiPaths) -> Result<CertInfo, PkiError> {
    let der = certs::read_certs(&paths.qseal_cert)?.remove(0);
    Ok(certs::cert_info(&der)?)
}

/// The `[[establishment]]` table of a probe configuration that probes establishment `code` of
/// a simulator on `port` with this PKI (used by the demo, the tests and the benchmarks).
pub fn probe_establishment_toml(code: &str, port: u16, pki: &Path) -> String {
    let p = pki.display();
    format!(
        "\n[[establishment]]\ncode = \"{code}\"\nbase_url = \"https://{api}:{port}\"\npsu_url = \"https://{psu}:{port}/se-connecter/sso\"\n\
         resolve = \"127.0.0.1\"\nca = \"{p}/ca.pem\"\nclient_id = \"{SANDBOX_TPP_ID}\"\nqwac_cert = \"{p}/tpp-qwac.pem\"\n\
         qwac_key = \"{p}/tpp-qwac.key\"\nqseal_cert = \"{p}/tpp-qseal.pem\"\nqseal_key = \"{p}/tpp-qseal.key\"\n",
        api = api_host(code),
        psu = psu_host(code),
    )
}

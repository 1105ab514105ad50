//! eIDAS certificates as PSD2 uses them: reading PEM files, and what a bank checks in a TPP's
//! QWAC (TLS client) or QSealC (request signing): the organization identifier
//! (`PSDFR-ACPR-12345`, OID 2.5.4.97), the PSD2 QCStatement roles (ETSI TS 119 495), serial,
//! issuer and expiry. Also builds the QCStatement extension for the simulator's test certificates.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::prelude::*;

use super::der;

/// A certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)")]
    NoCertificate { path: PathBuf },
    #[error(
        "{path} holds no PEM private key (expected PKCS#8 -----BEGIN PRIVATE KEY----- or PKCS#1/SEC1)"
    )]
    NoKey { path: PathBuf },
    #[error("the certificate is not valid DER X.509: {0}")]
    Parse(String),
}

/// The PSD2 roles of ETSI TS 119 495 (QCStatement `0.4.0.19495.2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Psd2Role {
    /// Account servicing (PSP_AS, 0.4.0.19495.1.1).
    AccountServicing,
    /// Payment initiation (PSP_PI, .1.2).
    PaymentInitiation,
    /// Account information (PSP_AI, .1.3).
    AccountInformation,
    /// Card-based payment instrument issuer, the CBPII/PIISP of funds confirmation (PSP_IC, .1.4).
    CardIssuer,
}

impl Psd2Role {
    pub fn oid_arcs(self) -> [u64; 6] {
        let last = match self {
            Psd2Role::AccountServicing => 1,
            Psd2Role::PaymentInitiation => 2,
            Psd2Role::AccountInformation => 3,
            Psd2Role::CardIssuer => 4,
        };
        [0, 4, 0, 19495, 1, last]
    }
    pub fn name(self) -> &'static str {
        match self {
            Psd2Role::AccountServicing => "PSP_AS",
            Psd2Role::PaymentInitiation => "PSP_PI",
            Psd2Role::AccountInformation => "PSP_AI",
            Psd2Role::CardIssuer => "PSP_IC",
        }
    }
    fn from_oid(oid: &str) -> Option<Self> {
        Some(match oid {
            "0.4.0.19495.1.1" => Psd2Role::AccountServicing,
            "0.4.0.19495.1.2" => Psd2Role::PaymentInitiation,
            "0.4.0.19495.1.3" => Psd2Role::AccountInformation,
            "0.4.0.19495.1.4" => Psd2Role::CardIssuer,
            _ => return None,
        })
    }
}

/// What dispo reads from a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Serial number in lower-case hexadecimal, no prefix, no leading zeros.
    pub serial_hex: String,
    pub issuer_dn: String,
    pub subject_dn: String,
    /// The organization identifier (2.5.4.97), e.g. `PSDFR-ACPR-12345`.
    pub organization_identifier: Option<String>,
    pub psd2_roles: Vec<Psd2Role>,
    pub not_before_ms: i64,
    pub not_after_ms: i64,
    /// The subject public key bits: for RSA, the PKCS#1 `RSAPublicKey` that ring verifies with.
    pub public_key: Vec<u8>,
    pub is_rsa: bool,
}

impl CertInfo {
    /// The `keyId` this bank expects in a `Signature` header: `SN=<serial hex>,CA=<issuer DN>`.
    pub fn key_id(&self) -> String {
        format!("SN={},CA={}", self.serial_hex, self.issuer_dn)
    }
}

/// Reads every certificate of a PEM file.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let bytes = std::fs::read(path).map_err(|source| CertError::Read {
        path: path.into(),
        source,
    })?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(CertError::NoCertificate { path: path.into() });
    }
    Ok(certs)
}

/// Reads the first private key of a PEM file.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, CertError> {
    let bytes = std::fs::read(path).map_err(|source| CertError::Read {
        path: path.into(),
        source,
    })?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| CertError::NoKey { path: path.into() })
}

/// Parses what dispo needs from a DER certificate.
pub fn cert_info(der_bytes: &[u8]) -> Result<CertInfo, CertError> {
    let (_, cert) =
        X509Certificate::from_der(der_bytes).map_err(|e| CertError::Parse(e.to_string()))?;
    let organization_identifier = cert
        .subject()
        .iter_attributes()
        .find(|a| a.attr_type().to_id_string() == "2.5.4.97")
        .and_then(|a| a.as_str().ok().map(str::to_owned));
    let mut psd2_roles = Vec::new();
    for ext in cert.extensions() {
        if ext.oid.to_id_string() == "1.3.6.1.5.5.7.1.3" {
            psd2_roles.extend(parse_psd2_roles(ext.value));
        }
    }
    psd2_roles.sort();
    psd2_roles.dedup();
    let spki = cert.public_key();
    Ok(CertInfo {
        serial_hex: cert.serial.to_str_radix(16),
        issuer_dn: cert.issuer().to_string(),
        subject_dn: cert.subject().to_string(),
        organization_identifier,
        psd2_roles,
        not_before_ms: cert.validity().not_before.timestamp() * 1000,
        not_after_ms: cert.validity().not_after.timestamp() * 1000,
        public_key: spki.subject_public_key.data.to_vec(),
        is_rsa: spki.algorithm.algorithm.to_id_string() == "1.2.840.113549.1.1.1",
    })
}

/// The `qcStatements` extension value (1.3.6.1.5.5.7.1.3) holding the PSD2 statement with the
/// given roles and competent authority, as ETSI TS 119 495 lays it out.
pub fn psd2_qc_statements(roles: &[Psd2Role], nca_name: &str, nca_id: &str) -> Vec<u8> {
    let role_seq: Vec<u8> = roles
        .iter()
        .flat_map(|r| {
            let mut body = der::encode_oid(&r.oid_arcs());
            body.extend(der::encode(der::UTF8_STRING, r.name().as_bytes()));
            der::encode(der::SEQUENCE, &body)
        })
        .collect();
    let mut psd2 = der::encode(der::SEQUENCE, &role_seq);
    psd2.extend(der::encode(der::UTF8_STRING, nca_name.as_bytes()));
    psd2.extend(der::encode(der::UTF8_STRING, nca_id.as_bytes()));
    let mut statement = der::encode_oid(&[0, 4, 0, 19495, 2]);
    statement.extend(der::encode(der::SEQUENCE, &psd2));
    der::encode(der::SEQUENCE, &der::encode(der::SEQUENCE, &statement))
}

/// The PSD2 roles found in a `qcStatements` extension value; malformed parts are skipped.
fn parse_psd2_roles(value: &[u8]) -> Vec<Psd2Role> {
    let mut roles = Vec::new();
    let Some(outer) = der::parse_all(value) else {
        return roles;
    };
    for statements in outer.iter().filter(|t| t.tag == der::SEQUENCE) {
        for st in der::parse_all(statements.content).unwrap_or_default() {
            let Some(parts) = der::parse_all(st.content) else {
                continue;
            };
            let is_psd2 = parts.first().is_some_and(|p| {
                p.tag == der::OID && der::oid_to_string(p.content) == "0.4.0.19495.2"
            });
            let Some(info) = parts.get(1).filter(|_| is_psd2) else {
                continue;
            };
            let Some(fields) = der::parse_all(info.content) else {
                continue;
            };
            let Some(role_list) = fields.first() else {
                continue;
            };
            for role in der::parse_all(role_list.content).unwrap_or_default() {
                if let Some(oid) = der::parse_all(role.content).and_then(|r| r.into_iter().next()) {
                    roles.extend(Psd2Role::from_oid(&der::oid_to_string(oid.content)));
                }
            }
        }
    }
    roles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qc_statement_round_trip() {
        let v = psd2_qc_statements(
            &[Psd2Role::CardIssuer, Psd2Role::AccountInformation],
            "ACPR",
            "FR-ACPR",
        );
        assert_eq!(
            parse_psd2_roles(&v),
            vec![Psd2Role::CardIssuer, Psd2Role::AccountInformation]
        );
        assert!(parse_psd2_roles(&[0x30, 0x01]).is_empty());
    }
}

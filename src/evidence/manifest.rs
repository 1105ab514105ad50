//! `MANIFEST.sha256`: one `<sha256 hex>  <relative path>` line per file of a pack, sorted by
//! path, exactly as `sha256sum` writes them (so `sha256sum -c MANIFEST.sha256` checks a pack
//! without dispo). [`verify`] reports every altered, missing or extra file, and refuses paths
//! leading out of the pack.
//!
//! Sealed packs ([`seal`]): the bank's QSealC key signs the manifest (RSA PKCS#1 v1.5 with
//! SHA-256, the raw signature in `MANIFEST.sha256.sig`), and its certificate goes beside it in
//! `MANIFEST.sha256.pem`; `openssl dgst -sha256 -verify <(openssl x509 -in MANIFEST.sha256.pem
//! -pubkey -noout) -signature MANIFEST.sha256.sig MANIFEST.sha256` checks it without dispo. An
//! edited pack with a recomputed manifest no longer matches the signature; a pack re-signed with
//! another key names another signer, which [`check_seal`] shows (and refuses when the expected
//! certificate is given).
//!
//! In: a directory. Out: the manifest file, or a [`Verification`].

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use ring::digest;

use super::EvidenceError;

pub const MANIFEST: &str = "MANIFEST.sha256";
/// The detached signature of the manifest.
pub const SIGNATURE: &str = "MANIFEST.sha256.sig";
/// The certificate of the key that signed it.
pub const SIGNER_CERT: &str = "MANIFEST.sha256.pem";

/// SHA-256 of a file, lower-case hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    Ok(hex(ctx.finish().as_ref()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Every regular file under `dir` except the manifest, as `/`-separated relative paths, sorted.
fn files_under(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(dir.join(&rel))? {
            let entry = entry?;
            let r = rel.join(entry.file_name());
            let ty = entry.file_type()?;
            if ty.is_dir() {
                stack.push(r);
            } else {
                let s = r
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                if s != MANIFEST && s != SIGNATURE && s != SIGNER_CERT {
                    out.push(s);
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Writes `MANIFEST.sha256` over every file of `dir`; returns its path.
pub fn write(dir: &Path) -> Result<PathBuf, EvidenceError> {
    let werr = |path: &Path| {
        let path = path.display().to_string();
        move |source| EvidenceError::Write { path, source }
    };
    let mut text = String::new();
    for rel in files_under(dir).map_err(werr(dir))? {
        let h = sha256_file(&dir.join(&rel)).map_err(werr(&dir.join(&rel)))?;
        text.push_str(&format!("{h}  {rel}\n"));
    }
    let path = dir.join(MANIFEST);
    std::fs::write(&path, text).map_err(werr(&path))?;
    Ok(path)
}

/// Who signed a manifest, as their certificate says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    pub subject: String,
    pub organization_identifier: Option<String>,
    pub issuer: String,
    pub serial_hex: String,
    pub not_after_ms: i64,
    /// SHA-256 of the certificate (DER), as `openssl x509 -fingerprint -sha256` shows it: what
    /// tells two certificates with the same names apart.
    pub fingerprint: String,
}

impl std::fmt::Display for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.subject)?;
        if let Some(o) = &self.organization_identifier {
            write!(f, " (organizationIdentifier {o})")?;
        }
        write!(
            f,
            ", certificate serial {} issued by {}, SHA-256 fingerprint {}",
            self.serial_hex, self.issuer, self.fingerprint
        )
    }
}

/// The SHA-256 fingerprint of a DER certificate, `AB:CD:...`.
fn fingerprint(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn signer_of(info: &crate::stet::certs::CertInfo, der: &[u8]) -> Signer {
    Signer {
        fingerprint: fingerprint(der),
        subject: info.subject_dn.clone(),
        organization_identifier: info.organization_identifier.clone(),
        issuer: info.issuer_dn.clone(),
        serial_hex: info.serial_hex.clone(),
        not_after_ms: info.not_after_ms,
    }
}

/// Signs `dir`'s manifest with the QSealC key (PKCS#8 PEM, RSA) and puts the certificate (PEM)
/// beside it. The key must match the certificate. Returns who signed.
pub fn seal(dir: &Path, key: &Path, cert: &Path) -> Result<Signer, EvidenceError> {
    use crate::stet::certs;
    let e = |s: String| EvidenceError::Seal(s);
    let chain = certs::read_certs(cert).map_err(|x| e(x.to_string()))?;
    let info = certs::cert_info(&chain[0]).map_err(|x| e(x.to_string()))?;
    let der = match certs::read_key(key).map_err(|x| e(x.to_string()))? {
        rustls_pki_types::PrivateKeyDer::Pkcs8(k) => k,
        _ => {
            return Err(e(format!(
                "{}: a PKCS#8 RSA key is needed (-----BEGIN PRIVATE KEY-----)",
                key.display()
            )));
        }
    };
    let pair = ring::signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
        .map_err(|x| e(format!("{}: not an RSA key ring takes: {x}", key.display())))?;
    let manifest = std::fs::read(dir.join(MANIFEST)).map_err(|source| EvidenceError::Write {
        path: dir.join(MANIFEST).display().to_string(),
        source,
    })?;
    let mut sig = vec![0u8; pair.public().modulus_len()];
    pair.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        &manifest,
        &mut sig,
    )
    .map_err(|_| e("signing failed".into()))?;
    // A key that is not the certificate's would make a pack nobody can check.
    verify_signature(&info, &manifest, &sig).map_err(|_| {
        e(format!(
            "the key {} does not belong to the certificate {}",
            key.display(),
            cert.display()
        ))
    })?;
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).map_err(|source| EvidenceError::Write {
            path: p.display().to_string(),
            source,
        })
    };
    write(SIGNATURE, &sig)?;
    let pem: String = chain
        .iter()
        .map(|c| {
            use base64::Engine as _;
            let b = base64::engine::general_purpose::STANDARD.encode(c.as_ref());
            let lines: Vec<&str> = b
                .as_bytes()
                .chunks(64)
                .map(|l| std::str::from_utf8(l).unwrap_or_default())
                .collect();
            format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                lines.join("\n")
            )
        })
        .collect();
    write(SIGNER_CERT, pem.as_bytes())?;
    Ok(signer_of(&info, chain[0].as_ref()))
}

fn verify_signature(
    info: &crate::stet::certs::CertInfo,
    msg: &[u8],
    sig: &[u8],
) -> Result<(), ring::error::Unspecified> {
    if !info.is_rsa {
        return Err(ring::error::Unspecified);
    }
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        &info.public_key,
    )
    .verify(msg, sig)
}

/// What the seal of a pack says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seal {
    /// No signature file: the pack was not sealed.
    Unsealed,
    /// The manifest is exactly what this signer signed.
    Valid(Signer),
    /// The signature does not match the manifest (or the certificate), or the signer is not the
    /// expected one: why.
    Invalid(String),
}

/// Checks the manifest's signature against the certificate in the pack, or against `expected`
/// (a PEM certificate file) when given: then a pack signed by anyone else is refused.
pub fn check_seal(dir: &Path, expected: Option<&Path>) -> Seal {
    use crate::stet::certs;
    let sig_path = dir.join(SIGNATURE);
    let Ok(sig) = std::fs::read(&sig_path) else {
        return match expected {
            Some(_) => Seal::Invalid(format!(
                "no {SIGNATURE}: the pack is not sealed, and a signer was expected"
            )),
            None => Seal::Unsealed,
        };
    };
    let cert_path = expected.map_or_else(|| dir.join(SIGNER_CERT), Path::to_path_buf);
    let read = |p: &Path| {
        certs::read_certs(p)
            .map_err(|e| e.to_string())
            .and_then(|c| {
                let der = c[0].as_ref().to_vec();
                certs::cert_info(&c[0])
                    .map(|i| (i, der))
                    .map_err(|e| e.to_string())
            })
    };
    let (info, der) = match read(&cert_path) {
        Ok(i) => i,
        Err(e) => return Seal::Invalid(format!("cannot read the signer's certificate: {e}")),
    };
    // The certificate given is not the one the pack carries: said plainly, whatever the names
    // in them (anyone can make a certificate with the bank's names).
    if expected.is_some()
        && let Ok((_, in_pack)) = read(&dir.join(SIGNER_CERT))
        && in_pack != der
    {
        return Seal::Invalid(format!(
            "the pack carries another certificate than the one given (SHA-256 fingerprint {} in the pack, {} given): it was not sealed with the bank's key",
            fingerprint(&in_pack),
            fingerprint(&der)
        ));
    }
    let Ok(manifest) = std::fs::read(dir.join(MANIFEST)) else {
        return Seal::Invalid(format!("no {MANIFEST}"));
    };
    match verify_signature(&info, &manifest, &sig) {
        Ok(()) => Seal::Valid(signer_of(&info, &der)),
        Err(_) => Seal::Invalid(format!(
            "{SIGNATURE} does not match {MANIFEST} under the key of {} (the manifest was changed after it was signed, or signed by another key)",
            signer_of(&info, &der)
        )),
    }
}

/// What `verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verification {
    pub ok: Vec<String>,
    /// Files whose digest differs from the manifest's.
    pub altered: Vec<String>,
    /// Files in the manifest but not in the directory.
    pub missing: Vec<String>,
    /// Files in the directory but not in the manifest.
    pub extra: Vec<String>,
    /// Manifest lines that could not be read (line number, text).
    pub malformed: Vec<(usize, String)>,
    /// Manifest lines naming a file outside the pack (absolute, `..`): never opened (line
    /// number, path).
    pub outside: Vec<(usize, String)>,
}

impl Verification {
    pub fn is_intact(&self) -> bool {
        self.altered.is_empty()
            && self.missing.is_empty()
            && self.extra.is_empty()
            && self.malformed.is_empty()
            && self.outside.is_empty()
    }
}

/// A manifest path that stays inside the pack: relative, `/`-separated, no `..`, `.` or empty
/// segment, no backslash or drive (`C:`), no control character.
fn inside_pack(name: &str) -> bool {
    let drive = name.len() >= 2 && name.as_bytes()[1] == b':';
    let bad_segment = name
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..");
    let bad_char = name.contains('\\') || name.chars().any(char::is_control);
    !(name.starts_with('/') || drive || bad_segment || bad_char)
}

/// Why a pack cannot be checked at all.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{path}: no {MANIFEST} there (is this an evidence pack?): {source}")]
    NoManifest {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

/// Checks every file of `dir` against its manifest.
/// Whether `name` (relative, `/`-separated) passes through a symbolic link under `dir`.
fn through_symlink(dir: &Path, name: &str) -> bool {
    let mut p = dir.to_path_buf();
    name.split('/').any(|part| {
        p.push(part);
        std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink())
    })
}

pub fn verify(dir: &Path) -> Result<Verification, VerifyError> {
    let mpath = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&mpath).map_err(|source| VerifyError::NoManifest {
        path: dir.display().to_string(),
        source,
    })?;
    let mut listed = BTreeMap::new();
    let mut v = Verification::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        // `sha256sum` writes "<hex>  <name>" (text mode) or "<hex> *<name>" (binary mode).
        let parsed = line.split_once(' ').and_then(|(h, rest)| {
            let name = rest.strip_prefix(' ').or_else(|| rest.strip_prefix('*'))?;
            (h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) && !name.is_empty())
                .then(|| (name.to_owned(), h.to_ascii_lowercase()))
        });
        match parsed {
            Some((name, _)) if !inside_pack(&name) => v.outside.push((i + 1, name)),
            Some((name, h)) => {
                listed.insert(name, h);
            }
            None => v.malformed.push((i + 1, line.to_owned())),
        }
    }
    // A symbolic link inside the pack leads out of it as surely as `..` does: refused, and
    // what it points to never read.
    let linked: Vec<String> = listed
        .keys()
        .filter(|n| through_symlink(dir, n))
        .cloned()
        .collect();
    for name in linked {
        listed.remove(&name);
        let line = text
            .lines()
            .position(|l| l.ends_with(name.as_str()))
            .map_or(0, |i| i + 1);
        v.outside.push((line, name));
    }
    for (name, want) in &listed {
        let p = dir.join(name);
        if !p.is_file() {
            v.missing.push(name.clone());
            continue;
        }
        let got = sha256_file(&p).map_err(|source| VerifyError::Read {
            path: p.display().to_string(),
            source,
        })?;
        if &got == want {
            v.ok.push(name.clone());
        } else {
            v.altered.push(name.clone());
        }
    }
    let present = files_under(dir).map_err(|source| VerifyError::Read {
        path: dir.display().to_string(),
        source,
    })?;
    v.extra = present
        .into_iter()
        .filter(|f| !listed.contains_key(f))
        .collect();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_abc() {
        // FIPS 180-2 test vector.
        let dir = std::env::temp_dir().join(format!("dispo-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.txt"), "abc").unwrap();
        assert_eq!(
            sha256_file(&dir.join("a.txt")).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        write(&dir).unwrap();
        assert!(verify(&dir).unwrap().is_intact());
        std::fs::write(dir.join("a.txt"), "abd").unwrap();
        std::fs::write(dir.join("b.txt"), "x").unwrap();
        let v = verify(&dir).unwrap();
        assert_eq!(v.altered, vec!["a.txt".to_string()]);
        assert_eq!(v.extra, vec!["b.txt".to_string()]);
        // A file replaced by a symbolic link to a copy outside the pack is refused, not read.
        #[cfg(unix)]
        {
            std::fs::remove_file(dir.join("b.txt")).unwrap();
            std::fs::write(dir.join("a.txt"), "abc").unwrap();
            let outside = dir.with_extension("outside");
            std::fs::write(&outside, "abc").unwrap();
            std::fs::remove_file(dir.join("a.txt")).unwrap();
            std::os::unix::fs::symlink(&outside, dir.join("a.txt")).unwrap();
            let v = verify(&dir).unwrap();
            assert!(!v.is_intact());
            assert_eq!(v.outside, vec![(1, "a.txt".to_string())]);
            assert!(v.ok.is_empty());
            let _ = std::fs::remove_file(&outside);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Paths leading out of the pack are refused with their line, never opened.
    #[test]
    fn paths_outside_the_pack_are_refused() {
        let dir = std::env::temp_dir().join(format!("dispo-manifest-out-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a.txt"), "abc").unwrap();
        std::fs::write(dir.join("sub/b.txt"), "b").unwrap();
        write(&dir).unwrap();
        assert!(verify(&dir).unwrap().is_intact(), "sub/b.txt is inside");
        let h = sha256_file(&dir.join("a.txt")).unwrap();
        let mut m = std::fs::read_to_string(dir.join(MANIFEST)).unwrap();
        for bad in [
            "../a.txt",
            "/etc/passwd",
            "sub/../../x",
            "./a.txt",
            "C:/x",
            "a\\..\\b",
        ] {
            m.push_str(&format!("{h}  {bad}\n"));
        }
        std::fs::write(dir.join(MANIFEST), m).unwrap();
        let v = verify(&dir).unwrap();
        assert!(!v.is_intact());
        let refused: Vec<(usize, &str)> = v.outside.iter().map(|(l, p)| (*l, p.as_str())).collect();
        assert_eq!(
            refused,
            [
                (3, "../a.txt"),
                (4, "/etc/passwd"),
                (5, "sub/../../x"),
                (6, "./a.txt"),
                (7, "C:/x"),
                (8, "a\\..\\b")
            ]
        );
        assert!(v.missing.is_empty() && v.altered.is_empty(), "{v:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

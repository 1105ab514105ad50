//! `MANIFEST.sha256`: one `<sha256 hex>  <relative path>` line per file of a pack, sorted by
//! path, exactly as `sha256sum` writes them (so `sha256sum -c MANIFEST.sha256` checks a pack
//! without dispo). [`verify`] reports every altered, missing or extra file.
//!
//! In: a directory. Out: the manifest file, or a [`Verification`].

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use ring::digest;

use super::EvidenceError;

pub const MANIFEST: &str = "MANIFEST.sha256";

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
                if s != MANIFEST {
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
    !name.starts_with('/')
        && !name.contains('\\')
        && !name.chars().any(char::is_control)
        && !(name.len() >= 2 && name.as_bytes()[1] == b':')
        && name
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
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

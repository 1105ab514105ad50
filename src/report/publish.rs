//! All of a publication or none of it: the files are written into a temporary directory beside
//! the target (same file system), which then replaces the target by renaming. On any error the
//! temporary directory is removed and a publication already there is left as it was, so data
//! that makes one output fail (a cell the spreadsheet refuses) never leaves half a publication.
//!
//! In: the target directory and a function that writes into the directory it is given. Out: the
//! files it wrote, named as they are in the target.

use std::path::{Path, PathBuf};

/// Runs `write` in a fresh directory beside `dir`, then puts that directory in `dir`'s place.
/// `io` turns a file-system error (with the path concerned) into the caller's error.
pub fn all_or_nothing<E>(
    dir: &Path,
    write: impl FnOnce(&Path) -> Result<Vec<PathBuf>, E>,
    io: impl Fn(PathBuf, std::io::Error) -> E,
) -> Result<Vec<PathBuf>, E> {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "publication".into());
    std::fs::create_dir_all(&parent).map_err(|e| io(parent.clone(), e))?;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let tmp = parent.join(format!(".{name}.partial-{tag}"));
    std::fs::create_dir(&tmp).map_err(|e| io(tmp.clone(), e))?;
    let files = match write(&tmp) {
        Ok(f) => f,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    // The old publication steps aside, the new one takes its name, the old one goes.
    let old = parent.join(format!(".{name}.old-{tag}"));
    let had_old = dir.exists();
    if had_old && let Err(e) = std::fs::rename(dir, &old) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(io(dir.to_path_buf(), e));
    }
    if let Err(e) = std::fs::rename(&tmp, dir) {
        if had_old {
            let _ = std::fs::rename(&old, dir);
        }
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(io(dir.to_path_buf(), e));
    }
    if had_old && let Err(e) = std::fs::remove_dir_all(&old) {
        tracing::warn!(path = %old.display(), error = %e, "cannot remove the previous publication");
    }
    Ok(files
        .into_iter()
        .map(|f| match f.strip_prefix(&tmp) {
            Ok(rel) => dir.join(rel),
            Err(_) => f,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "dispo-publish-{name}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn listing(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_failure_midway_leaves_nothing_and_keeps_the_old_publication() {
        let out = tmp("fail");
        let dir = out.join("2024-Q3");
        // Nothing there yet: a failure after two files leaves nothing at all.
        let r = all_or_nothing(
            &dir,
            |t| {
                std::fs::write(t.join("a.csv"), "a").unwrap();
                std::fs::write(t.join("b.png"), "b").unwrap();
                Err::<Vec<PathBuf>, _>("the spreadsheet refused a cell".to_string())
            },
            |p, e| format!("{}: {e}", p.display()),
        );
        assert!(r.is_err());
        assert!(listing(&out).is_empty(), "{:?}", listing(&out));
        // A publication in place...
        let files = all_or_nothing(
            &dir,
            |t| {
                std::fs::write(t.join("a.csv"), "old").unwrap();
                Ok::<_, String>(vec![t.join("a.csv")])
            },
            |p, e| format!("{}: {e}", p.display()),
        )
        .unwrap();
        assert_eq!(files, [dir.join("a.csv")]);
        // ...is untouched by a failed one...
        let r = all_or_nothing(
            &dir,
            |t| {
                std::fs::write(t.join("a.csv"), "new").unwrap();
                Err::<Vec<PathBuf>, _>("no".to_string())
            },
            |p, e| format!("{}: {e}", p.display()),
        );
        assert!(r.is_err());
        assert_eq!(std::fs::read_to_string(dir.join("a.csv")).unwrap(), "old");
        assert_eq!(listing(&out), ["2024-Q3"]);
        // ...and replaced whole by a good one.
        all_or_nothing(
            &dir,
            |t| {
                std::fs::write(t.join("b.csv"), "new").unwrap();
                Ok::<_, String>(vec![t.join("b.csv")])
            },
            |p, e| format!("{}: {e}", p.display()),
        )
        .unwrap();
        assert_eq!(listing(&dir), ["b.csv"]);
        assert_eq!(listing(&out), ["2024-Q3"]);
        let _ = std::fs::remove_dir_all(&out);
    }
}

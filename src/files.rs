//! Files that hold what outsiders must not read (request ids, TPP ids, error texts, tokens):
//! created readable by their owner only, whatever the process's umask.

use std::fs::File;
use std::path::Path;

/// Creates (or truncates) `path` with mode 0600; an existing file is made 0600 too. A symbolic
/// link there is refused: planted in a shared directory, it would have dispo overwrite (and
/// make private) whatever file it points to.
pub fn create_private(path: &Path) -> std::io::Result<File> {
    refuse_symlink(path)?;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let f = o.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // `mode` only applies to a file it creates.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(f)
}

/// An error if `path` is a symbolic link.
pub fn refuse_symlink(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(std::io::Error::other(format!(
            "{} is a symbolic link: dispo does not write through one (remove it, or name another file)",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// Makes the directory `path` reachable by its owner only (0700): the files in it cannot be
/// opened by others, whatever their own mode.
pub fn make_dir_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_files_and_directories_whatever_was_there() {
        let d = std::env::temp_dir().join(format!("dispo-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("f");
        std::fs::write(&p, "old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        super::create_private(&p).unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&p), 0o600);
        assert_eq!(std::fs::read(&p).unwrap(), b"");
        let link = d.join("link");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        let e = super::create_private(&link).unwrap_err().to_string();
        assert!(e.contains("is a symbolic link"), "{e}");
        super::make_dir_private(&d).unwrap();
        assert_eq!(mode(&d), 0o700);
        let _ = std::fs::remove_dir_all(&d);
    }
}

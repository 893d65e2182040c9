//! A store's files are its owner's alone, whatever the umask: directories `0700`, files `0600`.
//! (A job's journal holds commands' output tails, which may name hosts, paths and users.)

use std::fs::{File, Permissions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Makes `dir` (and its missing parents) `0700`; a directory that exists is left as it is (it may
/// be one the user shares on purpose).
pub fn dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    // The mode above is masked by the umask; this one is not.
    std::fs::set_permissions(dir, Permissions::from_mode(0o700))
}

/// Creates (or truncates) a file that is `0600` from the start.
pub fn create(path: &Path) -> std::io::Result<File> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file(&f)?;
    Ok(f)
}

/// Sets an open file `0600`.
pub fn file(f: &File) -> std::io::Result<()> {
    f.set_permissions(Permissions::from_mode(0o600))
}

/// Sets what is in `dir` (one level: sled's files and directories) to `0600` / `0700`.
pub fn contents(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let mode = match entry.file_type()?.is_dir() {
            true => 0o700,
            false => 0o600,
        };
        std::fs::set_permissions(entry.path(), Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_whatever_the_umask() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b");
        dir(&d).unwrap();
        let f = File::create(d.join("f")).unwrap();
        std::fs::set_permissions(d.join("f"), Permissions::from_mode(0o666)).unwrap();
        file(&f).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&d), 0o700);
        assert_eq!(mode(&d.join("f")), 0o600);
    }
}

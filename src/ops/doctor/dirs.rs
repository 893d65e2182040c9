//! Phoenix's own directories on this machine (the state and the log): there or creatable,
//! writable, and not readable by group or others (both hold commands' output). Nothing is
//! created: for a missing directory, its nearest existing parent must be writable.

use super::{holds, Check};
use crate::backend::files::nearest_existing;
use crate::exec::Runner;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The check of directory `dir` (`flag` is the option that moves it).
pub fn check(name: &str, dir: &Path, flag: &str, local: &dyn Runner) -> Check {
    let shown = dir.display();
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => existing(name, dir, m.permissions().mode(), local),
        Ok(_) => Check::fail(
            name,
            format!("{shown} is not a directory"),
            format!("move it aside, or give {flag} DIR"),
        ),
        Err(_) => missing(name, dir, flag, local),
    }
}

fn existing(name: &str, dir: &Path, mode: u32, local: &dyn Runner) -> Check {
    let shown = dir.display();
    let mode = mode & 0o7777;
    if !writable(dir, local) {
        return Check::fail(
            name,
            format!("{shown} (mode {mode:04o}) is not writable by this user"),
            format!("run Phoenix as root, or chown $(id -un) {shown}"),
        );
    }
    match mode & 0o044 {
        0 => Check::ok(name, format!("{shown}, mode {mode:04o}, writable")),
        _ => Check::warn(
            name,
            format!("{shown}, mode {mode:04o}: group or others can read it, and it holds commands' output"),
            format!("chmod 700 {shown}"),
        ),
    }
}

fn missing(name: &str, dir: &Path, flag: &str, local: &dyn Runner) -> Check {
    let shown = dir.display();
    let Some(parent) = nearest_existing(dir) else {
        return Check::fail(
            name,
            format!("{shown} cannot be made: none of its parents exists"),
            format!("give {flag} an absolute path"),
        );
    };
    match writable(parent, local) {
        true => Check::ok(
            name,
            format!(
                "{shown} does not exist yet; a run makes it ({} is writable)",
                parent.display()
            ),
        ),
        false => Check::fail(
            name,
            format!(
                "{shown} does not exist, and {} is not writable by this user",
                parent.display()
            ),
            format!(
                "mkdir -m 700 -p {shown} as root and chown it to this user, or give {flag} DIR"
            ),
        ),
    }
}

fn writable(dir: &Path, local: &dyn Runner) -> bool {
    let dir = dir.display().to_string();
    holds(local, ["test", "-w", dir.as_str()]).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::LocalRunner;
    use crate::ops::doctor::Level;

    #[test]
    fn missing_dirs_are_not_made_and_open_modes_are_warned() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let local = LocalRunner::new(false);
        let fresh = tmp.path().join("a/b");
        assert_eq!(
            check("state dir", &fresh, "--state-dir", &local).status,
            Level::Ok
        );
        assert!(!fresh.exists(), "doctor made {}", fresh.display());
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let c = check("state dir", tmp.path(), "--state-dir", &local);
        assert_eq!(c.status, Level::Warn);
        assert!(c.detail.contains("0755"), "{}", c.detail);
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod");
        assert_eq!(
            check("state dir", tmp.path(), "--state-dir", &local).status,
            Level::Ok
        );
    }
}

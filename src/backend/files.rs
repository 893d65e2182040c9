//! The files on the machine hosting guests that a container refers to: its template tarball and
//! its mount sources. Each backend asks its own host (the node, for Proxmox).

use super::Refusal;
use crate::config::lxc::Container;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Whether a template is a storage volume id (`local:vztmpl/debian-12.tar.zst`), not a path.
pub fn is_volume_id(template: &str) -> bool {
    !template.starts_with('/')
        && template.split_once(':').is_some_and(|(storage, rest)| {
            !storage.is_empty()
                && !rest.is_empty()
                && storage
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
}

/// The path itself or its nearest parent that exists.
pub fn nearest_existing(path: &Path) -> Option<&Path> {
    path.ancestors()
        .find(|p| !p.as_os_str().is_empty() && p.exists())
}

/// Whether `dir` exists, or its nearest existing ancestor is a directory this process may write
/// into (so it could be made). Nothing is created.
pub fn creatable(dir: &Path) -> bool {
    let Some(existing) = nearest_existing(dir) else {
        return false;
    };
    if existing == dir {
        return dir.is_dir();
    }
    let Ok(c) = std::ffi::CString::new(existing.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call; access reads it only.
    existing.is_dir() && unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } == 0
}

/// The template path (not a volume id) and mount sources that `exists` says are missing.
pub fn missing(ct: &Container, exists: impl Fn(&str) -> bool) -> Vec<Refusal> {
    let mut out = Vec::new();
    if let (Some(t), None) = (&ct.template, ct.base.clone_from) {
        if !is_volume_id(t) && !exists(t) {
            out.push(Refusal::new(
                "template",
                format!("template {t} does not exist on the guests' host"),
                "build or download the rootfs tarball there first",
            ));
        }
    }
    for (i, m) in ct.mount_points.iter().enumerate() {
        if !exists(&m.host_path) {
            out.push(Refusal::new(
                format!("mount_points/{i}/host_path"),
                format!(
                    "mount source {} does not exist on the guests' host",
                    m.host_path
                ),
                "create it there first",
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_creatable_below_a_writable_directory_without_being_made() {
        let t = tempfile::tempdir().unwrap();
        let deep = t.path().join("a/b/c");
        assert!(creatable(&deep) && !deep.exists());
        let file = t.path().join("f");
        std::fs::write(&file, b"").unwrap();
        assert!(!creatable(&file.join("x")), "below a file");
    }

    #[test]
    fn volume_ids_are_told_from_paths() {
        assert!(is_volume_id(
            "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"
        ));
        assert!(!is_volume_id("/var/lib/vz/template/cache/debian.tar.zst"));
        assert!(!is_volume_id("templates/debian.tar.zst"));
        assert!(!is_volume_id("c:"));
    }
}

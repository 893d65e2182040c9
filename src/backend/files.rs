//! The files on the machine hosting guests that a container refers to: its template tarball and
//! its mount sources. Each backend asks its own host (the node, for Proxmox).

use super::Refusal;
use crate::config::lxc::Container;

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
    fn volume_ids_are_told_from_paths() {
        assert!(is_volume_id(
            "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"
        ));
        assert!(!is_volume_id("/var/lib/vz/template/cache/debian.tar.zst"));
        assert!(!is_volume_id("templates/debian.tar.zst"));
        assert!(!is_volume_id("c:"));
    }
}

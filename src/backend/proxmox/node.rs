//! The node itself: where it keeps things ([`NodeLayout`]), and what Phoenix reads there rather
//! than on the machine it runs on: its name, its storages (`/etc/pve/storage.cfg`), its device
//! majors (`/proc/devices`), and whether a path exists on it.

use super::ProxmoxBackend;
use crate::backend::{BackendError, Result};
use crate::exec::Cmd;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Paths on the node, under its root (`/` on a real node; a stand-in's directory in tests).
#[derive(Debug, Clone)]
pub struct NodeLayout {
    /// `/etc/pve`.
    pub etc: PathBuf,
    /// `/run/lock/lxc`: pve-container's config locks (`PVE::LXC::Config::config_file_lock`).
    pub lock_dir: PathBuf,
    /// Where Phoenix records, on the node, the raw config lines it owns.
    pub owned_dir: PathBuf,
    /// `/proc/devices`: the character device majors of the node's kernel.
    pub devices: PathBuf,
}

impl NodeLayout {
    pub fn under(root: &Path) -> NodeLayout {
        NodeLayout {
            etc: root.join("etc/pve"),
            lock_dir: root.join("run/lock/lxc"),
            owned_dir: root.join("var/lib/phoenix/pve"),
            devices: root.join("proc/devices"),
        }
    }

    pub fn conf_path(&self, id: crate::config::GuestId) -> PathBuf {
        self.etc.join(format!("lxc/{id}.conf"))
    }

    /// `/etc/pve/qemu-server/VMID.conf`.
    pub fn vm_conf_path(&self, id: crate::config::GuestId) -> PathBuf {
        self.etc.join(format!("qemu-server/{id}.conf"))
    }

    pub fn lock_path(&self, id: crate::config::GuestId) -> PathBuf {
        self.lock_dir.join(format!("pve-config-{id}.lock"))
    }
}

/// A storage of `storage.cfg`: its type and its properties as written (a bare flag such as
/// `disable` as `1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    pub kind: String,
    pub properties: BTreeMap<String, String>,
}

impl Storage {
    /// What it holds (`content`).
    pub fn content(&self) -> Vec<&str> {
        let listed = self.properties.get("content").map_or("", String::as_str);
        listed
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect()
    }

    /// Whether container volumes on it can be snapshotted: pve-storage's `volume_has_feature`
    /// (`Plugin.pm`: only qcow2, which containers never use; ZFS, LVM-thin, Btrfs, RBD: yes).
    pub fn snapshots(&self) -> bool {
        matches!(
            self.kind.as_str(),
            "zfspool" | "lvmthin" | "btrfs" | "rbd" | "zfs"
        )
    }

    /// Whether a template's volume on it can be linked-cloned (`clone` of a base volume, with
    /// container formats raw or subvol).
    pub fn linked_clones(&self) -> bool {
        self.snapshots()
    }
}

/// `storage.cfg`: `type: id` then indented `key value` lines (pve-storage `Plugin::parse_config`).
pub fn parse_storage_cfg(text: &str) -> BTreeMap<String, Storage> {
    let mut out = BTreeMap::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            cur = line.split_once(':').map(|(kind, id)| {
                let id = id.trim().to_string();
                let kind = kind.trim().to_string();
                let properties = BTreeMap::new();
                out.insert(id.clone(), Storage { kind, properties });
                id
            });
            continue;
        }
        let line = line.trim();
        let (key, value) = line.split_once(char::is_whitespace).unwrap_or((line, "1"));
        if let Some(s) = cur.as_ref().and_then(|id| out.get_mut(id)) {
            s.properties
                .insert(key.to_string(), value.trim().to_string());
        }
    }
    out
}

/// The node name in API paths: the short hostname (`PVE::INotify::nodename`).
pub fn short_name(uname_n: &str) -> String {
    uname_n
        .trim()
        .split('.')
        .next()
        .unwrap_or_default()
        .to_string()
}

impl ProxmoxBackend {
    /// The node's name in API paths.
    pub(super) fn node(&self) -> Result<String> {
        if let Some(n) = self.node.get() {
            return Ok(n.clone());
        }
        let out = self.runner.run(&Cmd::probe(["uname", "-n"]))?;
        let n = short_name(&out.stdout_str());
        let _ = self.node.set(n.clone());
        Ok(n)
    }

    /// The node's storages, read once.
    pub(super) fn storages(&self) -> Result<&BTreeMap<String, Storage>> {
        if let Some(s) = self.storages.get() {
            return Ok(s);
        }
        let path = self.layout.etc.join("storage.cfg");
        let text = self.read_remote(&path)?.ok_or_else(|| {
            BackendError::Invalid(format!("{} is missing on the node", path.display()))
        })?;
        Ok(self.storages.get_or_init(|| parse_storage_cfg(&text)))
    }

    /// A storage by id, or what to do about a missing one.
    pub(super) fn storage(&self, id: &str) -> Result<Storage> {
        self.storages()?.get(id).cloned().ok_or_else(|| {
            let known: Vec<&str> = self.storages().map(|s| s.keys().map(String::as_str).collect()).unwrap_or_default();
            BackendError::Invalid(format!("storage '{id}' does not exist on the node (it has: {}); fix storage_pool or add the storage (pvesm add)", known.join(", ")))
        })
    }

    /// The node's `/proc/devices`, read once (GPU device majors are the node's).
    pub(super) fn node_devices(&self) -> Result<&str> {
        if let Some(d) = self.devices.get() {
            return Ok(d);
        }
        let text = self.read_remote(&self.layout.devices)?.unwrap_or_default();
        Ok(self.devices.get_or_init(|| text))
    }

    /// Whether `path` exists on the node.
    pub(super) fn exists_on_node(&self, path: &str) -> Result<bool> {
        Ok(self
            .runner
            .output(&Cmd::probe(["test", "-e", path]))?
            .success())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_cfg_types_and_content() {
        let s = parse_storage_cfg(
            "dir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl,rootdir\n\nzfspool: tank\n\tdisable\n\tpool tank/subvols\n\tcontent rootdir,images\n",
        );
        assert_eq!(s["local"].kind, "dir");
        assert!(!s["local"].snapshots() && s["tank"].snapshots());
        assert_eq!(s["local"].content(), ["iso", "vztmpl", "rootdir"]);
        assert_eq!(s["local"].properties["path"], "/var/lib/vz");
        assert_eq!(s["tank"].properties["disable"], "1");
    }

    #[test]
    fn the_node_name_is_the_short_hostname() {
        assert_eq!(short_name("pve1.example.com\n"), "pve1");
        assert_eq!(short_name("pve1"), "pve1");
    }
}

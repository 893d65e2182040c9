//! Reading what Proxmox's `pct` prints: `pct config` (key: value lines; raw `lxc.*` lines;
//! snapshot sections), property strings such as `net0` (`k=v,k=v`), snapshot sections and pending changes.

use std::collections::BTreeMap;

/// The current configuration (snapshot sections are left out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PctConfig {
    /// `key: value`, Proxmox keys.
    pub keys: BTreeMap<String, String>,
    /// Raw `lxc.*` lines, in file order, as `key: value`.
    pub raw: Vec<String>,
}

impl PctConfig {
    pub fn parse(text: &str) -> PctConfig {
        let mut c = PctConfig::default();
        for line in text.lines() {
            let line = line.trim_end();
            if line.starts_with('[') {
                break; // a snapshot section: not the current configuration
            }
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let (k, v) = (k.trim(), v.trim());
            if k.starts_with("lxc.") {
                c.raw.push(format!("{k}: {v}"));
            } else {
                c.keys.insert(k.to_string(), v.to_string());
            }
        }
        c
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.keys.get(key).map(String::as_str)
    }

    /// `mpN` entries: index and value.
    pub fn mount_points(&self) -> Vec<(u32, String)> {
        self.keys
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("mp")
                    .and_then(|n| n.parse().ok())
                    .map(|n| (n, v.clone()))
            })
            .collect()
    }

    /// The rootfs size in GiB (`local-lvm:vm-950-disk-0,size=8G`).
    pub fn rootfs_gb(&self) -> Option<u64> {
        let props = props(self.get("rootfs")?);
        size_gb(props.get("size")?)
    }
}

/// `a=1,b=2` (a first bare element is kept under the key "" — `local-lvm:vm-950-disk-0`).
pub fn props(s: &str) -> BTreeMap<String, String> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
            None => (String::new(), p.trim().to_string()),
        })
        .collect()
}

/// `8G`, `512M`, `1T`, or a number of GiB.
pub fn size_gb(s: &str) -> Option<u64> {
    let (num, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    let n: f64 = num.parse().ok()?;
    let gb = match unit.to_ascii_uppercase().as_str() {
        "" | "G" => n,
        "M" => n / 1024.0,
        "T" => n * 1024.0,
        "K" => n / (1024.0 * 1024.0),
        _ => return None,
    };
    Some(gb.ceil() as u64)
}

/// Guest states from `pct list` (`VMID Status Lock Name` rows).
pub fn list_states(
    text: &str,
) -> std::collections::HashMap<crate::config::GuestId, crate::backend::RunState> {
    use crate::backend::RunState;
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let id = cols.next()?.parse::<u32>().ok()?;
            let state = match cols.next()? {
                "running" => RunState::Running,
                _ => RunState::Stopped,
            };
            Some((crate::config::GuestId(id), state))
        })
        .collect()
}

/// Whether a section of a config file is a snapshot: not pending changes (`[pve:pending]` of a
/// container, `[PENDING]` of a VM) nor a VM's special sections (`[special:cloudinit]`).
fn is_snapshot_section(name: &str) -> bool {
    !matches!(name, "pve:pending" | "PENDING") && !name.starts_with("special:")
}

/// The snapshot sections of a config file, in order, with whether each is finished (an
/// interrupted snapshot task leaves `snapstate: prepare`).
pub fn sections(text: &str) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = Vec::new();
    let mut in_snapshot = false;
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_snapshot = is_snapshot_section(name);
            if in_snapshot {
                out.push((name.to_string(), true));
            }
        } else if in_snapshot && line.starts_with("snapstate:") {
            if let Some(last) = out.last_mut() {
                last.1 = false;
            }
        }
    }
    out
}

/// Whether the config has changes waiting for the next start (`[pve:pending]`).
pub fn has_pending(text: &str) -> bool {
    text.lines().any(|l| l.trim() == "[pve:pending]")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "arch: amd64\ncores: 2\nfeatures: nesting=1\nhostname: phoenix-api\nmemory: 512\nmp0: /srv/data,mp=/data\nmp1: local-lvm:vm-950-disk-1,mp=/models,size=32G\nnet0: name=eth0,bridge=vmbr0,firewall=1,gw=10.0.0.1,hwaddr=BC:24:11:00:00:01,ip=10.0.0.50/24,type=veth\nparent: final-form\nrootfs: local-lvm:vm-950-disk-0,size=8G\nlxc.cgroup2.devices.allow: c 195:* rwm\nlxc.mount.entry: /dev/nvidia0 dev/nvidia0 none bind,optional,create=file\n\n[final-form]\ncores: 1\n";

    #[test]
    fn parses_pct_config() {
        let c = PctConfig::parse(CONFIG);
        assert_eq!(c.get("hostname"), Some("phoenix-api"));
        assert_eq!(
            c.get("cores"),
            Some("2"),
            "snapshot sections are not the current config"
        );
        assert_eq!(
            c.raw,
            [
                "lxc.cgroup2.devices.allow: c 195:* rwm",
                "lxc.mount.entry: /dev/nvidia0 dev/nvidia0 none bind,optional,create=file"
            ]
        );
        assert_eq!(
            c.mount_points(),
            [
                (0, "/srv/data,mp=/data".to_string()),
                (1, "local-lvm:vm-950-disk-1,mp=/models,size=32G".to_string())
            ]
        );
        assert_eq!(c.rootfs_gb(), Some(8));
        let net = props(c.get("net0").unwrap());
        assert_eq!(net["bridge"], "vmbr0");
        assert_eq!(net["firewall"], "1");
    }

    #[test]
    fn sizes_and_snapshots() {
        assert_eq!(size_gb("8G"), Some(8));
        assert_eq!(size_gb("512M"), Some(1));
        assert_eq!(size_gb("1T"), Some(1024));
        assert_eq!(size_gb("x"), None);
        let conf = "memory: 512\nparent: half\n\n[pve:pending]\nnameserver: 1.1.1.1\n\n[PENDING]\ncores: 1\n\n[special:cloudinit]\nciuser: x\n\n[final-form]\nmemory: 512\n\n[half]\nsnapstate: prepare\n";
        assert_eq!(
            sections(conf),
            [
                ("final-form".to_string(), true),
                ("half".to_string(), false)
            ]
        );
        assert!(has_pending(conf) && !has_pending("memory: 512\n"));
    }
}

//! What a Proxmox node will refuse, found before any change (at `plan` as at `run`), each with the
//! Proxmox source that refuses it:
//! - a snapshot of a container with a bind mount, or with a disk on a storage that cannot
//!   snapshot container volumes (pve-guest-common `AbstractConfig::__snapshot_prepare`: "snapshot
//!   feature is not available"; pve-storage `volume_has_feature`);
//! - a clone of a container with a bind mount (pve-container `API2/LXC.pm` `clone_vm`: "unable to
//!   clone mountpoint 'mpN' (type bind)");
//! - raw `lxc.*` keys Proxmox drops from the config file (pve-container `LXC/Config.pm`
//!   `is_valid_lxc_conf_key`), which would be written again on every run;
//! - firewall rules pve-firewall refuses (`Firewall.pm` `verify_rule`);
//! - storages, templates and mount sources missing on the node.

use super::ProxmoxBackend;
use crate::backend::files::{self, is_volume_id};
use crate::backend::Refusal;
use crate::config::common::FirewallRule;
use crate::config::lxc::Container;

impl ProxmoxBackend {
    pub(super) fn refusals(
        &self,
        ct: &Container,
        parent: Option<&Container>,
        storage: Option<&str>,
    ) -> Vec<Refusal> {
        let mut out = self.storage_refusals(ct);
        out.extend(self.file_refusals(ct));
        out.extend(raw_key_refusals(&ct.lxc_options));
        if let Some(fw) = &ct.base.firewall {
            out.extend(
                fw.rules
                    .iter()
                    .enumerate()
                    .filter_map(|(i, r)| rule_refusal(i, r)),
            );
        }
        if let (Some(name), false) = (&ct.base.template_snapshot_name, ct.base.is_template) {
            if let Some(why) = self.why_no_snapshot(ct, storage) {
                out.push(Refusal::new("template_snapshot_name", format!("Proxmox cannot take snapshot {name:?}: {why}"), "clones start from this snapshot: move the disks to a storage with snapshots (zfspool, lvmthin, btrfs, rbd) and bind mounts to the clones, or make the container a template (\"is_template\": true) and clone that"));
            }
        }
        if let Some(p) = parent.filter(|p| !p.mount_points.is_empty()) {
            out.push(Refusal::new("clone_from_ctid", format!("Proxmox cannot clone {}: it has a bind mount ({}), and pct clone refuses those (\"unable to clone mountpoint 'mp0' (type bind)\")", p.base.id, p.mount_points[0].host_path), "move the bind mounts from the parent to its clones"));
        }
        out
    }

    /// Why a snapshot of `ct` would be refused (`None`: it would not).
    pub(super) fn why_no_snapshot(&self, ct: &Container, storage: Option<&str>) -> Option<String> {
        if let Some(m) = ct.mount_points.first() {
            return Some(format!("it has a bind mount ({} at {}), and Proxmox snapshots storage volumes only (\"snapshot feature is not available\")", m.host_path, m.container_path));
        }
        let pools = storage
            .into_iter()
            .chain(ct.volumes.iter().map(|v| v.storage.as_str()));
        for pool in pools {
            match self.storage(pool) {
                Ok(s) if !s.snapshots() => return Some(format!("its storage {pool:?} is of type {}, which cannot snapshot container disks (\"snapshot feature is not available\")", s.kind)),
                Ok(_) => {}
                Err(e) => return Some(e.to_string()),
            }
        }
        None
    }

    /// A VM's: its storage holds images, its image is on the node, its rules are valid.
    pub(super) fn vm_refusals(
        &self,
        storage: &str,
        image: Option<&str>,
        rules: &[FirewallRule],
    ) -> Vec<Refusal> {
        let mut out: Vec<Refusal> = self
            .content_refusal(storage, "images", "VM disks")
            .into_iter()
            .collect();
        let missing =
            |i: &&str| !crate::backend::vm::Vms::vm_image_exists(self, i).unwrap_or(false);
        if let Some(i) = image.filter(missing) {
            out.push(Refusal::new(
                "template_image",
                format!("the image {i} is not on the node"),
                "give an existing path or volume there, or a URL with template_image_sha256",
            ));
        }
        out.extend(
            rules
                .iter()
                .enumerate()
                .filter_map(|(i, r)| rule_refusal(i, r)),
        );
        out
    }

    fn storage_refusals(&self, ct: &Container) -> Vec<Refusal> {
        let Some(pool) = &ct.base.storage_pool else {
            return match ct.base.clone_from {
                Some(_) => Vec::new(),
                None => vec![Refusal::new(
                    "",
                    "storage_pool is required by the proxmox backend",
                    "set it to the Proxmox storage id for the root disk (pvesm status lists them)",
                )],
            };
        };
        self.content_refusal(pool, "rootdir", "container disks")
            .into_iter()
            .collect()
    }

    /// Why `storage_pool` = `pool` cannot hold `what` (content type `content`), if it cannot: it
    /// is missing, or its content leaves that type out.
    fn content_refusal(&self, pool: &str, content: &str, what: &str) -> Option<Refusal> {
        let s = match self.storage(pool) {
            Ok(s) => s,
            Err(e) => {
                return Some(Refusal::new(
                    "storage_pool",
                    e.to_string(),
                    "pvesm status lists the node's storages",
                ))
            }
        };
        let has = s.content();
        if has.contains(&content) {
            return None;
        }
        let has = has.join(",");
        Some(Refusal::new(
            "storage_pool",
            format!("storage {pool:?} does not hold {what} (its content is {has})"),
            format!("add {content}: pvesm set {pool} --content {has},{content}"),
        ))
    }

    fn file_refusals(&self, ct: &Container) -> Vec<Refusal> {
        let mut out = files::missing(ct, |p| self.exists_on_node(p).unwrap_or(false));
        if let (Some(t), None) = (&ct.template, ct.base.clone_from) {
            let storage = t
                .split_once(':')
                .map(|(s, _)| s)
                .filter(|_| is_volume_id(t));
            if let Some(s) = storage {
                match self.storage(s) {
                    Ok(st) if st.content().contains(&"vztmpl") => {}
                    Ok(_) => out.push(Refusal::new(
                        "template",
                        format!("storage {s:?} does not hold templates (vztmpl)"),
                        "name a storage with vztmpl content",
                    )),
                    Err(e) => out.push(Refusal::new(
                        "template",
                        e.to_string(),
                        "pvesm status lists the node's storages",
                    )),
                }
            }
        }
        out
    }
}

/// Raw keys Proxmox keeps in a container's config (pve-container 6.1 `$valid_lxc_conf_keys`, and
/// the prefixes `is_valid_lxc_conf_key` lets through).
const VALID_LXC_KEYS: &[&str] = &[
    "lxc.apparmor.profile",
    "lxc.apparmor.allow_incomplete",
    "lxc.apparmor.allow_nesting",
    "lxc.apparmor.raw",
    "lxc.selinux.context",
    "lxc.include",
    "lxc.arch",
    "lxc.uts.name",
    "lxc.signal.halt",
    "lxc.signal.reboot",
    "lxc.signal.stop",
    "lxc.init.cmd",
    "lxc.init.cwd",
    "lxc.init.uid",
    "lxc.init.gid",
    "lxc.init.groups",
    "lxc.pty.max",
    "lxc.console.logfile",
    "lxc.console.path",
    "lxc.tty.max",
    "lxc.devtty.dir",
    "lxc.hook.autodev",
    "lxc.autodev",
    "lxc.kmsg",
    "lxc.mount.fstab",
    "lxc.mount.entry",
    "lxc.mount.auto",
    "lxc.rootfs.mount",
    "lxc.cap.drop",
    "lxc.cap.keep",
    "lxc.seccomp.profile",
    "lxc.seccomp.notify.proxy",
    "lxc.seccomp.notify.cookie",
    "lxc.idmap",
    "lxc.hook.pre-start",
    "lxc.hook.pre-mount",
    "lxc.hook.mount",
    "lxc.hook.start",
    "lxc.hook.stop",
    "lxc.hook.post-stop",
    "lxc.hook.clone",
    "lxc.hook.destroy",
    "lxc.hook.version",
    "lxc.log.level",
    "lxc.log.file",
    "lxc.start.auto",
    "lxc.start.delay",
    "lxc.start.order",
    "lxc.group",
    "lxc.environment",
    "lxc.environment.runtime",
    "lxc.environment.hooks",
    "lxc.sysctl.fs.mqueue",
    "lxc.sysctl.kernel.msgmax",
    "lxc.sysctl.kernel.msgmnb",
    "lxc.sysctl.kernel.msgmni",
    "lxc.sysctl.kernel.sem",
    "lxc.sysctl.kernel.shmall",
    "lxc.sysctl.kernel.shmmax",
    "lxc.sysctl.kernel.shmmni",
    "lxc.sysctl.kernel.shm_rmid_forced",
];
const VALID_LXC_PREFIXES: &[&str] = &[
    "lxc.cgroup2.",
    "lxc.cgroup.",
    "lxc.prlimit.",
    "lxc.net.",
    "lxc.limit.",
];

/// Whether Proxmox keeps raw key `key` (exact key or an allowed prefix).
pub fn keeps_raw_key(key: &str) -> bool {
    VALID_LXC_KEYS.contains(&key) || VALID_LXC_PREFIXES.iter().any(|p| key.starts_with(p))
}

fn raw_key_refusals(options: &[String]) -> Vec<Refusal> {
    options
        .iter()
        .enumerate()
        .filter_map(|(i, o)| {
            let key = o.split(['=', ':']).next().unwrap_or_default().trim();
            (!keeps_raw_key(key)).then(|| Refusal::new(format!("lxc_options/{i}"), format!("Proxmox drops raw key {key:?} from the container's config (it is not among the lxc.* keys pve-container accepts), so it would never take effect"), "use an accepted key (lxc.apparmor.*, lxc.cap.*, lxc.cgroup2.*, lxc.mount.entry, lxc.idmap, lxc.prlimit.*, ...), or a pct option in pct_options"))
        })
        .collect()
}

/// The protocols whose rules may name ports (pve-firewall `Firewall.pm` `verify_rule`: "dport:
/// protocol '...' does not support ports", "proto: missing property - 'dport' requires this
/// property"); ICMP's "ports" are its types, which it accepts too.
const PORT_PROTOCOLS: &[&str] = &[
    "tcp",
    "udp",
    "udplite",
    "sctp",
    "dccp",
    "6",
    "17",
    "136",
    "132",
    "33",
    "icmp",
    "icmpv6",
    "ipv6-icmp",
    "1",
    "58",
];

fn rule_refusal(i: usize, r: &FirewallRule) -> Option<Refusal> {
    let field = |f: &str| format!("firewall/rules/{i}/{f}");
    if let Some(iface) = &r.iface {
        let n = iface
            .strip_prefix("net")
            .and_then(|n| n.parse::<u32>().ok());
        if n.is_none_or(|n| n > 31) {
            return Some(Refusal::new(field("iface"), format!("pve-firewall refuses interface {iface:?} in a container's rule: it must name the container's interface as netN"), "use net0 for the first network interface"));
        }
    }
    if r.port.is_some() {
        match r.proto.as_deref() {
            None => {
                return Some(Refusal::new(
                    field("port"),
                    "pve-firewall refuses a port without a protocol",
                    "add \"proto\": \"tcp\" (or udp)",
                ))
            }
            Some(p) if !PORT_PROTOCOLS.contains(&p.to_ascii_lowercase().as_str()) => {
                return Some(Refusal::new(
                    field("port"),
                    format!("pve-firewall refuses ports with protocol {p:?}: it has none"),
                    "use tcp, udp, udplite, sctp or dccp, or drop the port",
                ))
            }
            Some(_) => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::common::Direction;

    #[test]
    fn raw_keys_proxmox_drops_are_refused() {
        let opts = [
            "lxc.cap.drop: sys_time",
            "lxc.cgroup2.devices.allow = c 195:* rwm",
            "lxc.rootfs.options: ro",
            "lxc.mystery.key: 1",
        ]
        .map(String::from);
        let r = raw_key_refusals(&opts);
        assert_eq!(
            r.iter().map(|r| r.field.as_str()).collect::<Vec<_>>(),
            ["lxc_options/2", "lxc_options/3"]
        );
    }

    #[test]
    fn rules_pve_firewall_refuses() {
        let rule = |iface: Option<&str>, proto: Option<&str>, port: Option<&str>| FirewallRule {
            direction: Direction::In,
            action: "ACCEPT".into(),
            proto: proto.map(String::from),
            source: None,
            dest: None,
            port: port.map(String::from),
            iface: iface.map(String::from),
            comment: None,
        };
        assert!(rule_refusal(0, &rule(Some("net0"), Some("tcp"), Some("22"))).is_none());
        assert!(rule_refusal(0, &rule(Some("eth0"), None, None)).is_some());
        assert!(rule_refusal(0, &rule(None, None, Some("22"))).is_some());
        assert!(rule_refusal(0, &rule(None, Some("gre"), Some("22"))).is_some());
        assert!(rule_refusal(0, &rule(None, Some("icmp"), Some("echo-request"))).is_none());
    }
}

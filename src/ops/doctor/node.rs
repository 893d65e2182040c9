//! What is read on the guests' host (this machine, or the node over SSH), through the session's
//! runner: the backend and its tools with their versions, the cgroup layout, the inotify budget
//! of privileged containers, and the bridges the configuration names.

use super::super::Options;
use super::{holds, probe, Check, Place};
use crate::config::lxc::NetworkConfig;
use crate::config::values::IpConfig;
use crate::exec::Runner;
use crate::ops::connect::BackendKind;
use crate::session::Session;
use std::collections::BTreeMap;

/// The oldest LXC Phoenix drives (`lxc.cgroup2.*` keys, `lxc-copy` overlay clones).
const LXC_MIN: (u32, u32) = (4, 0);
/// What each privileged container's systemd needs of `fs.inotify.max_user_instances`, at scale.
const INOTIFY_MIN: u64 = 1024;

/// The backend `--backend` resolves to, and why, with its tools' versions.
pub fn backend(s: &Session, opts: &Options, resolved: BackendKind, place: &Place) -> Check {
    let why = match (opts.backend, resolved) {
        (BackendKind::Auto, BackendKind::Proxmox) => "auto: a host is given, or pct is at hand",
        (BackendKind::Auto, _) => "auto: no pct here",
        _ => "chosen by --backend",
    };
    let chosen = format!("{} ({why})", s.backend.kind());
    match s.backend.kind() {
        "lxc" => lxc_tools(&*s.runner, &chosen, place),
        _ => proxmox_tools(&*s.runner, opts, &chosen, place),
    }
}

fn lxc_tools(runner: &dyn Runner, chosen: &str, place: &Place) -> Check {
    let Some(out) = probe(runner, ["lxc-start", "--version"]) else {
        return Check::fail(
            "backend",
            format!("{chosen}: lxc-start is not installed {place}"),
            "apt-get install lxc",
        );
    };
    let version = out.trim().to_string();
    match parse_version(&version) {
        Some(v) if v >= LXC_MIN => Check::ok("backend", format!("{chosen}: LXC {version} {place}")),
        _ => Check::fail(
            "backend",
            format!(
                "{chosen}: LXC {version} {place}; Phoenix needs {}.{} or later",
                LXC_MIN.0, LXC_MIN.1
            ),
            "install LXC 4.0 or later (apt-get install lxc, from Debian 11 or later)",
        ),
    }
}

fn proxmox_tools(runner: &dyn Runner, opts: &Options, chosen: &str, place: &Place) -> Check {
    if let Some(v) = probe(runner, ["pveversion"]) {
        let first = v.lines().next().unwrap_or_default().trim().to_string();
        return match pve_major(&first) {
            Some(m) if m < 7 => Check::warn(
                "backend",
                format!("{chosen}: {first} {place}; Phoenix expects Proxmox VE 7 or later"),
                "upgrade the node (pve7to8, pve8to9)",
            ),
            _ => Check::ok("backend", format!("{chosen}: {first} {place}")),
        };
    }
    match find_pct(runner, opts) {
        Some(pct) => Check::warn(
            "backend",
            format!("{chosen}: {pct} {place}, but no pveversion: the Proxmox version is unknown"),
            "run against a Proxmox VE node (pveversion comes with pve-manager)",
        ),
        None => Check::fail(
            "backend",
            format!("{chosen}: neither pveversion nor pct {place}"),
            "point --pve-tools at the directory holding pct, or run against a Proxmox VE node",
        ),
    }
}

/// Where `pct` is: in `--pve-tools`, else on the PATH of the guests' host.
fn find_pct(runner: &dyn Runner, opts: &Options) -> Option<String> {
    match &opts.pve_tools {
        Some(dir) => {
            let pct = dir.join("pct").display().to_string();
            holds(runner, ["test", "-x", pct.as_str()])
                .unwrap_or(false)
                .then_some(pct)
        }
        None => probe(runner, ["sh", "-c", "command -v pct"]).map(|p| p.trim().to_string()),
    }
}

/// `major.minor` of `5.0.2`.
fn parse_version(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts
        .next()
        .and_then(|m| {
            m.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .ok()
        })
        .unwrap_or(0);
    Some((major, minor))
}

/// The major version in `pve-manager/9.0.3/abcdef (running kernel: ...)`.
fn pve_major(line: &str) -> Option<u32> {
    parse_version(line.split('/').nth(1)?).map(|(m, _)| m)
}

/// How the guests' host mounts cgroups.
#[derive(Debug, PartialEq, Eq)]
enum Layout {
    /// cgroup v2 alone at `/sys/fs/cgroup`, with its controllers.
    Unified(String),
    /// v1 controllers beside a v2 hierarchy.
    Hybrid,
    Legacy,
}

/// The cgroup layout; v1 or hybrid is a warning on Proxmox (GPU device rules use cgroup2 keys,
/// and Proxmox VE 9 runs containers on v2 only). Plain LXC picks its keys from the layout.
pub fn cgroup(runner: &dyn Runner, backend: &str, place: &Place) -> Check {
    let Some(layout) = layout(runner) else {
        return Check::warn(
            "cgroup",
            format!("cannot read the cgroup layout {place}"),
            "check that /sys/fs/cgroup is mounted (stat -fc %T /sys/fs/cgroup)",
        );
    };
    let found = match &layout {
        Layout::Unified(c) => format!("v2 (unified) {place}; controllers: {}", c.trim()),
        Layout::Hybrid => format!("hybrid (v1 controllers beside v2) {place}"),
        Layout::Legacy => format!("v1 (legacy) {place}"),
    };
    match (&layout, backend) {
        (Layout::Unified(_), _) | (_, "lxc") => Check::ok("cgroup", found),
        _ => Check::warn(
            "cgroup",
            format!("{found}: GPU device rules use cgroup2 keys, and Proxmox VE 9 runs containers on v2 only"),
            "boot the node with systemd.unified_cgroup_hierarchy=1 (the default since Proxmox VE 7)",
        ),
    }
}

fn layout(runner: &dyn Runner) -> Option<Layout> {
    if probe(runner, ["stat", "-fc", "%T", "/sys/fs/cgroup"])?.trim() == "cgroup2fs" {
        let controllers = probe(runner, ["cat", "/sys/fs/cgroup/cgroup.controllers"]);
        return Some(Layout::Unified(controllers.unwrap_or_default()));
    }
    let mounts = probe(runner, ["cat", "/proc/self/mountinfo"])?;
    Some(layout_of(&mounts))
}

/// v1 or hybrid, from the filesystem types in `/proc/self/mountinfo` (after ` - `).
fn layout_of(mountinfo: &str) -> Layout {
    let v2 = mountinfo
        .lines()
        .filter_map(|l| l.split_once(" - "))
        .any(|(_, fs)| fs.split_whitespace().next() == Some("cgroup2"));
    match v2 {
        true => Layout::Hybrid,
        false => Layout::Legacy,
    }
}

/// `fs.inotify.max_user_instances` of the guests' host.
pub fn inotify(runner: &dyn Runner, place: &Place) -> Check {
    const FIX: &str =
        "sysctl -w fs.inotify.max_user_instances=1024 (and keep it in /etc/sysctl.d/)";
    let file = "/proc/sys/fs/inotify/max_user_instances";
    let value = probe(runner, ["cat", file]).and_then(|v| v.trim().parse::<u64>().ok());
    match value {
        Some(n) if n >= INOTIFY_MIN => {
            Check::ok("inotify", format!("max_user_instances is {n} {place}"))
        }
        Some(n) => Check::warn(
            "inotify",
            format!("max_user_instances is {n} {place}: each privileged container's systemd takes instances, and past a dozen new ones die at start"),
            FIX,
        ),
        None => Check::warn("inotify", format!("cannot read {file} {place}"), FIX),
    }
}

/// A bridge the configuration names: the containers on it, and an address for it (the first
/// gateway, with its container's prefix).
#[derive(Default)]
struct BridgeUse {
    guests: Vec<String>,
    address: Option<String>,
}

/// One check per bridge the configuration names: it exists on the guests' host.
pub fn bridges(s: &Session, place: &Place) -> Vec<Check> {
    let mut named: BTreeMap<String, BridgeUse> = BTreeMap::new();
    for ct in s.fleet.lxc.containers.values() {
        for net in [&ct.network, &ct.network_secondary].into_iter().flatten() {
            let used = named.entry(net.bridge.clone()).or_default();
            used.guests.push(ct.base.id.to_string());
            used.address = used.address.take().or_else(|| address(net));
        }
    }
    named
        .iter()
        .map(|(bridge, used)| bridge_check(&*s.runner, bridge, used, place))
        .collect()
}

fn address(net: &NetworkConfig) -> Option<String> {
    match (&net.ip, net.gw) {
        (IpConfig::Static(c), Some(gw)) => Some(format!("{gw}/{}", c.prefix)),
        _ => None,
    }
}

fn bridge_check(runner: &dyn Runner, bridge: &str, used: &BridgeUse, place: &Place) -> Check {
    let name = format!("bridge {bridge}");
    let on = format!("{place} (used by {})", used.guests.join(", "));
    let path = format!("/sys/class/net/{bridge}/bridge");
    match holds(runner, ["test", "-d", path.as_str()]) {
        Some(true) => Check::ok(name, format!("exists {on}")),
        Some(false) => {
            let addr = used.address.as_deref().unwrap_or("ADDRESS/24");
            Check::fail(
                name,
                format!("no such bridge {on}"),
                format!("ip link add {bridge} type bridge && ip addr add {addr} dev {bridge} && ip link set {bridge} up"),
            )
        }
        None => Check::warn(
            name,
            format!("cannot check {on}"),
            format!("ip link show {bridge} (on the guests' host)"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read() {
        assert_eq!(parse_version("5.0.2\n"), Some((5, 0)));
        assert_eq!(parse_version("4.0.12-rc1"), Some((4, 0)));
        assert_eq!(parse_version("3.2"), Some((3, 2)));
        assert!(parse_version("3.2") < Some(LXC_MIN));
        assert_eq!(parse_version("lxc"), None);
        assert_eq!(
            pve_major("pve-manager/9.0.3/abcdef (running kernel: 6.14.8-2-pve)"),
            Some(9)
        );
    }

    #[test]
    fn v1_and_hybrid_are_told_apart() {
        let v1 = "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n";
        let hybrid = format!("{v1}40 31 0:37 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n");
        assert_eq!(layout_of(v1), Layout::Legacy);
        assert_eq!(layout_of(&hybrid), Layout::Hybrid);
    }
}

//! Checks across guests and files: references, id clashes, duplicates, cycles, and (for `run` and
//! `plan`) the files on the host that guests refer to.

use super::diagnostics::{Diagnostics, Severity};
use super::fleet::{Fleet, GuestKind, GuestRef};
use super::values::{GuestId, IpConfig};
use crate::features::FeatureDirs;
use crate::graph::Graph;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Checks the fleet as a whole. In a partial fleet (single files), references to ids that may
/// live in another file are warnings.
pub fn check(fleet: &Fleet, diag: &Diagnostics) {
    let unknown_ref = if fleet.partial {
        Severity::Warning
    } else {
        Severity::Error
    };
    let lxc_file = fleet.file_of(GuestKind::Lxc);
    let vm_file = fleet.file_of(GuestKind::Vm);

    // Ids: a CT and a VM may not share one; VM ids are unique.
    let mut seen_vm: BTreeMap<GuestId, usize> = BTreeMap::new();
    for (i, v) in fleet.vm.vms.iter().enumerate() {
        if let Some(first) = seen_vm.insert(v.id, i) {
            diag.error(
                &vm_file,
                &format!("/vms/{i}/vmid"),
                format!("VM id {} is already used by /vms/{first}", v.id),
                None,
            );
        }
        if fleet.lxc.containers.contains_key(&v.id) {
            diag.error(
                &vm_file,
                &format!("/vms/{i}/vmid"),
                format!("id {} is used by a container and a VM", v.id),
                Some(format!(
                    "containers and VMs share one id space; {lxc_file} defines /lxc_configs/{} too",
                    v.id
                )),
            );
        }
    }

    let mut ips: BTreeMap<std::net::Ipv4Addr, GuestId> = BTreeMap::new();
    let mut macs: BTreeMap<super::values::Mac, GuestId> = BTreeMap::new();
    for g in fleet.guests() {
        // File names and pointers are formatted only when there is something to report.
        let file = || fleet.file_of(g.kind());
        let at = || fleet.pointer_of(g);
        // Clone parents: must exist, be of the same kind, and (containers) name a snapshot.
        if let Some(parent) = g.clone_from() {
            let key = match g {
                GuestRef::Ct(_) => "clone_from_ctid",
                GuestRef::Vm(_) => "clone_from_vmid",
            };
            let ptr = || format!("{}/{key}", at());
            match fleet.guest(parent) {
                None => diag.push(
                    unknown_ref,
                    &file(),
                    &ptr(),
                    format!("clone source {parent} does not exist"),
                    Some(format!("define {parent} or fix {key}")),
                ),
                Some(p) if p.kind() != g.kind() => diag.error(
                    &file(),
                    &ptr(),
                    format!("clone source {parent} is a {}, but {} is a {}", p.kind(), g.id(), g.kind()),
                    Some("containers clone containers and VMs clone VMs".into()),
                ),
                Some(GuestRef::Ct(pc)) if pc.template_snapshot_name.is_none() => diag.error(
                    &file(),
                    &ptr(),
                    format!("clone source {parent} has no `template_snapshot_name`"),
                    Some(format!("add \"template_snapshot_name\": \"final-form\" to {parent}; clones start from that snapshot")),
                ),
                Some(_) => {}
            }
        }
        for (i, dep) in g.dependencies().iter().enumerate() {
            let ptr = || format!("{}/dependencies/{i}", at());
            if *dep == g.id() {
                diag.error(
                    &file(),
                    &ptr(),
                    format!("{} depends on itself", g.id()),
                    None,
                );
            } else if fleet.guest(*dep).is_none() {
                diag.push(
                    unknown_ref,
                    &file(),
                    &ptr(),
                    format!("dependency {dep} does not exist"),
                    Some("define it or remove it from dependencies".into()),
                );
            }
        }
        if let GuestRef::Ct(c) = g {
            if let Some(net) = &c.network {
                if let IpConfig::Static(cidr) = net.ip {
                    if let Some(other) = ips.insert(cidr.addr, c.id) {
                        diag.error(
                            &lxc_file,
                            &format!("{}/network_config/ip", at()),
                            format!("address {} is also given to {other}", cidr.addr),
                            None,
                        );
                    }
                }
            }
            if c.mac_address.is_some() || c.network.as_ref().is_some_and(|n| n.hwaddr.is_some()) {
                let mac = c.effective_mac();
                if let Some(other) = macs.insert(mac, c.id) {
                    diag.error(
                        &lxc_file,
                        &format!("{}/mac_address", at()),
                        format!("MAC {mac} is also given to {other}"),
                        None,
                    );
                }
            }
            if c.network.is_none() && c.clone_from.is_none() {
                diag.error(&lxc_file, &at(), "missing required field `network_config`", Some("{\"bridge\": \"vmbr0\", \"ip\": \"10.254.10.11/24\", \"gw\": \"10.254.10.1\"}".into()));
            }
        }
    }

    let graph = Graph::build(fleet);
    for cycle in graph.cycles() {
        let first = cycle[0];
        let (file, ptr) = match fleet.guest(first) {
            Some(g) => (fleet.file_of(g.kind()), fleet.pointer_of(g)),
            None => (lxc_file.clone(), String::new()),
        };
        let path: Vec<String> = cycle.iter().map(|id| id.to_string()).collect();
        diag.error(
            &file,
            &ptr,
            format!("dependency cycle: {}", path.join(" -> ")),
            Some("break the cycle: a guest cannot need itself".into()),
        );
    }
}

/// Checks the files on this host that the given guests refer to: templates, feature scripts,
/// application scripts, host check scripts and mount sources. `severity` is `Warning` for
/// `validate` (the config may be checked away from its host) and `Error` for `run`/`plan`.
pub fn host_references(
    fleet: &Fleet,
    ids: &[GuestId],
    features: &FeatureDirs,
    severity: Severity,
    diag: &Diagnostics,
) {
    for id in ids {
        let Some(g) = fleet.guest(*id) else { continue };
        let file = fleet.file_of(g.kind());
        let at = fleet.pointer_of(g);
        let missing = |ptr: String, what: &str, path: &Path, hint: &str| {
            diag.push(
                severity,
                &file,
                &ptr,
                format!("{what} {} does not exist on this host", path.display()),
                Some(hint.to_string()),
            );
        };
        let features_list = match g {
            GuestRef::Ct(c) => &c.features,
            GuestRef::Vm(v) => &v.features,
        };
        for (i, f) in features_list.iter().enumerate() {
            if features.find(f).is_none() {
                diag.push(
                    severity,
                    &file,
                    &format!("{at}/features/{i}"),
                    format!(
                        "feature {f:?} has no script {f}.sh in {}",
                        features.describe()
                    ),
                    Some(
                        "add the script to one of those directories, or --features-dir DIR".into(),
                    ),
                );
            }
        }
        let GuestRef::Ct(c) = g else { continue };
        if let Some(t) = &c.template {
            if c.clone_from.is_none() && !Path::new(t).is_file() {
                missing(
                    format!("{at}/template"),
                    "template",
                    Path::new(t),
                    "build or download the rootfs tarball first",
                );
            }
        }
        if let Some(s) = &c.application_script {
            let p = resolve(fleet, s);
            if !p.is_file() {
                missing(
                    format!("{at}/application_script"),
                    "application script",
                    &p,
                    "paths are relative to the config directory",
                );
            }
        }
        for (i, h) in c.health_checks.iter().enumerate() {
            let p = resolve(fleet, &h.script);
            if !p.is_file() {
                missing(
                    format!("{at}/health_checks/{i}/script"),
                    "host check script",
                    &p,
                    "paths are relative to the config directory",
                );
            }
        }
        for (i, m) in c.mount_points.iter().enumerate() {
            if !Path::new(&m.host_path).exists() {
                missing(
                    format!("{at}/mount_points/{i}/host_path"),
                    "mount source",
                    Path::new(&m.host_path),
                    "create it on the host first",
                );
            }
        }
    }
}

/// A path from the configuration: absolute as written, else relative to the config directory.
pub fn resolve(fleet: &Fleet, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    match &fleet.dir {
        Some(d) => d.join(p),
        None => p.to_path_buf(),
    }
}

//! Checks across guests and files: id clashes, references, duplicate addresses. (Cycles need the
//! graph and are checked by [`crate::graph::Graph::report_cycles`]; the files on the host that
//! guests refer to by `crate::ops::host_files`.)

use super::diagnostics::{Diagnostics, Severity};
use super::fleet::{Fleet, GuestKind, GuestRef};
use super::values::{GuestId, IpConfig, Mac};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// Checks the fleet as a whole. In a partial fleet (single files), references to ids that may
/// live in another file are warnings.
pub fn check(fleet: &Fleet, diag: &Diagnostics) {
    let unknown_ref = if fleet.partial {
        Severity::Warning
    } else {
        Severity::Error
    };
    vm_ids(fleet, diag);
    let mut addresses = Addresses::default();
    for g in fleet.guests() {
        clone_source(fleet, g, unknown_ref, diag);
        dependencies(fleet, g, unknown_ref, diag);
        if let GuestRef::Ct(c) = g {
            addresses.check(fleet, c, diag);
            if c.network.is_none() && c.base.clone_from.is_none() {
                diag.error(&fleet.file_of(GuestKind::Lxc), &fleet.pointer_of(g), "missing required field `network_config`", Some("{\"bridge\": \"vmbr0\", \"ip\": \"10.254.10.11/24\", \"gw\": \"10.254.10.1\"}".into()));
            }
        }
    }
}

/// VM ids are unique, and no VM shares an id with a container.
fn vm_ids(fleet: &Fleet, diag: &Diagnostics) {
    let vm_file = fleet.file_of(GuestKind::Vm);
    let mut seen: BTreeMap<GuestId, usize> = BTreeMap::new();
    for (i, v) in fleet.vm.vms.iter().enumerate() {
        let id = v.base.id;
        if let Some(first) = seen.insert(id, i) {
            diag.error(
                &vm_file,
                &format!("/vms/{i}/vmid"),
                format!("VM id {id} is already used by /vms/{first}"),
                None,
            );
        }
        if fleet.lxc.containers.contains_key(&id) {
            diag.error(
                &vm_file,
                &format!("/vms/{i}/vmid"),
                format!("id {id} is used by a container and a VM"),
                Some(format!(
                    "containers and VMs share one id space; {} defines /lxc_configs/{id} too",
                    fleet.file_of(GuestKind::Lxc)
                )),
            );
        }
    }
}

/// A clone source must exist, be of the same kind, and (containers) name a snapshot.
fn clone_source(fleet: &Fleet, g: GuestRef<'_>, unknown_ref: Severity, diag: &Diagnostics) {
    let Some(parent) = g.clone_from() else {
        return;
    };
    let key = match g {
        GuestRef::Ct(_) => "clone_from_ctid",
        GuestRef::Vm(_) => "clone_from_vmid",
    };
    let file = fleet.file_of(g.kind());
    let ptr = format!("{}/{key}", fleet.pointer_of(g));
    match fleet.guest(parent) {
        None => diag.push(
            unknown_ref,
            &file,
            &ptr,
            format!("clone source {parent} does not exist"),
            Some(format!("define {parent} or fix {key}")),
        ),
        Some(p) if p.kind() != g.kind() => diag.error(
            &file,
            &ptr,
            format!("clone source {parent} is a {}, but {} is a {}", p.kind(), g.id(), g.kind()),
            Some("containers clone containers and VMs clone VMs".into()),
        ),
        Some(GuestRef::Ct(pc))
            if pc.base.template_snapshot_name.is_none() && !pc.base.is_template =>
        {
            diag.error(
                &file,
                &ptr,
                format!("clone source {parent} has no `template_snapshot_name` and is no template"),
                Some(format!("add \"template_snapshot_name\": \"final-form\" to {parent} (clones start from that snapshot), or, on Proxmox, \"is_template\": true")),
            )
        }
        Some(_) => {}
    }
}

fn dependencies(fleet: &Fleet, g: GuestRef<'_>, unknown_ref: Severity, diag: &Diagnostics) {
    for (i, dep) in g.dependencies().iter().enumerate() {
        let ptr = || format!("{}/dependencies/{i}", fleet.pointer_of(g));
        if *dep == g.id() {
            diag.error(
                &fleet.file_of(g.kind()),
                &ptr(),
                format!("{} depends on itself", g.id()),
                None,
            );
        } else if fleet.guest(*dep).is_none() {
            diag.push(
                unknown_ref,
                &fleet.file_of(g.kind()),
                &ptr(),
                format!("dependency {dep} does not exist"),
                Some("define it or remove it from dependencies".into()),
            );
        }
    }
}

/// Static addresses and explicit MACs, each given to one container only.
#[derive(Default)]
struct Addresses {
    ips: BTreeMap<Ipv4Addr, GuestId>,
    macs: BTreeMap<Mac, GuestId>,
}

impl Addresses {
    fn check(&mut self, fleet: &Fleet, c: &super::lxc::Container, diag: &Diagnostics) {
        let file = fleet.file_of(GuestKind::Lxc);
        let at = fleet.pointer_of(GuestRef::Ct(c));
        let id = c.base.id;
        if let Some(IpConfig::Static(cidr)) = c.network.as_ref().map(|n| n.ip) {
            // Upstream files did this, and the guests were built (one of them unreachable):
            // loaded, with a warning.
            if let Some(other) = self.ips.insert(cidr.addr, id) {
                diag.warning(
                    &file,
                    &format!("{at}/network_config/ip"),
                    format!(
                        "address {} is also given to {other}: only one of them will be reachable",
                        cidr.addr
                    ),
                    Some("give each guest its own address".into()),
                );
            }
        }
        if c.mac_address.is_some() || c.network.as_ref().is_some_and(|n| n.hwaddr.is_some()) {
            let mac = c.effective_mac();
            if let Some(other) = self.macs.insert(mac, id) {
                diag.error(
                    &file,
                    &format!("{at}/mac_address"),
                    format!("MAC {mac} is also given to {other}"),
                    None,
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

//! `phoenix_hypervisor_config.json`: host-wide settings. Phoenix reads what its pipeline needs in
//! typed form (paths, network, firewall, storage ids, secrets); the host-setup sections are kept as
//! they are for the host job.

use super::common::{self, FirewallRule};
use super::decode::Node;
use super::host_storage::{self, PveStorage};
use super::values::{check_token, Secret, Token};
use super::vm::{self, Vm, VmDefaults};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Serialize)]
pub struct HostFirewall {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_input_policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_output_policy: Option<String>,
    pub rules: Vec<FirewallRule>,
    /// Where it was found: `/firewall` (current) or `/shared_volumes/firewall` (until Nov 2025).
    pub found_at: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PortainerApi {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_password: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub portainer_hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Secret>,
}

/// The `phoenix` section: where Phoenix drives this node from (flags and environment win).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PhoenixSection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct HypervisorFile {
    pub phoenix: PhoenixSection,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lxc_config_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vm_config_file: Option<String>,
    pub dns_nameservers: Vec<String>,
    pub proxmox_storage_ids: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firewall: Option<HostFirewall>,
    pub portainer_api: PortainerApi,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ubuntu_release: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount_point_base: Option<String>,
    /// VMs embedded in the hypervisor file (Sept 2025 shape); merged with the VM file.
    #[serde(skip)]
    pub embedded_vms: Vec<Vm>,
    #[serde(skip)]
    pub embedded_vm_defaults: Option<VmDefaults>,
    /// What `phoenix setup` converges (time zone, host name, users, NFS exports).
    pub setup: super::host::HostSetup,
    /// Host-setup sections kept as written (samba, nfs, zfs pools, dns_server, ...). Secrets are
    /// not among them: `users.password_hash` and `portainer_api` are read into [`Secret`]s.
    #[serde(skip)]
    pub host_sections: Map<String, Value>,
}

/// Sections that only host setup reads, kept verbatim.
const HOST_SECTIONS: &[&str] = &[
    "version",
    "author",
    "docker",
    "proxmox_defaults",
    "tests",
    "behavior",
    "step_ca",
    "shared_zfs_volumes",
];

pub fn decode(root: Node<'_>) -> HypervisorFile {
    let Some(o) = root.object() else {
        return HypervisorFile::default();
    };
    let mut h = HypervisorFile::default();
    o.mark("$schema");
    for key in HOST_SECTIONS {
        if let Some(v) = o.get(key) {
            h.host_sections.insert(key.to_string(), v.value.clone());
        }
    }
    h.domain_name = o
        .get("domain_name")
        .and_then(|v| v.node().token(Token::Hostname));
    h.mount_point_base = o
        .get("mount_point_base")
        .and_then(|v| super::lxc::abs_path(v.node()));
    if let Some(v) = o.get("core_paths") {
        if let Some(cp) = v.node().object() {
            let path = |k: &'static str| cp.get(k).and_then(|v| super::lxc::abs_path(v.node()));
            h.lxc_config_file = path("lxc_config_file");
            h.vm_config_file = path("vm_config_file");
            for k in [
                "lxc_config_schema_file",
                "hf_token_file",
                "docker_token_file",
                "docker_images_path",
                "hypervisor_marker_dir",
                "hypervisor_marker",
            ] {
                cp.mark(k);
            }
            cp.finish();
        }
    }
    if let Some(v) = o.get("users") {
        h.setup.users = super::host::users(v.node());
    }
    if let Some(v) = o.get("timezone") {
        h.setup.timezone = super::host::timezone(v.node());
    }
    if let Some(v) = o.get("nfs") {
        h.setup.exports = super::host::exports(v.node());
    }
    if let Some(v) = o.get("host_scripts") {
        h.setup.scripts = super::host::scripts(v.node());
    }
    if let Some(v) = o.get("samba") {
        h.setup.samba = super::host::samba(v.node());
    }
    if let Some(v) = o.get("dns_server") {
        h.setup.dns = super::host::dns_server(v.node());
    }
    if let Some(v) = o.get("apt") {
        h.setup.apt = super::host_system::apt(v.node());
    }
    if let Some(v) = o.get("nvidia_driver") {
        h.setup.nvidia = super::host_system::nvidia(v.node());
    }
    if let Some(v) = o.get("apparmor") {
        h.setup.apparmor_tunables = super::host_system::apparmor(v.node());
    }
    if let Some(v) = o.get("certificate_renewal") {
        h.setup.cert_renewal = super::host_system::cert_renewal(v.node());
    }
    if let Some(v) = o.get("network") {
        network(v.node(), &mut h);
    }
    if let Some(v) = o.get("proxmox_storage_ids") {
        if let Some(ids) = v.node().object() {
            for (key, value) in ids.map() {
                let at = ids.node.child(key, value);
                if let Some(id) = at.node().token(Token::Name) {
                    h.proxmox_storage_ids.insert(key.clone(), id);
                }
            }
        }
    }
    let mut storages = Vec::new();
    if let Some(v) = o.get("zfs") {
        h.setup.zfs = host_storage::zfs(v.node(), &h.proxmox_storage_ids, &mut storages);
    }
    if let Some(server) = &h.setup.nfs_server {
        storages.extend(host_storage::nfs_storages(
            server,
            &h.setup.exports,
            root.file,
        ));
    }
    if let Some(v) = o.get("storages") {
        storages.extend(host_storage::storages(v.node()));
    }
    h.setup.storages = unique_storages(root, storages);
    // The host firewall moved from `shared_volumes.firewall` to top-level `firewall` (Nov 2025).
    if let Some(v) = o.get("shared_volumes") {
        if let Some(sv) = v.node().object() {
            for (key, value) in sv.map() {
                let at = sv.node.child(key, value);
                if key == "firewall" {
                    h.firewall = host_firewall(at.node());
                } else if let Some(vol) = at.node().object() {
                    vol.mark("host_path");
                    vol.mark("mounts");
                    vol.finish();
                }
            }
        }
    }
    if let Some(v) = o.get("firewall") {
        if h.firewall.is_some() {
            v.node().warning(
                "host firewall given both here and under /shared_volumes/firewall; this one wins",
                None,
            );
        }
        h.firewall = host_firewall(v.node());
    }
    if let Some(v) = o.get("phoenix") {
        if let Some(p) = v.node().object() {
            h.phoenix = PhoenixSection {
                host: p.get("host").and_then(|v| {
                    let node = v.node();
                    let s = node.str()?;
                    s.parse::<crate::exec::ssh::Target>()
                        .map_err(|e| {
                            node.error(e, Some("e.g. root@pve1 or root@10.0.0.13:22".into()))
                        })
                        .ok()?;
                    Some(s.to_string())
                }),
                identity: p
                    .get("identity")
                    .and_then(|v| super::lxc::abs_path(v.node())),
                known_hosts: p
                    .get("known_hosts")
                    .and_then(|v| super::lxc::abs_path(v.node())),
                node: p.get("node").and_then(|v| v.node().token(Token::Hostname)),
            };
            p.finish();
        }
    }
    if let Some(v) = o.get("portainer_api") {
        if let Some(p) = v.node().object() {
            h.portainer_api = PortainerApi {
                admin_user: p.opt_str("admin_user"),
                admin_password: p.opt_str("admin_password").map(Secret::new),
                portainer_hostname: p
                    .get("portainer_hostname")
                    .and_then(|v| v.node().token(Token::Hostname)),
                api_key: p.opt_str("api_key").map(Secret::new),
            };
            p.finish();
        }
    }
    if let Some(v) = o.get("vm_defaults") {
        let node = v.node();
        h.ubuntu_release = node.object().and_then(|d| d.opt_str("ubuntu_release"));
        h.embedded_vm_defaults = Some(vm::defaults(node));
    }
    if let Some(v) = o.get("vms") {
        v.node().legacy(
            "VMs embedded in the hypervisor file are a Sept 2025 shape (they are loaded)",
            "phoenix_vm_configs.json: {\"vm_defaults\": <this file's vm_defaults>, \"vms\": <this list>}".into(),
        );
        h.embedded_vms = v.node().list(embedded_vm).unwrap_or_default();
    }
    o.finish();
    h
}

/// An embedded VM. The earliest ones (Sept 5, 2025) have no `vmid`: they never could be built
/// (upstream found VMs by `vms[].vmid` too), so they are left out with a warning, and the rest of
/// the file loads.
fn embedded_vm(n: Node<'_>) -> Option<vm::Vm> {
    let o = n.object()?;
    if o.get("vmid").is_none() {
        let name = o.opt_str("name").unwrap_or_default();
        n.legacy(
            format!("VM {name:?} has no `vmid`: it is left out (it never could be built; upstream looked VMs up by vmid too)"),
            format!("in phoenix_vm_configs.json `vms`: {{\"vmid\": <a free id>, \"name\": {name:?}, \"is_template\": true, \"template_image\": ...}} or {{..., \"clone_from_vmid\": <a template>}}"),
        );
        return None;
    }
    vm::vm(n)
}

fn network(n: Node<'_>, h: &mut HypervisorFile) {
    let Some(o) = n.object() else { return };
    h.setup.hostname = o
        .get("hostname")
        .and_then(|v| v.node().token(Token::Hostname));
    h.setup.nfs_server = o
        .get("nfs_server")
        .and_then(|v| v.node().token(Token::Hostname));
    for k in [
        "portainer_server_ip",
        "portainer_server_port",
        "portainer_agent_port",
        "default_subnet",
        "fallback_dns",
        "external_registry_url",
        "workgroup",
        "public_bridge",
        "internal_bridge",
        "macvlan_vlan_tag",
        "public_vlan_tag",
    ] {
        o.mark(k);
    }
    if let Some(v) = o.get("interfaces") {
        if let Some(i) = v.node().object() {
            let name = i.get("name").and_then(|v| v.node().token(Token::Name));
            let gateway = i
                .get("gateway")
                .and_then(|v| {
                    let node = v.node();
                    let g = node.str()?.parse::<std::net::Ipv4Addr>();
                    g.map_err(|e| node.error(format!("gateway: {e}"), None))
                        .ok()
                })
                .map(|g| g.to_string());
            // One port, or several: "eno1 eno2" or a list.
            let bridge_ports = i.get("bridge_ports").and_then(|v| {
                let node = v.node();
                let ports = node.str_or_list()?;
                let bad = ports.iter().find(|p| check_token(p, Token::Name).is_err());
                match bad {
                    Some(p) => node.error(format!("{p:?} is not an interface name"), None),
                    None => return Some(ports.join(" ")),
                }
                None
            });
            let cidr = i
                .get("address")
                .and_then(|v| v.node().parsed::<super::values::Cidr>());
            h.setup.address = cidr.as_ref().map(|c| c.addr.to_string());
            // A string until Oct 2025, an array since.
            if let Some(v) = i.get("dns_nameservers") {
                h.dns_nameservers = v.node().str_or_list().unwrap_or_default();
                // They reach the node's network configuration: addresses only.
                if let Some(bad) = h
                    .dns_nameservers
                    .iter()
                    .find(|s| s.parse::<std::net::IpAddr>().is_err())
                {
                    v.node()
                        .error(format!("{bad:?} is not an IP address"), None);
                    h.dns_nameservers.clear();
                }
                if v.value.is_string() {
                    v.node().legacy(
                        "`dns_nameservers` as one string is a shape of before Oct 14, 2025",
                        format!(
                            "\"dns_nameservers\": {}",
                            serde_json::json!(h.dns_nameservers)
                        ),
                    );
                }
            }
            if let (Some(name), Some(c)) = (name, cidr) {
                h.setup.interface = Some(super::host_system::Interface {
                    name,
                    address: format!("{}/{}", c.addr, c.prefix),
                    gateway,
                    bridge_ports,
                    dns_nameservers: h.dns_nameservers.clone(),
                });
            }
            i.finish();
        }
    }
    o.finish();
}

/// Storages by id; an id asked for twice is an error at its second place.
fn unique_storages(root: Node<'_>, all: Vec<PveStorage>) -> Vec<PveStorage> {
    let mut out: Vec<PveStorage> = Vec::new();
    for s in all {
        match out.iter().find(|o| o.id == s.id) {
            Some(first) => root.error(
                format!(
                    "storage {:?} is asked for twice: at {} and at {}",
                    s.id, first.found_at, s.found_at
                ),
                Some("give one of them another id (proxmox_storage_ids, or its `id`)".into()),
            ),
            None => out.push(s),
        }
    }
    out
}

fn host_firewall(n: Node<'_>) -> Option<HostFirewall> {
    let o = n.object()?;
    let policy = |k: &'static str| {
        o.get(k).and_then(|v| {
            let node = v.node();
            let p = node.str()?.to_ascii_uppercase();
            if ["ACCEPT", "DROP", "REJECT"].contains(&p.as_str()) {
                Some(p)
            } else {
                node.error(format!("policy {p:?} is not ACCEPT, DROP or REJECT"), None);
                None
            }
        })
    };
    let fw = HostFirewall {
        enabled: o.opt_bool("enabled").unwrap_or(false),
        default_input_policy: policy("default_input_policy"),
        default_output_policy: policy("default_output_policy"),
        rules: o
            .get("global_firewall_rules")
            .and_then(|v| v.node().list(common::firewall_rule))
            .unwrap_or_default(),
        found_at: n.pointer().to_string(),
    };
    o.finish();
    Some(fw)
}

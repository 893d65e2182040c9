//! `phoenix_hypervisor_config.json`: host-wide settings. Phoenix reads what its pipeline needs in
//! typed form (paths, network, firewall, storage ids, secrets); the host-setup sections are kept as
//! they are for the host job.

use super::common::{self, FirewallRule};
use super::decode::Node;
use super::values::{Secret, Token};
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zfs_arc_max_gb: Option<u64>,
    /// `zfs.datasets[].properties`, normalised to a map whatever the file's shape.
    pub dataset_properties: BTreeMap<String, BTreeMap<String, String>>,
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
    "nvidia_driver",
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
    if let Some(v) = o.get("network") {
        network(v.node(), &mut h);
    }
    if let Some(v) = o.get("zfs") {
        zfs(v.node(), &mut h);
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
    for k in [
        "nfs_server",
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
            for k in ["name", "gateway"] {
                i.mark(k);
            }
            h.setup.address = i
                .get("address")
                .and_then(|v| v.node().parsed::<super::values::Cidr>())
                .map(|c| c.addr.to_string());
            // A string until Oct 2025, an array since.
            if let Some(v) = i.get("dns_nameservers") {
                h.dns_nameservers = v.node().str_or_list().unwrap_or_default();
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
            i.finish();
        }
    }
    o.finish();
}

fn zfs(n: Node<'_>, h: &mut HypervisorFile) {
    let Some(o) = n.object() else { return };
    o.mark("pools");
    o.mark("settings");
    h.zfs_arc_max_gb = o.opt_uint("arc_max_gb", 0, 1 << 20);
    if let Some(v) = o.get("arc_max") {
        // Sept 2025: a string like "32G".
        let node = v.node();
        if let Some(s) = node.str() {
            match s.trim_end_matches(['G', 'g']).parse::<u64>() {
                Ok(gb) => {
                    node.legacy(
                        "`arc_max` as a string is a Sept 2025 shape",
                        format!("\"arc_max_gb\": {gb}"),
                    );
                    h.zfs_arc_max_gb = h.zfs_arc_max_gb.or(Some(gb));
                }
                Err(_) => node.error(
                    format!("arc_max {s:?} is not a size in GiB like \"32G\""),
                    Some("use arc_max_gb: 32".into()),
                ),
            }
        }
    }
    if let Some(v) = o.get("datasets") {
        v.node().list(|d| {
            let dobj = d.object()?;
            let name = dobj.opt_str("name");
            let pool = dobj.opt_str("pool");
            for k in [
                "proxmox_storage_type",
                "proxmox_content_type",
                "storage_class",
            ] {
                dobj.mark(k);
            }
            let props = dobj
                .get("properties")
                .map(|p| properties(p.node()))
                .unwrap_or_default();
            dobj.finish();
            if let (Some(name), Some(pool)) = (name, pool) {
                h.dataset_properties.insert(format!("{pool}/{name}"), props);
            }
            Some(())
        });
    }
    o.finish();
}

/// Dataset properties: an object (Sept 2025) or a comma string `k=v,k=v` (since).
fn properties(n: Node<'_>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match n.value {
        Value::String(s) => {
            for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                match part.split_once('=') {
                    Some((k, v)) => {
                        out.insert(k.trim().to_string(), v.trim().to_string());
                    }
                    None => n.error(format!("property {part:?} is not key=value"), None),
                }
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                out.insert(k.clone(), text);
            }
        }
        _ => n.error("expected an object or a \"key=value,...\" string", None),
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

//! `phoenix_vm_configs.json`: `vm_defaults` and the array `vms` (also accepted embedded in the
//! hypervisor file, the Sept 2025 shape).

use super::common::{self, Firewall, TraefikService};
use super::decode::Node;
use super::lxc::{abs_path, CORES, DISK_GB, MEMORY_MB};
use super::values::{Cidr, GuestId, IpConfig, Token};
use serde::Serialize;
use std::net::Ipv4Addr;

#[derive(Debug, Clone, Default, Serialize)]
pub struct VmDefaults {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cores: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_size_gb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_pool: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_bridge: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct VmFile {
    pub defaults: VmDefaults,
    pub vms: Vec<Vm>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmNetwork {
    pub ip: IpConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gw: Option<Ipv4Addr>,
    pub nameservers: Vec<Ipv4Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub searchdomain: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NfsVolume {
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub path: String,
    pub mount_point: String,
    pub server: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DockerStack {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VmSnapshots {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_features: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_features: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Vm {
    pub id: GuestId,
    pub name: String,
    pub is_template: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_snapshot_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clone_from: Option<GuestId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cores: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_size_gb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_pool: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_bridge: Option<String>,
    pub start_at_boot: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_order: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_delay: Option<u64>,
    pub features: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub portainer_role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub portainer_environment_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub portainer_agent_hostname: Option<String>,
    pub snapshots: VmSnapshots,
    pub qm_options: Vec<String>,
    pub volumes: Vec<NfsVolume>,
    pub docker_stacks: Vec<DockerStack>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firewall: Option<Firewall>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<VmNetwork>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traefik_service: Option<TraefikService>,
    pub trigger_sync_on_completion: bool,
    pub dependencies: Vec<GuestId>,
}

const DEAD_KEYS: &[&str] = &[
    "count",
    "dns_records",
    "post_create_scripts",
    "portainer_config",
    "docker_compose_files",
    "mount_points",
    "swarm_role",
    "node_labels",
    "docker_firewall_rules",
    "portainer_admin_user",
    "portainer_admin_password",
];

pub fn defaults(n: Node<'_>) -> VmDefaults {
    let Some(o) = n.object() else {
        return VmDefaults::default();
    };
    let d = VmDefaults {
        template: o.opt_str("template"),
        cores: o.opt_uint("cores", CORES.0, CORES.1),
        memory_mb: o.opt_uint("memory_mb", MEMORY_MB.0, MEMORY_MB.1),
        disk_size_gb: o.opt_uint("disk_size_gb", DISK_GB.0, DISK_GB.1),
        storage_pool: o
            .get("storage_pool")
            .and_then(|v| v.node().token(Token::Name)),
        network_bridge: o
            .get("network_bridge")
            .and_then(|v| v.node().token(Token::Name)),
    };
    // `ubuntu_release` lives here in the hypervisor file's `vm_defaults`.
    o.mark("ubuntu_release");
    o.finish();
    d
}

pub fn decode(root: Node<'_>) -> VmFile {
    let Some(o) = root.object() else {
        return VmFile::default();
    };
    o.mark("$schema");
    let defaults = match o.get("vm_defaults") {
        Some(v) => defaults(v.node()),
        None => VmDefaults::default(),
    };
    let vms = match o.get("vms") {
        Some(v) => v.node().list(vm).unwrap_or_default(),
        None => {
            root.error(
                "missing required field `vms`",
                Some("an array of VM objects, e.g. {\"vms\": [{\"vmid\": 1001, ...}]}".into()),
            );
            Vec::new()
        }
    };
    o.finish();
    VmFile { defaults, vms }
}

pub fn vm(n: Node<'_>) -> Option<Vm> {
    let o = n.object()?;
    for k in DEAD_KEYS {
        o.mark(k);
    }
    let id = o
        .req("vmid", "the VM id, e.g. 1001")
        .and_then(|v| v.node().guest_id());
    let name = o
        .req("name", "the VM name")
        .and_then(|v| v.node().token(Token::Hostname));
    let clone_from = o.get("clone_from_vmid").and_then(|v| v.node().guest_id());
    let name_token = |key: &'static str| o.get(key).and_then(|v| v.node().token(Token::Name));
    let snapshots = o
        .get("snapshots")
        .and_then(|v| {
            let so = v.node().object()?;
            let get = |k: &'static str, alias: &'static str| {
                so.get_alias(k, &[alias])
                    .and_then(|v| v.node().token(Token::Name))
            };
            let s = VmSnapshots {
                pre_features: get("pre-features", "pre_features"),
                post_features: get("post-features", "post_features"),
            };
            so.finish();
            Some(s)
        })
        .unwrap_or_default();
    let network = o.get("network_config").and_then(|v| vm_network(v.node()));
    let username = o.get("user_config").and_then(|v| {
        let uo = v.node().object()?;
        let u = uo.get("username").and_then(|v| v.node().token(Token::Name));
        uo.mark("gw");
        uo.finish();
        u
    });
    let docker_stacks = o
        .get("docker_stacks")
        .and_then(|v| {
            v.node().list(|n| match n.value {
                serde_json::Value::String(_) => n.token(Token::Name).map(|name| DockerStack {
                    name,
                    environment: None,
                }),
                _ => {
                    let so = n.object()?;
                    let name = so
                        .req("name", "the stack's directory name under stacks/")
                        .and_then(|v| v.node().token(Token::Name));
                    let environment = so
                        .get("environment")
                        .and_then(|v| v.node().token(Token::Name));
                    so.finish();
                    Some(DockerStack {
                        name: name?,
                        environment,
                    })
                }
            })
        })
        .unwrap_or_default();
    let vm = Vm {
        id: id?,
        name: name?,
        is_template: o.opt_bool("is_template").unwrap_or(false),
        template_image: o
            .get("template_image")
            .and_then(|v| v.node().token(Token::Name)),
        template_snapshot_name: name_token("template_snapshot_name"),
        clone_from,
        cores: o.opt_uint("cores", CORES.0, CORES.1),
        memory_mb: o.opt_uint("memory_mb", MEMORY_MB.0, MEMORY_MB.1),
        disk_size_gb: o.opt_uint("disk_size_gb", DISK_GB.0, DISK_GB.1),
        storage_pool: name_token("storage_pool"),
        network_bridge: name_token("network_bridge"),
        start_at_boot: o.opt_bool("start_at_boot").unwrap_or(false),
        boot_order: o.opt_uint("boot_order", 0, 100_000),
        boot_delay: o.opt_uint("boot_delay", 0, 86_400),
        features: common::features(&o),
        portainer_role: name_token("portainer_role"),
        portainer_environment_name: name_token("portainer_environment_name"),
        portainer_agent_hostname: o
            .get("portainer_agent_hostname")
            .and_then(|v| v.node().token(Token::Hostname)),
        snapshots,
        qm_options: o
            .get("qm_options")
            .and_then(|v| v.node().list(|n| n.token(Token::Options)))
            .unwrap_or_default(),
        volumes: o
            .get("volumes")
            .and_then(|v| v.node().list(nfs_volume))
            .unwrap_or_default(),
        docker_stacks,
        firewall: o.get("firewall").and_then(|v| common::firewall(v.node())),
        network,
        username,
        traefik_service: o
            .get("traefik_service")
            .and_then(|v| common::traefik_service(v.node())),
        trigger_sync_on_completion: o.opt_bool("trigger_sync_on_completion").unwrap_or(false),
        dependencies: common::dependencies(&o),
    };
    if vm.clone_from == Some(vm.id) {
        n.error(format!("VM {} clones itself", vm.id), None);
    }
    if !vm.is_template && vm.clone_from.is_none() && vm.template_image.is_none() {
        n.error(
            "VM has neither `clone_from_vmid` nor `is_template` with `template_image`",
            Some("a VM is cloned from a template VM, or is itself a template built from a cloud image".into()),
        );
    }
    o.finish();
    Some(vm)
}

fn vm_network(n: Node<'_>) -> Option<VmNetwork> {
    let o = n.object()?;
    let ip = o
        .req("ip", "CIDR like 10.254.10.21/24, or \"dhcp\"")
        .and_then(|v| {
            let node = v.node();
            if node.str()?.eq_ignore_ascii_case("dhcp") {
                Some(IpConfig::Dhcp)
            } else {
                node.parsed::<Cidr>().map(IpConfig::Static)
            }
        });
    let gw = o.get("gw").and_then(|v| {
        let node = v.node();
        let s = node.str()?;
        s.parse::<Ipv4Addr>()
            .map_err(|_| node.error(format!("gateway {s:?} is not an IPv4 address"), None))
            .ok()
    });
    if let (Some(IpConfig::Static(_)), None) = (ip, gw) {
        n.error(
            "a static `ip` needs a `gw`",
            Some("cloud-init needs the gateway for a static address".into()),
        );
    }
    let nameservers = o
        .get_alias("nameserver", &["nameservers"])
        .and_then(|v| {
            let node = v.node();
            let mut out = Vec::new();
            for s in node.str_or_list()? {
                match s.parse() {
                    Ok(a) => out.push(a),
                    Err(_) => node.error(format!("nameserver {s:?} is not an IPv4 address"), None),
                }
            }
            Some(out)
        })
        .unwrap_or_default();
    let searchdomain = o
        .get("searchdomain")
        .and_then(|v| v.node().token(Token::Hostname));
    o.finish();
    Some(VmNetwork {
        ip: ip?,
        gw,
        nameservers,
        searchdomain,
    })
}

fn nfs_volume(n: Node<'_>) -> Option<NfsVolume> {
    let o = n.object()?;
    let kind = o
        .req("type", "\"nfs\"")
        .and_then(|v| v.node().token(Token::Name));
    let name = o.get("name").and_then(|v| v.node().token(Token::Name));
    let path = o
        .req("path", "the exported path on the server")
        .and_then(|v| abs_path(v.node()));
    let mount_point = o
        .req("mount_point", "absolute path inside the VM")
        .and_then(|v| abs_path(v.node()));
    let server = o
        .req("server", "the NFS server address")
        .and_then(|v| v.node().token(Token::Hostname));
    o.finish();
    Some(NfsVolume {
        kind: kind?,
        name,
        path: path?,
        mount_point: mount_point?,
        server: server?,
    })
}

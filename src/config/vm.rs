//! `phoenix_vm_configs.json`: `vm_defaults` and the array `vms` (also accepted embedded in the
//! hypervisor file, the Sept 2025 shape).

use super::decode::{Node, Obj};
use super::guest::{self, GuestBase};
use super::lxc::{abs_path, ExecVia, CORES, DISK_GB, MEMORY_MB};
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
    /// What every guest has (id, name, clone source, features, dependencies, boot order...).
    #[serde(flatten)]
    pub base: GuestBase,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cores: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_size_gb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_bridge: Option<String>,
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
    pub network: Option<VmNetwork>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// More public keys for the cloud-init user (`user_config.ssh_authorized_keys`), beside
    /// Phoenix's own guest key.
    pub ssh_keys: Vec<String>,
    /// The SHA-256 of `template_image` when it is a URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_image_sha256: Option<String>,
    /// Clone with `--full` even where a linked clone is possible.
    pub full_clone: bool,
    /// Whether cloud-init upgrades the packages at first boot (Proxmox's `ciupgrade`, on by
    /// default there; off here unless asked: features install what they need).
    pub package_upgrade: bool,
    /// How scripts reach the VM: the guest agent (`qm guest exec`, the default) or SSH.
    pub exec_via: ExecVia,
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

/// One entry of `qm_options`: argv words for `qm set` (options start with `-` here). An entry
/// with spaces (`"--vga qxl"`, as Oct 2025 files wrote them) is read as its words, with a warning.
fn qm_option(n: Node<'_>) -> Option<Vec<String>> {
    let s = n.nonempty_str()?;
    let words: Vec<String> = s.split_whitespace().map(String::from).collect();
    if words.len() > 1 {
        n.legacy(
            format!("{s:?} holds {} words; it is read as {words:?}", words.len()),
            format!("one entry per word: {}", serde_json::json!(words)),
        );
    }
    for w in &words {
        // Any word: the option word itself may start with `-`, the rest are plain values.
        let bare = w.trim_start_matches('-');
        if let Err(e) = crate::config::values::check_token(bare, Token::Options) {
            n.error(
                format!("{w:?} {e}"),
                Some("qm_options are `qm set` words: options and plain values".into()),
            );
            return None;
        }
    }
    Some(words)
}

pub fn vm(n: Node<'_>) -> Option<Vm> {
    let o = n.object()?;
    for k in DEAD_KEYS {
        o.mark(k);
    }
    // Without its id a VM has no place in the fleet (its other fields are still checked); with
    // it, it keeps its shape whatever else is wrong (see `GuestBase`).
    let id = o
        .req("vmid", "the VM id, e.g. 1001")
        .and_then(|v| v.node().guest_id());
    let name_token = |key: &'static str| o.get(key).and_then(|v| v.node().token(Token::Name));
    let vm = Vm {
        base: guest::base(id.unwrap_or(GuestId(0)), &o, n, &guest::VM),
        template_image: o.get("template_image").and_then(|v| image(v.node())),
        cores: o.opt_uint("cores", CORES.0, CORES.1),
        memory_mb: o.opt_uint("memory_mb", MEMORY_MB.0, MEMORY_MB.1),
        disk_size_gb: o.opt_uint("disk_size_gb", DISK_GB.0, DISK_GB.1),
        network_bridge: name_token("network_bridge"),
        portainer_role: name_token("portainer_role"),
        portainer_environment_name: name_token("portainer_environment_name"),
        portainer_agent_hostname: o
            .get("portainer_agent_hostname")
            .and_then(|v| v.node().token(Token::Hostname)),
        snapshots: snapshots(&o),
        qm_options: o
            .get("qm_options")
            .and_then(|v| v.node().list(qm_option))
            .map(|words| words.concat())
            .unwrap_or_default(),
        volumes: o
            .get("volumes")
            .and_then(|v| v.node().list(nfs_volume))
            .unwrap_or_default(),
        docker_stacks: o
            .get("docker_stacks")
            .and_then(|v| v.node().list(docker_stack))
            .unwrap_or_default(),
        network: o.get("network_config").and_then(|v| vm_network(v.node())),
        username: username(&o),
        ssh_keys: ssh_keys(&o),
        template_image_sha256: o
            .get("template_image_sha256")
            .and_then(|v| sha256(v.node())),
        full_clone: o.opt_bool("full_clone").unwrap_or(false),
        package_upgrade: o.opt_bool("package_upgrade").unwrap_or(false),
        exec_via: exec_via(&o),
    };
    let b = &vm.base;
    if !b.is_template && b.clone_from.is_none() && vm.template_image.is_none() {
        n.error(
            "VM has neither `clone_from_vmid` nor `is_template` with `template_image`",
            Some("a VM is cloned from a template VM, or is itself a template built from a cloud image".into()),
        );
    }
    o.finish();
    id.map(|_| vm)
}

fn snapshots(o: &Obj<'_>) -> VmSnapshots {
    let Some(v) = o.get("snapshots") else {
        return VmSnapshots::default();
    };
    let Some(so) = v.node().object() else {
        return VmSnapshots::default();
    };
    let get = |k: &'static str, alias: &'static str| {
        so.get_alias(k, &[alias])
            .and_then(|v| v.node().token(Token::Name))
    };
    let s = VmSnapshots {
        pre_features: get("pre-features", "pre_features"),
        post_features: get("post-features", "post_features"),
    };
    so.finish();
    s
}

fn username(o: &Obj<'_>) -> Option<String> {
    let v = o.get("user_config")?;
    let uo = v.node().object()?;
    let u = uo.get("username").and_then(|v| v.node().token(Token::Name));
    uo.mark("gw");
    uo.mark("ssh_authorized_keys");
    uo.finish();
    u
}

/// `user_config.ssh_authorized_keys`: OpenSSH public key lines.
fn ssh_keys(o: &Obj<'_>) -> Vec<String> {
    let Some(user) = o.get("user_config") else {
        return Vec::new();
    };
    let Some(uo) = user.node().object() else {
        return Vec::new();
    };
    let Some(v) = uo.get("ssh_authorized_keys") else {
        return Vec::new();
    };
    let n = v.node();
    n.list(|k| {
        let s = k.nonempty_str()?;
        let words: Vec<&str> = s.split_whitespace().collect();
        if words.len() < 2 || !words[0].starts_with("ssh-") && !words[0].starts_with("ecdsa-") {
            k.error(
                "not an OpenSSH public key",
                Some("one line of a .pub file: \"ssh-ed25519 AAAA... comment\"".into()),
            );
            return None;
        }
        if s.contains(['\n', '\r']) {
            k.error("a key is one line", None);
            return None;
        }
        Some(s.to_string())
    })
    .unwrap_or_default()
}

/// `template_image`: a URL (with `template_image_sha256`), a storage volume, an absolute path on
/// the node, or (upstream's shape) a file name of Ubuntu's cloud images.
fn image(n: Node<'_>) -> Option<String> {
    let s = n.nonempty_str()?;
    let checked = match s.split_once("://") {
        Some(("http" | "https", rest)) => crate::config::values::check_token(rest, Token::Options)
            .map_err(|e| format!("{s:?} {e}")),
        Some(_) => Err(format!("{s:?}: only http and https URLs are fetched")),
        None if s.starts_with('/') || s.contains(':') => {
            crate::config::values::check_token(s, Token::Path).map_err(|e| format!("{s:?} {e}"))
        }
        None => {
            crate::config::values::check_token(s, Token::Name).map_err(|e| format!("{s:?} {e}"))
        }
    };
    match checked {
        Ok(()) => Some(s.to_string()),
        Err(e) => {
            n.error(e, Some("a URL, a storage volume (local:iso/x.img), an absolute path on the node, or an Ubuntu cloud image's file name".into()));
            None
        }
    }
}

fn sha256(n: Node<'_>) -> Option<String> {
    let s = n.nonempty_str()?;
    if s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit()) {
        return Some(s.to_ascii_lowercase());
    }
    n.error("not a SHA-256 (64 hex digits)", None);
    None
}

/// `exec_via`: `qm` (the guest agent, the default) or `ssh`.
fn exec_via(o: &Obj<'_>) -> ExecVia {
    super::lxc::read_exec_via(o, &["qm", "agent", "hypervisor"])
}

/// A stack as a name (`"qdrant"`) or as `{name, environment}`.
fn docker_stack(n: Node<'_>) -> Option<DockerStack> {
    if let serde_json::Value::String(_) = n.value {
        return n.token(Token::Name).map(|name| DockerStack {
            name,
            environment: None,
        });
    }
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

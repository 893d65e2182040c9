//! `phoenix_lxc_configs.json`: the containers, keyed by CTID, and the file-root defaults.

use super::common::{self, GuestHealthCheck, HostCheck};
use super::decode::{Node, Obj};
use super::guest::{self, GuestBase};
use super::values::{parse_gpu_assignment, Cidr, GuestId, IpConfig, Mac, Token};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// Limits checked on resources (Proxmox's own where it has them).
pub const MEMORY_MB: (u64, u64) = (16, 4 * 1024 * 1024);
pub const CORES: (u64, u64) = (1, 8192);
pub const DISK_GB: (u64, u64) = (1, 128 * 1024);

/// The whole LXC file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LxcFile {
    pub nvidia: NvidiaSettings,
    pub containers: BTreeMap<GuestId, Container>,
}

/// The three `nvidia_*` settings. Upstream looks each key up on the container first and falls back
/// to the file root (`jq_get_value`); Phoenix does the same, for these keys only, and says so.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NvidiaSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runfile_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkConfig {
    pub name: String,
    pub bridge: String,
    pub ip: IpConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gw: Option<Ipv4Addr>,
    pub nameservers: Vec<Ipv4Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hwaddr: Option<Mac>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdMap {
    /// `u` or `g`.
    pub kind: char,
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Volume {
    pub name: String,
    /// A Proxmox storage id (upstream calls it `pool`).
    pub storage: String,
    pub size_gb: u64,
    pub mount_point: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MountPoint {
    pub host_path: String,
    pub container_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_gid: Option<u32>,
}

/// How scripts reach a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecVia {
    /// `pct exec` / `lxc-attach`.
    Hypervisor,
    /// SSH to the guest's address.
    Ssh,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PortainerRole {
    None,
    Server,
    Agent,
    Infrastructure,
    Primary,
}

/// One container, with legacy shapes already folded into their current form.
#[derive(Debug, Clone, Serialize)]
pub struct Container {
    /// What every guest has (id, name, clone source, features, dependencies, boot order...).
    #[serde(flatten)]
    pub base: GuestBase,
    pub memory_mb: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_mb: Option<u64>,
    pub cores: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_size_gb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_secondary: Option<NetworkConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<Mac>,
    pub gpus: Vec<u32>,
    pub portainer_role: PortainerRole,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unprivileged: Option<bool>,
    pub enable_lifecycle_snapshots: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_script: Option<String>,
    pub pct_options: Vec<String>,
    pub lxc_options: Vec<String>,
    pub apparmor_profile: String,
    pub apparmor_manages_nesting: bool,
    pub id_maps: Vec<IdMap>,
    pub volumes: Vec<Volume>,
    pub mount_points: Vec<MountPoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap_ca_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<GuestHealthCheck>,
    pub health_checks: Vec<HostCheck>,
    /// `vllm_engine_config`, or the same built from the flat `vllm_*` keys of Sept 2025 files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vllm_engine_config: Option<Map<String, Value>>,
    /// Models the `ollama` feature pulls (`ollama_models`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ollama_models: Vec<String>,
    pub nvidia: NvidiaSettings,
    /// How scripts reach the guest: through the hypervisor (`pct`, the default) or over SSH to
    /// its address (`ssh`).
    pub exec_via: ExecVia,
    /// The user for `exec_via: ssh`.
    pub ssh_user: String,
}

impl Container {
    /// The MAC net0 gets: the configured one, else one derived from the CTID.
    pub fn effective_mac(&self) -> Mac {
        self.network
            .as_ref()
            .and_then(|n| n.hwaddr)
            .or(self.mac_address)
            .unwrap_or_else(|| Mac::for_guest(self.base.id))
    }
}

/// Keys documented upstream that no code reads: accepted silently.
const DEAD_KEYS: &[&str] = &[
    "ports",
    "tests",
    "static_ip",
    "integration_tests",
    "run_integration_tests",
    "vllm",
    "dns_records",
    "public_interface",
];

pub fn decode(root: Node<'_>) -> LxcFile {
    let Some(o) = root.object() else {
        return LxcFile::default();
    };
    o.mark("$schema");
    let nvidia = nvidia_settings(&o);
    let mut containers = BTreeMap::new();
    let mut keys: BTreeMap<GuestId, &str> = BTreeMap::new();
    match o.get("lxc_configs") {
        Some(v) => {
            if let Some(map) = v.node().object() {
                for (key, value) in map.map() {
                    let located = map.node.child(key, value);
                    let node = located.node();
                    let id = match key.parse::<GuestId>() {
                        Ok(id) => id,
                        Err(e) => {
                            node.error(
                                format!("container key {e}"),
                                Some("keys of lxc_configs are CTIDs like \"950\"".into()),
                            );
                            continue;
                        }
                    };
                    if let Some(first) = keys.get(&id) {
                        node.error(
                            format!("container {id} is defined twice: as {first:?} and {key:?}"),
                            Some("both keys are the same CTID; keep one definition".into()),
                        );
                        continue;
                    }
                    keys.insert(id, key);
                    if let Some(c) = container(id, node, &nvidia) {
                        containers.insert(id, c);
                    }
                }
            }
        }
        None => root.error(
            "missing required field `lxc_configs`",
            Some("an object keyed by CTID, e.g. {\"950\": {...}}".into()),
        ),
    }
    o.finish();
    LxcFile { nvidia, containers }
}

impl NvidiaSettings {
    /// Each setting, falling back to `root`'s.
    fn or(self, root: &NvidiaSettings) -> NvidiaSettings {
        NvidiaSettings {
            driver_version: self.driver_version.or_else(|| root.driver_version.clone()),
            repo_url: self.repo_url.or_else(|| root.repo_url.clone()),
            runfile_url: self.runfile_url.or_else(|| root.runfile_url.clone()),
        }
    }
}

fn nvidia_settings(o: &Obj<'_>) -> NvidiaSettings {
    NvidiaSettings {
        driver_version: o.opt_str("nvidia_driver_version"),
        repo_url: o.opt_str("nvidia_repo_url"),
        runfile_url: o.opt_str("nvidia_runfile_url"),
    }
}

fn container(id: GuestId, node: Node<'_>, root_nvidia: &NvidiaSettings) -> Option<Container> {
    let o = node.object()?;
    for k in DEAD_KEYS {
        o.mark(k);
    }
    let required = |key: &'static str, hint: &str, (min, max): (u64, u64)| {
        o.req(key, hint).and_then(|v| v.node().uint(min, max))
    };
    let host_hooks = o.opt_bool("allow_host_hooks").unwrap_or(false);
    // A wrong required value is reported; the container keeps its place in the fleet (its
    // clones and dependents are checked against it) with a zero that nothing ever runs with.
    let c = Container {
        base: guest::base(id, &o, node, &guest::CONTAINER),
        memory_mb: required("memory_mb", "RAM in MiB, e.g. 2048", MEMORY_MB).unwrap_or(0),
        cores: required("cores", "number of CPU cores", CORES).unwrap_or(0),
        swap_mb: o.opt_uint("swap_mb", 0, MEMORY_MB.1),
        template: o
            .get_alias("template", &["template_file"])
            .and_then(|v| v.node().token(Token::Path)),
        storage_size_gb: o.opt_uint("storage_size_gb", DISK_GB.0, DISK_GB.1),
        network: o
            .get("network_config")
            .and_then(|v| network_config(v.node())),
        network_secondary: o
            .get("secondary_network_config")
            .and_then(|v| network_config(v.node())),
        mac_address: o.get("mac_address").and_then(|v| v.node().parsed::<Mac>()),
        gpus: gpus(&o),
        portainer_role: portainer_role(&o),
        unprivileged: o.opt_bool("unprivileged"),
        enable_lifecycle_snapshots: o.opt_bool("enable_lifecycle_snapshots").unwrap_or(false),
        application_script: o
            .get("application_script")
            .and_then(|v| v.node().token(Token::Path)),
        pct_options: o
            .get("pct_options")
            .and_then(|v| v.node().list(|n| n.token(Token::Options)))
            .unwrap_or_default()
            .into_iter()
            .chain(common::pct_features_in_features(&o))
            .collect(),
        lxc_options: o
            .get("lxc_options")
            .and_then(|v| v.node().list(|n| host_safe(n, host_hooks)))
            .unwrap_or_default(),
        apparmor_profile: o
            .get("apparmor_profile")
            .and_then(|v| v.node().token(Token::Name))
            .unwrap_or_else(|| "unconfined".into()),
        apparmor_manages_nesting: o.opt_bool("apparmor_manages_nesting").unwrap_or(false),
        id_maps: o
            .get("id_maps")
            .and_then(|v| v.node().list(id_map))
            .unwrap_or_default(),
        volumes: volumes(&o),
        mount_points: o
            .get("mount_points")
            .and_then(|v| v.node().list(mount_point))
            .unwrap_or_default(),
        bootstrap_ca_url: o
            .get("bootstrap_ca_url")
            .and_then(|v| v.node().token(Token::Options)),
        health_check: o
            .get("health_check")
            .and_then(|v| common::guest_health_check(v.node())),
        health_checks: o
            .get("health_checks")
            .and_then(|v| v.node().list(common::host_check))
            .unwrap_or_default(),
        vllm_engine_config: vllm(&o),
        ollama_models: o
            .get("ollama_models")
            .and_then(|v| v.node().list(|n| n.token(Token::Options)))
            .unwrap_or_default(),
        nvidia: nvidia_settings(&o).or(root_nvidia),
        exec_via: exec_via(&o),
        ssh_user: o
            .get("ssh_user")
            .and_then(|v| v.node().token(Token::Name))
            .unwrap_or_else(|| "root".into()),
    };
    check_container(&c, node);
    o.finish();
    Some(c)
}

/// What no single field can say is wrong.
fn check_container(c: &Container, node: Node<'_>) {
    let ssh_needs_static_ip = c.exec_via == ExecVia::Ssh
        && !c
            .network
            .as_ref()
            .is_some_and(|n| matches!(n.ip, IpConfig::Static(_)));
    if ssh_needs_static_ip {
        node.error(
            "exec_via \"ssh\" needs a static `ip` in network_config",
            Some("scripts reach the guest at that address".into()),
        );
    }
    match (&c.template, c.base.clone_from) {
        (None, None) => node.error(
            "container has neither `template` nor `clone_from_ctid`",
            Some(
                "set `template` to a rootfs tarball, or `clone_from_ctid` to a parent template"
                    .into(),
            ),
        ),
        (Some(_), Some(_)) => node.warning(
            "both `template` and `clone_from_ctid` are set; the clone wins",
            None,
        ),
        _ => {}
    }
}

fn gpus(o: &Obj<'_>) -> Vec<u32> {
    o.get("gpu_assignment")
        .and_then(|v| {
            let n = v.node();
            let s = n.str()?;
            parse_gpu_assignment(s).map_err(|e| n.error(e, None)).ok()
        })
        .unwrap_or_default()
}

fn portainer_role(o: &Obj<'_>) -> PortainerRole {
    let Some(v) = o.get("portainer_role") else {
        return PortainerRole::None;
    };
    let n = v.node();
    match n.str() {
        Some("none") | None => PortainerRole::None,
        Some("server") => PortainerRole::Server,
        Some("agent") => PortainerRole::Agent,
        Some("infrastructure") => PortainerRole::Infrastructure,
        Some("primary") => PortainerRole::Primary,
        Some(other) => {
            n.error(
                format!("portainer_role {other:?} is not one of none, server, agent, infrastructure, primary"),
                None,
            );
            PortainerRole::None
        }
    }
}

fn exec_via(o: &Obj<'_>) -> ExecVia {
    read_exec_via(o, &["pct", "lxc", "hypervisor"])
}

/// `exec_via`: `ssh`, or one of `hypervisor` (the first is the one to suggest).
pub(super) fn read_exec_via(o: &Obj<'_>, hypervisor: &[&str]) -> ExecVia {
    let Some(v) = o.get("exec_via") else {
        return ExecVia::Hypervisor;
    };
    let n = v.node();
    match n.str() {
        Some("ssh") => ExecVia::Ssh,
        Some(w) if hypervisor.contains(&w) => ExecVia::Hypervisor,
        None => ExecVia::Hypervisor,
        Some(other) => {
            let first = hypervisor.first().copied().unwrap_or("hypervisor");
            n.error(
                format!("exec_via {other:?} is not \"{first}\" or \"ssh\""),
                None,
            );
            ExecVia::Hypervisor
        }
    }
}

/// `zfs_volumes` and the legacy `volumes`, in that order.
fn volumes(o: &Obj<'_>) -> Vec<Volume> {
    ["zfs_volumes", "volumes"]
        .into_iter()
        .flat_map(|key| {
            o.get(key)
                .and_then(|v| v.node().list(volume))
                .unwrap_or_default()
        })
        .collect()
}

fn network_config(n: Node<'_>) -> Option<NetworkConfig> {
    let o = n.object()?;
    let name = o.get("name").map(|v| {
        let node = v.node();
        let s = node.token(Token::Name)?;
        if s.len() > 15 {
            node.error(
                format!("interface name {s:?} is longer than 15 characters"),
                None,
            );
            return None;
        }
        Some(s)
    });
    let name = match name {
        Some(n) => n,
        None => Some("eth0".to_string()),
    };
    let bridge = o
        .req("bridge", "the host bridge, e.g. vmbr0")
        .and_then(|v| {
            let node = v.node();
            let s = node.token(Token::Name)?;
            if s.len() > 15 {
                node.error(
                    format!("bridge name {s:?} is longer than 15 characters"),
                    None,
                );
                return None;
            }
            Some(s)
        });
    let ip = o
        .req("ip", "CIDR like 10.254.10.11/24, or \"dhcp\"")
        .and_then(|v| {
            let node = v.node();
            let s = node.str()?;
            if s.eq_ignore_ascii_case("dhcp") {
                Some(IpConfig::Dhcp)
            } else {
                node.parsed::<Cidr>().map(IpConfig::Static)
            }
        });
    let gw = o.get("gw").and_then(|v| {
        let node = v.node();
        let s = node.str()?;
        s.trim()
            .parse::<Ipv4Addr>()
            .map_err(|_| node.error(format!("gateway {s:?} is not an IPv4 address"), None))
            .ok()
    });
    if let (Some(IpConfig::Static(cidr)), Some(gw)) = (ip, gw) {
        if !cidr.contains(gw) || gw == cidr.addr {
            let at = n.child("gw", n.value);
            at.node().error(
                format!("gateway {gw} is not a different address in the network of {cidr}"),
                Some("the gateway must sit in the guest's own subnet".into()),
            );
        }
    }
    let nameservers = o
        .get_alias("nameservers", &["nameserver"])
        .and_then(|v| {
            let node = v.node();
            let list = node.str_or_list()?;
            let mut out = Vec::new();
            for s in list {
                match s.parse::<Ipv4Addr>() {
                    Ok(a) => out.push(a),
                    Err(_) => node.error(format!("nameserver {s:?} is not an IPv4 address"), None),
                }
            }
            Some(out)
        })
        .unwrap_or_default();
    let hwaddr = o.get("hwaddr").and_then(|v| v.node().parsed::<Mac>());
    o.finish();
    Some(NetworkConfig {
        name: name?,
        bridge: bridge?,
        ip: ip?,
        gw,
        nameservers,
        hwaddr,
    })
}

fn id_map(n: Node<'_>) -> Option<IdMap> {
    let o = n.object()?;
    let kind = o.req("type", "\"uid\" or \"gid\"").and_then(|v| {
        let node = v.node();
        match node.str()? {
            "u" | "uid" => Some('u'),
            "g" | "gid" => Some('g'),
            other => {
                node.error(
                    format!("id map type {other:?} is not \"uid\" or \"gid\""),
                    None,
                );
                None
            }
        }
    });
    let id = |key: &'static str| {
        o.req(key, "a numeric id")
            .and_then(|v| v.node().uint(0, u64::from(u32::MAX - 1)))
    };
    let container_id = id("container_id");
    let host_id = id("host_id");
    let size = o.opt_uint("size", 1, 1 << 31).unwrap_or(1);
    o.finish();
    Some(IdMap {
        kind: kind?,
        container_id: container_id? as u32,
        host_id: host_id? as u32,
        size: size as u32,
    })
}

fn volume(n: Node<'_>) -> Option<Volume> {
    let o = n.object()?;
    let name = o
        .req("name", "a label for the volume")
        .and_then(|v| v.node().token(Token::Name));
    let storage = o
        .req("pool", "the Proxmox storage id")
        .and_then(|v| v.node().token(Token::Name));
    let size_gb = o
        .req("size_gb", "size in GiB")
        .and_then(|v| v.node().uint(1, DISK_GB.1));
    let mount_point = o
        .req("mount_point", "absolute path inside the container")
        .and_then(|v| abs_path(v.node()));
    o.finish();
    Some(Volume {
        name: name?,
        storage: storage?,
        size_gb: size_gb?,
        mount_point: mount_point?,
    })
}

fn mount_point(n: Node<'_>) -> Option<MountPoint> {
    let o = n.object()?;
    let host_path = o
        .req("host_path", "absolute path on the host")
        .and_then(|v| abs_path(v.node()));
    let container_path = o
        .req("container_path", "absolute path inside the container")
        .and_then(|v| abs_path(v.node()));
    let owner_uid = o
        .opt_uint("owner_uid", 0, u64::from(u32::MAX - 1))
        .map(|v| v as u32);
    let owner_gid = o
        .opt_uint("owner_gid", 0, u64::from(u32::MAX - 1))
        .map(|v| v as u32);
    o.finish();
    Some(MountPoint {
        host_path: host_path?,
        container_path: container_path?,
        owner_uid,
        owner_gid,
    })
}

/// Keys of `lxc_options` lines that make the host run a program (hooks, network scripts) or read
/// a config file (includes) of the line's choosing.
const HOST_PROGRAM_KEYS: &[&str] = &[
    "lxc.hook",
    "lxc.net.*.script",
    "lxc.network.*.script",
    "lxc.network.script",
    "lxc.include",
];

/// An `lxc_options` line that names no program for the host to run (nor a config file to read),
/// unless the container allows host hooks (`"allow_host_hooks": true`). Other lines with host
/// reach (mounts, devices, capabilities) stay allowed: GPU passthrough needs them.
fn host_safe(n: Node<'_>, allowed: bool) -> Option<String> {
    let line = n.token(Token::ConfigLine)?;
    let key = line.split([':', '=']).next().unwrap_or_default().trim();
    let runs = HOST_PROGRAM_KEYS.iter().find(|k| key_matches(key, k));
    match runs {
        Some(k) if !allowed => {
            n.error(
                format!("{key:?} makes the host run a program as root ({k}...)"),
                Some("set \"allow_host_hooks\": true on this container if you mean it".into()),
            );
            None
        }
        _ => Some(line),
    }
}

/// `key` is `pattern` or below it (`lxc.hook.pre-start` under `lxc.hook`); `*` stands for one
/// dotted part (`lxc.net.0.script.up` under `lxc.net.*.script`).
fn key_matches(key: &str, pattern: &str) -> bool {
    let mut parts = key.split('.');
    pattern.split('.').all(|p| {
        parts
            .next()
            .is_some_and(|k| p == "*" || k.eq_ignore_ascii_case(p))
    })
}

/// An absolute path without shell metacharacters.
pub fn abs_path(n: Node<'_>) -> Option<String> {
    let p = n.token(Token::Path)?;
    if !p.starts_with('/') {
        n.error(format!("{p:?} is not an absolute path"), None);
        return None;
    }
    Some(p)
}

/// `vllm_engine_config`, or one built from the legacy flat keys (`vllm_model`, ...), with a
/// warning that shows it.
fn vllm(o: &Obj<'_>) -> Option<Map<String, Value>> {
    const FLAT: &[(&str, &str, &str)] = &[
        ("vllm_model", "ModelConfig", "model"),
        ("vllm_trust_remote_code", "ModelConfig", "trust_remote_code"),
        ("vllm_max_model_len", "ModelConfig", "max_model_len"),
        ("vllm_model_type", "ModelConfig", "task"),
        ("vllm_quantization", "CacheConfig", "quantization"),
        (
            "vllm_gpu_memory_utilization",
            "CacheConfig",
            "gpu_memory_utilization",
        ),
        (
            "vllm_tensor_parallel_size",
            "ParallelConfig",
            "tensor_parallel_size",
        ),
        ("vllm_port", "ServerConfig", "port"),
        (
            "vllm_served_model_name",
            "ServerConfig",
            "served_model_name",
        ),
    ];
    if let Some(v) = o.get("vllm_engine_config") {
        for (k, _, _) in FLAT {
            o.mark(k);
        }
        o.mark("vllm_args");
        o.mark("vllm_parameters");
        return v.node().object().map(|obj| obj.map().clone());
    }
    let mut out: Map<String, Value> = Map::new();
    let mut first = None;
    for (key, section, field) in FLAT {
        if let Some(v) = o.get(key) {
            let entry = out
                .entry(section.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = entry {
                m.insert(field.to_string(), vllm_task(key, v.value));
            }
            first.get_or_insert(v);
        }
    }
    for legacy in ["vllm_parameters", "vllm_args"] {
        if let Some(v) = o.get(legacy) {
            out.insert(
                legacy.trim_start_matches("vllm_").to_string(),
                v.value.clone(),
            );
            first.get_or_insert(v);
        }
    }
    if let Some(v) = first {
        v.node().legacy(
            "flat `vllm_*` keys are a Sept 2025 shape; they are read as vllm_engine_config",
            format!("\"vllm_engine_config\": {}", Value::Object(out.clone())),
        );
    }
    (!out.is_empty()).then_some(out)
}

/// `vllm_model_type` (`chat`, `embedding`) as vLLM's `--task`; other keys as they are.
fn vllm_task(key: &str, v: &Value) -> Value {
    match (key, v.as_str()) {
        ("vllm_model_type", Some("embedding")) => Value::from("embed"),
        ("vllm_model_type", Some("chat")) => Value::from("generate"),
        _ => v.clone(),
    }
}

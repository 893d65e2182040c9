//! Proxmox VE containers through `pct` (and `pvesh` for firewall rules), run on the node itself
//! or over SSH (any [`Runner`]). Only what differs from `pct config` is set. Raw `lxc.*` lines
//! (GPU devices, id maps, AppArmor, `lxc_options`) are written into `/etc/pve/lxc/CTID.conf`
//! idempotently and removed when no longer asked for: Proxmox turns comments into the
//! description, so the lines Phoenix owns are recorded beside it, on the node, in
//! `/var/lib/phoenix/pve/CTID.<step>`. Snapshots are matched by exact name; the root filesystem
//! is grown, never shrunk.

use super::cgroup::CgroupVersion;
use super::lxc::gpu_lines;
use super::lxc_config::normalise_option;
use super::pct::{props, snapshot_names, PctConfig};
use super::{idmap, Applied, BackendError, Capabilities, Hypervisor, Result, RunState, Setting};
use crate::config::common::{Direction, FirewallRule};
use crate::config::lxc::Container;
use crate::config::values::IpConfig;
use crate::config::GuestId;
use crate::exec::{Cmd, Output, Runner};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub const DEFAULT_CONF_DIR: &str = "/etc/pve/lxc";
pub const DEFAULT_OWNED_DIR: &str = "/var/lib/phoenix/pve";

pub struct ProxmoxBackend {
    runner: Arc<dyn Runner>,
    /// Directory holding `pct` and `pvesh`; `None`: found on the node's PATH.
    tools: Option<PathBuf>,
    conf_dir: PathBuf,
    owned_dir: PathBuf,
    node: OnceLock<String>,
}

fn owned_setting(s: &Setting) -> bool {
    matches!(
        s,
        Setting::Security { .. }
            | Setting::IdMaps { .. }
            | Setting::RawOptions(_)
            | Setting::Gpus(_)
    )
}

impl ProxmoxBackend {
    pub fn new(
        runner: Arc<dyn Runner>,
        tools: Option<PathBuf>,
        conf_dir: PathBuf,
        owned_dir: PathBuf,
        node: Option<String>,
    ) -> ProxmoxBackend {
        let cell = OnceLock::new();
        if let Some(n) = node {
            let _ = cell.set(n);
        }
        ProxmoxBackend {
            runner,
            tools,
            conf_dir,
            owned_dir,
            node: cell,
        }
    }

    fn tool(&self, name: &str) -> String {
        match &self.tools {
            Some(d) => d.join(name).display().to_string(),
            None => name.to_string(),
        }
    }

    fn pct<I: IntoIterator<Item = String>>(&self, args: I) -> Vec<String> {
        std::iter::once(self.tool("pct")).chain(args).collect()
    }

    fn act(&self, argv: Vec<String>, timeout_s: u64) -> Result<Output> {
        Ok(self
            .runner
            .run(&Cmd::act(argv).timeout(Duration::from_secs(timeout_s)))?)
    }

    fn config(&self, id: GuestId) -> Result<PctConfig> {
        let out = self
            .runner
            .output(&Cmd::probe(self.pct(["config".into(), id.to_string()])))?;
        if !out.success() {
            if self.state(id)?.is_none() {
                return Err(BackendError::NotFound(id));
            }
            return Err(BackendError::Invalid(format!(
                "pct config {id}: {}",
                out.tail(5)
            )));
        }
        Ok(PctConfig::parse(&out.stdout_str()))
    }

    fn node(&self) -> Result<String> {
        if let Some(n) = self.node.get() {
            return Ok(n.clone());
        }
        let n = self
            .runner
            .run(&Cmd::probe(["hostname"]))?
            .stdout_str()
            .trim()
            .to_string();
        let _ = self.node.set(n.clone());
        Ok(n)
    }

    fn read_remote(&self, path: &Path) -> Result<Option<String>> {
        let out = self
            .runner
            .output(&Cmd::probe(["cat".to_string(), path.display().to_string()]))?;
        Ok(out.success().then(|| out.stdout_str()))
    }

    /// The raw lines a step wants, in Proxmox syntax (`key: value`).
    fn raw_lines(&self, s: &Setting) -> Result<Vec<String>> {
        let pve = |line: String| match line.split_once(" = ") {
            Some((k, v)) => format!("{k}: {v}"),
            None => line,
        };
        Ok(match s {
            Setting::Security {
                apparmor_profile,
                nesting,
                ..
            } => {
                let mut v = Vec::new();
                if apparmor_profile != "unconfined" || *nesting {
                    v.push(format!("lxc.apparmor.profile: {apparmor_profile}"));
                }
                if *nesting {
                    v.push("lxc.apparmor.allow_nesting: 1".to_string());
                    v.push("lxc.include: /usr/share/lxc/config/nesting.conf".to_string());
                }
                v
            }
            Setting::IdMaps {
                unprivileged: true,
                maps,
            } if !maps.is_empty() => idmap::lines(maps)
                .map_err(BackendError::Invalid)?
                .into_iter()
                .map(pve)
                .collect(),
            Setting::IdMaps { .. } => Vec::new(),
            Setting::RawOptions(opts) => opts.iter().map(|o| pve(normalise_option(o))).collect(),
            // Proxmox VE 7 and later are cgroup v2 only.
            Setting::Gpus(g) => gpu_lines(g, CgroupVersion::V2)
                .into_iter()
                .filter(|l| !l.starts_with('#'))
                .map(pve)
                .collect(),
            _ => Vec::new(),
        })
    }

    fn owned_path(&self, id: GuestId, step: &str) -> PathBuf {
        self.owned_dir.join(format!("{id}.{step}"))
    }

    /// The `pct set` arguments a setting needs (empty: nothing differs).
    fn set_args(&self, id: GuestId, s: &Setting, c: &PctConfig) -> Result<Vec<String>> {
        let mut args: Vec<String> = Vec::new();
        /// Adds `--key value` when it differs, `--delete key` when it should go.
        fn want(args: &mut Vec<String>, c: &PctConfig, key: &str, value: Option<String>) {
            match (value, c.get(key)) {
                (Some(v), Some(cur)) if cur == v => {}
                (Some(v), _) => args.extend([format!("--{key}"), v]),
                (None, Some(_)) => args.extend(["--delete".to_string(), key.to_string()]),
                (None, None) => {}
            }
        }
        match s {
            Setting::Hostname(name) => want(&mut args, c, "hostname", Some(name.clone())),
            Setting::Resources {
                memory_mb,
                swap_mb,
                cores,
            } => {
                want(&mut args, c, "memory", Some(memory_mb.to_string()));
                want(&mut args, c, "swap", Some(swap_mb.to_string()));
                want(&mut args, c, "cores", Some(cores.to_string()));
            }
            Setting::Network { nics, nameservers } => {
                for n in nics {
                    let key = format!("net{}", n.index);
                    let mut p = vec![
                        format!("name={}", n.name),
                        format!("bridge={}", n.bridge),
                        format!("hwaddr={}", n.hwaddr),
                    ];
                    match n.ip {
                        IpConfig::Dhcp => p.push("ip=dhcp".into()),
                        IpConfig::Static(cidr) => p.push(format!("ip={cidr}")),
                    }
                    if let Some(gw) = n.gw {
                        p.push(format!("gw={gw}"));
                    }
                    p.push(format!("firewall={}", u8::from(n.firewall)));
                    p.push("type=veth".into());
                    let desired: BTreeMap<String, String> = props(&p.join(","));
                    let same = c.get(&key).map(props).is_some_and(|cur| {
                        desired
                            .iter()
                            .all(|(k, v)| cur.get(k).is_some_and(|c| c.eq_ignore_ascii_case(v)))
                    });
                    if !same {
                        args.extend([format!("--{key}"), p.join(",")]);
                    }
                }
                let ns = nameservers
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(" ");
                want(&mut args, c, "nameserver", (!ns.is_empty()).then_some(ns));
            }
            Setting::Startup {
                onboot,
                order,
                delay,
            } => {
                want(&mut args, c, "onboot", Some(u8::from(*onboot).to_string()));
                let startup = order.map(|o| {
                    let mut s = format!("order={o}");
                    if let Some(d) = delay {
                        s.push_str(&format!(",up={d},down={d}"));
                    }
                    s
                });
                want(&mut args, c, "startup", startup);
            }
            Setting::Security { features, .. } => {
                let mut f = features.clone();
                f.sort();
                let cur = c.get("features").map(|v| {
                    let mut x: Vec<&str> = v.split(',').collect();
                    x.sort();
                    x.join(",")
                });
                let joined = f.join(",");
                if f.is_empty() {
                    want(&mut args, c, "features", None);
                } else if cur.as_deref() != Some(joined.as_str()) {
                    args.extend(["--features".to_string(), joined]);
                }
            }
            Setting::IdMaps { unprivileged, .. } => {
                let cur = c.get("unprivileged") == Some("1");
                if cur != *unprivileged {
                    return Err(BackendError::Invalid(format!(
                        "{id}: unprivileged is {cur} on the node but the configuration asks for {unprivileged}; Proxmox cannot change it after creation (delete and rebuild the guest)"
                    )));
                }
            }
            Setting::Mounts { binds, volumes, .. } => {
                let existing = c.mount_points();
                let mut keep = Vec::new();
                let mut add = Vec::new();
                for b in binds {
                    let value = format!("{},mp={}", b.host_path, b.container_path);
                    match existing.iter().find(|(_, v)| {
                        props(v).get("").map(String::as_str) == Some(&b.host_path)
                            && props(v).get("mp") == Some(&b.container_path)
                    }) {
                        Some((i, _)) => keep.push(*i),
                        None => add.push(value),
                    }
                }
                for vol in volumes {
                    let found = existing.iter().find(|(_, v)| {
                        let p = props(v);
                        p.get("mp") == Some(&vol.mount_point)
                            && p.get("")
                                .is_some_and(|src| src.starts_with(&format!("{}:", vol.storage)))
                    });
                    match found {
                        Some((i, _)) => keep.push(*i),
                        None => add.push(format!(
                            "{}:{},mp={}",
                            vol.storage, vol.size_gb, vol.mount_point
                        )),
                    }
                }
                for (i, _) in &existing {
                    if !keep.contains(i) {
                        args.extend(["--delete".to_string(), format!("mp{i}")]);
                    }
                }
                let mut free = (0u32..)
                    .filter(|i| keep.contains(i) || !existing.iter().any(|(e, _)| e == i))
                    .filter(|i| !keep.contains(i));
                for value in add {
                    if let Some(i) = free.next() {
                        args.extend([format!("--mp{i}"), value]);
                    }
                }
            }
            Setting::RootfsSize(_)
            | Setting::Firewall { .. }
            | Setting::RawOptions(_)
            | Setting::Gpus(_) => {}
        }
        Ok(args)
    }

    /// Firewall rules as the node has them, in order.
    fn firewall_rules(&self, id: GuestId) -> Result<Vec<FirewallRule>> {
        let path = format!("/nodes/{}/lxc/{id}/firewall/rules", self.node()?);
        let out = self.runner.run(&Cmd::probe([
            self.tool("pvesh"),
            "get".into(),
            path,
            "--output-format".into(),
            "json".into(),
        ]))?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| BackendError::Invalid(format!("pvesh rules of {id}: {e}")))?;
        let mut rules: Vec<(u64, FirewallRule)> = v
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(rule_from_json)
            .collect();
        rules.sort_by_key(|(pos, _)| *pos);
        Ok(rules.into_iter().map(|(_, r)| r).collect())
    }
}

fn rule_from_json(v: &serde_json::Value) -> Option<(u64, FirewallRule)> {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(String::from);
    Some((
        v.get("pos")?.as_u64()?,
        FirewallRule {
            direction: if s("type")? == "out" {
                Direction::Out
            } else {
                Direction::In
            },
            action: s("action")?.to_ascii_uppercase(),
            proto: s("proto"),
            source: s("source"),
            dest: s("dest"),
            port: s("dport"),
            iface: s("iface"),
            comment: s("comment"),
        },
    ))
}

/// What must change to turn `have` into `want`: rules to delete (positions, highest first) and
/// rules to create (with their positions). Rules already in place at the start are kept.
pub fn firewall_plan(
    have: &[FirewallRule],
    want: &[FirewallRule],
) -> (Vec<usize>, Vec<(usize, FirewallRule)>) {
    let same = have.iter().zip(want).take_while(|(a, b)| a == b).count();
    let delete = (same..have.len()).rev().collect();
    let create = want
        .iter()
        .enumerate()
        .skip(same)
        .map(|(i, r)| (i, r.clone()))
        .collect();
    (delete, create)
}

impl Hypervisor for ProxmoxBackend {
    fn kind(&self) -> &'static str {
        "proxmox"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            firewall: true,
            resize_rootfs: true,
            templates: true,
        }
    }

    fn preflight(&self, ct: &Container) -> Vec<String> {
        let mut p = Vec::new();
        if ct.storage_pool.is_none() && ct.clone_from.is_none() {
            p.push("storage_pool is required by the proxmox backend (the Proxmox storage id for the root disk)".to_string());
        }
        p
    }

    fn state(&self, id: GuestId) -> Result<Option<RunState>> {
        let out = self
            .runner
            .output(&Cmd::probe(self.pct(["status".into(), id.to_string()])))?;
        if !out.success() {
            let text = format!(
                "{}{}",
                out.stdout_str(),
                String::from_utf8_lossy(&out.stderr)
            );
            if text.contains("does not exist") {
                return Ok(None);
            }
            return Err(BackendError::Invalid(format!(
                "pct status {id}: {}",
                out.tail(5)
            )));
        }
        Ok(Some(if out.stdout_str().contains("status: running") {
            RunState::Running
        } else {
            RunState::Stopped
        }))
    }

    /// One `pct list` for all: `VMID Status Lock Name` rows.
    fn states(
        &self,
        ids: &[GuestId],
    ) -> Result<std::collections::HashMap<GuestId, Option<RunState>>> {
        let out = self
            .runner
            .run(&Cmd::probe(self.pct(["list".to_string()])))?;
        let mut listed = std::collections::HashMap::new();
        for line in out.stdout_str().lines().skip(1) {
            let mut cols = line.split_whitespace();
            if let (Some(id), Some(status)) =
                (cols.next().and_then(|i| i.parse::<u32>().ok()), cols.next())
            {
                listed.insert(
                    GuestId(id),
                    if status == "running" {
                        RunState::Running
                    } else {
                        RunState::Stopped
                    },
                );
            }
        }
        Ok(ids
            .iter()
            .map(|id| (*id, listed.get(id).copied()))
            .collect())
    }

    fn create(&self, ct: &Container, template: &Path) -> Result<()> {
        let storage = ct.storage_pool.clone().unwrap_or_else(|| "local".into());
        let mut args = vec![
            "create".to_string(),
            ct.id.to_string(),
            template.display().to_string(),
            "--hostname".into(),
            ct.name.clone(),
            "--memory".into(),
            ct.memory_mb.to_string(),
            "--swap".into(),
            ct.swap_mb.unwrap_or(0).to_string(),
            "--cores".into(),
            ct.cores.to_string(),
            "--storage".into(),
            storage.clone(),
            "--rootfs".into(),
            format!("{storage}:{}", ct.storage_size_gb.unwrap_or(8)),
            "--unprivileged".into(),
            u8::from(ct.unprivileged.unwrap_or(false)).to_string(),
        ];
        if let Some(n) = &ct.network {
            let mut net = vec![
                format!("name={}", n.name),
                format!("bridge={}", n.bridge),
                format!("hwaddr={}", ct.effective_mac()),
            ];
            match n.ip {
                IpConfig::Dhcp => net.push("ip=dhcp".into()),
                IpConfig::Static(c) => net.push(format!("ip={c}")),
            }
            if let Some(gw) = n.gw {
                net.push(format!("gw={gw}"));
            }
            args.extend(["--net0".into(), net.join(",")]);
            if !n.nameservers.is_empty() {
                args.extend([
                    "--nameserver".into(),
                    n.nameservers
                        .iter()
                        .map(|a| a.to_string())
                        .collect::<Vec<_>>()
                        .join(" "),
                ]);
            }
        }
        self.act(self.pct(args), 900)?;
        Ok(())
    }

    fn clone_from(&self, ct: &Container, parent: GuestId, snapshot: &str) -> Result<()> {
        if !self.snapshots(parent)?.iter().any(|s| s == snapshot) {
            return Err(BackendError::Invalid(format!("parent {parent} has no snapshot named {snapshot:?} (run `phoenix run {parent}` first)")));
        }
        let mut args = vec![
            "clone".to_string(),
            parent.to_string(),
            ct.id.to_string(),
            "--snapname".into(),
            snapshot.to_string(),
            "--hostname".into(),
            ct.name.clone(),
        ];
        if let Some(s) = &ct.storage_pool {
            args.extend(["--storage".into(), s.clone()]);
        }
        self.act(self.pct(args), 1800)?;
        // The clone's config carries the parent's raw lines: it now owns them too, so its own
        // steps remove what it does not ask for (upstream's clones kept their parent's GPUs).
        for step in ["security", "idmap", "lxc_options", "gpu"] {
            if let Some(lines) = self.read_remote(&self.owned_path(parent, step))? {
                self.act(
                    vec![
                        "mkdir".into(),
                        "-p".into(),
                        self.owned_dir.display().to_string(),
                    ],
                    30,
                )?;
                self.runner
                    .put_file(&self.owned_path(ct.id, step), lines.as_bytes(), 0o644)?;
            }
        }
        Ok(())
    }

    fn discard_partial(&self, id: GuestId) -> Result<()> {
        if self.state(id)?.is_some() {
            self.act(
                self.pct([
                    "destroy".into(),
                    id.to_string(),
                    "--force".into(),
                    "1".into(),
                    "--purge".into(),
                    "1".into(),
                ]),
                600,
            )?;
        }
        Ok(())
    }

    fn probe(&self, id: GuestId, s: &Setting) -> Result<bool> {
        let c = self.config(id)?;
        if owned_setting(s) {
            let want = self.raw_lines(s)?;
            let owned: Vec<String> = self
                .read_remote(&self.owned_path(id, s.name()))?
                .unwrap_or_default()
                .lines()
                .map(String::from)
                .collect();
            let stale = owned.iter().any(|l| !want.contains(l) && c.raw.contains(l));
            if stale || !want.iter().all(|l| c.raw.contains(l)) {
                return Ok(false);
            }
        }
        match s {
            Setting::RootfsSize(gb) => {
                let have = c.rootfs_gb();
                if have.is_some_and(|h| h > *gb) {
                    tracing::warn!(%id, have, want = gb, "rootfs is larger than the configuration asks; Phoenix never shrinks a disk");
                }
                Ok(have.is_some_and(|h| h >= *gb))
            }
            Setting::Firewall { enabled, rules } => {
                let have = self.firewall_rules(id)?;
                let want: &[FirewallRule] = if *enabled { rules } else { &[] };
                Ok(have == want)
            }
            Setting::Mounts {
                binds,
                unprivileged,
                ..
            } => {
                if !self.set_args(id, s, &c)?.is_empty() {
                    return Ok(false);
                }
                for b in binds {
                    if b.owner_uid.is_none() && b.owner_gid.is_none() {
                        continue;
                    }
                    let shift = |x: u32| if *unprivileged { idmap::BASE + x } else { x };
                    let out =
                        self.runner
                            .run(&Cmd::probe(["stat", "-c", "%u:%g", &b.host_path]))?;
                    let have = out.stdout_str();
                    let (u, g) = have.trim().split_once(':').unwrap_or(("", ""));
                    if b.owner_uid.is_some_and(|x| u != shift(x).to_string())
                        || b.owner_gid.is_some_and(|x| g != shift(x).to_string())
                    {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            _ => Ok(self.set_args(id, s, &c)?.is_empty()),
        }
    }

    fn apply(&self, id: GuestId, s: &Setting) -> Result<Applied> {
        let c = self.config(id)?;
        let args = self.set_args(id, s, &c)?;
        if !args.is_empty() {
            let mut argv = vec!["set".to_string(), id.to_string()];
            argv.extend(args);
            self.act(self.pct(argv), 300)?;
        }
        match s {
            Setting::RootfsSize(gb) => match c.rootfs_gb() {
                // Larger than asked is reported by the probe; Phoenix never shrinks a disk.
                Some(have) if have >= *gb => {}
                _ => {
                    self.act(
                        self.pct([
                            "resize".into(),
                            id.to_string(),
                            "rootfs".into(),
                            format!("{gb}G"),
                        ]),
                        600,
                    )?;
                }
            },
            Setting::Firewall { enabled, rules } => {
                let node = self.node()?;
                let base = format!("/nodes/{node}/lxc/{id}/firewall");
                let want: &[FirewallRule] = if *enabled { rules } else { &[] };
                let (delete, create) = firewall_plan(&self.firewall_rules(id)?, want);
                for pos in delete {
                    self.act(
                        vec![
                            self.tool("pvesh"),
                            "delete".into(),
                            format!("{base}/rules/{pos}"),
                        ],
                        60,
                    )?;
                }
                for (pos, r) in create {
                    let mut argv = vec![
                        self.tool("pvesh"),
                        "create".into(),
                        format!("{base}/rules"),
                        "--pos".into(),
                        pos.to_string(),
                        "--enable".into(),
                        "1".into(),
                    ];
                    argv.extend([
                        "--type".into(),
                        if r.direction == Direction::Out {
                            "out".into()
                        } else {
                            "in".into()
                        },
                        "--action".into(),
                        r.action.clone(),
                    ]);
                    for (flag, v) in [
                        ("--proto", &r.proto),
                        ("--source", &r.source),
                        ("--dest", &r.dest),
                        ("--dport", &r.port),
                        ("--iface", &r.iface),
                        ("--comment", &r.comment),
                    ] {
                        if let Some(v) = v {
                            argv.extend([flag.to_string(), v.clone()]);
                        }
                    }
                    self.act(argv, 60)?;
                }
                self.act(
                    vec![
                        self.tool("pvesh"),
                        "set".into(),
                        format!("{base}/options"),
                        "--enable".into(),
                        u8::from(*enabled).to_string(),
                    ],
                    60,
                )?;
            }
            Setting::Mounts {
                binds,
                unprivileged,
                ..
            } => {
                for b in binds {
                    let shift = |x: u32| if *unprivileged { idmap::BASE + x } else { x };
                    if b.owner_uid.is_some() || b.owner_gid.is_some() {
                        let owner = format!(
                            "{}:{}",
                            b.owner_uid
                                .map(|u| shift(u).to_string())
                                .unwrap_or_default(),
                            b.owner_gid
                                .map(|g| shift(g).to_string())
                                .unwrap_or_default()
                        );
                        self.act(vec!["chown".into(), owner, b.host_path.clone()], 60)?;
                    }
                }
            }
            _ => {}
        }
        if owned_setting(s) {
            let want = self.raw_lines(s)?;
            let owned_file = self.owned_path(id, s.name());
            let owned: Vec<String> = self
                .read_remote(&owned_file)?
                .unwrap_or_default()
                .lines()
                .map(String::from)
                .collect();
            let conf_path = self.conf_dir.join(format!("{id}.conf"));
            let text = self.read_remote(&conf_path)?.ok_or_else(|| {
                BackendError::Invalid(format!("{} is missing", conf_path.display()))
            })?;
            // Only the main section: snapshot sections keep what they recorded.
            let split = text.find("\n[").map(|i| i + 1).unwrap_or(text.len());
            let (main, snapshots) = text.split_at(split);
            let mut lines: Vec<String> = main
                .lines()
                .filter(|l| !l.trim().is_empty())
                .filter(|l| !owned.contains(&l.to_string()) && !want.contains(&l.to_string()))
                .map(String::from)
                .collect();
            lines.extend(want.iter().cloned());
            let mut out = lines.join("\n");
            out.push('\n');
            if !snapshots.is_empty() {
                out.push('\n');
                out.push_str(snapshots);
            }
            if out != text {
                self.runner.put_file(&conf_path, out.as_bytes(), 0o640)?;
            }
            self.act(
                vec![
                    "mkdir".into(),
                    "-p".into(),
                    self.owned_dir.display().to_string(),
                ],
                30,
            )?;
            self.runner
                .put_file(&owned_file, want.join("\n").as_bytes(), 0o644)?;
        }
        // Raw lines and mount points take effect at the next start.
        let restart = matches!(
            s,
            Setting::Network { .. }
                | Setting::Security { .. }
                | Setting::IdMaps { .. }
                | Setting::RawOptions(_)
                | Setting::Gpus(_)
                | Setting::Mounts { .. }
        );
        if restart && self.state(id)? == Some(RunState::Running) {
            self.stop(id)?;
            self.start(id)?;
            return Ok(Applied::Restarted);
        }
        Ok(Applied::Live)
    }

    fn start(&self, id: GuestId) -> Result<()> {
        match self.state(id)? {
            None => Err(BackendError::NotFound(id)),
            Some(RunState::Running) => Ok(()),
            Some(_) => {
                self.act(self.pct(["start".into(), id.to_string()]), 120)?;
                Ok(())
            }
        }
    }

    fn stop(&self, id: GuestId) -> Result<()> {
        match self.state(id)? {
            None => Err(BackendError::NotFound(id)),
            Some(RunState::Stopped) => Ok(()),
            Some(_) => {
                self.act(self.pct(["stop".into(), id.to_string()]), 120)?;
                Ok(())
            }
        }
    }

    fn destroy(&self, id: GuestId) -> Result<()> {
        if self.state(id)?.is_none() {
            return Ok(());
        }
        self.stop(id)?;
        self.act(
            self.pct([
                "destroy".into(),
                id.to_string(),
                "--purge".into(),
                "1".into(),
            ]),
            600,
        )?;
        Ok(())
    }

    fn snapshots(&self, id: GuestId) -> Result<Vec<String>> {
        let out = self.runner.run(&Cmd::probe(
            self.pct(["listsnapshot".into(), id.to_string()]),
        ))?;
        Ok(snapshot_names(&out.stdout_str()))
    }

    fn snapshot(&self, id: GuestId, name: &str) -> Result<()> {
        // Proxmox clones of a container's snapshot are full copies: the old one can go.
        if self.snapshots(id)?.iter().any(|s| s == name) {
            self.delete_snapshot(id, name)?;
        }
        self.act(
            self.pct(["snapshot".into(), id.to_string(), name.to_string()]),
            900,
        )?;
        Ok(())
    }

    fn delete_snapshot(&self, id: GuestId, name: &str) -> Result<()> {
        self.act(
            self.pct(["delsnapshot".into(), id.to_string(), name.to_string()]),
            600,
        )?;
        Ok(())
    }

    fn discard_partial_snapshots(&self, _id: GuestId) -> Result<()> {
        // `pct snapshot` is a Proxmox task under the guest's lock: it completes or leaves nothing.
        Ok(())
    }

    fn make_template(&self, id: GuestId) -> Result<()> {
        self.stop(id)?;
        self.act(self.pct(["template".into(), id.to_string()]), 600)?;
        Ok(())
    }

    fn is_template(&self, id: GuestId) -> Result<bool> {
        Ok(self.config(id)?.get("template") == Some("1"))
    }

    fn exec(&self, id: GuestId, cmd: &Cmd) -> Result<Output> {
        if !(self.runner.dry_run() && cmd.mutating) && self.state(id)? != Some(RunState::Running) {
            return Err(BackendError::NotRunning(id));
        }
        let mut argv = self.pct([
            "exec".into(),
            id.to_string(),
            "--".into(),
            "env".into(),
            "-i".into(),
        ]);
        argv.extend([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            "HOME=/root".into(),
            "LANG=C.UTF-8".into(),
        ]);
        argv.extend(cmd.env.iter().map(|(k, v)| format!("{k}={v}")));
        argv.extend(cmd.argv.iter().cloned());
        let outer = Cmd {
            argv,
            stdin: cmd.stdin.clone(),
            env: Vec::new(),
            timeout: cmd.timeout,
            mutating: cmd.mutating,
        };
        Ok(self.runner.output(&outer)?)
    }

    fn push(&self, id: GuestId, data: &[u8], path: &str, mode: u32) -> Result<()> {
        let tmp = PathBuf::from(format!(
            "/tmp/phoenix-push-{id}-{}",
            state_machine::now_ms()
        ));
        self.runner.put_file(&tmp, data, 0o600)?;
        let parent = Path::new(path)
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "/".into());
        let mkdir = self.exec(id, &Cmd::act(["mkdir", "-p", &parent]))?;
        let result = if mkdir.success() {
            self.act(
                self.pct([
                    "push".into(),
                    id.to_string(),
                    tmp.display().to_string(),
                    path.to_string(),
                    "--perms".into(),
                    format!("{mode:o}"),
                ]),
                300,
            )
            .map(|_| ())
        } else {
            Err(BackendError::Invalid(format!(
                "mkdir {parent} in guest {id}: {}",
                mkdir.tail(3)
            )))
        };
        let _ = self
            .runner
            .output(&Cmd::act(["rm", "-f", &tmp.display().to_string()]));
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(port: &str) -> FirewallRule {
        FirewallRule {
            direction: Direction::In,
            action: "ACCEPT".into(),
            proto: Some("tcp".into()),
            source: None,
            dest: None,
            port: Some(port.into()),
            iface: None,
            comment: None,
        }
    }

    #[test]
    fn firewall_rules_converge_without_recreating_what_is_in_place() {
        let (d, c) = firewall_plan(&[rule("22"), rule("80")], &[rule("22"), rule("80")]);
        assert!(d.is_empty() && c.is_empty());
        let (d, c) = firewall_plan(&[rule("22"), rule("80")], &[rule("22"), rule("443")]);
        assert_eq!(d, [1]);
        assert_eq!(c, [(1, rule("443"))]);
        let (d, c) = firewall_plan(&[rule("22"), rule("80"), rule("8080")], &[rule("22")]);
        assert_eq!(d, [2, 1], "highest positions first");
        assert!(c.is_empty());
    }
}

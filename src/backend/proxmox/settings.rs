//! Settings through `pct set`: each setting names the `pct` keys it owns, and only what differs
//! from `pct config` is set. What `pct set` cannot express is handled beside it:
//!
//! | setting | besides `pct set` |
//! |---|---|
//! | `security`, `idmap`, `lxc_options`, `gpu` | raw `lxc.*` lines ([`super::raw_lines`]) |
//! | `mounts` | bind-mount owners on the node (shifted when unprivileged) |
//! | `firewall` | rules through `pvesh` ([`super::firewall`]) |
//! | `rootfs_size` | `pct resize`, never shrinking ([`super::rootfs`]) |
//!
//! Settings that take effect at a start ([`Setting::needs_restart`]) restart a running container.

use super::firewall::Kind;
use super::pct::{has_pending, props, PctConfig};
use super::ProxmoxBackend;
use crate::backend::{
    owner, Applied, BackendError, Change, Hypervisor, Live, Nic, Result, RunState, Setting,
};
use crate::config::lxc::{MountPoint, Volume};
use crate::config::values::IpConfig;
use crate::config::GuestId;
use crate::exec::Cmd;
use std::collections::BTreeMap;

impl ProxmoxBackend {
    /// What differs of `s` in the container as `pct config` printed it in `live`.
    pub(super) fn setting_diff(&self, live: &Live, s: &Setting) -> Result<Vec<Change>> {
        let (id, c) = (live.id, PctConfig::parse(&live.config));
        let mut out = arg_changes(&c, &set_args(id, s, &c)?);
        out.extend(self.raw_lines_diff(id, s, &c)?);
        match s {
            Setting::RootfsSize(gb) => out.extend(self.rootfs_diff(id, *gb, &c)),
            Setting::Firewall { enabled, rules } => {
                out.extend(self.firewall_diff(Kind::Ct, id, *enabled, rules)?)
            }
            Setting::Mounts { binds, ids, .. } => out.extend(self.owners_diff(binds, ids)?),
            _ => {}
        }
        Ok(out)
    }

    pub(super) fn apply_setting(&self, id: GuestId, s: &Setting) -> Result<Applied> {
        let c = self.config(id)?;
        let args = set_args(id, s, &c)?;
        if !args.is_empty() {
            let mut argv = vec!["set".to_string(), id.to_string()];
            argv.extend(args);
            self.act(self.pct(argv), 300)?;
        }
        match s {
            Setting::RootfsSize(gb) => self.grow_rootfs(id, *gb, &c)?,
            Setting::Firewall { enabled, rules } => {
                self.converge_firewall(Kind::Ct, id, *enabled, rules)?
            }
            Setting::Mounts { binds, ids, .. } => self.set_owners(binds, ids)?,
            _ => {}
        }
        self.write_raw_lines(id, s)?;
        if self.state(id)? != Some(RunState::Running) {
            return Ok(Applied::Live);
        }
        // Proxmox keeps most changes to a running container pending until its next start
        // (pve-container `update_pct_config`, `vmconfig_hotplug_pending`).
        let pending = self.inspect(id)?.is_some_and(|l| has_pending(&l.config));
        if s.needs_restart() || pending {
            self.stop(id)?;
            self.start(id)?;
            return Ok(Applied::Restarted);
        }
        if let Setting::Hostname(name) = s {
            self.hostname_in_guest(id, name)?;
        }
        Ok(Applied::Live)
    }

    /// A running container's new hostname reaches the guest only at its next start (Proxmox's
    /// setup writes /etc/hostname then): Phoenix sets it now.
    fn hostname_in_guest(&self, id: GuestId, name: &str) -> Result<()> {
        let script = r#"echo "$1" > /etc/hostname && hostname "$1""#;
        let cmd = Cmd::act(["sh", "-c", script, "sh", name]);
        let out = self.exec(id, &cmd)?;
        match out.success() {
            true => Ok(()),
            false => Err(BackendError::Invalid(format!(
                "{id}: setting the hostname in the guest: {}",
                out.tail(3)
            ))),
        }
    }

    fn owners_diff(&self, binds: &[MountPoint], ids: &owner::Ids) -> Result<Vec<Change>> {
        let mut out = Vec::new();
        for b in binds.iter().filter(|b| owner::chown_spec(b, ids).is_some()) {
            let stat = self
                .runner
                .output(&Cmd::probe(["stat", "-c", "%u:%g", &b.host_path]))?;
            let have = stat.success().then(|| stat.stdout_str().trim().to_string());
            out.extend(owner::change(b, ids, have));
        }
        Ok(out)
    }

    fn set_owners(&self, binds: &[MountPoint], ids: &owner::Ids) -> Result<()> {
        for b in binds {
            if let Some(spec) = owner::chown_spec(b, ids) {
                self.act(vec!["chown".into(), spec, b.host_path.clone()], 60)?;
            }
        }
        Ok(())
    }
}

/// The `pct set` arguments a setting needs (empty: nothing differs).
fn set_args(id: GuestId, s: &Setting, c: &PctConfig) -> Result<Vec<String>> {
    let mut args = Args::new(c);
    match s {
        Setting::Hostname(name) => args.want("hostname", Some(name.clone())),
        Setting::Resources {
            memory_mb,
            swap_mb,
            cores,
        } => {
            args.want("memory", Some(memory_mb.to_string()));
            args.want("swap", Some(swap_mb.to_string()));
            args.want("cores", Some(cores.to_string()));
        }
        Setting::Network { nics, nameservers } => {
            for n in nics {
                args.nic(n);
            }
            let ns: Vec<String> = nameservers.iter().map(|n| n.to_string()).collect();
            args.want("nameserver", (!ns.is_empty()).then(|| ns.join(" ")));
        }
        Setting::Startup {
            onboot,
            order,
            delay,
        } => {
            args.want("onboot", Some(u8::from(*onboot).to_string()));
            let startup = order.map(|o| match delay {
                Some(d) => format!("order={o},up={d},down={d}"),
                None => format!("order={o}"),
            });
            args.want("startup", startup);
        }
        Setting::Security { features, .. } => args.features(features),
        Setting::IdMaps { unprivileged, .. } => {
            let cur = c.get("unprivileged") == Some("1");
            if cur != *unprivileged {
                return Err(BackendError::Invalid(format!(
                    "{id}: unprivileged is {cur} on the node but the configuration asks for {unprivileged}; Proxmox cannot change it after creation (delete and rebuild the guest)"
                )));
            }
        }
        Setting::Mounts { binds, volumes, .. } => args.mounts(binds, volumes),
        Setting::RootfsSize(_)
        | Setting::Firewall { .. }
        | Setting::RawOptions(_)
        | Setting::Gpus(_) => {}
    }
    Ok(args.out)
}

/// The `pct set` arguments as changes: `--key value` and `--delete key`.
fn arg_changes(c: &PctConfig, args: &[String]) -> Vec<Change> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let (Some(flag), Some(value)) = (it.next(), it.next()) {
        let (key, want) = match flag.as_str() {
            "--delete" => (value.as_str(), None),
            f => (f.trim_start_matches('-'), Some(value.clone())),
        };
        out.push(Change::new(key, c.get(key).map(String::from), want));
    }
    out
}

/// `pct set` arguments against the current config.
struct Args<'c> {
    current: &'c PctConfig,
    out: Vec<String>,
}

impl<'c> Args<'c> {
    fn new(current: &'c PctConfig) -> Args<'c> {
        Args {
            current,
            out: Vec::new(),
        }
    }

    /// `--key value` when it differs, `--delete key` when it should go.
    fn want(&mut self, key: &str, value: Option<String>) {
        match (value, self.current.get(key)) {
            (Some(v), Some(cur)) if cur == v => {}
            (Some(v), _) => self.out.extend([format!("--{key}"), v]),
            (None, Some(_)) => self.out.extend(["--delete".to_string(), key.to_string()]),
            (None, None) => {}
        }
    }

    /// `netN` when any of its properties differs (MACs compared without case).
    fn nic(&mut self, n: &Nic) {
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
        let value = p.join(",");
        let desired: BTreeMap<String, String> = props(&value);
        let same = self.current.get(&key).map(props).is_some_and(|cur| {
            desired
                .iter()
                .all(|(k, v)| cur.get(k).is_some_and(|c| c.eq_ignore_ascii_case(v)))
        });
        if !same {
            self.out.extend([format!("--{key}"), value]);
        }
    }

    /// `features`, compared as a set.
    fn features(&mut self, features: &[String]) {
        let mut want = features.to_vec();
        want.sort();
        let cur = self.current.get("features").map(|v| {
            let mut x: Vec<&str> = v.split(',').collect();
            x.sort();
            x.join(",")
        });
        let joined = want.join(",");
        if want.is_empty() {
            self.want("features", None);
        } else if cur.as_deref() != Some(joined.as_str()) {
            self.out.extend(["--features".to_string(), joined]);
        }
    }

    /// Mount points matched by path, never re-added; those the config dropped are deleted, new
    /// ones take free indices.
    fn mounts(&mut self, binds: &[MountPoint], volumes: &[Volume]) {
        let existing = self.current.mount_points();
        let mut keep = Vec::new();
        let mut add = Vec::new();
        for b in binds {
            let found = existing.iter().find(|(_, v)| {
                let p = props(v);
                p.get("") == Some(&b.host_path) && p.get("mp") == Some(&b.container_path)
            });
            match found {
                Some((i, _)) => keep.push(*i),
                None => add.push(format!("{},mp={}", b.host_path, b.container_path)),
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
                self.out.extend(["--delete".to_string(), format!("mp{i}")]);
            }
        }
        let mut free = (0u32..).filter(|i| !existing.iter().any(|(e, _)| e == i));
        for value in add {
            if let Some(i) = free.next() {
                self.out.extend([format!("--mp{i}"), value]);
            }
        }
    }
}

//! Plain LXC on the local machine (`lxc-*` commands and the container config files): the default
//! on any Linux host without Proxmox, and what the tests drive for real.
//!
//! Containers are named by CTID under `--lxc-path`. Templates are extracted into a temp directory
//! that is renamed into place, so a crash never leaves half a container. Clones are overlay clones
//! of the parent's named snapshot. Snapshot names live in LXC's snapshot comment files.

use super::cgroup::CgroupVersion;
use super::lxc_config::{normalise_option, section, values, with_key, with_section};
use super::{idmap, Applied, BackendError, Capabilities, Hypervisor, Result, RunState, Setting};
use crate::config::lxc::Container;
use crate::config::values::IpConfig;
use crate::config::GuestId;
use crate::exec::{Cmd, Output, Runner};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_LXC_PATH: &str = "/var/lib/lxc";

pub struct LxcBackend {
    runner: Arc<dyn Runner>,
    path: PathBuf,
    cgroup: CgroupVersion,
    memsw: bool,
}

impl LxcBackend {
    pub fn new(runner: Arc<dyn Runner>, lxc_path: &Path) -> LxcBackend {
        LxcBackend {
            runner,
            path: lxc_path.to_path_buf(),
            cgroup: CgroupVersion::detect(),
            memsw: Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists(),
        }
    }

    fn dir(&self, id: GuestId) -> PathBuf {
        self.path.join(id.to_string())
    }

    fn config_path(&self, id: GuestId) -> PathBuf {
        self.dir(id).join("config")
    }

    fn lxc(&self, tool: &str, id: GuestId) -> Vec<String> {
        vec![
            tool.to_string(),
            "-P".into(),
            self.path.display().to_string(),
            "-n".into(),
            id.to_string(),
        ]
    }

    fn read_config(&self, id: GuestId) -> Result<String> {
        let p = self.config_path(id);
        std::fs::read_to_string(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                BackendError::NotFound(id)
            } else {
                BackendError::Io { path: p, source: e }
            }
        })
    }

    /// Writes a host file (counted as a change; only printed in a dry run).
    fn write_file(&self, path: &Path, content: &[u8]) -> Result<()> {
        self.runner.stats().record(
            &Cmd::act(["write", &path.display().to_string()]),
            Duration::ZERO,
        );
        if self.runner.dry_run() {
            println!("would write: {}", path.display());
            return Ok(());
        }
        tracing::info!(target: "phoenix::exec", path = %path.display(), "write file");
        let tmp = path.with_extension("phoenix-tmp");
        std::fs::write(&tmp, content).map_err(BackendError::io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(BackendError::io(path))
    }

    /// The directory a stopped container's files are written to, and the ones read through.
    fn rootfs_layers(&self, id: GuestId) -> Result<(PathBuf, Vec<PathBuf>)> {
        let config = self.read_config(id)?;
        let rootfs = values(&config, "lxc.rootfs.path").pop().ok_or_else(|| {
            BackendError::Invalid(format!("container {id} has no lxc.rootfs.path"))
        })?;
        let parts: Vec<&str> = rootfs.split(':').collect();
        match parts.as_slice() {
            ["overlay" | "overlayfs", lowers @ .., upper] if !lowers.is_empty() => {
                let mut reads = vec![PathBuf::from(upper)];
                reads.extend(lowers.iter().rev().map(PathBuf::from));
                Ok((PathBuf::from(upper), reads))
            }
            ["dir", p] | [p] => Ok((PathBuf::from(p), vec![PathBuf::from(p)])),
            _ => Err(BackendError::Invalid(format!(
                "container {id}: unsupported rootfs {rootfs:?} (dir and overlay are)"
            ))),
        }
    }

    /// Reads a file of the guest's filesystem from the host.
    fn read_guest_file(&self, id: GuestId, path: &str) -> Result<Option<Vec<u8>>> {
        let (_, reads) = self.rootfs_layers(id)?;
        let rel = path.trim_start_matches('/');
        Ok(reads
            .iter()
            .find_map(|layer| std::fs::read(layer.join(rel)).ok()))
    }

    /// Writes a file into the guest: through the running guest, or into its rootfs when stopped.
    fn write_guest_file(&self, id: GuestId, path: &str, content: &[u8]) -> Result<()> {
        if self.state(id)? == Some(RunState::Running) {
            return self.push(id, content, path, 0o644);
        }
        let (write, _) = self.rootfs_layers(id)?;
        let target = write.join(path.trim_start_matches('/'));
        if let Some(parent) = target.parent() {
            if !self.runner.dry_run() {
                std::fs::create_dir_all(parent).map_err(BackendError::io(parent))?;
            }
        }
        self.write_file(&target, content)
    }

    /// The desired lines of a setting's section.
    fn section_lines(&self, id: GuestId, s: &Setting) -> Result<Vec<String>> {
        Ok(match s {
            Setting::Hostname(_) => Vec::new(),
            Setting::Resources {
                memory_mb,
                swap_mb,
                cores,
            } => self
                .cgroup
                .resource_lines(*memory_mb, *swap_mb, *cores, self.memsw),
            Setting::Network { nics, .. } => {
                let mut v = Vec::new();
                for n in nics {
                    let k = format!("lxc.net.{}", n.index);
                    v.push(format!("{k}.type = veth"));
                    v.push(format!("{k}.link = {}", n.bridge));
                    v.push(format!("{k}.flags = up"));
                    v.push(format!("{k}.name = {}", n.name));
                    v.push(format!(
                        "{k}.hwaddr = {}",
                        n.hwaddr.to_string().to_ascii_lowercase()
                    ));
                    if let IpConfig::Static(cidr) = n.ip {
                        v.push(format!("{k}.ipv4.address = {cidr}"));
                        if let Some(gw) = n.gw {
                            v.push(format!("{k}.ipv4.gateway = {gw}"));
                        }
                    }
                }
                v
            }
            Setting::Startup {
                onboot,
                order,
                delay,
            } => {
                let mut v = vec![format!("lxc.start.auto = {}", u8::from(*onboot))];
                if let Some(o) = order {
                    v.push(format!("lxc.start.order = {o}"));
                }
                if let Some(d) = delay {
                    v.push(format!("lxc.start.delay = {d}"));
                }
                v
            }
            Setting::Security {
                apparmor_profile,
                nesting,
                features,
            } => {
                let mut v = Vec::new();
                let nest = *nesting || features.iter().any(|f| f == "nesting=1");
                // With nesting the nesting.conf include picks the profile; otherwise set ours.
                if nest {
                    v.push("lxc.include = /usr/share/lxc/config/nesting.conf".to_string());
                    v.push("lxc.apparmor.allow_nesting = 1".to_string());
                }
                v.push(format!("lxc.apparmor.profile = {apparmor_profile}"));
                for f in features {
                    match f.as_str() {
                        "nesting=1" | "nesting=0" | "keyctl=0" | "fuse=0" => {}
                        "fuse=1" => v.push("lxc.mount.entry = /dev/fuse dev/fuse none bind,create=file,optional 0 0".to_string()),
                        // Only unprivileged containers filter keyctl; a privileged one has it.
                        "keyctl=1" => {}
                        other => v.push(format!("# Proxmox feature {other} has no plain-LXC equivalent; not applied")),
                    }
                }
                v
            }
            Setting::IdMaps { unprivileged, maps } => {
                if !unprivileged {
                    return Ok(Vec::new());
                }
                let mut v = vec!["lxc.include = /usr/share/lxc/config/userns.conf".to_string()];
                v.extend(idmap::lines(maps).map_err(BackendError::Invalid)?);
                v
            }
            Setting::RawOptions(opts) => opts.iter().map(|o| normalise_option(o)).collect(),
            Setting::Gpus(gpus) => gpu_lines(gpus, self.cgroup),
            Setting::Mounts { binds, volumes, .. } => {
                let mut v = Vec::new();
                for b in binds {
                    let kind = if Path::new(&b.host_path).is_file() {
                        "file"
                    } else {
                        "dir"
                    };
                    v.push(format!(
                        "lxc.mount.entry = {} {} none bind,create={kind} 0 0",
                        b.host_path,
                        b.container_path.trim_start_matches('/')
                    ));
                }
                for vol in volumes {
                    let host = self.dir(id).join("volumes").join(&vol.name);
                    v.push(format!(
                        "lxc.mount.entry = {} {} none bind,create=dir 0 0",
                        host.display(),
                        vol.mount_point.trim_start_matches('/')
                    ));
                }
                v
            }
            Setting::Firewall { .. } | Setting::RootfsSize(_) => {
                return Err(BackendError::Invalid(format!(
                    "{}: the lxc backend cannot apply {}",
                    id,
                    s.name()
                )));
            }
        })
    }

    /// Host ownership a bind mount should have: the container ids, shifted when unprivileged.
    fn wanted_owner(
        uid: Option<u32>,
        gid: Option<u32>,
        unprivileged: bool,
    ) -> (Option<u32>, Option<u32>) {
        let shift = |id: u32| if unprivileged { idmap::BASE + id } else { id };
        (uid.map(shift), gid.map(shift))
    }

    fn find_snapshot_dir(&self, id: GuestId, name: &str) -> Result<Option<String>> {
        Ok(self
            .snapshot_dirs(id)?
            .into_iter()
            .find(|(_, n)| n.as_deref() == Some(name))
            .map(|(d, _)| d))
    }

    /// `(snapN, comment name)` for every snapshot directory.
    fn snapshot_dirs(&self, id: GuestId) -> Result<Vec<(String, Option<String>)>> {
        let snaps = self.dir(id).join("snaps");
        let Ok(entries) = std::fs::read_dir(&snaps) else {
            return Ok(Vec::new());
        };
        let mut out: Vec<(String, Option<String>)> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("config").exists() || e.path().is_dir())
            .map(|e| {
                let dir = e.file_name().to_string_lossy().into_owned();
                let name = std::fs::read_to_string(e.path().join("comment"))
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty());
                (dir, name)
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Applies resource limits to a running container. On cgroup v1 the memory limit may not
    /// exceed memory+swap, so when memory grows memsw goes first, and last when it shrinks.
    fn set_live_limits(&self, id: GuestId, memory_mb: u64, swap_mb: u64, cores: u64) -> Result<()> {
        let mut values = self
            .cgroup
            .live_values(memory_mb, swap_mb, cores, self.memsw);
        let set = |key: &str, value: &str| -> Result<bool> {
            let mut argv = self.lxc("lxc-cgroup", id);
            argv.extend([key.to_string(), value.to_string()]);
            Ok(self.runner.output(&Cmd::act(argv))?.success())
        };
        let fail = |k: &str, v: &str| {
            BackendError::Invalid(format!(
                "{id}: cannot set {k} to {v} on the running container"
            ))
        };
        if let Some(memory) = values
            .iter()
            .position(|(k, _)| k == "memory.limit_in_bytes")
        {
            let (k, v) = values.remove(memory);
            if !set(&k, &v)? {
                // Growing past memory+swap: raise memsw first, then memory.
                if let Some(memsw) = values
                    .iter()
                    .position(|(k, _)| k == "memory.memsw.limit_in_bytes")
                {
                    let (mk, mv) = values.remove(memsw);
                    if !set(&mk, &mv)? {
                        return Err(fail(&mk, &mv));
                    }
                }
                if !set(&k, &v)? {
                    return Err(fail(&k, &v));
                }
            }
        }
        for (k, v) in values {
            if !set(&k, &v)? {
                return Err(fail(&k, &v));
            }
        }
        Ok(())
    }

    fn wait_running(&self, id: GuestId) -> Result<()> {
        let mut wait = self.lxc("lxc-wait", id);
        wait.extend(["-s".into(), "RUNNING".into(), "-t".into(), "10".into()]);
        self.runner
            .run(&Cmd::probe(wait).timeout(Duration::from_secs(15)))?;
        Ok(())
    }
}

/// Device lines for NVIDIA GPUs: the per-GPU nodes, the control nodes, and cgroup permissions
/// with the majors this host actually uses (`/proc/devices`), never a hard-coded 243.
pub fn gpu_lines(gpus: &[u32], cgroup: CgroupVersion) -> Vec<String> {
    if gpus.is_empty() {
        return Vec::new();
    }
    let bind = |dev: &str| {
        format!("lxc.mount.entry = /dev/{dev} dev/{dev} none bind,optional,create=file 0 0")
    };
    let mut v: Vec<String> = gpus.iter().map(|g| bind(&format!("nvidia{g}"))).collect();
    for dev in [
        "nvidiactl",
        "nvidia-uvm",
        "nvidia-uvm-tools",
        "nvidia-modeset",
    ] {
        v.push(bind(dev));
    }
    v.push(
        "lxc.mount.entry = /dev/nvidia-caps dev/nvidia-caps none bind,optional,create=dir 0 0"
            .to_string(),
    );
    let devices = std::fs::read_to_string("/proc/devices").unwrap_or_default();
    let major = |name: &str| {
        devices.lines().find_map(|l| {
            l.split_once(' ')
                .filter(|(_, n)| n.trim() == name)
                .map(|(m, _)| m.trim().to_string())
        })
    };
    let allow = format!("{}.devices.allow", cgroup.prefix());
    v.push(format!("{allow} = c 195:* rwm"));
    for name in ["nvidia-uvm", "nvidia-caps"] {
        match major(name) {
            Some(m) => v.push(format!("{allow} = c {m}:* rwm")),
            None => v.push(format!(
                "# {name} is not loaded on this host: no device permission for it"
            )),
        }
    }
    v
}

impl Hypervisor for LxcBackend {
    fn kind(&self) -> &'static str {
        "lxc"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            firewall: false,
            resize_rootfs: false,
            templates: false,
        }
    }

    fn preflight(&self, ct: &Container) -> Vec<String> {
        let mut problems = Vec::new();
        for net in ct.network.iter().chain(ct.network_secondary.iter()) {
            if !Path::new("/sys/class/net")
                .join(&net.bridge)
                .join("bridge")
                .is_dir()
            {
                problems.push(format!(
                    "bridge {b} does not exist on this host (create it: ip link add {b} type bridge && ip addr add ADDRESS/24 dev {b} && ip link set {b} up)",
                    b = net.bridge
                ));
            }
        }
        if !self.path.is_dir() && std::fs::create_dir_all(&self.path).is_err() {
            problems.push(format!(
                "LXC path {} does not exist and cannot be created",
                self.path.display()
            ));
        }
        problems
    }

    fn state(&self, id: GuestId) -> Result<Option<RunState>> {
        if !self.config_path(id).exists() {
            return Ok(None);
        }
        let mut argv = self.lxc("lxc-info", id);
        argv.extend(["-s".into(), "-H".into()]);
        let out = self
            .runner
            .run(&Cmd::probe(argv).timeout(Duration::from_secs(10)))?;
        Ok(Some(match out.stdout_str().trim() {
            "RUNNING" | "STARTING" => RunState::Running,
            "FROZEN" | "FREEZING" => RunState::Frozen,
            _ => RunState::Stopped,
        }))
    }

    fn create(&self, ct: &Container, template: &Path) -> Result<()> {
        let staging = self.path.join(format!(".phoenix-new-{}", ct.id));
        let rootfs = staging.join("rootfs");
        let compression = match template.extension().and_then(|e| e.to_str()) {
            Some("zst") => "--zstd",
            Some("xz") => "--xz",
            Some("gz" | "tgz") => "--gzip",
            _ => {
                return Err(BackendError::Invalid(format!(
                    "template {} is not .tar.zst, .tar.xz or .tar.gz",
                    template.display()
                )))
            }
        };
        self.runner
            .run(&Cmd::act(["mkdir", "-p", &rootfs.display().to_string()]))?;
        self.runner.run(
            &Cmd::act([
                "tar",
                compression,
                "--numeric-owner",
                "--xattrs",
                "--xattrs-include=*",
                "--acls",
                "-xpf",
                &template.display().to_string(),
                "-C",
                &rootfs.display().to_string(),
            ])
            .timeout(Duration::from_secs(900)),
        )?;
        let final_dir = self.dir(ct.id);
        let config = format!(
            "# Managed by Phoenix: sections between phoenix:begin/end markers are rewritten on every run.\nlxc.rootfs.path = dir:{}/rootfs\nlxc.include = /usr/share/lxc/config/common.conf\nlxc.arch = linux64\nlxc.uts.name = {}\n",
            final_dir.display(),
            ct.id
        );
        self.write_file(&staging.join("config"), config.as_bytes())?;
        self.runner.run(&Cmd::act([
            "mv",
            "-T",
            &staging.display().to_string(),
            &final_dir.display().to_string(),
        ]))?;
        Ok(())
    }

    fn clone_from(&self, ct: &Container, parent: GuestId, snapshot: &str) -> Result<()> {
        let snap = self
            .find_snapshot_dir(parent, snapshot)?
            .ok_or_else(|| BackendError::Invalid(format!("parent {parent} has no snapshot named {snapshot:?} (run `phoenix run {parent}` first)")))?;
        let snaps = self.dir(parent).join("snaps");
        self.runner.run(
            &Cmd::act([
                "lxc-copy",
                "-P",
                &snaps.display().to_string(),
                "-n",
                &snap,
                "-p",
                &self.path.display().to_string(),
                "-N",
                &ct.id.to_string(),
                "-s",
                "-B",
                "overlayfs",
            ])
            .timeout(Duration::from_secs(900)),
        )?;
        Ok(())
    }

    fn discard_partial(&self, id: GuestId) -> Result<()> {
        let staging = self.path.join(format!(".phoenix-new-{id}"));
        if staging.exists() {
            self.runner.run(&Cmd::act([
                "rm",
                "-rf",
                "--one-file-system",
                &staging.display().to_string(),
            ]))?;
        }
        if self.dir(id).exists() {
            let mut argv = self.lxc("lxc-destroy", id);
            argv.extend(["-f".into(), "-s".into()]);
            let out = self.runner.output(&Cmd::act(argv))?;
            if !out.success() && self.dir(id).exists() {
                self.runner.run(&Cmd::act([
                    "rm",
                    "-rf",
                    "--one-file-system",
                    &self.dir(id).display().to_string(),
                ]))?;
            }
        }
        Ok(())
    }

    fn probe(&self, id: GuestId, s: &Setting) -> Result<bool> {
        let config = self.read_config(id)?;
        match s {
            Setting::Hostname(name) => {
                let uts = values(&config, "lxc.uts.name");
                let file = self
                    .read_guest_file(id, "/etc/hostname")?
                    .map(|b| String::from_utf8_lossy(&b).trim().to_string());
                Ok(uts == [name.clone()] && file.as_deref() == Some(name.as_str()))
            }
            Setting::Network { nameservers, .. } => {
                let want = self.section_lines(id, s)?;
                if section(&config, s.name()).unwrap_or_default() != want {
                    return Ok(false);
                }
                if nameservers.is_empty() {
                    return Ok(true);
                }
                let resolv = self
                    .read_guest_file(id, "/etc/resolv.conf")?
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                Ok(resolv == resolv_conf(nameservers))
            }
            Setting::Mounts {
                binds,
                volumes,
                unprivileged,
            } => {
                if section(&config, s.name()).unwrap_or_default() != self.section_lines(id, s)? {
                    return Ok(false);
                }
                let volumes_ok = volumes
                    .iter()
                    .all(|v| self.dir(id).join("volumes").join(&v.name).is_dir());
                let owners_ok = binds.iter().all(|b| {
                    let (uid, gid) = Self::wanted_owner(b.owner_uid, b.owner_gid, *unprivileged);
                    let Ok(m) = std::fs::metadata(&b.host_path) else {
                        return false;
                    };
                    uid.is_none_or(|u| m.uid() == u) && gid.is_none_or(|g| m.gid() == g)
                });
                Ok(volumes_ok && owners_ok)
            }
            _ => Ok(section(&config, s.name()).unwrap_or_default() == self.section_lines(id, s)?),
        }
    }

    fn apply(&self, id: GuestId, s: &Setting) -> Result<Applied> {
        let config = self.read_config(id)?;
        let running = self.state(id)? == Some(RunState::Running);
        match s {
            Setting::Hostname(name) => {
                if values(&config, "lxc.uts.name") != [name.clone()] {
                    self.write_file(
                        &self.config_path(id),
                        with_key(&config, "lxc.uts.name", name).as_bytes(),
                    )?;
                }
                self.write_guest_file(id, "/etc/hostname", format!("{name}\n").as_bytes())?;
                if running {
                    self.exec(id, &Cmd::act(["hostname", name.as_str()]))?;
                }
                return Ok(Applied::Live);
            }
            Setting::Mounts {
                binds,
                volumes,
                unprivileged,
            } => {
                for v in volumes {
                    let dir = self.dir(id).join("volumes").join(&v.name);
                    if !dir.is_dir() {
                        self.runner
                            .run(&Cmd::act(["mkdir", "-p", &dir.display().to_string()]))?;
                    }
                }
                for b in binds {
                    let (uid, gid) = Self::wanted_owner(b.owner_uid, b.owner_gid, *unprivileged);
                    if uid.is_some() || gid.is_some() {
                        let owner = format!(
                            "{}:{}",
                            uid.map(|u| u.to_string()).unwrap_or_default(),
                            gid.map(|g| g.to_string()).unwrap_or_default()
                        );
                        self.runner
                            .run(&Cmd::act(["chown", &owner, &b.host_path]))?;
                    }
                }
            }
            Setting::Network { nameservers, .. } if !nameservers.is_empty() => {
                self.write_guest_file(id, "/etc/resolv.conf", resolv_conf(nameservers).as_bytes())?;
            }
            _ => {}
        }
        let want = self.section_lines(id, s)?;
        if section(&config, s.name()).unwrap_or_default() == want {
            return Ok(Applied::Live);
        }
        let live = matches!(s, Setting::Resources { .. } | Setting::Startup { .. });
        if running && !live {
            self.stop(id)?;
        }
        self.write_file(
            &self.config_path(id),
            with_section(&config, s.name(), &want).as_bytes(),
        )?;
        if let (
            true,
            Setting::Resources {
                memory_mb,
                swap_mb,
                cores,
            },
        ) = (running, s)
        {
            self.set_live_limits(id, *memory_mb, *swap_mb, *cores)?;
        }
        if running && !live {
            self.start(id)?;
            return Ok(Applied::Restarted);
        }
        Ok(Applied::Live)
    }

    fn start(&self, id: GuestId) -> Result<()> {
        match self.state(id)? {
            None => return Err(BackendError::NotFound(id)),
            Some(RunState::Running) => return Ok(()),
            Some(RunState::Frozen) => {
                self.runner.run(&Cmd::act(self.lxc("lxc-unfreeze", id)))?;
                return Ok(());
            }
            Some(RunState::Stopped) => {}
        }
        let mut argv = self.lxc("lxc-start", id);
        argv.push("-d".into());
        self.runner
            .run(&Cmd::act(argv).timeout(Duration::from_secs(60)))?;
        if !self.runner.dry_run() {
            self.wait_running(id)?;
        }
        Ok(())
    }

    fn stop(&self, id: GuestId) -> Result<()> {
        match self.state(id)? {
            None => Err(BackendError::NotFound(id)),
            Some(RunState::Stopped) => Ok(()),
            Some(_) => {
                let mut argv = self.lxc("lxc-stop", id);
                argv.extend(["-t".into(), "20".into()]);
                self.runner
                    .run(&Cmd::act(argv).timeout(Duration::from_secs(40)))?;
                Ok(())
            }
        }
    }

    fn destroy(&self, id: GuestId) -> Result<()> {
        match self.state(id)? {
            None => return Ok(()),
            // `lxc-destroy -f -s` refuses a running container that has snapshots: stop first.
            Some(RunState::Stopped) => {}
            Some(_) => self.stop(id)?,
        }
        let mut argv = self.lxc("lxc-destroy", id);
        argv.extend(["-f".into(), "-s".into()]);
        self.runner
            .run(&Cmd::act(argv).timeout(Duration::from_secs(300)))?;
        Ok(())
    }

    fn snapshots(&self, id: GuestId) -> Result<Vec<String>> {
        Ok(self
            .snapshot_dirs(id)?
            .into_iter()
            .filter_map(|(_, n)| n)
            .collect())
    }

    fn snapshot(&self, id: GuestId, name: &str) -> Result<()> {
        let was_running = self.state(id)? == Some(RunState::Running);
        // LXC cannot snapshot a running container: stop, snapshot, start again.
        if was_running {
            self.stop(id)?;
        }
        // A snapshot of the same name is superseded, not deleted: overlay clones made from it
        // use it as their lower layer. New clones get the new one.
        if let Some(old) = self.find_snapshot_dir(id, name)? {
            let old_comment = self.dir(id).join("snaps").join(old).join("comment");
            self.write_file(
                &old_comment,
                format!("{name}@superseded-{}\n", state_machine::now_ms()).as_bytes(),
            )?;
        }
        let comment = self.dir(id).join(".phoenix-snapshot-comment");
        self.write_file(&comment, format!("{name}\n").as_bytes())?;
        let mut argv = self.lxc("lxc-snapshot", id);
        argv.extend(["-c".into(), comment.display().to_string()]);
        self.runner
            .run(&Cmd::act(argv).timeout(Duration::from_secs(900)))?;
        if was_running {
            self.start(id)?;
        }
        Ok(())
    }

    fn delete_snapshot(&self, id: GuestId, name: &str) -> Result<()> {
        let Some(dir) = self.find_snapshot_dir(id, name)? else {
            return Ok(());
        };
        let mut argv = self.lxc("lxc-snapshot", id);
        argv.extend(["-d".into(), dir]);
        self.runner
            .run(&Cmd::act(argv).timeout(Duration::from_secs(300)))?;
        Ok(())
    }

    fn discard_partial_snapshots(&self, id: GuestId) -> Result<()> {
        for (dir, name) in self.snapshot_dirs(id)? {
            if name.is_none() {
                let mut argv = self.lxc("lxc-snapshot", id);
                argv.extend(["-d".into(), dir]);
                self.runner
                    .run(&Cmd::act(argv).timeout(Duration::from_secs(300)))?;
            }
        }
        Ok(())
    }

    fn exec(&self, id: GuestId, cmd: &Cmd) -> Result<Output> {
        if !(self.runner.dry_run() && cmd.mutating) && self.state(id)? != Some(RunState::Running) {
            return Err(BackendError::NotRunning(id));
        }
        let mut argv = self.lxc("lxc-attach", id);
        argv.push("--clear-env".into());
        for (k, v) in [
            (
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            ),
            ("HOME", "/root"),
            ("LANG", "C.UTF-8"),
        ] {
            argv.extend(["--set-var".into(), format!("{k}={v}")]);
        }
        for (k, v) in &cmd.env {
            argv.extend(["--set-var".into(), format!("{k}={v}")]);
        }
        argv.push("--".into());
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
        // The script is constant; the path and mode travel as positional arguments.
        let cmd = Cmd::act([
            "/bin/sh",
            "-c",
            "mkdir -p -- \"$(dirname -- \"$1\")\" && cat > \"$1\" && chmod \"$2\" \"$1\"",
            "sh",
            path,
            &format!("{mode:o}"),
        ])
        .stdin(data.to_vec())
        .timeout(Duration::from_secs(120));
        let out = self.exec(id, &cmd)?;
        if !out.success() {
            return Err(BackendError::Invalid(format!(
                "writing {path} in guest {id} failed: {}",
                out.tail(5)
            )));
        }
        Ok(())
    }
}

fn resolv_conf(nameservers: &[std::net::Ipv4Addr]) -> String {
    let mut s = String::from("# Managed by Phoenix\n");
    for ns in nameservers {
        s.push_str(&format!("nameserver {ns}\n"));
    }
    s
}

//! Plain LXC on the local machine (`lxc-*` commands and the container config files): the default
//! on any Linux host without Proxmox, and what the tests drive for real.
//!
//! Containers are named by CTID under `--lxc-path`. By concern:
//! - [`rootfs`]: creating (a template extracted into a temp directory renamed into place, so a
//!   crash never leaves half a container), overlay clones of a parent's named snapshot, the guest's
//!   files read and written from the host;
//! - [`settings`]: each setting as a section of the config file ([`sections`] says which lines),
//!   with what else it needs (the hostname file, resolv.conf, volume directories, owners);
//! - [`snapshots`]: named through LXC's snapshot comment files;
//! - [`exec`]: commands and files inside the running guest.

pub mod config_file;
mod exec;
mod images;
mod rootfs;
mod sections;
mod settings;
mod snapshots;

use super::cgroup::CgroupVersion;
use super::files;
use super::{
    Applied, BackendError, Capabilities, Change, Hypervisor, Live, Refusal, Result, RunState,
    Setting, TaskSink,
};
use crate::config::lxc::Container;
use crate::config::GuestId;
use crate::exec::{Cmd, Output, Runner};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_LXC_PATH: &str = "/var/lib/lxc";

pub struct LxcBackend {
    runner: Arc<dyn Runner>,
    path: PathBuf,
    cgroup: CgroupVersion,
    memsw: bool,
    /// Held while an image is looked up or unpacked: containers created in parallel from one
    /// tarball unpack it once.
    image_lock: std::sync::Mutex<()>,
}

impl LxcBackend {
    pub fn new(runner: Arc<dyn Runner>, lxc_path: &Path) -> LxcBackend {
        LxcBackend {
            runner,
            path: lxc_path.to_path_buf(),
            cgroup: CgroupVersion::detect(),
            memsw: Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists(),
            image_lock: std::sync::Mutex::new(()),
        }
    }

    fn dir(&self, id: GuestId) -> PathBuf {
        self.path.join(id.to_string())
    }

    fn config_path(&self, id: GuestId) -> PathBuf {
        self.dir(id).join("config")
    }

    /// `tool -P <lxc path> -n <id>`.
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

    /// Writes a host file atomically, through the runner (counted as a change; only reported in
    /// a dry run).
    fn write_file(&self, path: &Path, content: &[u8]) -> Result<()> {
        Ok(self.runner.put_file(path, content, 0o644)?)
    }

    fn wait_running(&self, id: GuestId) -> Result<()> {
        let mut wait = self.lxc("lxc-wait", id);
        wait.extend(["-s".into(), "RUNNING".into(), "-t".into(), "10".into()]);
        self.runner
            .run(&Cmd::probe(wait).timeout(Duration::from_secs(15)))?;
        Ok(())
    }

    /// What this host lacks for `ct`: its bridges, the LXC path, its template and mount sources.
    fn host_problems(&self, ct: &Container) -> Vec<Refusal> {
        let mut problems = Vec::new();
        for (field, net) in [
            ("network_config", &ct.network),
            ("network_config_secondary", &ct.network_secondary),
        ] {
            let Some(net) = net else { continue };
            let bridge = Path::new("/sys/class/net").join(&net.bridge).join("bridge");
            if !bridge.is_dir() {
                problems.push(Refusal::new(
                    format!("{field}/bridge"),
                    format!("bridge {} does not exist on this host", net.bridge),
                    format!("create it: ip link add {b} type bridge && ip addr add ADDRESS/24 dev {b} && ip link set {b} up", b = net.bridge),
                ));
            }
        }
        if !files::creatable(&self.path) {
            problems.push(Refusal::new(
                "",
                format!(
                    "LXC path {} does not exist and cannot be created",
                    self.path.display()
                ),
                "give --lxc-path a directory Phoenix can create",
            ));
        }
        problems.extend(files::missing(ct, |p| Path::new(p).exists()));
        problems
    }
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
            storage_locks: false,
        }
    }

    fn preflight(&self, ct: &Container, _: Option<&Container>, _: Option<&str>) -> Vec<Refusal> {
        self.host_problems(ct)
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

    fn create(&self, ct: &Container, template: &str, _: TaskSink) -> Result<()> {
        self.create_from_template(ct, Path::new(template))
    }

    fn clone_from(
        &self,
        ct: &Container,
        parent: GuestId,
        snapshot: Option<&str>,
        _: TaskSink,
    ) -> Result<()> {
        let snapshot = snapshot.ok_or_else(|| {
            BackendError::Invalid(format!("{parent} is a template; plain LXC has none"))
        })?;
        self.clone_snapshot(ct, parent, snapshot)
    }

    fn discard_partial(&self, id: GuestId) -> Result<()> {
        self.discard_partial_container(id)
    }

    fn inspect(&self, id: GuestId) -> Result<Option<Live>> {
        match self.read_config(id) {
            Ok(config) => Ok(Some(Live {
                id,
                config,
                template: false,
                snapshots: None,
            })),
            Err(BackendError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn diff(&self, live: &Live, s: &Setting) -> Result<Vec<Change>> {
        self.setting_diff(live, s)
    }

    fn apply(&self, id: GuestId, s: &Setting) -> Result<Applied> {
        self.apply_setting(id, s)
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
        self.prune_images()
    }

    fn snapshots(&self, id: GuestId) -> Result<Vec<String>> {
        self.snapshot_names(id)
    }

    fn snapshot(&self, id: GuestId, name: &str, _: TaskSink) -> Result<()> {
        self.take_snapshot(id, name)
    }

    fn delete_snapshot(&self, id: GuestId, name: &str) -> Result<()> {
        self.remove_snapshot(id, name)
    }

    fn discard_partial_snapshots(&self, id: GuestId) -> Result<()> {
        self.remove_unnamed_snapshots(id)
    }

    /// `lxc-snapshot` writes the comment (the name) after the copy: a named one is complete.
    fn snapshot_identity(&self, id: GuestId, name: &str) -> Result<Option<String>> {
        self.find_snapshot_dir(id, name)
    }

    fn exec(&self, id: GuestId, cmd: &Cmd) -> Result<Output> {
        self.attach(id, cmd)
    }

    fn push(&self, id: GuestId, data: &[u8], path: &str, mode: u32) -> Result<()> {
        self.push_file(id, data, path, mode)
    }
}

//! Proxmox VE containers through the node's own tools (`pct`; `pvesh` for tasks and firewall
//! rules; `pvesm`, `pveam`), run on the node itself or over SSH (any [`Runner`]), checked against
//! Proxmox VE 9's source (see the README). By concern:
//! - [`node`]: where the node keeps things, and what is read there (name, storages, devices);
//! - [`preflight`]: what the node would refuse, found before any change;
//! - [`tasks`]: create, clone and snapshot as tasks that survive an interrupted run; locks held
//!   by other operations waited out;
//! - [`settings`]: only what differs from the current config is set (`pct set`);
//! - [`raw_lines`]: raw `lxc.*` lines (GPU devices, id maps, AppArmor, `lxc_options`) written into
//!   `/etc/pve/lxc/CTID.conf` under its config lock and removed when no longer asked for; Proxmox
//!   turns comments into the description, so the lines Phoenix owns are recorded on the node;
//! - [`firewall`]: per-guest rules through `pvesh`, in order, without recreating what is in place;
//! - [`rootfs`]: create and clone, and the root disk grown, never shrunk;
//! - [`snapshots`]: matched by exact name; templates;
//! - [`exec`]: `pct exec` / `pct push` with a clean environment;
//! - [`pct`]: reading the config file (sections, pending changes) and `pct list`;
//! - [`qm`] and [`vm_settings`]: VMs (create from a cloud image, clone, `qm set`, the agent).

mod exec;
mod firewall;
mod node;
pub mod pct;
mod preflight;
mod qm;
mod raw_lines;
mod rootfs;
mod settings;
mod snapshots;
mod tasks;
mod vm_settings;

use super::{
    Applied, BackendError, Capabilities, Change, Hypervisor, Live, Refusal, Result, RunState,
    Setting, TaskEnd, TaskSink,
};
use crate::config::lxc::Container;
use crate::config::GuestId;
use crate::exec::{Cmd, Output, Runner};
use pct::PctConfig;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub use firewall::plan as firewall_plan;
pub use node::{parse_storage_cfg, NodeLayout, Storage};

pub struct ProxmoxBackend {
    runner: Arc<dyn Runner>,
    /// Directory holding `pct`, `pvesh`, `pvesm` and `pveam`; `None`: found on the node's PATH.
    tools: Option<PathBuf>,
    layout: NodeLayout,
    node: OnceLock<String>,
    storages: OnceLock<BTreeMap<String, node::Storage>>,
    devices: OnceLock<String>,
    /// Config files read with the fleet's states, each for its guest's first inspection.
    prefetched: Mutex<HashMap<GuestId, Live>>,
}

impl ProxmoxBackend {
    pub fn new(
        runner: Arc<dyn Runner>,
        tools: Option<PathBuf>,
        layout: NodeLayout,
        node: Option<String>,
    ) -> ProxmoxBackend {
        let cell = OnceLock::new();
        if let Some(n) = node {
            let _ = cell.set(n);
        }
        ProxmoxBackend {
            runner,
            tools,
            layout,
            node: cell,
            storages: OnceLock::new(),
            devices: OnceLock::new(),
            prefetched: Mutex::new(HashMap::new()),
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

    fn pvesh<I: IntoIterator<Item = String>>(&self, args: I) -> Vec<String> {
        std::iter::once(self.tool("pvesh")).chain(args).collect()
    }

    /// Runs a command that changes the node; a guest or storage lock held by another operation
    /// is waited out ([`tasks::retry_locked`]).
    fn act(&self, argv: Vec<String>, timeout_s: u64) -> Result<Output> {
        let cmd = Cmd::act(argv).timeout(Duration::from_secs(timeout_s));
        tasks::retry_locked(|| self.runner.run(&cmd))
    }

    fn config(&self, id: GuestId) -> Result<PctConfig> {
        let live = self.inspect(id)?.ok_or(BackendError::NotFound(id))?;
        Ok(PctConfig::parse(&live.config))
    }

    fn read_remote(&self, path: &Path) -> Result<Option<String>> {
        let out = self
            .runner
            .output(&Cmd::probe(["cat".to_string(), path.display().to_string()]))?;
        Ok(out.success().then(|| out.stdout_str()))
    }

    /// `pct destroy ID --purge 1` (its firewall config and job entries too) with `flags`.
    fn pct_destroy(&self, id: GuestId, flags: &[&str]) -> Result<()> {
        let mut argv = vec![
            "destroy".to_string(),
            id.to_string(),
            "--purge".into(),
            "1".into(),
        ];
        argv.extend(flags.iter().map(|f| f.to_string()));
        self.act(self.pct(argv), 600)?;
        Ok(())
    }

    /// A guest as its config file says: the snapshots (finished ones) come with it.
    fn live_of(&self, id: GuestId, config: String) -> Live {
        let template = PctConfig::parse(&config).get("template") == Some("1");
        let snapshots = pct::sections(&config)
            .into_iter()
            .filter(|(_, finished)| *finished)
            .map(|(name, _)| name)
            .collect();
        Live {
            id,
            config,
            template,
            snapshots: Some(snapshots),
        }
    }

    /// `TOOL list`, then each of `paths` (config files), in one command: the listing and each
    /// file's text (empty when it is missing).
    fn list_with_configs(&self, tool: &str, paths: &[String]) -> Result<(String, Vec<String>)> {
        let script = r#"tool=$1; shift; "$tool" list || exit; for f; do echo "==> $f <=="; cat "$f" 2>/dev/null; done"#;
        let mut argv = vec![
            "sh".to_string(),
            "-c".into(),
            script.into(),
            "sh".into(),
            self.tool(tool),
        ];
        argv.extend(paths.iter().cloned());
        let text = self.runner.run(&Cmd::probe(argv))?.stdout_str();
        let (list, files) = text
            .split_once("==> ")
            .map_or((text.as_str(), ""), |(l, f)| (l, f));
        let configs = format!("==> {files}")
            .split("==> ")
            .skip(1)
            .map(|c| c.split_once(" <==\n").map_or("", |(_, c)| c).to_string())
            .collect();
        Ok((list.to_string(), configs))
    }

    /// Keeps the config files read with the guests' states, each for its guest's first
    /// inspection (guests listed, with a config).
    fn keep_prefetched(
        &self,
        ids: &[GuestId],
        configs: Vec<String>,
        listed: &HashMap<GuestId, RunState>,
    ) {
        let mut kept = self.prefetched.lock().unwrap_or_else(|p| p.into_inner());
        for (id, config) in ids.iter().zip(configs) {
            if listed.contains_key(id) && !config.is_empty() {
                kept.insert(*id, self.live_of(*id, config));
            }
        }
    }

    fn take_prefetched(&self, id: GuestId) -> Option<Live> {
        self.prefetched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id)
    }

    /// `TOOL status ID` (`pct` or `qm`): `None` when the guest does not exist.
    fn status_of(&self, tool: &str, id: GuestId) -> Result<Option<RunState>> {
        let argv = vec![self.tool(tool), "status".into(), id.to_string()];
        let out = self.runner.output(&Cmd::probe(argv))?;
        if !out.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            if format!("{}{err}", out.stdout_str()).contains("does not exist") {
                return Ok(None);
            }
            return Err(BackendError::Invalid(format!(
                "{tool} status {id}: {}",
                out.tail(5)
            )));
        }
        Ok(Some(match out.stdout_str().contains("status: running") {
            true => RunState::Running,
            false => RunState::Stopped,
        }))
    }

    fn mkdir_on_node(&self, dir: &Path) -> Result<()> {
        self.act(
            vec!["mkdir".into(), "-p".into(), dir.display().to_string()],
            30,
        )?;
        Ok(())
    }
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
            storage_locks: true,
        }
    }

    fn vms(&self) -> Option<&dyn super::vm::Vms> {
        Some(self)
    }

    fn preflight(
        &self,
        ct: &Container,
        parent: Option<&Container>,
        storage: Option<&str>,
    ) -> Vec<Refusal> {
        self.refusals(ct, parent, storage)
    }

    fn snapshot_refusal(&self, ct: &Container, storage: Option<&str>) -> Option<String> {
        self.why_no_snapshot(ct, storage)
    }

    fn state(&self, id: GuestId) -> Result<Option<RunState>> {
        self.status_of("pct", id)
    }

    /// One command for all: `pct list` (`VMID Status Lock Name` rows), then the config file of
    /// each guest listed, kept for that guest's first [`Hypervisor::inspect`].
    fn states(&self, ids: &[GuestId]) -> Result<HashMap<GuestId, Option<RunState>>> {
        let paths: Vec<String> = ids
            .iter()
            .map(|id| self.layout.conf_path(*id).display().to_string())
            .collect();
        let (list, configs) = self.list_with_configs("pct", &paths)?;
        let listed = pct::list_states(&list);
        self.keep_prefetched(ids, configs, &listed);
        Ok(ids
            .iter()
            .map(|id| (*id, listed.get(id).copied()))
            .collect())
    }

    fn create(&self, ct: &Container, template: &str, task: TaskSink) -> Result<()> {
        self.create_ct(ct, template, task)
    }

    fn clone_from(
        &self,
        ct: &Container,
        parent: GuestId,
        snapshot: Option<&str>,
        task: TaskSink,
    ) -> Result<()> {
        self.clone_ct(ct, parent, snapshot, task)
    }

    fn settle_task(&self, task: &str) -> Result<TaskEnd> {
        self.wait_task(task)
    }

    /// An interrupted create or clone leaves `lock: create` (and the disks it made): unlocked,
    /// then destroyed with its unreferenced disks.
    fn discard_partial(&self, id: GuestId) -> Result<()> {
        let Some(live) = self.inspect(id)? else {
            return Ok(());
        };
        if PctConfig::parse(&live.config).get("lock").is_some() {
            self.act(self.pct(["unlock".into(), id.to_string()]), 60)?;
        }
        let flags = [
            "--force",
            "1",
            "--purge",
            "1",
            "--destroy-unreferenced-disks",
            "1",
        ];
        let mut argv = vec!["destroy".to_string(), id.to_string()];
        argv.extend(flags.map(String::from));
        self.act(self.pct(argv), 600)?;
        Ok(())
    }

    /// The config file itself, read on the node: current values, raw lines, pending changes,
    /// snapshots and lock in one read (`pct config` would merge pending values in).
    fn inspect(&self, id: GuestId) -> Result<Option<Live>> {
        if let Some(live) = self.take_prefetched(id) {
            return Ok(Some(live));
        }
        let Some(config) = self.read_remote(&self.layout.conf_path(id))? else {
            return Ok(None);
        };
        Ok(Some(self.live_of(id, config)))
    }

    fn diff(&self, live: &Live, s: &Setting) -> Result<Vec<Change>> {
        self.setting_diff(live, s)
    }

    fn apply(&self, id: GuestId, s: &Setting) -> Result<Applied> {
        self.apply_setting(id, s)
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
        self.pct_destroy(id, &[])
    }

    fn make_template(&self, id: GuestId) -> Result<()> {
        self.convert_to_template(id)
    }

    fn is_template(&self, id: GuestId) -> Result<bool> {
        Ok(self.config(id)?.get("template") == Some("1"))
    }

    fn snapshots(&self, id: GuestId) -> Result<Vec<String>> {
        self.snapshot_names(id)
    }

    fn snapshot(&self, id: GuestId, name: &str, task: TaskSink) -> Result<()> {
        self.take_snapshot(id, name, task)
    }

    fn delete_snapshot(&self, id: GuestId, name: &str) -> Result<()> {
        self.remove_snapshot(id, name)
    }

    fn discard_partial_snapshots(&self, id: GuestId) -> Result<()> {
        self.discard_unfinished_snapshots(id)
    }

    fn exec(&self, id: GuestId, cmd: &Cmd) -> Result<Output> {
        self.pct_exec(id, cmd)
    }

    fn push(&self, id: GuestId, data: &[u8], path: &str, mode: u32) -> Result<()> {
        self.pct_push(id, data, path, mode)
    }
}

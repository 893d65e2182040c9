//! Proxmox VE containers through `pct` (and `pvesh` for firewall rules), run on the node itself
//! or over SSH (any [`Runner`]). By concern:
//! - [`settings`]: only what differs from `pct config` is set (`pct set`);
//! - [`raw_lines`]: raw `lxc.*` lines (GPU devices, id maps, AppArmor, `lxc_options`) written into
//!   `/etc/pve/lxc/CTID.conf` and removed when no longer asked for; Proxmox turns comments into the
//!   description, so the lines Phoenix owns are recorded beside it, on the node;
//! - [`firewall`]: per-guest rules through `pvesh`, converged without recreating what is in place;
//! - [`rootfs`]: `pct create`, `pct clone`, and the root disk grown, never shrunk;
//! - [`snapshots`]: matched by exact name; templates;
//! - [`exec`]: `pct exec` / `pct push` with a clean environment;
//! - [`pct`]: reading what `pct` prints.

mod exec;
mod firewall;
pub mod pct;
mod raw_lines;
mod rootfs;
mod settings;
mod snapshots;

use super::{
    Applied, BackendError, Capabilities, Change, Hypervisor, Live, Result, RunState, Setting,
};
use crate::config::lxc::Container;
use crate::config::GuestId;
use crate::exec::{Cmd, Output, Runner};
use pct::PctConfig;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub use firewall::plan as firewall_plan;

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
        let live = self.inspect(id)?.ok_or(BackendError::NotFound(id))?;
        Ok(PctConfig::parse(&live.config))
    }

    /// The node's name in API paths.
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
            vms: false,
            storage_locks: true,
        }
    }

    fn preflight(&self, ct: &Container) -> Vec<String> {
        let mut p = Vec::new();
        if ct.base.storage_pool.is_none() && ct.base.clone_from.is_none() {
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
    fn states(&self, ids: &[GuestId]) -> Result<HashMap<GuestId, Option<RunState>>> {
        let out = self
            .runner
            .run(&Cmd::probe(self.pct(["list".to_string()])))?;
        let listed = pct::list_states(&out.stdout_str());
        Ok(ids
            .iter()
            .map(|id| (*id, listed.get(id).copied()))
            .collect())
    }

    fn create(&self, ct: &Container, template: &Path) -> Result<()> {
        self.pct_create(ct, template)
    }

    fn clone_from(&self, ct: &Container, parent: GuestId, snapshot: &str) -> Result<()> {
        self.pct_clone(ct, parent, snapshot)
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

    fn inspect(&self, id: GuestId) -> Result<Option<Live>> {
        let out = self
            .runner
            .output(&Cmd::probe(self.pct(["config".into(), id.to_string()])))?;
        if !out.success() {
            return match self.state(id)? {
                None => Ok(None),
                Some(_) => Err(BackendError::Invalid(format!(
                    "pct config {id}: {}",
                    out.tail(5)
                ))),
            };
        }
        let config = out.stdout_str();
        let template = PctConfig::parse(&config).get("template") == Some("1");
        Ok(Some(Live {
            id,
            config,
            template,
        }))
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

    fn make_template(&self, id: GuestId) -> Result<()> {
        self.convert_to_template(id)
    }

    fn is_template(&self, id: GuestId) -> Result<bool> {
        Ok(self.config(id)?.get("template") == Some("1"))
    }

    fn snapshots(&self, id: GuestId) -> Result<Vec<String>> {
        self.snapshot_names(id)
    }

    fn snapshot(&self, id: GuestId, name: &str) -> Result<()> {
        self.take_snapshot(id, name)
    }

    fn delete_snapshot(&self, id: GuestId, name: &str) -> Result<()> {
        self.remove_snapshot(id, name)
    }

    fn discard_partial_snapshots(&self, _id: GuestId) -> Result<()> {
        // `pct snapshot` is a Proxmox task under the guest's lock: it completes or leaves nothing.
        Ok(())
    }

    fn exec(&self, id: GuestId, cmd: &Cmd) -> Result<Output> {
        self.pct_exec(id, cmd)
    }

    fn push(&self, id: GuestId, data: &[u8], path: &str, mode: u32) -> Result<()> {
        self.pct_push(id, data, path, mode)
    }
}

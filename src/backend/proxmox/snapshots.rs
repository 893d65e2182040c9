//! Snapshots, matched by exact name and read from the config file's sections (an unfinished one,
//! still `snapstate: prepare`, does not count); taken as API tasks ([`super::tasks`]); and the
//! conversion into a template, which Proxmox allows only while the container has no snapshots.

use super::pct::sections;
use super::ProxmoxBackend;
use crate::backend::{BackendError, Hypervisor, Result, TaskSink};
use crate::config::GuestId;

impl ProxmoxBackend {
    fn snapshot_sections(&self, id: GuestId) -> Result<Vec<(String, bool)>> {
        let live = self.inspect(id)?.ok_or(BackendError::NotFound(id))?;
        Ok(sections(&live.config))
    }

    pub(super) fn snapshot_names(&self, id: GuestId) -> Result<Vec<String>> {
        let live = self.inspect(id)?.ok_or(BackendError::NotFound(id))?;
        Ok(live.snapshots.unwrap_or_default())
    }

    pub(super) fn take_snapshot(&self, id: GuestId, name: &str, task: TaskSink) -> Result<()> {
        // Proxmox clones of a container's snapshot are full copies: the old one can go.
        if self.snapshot_names(id)?.iter().any(|s| s == name) {
            self.remove_snapshot(id, name)?;
        }
        let path = format!("/nodes/{}/lxc/{id}/snapshot", self.node()?);
        self.run_task(path, vec!["--snapname".into(), name.to_string()], task)
    }

    pub(super) fn remove_snapshot(&self, id: GuestId, name: &str) -> Result<()> {
        self.act(
            self.pct(["delsnapshot".into(), id.to_string(), name.to_string()]),
            600,
        )?;
        Ok(())
    }

    /// A snapshot task that died leaves its section (`snapstate: prepare`) and `lock: snapshot`:
    /// both are removed (`pct delsnapshot --force`, `pct unlock`).
    pub(super) fn discard_unfinished_snapshots(&self, id: GuestId) -> Result<()> {
        for (name, _) in self.snapshot_sections(id)?.into_iter().filter(|(_, f)| !f) {
            let argv = ["delsnapshot", &id.to_string(), &name, "--force", "1"];
            self.act(self.pct(argv.map(String::from)), 600)?;
        }
        if matches!(
            self.config(id)?.get("lock"),
            Some("snapshot" | "snapshot-delete")
        ) {
            self.act(self.pct(["unlock".into(), id.to_string()]), 60)?;
        }
        Ok(())
    }

    pub(super) fn convert_to_template(&self, id: GuestId) -> Result<()> {
        self.stop(id)?;
        self.act(self.pct(["template".into(), id.to_string()]), 600)?;
        Ok(())
    }
}

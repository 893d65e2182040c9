//! Snapshots through `pct`, matched by exact name, and the conversion into a template.

use super::pct::snapshot_names;
use super::ProxmoxBackend;
use crate::backend::{Hypervisor, Result};
use crate::config::GuestId;
use crate::exec::Cmd;

impl ProxmoxBackend {
    pub(super) fn snapshot_names(&self, id: GuestId) -> Result<Vec<String>> {
        let out = self.runner.run(&Cmd::probe(
            self.pct(["listsnapshot".into(), id.to_string()]),
        ))?;
        Ok(snapshot_names(&out.stdout_str()))
    }

    pub(super) fn take_snapshot(&self, id: GuestId, name: &str) -> Result<()> {
        // Proxmox clones of a container's snapshot are full copies: the old one can go.
        if self.snapshot_names(id)?.iter().any(|s| s == name) {
            self.remove_snapshot(id, name)?;
        }
        self.act(
            self.pct(["snapshot".into(), id.to_string(), name.to_string()]),
            900,
        )?;
        Ok(())
    }

    pub(super) fn remove_snapshot(&self, id: GuestId, name: &str) -> Result<()> {
        self.act(
            self.pct(["delsnapshot".into(), id.to_string(), name.to_string()]),
            600,
        )?;
        Ok(())
    }

    pub(super) fn convert_to_template(&self, id: GuestId) -> Result<()> {
        self.stop(id)?;
        self.act(self.pct(["template".into(), id.to_string()]), 600)?;
        Ok(())
    }
}

//! A container's root filesystem: made from a template tarball or as an overlay clone of a
//! parent's snapshot, removed when an interrupted create left half of one, and its files read
//! and written from the host while the container is stopped.

use super::config_file::values;
use super::LxcBackend;
use crate::backend::{BackendError, Hypervisor, Result, RunState};
use crate::config::lxc::Container;
use crate::config::GuestId;
use crate::exec::Cmd;
use std::path::{Path, PathBuf};
use std::time::Duration;

impl LxcBackend {
    fn staging(&self, id: GuestId) -> PathBuf {
        self.path.join(format!(".phoenix-new-{id}"))
    }

    /// Makes the container from `template` in a staging directory and renames it into place: a
    /// crash leaves no container behind, only a staging directory the redo removes. Its rootfs is
    /// an overlay of the template's shared image ([`super::images`]) where the kernel has
    /// overlayfs, else an extraction of its own.
    pub(super) fn create_from_template(&self, ct: &Container, template: &Path) -> Result<()> {
        let id = ct.base.id;
        let staging = self.staging(id);
        let final_dir = self.dir(id);
        let rootfs = match Self::overlay_available() {
            true => {
                let image = self.image(template)?;
                let delta = staging.join("delta0");
                self.runner
                    .run(&Cmd::act(["mkdir", "-p", &delta.display().to_string()]))?;
                format!("overlay:{}:{}/delta0", image.display(), final_dir.display())
            }
            false => {
                self.extract(template, &staging.join("rootfs"))?;
                format!("dir:{}/rootfs", final_dir.display())
            }
        };
        let config = format!(
            "# Managed by Phoenix: sections between phoenix:begin/end markers are rewritten on every run.\nlxc.rootfs.path = {rootfs}\nlxc.include = /usr/share/lxc/config/common.conf\nlxc.arch = linux64\nlxc.uts.name = {id}\n",
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

    /// An overlay clone of `parent`'s snapshot named `snapshot`.
    pub(super) fn clone_snapshot(
        &self,
        ct: &Container,
        parent: GuestId,
        snapshot: &str,
    ) -> Result<()> {
        let snap = self.find_snapshot_dir(parent, snapshot)?.ok_or_else(|| {
            BackendError::Invalid(format!(
                "parent {parent} has no snapshot named {snapshot:?} (run `phoenix run {parent}` first)"
            ))
        })?;
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
                &ct.base.id.to_string(),
                "-s",
                "-B",
                "overlayfs",
            ])
            .timeout(Duration::from_secs(900)),
        )?;
        Ok(())
    }

    /// Removes what an interrupted create or clone left: the staging directory, and a container
    /// that may be incomplete.
    pub(super) fn discard_partial_container(&self, id: GuestId) -> Result<()> {
        let rm = |dir: &Path| {
            self.runner.run(&Cmd::act([
                "rm",
                "-rf",
                "--one-file-system",
                &dir.display().to_string(),
            ]))
        };
        let staging = self.staging(id);
        if staging.exists() {
            rm(&staging)?;
        }
        if self.dir(id).exists() {
            let mut argv = self.lxc("lxc-destroy", id);
            argv.extend(["-f".into(), "-s".into()]);
            let out = self.runner.output(&Cmd::act(argv))?;
            if !out.success() && self.dir(id).exists() {
                rm(&self.dir(id))?;
            }
        }
        Ok(())
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
    pub(super) fn read_guest_file(&self, id: GuestId, path: &str) -> Result<Option<String>> {
        let (_, reads) = self.rootfs_layers(id)?;
        let rel = path.trim_start_matches('/');
        Ok(reads
            .iter()
            .find_map(|layer| std::fs::read(layer.join(rel)).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Writes a file into the guest: through the running guest, or into its rootfs when stopped.
    pub(super) fn write_guest_file(&self, id: GuestId, path: &str, content: &[u8]) -> Result<()> {
        if self.state(id)? == Some(RunState::Running) {
            return self.push_file(id, content, path, 0o644);
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
}

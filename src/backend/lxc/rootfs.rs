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

    /// Reads a file of the guest's filesystem from the host, through the layers its `config`
    /// (as read already) names.
    pub(super) fn read_guest_file(
        &self,
        id: GuestId,
        config: &str,
        path: &str,
    ) -> Result<Option<String>> {
        let rel = path.trim_start_matches('/');
        Ok(Rootfs::of(id, config)?
            .reads()
            .iter()
            .find_map(|layer| std::fs::read(layer.join(rel)).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Writes a file into the guest: through the running guest, or into its rootfs when stopped.
    pub(super) fn write_guest_file(&self, id: GuestId, path: &str, content: &[u8]) -> Result<()> {
        if self.state(id)? == Some(RunState::Running) {
            return self.push_file(id, content, path, 0o644);
        }
        let rootfs = Rootfs::of(id, &self.read_config(id)?)?;
        let target = rootfs.write().join(path.trim_start_matches('/'));
        if let Some(parent) = target.parent() {
            if !self.runner.dry_run() {
                std::fs::create_dir_all(parent).map_err(BackendError::io(parent))?;
            }
        }
        self.write_file(&target, content)
    }
}

/// A container's `lxc.rootfs.path`: a directory, or an overlay of lower layers on an upper one.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Rootfs {
    Dir(PathBuf),
    /// `lowers` as written (`:`-separated), the upper directory that takes the writes.
    Overlay {
        lowers: String,
        upper: PathBuf,
    },
}

impl Rootfs {
    pub(super) fn of(id: GuestId, config: &str) -> Result<Rootfs> {
        let rootfs = values(config, "lxc.rootfs.path").pop().ok_or_else(|| {
            BackendError::Invalid(format!("container {id} has no lxc.rootfs.path"))
        })?;
        let parts: Vec<&str> = rootfs.split(':').collect();
        match parts.as_slice() {
            ["overlay" | "overlayfs", lowers @ .., upper] if !lowers.is_empty() => {
                Ok(Rootfs::Overlay {
                    lowers: lowers.join(":"),
                    upper: PathBuf::from(upper),
                })
            }
            ["dir", p] | [p] => Ok(Rootfs::Dir(PathBuf::from(p))),
            _ => Err(BackendError::Invalid(format!(
                "container {id}: unsupported rootfs {rootfs:?} (dir and overlay are)"
            ))),
        }
    }

    /// Where a stopped container's files are written.
    fn write(&self) -> &Path {
        match self {
            Rootfs::Dir(p) | Rootfs::Overlay { upper: p, .. } => p,
        }
    }

    /// The layers a file is read through, the top one first.
    fn reads(&self) -> Vec<PathBuf> {
        match self {
            Rootfs::Dir(p) => vec![p.clone()],
            Rootfs::Overlay { lowers, upper } => std::iter::once(upper.clone())
                .chain(lowers.split(':').rev().map(PathBuf::from))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_rootfs_paths_are_read() {
        let c = "lxc.arch = linux64\nlxc.rootfs.path = overlay:/img/rootfs:/ct/delta0\n";
        assert_eq!(
            Rootfs::of(GuestId(1), c).ok(),
            Some(Rootfs::Overlay {
                lowers: "/img/rootfs".into(),
                upper: PathBuf::from("/ct/delta0")
            })
        );
        assert_eq!(
            Rootfs::of(GuestId(1), "lxc.rootfs.path = dir:/ct/rootfs\n").ok(),
            Some(Rootfs::Dir(PathBuf::from("/ct/rootfs")))
        );
    }
}

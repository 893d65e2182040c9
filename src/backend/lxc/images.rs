//! Unpacked template images, so that a container made from a tarball is a copy-on-write overlay
//! of one shared, read-only rootfs instead of a fresh extraction. Images live in
//! `<lxc-path>/.phoenix-images/<digest>/rootfs`, keyed by the tarball's sha256 (remembered beside
//! them per path, size, inode and times, so a tarball is hashed once). An image is unpacked into a
//! temporary directory, marked complete, and renamed into place; one left half-unpacked (or
//! half-removed) by a killed run is removed by the next. An image no container (or snapshot) uses
//! any more is removed when a container is destroyed.

use super::LxcBackend;
use crate::backend::{BackendError, Result};
use crate::exec::Cmd;
use std::path::{Path, PathBuf};
use std::time::Duration;

const DIR: &str = ".phoenix-images";
/// Written last into an unpacked image: only an image that has it is used.
const COMPLETE: &str = "complete";

impl LxcBackend {
    fn images(&self) -> PathBuf {
        self.path.join(DIR)
    }

    /// Whether containers can be overlays here (the kernel has overlayfs).
    pub(super) fn overlay_available() -> bool {
        std::fs::read_to_string("/proc/filesystems")
            .is_ok_and(|f| f.lines().any(|l| l.trim_end().ends_with("overlay")))
    }

    /// The unpacked rootfs of `template`, unpacked now if it is not yet.
    pub(super) fn image(&self, template: &Path) -> Result<PathBuf> {
        let digest = self.template_digest(template)?;
        let image = self.images().join(&digest);
        let _one_at_a_time = self.image_lock.lock().unwrap_or_else(|p| p.into_inner());
        if image.join(COMPLETE).is_file() {
            return Ok(image.join("rootfs"));
        }
        self.remove_half_unpacked(&digest)?;
        let tmp = self
            .images()
            .join(format!(".tmp-{digest}-{}", std::process::id()));
        self.extract(template, &tmp.join("rootfs"))?;
        self.write_file(&tmp.join(COMPLETE), b"")?;
        self.rename(&tmp, &image)?;
        Ok(image.join("rootfs"))
    }

    /// Extracts `template` into `rootfs` (created).
    pub(super) fn extract(&self, template: &Path, rootfs: &Path) -> Result<()> {
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
        Ok(())
    }

    /// The tarball's sha256, remembered per path, size, inode and times.
    fn template_digest(&self, template: &Path) -> Result<String> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(template).map_err(BackendError::io(template))?;
        // The change time too: a copy that keeps the size and modification time gets a new one.
        let stamp = format!(
            "{} {} {} {}.{} {}.{}",
            template.display(),
            m.len(),
            m.ino(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec()
        );
        let memo = self.images().join(format!(
            "{}.digest",
            &crate::digest::hex(stamp.as_bytes())[..16]
        ));
        let remembered = std::fs::read_to_string(&memo).ok().and_then(|m| {
            let digest = m.strip_prefix(&format!("{stamp}\n"))?.trim();
            (digest.len() == 64).then(|| digest.to_string())
        });
        if let Some(digest) = remembered {
            return Ok(digest);
        }
        let out = self.runner.run(
            &Cmd::probe(["sha256sum", "--", &template.display().to_string()])
                .timeout(Duration::from_secs(600)),
        )?;
        let digest = out
            .stdout_str()
            .split_whitespace()
            .next()
            .filter(|d| d.len() == 64)
            .map(String::from)
            .ok_or_else(|| {
                BackendError::Invalid(format!("sha256sum {}: no digest", template.display()))
            })?;
        let dir = self.images().display().to_string();
        self.runner.run(&Cmd::act(["mkdir", "-p", &dir]))?;
        self.write_file(&memo, format!("{stamp}\n{digest}\n").as_bytes())?;
        Ok(digest)
    }

    /// Removes what a killed run left of unpacking or removing this image.
    fn remove_half_unpacked(&self, digest: &str) -> Result<()> {
        let Ok(entries) = std::fs::read_dir(self.images()) else {
            return Ok(());
        };
        let ours = [format!(".tmp-{digest}-"), format!(".trash-{digest}")];
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if ours.iter().any(|p| name.starts_with(p.as_str())) {
                self.remove_dir(&e.path())?;
            }
        }
        let image = self.images().join(digest);
        if image.exists() {
            self.remove_dir(&image)?;
        }
        Ok(())
    }

    /// Removes the images that no container or snapshot under the LXC path uses. Each is renamed
    /// out of use before it is deleted, so that a removal cut short leaves no image that looks
    /// whole; where any config cannot be read, nothing is removed.
    pub(super) fn prune_images(&self) -> Result<()> {
        let _one_at_a_time = self.image_lock.lock().unwrap_or_else(|p| p.into_inner());
        let Ok(entries) = std::fs::read_dir(self.images()) else {
            return Ok(());
        };
        let Some(used) = self.rootfs_paths() else {
            tracing::warn!("an LXC config could not be read; no image is pruned");
            return Ok(());
        };
        for e in entries.flatten() {
            let (path, name) = (e.path(), e.file_name().to_string_lossy().into_owned());
            if name.starts_with('.') || !path.is_dir() {
                continue;
            }
            let rootfs = path.join("rootfs").display().to_string();
            if used.iter().any(|u| u.contains(&rootfs)) {
                continue;
            }
            let trash = self.images().join(format!(".trash-{name}"));
            self.rename(&path, &trash)?;
            self.remove_dir(&trash)?;
        }
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        let (from, to) = (from.display().to_string(), to.display().to_string());
        self.runner.run(&Cmd::act(["mv", "-T", "--", &from, &to]))?;
        Ok(())
    }

    fn remove_dir(&self, dir: &Path) -> Result<()> {
        let dir = dir.display().to_string();
        let rm = ["rm", "-rf", "--one-file-system", "--", &dir];
        self.runner
            .run(&Cmd::act(rm).timeout(Duration::from_secs(900)))?;
        Ok(())
    }

    /// The `lxc.rootfs.path` of every container and snapshot under the LXC path; `None` when a
    /// directory or config cannot be read.
    fn rootfs_paths(&self) -> Option<Vec<String>> {
        let mut configs = Vec::new();
        for ct in std::fs::read_dir(&self.path).ok()? {
            let ct = ct.ok()?.path();
            configs.push(ct.join("config"));
            if let Ok(snaps) = std::fs::read_dir(ct.join("snaps")) {
                for snap in snaps {
                    configs.push(snap.ok()?.path().join("config"));
                }
            }
        }
        let mut paths = Vec::new();
        for c in configs.into_iter().filter(|c| c.exists()) {
            let text = std::fs::read_to_string(c).ok()?;
            paths.extend(super::config_file::values(&text, "lxc.rootfs.path"));
        }
        Some(paths)
    }
}

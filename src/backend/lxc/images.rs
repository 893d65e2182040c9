//! Unpacked template images, so that a container made from a tarball is a copy-on-write overlay
//! of one shared, read-only rootfs instead of a fresh extraction. Images live in
//! `<lxc-path>/.phoenix-images/<digest>/rootfs`, keyed by the tarball's sha256 (remembered beside
//! them per path, size and modification time, so a tarball is hashed once). An image is unpacked
//! into a temporary directory and renamed into place; one left half-unpacked by a killed run is
//! removed by the next. An image no container (or snapshot) uses any more is removed when a
//! container is destroyed.

use super::LxcBackend;
use crate::backend::{BackendError, Result};
use crate::exec::Cmd;
use std::path::{Path, PathBuf};
use std::time::Duration;

const DIR: &str = ".phoenix-images";

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
        if image.join("rootfs").is_dir() {
            return Ok(image.join("rootfs"));
        }
        self.remove_half_unpacked(&digest)?;
        let tmp = self
            .images()
            .join(format!(".tmp-{digest}-{}", std::process::id()));
        self.extract(template, &tmp.join("rootfs"))?;
        self.runner.run(&Cmd::act([
            "mv",
            "-T",
            &tmp.display().to_string(),
            &image.display().to_string(),
        ]))?;
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

    /// The tarball's sha256, remembered per path, size and modification time.
    fn template_digest(&self, template: &Path) -> Result<String> {
        let meta = std::fs::metadata(template).map_err(BackendError::io(template))?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let stamp = format!("{} {} {mtime}", template.display(), meta.len());
        let memo = self.images().join(format!(
            "{}.digest",
            &crate::digest::hex(stamp.as_bytes())[..16]
        ));
        if let Some(digest) = std::fs::read_to_string(&memo).ok().and_then(|m| {
            m.strip_prefix(&format!("{stamp}\n"))?
                .split_whitespace()
                .next()
                .map(String::from)
        }) {
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
            .ok_or_else(|| {
                BackendError::Invalid(format!("sha256sum {}: no digest", template.display()))
            })?
            .to_string();
        let dir = self.images().display().to_string();
        self.runner.run(&Cmd::act(["mkdir", "-p", &dir]))?;
        self.write_file(&memo, format!("{stamp}\n{digest}\n").as_bytes())?;
        Ok(digest)
    }

    /// Removes what a killed run left of unpacking this image.
    fn remove_half_unpacked(&self, digest: &str) -> Result<()> {
        let Ok(entries) = std::fs::read_dir(self.images()) else {
            return Ok(());
        };
        for e in entries.flatten() {
            if e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&format!(".tmp-{digest}-")))
            {
                self.runner.run(&Cmd::act([
                    "rm",
                    "-rf",
                    "--one-file-system",
                    "--",
                    &e.path().display().to_string(),
                ]))?;
            }
        }
        Ok(())
    }

    /// Removes the images that no container or snapshot under the LXC path uses.
    pub(super) fn prune_images(&self) -> Result<()> {
        let Ok(entries) = std::fs::read_dir(self.images()) else {
            return Ok(());
        };
        let used = self.rootfs_paths();
        for e in entries.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !path.is_dir() {
                continue;
            }
            let rootfs = path.join("rootfs").display().to_string();
            if used.iter().any(|u| u.contains(&rootfs)) {
                continue;
            }
            self.runner.run(&Cmd::act([
                "rm",
                "-rf",
                "--one-file-system",
                "--",
                &path.display().to_string(),
            ]))?;
        }
        Ok(())
    }

    /// The `lxc.rootfs.path` of every container and snapshot under the LXC path.
    fn rootfs_paths(&self) -> Vec<String> {
        let mut configs = Vec::new();
        for ct in std::fs::read_dir(&self.path)
            .into_iter()
            .flatten()
            .flatten()
        {
            configs.push(ct.path().join("config"));
            let snaps = std::fs::read_dir(ct.path().join("snaps"));
            configs.extend(
                snaps
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|s| s.path().join("config")),
            );
        }
        configs
            .iter()
            .filter_map(|c| std::fs::read_to_string(c).ok())
            .flat_map(|c| super::config_file::values(&c, "lxc.rootfs.path"))
            .collect()
    }
}

//! A container's root disk: `pct create` from a template, `pct clone` of a parent's snapshot, and
//! `pct resize` that grows it (Phoenix never shrinks a disk).

use super::pct::PctConfig;
use super::ProxmoxBackend;
use crate::backend::{BackendError, Change, Hypervisor, Result};
use crate::config::lxc::Container;
use crate::config::values::IpConfig;
use crate::config::GuestId;
use std::path::Path;

impl ProxmoxBackend {
    pub(super) fn pct_create(&self, ct: &Container, template: &Path) -> Result<()> {
        let storage = ct
            .base
            .storage_pool
            .clone()
            .unwrap_or_else(|| "local".into());
        let mut args = vec![
            "create".to_string(),
            ct.base.id.to_string(),
            template.display().to_string(),
            "--hostname".into(),
            ct.base.name.clone(),
            "--memory".into(),
            ct.memory_mb.to_string(),
            "--swap".into(),
            ct.swap_mb.unwrap_or(0).to_string(),
            "--cores".into(),
            ct.cores.to_string(),
            "--storage".into(),
            storage.clone(),
            "--rootfs".into(),
            format!("{storage}:{}", ct.storage_size_gb.unwrap_or(8)),
            "--unprivileged".into(),
            u8::from(ct.unprivileged.unwrap_or(false)).to_string(),
        ];
        args.extend(net0_args(ct));
        self.act(self.pct(args), 900)?;
        Ok(())
    }

    pub(super) fn pct_clone(&self, ct: &Container, parent: GuestId, snapshot: &str) -> Result<()> {
        if !self.snapshots(parent)?.iter().any(|s| s == snapshot) {
            return Err(BackendError::Invalid(format!("parent {parent} has no snapshot named {snapshot:?} (run `phoenix run {parent}` first)")));
        }
        let mut args = vec![
            "clone".to_string(),
            parent.to_string(),
            ct.base.id.to_string(),
            "--snapname".into(),
            snapshot.to_string(),
            "--hostname".into(),
            ct.base.name.clone(),
        ];
        if let Some(s) = &ct.base.storage_pool {
            args.extend(["--storage".into(), s.clone()]);
        }
        self.act(self.pct(args), 1800)?;
        self.take_over_raw_lines(parent, ct.base.id)
    }

    /// At least `gb`; a larger disk is left as it is (and said).
    pub(super) fn rootfs_diff(&self, id: GuestId, gb: u64, c: &PctConfig) -> Option<Change> {
        let have = c.rootfs_gb();
        if have.is_some_and(|h| h > gb) {
            tracing::warn!(%id, have, want = gb, "rootfs is larger than the configuration asks; Phoenix never shrinks a disk");
        }
        let gib = |g: u64| format!("{g}G");
        have.is_none_or(|h| h < gb)
            .then(|| Change::new("rootfs size", have.map(gib), Some(gib(gb))))
    }

    pub(super) fn grow_rootfs(&self, id: GuestId, gb: u64, c: &PctConfig) -> Result<()> {
        if c.rootfs_gb().is_some_and(|have| have >= gb) {
            return Ok(());
        }
        self.act(
            self.pct([
                "resize".into(),
                id.to_string(),
                "rootfs".into(),
                format!("{gb}G"),
            ]),
            600,
        )?;
        Ok(())
    }
}

/// `--net0` (and `--nameserver`) for `pct create`.
fn net0_args(ct: &Container) -> Vec<String> {
    let Some(n) = &ct.network else {
        return Vec::new();
    };
    let mut net = vec![
        format!("name={}", n.name),
        format!("bridge={}", n.bridge),
        format!("hwaddr={}", ct.effective_mac()),
    ];
    match n.ip {
        IpConfig::Dhcp => net.push("ip=dhcp".into()),
        IpConfig::Static(c) => net.push(format!("ip={c}")),
    }
    if let Some(gw) = n.gw {
        net.push(format!("gw={gw}"));
    }
    let mut args = vec!["--net0".into(), net.join(",")];
    if !n.nameservers.is_empty() {
        let ns: Vec<String> = n.nameservers.iter().map(|a| a.to_string()).collect();
        args.extend(["--nameserver".into(), ns.join(" ")]);
    }
    args
}

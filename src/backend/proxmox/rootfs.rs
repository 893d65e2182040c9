//! A container's root disk: created from a template (a path on the node, or a volume id fetched
//! with `pveam` when the node lacks it), cloned from a parent's snapshot or from a template, both
//! as API tasks ([`super::tasks`]); and `pct resize` that grows it (Phoenix never shrinks a disk,
//! and never asks for the size it has: Proxmox refuses both).

use super::pct::{props, PctConfig};
use super::ProxmoxBackend;
use crate::backend::files::is_volume_id;
use crate::backend::{BackendError, Change, Hypervisor, Result, TaskSink};
use crate::config::lxc::Container;
use crate::config::values::IpConfig;
use crate::config::GuestId;
use crate::exec::Cmd;

impl ProxmoxBackend {
    pub(super) fn create_ct(&self, ct: &Container, template: &str, task: TaskSink) -> Result<()> {
        self.fetch_template(template)?;
        let storage = ct
            .base
            .storage_pool
            .clone()
            .unwrap_or_else(|| "local".into());
        let mut args = vec![
            "--vmid".to_string(),
            ct.base.id.to_string(),
            "--ostemplate".into(),
            template.to_string(),
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
        self.run_task(format!("/nodes/{}/lxc", self.node()?), args, task)
    }

    /// A volume id's file, downloaded from the node's appliance index when the node lacks it.
    fn fetch_template(&self, template: &str) -> Result<()> {
        if !is_volume_id(template) {
            return Ok(());
        }
        let path = self.runner.run(&Cmd::probe([
            self.tool("pvesm"),
            "path".into(),
            template.into(),
        ]))?;
        if self.exists_on_node(path.stdout_str().trim())? {
            return Ok(());
        }
        let (storage, name) = template.split_once(':').unwrap_or_default();
        let name = name.trim_start_matches("vztmpl/");
        self.act(
            vec![
                self.tool("pveam"),
                "download".into(),
                storage.into(),
                name.into(),
            ],
            3600,
        )?;
        Ok(())
    }

    /// `snapshot`: a full copy of the parent's snapshot, to `storage_pool` when it is set.
    /// `None`: the parent is a template: a linked clone on the template's storage when the
    /// storage can make one and the clone asks for no other, else a full copy.
    pub(super) fn clone_ct(
        &self,
        ct: &Container,
        parent: GuestId,
        snapshot: Option<&str>,
        task: TaskSink,
    ) -> Result<()> {
        let mut args = vec![
            "--newid".to_string(),
            ct.base.id.to_string(),
            "--hostname".into(),
            ct.base.name.clone(),
        ];
        match snapshot {
            Some(s) => {
                if !self.snapshots(parent)?.iter().any(|have| have == s) {
                    return Err(BackendError::Invalid(format!("parent {parent} has no snapshot named {s:?} (run `phoenix run {parent}` first)")));
                }
                args.extend(["--snapname".into(), s.to_string()]);
                if let Some(pool) = &ct.base.storage_pool {
                    args.extend(["--storage".into(), pool.clone()]);
                }
            }
            None => args.extend(self.template_clone_args(ct, parent)?),
        }
        // Before the task, so that a clone adopted after an interrupted run owns them too.
        self.take_over_raw_lines(parent, ct.base.id)?;
        let path = format!("/nodes/{}/lxc/{parent}/clone", self.node()?);
        self.run_task(path, args, task)
    }

    fn template_clone_args(&self, ct: &Container, parent: GuestId) -> Result<Vec<String>> {
        let rootfs = self
            .config(parent)?
            .get("rootfs")
            .map(props)
            .unwrap_or_default();
        let source = rootfs
            .get("")
            .and_then(|v| v.split_once(':'))
            .map(|(s, _)| s.to_string())
            .unwrap_or_default();
        let target = ct
            .base
            .storage_pool
            .clone()
            .unwrap_or_else(|| source.clone());
        if target == source && self.storage(&source)?.linked_clones() {
            return Ok(Vec::new());
        }
        Ok(vec![
            "--full".into(),
            "1".into(),
            "--storage".into(),
            target,
        ])
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

//! The VM half of a backend: what the `qm` lifecycle asks of a hypervisor (UPSTREAM.md §3), in
//! typed operations and [`VmSetting`]s the backend translates into its own commands. A backend
//! that builds VMs returns itself from [`super::Hypervisor::vms`].

use super::{Change, Live, Refusal, Result, RunState, TaskSink};
use crate::config::common::FirewallRule;
use crate::config::values::IpConfig;
use crate::config::GuestId;
use crate::exec::{Cmd, Output};
use serde::Serialize;
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// Where a new VM comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum VmSource {
    /// A cloud image on the node (a path, or a storage volume id), imported as the boot disk.
    Image(String),
    /// A clone of the template `parent` (or of its snapshot): linked where the storage allows it,
    /// full when `full` (or when the storage cannot link).
    Clone {
        parent: GuestId,
        snapshot: Option<String>,
        full: bool,
    },
}

/// What a new VM is made with; everything else is a [`VmSetting`] applied after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmSpec {
    pub id: GuestId,
    pub name: String,
    /// The storage its disks go to.
    pub storage: String,
    /// The bridge of its first network interface.
    pub bridge: String,
}

/// cloud-init's inputs: the user, its keys, the first interface's address and the resolver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CloudInit {
    pub user: Option<String>,
    /// Public keys (`ssh-ed25519 AAAA... comment`), each on its own line in the guest.
    pub ssh_keys: Vec<String>,
    pub ip: IpConfig,
    pub gw: Option<Ipv4Addr>,
    pub nameservers: Vec<Ipv4Addr>,
    pub searchdomain: Option<String>,
    /// Whether cloud-init upgrades the packages at first boot (Proxmox's `ciupgrade`).
    pub upgrade: bool,
}

/// A piece of a VM's configuration, as the configuration asks for it: one step each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VmSetting {
    /// The VM's name, which cloud-init makes its host name.
    Name(String),
    Resources {
        cores: u64,
        memory_mb: u64,
    },
    /// The boot disk's size in GiB; grown, never shrunk.
    DiskSize(u64),
    CloudInit(CloudInit),
    Startup {
        onboot: bool,
        order: Option<u64>,
        delay: Option<u64>,
    },
    /// `qm_options`: `qm set` words, as given.
    Options(Vec<String>),
    Firewall {
        enabled: bool,
        rules: Vec<FirewallRule>,
    },
}

impl VmSetting {
    pub fn name(&self) -> &'static str {
        match self {
            VmSetting::Name(_) => "name",
            VmSetting::Resources { .. } => "resources",
            VmSetting::DiskSize(_) => "disk_size",
            VmSetting::CloudInit(_) => "cloud_init",
            VmSetting::Startup { .. } => "startup",
            VmSetting::Options(_) => "qm_options",
            VmSetting::Firewall { .. } => "firewall",
        }
    }

    /// Whether a running VM takes the change only at its next boot: cloud-init reads its drive
    /// once per instance, so the VM is restarted (a new instance id makes it apply the change).
    pub fn needs_restart(&self) -> bool {
        matches!(self, VmSetting::CloudInit(_) | VmSetting::Name(_))
    }

    /// Whether applying it may restart a running VM: cloud-init's inputs, and what a hypervisor
    /// may keep pending until the next start (cores, memory, `qm_options`).
    pub fn may_restart(&self) -> bool {
        self.needs_restart() || matches!(self, VmSetting::Resources { .. } | VmSetting::Options(_))
    }
}

/// What the guest agent says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agent {
    /// It answers.
    Answers,
    /// The VM's config has no agent: nothing will ever answer.
    NotConfigured,
    /// The VM is not running.
    VmStopped,
    /// Configured, the VM runs, and nothing answers yet: still booting, or not installed.
    Silent,
}

/// A hypervisor that builds VMs.
pub trait Vms: Send + Sync {
    /// One query for several VMs (`None`: it does not exist); each one's config is kept for its
    /// first [`Vms::vm_inspect`].
    fn vm_states(&self, ids: &[GuestId]) -> Result<HashMap<GuestId, Option<RunState>>>;
    fn vm_state(&self, id: GuestId) -> Result<Option<RunState>>;
    /// The VM as it is now, read once: config, template flag, finished snapshots.
    fn vm_inspect(&self, id: GuestId) -> Result<Option<Live>>;
    /// Creates the stopped VM `spec` from `source`.
    fn vm_create(&self, spec: &VmSpec, source: &VmSource, task: TaskSink) -> Result<()>;
    /// Removes what an interrupted create or clone left.
    fn vm_discard_partial(&self, id: GuestId) -> Result<()>;
    /// What differs between `setting` and the VM as read in `live`.
    fn vm_diff(&self, live: &Live, setting: &VmSetting) -> Result<Vec<Change>>;
    /// Makes `setting` so.
    fn vm_apply(&self, id: GuestId, setting: &VmSetting) -> Result<()>;
    fn vm_start(&self, id: GuestId) -> Result<()>;
    /// A clean shutdown through ACPI or the agent; stopped hard after the timeout.
    fn vm_shutdown(&self, id: GuestId) -> Result<()>;
    fn vm_reboot(&self, id: GuestId) -> Result<()>;
    fn vm_destroy(&self, id: GuestId) -> Result<()>;
    fn vm_agent(&self, id: GuestId) -> Result<Agent>;
    /// Runs `cmd` in the VM through the agent as root, with a clean environment plus `cmd.env`;
    /// the guest's exit code and output, whatever the code.
    fn vm_exec(&self, id: GuestId, cmd: &Cmd) -> Result<Output>;
    fn vm_push(&self, id: GuestId, data: &[u8], path: &str, mode: u32) -> Result<()>;
    fn vm_snapshot(&self, id: GuestId, name: &str, task: TaskSink) -> Result<()>;
    /// Removes snapshots an interrupted [`Vms::vm_snapshot`] left unfinished.
    fn vm_discard_partial_snapshots(&self, id: GuestId) -> Result<()>;
    /// Converts the (stopped) VM into a template.
    fn vm_template(&self, id: GuestId) -> Result<()>;
    /// Makes an image given as a URL available on the node: downloaded once into its cache,
    /// checked against `sha256`, and its path there returned.
    fn vm_fetch_image(&self, url: &str, sha256: &str) -> Result<String>;
    /// Whether an image path or volume exists on the node.
    fn vm_image_exists(&self, image: &str) -> Result<bool>;
    /// What the node will refuse for a VM on `storage` made from `image` (a path or volume on
    /// the node, when it is one) with these firewall rules, before any change.
    fn vm_preflight(
        &self,
        storage: &str,
        image: Option<&str>,
        rules: &[FirewallRule],
    ) -> Vec<Refusal>;
}

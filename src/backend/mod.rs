//! Hypervisor backends behind one trait. The lifecycle asks for typed [`Setting`]s and lifecycle
//! operations; each backend translates them into its own commands (plain LXC here, `pct` for
//! Proxmox). Every backend probes before it acts.

pub mod cgroup;
pub mod change;
pub mod files;
pub mod gpu;
pub mod guest_env;
pub mod idmap;
pub mod lxc;
#[cfg(test)]
pub mod memory;
pub mod owner;
pub mod proxmox;
pub mod vm;

pub use change::{Change, Live};

use crate::config::lxc::{Container, IdMap, MountPoint, Volume};
use crate::config::values::{IpConfig, Mac};
use crate::config::GuestId;
use crate::exec::{ExecError, Output};
use serde::Serialize;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// Whether a guest runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    Stopped,
    Frozen,
}

/// One network interface as a guest should have it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Nic {
    pub index: u8,
    pub name: String,
    pub bridge: String,
    pub ip: IpConfig,
    pub gw: Option<Ipv4Addr>,
    pub hwaddr: Mac,
    /// Proxmox's per-interface firewall flag (`firewall.enabled`).
    pub firewall: bool,
}

/// A piece of a guest's configuration, as the configuration asks for it. Each is one step of the
/// lifecycle, probed and applied as a unit; its serialized form is the step's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Setting {
    Hostname(String),
    Resources {
        memory_mb: u64,
        swap_mb: u64,
        cores: u64,
    },
    Network {
        nics: Vec<Nic>,
        nameservers: Vec<Ipv4Addr>,
    },
    Startup {
        onboot: bool,
        order: Option<u64>,
        delay: Option<u64>,
    },
    Security {
        apparmor_profile: String,
        nesting: bool,
        features: Vec<String>,
    },
    IdMaps {
        unprivileged: bool,
        maps: Vec<IdMap>,
    },
    RawOptions(Vec<String>),
    Gpus(Vec<u32>),
    Mounts {
        binds: Vec<MountPoint>,
        volumes: Vec<Volume>,
        /// Whose ids the bind mounts' owners are given in.
        ids: owner::Ids,
    },
    /// Per-guest firewall rules (Proxmox).
    Firewall {
        enabled: bool,
        rules: Vec<crate::config::common::FirewallRule>,
    },
    /// Root filesystem size in GiB; grown, never shrunk.
    RootfsSize(u64),
}

impl Setting {
    /// The step name of this setting.
    pub fn name(&self) -> &'static str {
        match self {
            Setting::Hostname(_) => "hostname",
            Setting::Resources { .. } => "resources",
            Setting::Network { .. } => "network",
            Setting::Startup { .. } => "startup",
            Setting::Security { .. } => "security",
            Setting::IdMaps { .. } => "idmap",
            Setting::RawOptions(_) => "lxc_options",
            Setting::Gpus(_) => "gpu",
            Setting::Mounts { .. } => "mounts",
            Setting::Firewall { .. } => "firewall",
            Setting::RootfsSize(_) => "rootfs_size",
        }
    }

    /// Whether a changed setting takes effect only when the guest starts (every backend writes
    /// these into the guest's config, which LXC reads at start): a running guest is restarted.
    pub fn needs_restart(&self) -> bool {
        matches!(
            self,
            Setting::Network { .. }
                | Setting::Security { .. }
                | Setting::IdMaps { .. }
                | Setting::RawOptions(_)
                | Setting::Gpus(_)
                | Setting::Mounts { .. }
        )
    }
}

/// What applying a setting requires of a running guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// In effect now.
    Live,
    /// Written; takes effect at the next start (the guest was stopped to apply it).
    Restarted,
}

/// What a backend can do, so the lifecycle leaves out what it cannot (and says so).
#[derive(Debug, Clone, Copy)]
pub struct Capabilities {
    pub firewall: bool,
    pub resize_rootfs: bool,
    pub templates: bool,
    /// Whether creates, clones and snapshots take storage locks that time out when many run at
    /// once (Proxmox): then they are limited per storage pool by default.
    pub storage_locks: bool,
}

/// Something a backend will refuse for a guest as configured, found before any change: the
/// configuration field (a JSON pointer below the guest), what, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub field: String,
    pub message: String,
    pub hint: String,
}

impl Refusal {
    pub fn new(
        field: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Refusal {
            field: field.into(),
            message: message.into(),
            hint: hint.into(),
        }
    }
}

/// Where a backend reports the task an operation started on the node (a Proxmox UPID) before it
/// waits for it, so that the step saves it as its intent: a run killed meanwhile finds the task
/// again instead of starting a second one.
pub type TaskSink<'a> = &'a mut dyn FnMut(&str) -> Result<()>;

/// How a task found again ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskEnd {
    Ok,
    /// It failed (its exit status), or vanished without one.
    Failed(String),
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("guest {0} does not exist")]
    NotFound(GuestId),
    #[error("guest {0} is not running (start it first: phoenix start {0})")]
    NotRunning(GuestId),
    #[error("{0}")]
    Invalid(String),
}

impl BackendError {
    /// The output tail of the command that failed, if one did.
    pub fn tail(&self) -> String {
        match self {
            BackendError::Exec(e) => e.tail(),
            _ => String::new(),
        }
    }

    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BackendError {
        let path = path.into();
        move |source| BackendError::Io { path, source }
    }
}

pub type Result<T> = std::result::Result<T, BackendError>;

/// A hypervisor Phoenix can build guests on.
pub trait Hypervisor: Send + Sync {
    /// `lxc` or `proxmox`.
    fn kind(&self) -> &'static str;
    fn capabilities(&self) -> Capabilities;
    /// Its VM half, where it builds VMs.
    fn vms(&self) -> Option<&dyn vm::Vms> {
        None
    }
    /// What it will refuse for this guest (bridges, storage, files on the host, snapshots it
    /// cannot take), before anything changes. `parent` is the container it clones, if any;
    /// `storage` the storage its root disk is on ([`crate::config::Fleet::storage_of`]).
    fn preflight(
        &self,
        ct: &Container,
        parent: Option<&Container>,
        storage: Option<&str>,
    ) -> Vec<Refusal>;
    /// Why the backend cannot snapshot this container as configured (`None`: it can).
    fn snapshot_refusal(&self, _ct: &Container, _storage: Option<&str>) -> Option<String> {
        None
    }

    /// `None` when the guest does not exist.
    fn state(&self, id: GuestId) -> Result<Option<RunState>>;
    /// The states of several guests; backends that can answer for all at once override this.
    fn states(
        &self,
        ids: &[GuestId],
    ) -> Result<std::collections::HashMap<GuestId, Option<RunState>>> {
        ids.iter().map(|id| Ok((*id, self.state(*id)?))).collect()
    }
    /// Creates a stopped guest from a rootfs tarball (a path, or a backend's volume id).
    fn create(&self, ct: &Container, template: &str, task: TaskSink) -> Result<()>;
    /// Creates a stopped guest as a clone of `parent`'s snapshot `snapshot` (`None`: of the
    /// template `parent` itself).
    fn clone_from(
        &self,
        ct: &Container,
        parent: GuestId,
        snapshot: Option<&str>,
        task: TaskSink,
    ) -> Result<()>;
    /// Waits for a task an interrupted operation started (see [`TaskSink`]) to end.
    fn settle_task(&self, task: &str) -> Result<TaskEnd> {
        Ok(TaskEnd::Failed(format!(
            "{task}: this backend has no tasks"
        )))
    }
    /// Removes whatever a create or clone interrupted midway left behind.
    fn discard_partial(&self, id: GuestId) -> Result<()>;

    /// The guest as it is now, read once (`None`: it does not exist).
    fn inspect(&self, id: GuestId) -> Result<Option<Live>>;
    /// What differs between `setting` and the guest as read in `live` (empty: in effect).
    fn diff(&self, live: &Live, setting: &Setting) -> Result<Vec<Change>>;
    /// Whether `setting` is already in effect.
    fn probe(&self, id: GuestId, setting: &Setting) -> Result<bool> {
        let live = self.inspect(id)?.ok_or(BackendError::NotFound(id))?;
        Ok(self.diff(&live, setting)?.is_empty())
    }
    /// Makes `setting` so; removes what the configuration no longer asks for.
    fn apply(&self, id: GuestId, setting: &Setting) -> Result<Applied>;

    fn start(&self, id: GuestId) -> Result<()>;
    fn stop(&self, id: GuestId) -> Result<()>;
    fn destroy(&self, id: GuestId) -> Result<()>;

    /// Converts a guest into a template (backends with templates only).
    fn make_template(&self, id: GuestId) -> Result<()> {
        Err(BackendError::Invalid(format!(
            "{}: the {} backend has no templates",
            id,
            self.kind()
        )))
    }

    /// Whether the guest is a template.
    fn is_template(&self, _id: GuestId) -> Result<bool> {
        Ok(false)
    }

    /// Snapshot names, exactly as given when they were taken.
    fn snapshots(&self, id: GuestId) -> Result<Vec<String>>;
    /// Takes a snapshot (stopping and restarting the guest where the backend needs that).
    fn snapshot(&self, id: GuestId, name: &str, task: TaskSink) -> Result<()>;
    fn delete_snapshot(&self, id: GuestId, name: &str) -> Result<()>;
    /// Removes snapshots an interrupted `snapshot` left without a name.
    fn discard_partial_snapshots(&self, id: GuestId) -> Result<()>;
    /// What tells this snapshot from an earlier one of the same name, once it is complete (on
    /// plain LXC its `snapN` directory). `None`: none, or the backend cannot tell; an interrupted
    /// snapshot is then taken again rather than adopted.
    fn snapshot_identity(&self, _id: GuestId, _name: &str) -> Result<Option<String>> {
        Ok(None)
    }

    /// Runs `cmd` (its argv, stdin, env, timeout) inside the running guest as root, with a clean
    /// environment plus `cmd.env`. Returns the output whatever the exit code.
    fn exec(&self, id: GuestId, cmd: &crate::exec::Cmd) -> Result<Output>;
    /// Writes a file inside the running guest.
    fn push(&self, id: GuestId, data: &[u8], path: &str, mode: u32) -> Result<()>;
}

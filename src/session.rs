//! What every part of a run shares, held once: the checked configuration and its graph, the
//! backend and the runner its commands go through, the feature directories, the state store (none
//! in a dry run), cancellation, storage-pool limits, Phoenix's SSH key for guests, and the guests'
//! states as found when the run began.

use crate::backend::{Hypervisor, RunState};
use crate::config::{Fleet, GuestId, GuestRef};
use crate::exec::ssh_key::GuestSsh;
use crate::exec::Runner;
use crate::features::FeatureDirs;
use crate::graph::Graph;
use crate::limits::PoolLimits;
use state_machine::Store;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

pub struct Session {
    pub fleet: Fleet,
    pub graph: Graph,
    pub runner: Arc<dyn Runner>,
    pub backend: Arc<dyn Hypervisor>,
    pub features: FeatureDirs,
    /// `None` in a dry run: nothing is recorded.
    pub store: Option<Store>,
    /// Where the store lives (a dry run reads what is recorded there).
    pub state_dir: PathBuf,
    /// Set by the first Ctrl-C: no new step starts.
    pub cancel: AtomicBool,
    /// Create/clone/snapshot operations at once per storage pool.
    pub limits: PoolLimits,
    /// Phoenix's key and known_hosts for guests reached over SSH (`exec_via: ssh`).
    pub guest_ssh: Option<GuestSsh>,
    /// Each guest's state as found when the run began (one backend query for the fleet).
    pub found: OnceLock<HashMap<GuestId, Option<RunState>>>,
}

impl Session {
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    pub fn dry_run(&self) -> bool {
        self.store.is_none()
    }

    /// The state of `id`: as found when the run began, else asked now (of the backend's VM half
    /// for a VM).
    pub fn found_state(&self, id: GuestId) -> crate::backend::Result<Option<RunState>> {
        if let Some(state) = self.found.get().and_then(|f| f.get(&id)) {
            return Ok(*state);
        }
        match (self.fleet.guest(id), self.backend.vms()) {
            (Some(GuestRef::Vm(_)), Some(vms)) => vms.vm_state(id),
            (Some(GuestRef::Vm(_)), None) => Ok(None),
            _ => self.backend.state(id),
        }
    }
}

/// A session shared by the guest tasks of a run.
pub type Shared = Arc<Session>;

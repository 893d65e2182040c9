//! VMs as a kind of job: job id `vm/<vmid>`, the states of every guest, the `qm` lifecycle of
//! UPSTREAM.md §3 as a table of steps built state by state, each done step checked against the VM
//! as found ([`Seen`]).
//!
//! | state | steps | built in |
//! |---|---|---|
//! | created | `create`: the cloud image imported as the boot disk, or a clone of the template (linked where the storage allows it) | [`created`] |
//! | configured | `name`, `resources`, `disk_size`, `cloud_init`, `startup`, `qm_options`, `firewall` | [`configured`] |
//! | running | `start`: the guest agent answers and cloud-init is done (a reboot it asks for is made); `ssh_access` for `exec_via: ssh` | [`running`] |
//! | customizing | `volume:<mount_point>` per NFS volume, `snapshot:<pre-features>`, `feature:<name>` per feature | [`customizing`], [`volumes`] |
//! | completed | `snapshot:<post-features>`, `snapshot:<template_snapshot_name>`; a template: `seal` (if it ran), `template` | [`completed`] |
//!
//! A backend without VMs (`Hypervisor::vms`) cannot build one: it is reported on its own before
//! anything starts, and its dependents are blocked ([`unbuildable`]).

mod completed;
mod configured;
mod created;
mod customizing;
mod exec;
mod running;
mod snapshot;
mod volumes;

use super::guest::{GuestExec, InGuest};
use super::{JobKind, Label, Lifecycle, StepCx, StepError, Table, Unbuildable};
use crate::backend::vm::Vms;
use crate::backend::{Live, RunState};
use crate::config::vm::Vm;
use crate::config::GuestId;
use crate::session::Session;
use std::sync::Arc;
use std::time::Duration;

pub fn label(vm: &Vm) -> Label {
    Label::new("vm", vm.base.id, &vm.base.name)
}

/// Why `vm` cannot be built in this session's backend.
pub fn unbuildable(session: &Session, vm: &Vm) -> Unbuildable {
    Unbuildable::backend(
        format!(
            "the {} backend cannot build VMs (VM {} {})",
            session.backend.kind(),
            vm.base.id,
            vm.base.name
        ),
        "its dependents are blocked; build them against VMs that already exist with `--assume-built ID`",
    )
}

/// What the backend will refuse for `vm` before any change (none where it has no VMs: the VM is
/// then reported as unbuildable).
pub fn refusals(session: &Session, vm: &Vm) -> Vec<crate::backend::Refusal> {
    let Some(vms) = session.backend.vms() else {
        return Vec::new();
    };
    let image = vm
        .template_image
        .as_deref()
        .filter(|i| vm.base.clone_from.is_none() && created::on_node(i));
    let rules = vm.base.firewall.as_ref().map(|f| f.rules.as_slice());
    vms.vm_preflight(
        &created::storage(&session.fleet, vm),
        image,
        rules.unwrap_or_default(),
    )
}

/// What a VM step's probe and act receive.
pub struct VmCx {
    pub session: Arc<Session>,
    pub vm: Vm,
    /// Where its scripts run: through the agent, or over SSH.
    pub exec: Box<dyn GuestExec>,
    /// Through the agent, whatever `exec` is.
    pub agent: exec::ViaAgent,
    pub step_timeout: Duration,
}

impl VmCx {
    pub fn id(&self) -> GuestId {
        self.vm.base.id
    }

    /// The backend's VM half (a job exists only where it has one).
    pub fn vms(&self) -> &dyn Vms {
        match self.session.backend.vms() {
            Some(v) => v,
            None => unreachable!("a VM job is prepared only on a backend with VMs"),
        }
    }
}

/// A VM as found by one run: its state and its config file (snapshots and template flag in it).
pub struct Seen {
    pub state: RunState,
    pub live: Live,
}

impl StepCx for VmCx {
    type Seen = Seen;
}

impl InGuest for VmCx {
    fn exec(&self) -> &dyn GuestExec {
        self.exec.as_ref()
    }

    fn hypervisor(&self) -> &dyn GuestExec {
        &self.agent
    }

    fn runs(&self) -> Result<bool, StepError> {
        Ok(self.vms().vm_state(self.id())? == Some(RunState::Running))
    }

    fn step_timeout(&self) -> Duration {
        self.step_timeout
    }
}

/// One VM's job, ready to converge.
pub struct VmJob {
    label: Label,
    cx: VmCx,
    table: Table<Lifecycle, VmCx>,
}

impl VmJob {
    pub fn prepare(
        session: &Arc<Session>,
        vm: &Vm,
        step_timeout: Duration,
    ) -> Result<VmJob, Unbuildable> {
        if session.backend.vms().is_none() {
            return Err(unbuildable(session, vm));
        }
        let cx = VmCx {
            exec: exec::for_vm(vm, session, &session.runner),
            agent: exec::via_agent(vm, session),
            session: session.clone(),
            vm: vm.clone(),
            step_timeout,
        };
        let mut table = Table::default();
        created::steps(&mut table, &cx)?;
        configured::steps(&mut table, &cx)?;
        running::steps(&mut table, &cx)?;
        customizing::steps(&mut table, &cx)?;
        completed::steps(&mut table, &cx);
        Ok(VmJob {
            label: label(vm),
            cx,
            table,
        })
    }

    /// Whether the VM runs at all in its build: a template runs only to customize it.
    pub fn boots(vm: &Vm) -> bool {
        !vm.base.is_template || !vm.base.features.is_empty()
    }
}

impl JobKind for VmJob {
    type State = Lifecycle;
    type Cx = VmCx;

    fn label(&self) -> &Label {
        &self.label
    }

    fn cx(&self) -> &VmCx {
        &self.cx
    }

    fn table(&self) -> &Table<Lifecycle, VmCx> {
        &self.table
    }

    fn pool(&self) -> &str {
        self.cx.vm.base.storage_pool.as_deref().unwrap_or("default")
    }

    fn inspect(&self, stopped_by_step: bool) -> Result<Option<Seen>, StepError> {
        let id = self.cx.id();
        let Some(state) = self.cx.session.found_state(id)? else {
            return Ok(None);
        };
        let state = match stopped_by_step {
            true => RunState::Running,
            false => state,
        };
        let Some(live) = self.cx.vms().vm_inspect(id)? else {
            return Ok(None);
        };
        Ok(Some(Seen { state, live }))
    }

    fn running(&self) -> Result<bool, StepError> {
        self.cx.runs()
    }

    /// Started again after a step stopped it: once its agent answers, its scripts can run.
    fn start(&self) -> Result<(), StepError> {
        running::boot(&self.cx)
    }
}

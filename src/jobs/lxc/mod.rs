//! Containers as a kind of job: job id `lxc/<ctid>`, a table of steps in upstream order built state
//! by state from the configuration, each done step checked against the container as found
//! ([`Seen`]).
//!
//! | state | steps | built in |
//! |---|---|---|
//! | created | `create` (from `template`, or a clone of the parent's `template_snapshot_name`) | [`created`] |
//! | configured | `hostname`, `resources`, `network`, `startup`, `security`, `lxc_options`, `gpu`, `idmap`, `mounts`; `firewall` and `rootfs_size` where the backend has them | [`configured`] |
//! | running | `start` (and the network answers); `ssh_access` for `exec_via: ssh` | [`running`] |
//! | customizing | `snapshot:pre-configured` (lifecycle snapshots), `feature:<name>` per feature | [`customizing`] |
//! | completed | `application_script`, `health_check`, `host_check:<name>`, `snapshot:<template_snapshot_name>`, `snapshot:final-form`, `template` | [`completed`] |

mod completed;
mod configured;
mod created;
mod customizing;
mod running;
mod snapshot;

use super::guest::exec::{self, GuestExec};
use super::guest::InGuest;
use super::{JobKind, Label, Lifecycle, StepCx, StepError, Table, Unbuildable};
use crate::backend::{Hypervisor, Live, RunState};
use crate::config::lxc::Container;
use crate::config::GuestId;
use crate::exec::Runner;
use crate::session::Session;
use std::sync::Arc;
use std::time::Duration;

/// What a container step's probe and act receive.
pub struct CtCx {
    pub session: Arc<Session>,
    pub ct: Container,
    /// Where its scripts run: through the hypervisor or over SSH.
    pub exec: Box<dyn GuestExec>,
    /// Through the hypervisor (`pct exec`), whatever `exec` is.
    pub hypervisor: exec::ViaHypervisor,
    pub step_timeout: Duration,
}

impl CtCx {
    pub fn id(&self) -> GuestId {
        self.ct.base.id
    }

    pub fn backend(&self) -> &dyn Hypervisor {
        self.session.backend.as_ref()
    }

    pub fn runner(&self) -> &dyn Runner {
        self.session.runner.as_ref()
    }
}

/// A container as found by one run: its state (from the fleet's one state listing), its config
/// (one read) and its snapshots (one listing). Every done step's live check reads it.
pub struct Seen {
    pub state: RunState,
    pub live: Live,
    pub snapshots: Vec<String>,
}

impl StepCx for CtCx {
    type Seen = Seen;
}

impl InGuest for CtCx {
    fn exec(&self) -> &dyn GuestExec {
        self.exec.as_ref()
    }

    fn hypervisor(&self) -> &dyn GuestExec {
        &self.hypervisor
    }

    fn runs(&self) -> Result<bool, StepError> {
        Ok(self.backend().state(self.id())? == Some(RunState::Running))
    }

    fn step_timeout(&self) -> Duration {
        self.step_timeout
    }
}

/// One container's job, ready to converge.
pub struct ContainerJob {
    label: Label,
    cx: CtCx,
    table: Table<Lifecycle, CtCx>,
}

impl ContainerJob {
    /// The job of `ct`: its table built from the configuration for this session's backend.
    pub fn prepare(
        session: &Arc<Session>,
        ct: &Container,
        step_timeout: Duration,
    ) -> Result<ContainerJob, Unbuildable> {
        let cx = CtCx {
            hypervisor: exec::ViaHypervisor {
                backend: session.backend.clone(),
                id: ct.base.id,
            },
            exec: exec::for_container(
                ct,
                &session.backend,
                &session.runner,
                session.guest_ssh.as_ref(),
            ),
            session: session.clone(),
            ct: ct.clone(),
            step_timeout,
        };
        let mut table = Table::default();
        created::steps(&mut table, &cx)?;
        configured::steps(&mut table, &cx);
        running::steps(&mut table, &cx)?;
        customizing::steps(&mut table, &cx)?;
        completed::steps(&mut table, &cx)?;
        Ok(ContainerJob {
            label: Label::new("lxc", ct.base.id, &ct.base.name),
            cx,
            table,
        })
    }
}

impl JobKind for ContainerJob {
    type State = Lifecycle;
    type Cx = CtCx;

    fn label(&self) -> &Label {
        &self.label
    }

    fn cx(&self) -> &CtCx {
        &self.cx
    }

    fn table(&self) -> &Table<Lifecycle, CtCx> {
        &self.table
    }

    fn pool(&self) -> &str {
        self.cx.ct.base.storage_pool.as_deref().unwrap_or("default")
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
        let Some(live) = self.cx.backend().inspect(id)? else {
            return Ok(None);
        };
        let snapshots = match &live.snapshots {
            Some(s) => s.clone(),
            None => self.cx.backend().snapshots(id)?,
        };
        Ok(Some(Seen {
            state,
            live,
            snapshots,
        }))
    }

    fn running(&self) -> Result<bool, StepError> {
        Ok(self.cx.backend().state(self.cx.id())? == Some(RunState::Running))
    }

    fn start(&self) -> Result<(), StepError> {
        Ok(self.cx.backend().start(self.cx.id())?)
    }
}

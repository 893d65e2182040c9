//! Containers as a kind of job: job id `lxc/<ctid>`, a table of steps in upstream order built state
//! by state from the configuration, and drift found on the live container.
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
use super::{Drift, JobKind, Label, Lifecycle, StepError, Table, Unbuildable};
use crate::backend::{Hypervisor, RunState};
use crate::config::lxc::Container;
use crate::config::GuestId;
use crate::exec::Runner;
use crate::session::Session;
use state_machine::{JobRecord, Status};
use std::sync::Arc;
use std::time::Duration;

/// What a container step's probe and act receive.
pub struct CtCx {
    pub session: Arc<Session>,
    pub ct: Container,
    /// Where its scripts run: through the hypervisor or over SSH.
    pub exec: Box<dyn GuestExec>,
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

    /// A completed container that is gone is rebuilt; one found stopped is started again (a
    /// template is not expected to run).
    fn drift(&self, record: &JobRecord) -> Result<Vec<Drift>, StepError> {
        if record.status != Status::Completed {
            return Ok(Vec::new());
        }
        let id = self.cx.id();
        Ok(match self.cx.session.found_state(id)? {
            None => vec![Drift::Gone("container is missing: rebuilding".into())],
            Some(RunState::Stopped) if self.cx.backend().is_template(id)? => Vec::new(),
            Some(RunState::Stopped) => vec![Drift::Redo {
                steps: vec!["start".into()],
                what: "container is stopped: starting".into(),
            }],
            Some(_) => Vec::new(),
        })
    }

    fn running(&self) -> Result<bool, StepError> {
        Ok(self.cx.backend().state(self.cx.id())? == Some(RunState::Running))
    }

    fn start(&self) -> Result<(), StepError> {
        Ok(self.cx.backend().start(self.cx.id())?)
    }
}

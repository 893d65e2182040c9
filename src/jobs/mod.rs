//! Kinds of job. A kind turns the configuration into a table of [`Step`]s that the engine drives
//! (`crate::converge`), names its jobs (`lxc/950`, `vm/1001`, `host/pve1`), and finds drift on the
//! live system. Containers are [`lxc`]; VMs are [`vm`]; the host's setup goes beside them, with
//! states of its own (the store holds jobs of every kind).

pub mod guest;
pub mod host;
pub mod intent;
pub mod lifecycle;
pub mod lxc;
pub mod step;
pub mod vm;

pub use intent::Intent;
pub use lifecycle::Lifecycle;
pub use step::{Attempt, Confirm, Row, Step, StepCx, StepError, Table};

use crate::config::{GuestId, GuestRef};
use crate::session::Session;
use state_machine::JobState;
use std::sync::Arc;
use std::time::Duration;

/// A kind of job, as one of its jobs: what the converge loop needs to drive it.
pub trait JobKind: Send + Sync {
    /// The states its jobs pass through.
    type State: JobState;
    /// What its steps' probes, acts and live checks receive.
    type Cx: StepCx;

    /// How it is named: job id, guest id and name.
    fn label(&self) -> &Label;
    fn cx(&self) -> &Self::Cx;
    /// Its steps, in order, built from the configuration.
    fn table(&self) -> &Table<Self::State, Self::Cx>;
    /// The storage pool whose slots its `pool_slot` steps take.
    fn pool(&self) -> &str;
    /// The guest as it is now, read once for every step's live check (`None`: it is gone).
    /// `stopped_by_step`: an interrupted step stopped it and its redo starts it again, so being
    /// stopped is no drift.
    fn inspect(
        &self,
        stopped_by_step: bool,
    ) -> Result<Option<<Self::Cx as StepCx>::Seen>, StepError>;
    /// Whether the guest runs now: a `needs_stopped` step records it before acting.
    fn running(&self) -> Result<bool, StepError>;
    /// Starts the guest again after a `needs_stopped` step stopped it.
    fn start(&self) -> Result<(), StepError>;
}

/// A job's names: `lxc/950` for the store, `950` and `phoenix-api` for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub job_id: String,
    pub id: String,
    pub name: String,
}

impl Label {
    pub fn new(kind: &str, id: GuestId, name: &str) -> Label {
        Label {
            job_id: format!("{kind}/{id}"),
            id: id.to_string(),
            name: name.to_string(),
        }
    }
}

/// Why a job cannot be built here, found before anything starts.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}{}", hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
pub struct Unbuildable {
    /// The backend cannot do it (as opposed to a configuration that cannot work).
    pub backend: bool,
    pub message: String,
    pub hint: Option<String>,
}

impl Unbuildable {
    pub fn config(message: impl Into<String>) -> Unbuildable {
        Unbuildable {
            backend: false,
            message: message.into(),
            hint: None,
        }
    }

    pub fn backend(message: impl Into<String>, hint: impl Into<String>) -> Unbuildable {
        Unbuildable {
            backend: true,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

/// A guest's job, ready to converge.
// A run holds one per guest, briefly: boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum GuestJob {
    Container(lxc::ContainerJob),
    Vm(vm::VmJob),
}

impl GuestJob {
    pub fn label(&self) -> &Label {
        match self {
            GuestJob::Container(j) => j.label(),
            GuestJob::Vm(j) => j.label(),
        }
    }
}

/// The job of guest `id` in this session, or why it cannot be built.
pub fn prepare(
    session: &Arc<Session>,
    id: GuestId,
    step_timeout: Duration,
) -> Result<GuestJob, Unbuildable> {
    match session.fleet.guest(id) {
        Some(GuestRef::Ct(ct)) => {
            lxc::ContainerJob::prepare(session, ct, step_timeout).map(GuestJob::Container)
        }
        Some(GuestRef::Vm(v)) => vm::VmJob::prepare(session, v, step_timeout).map(GuestJob::Vm),
        None => Err(Unbuildable::config(format!(
            "guest {id} is not defined in the configuration"
        ))),
    }
}

/// The label of guest `id`, whatever its kind.
pub fn label_of(g: GuestRef<'_>) -> Label {
    match g {
        GuestRef::Ct(c) => Label::new("lxc", c.base.id, &c.base.name),
        GuestRef::Vm(v) => vm::label(v),
    }
}

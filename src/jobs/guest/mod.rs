//! What guest steps do inside a guest: how commands reach it ([`exec`]), scripts with their
//! inputs and checks ([`scripts`]), run once across crashes ([`run_once`]) and followed as they
//! run ([`follow`]), whether its network answers ([`network`]), SSH access ([`ssh_access`]), and
//! what upstream's application scripts expect beside them ([`upstream`]).

pub mod exec;
pub mod follow;
pub mod network;
pub mod run_once;
pub mod script_step;
pub mod scripts;
pub mod ssh_access;
pub mod upstream;

pub use exec::GuestExec;

use crate::jobs::StepError;
use std::time::Duration;

/// What a guest's scripts need of its job, whatever its kind: where commands run, whether the
/// guest runs, and how long a step may take.
pub trait InGuest: Send + Sync {
    /// Where its scripts run: through the hypervisor, or over SSH.
    fn exec(&self) -> &dyn GuestExec;
    /// Through the hypervisor, whatever `exec` is (to open the guest to SSH).
    fn hypervisor(&self) -> &dyn GuestExec;
    /// Whether the guest runs now.
    fn runs(&self) -> Result<bool, StepError>;
    fn step_timeout(&self) -> Duration;
}

/// A guest found stopped (or frozen) runs again; a template is not expected to run.
pub fn not_running(template: bool, state: crate::backend::RunState) -> Vec<crate::backend::Change> {
    use crate::backend::{Change, RunState};
    if template || state == RunState::Running {
        return Vec::new();
    }
    let live = format!("{state:?}").to_lowercase();
    vec![Change::new("state", Some(live), Some("running".into()))]
}

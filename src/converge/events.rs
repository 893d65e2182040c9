//! What a run tells the operator (or a machine) as it goes, and what it reports at the end. The
//! JSON forms (`--output json`) are documented in the README; field names are stable.

use crate::jobs::Label;
use serde::{Deserialize, Serialize};

/// What happened to one guest in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every step was already done: nothing ran.
    Unchanged,
    /// Steps ran and succeeded.
    Converged,
    Failed,
    /// This backend cannot build it (a VM on a backend without VMs), found before anything ran.
    Unsupported,
    /// A prerequisite failed, could not be built, or was blocked.
    Blocked,
    /// The run was cancelled before the guest finished.
    Cancelled,
    /// Dry run: what would run was printed.
    Planned,
    /// A step's change waits for the node to reboot; the run after the reboot goes on.
    RebootRequired,
}

impl Outcome {
    /// Whether dependents may go on.
    pub fn ok(self) -> bool {
        matches!(
            self,
            Outcome::Unchanged | Outcome::Converged | Outcome::Planned
        )
    }

    pub fn word(self) -> &'static str {
        match self {
            Outcome::Unchanged => "unchanged",
            Outcome::Converged => "converged",
            Outcome::Failed => "FAILED",
            Outcome::Unsupported => "UNSUPPORTED",
            Outcome::Blocked => "blocked",
            Outcome::Cancelled => "cancelled",
            Outcome::Planned => "planned",
            Outcome::RebootRequired => "reboot-required",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GuestSummary {
    pub id: String,
    pub name: String,
    pub outcome: Outcome,
    pub state: String,
    pub steps_run: usize,
    pub steps_changed: usize,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
}

impl GuestSummary {
    /// A guest with `outcome` and nothing run (yet).
    pub fn new(label: &Label, outcome: Outcome) -> GuestSummary {
        GuestSummary {
            id: label.id.clone(),
            name: label.name.clone(),
            outcome,
            state: String::new(),
            steps_run: 0,
            steps_changed: 0,
            duration_ms: 0,
            error: None,
            blocked_by: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub guests: Vec<GuestSummary>,
    /// The run was interrupted (Ctrl-C, SIGTERM) and stopped starting new steps.
    pub cancelled: bool,
    pub duration_ms: u64,
    pub commands: u64,
    pub mutating_commands: u64,
    pub command_ms: u64,
}

impl Summary {
    /// The summary of a run of `session` that began at `started`, with its commands counted.
    pub fn finished(
        guests: Vec<GuestSummary>,
        session: &crate::session::Session,
        started: std::time::Instant,
    ) -> Summary {
        let (commands, mutating, cmd_time) = session.runner.stats().snapshot();
        Summary {
            guests,
            cancelled: session.cancelled(),
            duration_ms: started.elapsed().as_millis() as u64,
            commands,
            mutating_commands: mutating,
            command_ms: cmd_time.as_millis() as u64,
        }
    }

    pub fn ok(&self) -> bool {
        self.guests.iter().all(|g| g.outcome.ok())
    }

    pub fn guest(&self, id: &str) -> Option<&GuestSummary> {
        self.guests.iter().find(|g| g.id == id)
    }
}

/// What the operator (or a machine) is told as the run goes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        guests: usize,
        jobs: usize,
    },
    Command {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        cmd: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<i32>,
        ms: u64,
        /// When it ended (ms since the epoch); it started `ms` earlier.
        at_ms: u64,
        mutating: bool,
    },
    /// Dry run: a command that would change something, not run.
    WouldRun {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        cmd: String,
    },
    Cancelling {
        message: String,
    },
    GuestStarted {
        id: String,
        name: String,
        steps: usize,
        pending: usize,
    },
    StateEntered {
        id: String,
        state: String,
    },
    StepStarted {
        id: String,
        step: String,
        index: usize,
        total: usize,
        attempt: u32,
    },
    StepSucceeded {
        id: String,
        step: String,
        changed: bool,
        ms: u64,
    },
    StepFailed {
        id: String,
        step: String,
        error: String,
        output_tail: String,
        /// Not a failure: the step waits for the node to reboot.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reboot_required: bool,
    },
    StepPlanned {
        id: String,
        step: String,
        up_to_date: bool,
    },
    Drift {
        id: String,
        what: String,
    },
    Warning {
        id: String,
        message: String,
    },
    /// A step's remark, journaled too (e.g. it re-attached to a script an earlier run started).
    Note {
        id: String,
        step: String,
        message: String,
    },
    GuestFinished {
        id: String,
        outcome: Outcome,
        ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    RunFinished {
        summary: Summary,
    },
}

pub trait Reporter: Send {
    fn event(&mut self, e: &Event);
}

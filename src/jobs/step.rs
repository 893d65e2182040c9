//! One row of a job's step table: the state it completes, a digest of its inputs, what it needs
//! (a storage-pool slot, the guest stopped), and its probe ("is it already so?") and act ("make it
//! so") as functions a reader reaches in one hop.

use super::intent::Intent;
use crate::backend::BackendError;
use serde::Serialize;

/// Is it already so?
pub type Probe<C> = Box<dyn Fn(&C, &Attempt<'_>) -> Result<bool, StepError> + Send + Sync>;
/// Make it so.
pub type Act<C> = Box<dyn Fn(&C, &mut Attempt<'_>) -> Result<(), StepError> + Send + Sync>;

/// A step of a job whose states are `S` and whose probes and acts receive a `C`.
pub struct Step<S, C> {
    /// Unique in its job; what `state show` and the journal name it.
    pub name: String,
    /// The state the step completes.
    pub state: S,
    /// Digest of everything the step depends on: a new digest makes it run again.
    pub digest: String,
    /// Whether its act changes the guest (checks do not, and run every time they are reached).
    pub mutates: bool,
    /// Whether its act takes a slot of the guest's storage pool (creates, clones, snapshots).
    pub pool_slot: bool,
    /// Whether its act may stop a running guest: the run state is recorded first, and the guest
    /// is running again afterwards, also when a redo finishes the step after a crash.
    pub needs_stopped: bool,
    pub probe: Probe<C>,
    pub act: Act<C>,
}

/// A step before its probe and act are named: `Row::new(...).pool_slot().probe_act(p, a)`.
pub struct Row<S> {
    name: String,
    state: S,
    digest: String,
    mutates: bool,
    pool_slot: bool,
    needs_stopped: bool,
}

impl<S> Row<S> {
    /// A mutating step whose digest is that of `inputs` (each table tags them with what the
    /// step is, e.g. `("snapshot", name, chain)`).
    pub fn new(name: impl Into<String>, state: S, inputs: &impl Serialize) -> Row<S> {
        Row {
            name: name.into(),
            state,
            digest: crate::digest::of(inputs),
            mutates: true,
            pool_slot: false,
            needs_stopped: false,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// A check: it changes nothing and is never remembered as already so.
    pub fn check(mut self) -> Self {
        self.mutates = false;
        self
    }

    pub fn pool_slot(mut self) -> Self {
        self.pool_slot = true;
        self
    }

    pub fn needs_stopped(mut self) -> Self {
        self.needs_stopped = true;
        self
    }

    /// The finished step, with its probe and its act.
    pub fn probe_act<C>(
        self,
        probe: impl Fn(&C, &Attempt<'_>) -> Result<bool, StepError> + Send + Sync + 'static,
        act: impl Fn(&C, &mut Attempt<'_>) -> Result<(), StepError> + Send + Sync + 'static,
    ) -> Step<S, C> {
        Step {
            name: self.name,
            state: self.state,
            digest: self.digest,
            mutates: self.mutates,
            pool_slot: self.pool_slot,
            needs_stopped: self.needs_stopped,
            probe: Box::new(probe),
            act: Box::new(act),
        }
    }
}

/// A job's steps in order, and what the backend cannot do of what the configuration asks.
pub struct Table<S, C> {
    pub steps: Vec<Step<S, C>>,
    pub warnings: Vec<String>,
}

impl<S, C> Default for Table<S, C> {
    fn default() -> Self {
        Table {
            steps: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

impl<S, C> Table<S, C> {
    pub fn push(&mut self, step: Step<S, C>) {
        self.steps.push(step);
    }

    pub fn warn(&mut self, message: impl Into<String>) {
        self.warnings.push(message.into());
    }

    /// A digest of every step so far: steps that chain it (checks, snapshots) run again after any
    /// change before them.
    pub fn chain(&self) -> String {
        crate::digest::of(&self.steps.iter().map(|s| &s.digest).collect::<Vec<_>>())
    }

    pub fn step(&self, name: &str) -> Option<&Step<S, C>> {
        self.steps.iter().find(|s| s.name == name)
    }
}

/// What an attempt of a step knows of earlier ones, and how it records its own intent.
pub struct Attempt<'a> {
    /// What an interrupted or failed earlier attempt saved (the default when none did).
    pub intent: Intent,
    save: &'a mut dyn FnMut(&Intent) -> Result<(), StepError>,
}

impl<'a> Attempt<'a> {
    pub fn new(intent: Intent, save: &'a mut dyn FnMut(&Intent) -> Result<(), StepError>) -> Self {
        Attempt { intent, save }
    }

    /// Changes the intent and saves it durably before the caller goes on.
    pub fn save(&mut self, change: impl FnOnce(&mut Intent)) -> Result<(), StepError> {
        change(&mut self.intent);
        (self.save)(&self.intent)
    }
}

/// A step's failure, with the output of what failed.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    pub message: String,
    pub tail: String,
}

impl StepError {
    pub fn new(message: impl Into<String>, tail: impl Into<String>) -> StepError {
        StepError {
            message: message.into(),
            tail: tail.into(),
        }
    }
}

impl From<BackendError> for StepError {
    fn from(e: BackendError) -> StepError {
        StepError {
            tail: e.tail(),
            message: e.to_string(),
        }
    }
}

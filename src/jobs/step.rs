//! One row of a job's step table: the state it completes, a digest of its inputs, what it needs
//! (a storage-pool slot, the guest stopped), and its probe ("is it already so?") and act ("make it
//! so") as functions a reader reaches in one hop, and the live check that finds drift once the
//! step is done.

use super::intent::Intent;
use crate::backend::{BackendError, Change};
use serde::Serialize;

/// What a kind's steps receive, and what their live checks read.
pub trait StepCx: Send + Sync {
    /// The guest as found: read once per run (one config read, one snapshot listing), and
    /// compared with every done step.
    type Seen: Send + Sync;
}

/// Does what the step made still hold? What differs, from the guest as found (empty: it holds).
pub type LiveCheck<C> =
    Box<dyn Fn(&C, &<C as StepCx>::Seen) -> Result<Vec<Change>, StepError> + Send + Sync>;

/// Is it already so?
pub type Probe<C> = Box<dyn Fn(&C, &Attempt<'_>) -> Result<bool, StepError> + Send + Sync>;
/// Make it so.
pub type Act<C> = Box<dyn Fn(&C, &mut Attempt<'_>) -> Result<(), StepError> + Send + Sync>;

/// How `phoenix adopt` asks whether a step holds on a guest Phoenix did not build (and so left no
/// record or marker of).
pub enum Confirm<C> {
    /// Its probe answers.
    Probe,
    /// A script's `--check` mode answers (and on yes, leaves the marker its run would have).
    Check(Probe<C>),
    /// A script without a check mode: nothing can tell.
    Unconfirmable,
}

/// A step of a job whose states are `S` and whose probes and acts receive a `C`.
pub struct Step<S, C: StepCx> {
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
    /// How drift of the done step is found; steps without one (scripts, checks) are not re-run
    /// for drift.
    pub live: Option<LiveCheck<C>>,
    /// How `phoenix adopt` confirms it.
    pub confirm: Confirm<C>,
}

impl<S, C: StepCx> Step<S, C> {
    /// Gives the step a live check.
    pub fn live(
        mut self,
        check: impl Fn(&C, &C::Seen) -> Result<Vec<Change>, StepError> + Send + Sync + 'static,
    ) -> Self {
        self.live = Some(Box::new(check));
        self
    }

    /// Says how `phoenix adopt` confirms the step, where its probe cannot.
    pub fn confirm(mut self, confirm: Confirm<C>) -> Self {
        self.confirm = confirm;
        self
    }
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

    /// A step whose inputs are named parts (a script's body, environment, each config key it
    /// reads): the digest keeps each part's own digest, so a plan can say which one changed.
    pub fn with_parts(name: impl Into<String>, state: S, parts: &[(String, String)]) -> Row<S> {
        let mut row = Row::new(name, state, &parts);
        let each: Vec<String> = parts
            .iter()
            .map(|(k, v)| format!("{k}={}", &crate::digest::of(v)[..12]))
            .collect();
        row.digest = format!("{};{}", row.digest, each.join(","));
        row
    }

    /// The finished step, with its probe and its act.
    pub fn probe_act<C: StepCx>(
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
            live: None,
            confirm: Confirm::Probe,
        }
    }
}

/// The parts whose digests differ between two digests made by [`Row::with_parts`] (every part
/// of `new` when `old` has none).
pub fn changed_parts(old: &str, new: &str) -> Vec<String> {
    let parts = |d: &str| -> Vec<(String, String)> {
        d.split_once(';')
            .map(|(_, p)| {
                p.split(',')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let old = parts(old);
    parts(new)
        .into_iter()
        .filter(|p| !old.contains(p))
        .map(|(k, _)| k)
        .collect()
}

/// A job's steps in order, and what the backend cannot do of what the configuration asks.
pub struct Table<S, C: StepCx> {
    pub steps: Vec<Step<S, C>>,
    pub warnings: Vec<String>,
}

impl<S, C: StepCx> Default for Table<S, C> {
    fn default() -> Self {
        Table {
            steps: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

impl<S, C: StepCx> Table<S, C> {
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
    /// Remarks for the job's journal and the run's output (e.g. that a script in the guest was
    /// re-attached to).
    pub notes: Vec<String>,
    save: &'a mut dyn FnMut(&Intent) -> Result<(), StepError>,
}

impl<'a> Attempt<'a> {
    pub fn new(intent: Intent, save: &'a mut dyn FnMut(&Intent) -> Result<(), StepError>) -> Self {
        Attempt {
            intent,
            notes: Vec::new(),
            save,
        }
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Changes the intent and saves it durably before the caller goes on.
    pub fn save(&mut self, change: impl FnOnce(&mut Intent)) -> Result<(), StepError> {
        change(&mut self.intent);
        (self.save)(&self.intent)
    }

    /// Saves that the step's operation is issued (forgetting an earlier attempt's task), and
    /// returns what records, durably, the task the backend reports it started.
    pub fn issue(
        &mut self,
    ) -> Result<impl FnMut(&str) -> crate::backend::Result<()> + use<'_, 'a>, StepError> {
        self.save(|i| {
            i.issued = true;
            i.task = None;
        })?;
        Ok(|task: &str| {
            self.save(|i| i.task = Some(task.to_string()))
                .map_err(|e| crate::backend::BackendError::Invalid(e.to_string()))
        })
    }
}

/// A step's failure, with the output of what failed.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    pub message: String,
    pub tail: String,
    /// Not a failure: the step's change waits for the node to reboot (its intent says since
    /// which boot); the run ends, and a run after the reboot goes on.
    pub reboot: bool,
}

impl StepError {
    pub fn new(message: impl Into<String>, tail: impl Into<String>) -> StepError {
        StepError {
            message: message.into(),
            tail: tail.into(),
            reboot: false,
        }
    }

    /// The step waits for a reboot of the node.
    pub fn reboot_required(message: impl Into<String>) -> StepError {
        StepError {
            reboot: true,
            ..StepError::new(message, "")
        }
    }
}

impl From<BackendError> for StepError {
    fn from(e: BackendError) -> StepError {
        StepError::new(e.to_string(), e.tail())
    }
}

impl From<crate::exec::ExecError> for StepError {
    fn from(e: crate::exec::ExecError) -> StepError {
        BackendError::from(e).into()
    }
}

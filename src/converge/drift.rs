//! What a job's recorded steps no longer hold: the guest inspected once ([`JobKind::inspect`]),
//! each done step's live check run on what was found, and each step's digest compared with the
//! one recorded. A run forgets the drifted steps so they run again; `phoenix plan` shows all of it.

use crate::backend::Change;
use crate::jobs::step::changed_parts;
use crate::jobs::{Intent, JobKind, StepError};
use state_machine::JobRecord;

/// What was found of one job.
#[derive(Debug)]
pub enum Found {
    /// Neither recorded nor on the system: every step runs.
    New,
    /// Recorded as built, and gone: it is rebuilt from the first step.
    Gone,
    /// The steps that would run, and why (empty: nothing to do).
    Steps(Vec<Finding>),
}

/// One step that would run.
#[derive(Debug, Clone)]
pub struct Finding {
    pub step: String,
    pub why: Why,
    /// What differs on the live guest (for steps with a live check).
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// Done, and the live guest no longer holds it.
    Drift,
    /// Done with other inputs: the named ones changed (empty: the step's definition did).
    Changed(Vec<String>),
    /// Never done (or interrupted).
    NotRun,
}

/// Finds what `job` would run given its `record`. Without `pending_too`, only drift (a run's
/// engine finds the rest itself from the digests).
pub fn find<K: JobKind>(
    job: &K,
    record: Option<&JobRecord>,
    pending_too: bool,
) -> Result<Found, StepError> {
    let built = record.is_some_and(|r| !r.done.is_empty());
    let stopped_by_step = record
        .and_then(|r| r.intent.as_ref())
        .is_some_and(|(_, bytes)| Intent::decode(bytes).was_running == Some(true));
    let Some(seen) = job.inspect(stopped_by_step)? else {
        return Ok(if built { Found::Gone } else { Found::New });
    };
    let mut found = Vec::new();
    for step in job.table().steps.iter().filter(|s| s.mutates) {
        let done = record.and_then(|r| r.done_step(&step.name));
        let why = match done {
            None => Why::NotRun,
            Some(d) if d.digest != step.digest => {
                Why::Changed(changed_parts(&d.digest, &step.digest))
            }
            Some(_) => Why::Drift,
        };
        if why != Why::Drift && !pending_too {
            continue;
        }
        let changes = match &step.live {
            Some(check) => check(job.cx(), &seen)?,
            None => Vec::new(),
        };
        // A done step holds unless its check finds a difference; a step not run yet is made so
        // by its probe alone (no act) where its check finds none: a guest built by another tool.
        let holds = match why {
            Why::Drift => changes.is_empty(),
            Why::NotRun => step.live.is_some() && changes.is_empty(),
            Why::Changed(_) => false,
        };
        if holds {
            continue;
        }
        found.push(Finding {
            step: step.name.clone(),
            why,
            changes,
        });
    }
    Ok(Found::Steps(found))
}

/// `key live → want` for each change, `; `-separated.
pub fn describe(changes: &[Change]) -> String {
    changes
        .iter()
        .map(|c| match (&c.live, &c.want) {
            (Some(l), Some(w)) => format!("{} {l} → {w}", c.key),
            (None, Some(w)) => format!("+ {} {w}", c.key),
            (Some(l), None) => format!("- {} {l}", c.key),
            (None, None) => c.key.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

//! `phoenix adopt`: a guest built outside Phoenix (by the bash tool, by hand) recorded as far as
//! it holds, with nothing changed. Each step is asked in order how it stands ([`Confirm`]): its
//! probe, a script's `--check` mode, or for a check its run. The steps that hold are recorded as
//! done, in order, up to the first that does not; the verdicts of all are returned, so the user
//! sees everything the next run would do.

use crate::jobs::{Attempt, Confirm, Intent, JobKind, Step, StepError};
use serde::Serialize;
use state_machine::{EngineError, JobSpec, Store};

/// How one step stands on the adopted guest.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub step: String,
    pub holds: bool,
    /// Recorded as done (it holds, and so does every step before it).
    pub recorded: bool,
    /// Why it does not hold, or could not be told.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// Asks each step of `job` whether it holds and records the held prefix in `store`.
/// `trust_scripts`: a script without a check mode counts as run.
pub fn adopt<K: JobKind>(
    job: &K,
    store: &Store,
    trust_scripts: bool,
) -> Result<Vec<Verdict>, EngineError> {
    let mut spec = JobSpec::new(job.label().job_id.clone());
    for s in &job.table().steps {
        spec = spec.step(s.name.clone(), s.state, s.digest.clone());
    }
    let mut engine_job = store.begin(&spec)?;
    let mut recording = true;
    let mut verdicts = Vec::new();
    for step in &job.table().steps {
        let already = engine_job
            .record()
            .done_step(&step.name)
            .is_some_and(|d| d.digest == step.digest);
        let (holds, why) = match already {
            true => (true, None),
            false => ask(job, step, trust_scripts),
        };
        let mut recorded = already;
        if holds && recording && !already {
            engine_job.start()?;
            engine_job.note("adopted: it already held")?;
            engine_job.succeed()?;
            recorded = true;
        }
        recording &= holds;
        verdicts.push(Verdict {
            step: step.name.clone(),
            holds,
            recorded,
            why,
        });
    }
    Ok(verdicts)
}

/// Whether `step` holds, and why not.
fn ask<K: JobKind>(
    job: &K,
    step: &Step<K::State, K::Cx>,
    trust_scripts: bool,
) -> (bool, Option<String>) {
    let mut nothing_saved = |_: &Intent| Ok::<(), StepError>(());
    let mut at = Attempt::new(Intent::default(), &mut nothing_saved);
    let answer = match &step.confirm {
        // A check changes nothing: running it is asking.
        _ if !step.mutates => (step.act)(job.cx(), &mut at).map(|()| true),
        Confirm::Probe => (step.probe)(job.cx(), &at),
        Confirm::Check(check) => check(job.cx(), &at),
        Confirm::Unconfirmable if trust_scripts => Ok(true),
        Confirm::Unconfirmable => {
            return (
                false,
                Some("it has no --check mode (--trust-scripts records it as run)".into()),
            )
        }
    };
    match answer {
        Ok(true) => (true, None),
        Ok(false) => (false, Some("not so on the guest".into())),
        Err(e) => (false, Some(e.message)),
    }
}

/// What adopting one guest found.
#[derive(Debug, Clone, Serialize)]
pub struct Adoption {
    pub id: String,
    pub name: String,
    /// Every step in order, or none when the guest could not be asked.
    pub steps: Vec<Verdict>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Adoption {
    /// Every step holds (and is now recorded).
    pub fn complete(&self) -> bool {
        self.error.is_none() && self.steps.iter().all(|v| v.holds)
    }
}

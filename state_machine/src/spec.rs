//! What a caller asks the engine to run: a job's steps, in order, with their digests.

use crate::state::JobState;

/// One step: a name unique in its job, the state it completes, and a digest of the configuration
/// it depends on (a changed digest makes the step run again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepSpec<S> {
    pub name: String,
    pub state: S,
    pub digest: String,
}

/// A job: its id and its steps, ordered so that states never go backwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec<S> {
    pub id: String,
    pub steps: Vec<StepSpec<S>>,
    /// The run stops at this state: the job never gets past it, even when no later state has
    /// steps in this spec.
    pub until: Option<S>,
}

impl<S: JobState> JobSpec<S> {
    pub fn new(id: impl Into<String>) -> Self {
        JobSpec {
            id: id.into(),
            steps: Vec::new(),
            until: None,
        }
    }

    /// Cuts the job at `state`: only the steps of `state` and earlier ones may be given.
    pub fn until(mut self, state: S) -> Self {
        self.until = Some(state);
        self
    }

    pub fn step(mut self, name: impl Into<String>, state: S, digest: impl Into<String>) -> Self {
        self.steps.push(StepSpec {
            name: name.into(),
            state,
            digest: digest.into(),
        });
        self
    }

    /// Names are unique, states never decrease, and no step belongs to the initial state.
    pub fn check(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        let mut last = S::initial();
        for s in &self.steps {
            if !seen.insert(s.name.as_str()) {
                return Err(format!("step {:?} appears twice", s.name));
            }
            if s.state == S::initial() {
                return Err(format!(
                    "step {:?} belongs to the initial state {}",
                    s.name, s.state
                ));
            }
            if s.state < last {
                return Err(format!(
                    "step {:?} ({}) comes after a step of state {last}",
                    s.name, s.state
                ));
            }
            last = s.state;
        }
        Ok(())
    }
}

//! `phoenix health-check`: a job's checks (the steps that change nothing) run on demand, outside
//! any run and without recording anything.

use crate::jobs::{Attempt, Intent, JobKind, StepError};
use serde::Serialize;

/// How one check went.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub check: String,
    pub passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub output_tail: String,
}

/// Runs every check of `job`, in table order.
pub fn run<K: JobKind>(job: &K) -> Vec<CheckResult> {
    let mut nothing_saved = |_: &Intent| Ok::<(), StepError>(());
    job.table()
        .steps
        .iter()
        .filter(|s| !s.mutates)
        .map(|s| {
            let mut at = Attempt::new(Intent::default(), &mut nothing_saved);
            let result = (s.act)(job.cx(), &mut at);
            CheckResult {
                check: s.name.clone(),
                passed: result.is_ok(),
                output_tail: result
                    .as_ref()
                    .err()
                    .map(|e| e.tail.clone())
                    .unwrap_or_default(),
                error: result.err().map(|e| e.message),
            }
        })
        .collect()
}

/// One guest's checks.
#[derive(Debug, Clone, Serialize)]
pub struct GuestHealth {
    pub id: String,
    pub name: String,
    pub checks: Vec<CheckResult>,
    /// Why its checks could not run (not running, none configured, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl GuestHealth {
    pub fn healthy(&self) -> bool {
        self.error.is_none() && self.checks.iter().all(|c| c.passed)
    }
}

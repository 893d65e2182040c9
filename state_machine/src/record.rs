//! What the engine stores about one job.

use crate::status::Status;
use serde::{Deserialize, Serialize};

/// A step that finished successfully, with the digest it ran against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneStep {
    pub name: String,
    /// The name of the state the step completes.
    pub state: String,
    pub digest: String,
    pub started_at: u64,
    pub finished_at: u64,
    /// How many times it was started before it succeeded (1 = first try).
    pub attempts: u32,
}

/// A step that started and has not finished (durable before its side effects).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    pub step: String,
    pub at: u64,
    pub run_id: String,
}

/// The last failure, kept until the step succeeds or the job is reset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub step: String,
    pub message: String,
    pub output_tail: String,
    pub at: u64,
}

/// The durable record of one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: String,
    /// Name of the furthest state whose steps (and all earlier ones) are done.
    pub state: String,
    pub status: Status,
    /// The next step to run, when known (set by the last run's plan).
    pub cursor: Option<String>,
    /// Starts of the cursor step so far (kept across runs: retries back off on it).
    pub attempt: u32,
    pub done: Vec<DoneStep>,
    pub started: Option<Started>,
    /// An intent or handle saved mid-step by the step itself, for its re-run.
    pub intent: Option<(String, Vec<u8>)>,
    pub last_error: Option<ErrorInfo>,
    pub created_at: u64,
    pub updated_at: u64,
    pub run_id: Option<String>,
    /// Sequence number of the next journal event, and of the oldest one kept.
    pub journal_next: u64,
    pub journal_first: u64,
    pub journal_summary: crate::journal::JournalSummary,
}

impl JobRecord {
    pub fn new(id: &str, initial_state: &str, now: u64) -> JobRecord {
        JobRecord {
            id: id.to_string(),
            state: initial_state.to_string(),
            status: Status::Idle,
            cursor: None,
            attempt: 0,
            done: Vec::new(),
            started: None,
            intent: None,
            last_error: None,
            created_at: now,
            updated_at: now,
            run_id: None,
            journal_next: 0,
            journal_first: 0,
            journal_summary: Default::default(),
        }
    }

    pub fn done_step(&self, name: &str) -> Option<&DoneStep> {
        self.done.iter().find(|d| d.name == name)
    }
}

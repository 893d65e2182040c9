//! The append-only history of a job: ordered events, bounded per job, the oldest compacted into a
//! summary.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    JobCreated,
    StepStarted {
        step: String,
        attempt: u32,
    },
    StepSucceeded {
        step: String,
        duration_ms: u64,
    },
    StepFailed {
        step: String,
        error: String,
        output_tail: String,
    },
    StepInterrupted {
        step: String,
        run_id: String,
    },
    StateEntered {
        state: String,
    },
    ConfigChanged {
        step: String,
        reason: String,
    },
    Reset {
        to: String,
        reason: String,
    },
    IntentSaved {
        step: String,
    },
    /// A remark of the running step (e.g. that it re-attached to work an earlier run started).
    Note {
        step: String,
        message: String,
    },
}

impl EventKind {
    /// A short name, for summaries and JSON output.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::JobCreated => "job_created",
            EventKind::StepStarted { .. } => "step_started",
            EventKind::StepSucceeded { .. } => "step_succeeded",
            EventKind::StepFailed { .. } => "step_failed",
            EventKind::StepInterrupted { .. } => "step_interrupted",
            EventKind::StateEntered { .. } => "state_entered",
            EventKind::ConfigChanged { .. } => "config_changed",
            EventKind::Reset { .. } => "reset",
            EventKind::IntentSaved { .. } => "intent_saved",
            EventKind::Note { .. } => "note",
        }
    }
}

/// One journal entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub at: u64,
    pub run_id: String,
    pub kind: EventKind,
}

/// What compaction removed: how many events of each kind, and since when.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalSummary {
    pub compacted: u64,
    pub first_at: Option<u64>,
    pub last_at: Option<u64>,
    pub counts: BTreeMap<String, u64>,
}

impl JournalSummary {
    pub fn absorb(&mut self, e: &Event) {
        self.compacted += 1;
        self.first_at = Some(self.first_at.map_or(e.at, |f| f.min(e.at)));
        self.last_at = Some(self.last_at.map_or(e.at, |l| l.max(e.at)));
        *self.counts.entry(e.kind.name().to_string()).or_default() += 1;
    }
}

/// sled key of a job's record.
pub fn record_key(job: &str) -> Vec<u8> {
    let mut k = b"job:".to_vec();
    k.extend_from_slice(job.as_bytes());
    k
}

/// sled key prefix of a job's journal; events sort by their big-endian sequence number.
pub fn journal_prefix(job: &str) -> Vec<u8> {
    let mut k = b"jnl:".to_vec();
    k.extend_from_slice(job.as_bytes());
    k.push(0);
    k
}

pub fn journal_key(job: &str, seq: u64) -> Vec<u8> {
    let mut k = journal_prefix(job);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// sled key present while a job has a started, unfinished step: recovery scans only these.
pub fn inflight_key(job: &str) -> Vec<u8> {
    let mut k = b"run:".to_vec();
    k.extend_from_slice(job.as_bytes());
    k
}

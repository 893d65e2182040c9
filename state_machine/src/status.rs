//! A job's status and its transition table. Every change of status goes through
//! [`Status::on_event`]; the table below is the whole truth, and a test exercises every pair.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub enum Status {
    /// Nothing running; the cursor names the next step (or none is left to run yet).
    Idle,
    /// A step has started and not finished (seen by readers while a run is going on).
    InProgress,
    /// The last step failed; the next run retries it.
    Failed,
    /// A process died inside a step; the next run redoes it.
    Interrupted,
    /// Every step is done with its current digest.
    Completed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusEvent {
    StepStarted,
    /// The step succeeded and others remain.
    StepSucceeded,
    /// The last remaining step succeeded.
    LastStepSucceeded,
    StepFailed,
    /// Found at open: the step started and never finished.
    Interrupt,
    Reset,
    /// Steps became stale or new (config changed); the job has work again.
    WorkAdded,
    /// Nothing is left to do (e.g. the steps that remained were removed from the job).
    NothingLeft,
}

use Status::*;
use StatusEvent::*;

/// (from, event, to). Pairs not listed are refused.
pub const TRANSITIONS: &[(Status, StatusEvent, Status)] = &[
    (Idle, StepStarted, InProgress),
    (Failed, StepStarted, InProgress),
    (Status::Interrupted, StepStarted, InProgress),
    (InProgress, StepSucceeded, Idle),
    (InProgress, LastStepSucceeded, Completed),
    (InProgress, StepFailed, Failed),
    (InProgress, Interrupt, Status::Interrupted),
    (Idle, Reset, Idle),
    (InProgress, Reset, Idle),
    (Failed, Reset, Idle),
    (Status::Interrupted, Reset, Idle),
    (Completed, Reset, Idle),
    (Idle, WorkAdded, Idle),
    (Completed, WorkAdded, Idle),
    (Failed, WorkAdded, Failed),
    (Status::Interrupted, WorkAdded, Status::Interrupted),
    (Idle, NothingLeft, Completed),
    (Completed, NothingLeft, Completed),
    (Failed, NothingLeft, Completed),
    (Status::Interrupted, NothingLeft, Completed),
];

pub const ALL_STATUSES: [Status; 5] = [Idle, InProgress, Failed, Status::Interrupted, Completed];
pub const ALL_EVENTS: [StatusEvent; 8] = [
    StepStarted,
    StepSucceeded,
    LastStepSucceeded,
    StepFailed,
    Interrupt,
    Reset,
    WorkAdded,
    NothingLeft,
];

impl Status {
    /// The status after `event`, or `None` when the table has no such transition.
    pub fn on_event(self, event: StatusEvent) -> Option<Status> {
        TRANSITIONS
            .iter()
            .find(|(from, ev, _)| *from == self && *ev == event)
            .map(|(_, _, to)| *to)
    }

    pub fn name(self) -> &'static str {
        match self {
            Idle => "idle",
            InProgress => "in_progress",
            Failed => "failed",
            Status::Interrupted => "interrupted",
            Completed => "completed",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Every (status, event) pair is either in the table or refused, and the table has no
    /// duplicate or unreachable row.
    #[test]
    fn transition_table_covers_every_pair() {
        let mut rows = HashSet::new();
        for (from, ev, _) in TRANSITIONS {
            assert!(rows.insert((*from, *ev)), "duplicate row {from:?} {ev:?}");
        }
        let mut exercised = 0;
        for s in ALL_STATUSES {
            for e in ALL_EVENTS {
                match s.on_event(e) {
                    Some(to) => {
                        assert!(rows.contains(&(s, e)));
                        assert!(ALL_STATUSES.contains(&to));
                        exercised += 1;
                    }
                    None => assert!(!rows.contains(&(s, e))),
                }
            }
        }
        assert_eq!(exercised, TRANSITIONS.len());
        // Every status can be reached and left.
        for s in ALL_STATUSES {
            assert!(
                TRANSITIONS.iter().any(|(_, _, to)| *to == s),
                "{s:?} unreachable"
            );
            assert!(
                TRANSITIONS
                    .iter()
                    .any(|(from, _, to)| *from == s && *to != s),
                "{s:?} cannot be left"
            );
        }
    }

    #[test]
    fn refused_transitions() {
        assert_eq!(
            Completed.on_event(StepStarted),
            None,
            "a completed job has no step to start"
        );
        assert_eq!(InProgress.on_event(StepStarted), None, "one step at a time");
        assert_eq!(Idle.on_event(StepSucceeded), None, "nothing to succeed");
        assert_eq!(Failed.on_event(StepFailed), None);
    }
}

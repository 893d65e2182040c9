//! A run of the `phoenix` binary with `--output json`, typed: the exit code, the event stream,
//! and the run's summary.

use super::Lab;
use phoenix::converge::{Event, GuestSummary, Outcome, Summary};

pub struct Run {
    pub code: i32,
    /// Every event, in the order the binary printed them.
    pub events: Vec<Event>,
    /// The `run_finished` summary (empty when the run never finished: a usage error).
    pub summary: Summary,
    pub stderr: String,
}

impl Run {
    pub fn parse(out: &std::process::Output) -> Run {
        let events: Vec<Event> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let summary = events
            .iter()
            .find_map(|e| match e {
                Event::RunFinished { summary } => Some(summary.clone()),
                _ => None,
            })
            .unwrap_or(Summary {
                guests: Vec::new(),
                cancelled: false,
                duration_ms: 0,
                commands: 0,
                mutating_commands: 0,
                command_ms: 0,
            });
        Run {
            code: out.status.code().unwrap_or(-1),
            events,
            summary,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The summary in a stream of events read as JSON values (a run read line by line).
    pub fn summary_of(events: &[serde_json::Value]) -> Summary {
        events
            .iter()
            .find(|e| e["event"] == "run_finished")
            .and_then(|e| serde_json::from_value(e["summary"].clone()).ok())
            .expect("the run finished")
    }

    /// The summary of a lab-relative guest.
    pub fn guest(&self, lab: &Lab, id: u32) -> &GuestSummary {
        self.summary
            .guest(&lab.arg(id))
            .unwrap_or_else(|| panic!("{} is not in the run: {:#?}", lab.arg(id), self.summary))
    }

    pub fn outcome(&self, lab: &Lab, id: u32) -> Outcome {
        self.guest(lab, id).outcome
    }

    /// Asserts the exit code and each listed guest's outcome, showing the run when they differ.
    pub fn expect(&self, lab: &Lab, code: i32, outcomes: &[(u32, Outcome)]) -> &Run {
        assert_eq!(self.code, code, "{self}");
        for (id, want) in outcomes {
            assert_eq!(self.outcome(lab, *id), *want, "{}: {self}", lab.arg(*id));
        }
        self
    }

    /// Asserts every guest's outcome is `want`.
    pub fn all(&self, want: Outcome) -> &Run {
        assert!(
            self.summary.guests.iter().all(|g| g.outcome == want),
            "every guest {want:?}: {self}"
        );
        self
    }

    /// Commands of the stream, in order.
    pub fn commands(&self) -> impl Iterator<Item = (&str, bool, u64, u64)> {
        self.events.iter().filter_map(|e| match e {
            Event::Command {
                cmd,
                mutating,
                ms,
                at_ms,
                ..
            } => Some((cmd.as_str(), *mutating, *ms, *at_ms)),
            _ => None,
        })
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "exit {}", self.code)?;
        for g in &self.summary.guests {
            writeln!(
                f,
                "  {} {:?} {} {}",
                g.id,
                g.outcome,
                g.error.as_deref().unwrap_or(""),
                g.blocked_by.as_deref().unwrap_or("")
            )?;
        }
        write!(f, "stderr:\n{}", self.stderr)
    }
}

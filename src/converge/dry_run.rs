//! A dry run: nothing is recorded and no mutating command runs. Each step not recorded as done is
//! probed (probes change nothing); where the probe says no, its act runs against a runner that only
//! reports what it would run (`would_run` events).

use super::{Event, GuestSummary, Outcome, Reporter};
use crate::jobs::{Attempt, Intent, JobKind, StepError};
use crate::session::Session;
use state_machine::{JobRecord, JobSpec, JobState, ReadOutcome, Reader};
use std::time::Instant;

pub fn plan<K: JobKind>(
    job: &K,
    session: &Session,
    spec: &JobSpec<K::State>,
    reporter: &mut dyn Reporter,
    started: Instant,
) -> GuestSummary {
    let label = job.label();
    let record = match Reader::new(&session.state_dir).job(&label.job_id) {
        Some(ReadOutcome::Ok(view)) => Some(view.record),
        _ => None,
    };
    reporter.event(&Event::GuestStarted {
        id: label.id.clone(),
        name: label.name.clone(),
        steps: spec.steps.len(),
        pending: spec.steps.len(),
    });
    let mut summary = GuestSummary::new(label, Outcome::Planned);
    let mut nothing_saved = |_: &Intent| Ok::<(), StepError>(());
    for s in &spec.steps {
        let Some(step) = job.table().step(&s.name) else {
            continue;
        };
        let mut at = Attempt::new(Intent::default(), &mut nothing_saved);
        let probed = if recorded(record.as_ref(), &s.name, &s.digest) {
            Ok(true)
        } else {
            (step.probe)(job.cx(), &at)
        };
        let up_to_date = matches!(probed, Ok(true));
        reporter.event(&Event::StepPlanned {
            id: label.id.clone(),
            step: s.name.clone(),
            up_to_date,
        });
        if up_to_date {
            continue;
        }
        summary.steps_run += 1;
        // A probe that cannot answer (the guest does not exist yet) means the act cannot show
        // its commands either.
        if probed.is_ok() {
            if let Err(e) = (step.act)(job.cx(), &mut at) {
                reporter.event(&Event::Warning {
                    id: label.id.clone(),
                    message: format!("{}: then: {e}", s.name),
                });
            }
        }
    }
    summary.state = K::State::initial().name().to_string();
    summary.duration_ms = started.elapsed().as_millis() as u64;
    summary
}

fn recorded(record: Option<&JobRecord>, step: &str, digest: &str) -> bool {
    record
        .and_then(|r| r.done_step(step))
        .is_some_and(|d| d.digest == digest)
}

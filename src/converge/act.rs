//! One attempt of one step: probe, and act only when the probe says no. What the row asks for is
//! done around the act: a storage-pool slot (with retries when the backend reports a lock
//! timeout) and, for steps that may stop the guest, its run state recorded first and restored
//! after (also when this attempt redoes one a crash interrupted).

use super::{sleep_unless_cancelled, Event, Reporter};
use crate::jobs::{Attempt, Intent, JobKind, Step, StepError};
use crate::session::Session;
use state_machine::Job;

/// Runs one attempt of `step`; returns whether it changed anything.
pub fn attempt<K: JobKind>(
    job: &K,
    session: &Session,
    step: &Step<K::State, K::Cx>,
    saved: Option<&[u8]>,
    engine_job: &mut Job<'_, K::State>,
    reporter: &mut dyn Reporter,
) -> Result<bool, StepError> {
    let (changed, notes, was_running) = {
        let mut save = |intent: &Intent| {
            engine_job
                .save_intent(&intent.encode())
                .map_err(|e| StepError::new(e.to_string(), ""))
        };
        let intent = saved.map(Intent::decode).unwrap_or_default();
        let mut at = Attempt::new(intent, &mut save);
        let changed = probe_and_act(job, session, step, &mut at, reporter);
        (
            changed,
            std::mem::take(&mut at.notes),
            at.intent.was_running,
        )
    };
    journal_notes(job, step, &notes, engine_job, reporter);
    let changed = changed?;
    // A guest this step (or the attempt a crash interrupted) stopped runs again.
    if was_running == Some(true) && !job.running()? {
        job.start()?;
    }
    Ok(changed)
}

/// The act, only when the probe says no; for a step that may stop the guest, its run state is
/// recorded first.
fn probe_and_act<K: JobKind>(
    job: &K,
    session: &Session,
    step: &Step<K::State, K::Cx>,
    at: &mut Attempt<'_>,
    reporter: &mut dyn Reporter,
) -> Result<bool, StepError> {
    if step_delay(|| (step.probe)(job.cx(), at))? {
        return Ok(false);
    }
    if step.needs_stopped && at.intent.was_running.is_none() {
        let running = job.running()?;
        at.save(|i| i.was_running = Some(running))?;
    }
    act(job, session, step, at, reporter)?;
    Ok(step.mutates)
}

/// The attempt's remarks, journaled and reported (a note that cannot be journaled is still
/// reported: the step's own outcome matters more).
fn journal_notes<K: JobKind>(
    job: &K,
    step: &Step<K::State, K::Cx>,
    notes: &[String],
    engine_job: &mut Job<'_, K::State>,
    reporter: &mut dyn Reporter,
) {
    for message in notes {
        if let Err(e) = engine_job.note(message) {
            tracing::warn!(step = %step.name, error = %e, "note not journaled");
        }
        reporter.event(&Event::Note {
            id: job.label().id.clone(),
            step: step.name.clone(),
            message: message.clone(),
        });
    }
}

/// The act, in a slot of the job's storage pool when the row asks for one.
fn act<K: JobKind>(
    job: &K,
    session: &Session,
    step: &Step<K::State, K::Cx>,
    at: &mut Attempt<'_>,
    reporter: &mut dyn Reporter,
) -> Result<(), StepError> {
    if !step.pool_slot {
        return (step.act)(job.cx(), at);
    }
    let mut tries = 0;
    loop {
        let result = {
            let _slot = session.limits.acquire(job.pool());
            (step.act)(job.cx(), at)
        };
        match result {
            Err(e) if tries < 5 && crate::limits::is_lock_timeout(&format!("{e}\n{}", e.tail)) => {
                tries += 1;
                let pause = crate::limits::lock_backoff(tries);
                reporter.event(&Event::Warning {
                    id: job.label().id.clone(),
                    message: format!(
                        "{}: storage lock timeout, retry {tries} in {}s",
                        step.name,
                        pause.as_secs()
                    ),
                });
                if sleep_unless_cancelled(pause, session) {
                    return Err(e);
                }
                // What the failed try left behind is cleaned up like an interrupted one.
                at.intent.issued = true;
            }
            other => return other,
        }
    }
}

/// Testing aid: `PHOENIX_STEP_DELAY_MS` slows every step (before its probe, so also the ones
/// whose probe finds nothing to do) so that crash tests can land a SIGKILL inside steps that
/// otherwise take a few milliseconds.
fn step_delay<T>(act: impl FnOnce() -> T) -> T {
    if let Some(ms) = std::env::var("PHOENIX_STEP_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    act()
}

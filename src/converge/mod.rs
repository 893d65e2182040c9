//! Converging one job: its table of steps driven through the engine in four phases.
//!
//! 1. **prepare**: the table's warnings are reported and the engine spec is made (cut at `until`);
//! 2. **drift**: the guest is inspected once and every done step's live check run on it; what no
//!    longer holds is forgotten, so it runs again, and a guest that is gone is rebuilt ([`drift`]);
//! 3. **back-off**: a step that failed in an earlier run is retried after a pause that grows with
//!    its attempts;
//! 4. **run steps**: each step, durably started, is probed and acted on when the probe says no
//!    ([`act`]), then recorded.
//!
//! A dry run has no store: [`dry_run`] probes and prints what would run instead.

pub mod act;
pub mod adopt;
pub mod checks;
pub mod drift;
pub mod dry_run;
pub mod events;
#[cfg(test)]
mod tests;

pub use events::{Event, GuestSummary, Outcome, Reporter, Summary};

use crate::jobs::{Intent, JobKind, Label, StepError};
use crate::session::Session;
use drift::Found;
use state_machine::{EngineError, Job, JobSpec, JobState, Status, Store};
use std::time::{Duration, Instant};

/// Drives `job` until every step (up to `until`'s) is done, a step fails, or the run is cancelled.
pub fn converge<K: JobKind>(
    job: &K,
    session: &Session,
    until: Option<K::State>,
    reporter: &mut dyn Reporter,
) -> Result<GuestSummary, EngineError> {
    let started = Instant::now();
    let label = job.label();
    let spec = prepare(job, until, reporter);
    let Some(store) = session.store.as_ref() else {
        return Ok(dry_run::plan(job, session, &spec, reporter, started));
    };
    let mut summary = GuestSummary::new(label, Outcome::Unchanged);
    if let Err(e) = forget_drift(job, store, reporter) {
        return Ok(failed(summary, format!("drift probe: {e}"), started));
    }
    let mut engine_job = store.begin(&spec)?;
    reporter.event(&Event::GuestStarted {
        id: label.id.clone(),
        name: label.name.clone(),
        steps: spec.steps.len(),
        pending: pending(&engine_job),
    });
    if back_off(label, &engine_job, session, reporter) {
        summary.outcome = Outcome::Cancelled;
        return Ok(summary);
    }
    run_steps(job, session, &mut engine_job, reporter, &mut summary)?;
    summary.state = engine_job.record().state.clone();
    let finished = engine_job.record().status == Status::Completed;
    summary.outcome = match summary.outcome {
        o @ (Outcome::Failed | Outcome::RebootRequired) => o,
        _ if !finished && until.is_none() => Outcome::Cancelled,
        _ if summary.steps_changed > 0 => Outcome::Converged,
        _ => Outcome::Unchanged,
    };
    summary.duration_ms = started.elapsed().as_millis() as u64;
    Ok(summary)
}

/// Phase 1: the job's warnings, and its steps as an engine spec (those of `until` and earlier).
fn prepare<K: JobKind>(
    job: &K,
    until: Option<K::State>,
    reporter: &mut dyn Reporter,
) -> JobSpec<K::State> {
    for w in &job.table().warnings {
        reporter.event(&Event::Warning {
            id: job.label().id.clone(),
            message: w.clone(),
        });
    }
    let mut spec = JobSpec::new(job.label().job_id.clone());
    if let Some(u) = until {
        spec = spec.until(u);
    }
    for s in &job.table().steps {
        if until.is_none_or(|u| s.state <= u) {
            spec = spec.step(s.name.clone(), s.state, s.digest.clone());
        }
    }
    spec
}

/// Phase 2: forgets what drifted, journaling why.
fn forget_drift<K: JobKind>(
    job: &K,
    store: &Store,
    reporter: &mut dyn Reporter,
) -> Result<(), StepError> {
    let label = job.label();
    let engine = |e: EngineError| StepError::new(e.to_string(), "");
    let Some(record) = store.job(&label.job_id).map_err(engine)? else {
        return Ok(());
    };
    let mut report = |what: String| {
        reporter.event(&Event::Drift {
            id: label.id.clone(),
            what: what.clone(),
        });
        format!("drift: {what}")
    };
    match drift::find(job, Some(&record), false)? {
        Found::New => {}
        Found::Gone => {
            let reason = report("guest is missing: rebuilding".into());
            let ids = std::slice::from_ref(&label.job_id);
            store
                .reset::<K::State>(ids, None, &reason)
                .map_err(engine)?;
        }
        Found::Steps(steps) => {
            for f in steps {
                let reason = report(format!("{}: {}", f.step, drift::describe(&f.changes)));
                store
                    .forget(&label.job_id, &[&f.step], &reason)
                    .map_err(engine)?;
            }
        }
    }
    Ok(())
}

/// Phase 3: waits before retrying a step that failed in an earlier run. True when the run was
/// cancelled meanwhile.
fn back_off<S: JobState>(
    label: &Label,
    job: &Job<'_, S>,
    session: &Session,
    reporter: &mut dyn Reporter,
) -> bool {
    let record = job.record();
    if record.status != Status::Failed || awaits_reboot(record) {
        return false;
    }
    let pause = crate::limits::retry_backoff(record.attempt + 1);
    if pause.is_zero() {
        return false;
    }
    reporter.event(&Event::Warning {
        id: label.id.clone(),
        message: format!(
            "retrying {} (attempt {}) in {}s",
            record.cursor.as_deref().unwrap_or_default(),
            record.attempt + 1,
            pause.as_secs()
        ),
    });
    sleep_unless_cancelled(pause, session)
}

/// Whether the failed step waits for a reboot (no back-off: the run after it goes on at once).
fn awaits_reboot(record: &state_machine::JobRecord) -> bool {
    let intent = record.intent.as_ref().map(|(_, data)| Intent::decode(data));
    intent.is_some_and(|i| i.awaiting_reboot.is_some())
}

/// Phase 4: every step not done, in order, until one fails or the run is cancelled.
fn run_steps<K: JobKind>(
    job: &K,
    session: &Session,
    engine_job: &mut Job<'_, K::State>,
    reporter: &mut dyn Reporter,
    summary: &mut GuestSummary,
) -> Result<(), EngineError> {
    let label = job.label();
    let total = engine_job.spec().steps.len();
    let mut state = engine_job.record().state.clone();
    let mut next = engine_job.start()?;
    while let Some(run) = next {
        let Some(step) = job.table().step(&run.spec.name) else {
            return Err(EngineError::Invalid {
                job: label.job_id.clone(),
                message: format!("step {} is not in the job's table", run.spec.name),
            });
        };
        reporter.event(&Event::StepStarted {
            id: label.id.clone(),
            step: step.name.clone(),
            index: run.index + 1,
            total,
            attempt: run.attempt,
        });
        let t = Instant::now();
        let result = act::attempt(job, session, step, run.intent(), engine_job, reporter);
        summary.steps_run += 1;
        let changed = match result {
            Ok(changed) => changed,
            Err(e) => {
                engine_job.fail(&e.message, &e.tail)?;
                reporter.event(&Event::StepFailed {
                    id: label.id.clone(),
                    step: step.name.clone(),
                    error: e.message.clone(),
                    output_tail: e.tail.clone(),
                    reboot_required: e.reboot,
                });
                summary.outcome = match e.reboot {
                    true => Outcome::RebootRequired,
                    false => Outcome::Failed,
                };
                summary.error = Some(format!("{}: {}", step.name, e.message));
                return Ok(());
            }
        };
        summary.steps_changed += usize::from(changed);
        reporter.event(&Event::StepSucceeded {
            id: label.id.clone(),
            step: step.name.clone(),
            changed,
            ms: t.elapsed().as_millis() as u64,
        });
        next = if session.cancelled() {
            engine_job.succeed()?;
            None
        } else {
            engine_job.succeed_and_start_next()?
        };
        if engine_job.record().state != state {
            state = engine_job.record().state.clone();
            reporter.event(&Event::StateEntered {
                id: label.id.clone(),
                state: state.clone(),
            });
        }
    }
    Ok(())
}

/// How many of the job's steps are not done with their current digest.
fn pending<S: JobState>(job: &Job<'_, S>) -> usize {
    job.spec()
        .steps
        .iter()
        .filter(|s| {
            job.record()
                .done_step(&s.name)
                .is_none_or(|d| d.digest != s.digest)
        })
        .count()
}

fn failed(mut summary: GuestSummary, error: String, started: Instant) -> GuestSummary {
    summary.outcome = Outcome::Failed;
    summary.error = Some(error);
    summary.duration_ms = started.elapsed().as_millis() as u64;
    summary
}

/// Sleeps `d`, waking early (returning true) when the run is cancelled.
pub fn sleep_unless_cancelled(d: Duration, session: &Session) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if session.cancelled() {
            return true;
        }
        std::thread::sleep(
            Duration::from_millis(100).min(until.saturating_duration_since(Instant::now())),
        );
    }
    false
}

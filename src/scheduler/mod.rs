//! Runs a fleet's jobs in parallel as their dependency graph allows. Containers and VMs share one
//! graph: every guest of the run is prepared before anything starts, and one that cannot be built
//! here is reported on its own (its dependents are blocked). A guest starts once all its
//! prerequisites have finished well, up to `--jobs` at once; a failed guest blocks only its
//! dependents (`--fail-fast` stops starting new guests instead). The first SIGINT/SIGTERM stops
//! starting new steps and lets running ones finish; a second aborts at once.

pub mod ready;
#[cfg(test)]
mod tests;

use crate::config::{GuestId, GuestRef};
use crate::converge::{self, Event, GuestSummary, Outcome, Reporter, Summary};
use crate::jobs::{self, GuestJob, Label, Lifecycle};
use crate::session::Session;
use ready::{Decision, ReadySet};
use state_machine::EngineError;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// How a run goes.
#[derive(Debug, Clone)]
pub struct Options {
    /// Stop each guest after this state (`--until`).
    pub until: Option<Lifecycle>,
    /// Time limit of one step.
    pub step_timeout: Duration,
    pub fail_fast: bool,
    /// Guests converging at once.
    pub jobs: usize,
}

/// A reporter shared by the guest tasks; every event also goes to the log.
#[derive(Clone)]
pub struct SharedReporter(pub Arc<Mutex<Box<dyn Reporter>>>);

impl Reporter for SharedReporter {
    fn event(&mut self, e: &Event) {
        // Commands are logged by their runner.
        if !matches!(e, Event::Command { .. } | Event::WouldRun { .. }) {
            if let Ok(json) = serde_json::to_string(e) {
                tracing::info!(target: "phoenix::run", "{json}");
            }
        }
        if let Ok(mut r) = self.0.lock() {
            r.event(e);
        }
    }
}

/// The default `--jobs`: two guests per core (their work is mostly waiting on disks, packages
/// and the network), at least 2, at most 8.
pub fn default_jobs() -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    (cores * 2).clamp(2, 8)
}

/// Converges `order` (a build order) and returns the summary.
pub fn run(
    session: Arc<Session>,
    order: Vec<GuestId>,
    opts: Options,
    reporter: SharedReporter,
) -> Result<Summary, EngineError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(opts.jobs.max(1) + 4)
        .enable_all()
        .build()
        .map_err(|source| EngineError::Io {
            dir: session.state_dir.clone(),
            source,
        })?;
    runtime.block_on(schedule(session, order, opts, reporter))
}

/// Where a run stands: who is ready, running and finished.
struct Fleet {
    session: Arc<Session>,
    opts: Options,
    reporter: SharedReporter,
    ready: ReadySet,
    prepared: HashMap<GuestId, GuestJob>,
    finished: HashMap<GuestId, GuestSummary>,
    tasks: JoinSet<(GuestId, Result<GuestSummary, EngineError>)>,
    running: HashMap<tokio::task::Id, GuestId>,
    failed: bool,
    engine_error: Option<EngineError>,
}

async fn schedule(
    session: Arc<Session>,
    order: Vec<GuestId>,
    opts: Options,
    mut reporter: SharedReporter,
) -> Result<Summary, EngineError> {
    let started = Instant::now();
    let signals = tokio::spawn(watch_signals(session.clone(), reporter.clone()));
    reporter.event(&Event::RunStarted {
        guests: order.len(),
        jobs: opts.jobs,
    });
    find_states(&session, &order);
    let mut fleet = Fleet {
        ready: ReadySet::new(&order, &session.graph),
        prepared: HashMap::new(),
        finished: HashMap::new(),
        tasks: JoinSet::new(),
        running: HashMap::new(),
        failed: false,
        engine_error: None,
        session,
        opts,
        reporter,
    };
    fleet.prepare_all(&order);
    loop {
        fleet.start_ready();
        let Some(joined) = fleet.tasks.join_next_with_id().await else {
            break;
        };
        fleet.on_joined(joined);
    }
    signals.abort();
    fleet.finish(&order, started)
}

impl Fleet {
    /// Every guest's job, before anything starts; one that cannot be built is reported at once.
    fn prepare_all(&mut self, order: &[GuestId]) {
        for &id in order {
            match jobs::prepare(&self.session, id, self.opts.step_timeout) {
                Ok(job) => {
                    self.prepared.insert(id, job);
                }
                Err(why) => {
                    let outcome = match why.backend {
                        true => Outcome::Unsupported,
                        false => Outcome::Failed,
                    };
                    let mut s = summary_of(&self.session, id, outcome);
                    s.error = Some(why.to_string());
                    self.done(id, s);
                }
            }
        }
    }

    /// Reports the blocked and starts the ready, as room allows; none once stopping.
    fn start_ready(&mut self) {
        let stop = self.session.cancelled()
            || (self.opts.fail_fast && self.failed)
            || self.engine_error.is_some();
        let room = self.opts.jobs.saturating_sub(self.ready.running());
        for decision in self.ready.next(room, !stop) {
            match decision {
                Decision::Blocked(id, by) => {
                    let mut s = summary_of(&self.session, id, Outcome::Blocked);
                    s.blocked_by = Some(by.to_string());
                    self.done(id, s);
                }
                Decision::Start(id) => self.start(id),
            }
        }
    }

    fn start(&mut self, id: GuestId) {
        let Some(job) = self.prepared.remove(&id) else {
            return;
        };
        let (session, mut reporter) = (self.session.clone(), self.reporter.clone());
        let until = self.opts.until;
        let handle = self.tasks.spawn_blocking(move || {
            crate::exec::set_current_guest(Some(id.to_string()));
            let result = converge_job(&job, &session, until, &mut reporter);
            crate::exec::set_current_guest(None);
            (id, result)
        });
        self.running.insert(handle.id(), id);
    }

    /// A guest's task ended: with its summary, with a store error, or with a panic (blamed on
    /// that guest through its task id; the others go on).
    fn on_joined(&mut self, joined: Joined) {
        let (id, summary) = match joined {
            Ok((task, (id, Ok(s)))) => {
                self.running.remove(&task);
                (id, s)
            }
            Ok((task, (id, Err(e)))) => {
                self.running.remove(&task);
                let mut s = summary_of(&self.session, id, Outcome::Failed);
                s.error = Some(format!("state store: {e}"));
                self.engine_error = Some(e);
                (id, s)
            }
            Err(e) => {
                let Some(id) = self.running.remove(&e.id()) else {
                    return;
                };
                let mut s = summary_of(&self.session, id, Outcome::Failed);
                s.error = Some(format!("internal error: {}", panic_text(e)));
                (id, s)
            }
        };
        self.failed |= summary.outcome == Outcome::Failed;
        self.done(id, summary);
    }

    fn done(&mut self, id: GuestId, s: GuestSummary) {
        self.ready.finish(id, s.outcome);
        self.reporter.event(&Event::GuestFinished {
            id: s.id.clone(),
            outcome: s.outcome,
            ms: s.duration_ms,
            error: s.error.clone(),
        });
        self.finished.insert(id, s);
    }

    /// What never started was cancelled (Ctrl-C, --fail-fast); the run's summary.
    fn finish(mut self, order: &[GuestId], started: Instant) -> Result<Summary, EngineError> {
        for id in self.ready.never_started() {
            let s = summary_of(&self.session, id, Outcome::Cancelled);
            self.done(id, s);
        }
        if let Some(e) = self.engine_error {
            return Err(e);
        }
        let guests = order
            .iter()
            .filter_map(|id| self.finished.remove(id))
            .collect();
        let summary = Summary::finished(guests, &self.session, started);
        self.reporter.event(&Event::RunFinished {
            summary: summary.clone(),
        });
        Ok(summary)
    }
}

type Joined = Result<
    (
        tokio::task::Id,
        (GuestId, Result<GuestSummary, EngineError>),
    ),
    tokio::task::JoinError,
>;

/// One query for every container's state (drift checks read it); when it fails each guest asks
/// for itself.
fn find_states(session: &Session, order: &[GuestId]) {
    if session.dry_run() {
        return;
    }
    let of_kind = |vm: bool| -> Vec<GuestId> {
        order
            .iter()
            .copied()
            .filter(|id| matches!(session.fleet.guest(*id), Some(GuestRef::Vm(_))) == vm)
            .collect()
    };
    let mut found = session.backend.states(&of_kind(false)).unwrap_or_default();
    let vms = of_kind(true);
    if let (Some(backend), false) = (session.backend.vms(), vms.is_empty()) {
        found.extend(backend.vm_states(&vms).unwrap_or_default());
    }
    let _ = session.found.set(found);
}

fn converge_job(
    job: &GuestJob,
    session: &Session,
    until: Option<Lifecycle>,
    reporter: &mut dyn Reporter,
) -> Result<GuestSummary, EngineError> {
    match job {
        GuestJob::Container(j) => converge::converge(j, session, until, reporter),
        GuestJob::Vm(j) => converge::converge(j, session, until, reporter),
    }
}

fn summary_of(session: &Session, id: GuestId, outcome: Outcome) -> GuestSummary {
    let label = match session.fleet.guest(id) {
        Some(g) => jobs::label_of(g),
        None => Label::new("guest", id, ""),
    };
    GuestSummary::new(&label, outcome)
}

fn panic_text(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return e.to_string();
    }
    let payload = e.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "the guest's task panicked".into())
}

/// First SIGINT/SIGTERM: stop starting new steps. Second: exit 130 at once (the next run redoes
/// the interrupted steps).
async fn watch_signals(session: Arc<Session>, mut reporter: SharedReporter) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    static SEEN: AtomicU8 = AtomicU8::new(0);
    loop {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        if SEEN.fetch_add(1, Ordering::SeqCst) == 0 {
            session.cancel.store(true, Ordering::SeqCst);
            reporter.event(&Event::Cancelling { message: "stopping: running steps finish, no new step starts (interrupt again to abort now)".into() });
        } else {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "aborted: the next run redoes the steps that were running"
            );
            std::process::exit(crate::exit::INTERRUPTED);
        }
    }
}

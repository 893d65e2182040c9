//! Runs guests in parallel as their dependency graph allows: a guest starts as soon as all its
//! prerequisites have completed, up to `--jobs` at once. A failed guest blocks only its
//! dependents (`--fail-fast` stops starting new guests instead). The first SIGINT/SIGTERM stops
//! starting new steps and lets running ones finish; a second aborts at once.

use crate::backend::Hypervisor;
use crate::config::{Fleet, GuestId, GuestRef};
use crate::converge::{self, Env, Event, GuestSummary, Options, Outcome, Reporter, Summary};
use crate::exec::Runner;
use crate::features::FeatureDirs;
use crate::graph::Graph;
use crate::limits::PoolLimits;
use state_machine::{EngineError, Lifecycle, Store};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What every guest task shares.
pub struct Shared {
    pub fleet: Fleet,
    pub graph: Graph,
    pub backend: Box<dyn Hypervisor>,
    pub runner: Arc<dyn Runner>,
    pub features: FeatureDirs,
    pub store: Option<Store<Lifecycle>>,
    pub state_dir: PathBuf,
    pub cancel: AtomicBool,
    pub limits: PoolLimits,
    /// Phoenix's key for guests reached over SSH, when any is.
    pub guest_ssh: Option<crate::lifecycle::guest::GuestSsh>,
    /// Guest states found when the run began (filled by [`run`]).
    pub found: std::sync::OnceLock<HashMap<GuestId, Option<crate::backend::RunState>>>,
}

impl Shared {
    pub fn env(&self) -> Env<'_> {
        Env {
            fleet: &self.fleet,
            graph: &self.graph,
            backend: self.backend.as_ref(),
            runner: self.runner.as_ref(),
            features: &self.features,
            store: self.store.as_ref(),
            state_dir: &self.state_dir,
            cancel: &self.cancel,
            limits: &self.limits,
            found: self.found.get_or_init(HashMap::new),
            guest_ssh: self.guest_ssh.as_ref(),
        }
    }
}

/// A reporter shared by the guest tasks.
#[derive(Clone)]
pub struct SharedReporter(pub Arc<Mutex<Box<dyn Reporter>>>);

impl Reporter for SharedReporter {
    fn event(&mut self, e: &Event) {
        // Every transition goes to the log too (commands are logged by their runner).
        if !matches!(e, Event::Command { .. }) {
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

enum Slot {
    Waiting,
    Running,
    Done(GuestSummary),
}

/// Converges `order` (in dependency order) and returns the summary.
pub fn run(
    shared: Arc<Shared>,
    order: Vec<GuestId>,
    opts: Arc<Options>,
    reporter: SharedReporter,
) -> Result<Summary, EngineError> {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(opts.jobs.max(1) + 4)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return Err(EngineError::Io {
                dir: shared.state_dir.clone(),
                source: e,
            })
        }
    };
    runtime.block_on(schedule(shared, order, opts, reporter))
}

async fn schedule(
    shared: Arc<Shared>,
    order: Vec<GuestId>,
    opts: Arc<Options>,
    mut reporter: SharedReporter,
) -> Result<Summary, EngineError> {
    let started = Instant::now();
    let signals = tokio::spawn(watch_signals(shared.clone(), reporter.clone()));
    let containers: Vec<GuestId> = order
        .iter()
        .copied()
        .filter(|id| matches!(shared.fleet.guest(*id), Some(GuestRef::Ct(_))))
        .collect();
    reporter.event(&Event::RunStarted {
        guests: containers.len(),
        jobs: opts.jobs,
    });
    // One query for every guest's state (drift checks read it); when it fails each guest asks
    // for itself.
    if shared.store.is_some() {
        let _ = shared
            .found
            .set(shared.backend.states(&containers).unwrap_or_default());
    }
    let mut slots: HashMap<GuestId, Slot> =
        containers.iter().map(|id| (*id, Slot::Waiting)).collect();
    let mut tasks = tokio::task::JoinSet::new();
    let mut running = 0usize;
    let mut failed = false;
    let mut engine_error = None;
    loop {
        let stop_starting = shared.cancel.load(Ordering::SeqCst)
            || (opts.fail_fast && failed)
            || engine_error.is_some();
        for &id in &containers {
            if !matches!(slots.get(&id), Some(Slot::Waiting)) {
                continue;
            }
            let prereqs: Vec<GuestId> = shared
                .graph
                .prerequisites(id)
                .iter()
                .map(|(p, _)| *p)
                .filter(|p| slots.contains_key(p))
                .collect();
            let blocker = prereqs
                .iter()
                .copied()
                .find(|p| matches!(slots.get(p), Some(Slot::Done(s)) if !s.outcome.ok()));
            if let Some(p) = blocker {
                let s = finished(&shared, id, Outcome::Blocked, Some(p.to_string()));
                reporter.event(&Event::GuestFinished {
                    id: s.id.clone(),
                    outcome: s.outcome,
                    ms: 0,
                });
                slots.insert(id, Slot::Done(s));
                continue;
            }
            let ready = prereqs
                .iter()
                .all(|p| matches!(slots.get(p), Some(Slot::Done(_))));
            if !ready || stop_starting || running >= opts.jobs {
                continue;
            }
            slots.insert(id, Slot::Running);
            running += 1;
            let (shared, opts, reporter) = (shared.clone(), opts.clone(), reporter.clone());
            tasks.spawn_blocking(move || {
                let mut reporter = reporter;
                crate::exec::set_current_guest(Some(id.to_string()));
                let ct = match shared.fleet.guest(id) {
                    Some(GuestRef::Ct(ct)) => ct,
                    _ => return (id, Ok(finished(&shared, id, Outcome::Failed, None))),
                };
                let result = converge::converge_guest(&shared.env(), ct, &opts, &mut reporter);
                crate::exec::set_current_guest(None);
                (id, result)
            });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        running -= 1;
        let (id, result) = match joined {
            Ok(r) => r,
            Err(e) => {
                // A guest task panicked: record it as failed and keep the others going.
                let id = containers
                    .iter()
                    .copied()
                    .find(|id| matches!(slots.get(id), Some(Slot::Running)))
                    .unwrap_or(GuestId(0));
                let mut s = finished(&shared, id, Outcome::Failed, None);
                s.error = Some(format!("internal error: {e}"));
                (id, Ok(s))
            }
        };
        let summary = match result {
            Ok(s) => s,
            Err(e) => {
                let mut s = finished(&shared, id, Outcome::Failed, None);
                s.error = Some(format!("state store: {e}"));
                engine_error = Some(e);
                s
            }
        };
        failed |= summary.outcome == Outcome::Failed;
        reporter.event(&Event::GuestFinished {
            id: summary.id.clone(),
            outcome: summary.outcome,
            ms: summary.duration_ms,
        });
        slots.insert(id, Slot::Done(summary));
    }
    signals.abort();
    // What never started was cancelled (Ctrl-C, --fail-fast).
    let mut guests = Vec::with_capacity(containers.len());
    for id in &containers {
        let s = match slots.remove(id) {
            Some(Slot::Done(s)) => s,
            _ => {
                let s = finished(&shared, *id, Outcome::Cancelled, None);
                reporter.event(&Event::GuestFinished {
                    id: s.id.clone(),
                    outcome: s.outcome,
                    ms: 0,
                });
                s
            }
        };
        guests.push(s);
    }
    if let Some(e) = engine_error {
        return Err(e);
    }
    let (commands, mutating, cmd_time) = shared.runner.stats().snapshot();
    let summary = Summary {
        guests,
        cancelled: shared.cancel.load(Ordering::SeqCst),
        duration_ms: started.elapsed().as_millis() as u64,
        commands,
        mutating_commands: mutating,
        command_ms: cmd_time.as_millis() as u64,
    };
    reporter.event(&Event::RunFinished {
        summary: summary.clone(),
    });
    Ok(summary)
}

fn finished(
    shared: &Shared,
    id: GuestId,
    outcome: Outcome,
    blocked_by: Option<String>,
) -> GuestSummary {
    GuestSummary {
        id: id.to_string(),
        name: shared
            .fleet
            .guest(id)
            .map(|g| g.name().to_string())
            .unwrap_or_default(),
        outcome,
        state: String::new(),
        steps_run: 0,
        steps_changed: 0,
        duration_ms: 0,
        error: None,
        blocked_by,
    }
}

/// First SIGINT/SIGTERM: stop starting new steps. Second: exit 130 at once (the next run redoes
/// the interrupted steps).
async fn watch_signals(shared: Arc<Shared>, mut reporter: SharedReporter) {
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
            shared.cancel.store(true, Ordering::SeqCst);
            reporter.event(&Event::Cancelling { message: "stopping: running steps finish, no new step starts (interrupt again to abort now)".into() });
        } else {
            eprintln!("aborted: the next run redoes the steps that were running");
            std::process::exit(crate::exit::INTERRUPTED);
        }
    }
}

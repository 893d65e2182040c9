//! Converging guests: each guest's job is driven through the engine, step by step, in dependency
//! order; a step's probe decides whether its act runs. A guest whose prerequisite failed is
//! blocked, every independent guest still finishes, and everything is reported as events.

use crate::backend::{Hypervisor, RunState};
use crate::config::Fleet;
use crate::exec::Runner;
use crate::features::FeatureDirs;
use crate::graph::Graph;
use crate::lifecycle::{self, Ctx, Intents, Step, StepError};
use serde::Serialize;
use state_machine::{EngineError, Job, JobSpec, JobState, Lifecycle, Status, Store};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What happened to one guest in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every step was already done: nothing ran.
    Unchanged,
    /// Steps ran and succeeded.
    Converged,
    Failed,
    /// A prerequisite failed or was blocked.
    Blocked,
    /// The run was cancelled before the guest finished.
    Cancelled,
    /// Dry run: what would run was printed.
    Planned,
}

#[derive(Debug, Clone, Serialize)]
pub struct GuestSummary {
    pub id: String,
    pub name: String,
    pub outcome: Outcome,
    pub state: String,
    pub steps_run: usize,
    pub steps_changed: usize,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub guests: Vec<GuestSummary>,
    /// The run was interrupted (Ctrl-C, SIGTERM) and stopped starting new steps.
    pub cancelled: bool,
    pub duration_ms: u64,
    pub commands: u64,
    pub mutating_commands: u64,
    pub command_ms: u64,
}

impl Summary {
    pub fn ok(&self) -> bool {
        self.guests.iter().all(|g| {
            matches!(
                g.outcome,
                Outcome::Unchanged | Outcome::Converged | Outcome::Planned
            )
        })
    }
}

impl Outcome {
    /// Whether dependents may go on.
    pub fn ok(self) -> bool {
        matches!(
            self,
            Outcome::Unchanged | Outcome::Converged | Outcome::Planned
        )
    }
}

/// What the operator (or a machine) is told as the run goes.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        guests: usize,
        jobs: usize,
    },
    Command {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        cmd: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<i32>,
        ms: u64,
        /// When it ended (ms since the epoch); it started `ms` earlier.
        at_ms: u64,
        mutating: bool,
    },
    Cancelling {
        message: String,
    },
    GuestStarted {
        id: String,
        name: String,
        steps: usize,
        pending: usize,
    },
    StateEntered {
        id: String,
        state: String,
    },
    StepStarted {
        id: String,
        step: String,
        index: usize,
        total: usize,
        attempt: u32,
    },
    StepSucceeded {
        id: String,
        step: String,
        changed: bool,
        ms: u64,
    },
    StepFailed {
        id: String,
        step: String,
        error: String,
        output_tail: String,
    },
    StepPlanned {
        id: String,
        step: String,
        up_to_date: bool,
    },
    Drift {
        id: String,
        what: String,
    },
    Warning {
        id: String,
        message: String,
    },
    GuestFinished {
        id: String,
        outcome: Outcome,
        ms: u64,
    },
    RunFinished {
        summary: Summary,
    },
}

pub trait Reporter: Send {
    fn event(&mut self, e: &Event);
}

pub struct Options {
    /// Stop each guest after this state (e.g. `create` stops at `created`).
    pub until: Option<Lifecycle>,
    pub step_timeout: Duration,
    pub fail_fast: bool,
    /// Guests converging at once.
    pub jobs: usize,
}

pub struct Env<'a> {
    pub fleet: &'a Fleet,
    pub graph: &'a Graph,
    pub backend: &'a dyn Hypervisor,
    pub runner: &'a dyn Runner,
    pub features: &'a FeatureDirs,
    /// `None` in a dry run: nothing is recorded.
    pub store: Option<&'a Store<Lifecycle>>,
    /// Where the store lives (a dry run reads what is recorded there).
    pub state_dir: &'a std::path::Path,
    pub cancel: &'a AtomicBool,
    /// Create/clone/snapshot operations at once per storage pool.
    pub limits: &'a crate::limits::PoolLimits,
    /// Phoenix's key and known_hosts for guests reached over SSH (`exec_via: ssh`).
    pub guest_ssh: Option<&'a lifecycle::guest::GuestSsh>,
    /// Each guest's state as found when the run began (one backend query for the fleet), for
    /// drift checks.
    pub found: &'a std::collections::HashMap<crate::config::GuestId, Option<RunState>>,
}

/// Saves intents through the engine.
struct JobIntents<'j, 's>(&'j mut Job<'s, Lifecycle>);

impl Intents for JobIntents<'_, '_> {
    fn save(&mut self, data: &[u8]) -> Result<(), StepError> {
        self.0
            .save_intent(data)
            .map_err(|e| StepError::new(e.to_string(), ""))
    }
}

struct NoIntents;
impl Intents for NoIntents {
    fn save(&mut self, _: &[u8]) -> Result<(), StepError> {
        Ok(())
    }
}

/// The lifecycle of a guest as an engine job, limited to `until`.
pub fn job_spec(id: &str, steps: &[Step], until: Option<Lifecycle>) -> JobSpec<Lifecycle> {
    let mut spec = JobSpec::new(id);
    for s in steps.iter().filter(|s| until.is_none_or(|u| s.state <= u)) {
        spec = spec.step(s.name.clone(), s.state, s.digest.clone());
    }
    spec
}

pub fn converge_guest(
    env: &Env<'_>,
    ct: &crate::config::lxc::Container,
    opts: &Options,
    reporter: &mut dyn Reporter,
) -> Result<GuestSummary, EngineError> {
    let started = Instant::now();
    let id = ct.id.to_string();
    let job_id = format!("lxc/{id}");
    let mut summary = GuestSummary {
        id: id.clone(),
        name: ct.name.clone(),
        outcome: Outcome::Unchanged,
        state: String::new(),
        steps_run: 0,
        steps_changed: 0,
        duration_ms: 0,
        error: None,
        blocked_by: None,
    };
    let fail = |summary: &mut GuestSummary, msg: String| {
        summary.outcome = Outcome::Failed;
        summary.error = Some(msg);
        summary.duration_ms = started.elapsed().as_millis() as u64;
    };
    let (steps, warnings) = match lifecycle::lxc::steps(
        ct,
        env.fleet,
        env.backend.capabilities(),
        env.features,
        env.guest_ssh,
    ) {
        Ok(s) => s,
        Err(e) => {
            fail(&mut summary, e);
            return Ok(summary);
        }
    };
    for w in warnings {
        reporter.event(&Event::Warning {
            id: id.clone(),
            message: w,
        });
    }
    let spec = job_spec(&job_id, &steps, opts.until);
    let guest = guest_exec(env, ct);
    let cx = |intent| Ctx {
        backend: env.backend,
        runner: env.runner,
        ct,
        step_timeout: opts.step_timeout,
        intent,
        guest: guest.as_ref(),
    };

    let Some(store) = env.store else {
        return Ok(dry_run_guest(
            env, ct, &steps, &spec, opts, reporter, summary, started,
        ));
    };

    // Drift: a completed guest that is gone or stopped is converged again where it drifted.
    if store
        .job(&job_id)?
        .is_some_and(|r| r.status == Status::Completed)
    {
        let found = match env.found.get(&ct.id) {
            Some(state) => Ok(*state),
            None => env.backend.state(ct.id),
        };
        match found {
            Ok(None) => {
                reporter.event(&Event::Drift {
                    id: id.clone(),
                    what: "container is missing: rebuilding".into(),
                });
                store.reset(
                    std::slice::from_ref(&job_id),
                    None,
                    "drift: container missing",
                )?;
            }
            // A template does not run: that is not drift.
            Ok(Some(RunState::Stopped)) if env.backend.is_template(ct.id).unwrap_or(false) => {}
            Ok(Some(RunState::Stopped)) => {
                reporter.event(&Event::Drift {
                    id: id.clone(),
                    what: "container is stopped: starting".into(),
                });
                store.forget(&job_id, &["start"], "drift: container found stopped")?;
            }
            Ok(Some(_)) => {}
            Err(e) => {
                fail(&mut summary, e.to_string());
                return Ok(summary);
            }
        }
    }

    let mut job = store.begin(&spec)?;
    let pending = spec
        .steps
        .iter()
        .filter(|s| {
            job.record()
                .done_step(&s.name)
                .is_none_or(|d| d.digest != s.digest)
        })
        .count();
    reporter.event(&Event::GuestStarted {
        id: id.clone(),
        name: ct.name.clone(),
        steps: spec.steps.len(),
        pending,
    });
    let mut state = job.record().state.clone();
    // A step that failed in an earlier run is retried after a pause that grows with its attempts.
    if job.record().status == Status::Failed {
        let pause = crate::limits::retry_backoff(job.record().attempt + 1);
        if !pause.is_zero() {
            let step = job.record().cursor.clone().unwrap_or_default();
            reporter.event(&Event::Warning {
                id: id.clone(),
                message: format!(
                    "retrying {step} (attempt {}) in {}s",
                    job.record().attempt + 1,
                    pause.as_secs()
                ),
            });
            if sleep_unless_cancelled(pause, env.cancel) {
                summary.outcome = Outcome::Cancelled;
                return Ok(summary);
            }
        }
    }
    let mut next = job.start()?;
    while let Some(run) = next {
        let Some(step) = steps.iter().find(|s| s.name == run.spec.name) else {
            return Err(EngineError::Invalid {
                job: job_id,
                message: format!("step {} is not in the lifecycle", run.spec.name),
            });
        };
        reporter.event(&Event::StepStarted {
            id: id.clone(),
            step: step.name.clone(),
            index: run.index + 1,
            total: spec.steps.len(),
            attempt: run.attempt,
        });
        let t = Instant::now();
        let context = cx(run.intent.clone());
        let result = match step.probe(&context) {
            Ok(true) => Ok(false),
            Ok(false) => {
                act_limited(env, step, &context, &mut job, reporter).map(|()| step.mutates)
            }
            Err(e) => Err(e),
        };
        summary.steps_run += 1;
        match result {
            Ok(changed) => {
                summary.steps_changed += usize::from(changed);
                reporter.event(&Event::StepSucceeded {
                    id: id.clone(),
                    step: step.name.clone(),
                    changed,
                    ms: t.elapsed().as_millis() as u64,
                });
                next = if env.cancel.load(Ordering::SeqCst) {
                    job.succeed()?;
                    None
                } else {
                    job.succeed_and_start_next()?
                };
                if job.record().state != state {
                    state = job.record().state.clone();
                    reporter.event(&Event::StateEntered {
                        id: id.clone(),
                        state: state.clone(),
                    });
                }
            }
            Err(e) => {
                job.fail(&e.message, &e.tail)?;
                reporter.event(&Event::StepFailed {
                    id: id.clone(),
                    step: step.name.clone(),
                    error: e.message.clone(),
                    output_tail: e.tail.clone(),
                });
                fail(&mut summary, format!("{}: {}", step.name, e.message));
                summary.state = job.record().state.clone();
                return Ok(summary);
            }
        }
    }
    summary.state = job.record().state.clone();
    if job.record().status != Status::Completed && opts.until.is_none() {
        summary.outcome = Outcome::Cancelled;
    } else if summary.steps_changed > 0 {
        summary.outcome = Outcome::Converged;
    }
    summary.duration_ms = started.elapsed().as_millis() as u64;
    Ok(summary)
}

/// Where a guest's scripts run: over SSH to its address (`exec_via: ssh`), else through the
/// hypervisor.
fn guest_exec<'a>(
    env: &'a Env<'_>,
    ct: &'a crate::config::lxc::Container,
) -> Box<dyn lifecycle::guest::GuestExec + 'a> {
    use crate::exec::ssh::{SshOptions, SshRunner, Target};
    let via_ssh = match (
        ct.exec_via,
        env.guest_ssh,
        ct.network.as_ref().map(|n| n.ip),
    ) {
        (
            crate::config::lxc::ExecVia::Ssh,
            Some(ssh),
            Some(crate::config::values::IpConfig::Static(c)),
        ) => Some((ssh, c)),
        _ => None,
    };
    match via_ssh {
        Some((ssh, cidr)) => {
            let target = Target {
                user: ct.ssh_user.clone(),
                host: cidr.addr.to_string(),
                port: 22,
            };
            let opts = SshOptions {
                identity: Some(ssh.identity.clone()),
                known_hosts: ssh.known_hosts.clone(),
                accept_new_host_keys: false,
                ..SshOptions::default()
            };
            Box::new(lifecycle::guest::ViaSsh {
                ssh: SshRunner::new(target, opts, env.runner.dry_run()),
                stats: env.runner.stats(),
            })
        }
        None => Box::new(lifecycle::guest::ViaHypervisor {
            backend: env.backend,
            id: ct.id,
        }),
    }
}

/// Sleeps `d`, waking early (returning true) when the run is cancelled.
fn sleep_unless_cancelled(d: Duration, cancel: &AtomicBool) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if cancel.load(Ordering::SeqCst) {
            return true;
        }
        std::thread::sleep(
            Duration::from_millis(100).min(until.saturating_duration_since(Instant::now())),
        );
    }
    false
}

/// Acts; creates, clones and snapshots take a slot of their storage pool first, and are retried
/// with backoff when the backend reports a lock timeout.
fn act_limited(
    env: &Env<'_>,
    step: &Step,
    cx: &Ctx<'_>,
    job: &mut Job<'_, Lifecycle>,
    reporter: &mut dyn Reporter,
) -> Result<(), StepError> {
    if !matches!(
        step.kind,
        lifecycle::StepKind::Create(_) | lifecycle::StepKind::Snapshot(_)
    ) {
        return step.act(cx, &mut JobIntents(job));
    }
    let pool = cx
        .ct
        .storage_pool
        .clone()
        .unwrap_or_else(|| "default".to_string());
    let mut tries = 0;
    loop {
        let result = {
            let _slot = env.limits.acquire(&pool);
            if tries == 0 {
                step.act(cx, &mut JobIntents(job))
            } else {
                // What the failed try left behind is cleaned up like an interrupted one.
                let retry = Ctx {
                    intent: Some(b"retry after lock timeout".to_vec()),
                    ..*cx
                };
                step.act(&retry, &mut JobIntents(job))
            }
        };
        match result {
            Err(e)
                if tries < 5
                    && crate::limits::is_lock_timeout(&format!("{}\n{}", e.message, e.tail)) =>
            {
                tries += 1;
                let pause = crate::limits::lock_backoff(tries);
                reporter.event(&Event::Warning {
                    id: cx.ct.id.to_string(),
                    message: format!(
                        "{}: storage lock timeout, retry {tries} in {}s",
                        step.name,
                        pause.as_secs()
                    ),
                });
                if sleep_unless_cancelled(pause, env.cancel) {
                    return Err(e);
                }
            }
            other => return other,
        }
    }
}

/// A dry run: probes run (they change nothing), acts only print what they would run.
#[allow(clippy::too_many_arguments)]
fn dry_run_guest(
    env: &Env<'_>,
    ct: &crate::config::lxc::Container,
    steps: &[Step],
    spec: &JobSpec<Lifecycle>,
    opts: &Options,
    reporter: &mut dyn Reporter,
    mut summary: GuestSummary,
    started: Instant,
) -> GuestSummary {
    let id = ct.id.to_string();
    let record = match state_machine::Reader::new(env.state_dir).job(&format!("lxc/{id}")) {
        Some(state_machine::ReadOutcome::Ok(view)) => Some(view.record),
        _ => None,
    };
    reporter.event(&Event::GuestStarted {
        id: id.clone(),
        name: ct.name.clone(),
        steps: spec.steps.len(),
        pending: spec.steps.len(),
    });
    let mut exists = env.backend.state(ct.id).ok().flatten().is_some();
    for s in &spec.steps {
        let Some(step) = steps.iter().find(|x| x.name == s.name) else {
            continue;
        };
        let recorded = record
            .as_ref()
            .and_then(|r| r.done_step(&s.name))
            .is_some_and(|d| d.digest == s.digest);
        let guest = guest_exec(env, ct);
        let cx = Ctx {
            backend: env.backend,
            runner: env.runner,
            ct,
            step_timeout: opts.step_timeout,
            intent: None,
            guest: guest.as_ref(),
        };
        let up_to_date = recorded || (exists && step.probe(&cx).unwrap_or(false));
        reporter.event(&Event::StepPlanned {
            id: id.clone(),
            step: s.name.clone(),
            up_to_date,
        });
        if !up_to_date {
            println!("would run step {} of {id}:", s.name);
            if exists || matches!(step.kind, lifecycle::StepKind::Create(_)) {
                if let Err(e) = step.act(&cx, &mut NoIntents) {
                    println!("  (then: {e})");
                }
            }
            summary.steps_run += 1;
            exists = true;
        }
    }
    summary.outcome = Outcome::Planned;
    summary.state = Lifecycle::initial().name().to_string();
    summary.duration_ms = started.elapsed().as_millis() as u64;
    summary
}

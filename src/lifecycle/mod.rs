//! Lifecycles: the steps a guest passes through, as a table. Each step belongs to the state it
//! completes, has a digest of what it depends on, and is a probe (is it already so?) followed, when
//! the probe says no, by an act (make it so).

pub mod guest;
pub mod lxc;
pub mod scripts;

use crate::backend::{BackendError, Hypervisor, Setting};
use crate::config::common::{GuestHealthCheck, HostCheck};
use crate::config::lxc::Container;
use crate::config::GuestId;
use crate::exec::{Cmd, Runner};
use state_machine::Lifecycle;
use std::path::PathBuf;
use std::time::Duration;

/// Where a container comes from.
#[derive(Debug, Clone, serde::Serialize)]
pub enum Source {
    Template(PathBuf),
    Clone { parent: GuestId, snapshot: String },
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum StepKind {
    Create(Source),
    Setting(Setting),
    Start,
    Snapshot(String),
    Feature {
        name: String,
        script: PathBuf,
    },
    ApplicationScript(PathBuf),
    HealthCheck(GuestHealthCheck),
    HostCheck {
        check: HostCheck,
        script: PathBuf,
    },
    /// Conversion into a template (Proxmox).
    Template,
    /// Opens the guest to SSH (`exec_via: ssh`): Phoenix's key authorized, sshd running, the
    /// guest's host key pinned in `known_hosts`.
    SshAccess {
        address: String,
        public_key: String,
        known_hosts: PathBuf,
    },
}

/// One row of a lifecycle table.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub state: Lifecycle,
    pub digest: String,
    pub kind: StepKind,
    /// Whether running it changes the guest (checks do not).
    pub mutates: bool,
}

/// Everything a step needs to probe and act.
pub struct Ctx<'a> {
    pub backend: &'a dyn Hypervisor,
    pub runner: &'a dyn Runner,
    pub ct: &'a Container,
    pub step_timeout: Duration,
    /// Intent saved by an earlier, interrupted attempt of this step.
    pub intent: Option<Vec<u8>>,
    /// Where scripts run: through the hypervisor or over SSH.
    pub guest: &'a dyn guest::GuestExec,
}

/// A step's failure, with the output of what failed.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    pub message: String,
    pub tail: String,
}

impl From<BackendError> for StepError {
    fn from(e: BackendError) -> StepError {
        StepError {
            tail: e.tail(),
            message: e.to_string(),
        }
    }
}

impl StepError {
    pub fn new(message: impl Into<String>, tail: impl Into<String>) -> StepError {
        StepError {
            message: message.into(),
            tail: tail.into(),
        }
    }
}

/// Where a step asks the engine to record an intent before a long operation.
pub trait Intents {
    fn save(&mut self, data: &[u8]) -> Result<(), StepError>;
}

impl Step {
    /// Is it already so? (Checks always answer no: they are run, not remembered.)
    pub fn probe(&self, cx: &Ctx<'_>) -> Result<bool, StepError> {
        let id = cx.ct.id;
        Ok(match &self.kind {
            StepKind::Create(_) => cx.intent.is_none() && cx.backend.state(id)?.is_some(),
            StepKind::Setting(s) => cx.backend.probe(id, s)?,
            StepKind::Start => {
                cx.backend.state(id)? == Some(crate::backend::RunState::Running)
                    && scripts::network_answers(cx)?
            }
            StepKind::Snapshot(name) => {
                cx.backend.snapshots(id)?.iter().any(|s| s == name) && cx.intent.is_none()
            }
            StepKind::Feature { .. } | StepKind::ApplicationScript(_) => {
                scripts::marker_matches(cx, &self.name, &self.digest)?
            }
            StepKind::HealthCheck(_) | StepKind::HostCheck { .. } => false,
            StepKind::Template => cx.backend.is_template(id)?,
            StepKind::SshAccess {
                address,
                public_key,
                known_hosts,
            } => scripts::ssh_access_in_place(cx, address, public_key, known_hosts)?,
        })
    }

    /// Makes it so.
    pub fn act(&self, cx: &Ctx<'_>, intents: &mut dyn Intents) -> Result<(), StepError> {
        let id = cx.ct.id;
        // Testing aid: `PHOENIX_STEP_DELAY_MS` slows every act so that crash tests can land a
        // SIGKILL inside steps that otherwise take a few milliseconds.
        if let Some(ms) = std::env::var("PHOENIX_STEP_DELAY_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
        {
            std::thread::sleep(Duration::from_millis(ms));
        }
        let backend = cx.backend;
        match &self.kind {
            StepKind::Create(source) => {
                // An interrupted earlier attempt may have left half a guest: remove it first.
                if cx.intent.is_some() {
                    backend.discard_partial(id)?;
                }
                intents.save(b"create issued")?;
                match source {
                    Source::Template(path) => backend.create(cx.ct, path)?,
                    Source::Clone { parent, snapshot } => {
                        backend.clone_from(cx.ct, *parent, snapshot)?
                    }
                }
            }
            StepKind::Setting(s) => {
                backend.apply(id, s)?;
            }
            StepKind::Start => {
                backend.start(id)?;
                if !cx.runner.dry_run() && !scripts::wait_network(cx)? {
                    let gw = scripts::gateway(cx.ct)
                        .map(|g| g.to_string())
                        .unwrap_or_default();
                    return Err(StepError::new(
                        format!("guest {id} started but its network does not answer (gateway {gw} unreachable from inside)"),
                        "check the bridge's address and the guest's ip/gw",
                    ));
                }
            }
            StepKind::Snapshot(name) => {
                if cx.intent.is_some() {
                    backend.discard_partial_snapshots(id)?;
                }
                intents.save(format!("snapshot {name} issued").as_bytes())?;
                backend.snapshot(id, name)?;
            }
            StepKind::Feature { name, script } => {
                scripts::run_feature(cx, name, script, &self.digest)?
            }
            StepKind::ApplicationScript(script) => {
                scripts::run_application_script(cx, script, &self.digest)?
            }
            StepKind::HealthCheck(check) => scripts::health_check(cx, check)?,
            StepKind::HostCheck { check, script } => {
                let mut argv = vec![script.display().to_string()];
                argv.extend(check.args.iter().cloned());
                let cmd = Cmd::probe(argv)
                    .env("PHOENIX_CTID", id.to_string())
                    .env("PHOENIX_GUEST_NAME", &cx.ct.name)
                    .timeout(cx.step_timeout);
                cx.runner.run(&cmd).map_err(|e| {
                    StepError::new(format!("host check {:?} failed: {e}", check.name), e.tail())
                })?;
            }
            StepKind::Template => backend.make_template(id)?,
            StepKind::SshAccess {
                address,
                public_key,
                known_hosts,
            } => scripts::open_ssh_access(cx, address, public_key, known_hosts)?,
        }
        Ok(())
    }
}

//! `phoenix plan`: what a run would change, found on the live system. Each guest (targets and what
//! they need, in run order) is inspected once; each step is compared with what the store recorded
//! and with the guest as found ([`crate::converge::drift`]). Read-only: the store is read through
//! its views, without its lock, and no command that changes anything runs.

use super::connect::{self, Purpose};
use super::{load, Options};
use crate::backend::Change;
use crate::config::GuestId;
use crate::converge::drift::{self, Finding, Found, Why};
use crate::error::{Error, Result};
use crate::jobs::{self, GuestJob, JobKind, Label};
use serde::Serialize;
use state_machine::{ReadOutcome, Reader};
use std::sync::Arc;
use std::time::Duration;

/// One change a run would make: the unit of `--output json` (one object per line).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PlannedChange {
    pub guest: String,
    pub name: String,
    pub kind: String,
    /// `create`, `rebuild`, `add`, `remove`, `update`, `start`, `run`, `rerun` or `error`.
    pub action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub want: Option<String>,
    /// `drift` (the live guest no longer holds a done step), `config` (the configuration
    /// changed), `new` (not run yet), `missing` (recorded, and gone).
    pub reason: &'static str,
    /// For scripts: the inputs whose change makes them run again.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<String>,
    /// For `create` and `rebuild`: the steps the guest's job has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub guests: usize,
    pub changes: Vec<PlannedChange>,
}

/// Plans a run of `targets` (empty: the whole fleet).
pub fn run(opts: &Options, targets: &[GuestId]) -> Result<Plan> {
    let fleet = load::checked(opts)?;
    let purpose = Purpose::Run {
        dry_run: true,
        clone_jobs: None,
    };
    let session = connect::session(opts, fleet, purpose)?;
    let order = session
        .graph
        .order(targets)
        .map_err(|e| Error::usage(e.to_string()))?;
    load::preflight(opts, &session, &order)?;
    let _ = session
        .found
        .set(session.backend.states(&order).unwrap_or_default());
    let session = Arc::new(session);
    let reader = Reader::new(&opts.state_dir);
    let mut changes = Vec::new();
    for id in &order {
        changes.extend(guest(&session, &reader, *id));
    }
    Ok(Plan {
        guests: order.len(),
        changes,
    })
}

/// What a run would change of guest `id`.
fn guest(
    session: &Arc<crate::session::Session>,
    reader: &Reader,
    id: GuestId,
) -> Vec<PlannedChange> {
    let timeout = Duration::from_secs(1800);
    match jobs::prepare(session, id, timeout) {
        Ok(GuestJob::Container(j)) => changes_of(&j, reader),
        Ok(GuestJob::Vm(j)) => changes_of(&j, reader),
        Err(e) => {
            let label = session.fleet.guest(id).map(jobs::label_of);
            let label = label.unwrap_or_else(|| Label::new("guest", id, ""));
            vec![error(&label, e.to_string())]
        }
    }
}

/// Plans `phoenix setup`: each step of the node's job, as it differs on the node.
pub fn host(opts: &Options, allow_destructive: bool) -> Result<Plan> {
    let fleet = load::checked_host(opts)?;
    let purpose = Purpose::Run {
        dry_run: true,
        clone_jobs: None,
    };
    let session = Arc::new(connect::session(opts, fleet, purpose)?);
    let req = super::setup::SetupRequest {
        dry_run: true,
        reboot: false,
        allow_destructive,
        step_timeout: Duration::from_secs(1800),
    };
    let job = super::setup::job(opts, &session, &req)?;
    let reader = Reader::new(&opts.state_dir);
    Ok(Plan {
        guests: 1,
        changes: changes_of(&job, &reader),
    })
}

/// What a run would change of `job`, from what the store recorded and the system as found.
fn changes_of<K: JobKind>(job: &K, reader: &Reader) -> Vec<PlannedChange> {
    let label = job.label();
    let record = match reader.job(&label.job_id) {
        Some(ReadOutcome::Ok(view)) => Some(view.record),
        Some(ReadOutcome::Unreadable { detail, .. }) => {
            let fix = crate::error::reset_command(&label.job_id);
            let message = format!("its recorded state is unreadable ({detail}); `{fix}` clears it");
            return vec![error(label, message)];
        }
        None => None,
    };
    let steps = job.table().steps.len();
    match drift::find(job, record.as_ref(), true) {
        Err(e) => vec![error(label, e.to_string())],
        Ok(Found::New) => vec![whole(label, "create", "new", steps)],
        Ok(Found::Gone) => vec![whole(label, "rebuild", "missing", steps)],
        Ok(Found::Steps(found)) => found.iter().flat_map(|f| step(label, f)).collect(),
    }
}

fn base(label: &Label, action: &'static str, reason: &'static str) -> PlannedChange {
    PlannedChange {
        guest: label.id.clone(),
        name: label.name.clone(),
        kind: label
            .job_id
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string(),
        action,
        reason,
        ..PlannedChange::default()
    }
}

fn error(label: &Label, message: String) -> PlannedChange {
    PlannedChange {
        message: Some(message),
        ..base(label, "error", "config")
    }
}

fn whole(label: &Label, action: &'static str, reason: &'static str, steps: usize) -> PlannedChange {
    PlannedChange {
        steps: Some(steps),
        ..base(label, action, reason)
    }
}

/// One step's changes: one per live difference, else the step itself.
fn step(label: &Label, f: &Finding) -> Vec<PlannedChange> {
    let (reason, inputs) = match &f.why {
        Why::Drift => ("drift", Vec::new()),
        Why::Changed(inputs) => ("config", inputs.clone()),
        Why::NotRun => ("new", Vec::new()),
    };
    let of_step = |action| PlannedChange {
        step: Some(f.step.clone()),
        inputs: inputs.clone(),
        ..base(label, action, reason)
    };
    if f.changes.is_empty() {
        let action = if f.why == Why::NotRun { "run" } else { "rerun" };
        return vec![of_step(action)];
    }
    f.changes
        .iter()
        .map(|c| PlannedChange {
            key: Some(c.key.clone()),
            live: c.live.clone(),
            want: c.want.clone(),
            ..of_step(action_of(&f.step, c))
        })
        .collect()
}

fn action_of(step: &str, c: &Change) -> &'static str {
    match (&c.live, &c.want) {
        _ if step == "start" => "start",
        (None, _) => "add",
        (_, None) => "remove",
        _ => "update",
    }
}

impl PlannedChange {
    /// `~ 950 resources: memory 2048 → 1024`, `+ 952 new guest (14 steps)`...
    pub fn to_line(&self) -> String {
        let guest = &self.guest;
        let step = self.step.as_deref().unwrap_or_default();
        let key = self.key.as_deref().unwrap_or_default();
        let (live, want) = (short(&self.live), short(&self.want));
        let why = match self.reason {
            "drift" => " (drift)",
            _ => "",
        };
        match self.action {
            "create" => format!("+ {guest} new guest ({} steps)", self.steps.unwrap_or(0)),
            "rebuild" => format!(
                "! {guest} is missing: rebuild ({} steps)",
                self.steps.unwrap_or(0)
            ),
            "error" => format!(
                "x {guest} cannot be planned: {}",
                self.message.as_deref().unwrap_or_default()
            ),
            "start" => format!("! {guest} {step}: {live}, config says {want}"),
            "add" => format!("+ {guest} {step}: {key} {want}{why}"),
            "remove" => format!("- {guest} {step}: {key} {live}{why}"),
            "update" => format!("~ {guest} {step}: {key} {live} → {want}{why}"),
            "run" => format!("+ {guest} {step} (not run yet)"),
            _ if self.inputs.is_empty() => format!("↻ {guest} {step} (its definition changed)"),
            _ => format!(
                "↻ {guest} {step} (input {} changed)",
                self.inputs.join(", ")
            ),
        }
    }
}

/// A value on one line: a file's text as its number of lines.
fn short(v: &Option<String>) -> String {
    match v.as_deref() {
        Some(t) if t.contains('\n') => format!("({} lines)", t.lines().count()),
        Some(t) => t.to_string(),
        None => String::new(),
    }
}

impl Plan {
    pub fn to_text(&self) -> String {
        let mut s: String = self.changes.iter().map(|c| c.to_line() + "\n").collect();
        let guests: std::collections::BTreeSet<&str> =
            self.changes.iter().map(|c| c.guest.as_str()).collect();
        s.push_str(&match self.changes.len() {
            0 => format!(
                "No changes: {} guest(s) match the configuration.\n",
                self.guests
            ),
            n => format!(
                "Plan: {n} change(s) to {} of {} guest(s).\n",
                guests.len(),
                self.guests
            ),
        });
        s
    }

    /// Whether a run would change anything, or could not be planned.
    pub fn pending(&self) -> bool {
        !self.changes.is_empty()
    }

    pub fn errors(&self) -> usize {
        self.changes.iter().filter(|c| c.action == "error").count()
    }
}

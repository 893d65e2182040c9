//! Operations on the listed guests only (no cascade through dependencies; upstream's start and
//! stop walked the whole chain): start, stop, restart, delete, and their live status.

use super::connect::{self, Purpose};
use super::{load, Options};
use crate::backend::vm::Vms;
use crate::backend::{self, RunState};
use crate::config::{GuestId, GuestRef};
use crate::error::{Error, Result};
use crate::jobs;
use crate::session::Session;
use crate::ui::out;
pub use crate::ui::state::GuestStatus;

#[derive(Debug, Clone, Copy)]
pub enum Op {
    Start,
    Stop,
    Restart,
}

/// The session, once every id is known to be a guest of the fleet that this backend manages.
fn open(opts: &Options, ids: &[GuestId]) -> Result<Session> {
    let fleet = load::checked(opts)?;
    let session = connect::session(opts, fleet, Purpose::Guests)?;
    for id in ids {
        match session.fleet.guest(*id) {
            Some(GuestRef::Ct(_)) => {}
            Some(GuestRef::Vm(_)) if session.backend.vms().is_some() => {}
            Some(GuestRef::Vm(_)) => {
                return Err(Error::usage(format!(
                    "{id} is a VM, and the {} backend has no VMs",
                    session.backend.kind()
                )))
            }
            None => {
                return Err(Error::usage(format!(
                    "guest {id} is not defined in the configuration"
                )))
            }
        }
    }
    Ok(session)
}

/// One listed guest: a container through the backend, a VM through its VM half.
struct Guest<'a> {
    s: &'a Session,
    id: GuestId,
}

impl Guest<'_> {
    fn vms(&self) -> Option<&dyn Vms> {
        match self.s.fleet.guest(self.id) {
            Some(GuestRef::Vm(_)) => self.s.backend.vms(),
            _ => None,
        }
    }

    fn start(&self) -> backend::Result<()> {
        match self.vms() {
            Some(v) => v.vm_start(self.id),
            None => self.s.backend.start(self.id),
        }
    }

    /// A VM is shut down cleanly (stopped hard after the timeout).
    fn stop(&self) -> backend::Result<()> {
        match self.vms() {
            Some(v) => v.vm_shutdown(self.id),
            None => self.s.backend.stop(self.id),
        }
    }

    fn destroy(&self) -> backend::Result<()> {
        match self.vms() {
            Some(v) => v.vm_destroy(self.id),
            None => self.s.backend.destroy(self.id),
        }
    }

    fn snapshots(&self) -> backend::Result<Vec<String>> {
        match self.vms() {
            Some(v) => Ok(v
                .vm_inspect(self.id)?
                .and_then(|l| l.snapshots)
                .unwrap_or_default()),
            None => self.s.backend.snapshots(self.id),
        }
    }

    /// Its job's id in the store (`lxc/950`, `vm/1001`).
    fn job_id(&self) -> String {
        match self.s.fleet.guest(self.id) {
            Some(g) => jobs::label_of(g).job_id,
            None => format!("lxc/{}", self.id),
        }
    }
}

/// Starts, stops or restarts each guest; the ones that fail are reported together. It holds the
/// store's lock meanwhile, so it never stops a guest under a running `phoenix run` (which is
/// named instead).
pub fn lifecycle(opts: &Options, ids: &[GuestId], op: Op) -> Result<()> {
    crate::logging::init(&opts.log_dir, opts.verbose);
    let s = open(opts, ids)?;
    let _lock = connect::hold_store(&opts.state_dir, &*s.runner)?;
    let mut failed = Vec::new();
    for id in ids {
        let g = Guest { s: &s, id: *id };
        let (result, done) = match op {
            Op::Start => (g.start(), "running"),
            Op::Stop => (g.stop(), "stopped"),
            Op::Restart => (g.stop().and_then(|()| g.start()), "restarted"),
        };
        match result {
            Ok(()) if !opts.quiet => out::err_line(&format!("{id}: {done}")),
            Ok(()) => {}
            Err(e) => failed.push(format!("{id}: {e}")),
        }
    }
    match failed.is_empty() {
        true => Ok(()),
        false => Err(Error::Guests(failed)),
    }
}

/// Destroys each guest and its snapshots and forgets its state (after `confirmed`).
pub fn delete(opts: &Options, ids: &[GuestId], confirmed: impl Fn(&str) -> bool) -> Result<()> {
    crate::logging::init(&opts.log_dir, opts.verbose);
    let s = open(opts, ids)?;
    let list: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    let question = format!("destroy {} and its snapshots?", list.join(", "));
    if !confirmed(&question) {
        return Err(Error::usage(format!(
            "{question} not confirmed (answer y at a terminal, or add --yes)"
        )));
    }
    let store = connect::hold_store(&opts.state_dir, &*s.runner)?;
    let mut failed = Vec::new();
    for id in ids {
        let g = Guest { s: &s, id: *id };
        if let Err(e) = g.destroy() {
            failed.push(format!("{id}: {e}"));
            continue;
        }
        if let Err(e) = store.remove(&g.job_id()) {
            out::err_line(&format!(
                "warning: {id}: destroyed, but its state could not be removed: {e}"
            ));
        }
        if !opts.quiet {
            out::err_line(&format!("{id}: destroyed"));
        }
    }
    match failed.is_empty() {
        true => Ok(()),
        false => Err(Error::Guests(failed)),
    }
}

/// The status of each guest; the ones the backend cannot answer for are reported after.
pub fn status(opts: &Options, ids: &[GuestId]) -> Result<(Vec<GuestStatus>, Vec<String>)> {
    let s = open(opts, ids)?;
    let reader = state_machine::Reader::new(&opts.state_dir);
    let mut found = Vec::new();
    let mut failed = Vec::new();
    for id in ids {
        let g = Guest { s: &s, id: *id };
        let state = match s.found_state(*id) {
            Ok(st) => st,
            Err(e) => {
                failed.push(format!("{id}: {e}"));
                continue;
            }
        };
        let rec = match reader.job(&g.job_id()) {
            Some(state_machine::ReadOutcome::Ok(v)) => Some(v.record),
            _ => None,
        };
        found.push(GuestStatus {
            id: id.to_string(),
            name: s
                .fleet
                .guest(*id)
                .map(|g| g.name().to_string())
                .unwrap_or_default(),
            exists: state.is_some(),
            running: state.map(|st| st == RunState::Running),
            recorded_state: rec.as_ref().map(|r| r.state.clone()),
            recorded_status: rec.as_ref().map(|r| r.status.to_string()),
            snapshots: match state {
                Some(_) => g.snapshots().unwrap_or_default(),
                None => Vec::new(),
            },
        });
    }
    Ok((found, failed))
}

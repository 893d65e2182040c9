//! `created`: the container exists, extracted from its template tarball (or a backend's volume
//! id) or cloned from its parent's `template_snapshot_name` (or, where the backend has templates
//! and the parent is one, from the parent itself). Where the node runs the operation as a task of
//! its own, the task is saved as the step's intent: a run killed meanwhile waits for it and
//! adopts what it made, or cleans up after it.

use super::CtCx;
use crate::backend::files::is_volume_id;
use crate::backend::TaskEnd;
use crate::config::{validate, GuestId, GuestRef};
use crate::jobs::{Attempt, Lifecycle, Row, StepError, Table, Unbuildable};
use serde::Serialize;

/// Where a container comes from.
#[derive(Debug, Clone, Serialize)]
pub enum Source {
    /// A rootfs tarball: a path, or a storage volume id.
    Template(String),
    /// A clone of `parent`'s snapshot, or (`None`) of the template `parent`.
    Clone {
        parent: GuestId,
        snapshot: Option<String>,
    },
}

pub fn steps(t: &mut Table<Lifecycle, CtCx>, cx: &CtCx) -> Result<(), Unbuildable> {
    let source = source(cx)?;
    t.push(
        Row::new("create", Lifecycle::Created, &("create", &source))
            .pool_slot()
            .probe_act(exists, move |cx, at| create(cx, at, &source))
            // Found at all, it holds: a missing guest is rebuilt from the first step.
            .live(|_, _| Ok(Vec::new())),
    );
    Ok(())
}

fn source(cx: &CtCx) -> Result<Source, Unbuildable> {
    let ct = &cx.ct;
    let fleet = &cx.session.fleet;
    match (ct.base.clone_from, &ct.template) {
        (Some(parent), _) => {
            let templates = cx.backend().capabilities().templates;
            let snapshot = match fleet.guest(parent) {
                Some(GuestRef::Ct(p)) if p.base.is_template && templates => None,
                Some(GuestRef::Ct(p)) => {
                    Some(p.base.template_snapshot_name.clone().ok_or_else(|| {
                        Unbuildable::config(format!(
                            "clone source {parent} has no template_snapshot_name"
                        ))
                    })?)
                }
                _ => {
                    return Err(Unbuildable::config(format!(
                        "clone source {parent} is not a container of this fleet"
                    )))
                }
            };
            Ok(Source::Clone { parent, snapshot })
        }
        (None, Some(t)) if is_volume_id(t) => Ok(Source::Template(t.clone())),
        (None, Some(t)) => Ok(Source::Template(
            validate::resolve(fleet, t).display().to_string(),
        )),
        (None, None) => Err(Unbuildable::config(
            "the container has neither template nor clone_from_ctid",
        )),
    }
}

/// It exists, and no earlier attempt was interrupted half way through making it (unless that
/// attempt's task finished the job after all).
fn exists(cx: &CtCx, at: &Attempt<'_>) -> Result<bool, StepError> {
    let found = cx.backend().state(cx.id())?.is_some();
    if !at.intent.issued {
        return Ok(found);
    }
    let Some(task) = at.intent.task.clone() else {
        return Ok(false);
    };
    match cx.backend().settle_task(&task)? {
        TaskEnd::Ok if found => {
            tracing::info!(id = %cx.id(), %task, "adopted what the interrupted attempt's task made");
            Ok(true)
        }
        _ => Ok(false),
    }
}

fn create(cx: &CtCx, at: &mut Attempt<'_>, source: &Source) -> Result<(), StepError> {
    let backend = cx.backend();
    // An interrupted earlier attempt may have left half a container: remove it first.
    if at.intent.issued {
        backend.discard_partial(cx.id())?;
    }
    let mut started = at.issue()?;
    match source {
        Source::Template(t) => backend.create(&cx.ct, t, &mut started)?,
        Source::Clone { parent, snapshot } => {
            backend.clone_from(&cx.ct, *parent, snapshot.as_deref(), &mut started)?
        }
    }
    Ok(())
}

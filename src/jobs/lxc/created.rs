//! `created`: the container exists, extracted from its template tarball or cloned from its
//! parent's `template_snapshot_name`.

use super::CtCx;
use crate::config::{validate, GuestId, GuestRef};
use crate::jobs::{Attempt, Lifecycle, Row, StepError, Table, Unbuildable};
use serde::Serialize;
use std::path::PathBuf;

/// Where a container comes from.
#[derive(Debug, Clone, Serialize)]
pub enum Source {
    Template(PathBuf),
    Clone { parent: GuestId, snapshot: String },
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
            let snapshot = match fleet.guest(parent) {
                Some(GuestRef::Ct(p)) => p.base.template_snapshot_name.clone(),
                _ => None,
            };
            let snapshot = snapshot.ok_or_else(|| {
                Unbuildable::config(format!(
                    "clone source {parent} has no template_snapshot_name"
                ))
            })?;
            Ok(Source::Clone { parent, snapshot })
        }
        (None, Some(t)) => Ok(Source::Template(validate::resolve(fleet, t))),
        (None, None) => Err(Unbuildable::config(
            "the container has neither template nor clone_from_ctid",
        )),
    }
}

/// It exists, and no earlier attempt was interrupted half way through making it.
fn exists(cx: &CtCx, at: &Attempt<'_>) -> Result<bool, StepError> {
    Ok(!at.intent.issued && cx.backend().state(cx.id())?.is_some())
}

fn create(cx: &CtCx, at: &mut Attempt<'_>, source: &Source) -> Result<(), StepError> {
    let backend = cx.backend();
    // An interrupted earlier attempt may have left half a container: remove it first.
    if at.intent.issued {
        backend.discard_partial(cx.id())?;
    }
    at.save(|i| i.issued = true)?;
    match source {
        Source::Template(path) => backend.create(&cx.ct, path)?,
        Source::Clone { parent, snapshot } => backend.clone_from(&cx.ct, *parent, snapshot)?,
    }
    Ok(())
}

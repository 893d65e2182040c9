//! Snapshot steps (`pre-configured`, `template_snapshot_name`, `final-form`). A snapshot's digest
//! chains every step before it: when the guest changes, the snapshot (and so what later clones
//! start from) is taken again. Taking one may stop the guest (plain LXC cannot snapshot a running
//! container); the row says so, and the guest runs again afterwards.

use super::{CtCx, Seen};
use crate::backend::{Change, TaskEnd};
use crate::jobs::{Attempt, Lifecycle, Row, StepError, Table};

pub const PRE_CONFIGURED: &str = "pre-configured";
pub const FINAL_FORM: &str = "final-form";

/// A snapshot step, unless the backend cannot take it: a template (where the backend has them:
/// Proxmox templates cannot have snapshots, and clones start from the template itself), or a
/// snapshot the backend refuses for this container (a lifecycle snapshot is then left out, and
/// said; `template_snapshot_name` is refused before the run).
pub fn push_if_possible(t: &mut Table<Lifecycle, CtCx>, cx: &CtCx, name: &str, state: Lifecycle) {
    let b = cx.backend();
    if cx.ct.base.is_template && b.capabilities().templates {
        t.warn(format!("snapshot {name:?} is not taken: the container becomes a template, which cannot have snapshots (its clones start from the template itself)"));
        return;
    }
    if let Some(why) = b.snapshot_refusal(&cx.ct, cx.session.fleet.storage_of(&cx.ct)) {
        t.warn(format!("snapshot {name:?} is not taken: {why}"));
        return;
    }
    push(t, name, state);
}

fn push(t: &mut Table<Lifecycle, CtCx>, name: &str, state: Lifecycle) {
    let row = Row::new(
        format!("snapshot:{name}"),
        state,
        &("snapshot", name, t.chain()),
    );
    let (probe_name, take_name, live_name) = (name.to_string(), name.to_string(), name.to_string());
    t.push(
        row.pool_slot()
            .needs_stopped()
            .probe_act(
                move |cx, at| exists(cx, at, &probe_name),
                move |cx, at| take(cx, at, &take_name),
            )
            .live(move |_, seen| Ok(still_there(seen, &live_name))),
    );
}

/// A snapshot deleted by hand is taken again.
fn still_there(seen: &Seen, name: &str) -> Vec<Change> {
    if seen.snapshots.iter().any(|s| s == name) {
        return Vec::new();
    }
    vec![Change::missing("snapshot", name)]
}

/// Taken under this exact name: before this step's attempts, or by an interrupted attempt that
/// got to finish it (a complete snapshot other than the one before it), which is adopted rather
/// than taken twice.
fn exists(cx: &CtCx, at: &Attempt<'_>, name: &str) -> Result<bool, StepError> {
    let (b, id) = (cx.backend(), cx.id());
    if let (true, Some(task)) = (at.intent.issued, &at.intent.task) {
        // The node's task of the interrupted attempt: what it made counts once it ends well.
        let ended = b.settle_task(task)?;
        return Ok(ended == TaskEnd::Ok && b.snapshots(id)?.iter().any(|s| s == name));
    }
    if !b.snapshots(id)?.iter().any(|s| s == name) {
        return Ok(false);
    }
    if !at.intent.issued {
        return Ok(true);
    }
    let now = b.snapshot_identity(id, name)?;
    Ok(now.is_some() && now != at.intent.snapshot_before)
}

fn take(cx: &CtCx, at: &mut Attempt<'_>, name: &str) -> Result<(), StepError> {
    let (b, id) = (cx.backend(), cx.id());
    if at.intent.issued {
        b.discard_partial_snapshots(id)?;
    }
    let before = b.snapshot_identity(id, name)?;
    at.save(|i| i.snapshot_before = before)?;
    let mut started = at.issue()?;
    b.snapshot(id, name, &mut started)?;
    Ok(())
}

//! Snapshot steps (`pre-configured`, `template_snapshot_name`, `final-form`). A snapshot's digest
//! chains every step before it: when the guest changes, the snapshot (and so what later clones
//! start from) is taken again. Taking one may stop the guest (plain LXC cannot snapshot a running
//! container); the row says so, and the guest runs again afterwards.

use super::{CtCx, Seen};
use crate::backend::Change;
use crate::jobs::{Attempt, Lifecycle, Row, StepError, Table};

pub const PRE_CONFIGURED: &str = "pre-configured";
pub const FINAL_FORM: &str = "final-form";

pub fn push(t: &mut Table<Lifecycle, CtCx>, name: &str, state: Lifecycle) {
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
    at.save(|i| {
        i.issued = true;
        i.snapshot_before = before;
    })?;
    b.snapshot(id, name)?;
    Ok(())
}

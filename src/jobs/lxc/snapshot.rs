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

/// Taken under this exact name, and not by an attempt that was interrupted.
fn exists(cx: &CtCx, at: &Attempt<'_>, name: &str) -> Result<bool, StepError> {
    Ok(!at.intent.issued && cx.backend().snapshots(cx.id())?.iter().any(|s| s == name))
}

fn take(cx: &CtCx, at: &mut Attempt<'_>, name: &str) -> Result<(), StepError> {
    if at.intent.issued {
        cx.backend().discard_partial_snapshots(cx.id())?;
    }
    at.save(|i| i.issued = true)?;
    cx.backend().snapshot(cx.id(), name)?;
    Ok(())
}

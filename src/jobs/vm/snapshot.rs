//! VM snapshot steps (`pre-features`, `post-features`, `template_snapshot_name`), matched by exact
//! name. A snapshot's digest chains every step before it. A running VM is snapshotted as it runs
//! (disks only, its file systems frozen through the agent, as Proxmox does). A template cannot
//! have snapshots (`qm template` refuses a VM with any): a VM that becomes one takes none, and
//! says so.

use super::{Seen, VmCx};
use crate::backend::{Change, TaskEnd};
use crate::jobs::{Attempt, Lifecycle, Row, StepError, Table};

pub fn push(t: &mut Table<Lifecycle, VmCx>, cx: &VmCx, name: &str, state: Lifecycle) {
    if cx.vm.base.is_template {
        t.warn(format!("snapshot {name:?} is not taken: the VM becomes a template, which cannot have snapshots (its clones start from the template itself)"));
        return;
    }
    let row = Row::new(
        format!("snapshot:{name}"),
        state,
        &("snapshot", name, t.chain()),
    );
    let (probe_name, take_name, live_name) = (name.to_string(), name.to_string(), name.to_string());
    t.push(
        row.pool_slot()
            .probe_act(
                move |cx, at| exists(cx, at, &probe_name),
                move |cx, at| take(cx, at, &take_name),
            )
            .live(move |_, seen| Ok(still_there(seen, &live_name))),
    );
}

fn still_there(seen: &Seen, name: &str) -> Vec<Change> {
    match seen.live.snapshots.iter().flatten().any(|s| s == name) {
        true => Vec::new(),
        false => vec![Change::missing("snapshot", name)],
    }
}

fn names(cx: &VmCx) -> Result<Vec<String>, StepError> {
    let live = cx.vms().vm_inspect(cx.id())?;
    Ok(live.and_then(|l| l.snapshots).unwrap_or_default())
}

/// Taken under this exact name, before this step's attempts or by the node's task of an
/// interrupted one that ended well.
fn exists(cx: &VmCx, at: &Attempt<'_>, name: &str) -> Result<bool, StepError> {
    if let (true, Some(task)) = (at.intent.issued, &at.intent.task) {
        let ended = cx.session.backend.settle_task(task)?;
        return Ok(ended == TaskEnd::Ok && names(cx)?.iter().any(|s| s == name));
    }
    Ok(!at.intent.issued && names(cx)?.iter().any(|s| s == name))
}

fn take(cx: &VmCx, at: &mut Attempt<'_>, name: &str) -> Result<(), StepError> {
    let (vms, id) = (cx.vms(), cx.id());
    if at.intent.issued {
        vms.vm_discard_partial_snapshots(id)?;
    }
    let mut started = at.issue()?;
    vms.vm_snapshot(id, name, &mut started)?;
    Ok(())
}

//! `completed`: the `post-features` and `template_snapshot_name` snapshots; for a template, the
//! seal (cloud-init's state, logs and the machine id wiped, so that each clone is a new
//! instance; only when it ran) and the conversion.

use super::{snapshot, Seen, VmCx, VmJob};
use crate::backend::Change;
use crate::exec::Cmd;
use crate::jobs::{Attempt, Lifecycle, Row, StepError, Table};
use std::time::Duration;

/// Upstream's seal, `cloud-init clean` last (it can stop the agent's session).
const SEAL: &str = "rm -rf /var/lib/cloud/instance; truncate -s 0 /etc/machine-id; \
    rm -f /var/lib/dbus/machine-id; cloud-init clean --logs; sync";

pub fn steps(t: &mut Table<Lifecycle, VmCx>, cx: &VmCx) {
    let vm = &cx.vm;
    if let Some(name) = &vm.snapshots.post_features {
        snapshot::push(t, cx, name, Lifecycle::Completed);
    }
    if let Some(name) = &vm.base.template_snapshot_name {
        if vm.snapshots.post_features.as_deref() != Some(name) {
            snapshot::push(t, cx, name, Lifecycle::Completed);
        }
    }
    if !vm.base.is_template {
        return;
    }
    if VmJob::boots(vm) {
        let row = Row::new("seal", Lifecycle::Completed, &("seal", SEAL, t.chain()));
        t.push(row.probe_act(is_template, seal));
    }
    let row = Row::new("template", Lifecycle::Completed, &("template", t.chain()));
    t.push(
        row.probe_act(is_template, make_template)
            .live(still_template),
    );
}

fn is_template(cx: &VmCx, _: &Attempt<'_>) -> Result<bool, StepError> {
    Ok(cx.vms().vm_inspect(cx.id())?.is_some_and(|l| l.template))
}

/// Seals the running VM and shuts it down (a redo boots it again first).
fn seal(cx: &VmCx, _: &mut Attempt<'_>) -> Result<(), StepError> {
    let (vms, id) = (cx.vms(), cx.id());
    super::running::boot(cx)?;
    let cmd = Cmd::act(["/bin/sh", "-c", SEAL]).timeout(Duration::from_secs(120));
    let out = vms.vm_exec(id, &cmd)?;
    if !out.skipped && !out.success() {
        return Err(StepError::new(
            format!("sealing VM {id} failed"),
            out.tail(20),
        ));
    }
    vms.vm_shutdown(id)?;
    Ok(())
}

fn make_template(cx: &VmCx, _: &mut Attempt<'_>) -> Result<(), StepError> {
    Ok(cx.vms().vm_template(cx.id())?)
}

fn still_template(_: &VmCx, seen: &Seen) -> Result<Vec<Change>, StepError> {
    Ok(match seen.live.template {
        true => Vec::new(),
        false => vec![Change::new("template", Some("0".into()), Some("1".into()))],
    })
}

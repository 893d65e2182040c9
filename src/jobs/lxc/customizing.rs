//! `customizing`: the `pre-configured` snapshot (lifecycle snapshots), then one step per feature
//! script, run once per set of its inputs ([`scripts`]).

use super::{snapshot, CtCx};
use crate::jobs::guest::scripts::{self, Script};
use crate::jobs::{Confirm, Lifecycle, Row, Table, Unbuildable};

pub fn steps(t: &mut Table<Lifecycle, CtCx>, cx: &CtCx) -> Result<(), Unbuildable> {
    let ct = &cx.ct;
    if ct.enable_lifecycle_snapshots {
        snapshot::push_if_possible(t, cx, snapshot::PRE_CONFIGURED, Lifecycle::Customizing);
    }
    for name in &ct.base.features {
        let features = &cx.session.features;
        let script = features.find(name).ok_or_else(|| {
            Unbuildable::config(format!(
                "feature {name:?} has no script {name}.sh in {}",
                features.describe()
            ))
        })?;
        let body = std::fs::read(&script)
            .map_err(|e| Unbuildable::config(format!("cannot read {}: {e}", script.display())))?;
        let step = format!("feature:{name}");
        let script = Script::new(ct, &step, name, body, Vec::new());
        script_step(t, script, Lifecycle::Customizing);
    }
    Ok(())
}

/// A step that runs `script` once per set of its inputs (its digest names each, see
/// [`Script::parts`]): probed by the marker the guest's runner left, unless an instance an
/// earlier attempt started is still the runner's to settle.
pub fn script_step(t: &mut Table<Lifecycle, CtCx>, script: Script, state: Lifecycle) {
    let row = Row::with_parts(script.step.clone(), state, &script.parts());
    let digest = row.digest().to_string();
    let probe = (script.clone(), digest.clone());
    let confirm = match script.check_mode {
        true => {
            let check = (script.clone(), digest.clone());
            Confirm::Check(Box::new(move |cx, _| {
                scripts::confirm(cx, &check.0, &check.1)
            }))
        }
        false => Confirm::Unconfirmable,
    };
    let step = row.probe_act(
        move |cx, at| scripts::ran(cx, at, &probe.0, &probe.1),
        move |cx, at| scripts::run(cx, at, &script, &digest),
    );
    t.push(step.confirm(confirm));
}

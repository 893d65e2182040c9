//! `customizing`: the `pre-configured` snapshot (lifecycle snapshots), then one step per feature
//! script, run once per set of its inputs ([`scripts`]).

use super::{snapshot, CtCx};
use crate::jobs::guest::script_step::{feature_body, script_step};
use crate::jobs::guest::scripts::Script;
use crate::jobs::{Lifecycle, Table, Unbuildable};

pub fn steps(t: &mut Table<Lifecycle, CtCx>, cx: &CtCx) -> Result<(), Unbuildable> {
    let ct = &cx.ct;
    if ct.enable_lifecycle_snapshots {
        snapshot::push_if_possible(t, cx, snapshot::PRE_CONFIGURED, Lifecycle::Customizing);
    }
    for name in &ct.base.features {
        let body = feature_body(&cx.session, name)?;
        let step = format!("feature:{name}");
        let script = Script::new(ct, &ct.base, &step, name, body, Vec::new());
        script_step(t, script, Lifecycle::Customizing);
    }
    Ok(())
}

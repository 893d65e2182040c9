//! `customizing`: NFS volumes mounted ([`super::volumes`]), the `pre-features` snapshot, then one
//! step per feature script, run once per set
//! of its inputs through the guest agent ([`crate::jobs::guest::scripts`]).

use super::{snapshot, volumes, VmCx};
use crate::jobs::guest::script_step::{feature_body, script_step};
use crate::jobs::guest::scripts::Script;
use crate::jobs::{Lifecycle, Table, Unbuildable};

pub fn steps(t: &mut Table<Lifecycle, VmCx>, cx: &VmCx) -> Result<(), Unbuildable> {
    let vm = &cx.vm;
    volumes::steps(t, cx);
    if let Some(name) = &vm.snapshots.pre_features {
        snapshot::push(t, cx, name, Lifecycle::Customizing);
    }
    for name in &vm.base.features {
        let body = feature_body(&cx.session, name)?;
        let step = format!("feature:{name}");
        let script = Script::new(
            vm,
            &vm.base,
            &step,
            name,
            body,
            vec![vm.base.id.to_string()],
        );
        script_step(t, script, Lifecycle::Customizing);
    }
    Ok(())
}

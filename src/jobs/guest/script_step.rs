//! The step that runs a guest script (a feature, the application script) once per set of its
//! inputs, for any kind of guest job.

use super::scripts::{self, Script};
use super::InGuest;
use crate::jobs::{Confirm, Lifecycle, Row, StepCx, Table, Unbuildable};
use crate::session::Session;

/// The body of feature `name`'s script, from the session's feature directories.
pub fn feature_body(session: &Session, name: &str) -> Result<Vec<u8>, Unbuildable> {
    let features = &session.features;
    let script = features.find(name).ok_or_else(|| {
        Unbuildable::config(format!(
            "feature {name:?} has no script {name}.sh in {}",
            features.describe()
        ))
    })?;
    std::fs::read(&script)
        .map_err(|e| Unbuildable::config(format!("cannot read {}: {e}", script.display())))
}

/// A step that runs `script` once per set of its inputs (its digest names each, see
/// [`Script::parts`]): probed by the marker the guest's runner left, unless an instance an
/// earlier attempt started is still the runner's to settle.
pub fn script_step<C: StepCx + InGuest + 'static>(
    t: &mut Table<Lifecycle, C>,
    script: Script,
    state: Lifecycle,
) {
    let row = Row::with_parts(script.step.clone(), state, &script.parts());
    let digest = row.digest().to_string();
    let probe = (script.clone(), digest.clone());
    let confirm = match script.check_mode {
        true => {
            let check = (script.clone(), digest.clone());
            Confirm::Check(Box::new(move |cx: &C, _: &_| {
                scripts::confirm(cx, &check.0, &check.1)
            }))
        }
        false => Confirm::Unconfirmable,
    };
    let step = row.probe_act(
        move |cx: &C, at| scripts::ran(cx, at, &probe.0, &probe.1),
        move |cx: &C, at| scripts::run(cx, at, &script, &digest),
    );
    t.push(step.confirm(confirm));
}

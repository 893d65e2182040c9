//! `customizing`: the `pre-configured` snapshot (lifecycle snapshots), then one step per feature
//! script, each leaving a marker with its digest in the guest so that it runs once.

use super::{snapshot, CtCx};
use crate::digest;
use crate::jobs::guest::scripts;
use crate::jobs::{Attempt, Lifecycle, Row, StepError, Table, Unbuildable};
use std::path::PathBuf;

pub fn steps(t: &mut Table<Lifecycle, CtCx>, cx: &CtCx) -> Result<(), Unbuildable> {
    let ct = &cx.ct;
    if ct.enable_lifecycle_snapshots {
        snapshot::push(t, snapshot::PRE_CONFIGURED, Lifecycle::Customizing);
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
        let inputs = (
            "feature",
            name,
            digest::hex(&body),
            &ct.bootstrap_ca_url,
            &ct.nvidia,
        );
        let row = Row::new(format!("feature:{name}"), Lifecycle::Customizing, &inputs);
        let feature = Feature {
            name: name.clone(),
            script,
            step: row.name().to_string(),
            digest: row.digest().to_string(),
        };
        let probe_feature = feature.clone();
        t.push(row.probe_act(
            move |cx, at| probe_feature.ran(cx, at),
            move |cx, at| feature.run(cx, at),
        ));
    }
    Ok(())
}

/// One feature script and the digest its marker must hold.
#[derive(Clone)]
struct Feature {
    name: String,
    script: PathBuf,
    step: String,
    digest: String,
}

impl Feature {
    /// Its marker in the guest holds this digest.
    fn ran(&self, cx: &CtCx, _: &Attempt<'_>) -> Result<bool, StepError> {
        scripts::marker_matches(cx, &self.step, &self.digest)
    }

    fn run(&self, cx: &CtCx, _: &mut Attempt<'_>) -> Result<(), StepError> {
        scripts::run_feature(cx, &self.name, &self.script, &self.digest)
    }
}

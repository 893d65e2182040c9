//! `completed`: the application script, the checks (inside the guest and on the host), the
//! template snapshot clones start from, `final-form` (lifecycle snapshots), and the conversion into
//! a template where the backend has templates. Checks chain every step before them, so they run
//! again after any change.

use super::{snapshot, CtCx, Seen};
use crate::backend::Change;
use crate::config::common::HostCheck;
use crate::config::validate;
use crate::exec::Cmd;
use crate::jobs::guest::script_step::script_step;
use crate::jobs::guest::scripts::{self, Script};
use crate::jobs::{Attempt, Lifecycle, Row, StepError, Table, Unbuildable};
use std::path::Path;

pub fn steps(t: &mut Table<Lifecycle, CtCx>, cx: &CtCx) -> Result<(), Unbuildable> {
    let ct = &cx.ct;
    let fleet = &cx.session.fleet;
    if let Some(app) = &ct.application_script {
        let script = validate::resolve(fleet, app);
        let body = std::fs::read(&script).map_err(|e| {
            Unbuildable::config(format!("application script {}: {e}", script.display()))
        })?;
        // Upstream passed the CTID as its argument.
        let args = vec![ct.base.id.to_string()];
        let step = "application_script";
        let script = Script::new(ct, &ct.base, step, step, body, args).upstream(fleet, app);
        script_step(t, script, Lifecycle::Completed);
    }
    if let Some(hc) = &ct.health_check {
        let row = Row::new(
            "health_check",
            Lifecycle::Completed,
            &("health", &hc.command, t.chain()),
        );
        let hc = hc.clone();
        t.push(
            row.check()
                .probe_act(never, move |cx, _| scripts::health_check(cx, &hc)),
        );
    }
    for hc in &ct.health_checks {
        let row = Row::new(
            format!("host_check:{}", hc.name),
            Lifecycle::Completed,
            &("host_check", hc, t.chain()),
        );
        let check = (hc.clone(), validate::resolve(fleet, &hc.script));
        t.push(
            row.check()
                .probe_act(never, move |cx, _| host_check(cx, &check.0, &check.1)),
        );
    }
    if let Some(name) = &ct.base.template_snapshot_name {
        snapshot::push_if_possible(t, cx, name, Lifecycle::Completed);
    }
    let final_form_named = ct.base.template_snapshot_name.as_deref() == Some(snapshot::FINAL_FORM);
    if ct.enable_lifecycle_snapshots && !final_form_named {
        snapshot::push_if_possible(t, cx, snapshot::FINAL_FORM, Lifecycle::Completed);
    }
    template(t, cx);
    Ok(())
}

/// `is_template`: converted after the last snapshot, where the backend has templates.
fn template(t: &mut Table<Lifecycle, CtCx>, cx: &CtCx) {
    if !cx.ct.base.is_template {
        return;
    }
    if !cx.backend().capabilities().templates {
        t.warn(
            "is_template: plain LXC has no template conversion; the container stays a container",
        );
        return;
    }
    let row = Row::new("template", Lifecycle::Completed, &("template", t.chain()));
    t.push(
        row.probe_act(is_template, make_template)
            .live(still_template),
    );
}

fn still_template(_: &CtCx, seen: &Seen) -> Result<Vec<Change>, StepError> {
    Ok(match seen.live.template {
        true => Vec::new(),
        false => vec![Change::new("template", Some("0".into()), Some("1".into()))],
    })
}

/// Checks are run, never remembered.
fn never(_: &CtCx, _: &Attempt<'_>) -> Result<bool, StepError> {
    Ok(false)
}

/// Upstream's host-side `health_checks`: a script on the host with the guest's id and name.
fn host_check(cx: &CtCx, check: &HostCheck, script: &Path) -> Result<(), StepError> {
    let mut argv = vec![script.display().to_string()];
    argv.extend(check.args.iter().cloned());
    let cmd = Cmd::probe(argv)
        .env("PHOENIX_CTID", cx.id().to_string())
        .env("PHOENIX_GUEST_NAME", &cx.ct.base.name)
        .timeout(cx.step_timeout);
    cx.runner().run(&cmd).map_err(|e| {
        StepError::new(format!("host check {:?} failed: {e}", check.name), e.tail())
    })?;
    Ok(())
}

fn is_template(cx: &CtCx, _: &Attempt<'_>) -> Result<bool, StepError> {
    Ok(cx.backend().is_template(cx.id())?)
}

fn make_template(cx: &CtCx, _: &mut Attempt<'_>) -> Result<(), StepError> {
    Ok(cx.backend().make_template(cx.id())?)
}

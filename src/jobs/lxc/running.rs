//! `running`: the container runs and reaches its gateway; for `exec_via: ssh`, Phoenix can reach
//! it over SSH with a pinned host key.

use super::{CtCx, Seen};
use crate::backend::{Change, RunState};
use crate::config::lxc::ExecVia;
use crate::jobs::guest::{self, network, ssh_access};
use crate::jobs::{Attempt, Lifecycle, Row, StepError, Table, Unbuildable};

pub fn steps(t: &mut Table<Lifecycle, CtCx>, cx: &CtCx) -> Result<(), Unbuildable> {
    let ct = &cx.ct;
    let address = ct.network.as_ref().map(|n| (n.ip, n.gw));
    t.push(
        Row::new("start", Lifecycle::Running, &("start", &address))
            .probe_act(runs_and_answers, start)
            .live(still_running),
    );
    if ct.exec_via == ExecVia::Ssh {
        let ip = ct.network.as_ref().map(|n| n.ip);
        ssh_access::push_step(t, &cx.session, &ct.ssh_user, ip, true)?;
    }
    Ok(())
}

fn runs_and_answers(cx: &CtCx, _: &Attempt<'_>) -> Result<bool, StepError> {
    Ok(cx.backend().state(cx.id())? == Some(RunState::Running) && network::answers(cx)?)
}

/// A guest found stopped runs again; a template is not expected to run.
fn still_running(_: &CtCx, seen: &Seen) -> Result<Vec<Change>, StepError> {
    Ok(guest::not_running(seen.live.template, seen.state))
}

fn start(cx: &CtCx, _: &mut Attempt<'_>) -> Result<(), StepError> {
    cx.backend().start(cx.id())?;
    if cx.runner().dry_run() || network::wait(cx)? {
        return Ok(());
    }
    let gw = network::gateway(&cx.ct)
        .map(|g| g.to_string())
        .unwrap_or_default();
    Err(StepError::new(
        format!(
            "guest {} started but its network does not answer (gateway {gw} unreachable from inside)",
            cx.id()
        ),
        "check the bridge's address and the guest's ip/gw",
    ))
}

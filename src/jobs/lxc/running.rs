//! `running`: the container runs and reaches its gateway; for `exec_via: ssh`, Phoenix can reach
//! it over SSH with a pinned host key.

use super::{CtCx, Seen};
use crate::backend::{Change, RunState};
use crate::config::lxc::ExecVia;
use crate::config::values::IpConfig;
use crate::jobs::guest::{network, ssh_access};
use crate::jobs::{Attempt, Lifecycle, Row, StepError, Table, Unbuildable};
use std::path::PathBuf;

pub fn steps(t: &mut Table<Lifecycle, CtCx>, cx: &CtCx) -> Result<(), Unbuildable> {
    let ct = &cx.ct;
    let address = ct.network.as_ref().map(|n| (n.ip, n.gw));
    t.push(
        Row::new("start", Lifecycle::Running, &("start", &address))
            .probe_act(runs_and_answers, start)
            .live(still_running),
    );
    if ct.exec_via == ExecVia::Ssh {
        let ssh = cx.session.guest_ssh.as_ref().ok_or_else(|| {
            Unbuildable::config("exec_via ssh needs Phoenix's guest key, and none is set up")
        })?;
        let Some(IpConfig::Static(cidr)) = ct.network.as_ref().map(|n| n.ip) else {
            return Err(Unbuildable::config("exec_via ssh needs a static ip"));
        };
        let access = Access {
            address: cidr.addr.to_string(),
            public_key: ssh.public_key.clone(),
            known_hosts: ssh.known_hosts.clone(),
        };
        let row = Row::new(
            "ssh_access",
            Lifecycle::Running,
            &("ssh_access", &ct.ssh_user, &ssh.public_key),
        );
        let probe_access = access.clone();
        t.push(row.probe_act(
            move |cx, _| probe_access.in_place(cx),
            move |cx, _| access.open(cx),
        ));
    }
    Ok(())
}

fn runs_and_answers(cx: &CtCx, _: &Attempt<'_>) -> Result<bool, StepError> {
    Ok(cx.backend().state(cx.id())? == Some(RunState::Running) && network::answers(cx)?)
}

/// A container found stopped (or frozen) runs again; a template is not expected to run.
fn still_running(_: &CtCx, seen: &Seen) -> Result<Vec<Change>, StepError> {
    if seen.live.template || seen.state == RunState::Running {
        return Ok(Vec::new());
    }
    let live = format!("{:?}", seen.state).to_lowercase();
    Ok(vec![Change::new(
        "state",
        Some(live),
        Some("running".into()),
    )])
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

/// SSH access to one guest address with Phoenix's key.
#[derive(Clone)]
struct Access {
    address: String,
    public_key: String,
    known_hosts: PathBuf,
}

impl Access {
    fn in_place(&self, cx: &CtCx) -> Result<bool, StepError> {
        ssh_access::in_place(cx, &self.address, &self.public_key, &self.known_hosts)
    }

    fn open(&self, cx: &CtCx) -> Result<(), StepError> {
        ssh_access::open(cx, &self.address, &self.public_key, &self.known_hosts)
    }
}

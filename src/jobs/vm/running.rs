//! `running`: the VM runs, its guest agent answers, and cloud-init is done (a reboot it asks for
//! made). A template runs only when it has features to run; it is sealed and converted after.

use super::{Seen, VmCx, VmJob};
use crate::backend::vm::Agent;
use crate::backend::{Change, RunState};
use crate::config::lxc::ExecVia;
use crate::exec::Cmd;
use crate::jobs::guest::{self, ssh_access};
use crate::jobs::{Attempt, Lifecycle, Row, StepError, Table, Unbuildable};
use std::time::{Duration, Instant};

/// How long the agent may take to answer after a start (TCG boots of a cloud image take ~60 s).
const AGENT_PATIENCE: Duration = Duration::from_secs(600);
/// How long cloud-init may take to finish.
const CLOUD_INIT_PATIENCE: Duration = Duration::from_secs(900);

pub fn steps(t: &mut Table<Lifecycle, VmCx>, cx: &VmCx) -> Result<(), Unbuildable> {
    if !VmJob::boots(&cx.vm) {
        return Ok(());
    }
    let address = cx.vm.network.as_ref().map(|n| (n.ip, n.gw));
    t.push(
        Row::new("start", Lifecycle::Running, &("start", &address))
            .probe_act(booted, |cx, _| boot(cx))
            .live(still_running),
    );
    if cx.vm.exec_via == ExecVia::Ssh {
        let ip = cx.vm.network.as_ref().map(|n| n.ip);
        // cloud-init authorized Phoenix's key for the user: only the host key is pinned.
        let user = super::exec::user(&cx.vm);
        ssh_access::push_step(t, &cx.session, &user, ip, false)?;
    }
    Ok(())
}

/// It runs, its agent answers, and cloud-init is done.
fn booted(cx: &VmCx, _: &Attempt<'_>) -> Result<bool, StepError> {
    let vms = cx.vms();
    if vms.vm_state(cx.id())? != Some(RunState::Running) || vms.vm_agent(cx.id())? != Agent::Answers
    {
        return Ok(false);
    }
    let out = vms.vm_exec(
        cx.id(),
        &Cmd::probe(["cloud-init", "status"]).timeout(Duration::from_secs(30)),
    )?;
    Ok(out.code == Some(127) || out.stdout_str().contains("status: done"))
}

/// A guest found stopped runs again; a template is not expected to run.
fn still_running(_: &VmCx, seen: &Seen) -> Result<Vec<Change>, StepError> {
    Ok(guest::not_running(seen.live.template, seen.state))
}

/// Starts the VM and waits until its scripts can run: the agent answers and cloud-init is done;
/// when cloud-init leaves `/run/reboot-required`, the VM is rebooted and waited for again.
pub fn boot(cx: &VmCx) -> Result<(), StepError> {
    let (vms, id) = (cx.vms(), cx.id());
    vms.vm_start(id)?;
    if cx.session.runner.dry_run() {
        return Ok(());
    }
    wait_agent(cx)?;
    wait_cloud_init(cx)?;
    let reboot = vms.vm_exec(id, &Cmd::probe(["test", "-e", "/run/reboot-required"]))?;
    if reboot.success() {
        tracing::info!(%id, "cloud-init asks for a reboot");
        vms.vm_reboot(id)?;
        wait_agent(cx)?;
        wait_cloud_init(cx)?;
    }
    Ok(())
}

/// Polls the agent until it answers; says at once when none is configured, and at the end
/// whether the VM still boots or has no agent installed.
fn wait_agent(cx: &VmCx) -> Result<(), StepError> {
    let (vms, id) = (cx.vms(), cx.id());
    let started = Instant::now();
    loop {
        match vms.vm_agent(id)? {
            Agent::Answers => return Ok(()),
            Agent::NotConfigured => {
                return Err(StepError::new(
                    format!("VM {id} has no guest agent configured, so Phoenix cannot reach inside it"),
                    format!("qm set {id} --agent enabled=1, with qemu-guest-agent installed in its image"),
                ))
            }
            Agent::VmStopped => {
                return Err(StepError::new(
                    format!("VM {id} stopped while it was booting"),
                    format!("its console: qm terminal {id}; its task log: the node's syslog"),
                ))
            }
            Agent::Silent if started.elapsed() > AGENT_PATIENCE => {
                return Err(StepError::new(
                    format!(
                        "the guest agent of VM {id} did not answer within {} s of its start: the VM is still booting, or its image lacks qemu-guest-agent",
                        AGENT_PATIENCE.as_secs()
                    ),
                    format!("watch the boot with qm terminal {id}; install qemu-guest-agent in the image"),
                ))
            }
            Agent::Silent => std::thread::sleep(Duration::from_secs(2)),
        }
    }
}

/// `cloud-init status --wait`: done (0), done with recoverable errors (2, said), or failed (1,
/// with its long status). An image without cloud-init has nothing to wait for.
fn wait_cloud_init(cx: &VmCx) -> Result<(), StepError> {
    let (vms, id) = (cx.vms(), cx.id());
    let wait = Cmd::probe(["cloud-init", "status", "--wait"]).timeout(CLOUD_INIT_PATIENCE);
    let out = vms.vm_exec(id, &wait)?;
    match out.code {
        Some(0 | 127) => Ok(()),
        Some(2) => {
            tracing::warn!(%id, "cloud-init finished with recoverable errors: {}", out.tail(5));
            Ok(())
        }
        None => Err(StepError::new(
            format!(
                "cloud-init of VM {id} did not finish within {} s",
                CLOUD_INIT_PATIENCE.as_secs()
            ),
            out.tail(20),
        )),
        Some(code) => {
            let long = vms.vm_exec(id, &Cmd::probe(["cloud-init", "status", "--long"]))?;
            Err(StepError::new(
                format!("cloud-init of VM {id} failed (status exit {code})"),
                format!("{}\n{}", long.stdout_str(), out.tail(10)),
            ))
        }
    }
}

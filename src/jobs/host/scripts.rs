//! The user's own host steps: `host_scripts` names scripts in `<config-dir>/host/`, each run on
//! the node as root (`PHOENIX_MODE=apply`) once per version of its body, after the built-in
//! steps. A script that exits 100 has made a change that takes effect at the next boot: the run
//! ends with `reboot-required` (exit 4) naming it, and the run after the node rebooted (another
//! boot) records it and goes on; `--reboot` reboots the node at once. A run before the reboot
//! runs nothing again. The wait is kept on the node (`<name>.pending`: the script's digest and the
//! boot it asked in), so nothing a run does elsewhere forgets it, and an edited script runs anew.

use super::{node, HostCx, HostState};
use crate::exec::Cmd;
use crate::jobs::{Attempt, Row, StepError, Table, Unbuildable};

/// The exit code by which a host script says that its change waits for a reboot.
pub const NEEDS_REBOOT: i32 = 100;
const RUN_DIR: &str = "/var/lib/phoenix/host/run";
const MARKER_DIR: &str = "/var/lib/phoenix/host/markers";
/// This boot of the node: the kernel's boot id and when PID 1 started (a container's reboot keeps
/// the host's kernel, not its PID 1).
const BOOT_IDENTITY: &str =
    "echo \"$(cat /proc/sys/kernel/random/boot_id)-$(cut -d' ' -f22 /proc/1/stat)\"";

pub fn steps(t: &mut Table<HostState, HostCx>, cx: &HostCx) -> Result<(), Unbuildable> {
    let dir = cx
        .session
        .fleet
        .dir
        .clone()
        .unwrap_or_default()
        .join("host");
    for name in &cx.setup.scripts {
        let path = dir.join(format!("{name}.sh"));
        let body = std::fs::read(&path).map_err(|e| {
            Unbuildable::config(format!("host script {name}: {}: {e}", path.display()))
        })?;
        let step = format!("host_script:{name}");
        let row = Row::new(&step, HostState::Completed, &("host_script", name, &body));
        let script = Script {
            name: name.clone(),
            body,
            digest: row.digest().to_string(),
        };
        let probe = script.clone();
        t.push(row.probe_act(
            move |cx, _| ran(cx, &probe),
            move |cx, at| run(cx, at, &script),
        ));
    }
    Ok(())
}

#[derive(Clone)]
struct Script {
    name: String,
    body: Vec<u8>,
    digest: String,
}

impl Script {
    fn marker(&self) -> String {
        format!("{MARKER_DIR}/{}.digest", self.name)
    }

    fn path(&self) -> String {
        format!("{RUN_DIR}/{}.sh", self.name)
    }

    fn pending(&self) -> String {
        format!("{MARKER_DIR}/{}.pending", self.name)
    }
}

fn ran(cx: &HostCx, s: &Script) -> Result<bool, StepError> {
    Ok(node::read(cx, &s.marker())?.is_some_and(|m| m.trim() == s.digest))
}

fn run(cx: &HostCx, at: &mut Attempt<'_>, s: &Script) -> Result<(), StepError> {
    if let Some(before) = asked_in(cx, s)? {
        if boot_identity(cx)? == before {
            return Err(waits(cx, s));
        }
        mark(cx, s)?;
        return node::act(cx, ["rm", "-f", &s.pending()]);
    }
    node::act(cx, ["mkdir", "-p", RUN_DIR, MARKER_DIR])?;
    node::write_bytes(cx, &s.path(), &s.body, 0o700)?;
    let cmd = Cmd::act([s.path()])
        .env("PHOENIX_MODE", "apply")
        .timeout(cx.step_timeout);
    let out = cx.session.runner.output(&cmd)?;
    match out.code {
        Some(0) => mark(cx, s),
        Some(NEEDS_REBOOT) => {
            let boot = boot_identity(cx)?;
            node::write(cx, &s.pending(), &format!("{} {boot}\n", s.digest), 0o600)?;
            // For the engine: no back-off before the run after the reboot.
            at.save(|i| i.awaiting_reboot = Some(boot))?;
            if cx.reboot {
                reboot(cx);
            }
            Err(waits(cx, s))
        }
        code => Err(StepError::new(
            format!("host script {} exited with {code:?}", s.name),
            out.tail(20),
        )),
    }
}

/// The boot in which this version of the script asked for a reboot, if it did.
fn asked_in(cx: &HostCx, s: &Script) -> Result<Option<String>, StepError> {
    let pending = node::read(cx, &s.pending())?.unwrap_or_default();
    Ok(match pending.trim().split_once(' ') {
        Some((digest, boot)) if digest == s.digest => Some(boot.to_string()),
        _ => None,
    })
}

fn waits(cx: &HostCx, s: &Script) -> StepError {
    let what = match cx.reboot {
        true => "the node is rebooting; run `phoenix setup` again once it is up",
        false => {
            "reboot the node (or run `phoenix setup --reboot`), then run `phoenix setup` again"
        }
    };
    StepError::reboot_required(format!(
        "reboot required: host script {} takes effect at the next boot: {what}",
        s.name
    ))
}

fn mark(cx: &HostCx, s: &Script) -> Result<(), StepError> {
    node::write(cx, &s.marker(), &format!("{}\n", s.digest), 0o600)
}

fn boot_identity(cx: &HostCx) -> Result<String, StepError> {
    let out = cx
        .session
        .runner
        .run(&Cmd::probe(["sh", "-c", BOOT_IDENTITY]))?;
    Ok(out.stdout_str().trim().to_string())
}

/// Asks the node to reboot; the connection may drop before the answer.
fn reboot(cx: &HostCx) {
    let cmd = Cmd::act(["systemctl", "reboot"]).timeout(std::time::Duration::from_secs(30));
    if let Err(e) = cx.session.runner.output(&cmd) {
        tracing::info!(target: "phoenix::setup", error = %e, "reboot asked; the connection ended");
    }
}

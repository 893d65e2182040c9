//! The user's own host steps: `host_scripts` names scripts in `<config-dir>/host/`, each run on
//! the node as root (`PHOENIX_MODE=apply`) once per version of its body, after the built-in
//! steps. A script that exits 100 has made a change that takes effect at the next boot: the run
//! ends with `reboot-required` (exit 4) naming it, and the run after the node rebooted (another
//! boot) records it and goes on; `--reboot` reboots the node at once. A run before the reboot
//! runs nothing again. The wait is kept on the node (`<name>.pending`: the script's digest and the
//! boot it asked in), so nothing a run does elsewhere forgets it, and an edited script runs anew.

use super::{node, reboot, HostCx, HostState};
use crate::exec::Cmd;
use crate::jobs::{Attempt, Row, StepError, Table, Unbuildable};

/// The exit code by which a host script says that its change waits for a reboot.
pub const NEEDS_REBOOT: i32 = 100;
const RUN_DIR: &str = "/var/lib/phoenix/host/run";
const MARKER_DIR: &str = "/var/lib/phoenix/host/markers";

pub fn steps(t: &mut Table<HostState, HostCx>, cx: &HostCx) -> Result<(), Unbuildable> {
    for name in &cx.setup.scripts {
        let body = read_script(cx, name, &format!("host script {name}"))?;
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
    let what = format!("host script {}", s.name);
    let wait = reboot::Wait::new(s.pending(), &s.digest);
    if let Some(before) = wait.asked_in(cx)? {
        if reboot::boot_identity(cx)? == before {
            return Err(reboot::waits(cx, &what));
        }
        mark(cx, s)?;
        return wait.forget(cx);
    }
    node::act(cx, ["mkdir", "-p", RUN_DIR, MARKER_DIR])?;
    node::write_bytes(cx, &s.path(), &s.body, 0o700)?;
    let cmd = Cmd::act([s.path()])
        .env("PHOENIX_MODE", "apply")
        .timeout(cx.step_timeout);
    let out = cx.session.runner.output(&cmd)?;
    match out.code {
        Some(0) => mark(cx, s),
        Some(NEEDS_REBOOT) => Err(wait.ask(cx, at, &what)?),
        code => Err(StepError::new(
            format!("host script {} exited with {code:?}", s.name),
            out.tail(20),
        )),
    }
}

fn mark(cx: &HostCx, s: &Script) -> Result<(), StepError> {
    node::write(cx, &s.marker(), &format!("{}\n", s.digest), 0o600)
}

/// `<config-dir>/host/<name>.sh`, read when the job is prepared; `what` names it in the error.
pub fn read_script(cx: &HostCx, name: &str, what: &str) -> Result<Vec<u8>, Unbuildable> {
    let dir = cx.session.fleet.dir.clone().unwrap_or_default();
    let path = dir.join("host").join(format!("{name}.sh"));
    std::fs::read(&path)
        .map_err(|e| Unbuildable::config(format!("{what}: {}: {e}", path.display())))
}

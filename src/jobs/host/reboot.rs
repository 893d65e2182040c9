//! Reboots as a state of the run. A step whose change takes effect at the next boot keeps a
//! wait on the node (a file holding what asked — a digest — and the boot it asked in): the run
//! ends with `reboot-required` (exit 4), a run in the same boot runs nothing again and says the
//! same, and the first run in another boot finds the wait over. `--reboot` reboots the node.

use super::{node, HostCx};
use crate::exec::Cmd;
use crate::jobs::{Attempt, StepError};

/// This boot of the node: the kernel's boot id and when PID 1 started (a container's reboot keeps
/// the host's kernel, not its PID 1).
const BOOT_IDENTITY: &str =
    "echo \"$(cat /proc/sys/kernel/random/boot_id)-$(cut -d' ' -f22 /proc/1/stat)\"";

/// A wait kept in `path` for the change named by `digest`.
pub struct Wait {
    path: String,
    digest: String,
}

impl Wait {
    pub fn new(path: String, digest: &str) -> Wait {
        Wait {
            path,
            digest: digest.to_string(),
        }
    }

    /// The boot in which this change asked for a reboot, if it did.
    pub fn asked_in(&self, cx: &HostCx) -> Result<Option<String>, StepError> {
        let pending = node::read(cx, &self.path)?.unwrap_or_default();
        Ok(match pending.trim().split_once(' ') {
            Some((digest, boot)) if digest == self.digest => Some(boot.to_string()),
            _ => None,
        })
    }

    /// Records the wait (and, for the engine, that no back-off applies before the next run),
    /// reboots when `--reboot` says so, and returns the step's `reboot-required` error.
    pub fn ask(
        &self,
        cx: &HostCx,
        at: &mut Attempt<'_>,
        what: &str,
    ) -> Result<StepError, StepError> {
        let boot = boot_identity(cx)?;
        if let Some(dir) = std::path::Path::new(&self.path).parent() {
            node::act(cx, ["mkdir", "-p", &dir.display().to_string()])?;
        }
        node::write(cx, &self.path, &format!("{} {boot}\n", self.digest), 0o600)?;
        at.save(|i| i.awaiting_reboot = Some(boot))?;
        if cx.reboot {
            reboot(cx);
        }
        Ok(waits(cx, what))
    }

    pub fn forget(&self, cx: &HostCx) -> Result<(), StepError> {
        node::act(cx, ["rm", "-f", &self.path])
    }
}

pub fn waits(cx: &HostCx, what: &str) -> StepError {
    let todo = match cx.reboot {
        true => "the node is rebooting; run `phoenix setup` again once it is up",
        false => {
            "reboot the node (or run `phoenix setup --reboot`), then run `phoenix setup` again"
        }
    };
    StepError::reboot_required(format!(
        "reboot required: {what} takes effect at the next boot: {todo}"
    ))
}

pub fn boot_identity(cx: &HostCx) -> Result<String, StepError> {
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

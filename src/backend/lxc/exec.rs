//! Commands and files inside a running container, through `lxc-attach` with a clean environment.

use super::LxcBackend;
use crate::backend::{guest_env, BackendError, Hypervisor, Result, RunState};
use crate::config::GuestId;
use crate::exec::{Cmd, Output};
use std::time::Duration;

impl LxcBackend {
    pub(super) fn attach(&self, id: GuestId, cmd: &Cmd) -> Result<Output> {
        if !(self.runner.dry_run() && cmd.mutating) && self.state(id)? != Some(RunState::Running) {
            return Err(BackendError::NotRunning(id));
        }
        let mut argv = self.lxc("lxc-attach", id);
        argv.push("--clear-env".into());
        for var in guest_env::assignments(&cmd.env) {
            argv.extend(["--set-var".into(), var]);
        }
        argv.push("--".into());
        argv.extend(cmd.argv.iter().cloned());
        Ok(self.runner.output(&cmd.wrapped(argv))?)
    }

    pub(super) fn push_file(&self, id: GuestId, data: &[u8], path: &str, mode: u32) -> Result<()> {
        // The script is constant; the path and mode travel as positional arguments. Written
        // beside and renamed into place: a script still running from the old file keeps it.
        let cmd = Cmd::act([
            "/bin/sh",
            "-c",
            "mkdir -p -- \"$(dirname -- \"$1\")\" && cat > \"$1.phoenix-tmp\" && chmod \"$2\" \"$1.phoenix-tmp\" && mv -f -- \"$1.phoenix-tmp\" \"$1\"",
            "sh",
            path,
            &format!("{mode:o}"),
        ])
        .stdin(data.to_vec())
        .timeout(Duration::from_secs(120));
        let out = self.attach(id, &cmd)?;
        if !out.success() {
            return Err(BackendError::Invalid(format!(
                "writing {path} in guest {id} failed: {}",
                out.tail(5)
            )));
        }
        Ok(())
    }
}

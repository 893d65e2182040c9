//! Commands and files inside a running container: `pct exec` through `env -i` (a clean
//! environment), and `pct push` of a file uploaded to the node first.

use super::ProxmoxBackend;
use crate::backend::{guest_env, BackendError, Hypervisor, Result, RunState};
use crate::config::GuestId;
use crate::exec::{Cmd, Output};
use std::path::{Path, PathBuf};

impl ProxmoxBackend {
    pub(super) fn pct_exec(&self, id: GuestId, cmd: &Cmd) -> Result<Output> {
        if !(self.runner.dry_run() && cmd.mutating) && self.state(id)? != Some(RunState::Running) {
            return Err(BackendError::NotRunning(id));
        }
        let mut argv = self.pct([
            "exec".into(),
            id.to_string(),
            "--".into(),
            "env".into(),
            "-i".into(),
        ]);
        argv.extend(guest_env::assignments(&cmd.env));
        argv.extend(cmd.argv.iter().cloned());
        Ok(self.runner.output(&cmd.wrapped(argv))?)
    }

    pub(super) fn pct_push(&self, id: GuestId, data: &[u8], path: &str, mode: u32) -> Result<()> {
        let tmp = PathBuf::from(format!(
            "/tmp/phoenix-push-{id}-{}",
            state_machine::now_ms()
        ));
        self.runner.put_file(&tmp, data, 0o600)?;
        let parent = Path::new(path)
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "/".into());
        let mkdir = self.pct_exec(id, &Cmd::act(["mkdir", "-p", &parent]))?;
        let result = if mkdir.success() {
            self.act(
                self.pct([
                    "push".into(),
                    id.to_string(),
                    tmp.display().to_string(),
                    path.to_string(),
                    "--perms".into(),
                    format!("{mode:o}"),
                ]),
                300,
            )
            .map(|_| ())
        } else {
            Err(BackendError::Invalid(format!(
                "mkdir {parent} in guest {id}: {}",
                mkdir.tail(3)
            )))
        };
        let _ = self
            .runner
            .output(&Cmd::act(["rm", "-f", &tmp.display().to_string()]));
        result
    }
}

//! How scripts reach a guest: through the hypervisor (`lxc-attach`, `pct exec`/`pct push`), or
//! over SSH to its address (`exec_via: ssh`), pushing files over SFTP. SSH to a guest checks its
//! host key against Phoenix's own known_hosts, where the `ssh_access` step pinned the key it read
//! through the hypervisor: no trust on first use.

use crate::backend::{BackendError, Hypervisor};
use crate::config::GuestId;
use crate::exec::ssh::SshRunner;
use crate::exec::{Cmd, Output, Runner, Stats};

pub trait GuestExec: Send + Sync {
    /// Runs `cmd` in the guest as root (or the SSH user) and returns its output.
    fn exec(&self, cmd: &Cmd) -> Result<Output, BackendError>;
    /// Writes a file in the guest.
    fn push(&self, data: &[u8], path: &str, mode: u32) -> Result<(), BackendError>;
}

pub struct ViaHypervisor<'a> {
    pub backend: &'a dyn Hypervisor,
    pub id: GuestId,
}

impl GuestExec for ViaHypervisor<'_> {
    fn exec(&self, cmd: &Cmd) -> Result<Output, BackendError> {
        self.backend.exec(self.id, cmd)
    }
    fn push(&self, data: &[u8], path: &str, mode: u32) -> Result<(), BackendError> {
        self.backend.push(self.id, data, path, mode)
    }
}

/// Commands over one SSH session to the guest; counted in the run's statistics.
pub struct ViaSsh<'a> {
    pub ssh: SshRunner,
    pub stats: &'a Stats,
}

impl GuestExec for ViaSsh<'_> {
    fn exec(&self, cmd: &Cmd) -> Result<Output, BackendError> {
        let out = self.ssh.output(cmd)?;
        self.stats.record(cmd, out.duration);
        Ok(out)
    }
    fn push(&self, data: &[u8], path: &str, mode: u32) -> Result<(), BackendError> {
        if let Some(parent) = std::path::Path::new(path).parent() {
            self.exec(&Cmd::act(["mkdir", "-p", &parent.display().to_string()]))?;
        }
        self.ssh.put_file(std::path::Path::new(path), data, mode)?;
        Ok(())
    }
}

/// Phoenix's SSH identity for guests and the known_hosts where their host keys are pinned.
#[derive(Debug, Clone)]
pub struct GuestSsh {
    pub identity: std::path::PathBuf,
    pub public_key: String,
    pub known_hosts: std::path::PathBuf,
}

impl GuestSsh {
    /// In `state_dir`: `guest_id_ed25519` (made with ssh-keygen when missing, unless `identity`
    /// names another key) and `guest_known_hosts`.
    pub fn prepare(
        state_dir: &std::path::Path,
        identity: Option<&std::path::Path>,
    ) -> Result<GuestSsh, String> {
        let identity = identity
            .map(std::path::Path::to_path_buf)
            .unwrap_or_else(|| state_dir.join("guest_id_ed25519"));
        if !identity.exists() {
            std::fs::create_dir_all(state_dir)
                .map_err(|e| format!("{}: {e}", state_dir.display()))?;
            let out = std::process::Command::new("ssh-keygen")
                .args([
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "phoenix-guest-access",
                    "-f",
                ])
                .arg(&identity)
                .output()
                .map_err(|e| {
                    format!(
                        "ssh-keygen (openssh-client) is needed to make {}: {e}",
                        identity.display()
                    )
                })?;
            if !out.status.success() {
                return Err(format!(
                    "ssh-keygen failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        let pub_path = std::path::PathBuf::from(format!("{}.pub", identity.display()));
        let public_key = std::fs::read_to_string(&pub_path)
            .map_err(|e| format!("{}: {e}", pub_path.display()))?
            .trim()
            .to_string();
        Ok(GuestSsh {
            identity,
            public_key,
            known_hosts: state_dir.join("guest_known_hosts"),
        })
    }
}

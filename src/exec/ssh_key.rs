//! Phoenix's own SSH identity for guests reached over SSH (`exec_via: ssh`), and the known_hosts
//! file where their host keys are pinned (read through the hypervisor, never trusted on first use).

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
            state_machine::private_dir(state_dir)
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

//! How scripts reach a guest: through the hypervisor (`lxc-attach`, `pct exec`/`pct push`), or
//! over SSH to its address (`exec_via: ssh`), pushing files over SFTP. SSH to a guest checks its
//! host key against Phoenix's own known_hosts, where the `ssh_access` step pinned the key it read
//! through the hypervisor: no trust on first use.

use crate::backend::{BackendError, Hypervisor};
use crate::config::GuestId;
use crate::exec::ssh::SshRunner;
use crate::exec::{Cmd, Output, Runner};
use std::sync::Arc;

pub trait GuestExec: Send + Sync {
    /// Runs `cmd` in the guest as root (or the SSH user) and returns its output.
    fn exec(&self, cmd: &Cmd) -> Result<Output, BackendError>;
    /// Writes a file in the guest.
    fn push(&self, data: &[u8], path: &str, mode: u32) -> Result<(), BackendError>;
}

pub struct ViaHypervisor {
    pub backend: Arc<dyn Hypervisor>,
    pub id: GuestId,
}

impl GuestExec for ViaHypervisor {
    fn exec(&self, cmd: &Cmd) -> Result<Output, BackendError> {
        self.backend.exec(self.id, cmd)
    }
    fn push(&self, data: &[u8], path: &str, mode: u32) -> Result<(), BackendError> {
        self.backend.push(self.id, data, path, mode)
    }
}

/// Commands over one SSH session to the guest; counted in the run's statistics (those of
/// `counted`, the runner of the hypervisor's commands).
pub struct ViaSsh {
    pub ssh: SshRunner,
    pub counted: Arc<dyn Runner>,
}

impl GuestExec for ViaSsh {
    fn exec(&self, cmd: &Cmd) -> Result<Output, BackendError> {
        let out = self.ssh.output(cmd)?;
        self.counted.stats().record(cmd, out.duration);
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

/// Where a container's scripts run: over SSH to its static address (`exec_via: ssh`, once
/// Phoenix has a guest key), else through the hypervisor.
pub fn for_container(
    ct: &crate::config::lxc::Container,
    backend: &Arc<dyn Hypervisor>,
    runner: &Arc<dyn Runner>,
    guest_ssh: Option<&crate::exec::ssh_key::GuestSsh>,
) -> Box<dyn GuestExec> {
    use crate::config::lxc::ExecVia;
    use crate::config::values::IpConfig;
    let address = match (ct.exec_via, ct.network.as_ref().map(|n| n.ip)) {
        (ExecVia::Ssh, Some(IpConfig::Static(c))) => Some(c.addr),
        _ => None,
    };
    match (address, guest_ssh) {
        (Some(addr), Some(key)) => via_ssh(&ct.ssh_user, addr, key, runner),
        _ => Box::new(ViaHypervisor {
            backend: backend.clone(),
            id: ct.base.id,
        }),
    }
}

/// Commands over SSH as `user` to `address`, with Phoenix's guest key and pinned host keys.
pub fn via_ssh(
    user: &str,
    address: std::net::Ipv4Addr,
    key: &crate::exec::ssh_key::GuestSsh,
    runner: &Arc<dyn Runner>,
) -> Box<dyn GuestExec> {
    Box::new(ssh_session(user, address, key, runner))
}

/// Commands as root through `sudo -n` in an SSH session of `user` (a VM's cloud-init user, whom
/// cloud-init lets sudo), with a clean environment plus the command's own.
pub struct ViaSudo {
    pub ssh: ViaSsh,
}

impl GuestExec for ViaSudo {
    fn exec(&self, cmd: &Cmd) -> Result<Output, BackendError> {
        let mut argv: Vec<String> = ["sudo", "-n", "env", "-i"].map(String::from).to_vec();
        argv.extend(crate::backend::guest_env::assignments(&cmd.env));
        argv.extend(cmd.argv.iter().cloned());
        self.ssh.exec(&cmd.wrapped(argv))
    }

    /// Uploaded as the user into `/tmp`, then moved into place as root.
    fn push(&self, data: &[u8], path: &str, mode: u32) -> Result<(), BackendError> {
        let tmp = format!("/tmp/phoenix-push-{}", state_machine::now_ms());
        self.ssh.push(data, &tmp, 0o600)?;
        let script = r#"mkdir -p "$(dirname "$2")" && install -m "$3" "$1" "$2"; rc=$?; rm -f "$1"; exit $rc"#;
        let mode = format!("{mode:o}");
        let out = self.exec(&Cmd::act([
            "/bin/sh", "-c", script, "sh", &tmp, path, &mode,
        ]))?;
        match out.skipped || out.success() {
            true => Ok(()),
            false => Err(BackendError::Invalid(format!(
                "writing {path} as root (sudo): {}",
                out.tail(3).trim()
            ))),
        }
    }
}

/// One SSH session as `user` to `address`.
pub fn ssh_session(
    user: &str,
    address: std::net::Ipv4Addr,
    key: &crate::exec::ssh_key::GuestSsh,
    runner: &Arc<dyn Runner>,
) -> ViaSsh {
    use crate::exec::ssh::{SshOptions, Target};
    let target = Target {
        user: user.to_string(),
        host: address.to_string(),
        port: 22,
    };
    let opts = SshOptions {
        identity: Some(key.identity.clone()),
        known_hosts: key.known_hosts.clone(),
        accept_new_host_keys: false,
        ..SshOptions::default()
    };
    ViaSsh {
        ssh: SshRunner::new(target, opts, runner.dry_run()),
        counted: runner.clone(),
    }
}

//! Where a VM's scripts run: through the guest agent (`qm guest exec`, with the guest's own exit
//! code), as upstream ran them, or over SSH (`exec_via: ssh`).

use crate::backend::{BackendError, Hypervisor};
use crate::config::lxc::ExecVia;
use crate::config::values::IpConfig;
use crate::config::vm::Vm;
use crate::config::GuestId;
use crate::exec::Runner;
use crate::exec::{Cmd, Output};
use crate::jobs::guest::exec::{ssh_session, ViaSudo};
use crate::jobs::guest::GuestExec;
use crate::session::Session;
use std::sync::Arc;

pub struct ViaAgent {
    backend: Arc<dyn Hypervisor>,
    id: GuestId,
}

impl ViaAgent {
    fn vms(&self) -> Result<&dyn crate::backend::vm::Vms, BackendError> {
        self.backend.vms().ok_or_else(|| {
            BackendError::Invalid(format!("the {} backend has no VMs", self.backend.kind()))
        })
    }
}

impl GuestExec for ViaAgent {
    fn exec(&self, cmd: &Cmd) -> Result<Output, BackendError> {
        self.vms()?.vm_exec(self.id, cmd)
    }

    fn push(&self, data: &[u8], path: &str, mode: u32) -> Result<(), BackendError> {
        self.vms()?.vm_push(self.id, data, path, mode)
    }
}

/// The guest agent's way in.
pub fn via_agent(vm: &Vm, session: &Session) -> ViaAgent {
    ViaAgent {
        backend: session.backend.clone(),
        id: vm.base.id,
    }
}

/// Where a VM's scripts run: over SSH to its static address as its cloud-init user, as root
/// through `sudo` (`exec_via: ssh`, once the `ssh_access` step pinned its host key), else through
/// the guest agent.
pub fn for_vm(vm: &Vm, session: &Session, runner: &Arc<dyn Runner>) -> Box<dyn GuestExec> {
    let address = match (vm.exec_via, vm.network.as_ref().map(|n| n.ip)) {
        (ExecVia::Ssh, Some(IpConfig::Static(c))) => Some(c.addr),
        _ => None,
    };
    match (address, session.guest_ssh.as_ref()) {
        (Some(addr), Some(key)) => Box::new(ViaSudo {
            ssh: ssh_session(&user(vm), addr, key, runner),
        }),
        _ => Box::new(via_agent(vm, session)),
    }
}

/// The cloud-init user.
pub fn user(vm: &Vm) -> String {
    vm.username.clone().unwrap_or_else(|| DEFAULT_USER.into())
}

/// The cloud-init user when `user_config.username` gives none.
pub const DEFAULT_USER: &str = "phoenix";

//! VMs as a kind of job: job id `vm/<vmid>`, the same states as containers, in the same graph.
//!
//! The `qm` lifecycle (template from a cloud image, clones, cloud-init, the guest agent, features
//! through `qm guest exec`; UPSTREAM.md §3) is a [`JobKind`](super::JobKind) beside
//! [`lxc::ContainerJob`](super::lxc::ContainerJob), built from [`Vm`] the same way. No backend
//! builds VMs yet (`Capabilities::vms`): a VM is then reported on its own, before anything starts,
//! its dependents are blocked, and every guest that does not need it is still built.

use super::{Label, Unbuildable};
use crate::config::vm::Vm;
use crate::session::Session;

pub fn label(vm: &Vm) -> Label {
    Label::new("vm", vm.base.id, &vm.base.name)
}

/// Why `vm` cannot be built in this session.
pub fn unbuildable(session: &Session, vm: &Vm) -> Unbuildable {
    Unbuildable::backend(
        format!(
            "the {} backend cannot build VMs yet (VM {} {})",
            session.backend.kind(),
            vm.base.id,
            vm.base.name
        ),
        "its dependents are blocked; guests that do not need it are built",
    )
}

//! `configured`: every setting of the VM as the configuration asks, one step each, probed and
//! applied by the backend and compared with the config as found for drift. A cloud-init change
//! restarts a running VM (cloud-init applies it at the next boot, as a new instance), and so does
//! one the node keeps pending until the next start.

use super::VmCx;
use crate::backend::vm::{CloudInit, VmSetting};
use crate::config::values::IpConfig;
use crate::config::vm::Vm;
use crate::jobs::{Attempt, Lifecycle, Row, StepError, Table, Unbuildable};

pub fn steps(t: &mut Table<Lifecycle, VmCx>, cx: &VmCx) -> Result<(), Unbuildable> {
    for s in settings(cx)? {
        let row = Row::new(s.name(), Lifecycle::Configured, &s);
        let row = match s.may_restart() {
            true => row.needs_stopped(),
            false => row,
        };
        let (probe_s, apply_s) = (s.clone(), s.clone());
        t.push(
            row.probe_act(
                move |cx, at| in_place(cx, at, &probe_s),
                move |cx, _| Ok(cx.vms().vm_apply(cx.id(), &apply_s)?),
            )
            .live(move |cx, seen| Ok(cx.vms().vm_diff(&seen.live, &s)?)),
        );
    }
    Ok(())
}

/// The settings in upstream order (`apply_core_configurations`, then the network).
fn settings(cx: &VmCx) -> Result<Vec<VmSetting>, Unbuildable> {
    let vm = &cx.vm;
    let d = &cx.session.fleet.vm.defaults;
    let mut out = vec![
        VmSetting::Name(vm.base.name.clone()),
        VmSetting::Resources {
            cores: vm.cores.or(d.cores).unwrap_or(1),
            memory_mb: vm.memory_mb.or(d.memory_mb).unwrap_or(2048),
        },
    ];
    if let Some(gb) = vm.disk_size_gb.or(d.disk_size_gb) {
        out.push(VmSetting::DiskSize(gb));
    }
    out.push(VmSetting::CloudInit(cloud_init(cx, vm)?));
    out.push(VmSetting::Startup {
        onboot: vm.base.start_at_boot,
        order: vm.base.boot_order,
        delay: vm.base.boot_delay,
    });
    if !vm.qm_options.is_empty() {
        out.push(VmSetting::Options(vm.qm_options.clone()));
    }
    // Only a configured `firewall` block is converged (removing the block leaves the rules).
    if let Some(f) = &vm.base.firewall {
        out.push(VmSetting::Firewall {
            enabled: f.enabled,
            rules: f.rules.clone(),
        });
    }
    Ok(out)
}

/// The user with Phoenix's guest key and the configured ones; the address, the configured
/// resolver and search domain (else the fleet's domain).
fn cloud_init(cx: &VmCx, vm: &Vm) -> Result<CloudInit, Unbuildable> {
    let mut ssh_keys: Vec<String> = cx
        .session
        .guest_ssh
        .iter()
        .map(|k| k.public_key.trim().to_string())
        .collect();
    ssh_keys.extend(vm.ssh_keys.iter().cloned());
    let net = vm.network.as_ref();
    Ok(CloudInit {
        user: Some(super::exec::user(vm)),
        ssh_keys,
        ip: net.map_or(IpConfig::Dhcp, |n| n.ip),
        gw: net.and_then(|n| n.gw),
        nameservers: net.map(|n| n.nameservers.clone()).unwrap_or_default(),
        searchdomain: net
            .and_then(|n| n.searchdomain.clone())
            .or_else(|| cx.session.fleet.hypervisor.domain_name.clone()),
        upgrade: vm.package_upgrade,
    })
}

fn in_place(cx: &VmCx, _: &Attempt<'_>, s: &VmSetting) -> Result<bool, StepError> {
    let Some(live) = cx.vms().vm_inspect(cx.id())? else {
        return Ok(false);
    };
    Ok(cx.vms().vm_diff(&live, s)?.is_empty())
}

//! `configured`: every setting of the container as the configuration asks, one step each. A
//! setting's step probes the backend for it and applies it when it differs, and its live check
//! compares it with the config as found; settings that only
//! take effect at a start (`Setting::needs_restart`) restart a running container.

use super::CtCx;
use crate::backend::owner::Ids;
use crate::backend::{Nic, Setting};
use crate::config::lxc::Container;
use crate::config::Mac;
use crate::jobs::{Attempt, Lifecycle, Row, StepError, Table};

pub fn steps(t: &mut Table<Lifecycle, CtCx>, cx: &CtCx) {
    let caps = cx.backend().capabilities();
    let ct = &cx.ct;
    let mut settings = settings(ct);
    // What only some backends can do (Proxmox: firewall rules, disk size). Only a configured
    // `firewall` block is converged (removing the block leaves the rules).
    match (&ct.base.firewall, caps.firewall) {
        (Some(f), true) => settings.push(Setting::Firewall {
            enabled: f.enabled,
            rules: f.rules.clone(),
        }),
        (Some(f), false) if f.enabled => {
            t.warn("firewall rules are applied by the proxmox backend only; not applied here")
        }
        _ => {}
    }
    match (ct.storage_size_gb, caps.resize_rootfs) {
        (Some(gb), true) => settings.push(Setting::RootfsSize(gb)),
        (Some(_), false) => {
            t.warn("storage_size_gb is not enforced on plain LXC dir/overlay storage")
        }
        (None, _) => {}
    }
    for s in settings {
        let row = Row::new(s.name(), Lifecycle::Configured, &s);
        let row = if s.needs_restart() {
            row.needs_stopped()
        } else {
            row
        };
        let (probe_s, apply_s) = (s.clone(), s.clone());
        t.push(
            row.probe_act(
                move |cx, at| in_place(cx, at, &probe_s),
                move |cx, at| apply(cx, at, &apply_s),
            )
            .live(move |cx, seen| Ok(cx.backend().diff(&seen.live, &s)?)),
        );
    }
}

/// The settings every backend applies, in upstream order.
fn settings(ct: &Container) -> Vec<Setting> {
    let unprivileged = ct.unprivileged.unwrap_or(false);
    vec![
        Setting::Hostname(ct.base.name.clone()),
        Setting::Resources {
            memory_mb: ct.memory_mb,
            swap_mb: ct.swap_mb.unwrap_or(0),
            cores: ct.cores,
        },
        Setting::Network {
            nics: nics(ct),
            nameservers: ct
                .network
                .as_ref()
                .map(|n| n.nameservers.clone())
                .unwrap_or_default(),
        },
        Setting::Startup {
            onboot: ct.base.start_at_boot,
            order: ct.base.boot_order,
            delay: ct.base.boot_delay,
        },
        Setting::Security {
            apparmor_profile: ct.apparmor_profile.clone(),
            nesting: ct.apparmor_manages_nesting,
            features: ct.pct_options.clone(),
        },
        Setting::RawOptions(ct.lxc_options.clone()),
        Setting::Gpus(ct.gpus.clone()),
        Setting::IdMaps {
            unprivileged,
            maps: ct.id_maps.clone(),
        },
        Setting::Mounts {
            binds: ct.mount_points.clone(),
            volumes: ct.volumes.clone(),
            ids: Ids {
                unprivileged,
                maps: ct.id_maps.clone(),
            },
        },
    ]
}

/// net0 and net1 as configured, each with a fixed MAC.
fn nics(ct: &Container) -> Vec<Nic> {
    let firewall = ct.base.firewall.as_ref().is_some_and(|f| f.enabled);
    [&ct.network, &ct.network_secondary]
        .into_iter()
        .enumerate()
        .filter_map(|(index, net)| {
            let n = net.as_ref()?;
            let hwaddr = if index == 0 {
                ct.effective_mac()
            } else {
                n.hwaddr.unwrap_or_else(|| secondary_mac(ct))
            };
            Some(Nic {
                index: index as u8,
                name: n.name.clone(),
                bridge: n.bridge.clone(),
                ip: n.ip,
                gw: n.gw,
                hwaddr,
                firewall,
            })
        })
        .collect()
}

/// net1's MAC when none is given: net0's with the last bit of the first free byte flipped.
fn secondary_mac(ct: &Container) -> Mac {
    let mut m = ct.effective_mac();
    m.0[1] ^= 0x01;
    m
}

fn in_place(cx: &CtCx, _: &Attempt<'_>, s: &Setting) -> Result<bool, StepError> {
    Ok(cx.backend().probe(cx.id(), s)?)
}

fn apply(cx: &CtCx, _: &mut Attempt<'_>, s: &Setting) -> Result<(), StepError> {
    cx.backend().apply(cx.id(), s)?;
    Ok(())
}

//! The container lifecycle, in upstream order (DESIGN.md), as a table built from the config.
//!
//! | state | steps |
//! |---|---|
//! | created | `create` (from `template`, or a clone of the parent's `template_snapshot_name`) |
//! | configured | `hostname`, `resources`, `network`, `startup`, `security`, `lxc_options`, `gpu`, `idmap`, `mounts` |
//! | running | `start` (and the network answers) |
//! | customizing | `snapshot:pre-configured` (lifecycle snapshots), `feature:<name>` per feature |
//! | completed | `application_script`, `health_check`, `host_check:<name>`, `snapshot:<template_snapshot_name>`, `snapshot:final-form`, `template` (`is_template`, backends with templates) |
//!
//! Backends that can also get `firewall` and `rootfs_size` in the configured state (Proxmox).

use super::{Source, Step, StepKind};
use crate::backend::{Capabilities, Nic, Setting};
use crate::config::lxc::Container;
use crate::config::{validate, Fleet, GuestRef};
use crate::digest;
use crate::features::FeatureDirs;
use state_machine::Lifecycle;

const PRE_CONFIGURED: &str = "pre-configured";
const FINAL_FORM: &str = "final-form";

/// The steps of `ct`, and warnings for what the backend cannot do.
pub fn steps(
    ct: &Container,
    fleet: &Fleet,
    caps: Capabilities,
    features: &FeatureDirs,
    guest_ssh: Option<&super::guest::GuestSsh>,
) -> Result<(Vec<Step>, Vec<String>), String> {
    let mut out: Vec<Step> = Vec::new();
    let mut warnings = Vec::new();
    let push = |out: &mut Vec<Step>,
                name: String,
                state: Lifecycle,
                digest: String,
                kind: StepKind,
                mutates: bool| {
        out.push(Step {
            name,
            state,
            digest,
            kind,
            mutates,
        });
    };

    let source = match (ct.clone_from, &ct.template) {
        (Some(parent), _) => {
            let snapshot = match fleet.guest(parent) {
                Some(GuestRef::Ct(p)) => p.template_snapshot_name.clone(),
                _ => None,
            }
            .ok_or_else(|| {
                format!(
                    "clone source {parent} of {} has no template_snapshot_name",
                    ct.id
                )
            })?;
            Source::Clone { parent, snapshot }
        }
        (None, Some(t)) => Source::Template(validate::resolve(fleet, t)),
        (None, None) => {
            return Err(format!(
                "container {} has neither template nor clone_from_ctid",
                ct.id
            ))
        }
    };
    push(
        &mut out,
        "create".into(),
        Lifecycle::Created,
        digest::of(&("create", &source)),
        StepKind::Create(source),
        true,
    );

    let unprivileged = ct.unprivileged.unwrap_or(false);
    let mut nics = Vec::new();
    for (index, net) in [&ct.network, &ct.network_secondary].into_iter().enumerate() {
        if let Some(n) = net {
            let hwaddr = if index == 0 {
                ct.effective_mac()
            } else {
                n.hwaddr.unwrap_or_else(|| secondary_mac(ct))
            };
            nics.push(Nic {
                index: index as u8,
                name: n.name.clone(),
                bridge: n.bridge.clone(),
                ip: n.ip,
                gw: n.gw,
                hwaddr,
                firewall: ct.firewall.as_ref().is_some_and(|f| f.enabled),
            });
        }
    }
    let settings = [
        Setting::Hostname(ct.name.clone()),
        Setting::Resources {
            memory_mb: ct.memory_mb,
            swap_mb: ct.swap_mb.unwrap_or(0),
            cores: ct.cores,
        },
        Setting::Network {
            nics,
            nameservers: ct
                .network
                .as_ref()
                .map(|n| n.nameservers.clone())
                .unwrap_or_default(),
        },
        Setting::Startup {
            onboot: ct.start_at_boot,
            order: ct.boot_order,
            delay: ct.boot_delay,
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
            unprivileged,
        },
    ];
    // What only some backends can do (Proxmox: firewall rules, disk size).
    let extra = [
        // Only a configured `firewall` block is converged (removing the block leaves the rules).
        (caps.firewall && ct.firewall.is_some()).then(|| Setting::Firewall {
            enabled: ct.firewall.as_ref().is_some_and(|f| f.enabled),
            rules: ct
                .firewall
                .as_ref()
                .map(|f| f.rules.clone())
                .unwrap_or_default(),
        }),
        ct.storage_size_gb
            .filter(|_| caps.resize_rootfs)
            .map(Setting::RootfsSize),
    ];
    for s in settings.into_iter().chain(extra.into_iter().flatten()) {
        push(
            &mut out,
            s.name().to_string(),
            Lifecycle::Configured,
            digest::of(&s),
            StepKind::Setting(s),
            true,
        );
    }
    if ct.firewall.as_ref().is_some_and(|f| f.enabled) && !caps.firewall {
        warnings.push(
            "firewall rules are applied by the proxmox backend only; not applied here".to_string(),
        );
    }
    if ct.storage_size_gb.is_some() && !caps.resize_rootfs {
        warnings
            .push("storage_size_gb is not enforced on plain LXC dir/overlay storage".to_string());
    }

    push(
        &mut out,
        "start".into(),
        Lifecycle::Running,
        digest::of(&("start", &ct.network.as_ref().map(|n| (n.ip, n.gw)))),
        StepKind::Start,
        true,
    );

    if ct.exec_via == crate::config::lxc::ExecVia::Ssh {
        let ssh = guest_ssh.ok_or_else(|| {
            format!(
                "container {} uses exec_via ssh but no guest key is set up",
                ct.id
            )
        })?;
        let address = match ct.network.as_ref().map(|n| n.ip) {
            Some(crate::config::values::IpConfig::Static(c)) => c.addr.to_string(),
            _ => {
                return Err(format!(
                    "container {}: exec_via ssh needs a static ip",
                    ct.id
                ))
            }
        };
        let kind = StepKind::SshAccess {
            address,
            public_key: ssh.public_key.clone(),
            known_hosts: ssh.known_hosts.clone(),
        };
        let d = digest::of(&("ssh_access", &ct.ssh_user, &ssh.public_key));
        push(
            &mut out,
            "ssh_access".into(),
            Lifecycle::Running,
            d,
            kind,
            true,
        );
    }
    if ct.enable_lifecycle_snapshots {
        snapshot_step(&mut out, PRE_CONFIGURED, Lifecycle::Customizing);
    }
    for name in &ct.features {
        let script = features.find(name).ok_or_else(|| {
            format!(
                "feature {name:?} has no script {name}.sh in {}",
                features.describe()
            )
        })?;
        let body =
            std::fs::read(&script).map_err(|e| format!("cannot read {}: {e}", script.display()))?;
        let d = digest::of(&(
            "feature",
            name,
            digest::hex(&body),
            &ct.bootstrap_ca_url,
            &ct.nvidia,
        ));
        push(
            &mut out,
            format!("feature:{name}"),
            Lifecycle::Customizing,
            d,
            StepKind::Feature {
                name: name.clone(),
                script,
            },
            true,
        );
    }

    if let Some(app) = &ct.application_script {
        let script = validate::resolve(fleet, app);
        let body = std::fs::read(&script)
            .map_err(|e| format!("application script {}: {e}", script.display()))?;
        push(
            &mut out,
            "application_script".into(),
            Lifecycle::Completed,
            digest::of(&("app", digest::hex(&body))),
            StepKind::ApplicationScript(script),
            true,
        );
    }
    if let Some(hc) = &ct.health_check {
        let d = digest::of(&("health", &hc.command, chain(&out)));
        push(
            &mut out,
            "health_check".into(),
            Lifecycle::Completed,
            d,
            StepKind::HealthCheck(hc.clone()),
            false,
        );
    }
    for hc in &ct.health_checks {
        let script = validate::resolve(fleet, &hc.script);
        let d = digest::of(&("host_check", hc, chain(&out)));
        push(
            &mut out,
            format!("host_check:{}", hc.name),
            Lifecycle::Completed,
            d,
            StepKind::HostCheck {
                check: hc.clone(),
                script,
            },
            false,
        );
    }
    if let Some(name) = &ct.template_snapshot_name {
        snapshot_step(&mut out, name, Lifecycle::Completed);
    }
    if ct.enable_lifecycle_snapshots && ct.template_snapshot_name.as_deref() != Some(FINAL_FORM) {
        snapshot_step(&mut out, FINAL_FORM, Lifecycle::Completed);
    }
    if ct.is_template && caps.templates {
        out.push(Step {
            name: "template".into(),
            state: Lifecycle::Completed,
            digest: digest::of(&("template", chain(&out))),
            kind: StepKind::Template,
            mutates: true,
        });
    }
    if ct.is_template && !caps.templates {
        warnings.push(
            "is_template: plain LXC has no template conversion; the container stays a container"
                .to_string(),
        );
    }
    Ok((out, warnings))
}

/// A snapshot's digest chains every step before it: when the guest changes, the snapshot (and so
/// what later clones start from) is taken again.
fn snapshot_step(out: &mut Vec<Step>, name: &str, state: Lifecycle) {
    let d = digest::of(&("snapshot", name, chain(out)));
    out.push(Step {
        name: format!("snapshot:{name}"),
        state,
        digest: d,
        kind: StepKind::Snapshot(name.to_string()),
        mutates: true,
    });
}

fn chain(steps: &[Step]) -> String {
    digest::of(&steps.iter().map(|s| s.digest.as_str()).collect::<Vec<_>>())
}

/// net1's MAC when none is given: net0's with the last bit of the first free byte flipped.
fn secondary_mac(ct: &Container) -> crate::config::Mac {
    let mut m = ct.effective_mac();
    m.0[1] ^= 0x01;
    m
}

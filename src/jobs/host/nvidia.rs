//! `services`: the NVIDIA driver (`nvidia_driver`) and the GPU-init unit.
//!
//! `nvidia_driver` holds when the driver the node reports (`nvidia-smi`, else the loaded module's
//! `/sys/module/nvidia/version`) is the configured version. Otherwise the runfile is fetched once
//! into `/var/cache/phoenix/nvidia/` (checked against `runfile_sha256` when given), run as
//! upstream ran it (`--silent --no-x-check --no-nouveau-check --no-opengl-files
//! --accept-license --no-dkms`, nouveau blacklisted), and the step ends in `reboot-required`: the
//! run stops (exit 4) and the run after the node's reboot goes on from here. Phoenix reboots only
//! with `--reboot`.
//!
//! `gpu_init`: `nvidia-gpu-init.service`, a oneshot that runs `nvidia-smi` before
//! `pve-guests.service`, so the device nodes exist when guests start.

use super::{node, push, reboot, HostCx, HostState};
use crate::backend::Change;
use crate::config::host_system::NvidiaDriver;
use crate::exec::Cmd;
use crate::jobs::{Attempt, Row, StepError, Table};

const CACHE: &str = "/var/cache/phoenix/nvidia";
/// The reboot the installed driver waits for.
const PENDING: &str = "/var/lib/phoenix/host/markers/nvidia_driver.pending";
const BLACKLIST: &str = "/etc/modprobe.d/phoenix-blacklist-nouveau.conf";
const UNIT: &str = "/etc/systemd/system/nvidia-gpu-init.service";
const UNIT_TEXT: &str = "# Written by `phoenix setup`.\n[Unit]\nDescription=Initialize NVIDIA GPUs before guests start\nBefore=pve-guests.service\n\n[Service]\nType=oneshot\nExecStart=/usr/bin/nvidia-smi\nRemainAfterExit=yes\n\n[Install]\nWantedBy=multi-user.target\n";

pub fn steps(t: &mut Table<HostState, HostCx>, cx: &HostCx) {
    let Some(d) = cx.setup.nvidia.clone() else {
        return;
    };
    let row = Row::new("nvidia_driver", HostState::Services, &("nvidia_driver", &d));
    let want = d.clone();
    let step = row.probe_act(
        move |cx, _| Ok(installed(cx)?.as_deref() == Some(want.version.as_str())),
        move |cx, at| install(cx, at, &d),
    );
    let version = cx
        .setup
        .nvidia
        .as_ref()
        .map(|d| d.version.clone())
        .unwrap_or_default();
    t.push(step.live(move |cx, _| driver_differs(cx, &version)));
    let row = Row::new("gpu_init", HostState::Services, &("gpu_init", UNIT_TEXT));
    push(t, row, unit_differs, install_unit);
}

/// The driver version the node runs now, if any.
fn installed(cx: &HostCx) -> Result<Option<String>, StepError> {
    let smi = [
        "nvidia-smi",
        "--query-gpu=driver_version",
        "--format=csv,noheader",
    ];
    if let Some(v) = node::ask(cx, smi)?.filter(|v| !v.trim().is_empty()) {
        return Ok(Some(v.trim().to_string()));
    }
    Ok(node::read(cx, "/sys/module/nvidia/version")?.map(|v| v.trim().to_string()))
}

fn driver_differs(cx: &HostCx, version: &str) -> Result<Vec<Change>, StepError> {
    let live = installed(cx)?;
    Ok((live.as_deref() != Some(version))
        .then(|| Change::new("nvidia driver", live, Some(version.to_string())))
        .into_iter()
        .collect())
}

fn install(cx: &HostCx, at: &mut Attempt<'_>, d: &NvidiaDriver) -> Result<(), StepError> {
    let what = format!("the NVIDIA driver {}", d.version);
    let wait = reboot::Wait::new(PENDING.to_string(), &d.version);
    if let Some(before) = wait.asked_in(cx)? {
        if reboot::boot_identity(cx)? == before {
            return Err(reboot::waits(cx, &what));
        }
        wait.forget(cx)?;
        let live = installed(cx)?.unwrap_or_else(|| "no driver".into());
        return Err(StepError::new(
            format!("{what} was installed, and after the reboot the node reports {live}"),
            "see /var/log/nvidia-installer.log and `dmesg | grep -i nvidia` on the node; the next run installs it again",
        ));
    }
    let runfile = fetch(cx, d)?;
    node::act(cx, ["mkdir", "-p", "/etc/modprobe.d"])?;
    node::write(
        cx,
        BLACKLIST,
        "blacklist nouveau\noptions nouveau modeset=0\n",
        0o644,
    )?;
    node::update_initramfs(cx)?;
    let flags = [
        "--silent",
        "--no-x-check",
        "--no-nouveau-check",
        "--no-opengl-files",
        "--accept-license",
        "--no-dkms",
    ];
    let mut argv = vec!["sh", runfile.as_str()];
    argv.extend(flags);
    let out = cx
        .session
        .runner
        .output(&Cmd::act(argv).timeout(cx.step_timeout))?;
    if !out.success() {
        return Err(StepError::new(
            format!("the NVIDIA installer {runfile} failed"),
            format!(
                "{}\n(its log: /var/log/nvidia-installer.log on the node)",
                out.tail(20)
            ),
        ));
    }
    at.note(format!("{what} installed; it loads at the next boot"));
    Err(wait.ask(cx, at, &what)?)
}

/// The runfile on the node: a path as it is, a URL fetched once into the cache.
fn fetch(cx: &HostCx, d: &NvidiaDriver) -> Result<String, StepError> {
    let url = &d.runfile_url;
    let path = match url.strip_prefix("/") {
        Some(_) => url.clone(),
        None => {
            let name = url.rsplit('/').next().unwrap_or("nvidia.run");
            let path = format!("{CACHE}/{name}");
            if node::ask(cx, ["test", "-s", &path])?.is_none() {
                node::act(cx, ["mkdir", "-p", CACHE])?;
                let part = format!("{path}.part");
                node::act(cx, ["curl", "-fsSL", "--retry", "3", "-o", &part, url])?;
                node::act(cx, ["mv", &part, &path])?;
            }
            path
        }
    };
    if let Some(want) = &d.runfile_sha256 {
        let sum = node::ask(cx, ["sha256sum", &path])?.unwrap_or_default();
        if sum.split_whitespace().next() != Some(want.as_str()) {
            if path.starts_with(CACHE) {
                node::act(cx, ["rm", "-f", &path])?;
            }
            return Err(StepError::new(
                format!("{path} does not have the sha256 the file gives (runfile_sha256)"),
                "check runfile_url and runfile_sha256 (a download is removed, and fetched again by the next run)",
            ));
        }
    }
    Ok(path)
}

fn unit_differs(cx: &HostCx) -> Result<Vec<Change>, StepError> {
    let mut out: Vec<Change> = node::file_change(cx, UNIT, UNIT_TEXT)?
        .into_iter()
        .collect();
    let enabled = node::ask(cx, ["systemctl", "is-enabled", "nvidia-gpu-init.service"])?;
    if enabled.as_deref() != Some("enabled") {
        out.push(Change::new(
            "nvidia-gpu-init.service",
            enabled,
            Some("enabled".into()),
        ));
    }
    Ok(out)
}

fn install_unit(cx: &HostCx) -> Result<(), StepError> {
    node::write(cx, UNIT, UNIT_TEXT, 0o644)?;
    node::act(cx, ["systemctl", "daemon-reload"])?;
    node::act(cx, ["systemctl", "enable", "nvidia-gpu-init.service"])
}

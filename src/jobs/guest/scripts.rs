//! Scripts that run inside guests: features, the application script, health checks. Each is
//! pushed to `/var/lib/phoenix/run/`, run as root with a clean environment and documented inputs,
//! and (features, application script) leaves a marker holding its digest, so a changed script
//! runs again and an unchanged one does not.
//!
//! Inputs: `PHOENIX_CTID`, `PHOENIX_GUEST_ID`, `PHOENIX_GUEST_NAME`, `PHOENIX_FEATURE`,
//! `PHOENIX_CONFIG` (the guest's configuration as JSON), `PHOENIX_MODE=apply`, and where set
//! `PHOENIX_BOOTSTRAP_CA_URL` and `PHOENIX_NVIDIA_{DRIVER_VERSION,REPO_URL,RUNFILE_URL}`.

use crate::config::common::GuestHealthCheck;
use crate::config::lxc::Container;
use crate::exec::Cmd;
use crate::jobs::lxc::CtCx;
use crate::jobs::StepError;
use std::path::Path;
use std::time::Duration;

const RUN_DIR: &str = "/var/lib/phoenix/run";
const MARKER_DIR: &str = "/var/lib/phoenix/markers";
const CONFIG_PATH: &str = "/var/lib/phoenix/guest.json";

fn marker_path(step: &str) -> String {
    format!("{MARKER_DIR}/{}.digest", step.replace(':', "_"))
}

/// Whether the guest's marker for `step` holds `digest`.
pub fn marker_matches(cx: &CtCx, step: &str, digest: &str) -> Result<bool, StepError> {
    if cx.backend().state(cx.id())? != Some(crate::backend::RunState::Running) {
        return Ok(false);
    }
    let out = cx
        .exec
        .exec(&Cmd::probe(["cat", &marker_path(step)]).timeout(Duration::from_secs(20)))?;
    Ok(out.success() && out.stdout_str().trim() == digest)
}

fn env(ct: &Container, feature: &str) -> Vec<(String, String)> {
    let mut e = vec![
        ("PHOENIX_CTID".to_string(), ct.base.id.to_string()),
        ("PHOENIX_GUEST_ID".to_string(), ct.base.id.to_string()),
        ("PHOENIX_GUEST_NAME".to_string(), ct.base.name.clone()),
        ("PHOENIX_FEATURE".to_string(), feature.to_string()),
        ("PHOENIX_CONFIG".to_string(), CONFIG_PATH.to_string()),
        ("PHOENIX_MODE".to_string(), "apply".to_string()),
    ];
    if let Some(url) = &ct.bootstrap_ca_url {
        e.push(("PHOENIX_BOOTSTRAP_CA_URL".into(), url.clone()));
    }
    for (k, v) in [
        ("PHOENIX_NVIDIA_DRIVER_VERSION", &ct.nvidia.driver_version),
        ("PHOENIX_NVIDIA_REPO_URL", &ct.nvidia.repo_url),
        ("PHOENIX_NVIDIA_RUNFILE_URL", &ct.nvidia.runfile_url),
    ] {
        if let Some(v) = v {
            e.push((k.to_string(), v.clone()));
        }
    }
    e
}

/// Pushes the script and the guest's config, runs the script, and writes the marker.
fn run_script(
    cx: &CtCx,
    step: &str,
    label: &str,
    script: &Path,
    digest: &str,
    args: &[String],
) -> Result<(), StepError> {
    let body = std::fs::read(script)
        .map_err(|e| StepError::new(format!("cannot read {}: {e}", script.display()), ""))?;
    let config = serde_json::to_vec_pretty(&cx.ct).unwrap_or_default();
    cx.exec.push(&config, CONFIG_PATH, 0o600)?;
    let target = format!("{RUN_DIR}/{}.sh", step.replace(':', "_"));
    cx.exec.push(&body, &target, 0o700)?;
    let mut argv = vec![target];
    argv.extend(args.iter().cloned());
    let mut cmd = Cmd::act(argv).timeout(cx.step_timeout);
    cmd.env = env(&cx.ct, label);
    let out = cx.exec.exec(&cmd)?;
    if out.timed_out {
        return Err(StepError::new(
            format!("{label} timed out after {}s", cx.step_timeout.as_secs()),
            out.tail(40),
        ));
    }
    if !out.success() {
        let code = out
            .code
            .map_or("a signal".to_string(), |c| format!("code {c}"));
        return Err(StepError::new(
            format!("{label} ({}) exited with {code}", script.display()),
            out.tail(40),
        ));
    }
    cx.exec
        .push(format!("{digest}\n").as_bytes(), &marker_path(step), 0o644)?;
    Ok(())
}

pub fn run_feature(cx: &CtCx, name: &str, script: &Path, digest: &str) -> Result<(), StepError> {
    run_script(cx, &format!("feature:{name}"), name, script, digest, &[])
}

/// The application script gets the CTID as its argument, as upstream passed it.
pub fn run_application_script(cx: &CtCx, script: &Path, digest: &str) -> Result<(), StepError> {
    run_script(
        cx,
        "application_script",
        "application_script",
        script,
        digest,
        &[cx.id().to_string()],
    )
}

/// Runs the guest's health check until it passes, `retries` more times at most.
pub fn health_check(cx: &CtCx, check: &GuestHealthCheck) -> Result<(), StepError> {
    let mut last = None;
    for attempt in 0..=check.retries {
        if attempt > 0 {
            std::thread::sleep(Duration::from_secs(u64::from(check.interval_s)));
        }
        let cmd = Cmd::probe(["/bin/sh", "-c", &check.command]).timeout(Duration::from_secs(60));
        let out = cx.exec.exec(&cmd)?;
        if out.success() {
            return Ok(());
        }
        last = Some(out);
    }
    let tail = last.map(|o| o.tail(20)).unwrap_or_default();
    Err(StepError::new(
        format!(
            "health check `{}` failed {} time(s)",
            check.command,
            check.retries + 1
        ),
        tail,
    ))
}

//! Scripts that run inside guests: features, the application script, health checks. Each is
//! pushed to `/var/lib/phoenix/run/`, run as root with a clean environment and documented inputs,
//! and (features, application script) leaves a marker holding its digest, so a changed script
//! runs again and an unchanged one does not.
//!
//! Inputs: `PHOENIX_CTID`, `PHOENIX_GUEST_ID`, `PHOENIX_GUEST_NAME`, `PHOENIX_FEATURE`,
//! `PHOENIX_CONFIG` (the guest's configuration as JSON), `PHOENIX_MODE=apply`, and where set
//! `PHOENIX_BOOTSTRAP_CA_URL` and `PHOENIX_NVIDIA_{DRIVER_VERSION,REPO_URL,RUNFILE_URL}`.

use super::{Ctx, StepError};
use crate::config::common::GuestHealthCheck;
use crate::config::lxc::Container;
use crate::config::values::IpConfig;
use crate::exec::Cmd;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

const RUN_DIR: &str = "/var/lib/phoenix/run";
const MARKER_DIR: &str = "/var/lib/phoenix/markers";
const CONFIG_PATH: &str = "/var/lib/phoenix/guest.json";

fn marker_path(step: &str) -> String {
    format!("{MARKER_DIR}/{}.digest", step.replace(':', "_"))
}

/// Whether the guest's marker for `step` holds `digest`.
pub fn marker_matches(cx: &Ctx<'_>, step: &str, digest: &str) -> Result<bool, StepError> {
    if cx.backend.state(cx.ct.id)? != Some(crate::backend::RunState::Running) {
        return Ok(false);
    }
    let out = cx
        .guest
        .exec(&Cmd::probe(["cat", &marker_path(step)]).timeout(Duration::from_secs(20)))?;
    Ok(out.success() && out.stdout_str().trim() == digest)
}

fn env(ct: &Container, feature: &str) -> Vec<(String, String)> {
    let mut e = vec![
        ("PHOENIX_CTID".to_string(), ct.id.to_string()),
        ("PHOENIX_GUEST_ID".to_string(), ct.id.to_string()),
        ("PHOENIX_GUEST_NAME".to_string(), ct.name.clone()),
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
    cx: &Ctx<'_>,
    step: &str,
    label: &str,
    script: &Path,
    digest: &str,
    args: &[String],
) -> Result<(), StepError> {
    let body = std::fs::read(script)
        .map_err(|e| StepError::new(format!("cannot read {}: {e}", script.display()), ""))?;
    let config = serde_json::to_vec_pretty(cx.ct).unwrap_or_default();
    cx.guest.push(&config, CONFIG_PATH, 0o600)?;
    let target = format!("{RUN_DIR}/{}.sh", step.replace(':', "_"));
    cx.guest.push(&body, &target, 0o700)?;
    let mut argv = vec![target];
    argv.extend(args.iter().cloned());
    let mut cmd = Cmd::act(argv).timeout(cx.step_timeout);
    cmd.env = env(cx.ct, label);
    let out = cx.guest.exec(&cmd)?;
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
    cx.guest
        .push(format!("{digest}\n").as_bytes(), &marker_path(step), 0o644)?;
    Ok(())
}

pub fn run_feature(cx: &Ctx<'_>, name: &str, script: &Path, digest: &str) -> Result<(), StepError> {
    run_script(cx, &format!("feature:{name}"), name, script, digest, &[])
}

/// The application script gets the CTID as its argument, as upstream passed it.
pub fn run_application_script(cx: &Ctx<'_>, script: &Path, digest: &str) -> Result<(), StepError> {
    run_script(
        cx,
        "application_script",
        "application_script",
        script,
        digest,
        &[cx.ct.id.to_string()],
    )
}

/// Runs the guest's health check until it passes, `retries` more times at most.
pub fn health_check(cx: &Ctx<'_>, check: &GuestHealthCheck) -> Result<(), StepError> {
    let mut last = None;
    for attempt in 0..=check.retries {
        if attempt > 0 {
            std::thread::sleep(Duration::from_secs(u64::from(check.interval_s)));
        }
        let cmd = Cmd::probe(["/bin/sh", "-c", &check.command]).timeout(Duration::from_secs(60));
        let out = cx.guest.exec(&cmd)?;
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

/// The gateway of net0, when it has a static address.
pub fn gateway(ct: &Container) -> Option<Ipv4Addr> {
    let net = ct.network.as_ref()?;
    match net.ip {
        IpConfig::Static(_) => net.gw,
        IpConfig::Dhcp => None,
    }
}

const PING: &str = "(ping -c1 -W1 \"$1\" || busybox ping -c1 -W1 \"$1\") >/dev/null 2>&1";

/// Whether the guest reaches its gateway now (true when it has none to reach).
pub fn network_answers(cx: &Ctx<'_>) -> Result<bool, StepError> {
    let Some(gw) = gateway(cx.ct) else {
        return Ok(true);
    };
    let out = cx.backend.exec(
        cx.ct.id,
        &Cmd::probe(["/bin/sh", "-c", PING, "sh", &gw.to_string()])
            .timeout(Duration::from_secs(10)),
    )?;
    Ok(out.success())
}

/// Waits up to 15 s for the guest to reach its gateway.
pub fn wait_network(cx: &Ctx<'_>) -> Result<bool, StepError> {
    let Some(gw) = gateway(cx.ct) else {
        return Ok(true);
    };
    let script = format!(
        "i=0; while [ $i -lt 30 ]; do {PING} && exit 0; i=$((i+1)); sleep 0.5; done; exit 1"
    );
    let out = cx.backend.exec(
        cx.ct.id,
        &Cmd::probe(["/bin/sh", "-c", &script, "sh", &gw.to_string()])
            .timeout(Duration::from_secs(25)),
    )?;
    Ok(out.success())
}

/// Run through the hypervisor: authorizes Phoenix's key, makes sure sshd runs (host keys made if
/// missing), and prints the guest's ed25519 host key.
const SSH_ACCESS: &str = r#"set -e
mkdir -p /root/.ssh && chmod 700 /root/.ssh
touch /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys
grep -qxF "$1" /root/.ssh/authorized_keys || echo "$1" >> /root/.ssh/authorized_keys
[ -e /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -A >/dev/null
if ! (ss -ltn 2>/dev/null || netstat -ltn 2>/dev/null) | grep -q ':22 '; then
    systemctl enable --now ssh >/dev/null 2>&1 || systemctl enable --now sshd >/dev/null 2>&1 || { mkdir -p /run/sshd && /usr/sbin/sshd; }
fi
cat /etc/ssh/ssh_host_ed25519_key.pub"#;

/// The `known_hosts` line for `address` with the guest's host key (`type base64`).
fn pin_line(address: &str, host_key: &str) -> Option<String> {
    let mut parts = host_key.split_whitespace();
    Some(format!("{address} {} {}", parts.next()?, parts.next()?))
}

fn read_host_key(cx: &Ctx<'_>) -> Result<Option<String>, StepError> {
    let out = cx.backend.exec(
        cx.ct.id,
        &Cmd::probe(["cat", "/etc/ssh/ssh_host_ed25519_key.pub"]).timeout(Duration::from_secs(20)),
    )?;
    Ok(out.success().then(|| out.stdout_str().trim().to_string()))
}

/// Whether SSH access is in place: our key authorized, the pinned host key current.
pub fn ssh_access_in_place(
    cx: &Ctx<'_>,
    address: &str,
    public_key: &str,
    known_hosts: &Path,
) -> Result<bool, StepError> {
    if cx.backend.state(cx.ct.id)? != Some(crate::backend::RunState::Running) {
        return Ok(false);
    }
    let Some(key) = read_host_key(cx)? else {
        return Ok(false);
    };
    let pinned = std::fs::read_to_string(known_hosts).unwrap_or_default();
    let Some(line) = pin_line(address, &key) else {
        return Ok(false);
    };
    if !pinned.lines().any(|l| l == line) {
        return Ok(false);
    }
    let out = cx.backend.exec(
        cx.ct.id,
        &Cmd::probe(["grep", "-qxF", public_key, "/root/.ssh/authorized_keys"]),
    )?;
    Ok(out.success())
}

/// Opens the guest to SSH and pins its host key.
pub fn open_ssh_access(
    cx: &Ctx<'_>,
    address: &str,
    public_key: &str,
    known_hosts: &Path,
) -> Result<(), StepError> {
    let out = cx.backend.exec(
        cx.ct.id,
        &Cmd::act(["/bin/sh", "-c", SSH_ACCESS, "sh", public_key]).timeout(Duration::from_secs(60)),
    )?;
    if !out.success() {
        return Err(StepError::new(
            "could not open the guest to SSH (is openssh-server installed in it?)",
            out.tail(20),
        ));
    }
    if cx.runner.dry_run() {
        return Ok(());
    }
    let key = out
        .stdout_str()
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string();
    let line = pin_line(address, &key).ok_or_else(|| {
        StepError::new(
            format!("the guest printed no host key: {key:?}"),
            out.tail(5),
        )
    })?;
    let mut lines: Vec<String> = std::fs::read_to_string(known_hosts)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split_whitespace().next() != Some(address))
        .map(String::from)
        .collect();
    lines.push(line);
    if let Some(dir) = known_hosts.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| StepError::new(format!("{}: {e}", dir.display()), ""))?;
    }
    std::fs::write(known_hosts, lines.join("\n") + "\n")
        .map_err(|e| StepError::new(format!("{}: {e}", known_hosts.display()), ""))?;
    // sshd may take a moment to listen.
    for _ in 0..50 {
        if std::net::TcpStream::connect_timeout(
            &format!("{address}:22")
                .parse()
                .map_err(|e| StepError::new(format!("{address}: {e}"), ""))?,
            Duration::from_millis(200),
        )
        .is_ok()
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(StepError::new(
        format!("sshd in guest {} does not listen on {address}:22", cx.ct.id),
        "",
    ))
}

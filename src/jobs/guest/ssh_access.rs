//! Opening a guest to SSH (`exec_via: ssh`): Phoenix's key authorized for root (a container; a
//! VM's cloud-init user has it already), sshd running, and the guest's host key read through the
//! hypervisor (`pct exec`, the guest agent) and pinned in Phoenix's own known_hosts.

use super::InGuest;
use crate::config::values::IpConfig;
use crate::exec::Cmd;
use crate::jobs::{Lifecycle, Row, StepCx, StepError, Table, Unbuildable};
use crate::session::Session;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// Only the host key, for a guest whose user has Phoenix's key already.
const HOST_KEY: &str = "cat /etc/ssh/ssh_host_ed25519_key.pub";

/// SSH access to one guest address with Phoenix's key.
#[derive(Clone)]
pub struct Access {
    address: String,
    public_key: String,
    known_hosts: PathBuf,
    /// Whether Phoenix authorizes its key for root (else only the host key is pinned).
    authorize_root: bool,
}

/// The `ssh_access` step of a guest whose scripts run over SSH (as `user`) to its static address
/// `ip`; `authorize_root`: Phoenix's key is authorized for root first.
pub fn push_step<C: StepCx + InGuest + 'static>(
    t: &mut Table<Lifecycle, C>,
    session: &Session,
    user: &str,
    ip: Option<IpConfig>,
    authorize_root: bool,
) -> Result<(), Unbuildable> {
    let ssh = session.guest_ssh.as_ref().ok_or_else(|| {
        Unbuildable::config("exec_via ssh needs Phoenix's guest key, and none is set up")
    })?;
    let Some(IpConfig::Static(cidr)) = ip else {
        return Err(Unbuildable::config("exec_via ssh needs a static ip"));
    };
    let access = Access {
        address: cidr.addr.to_string(),
        public_key: ssh.public_key.clone(),
        known_hosts: ssh.known_hosts.clone(),
        authorize_root,
    };
    let row = Row::new(
        "ssh_access",
        Lifecycle::Running,
        &("ssh_access", user, &ssh.public_key),
    );
    let probe_access = access.clone();
    t.push(row.probe_act(
        move |cx: &C, _| in_place(cx, &probe_access),
        move |cx: &C, _| open(cx, &access),
    ));
    Ok(())
}

fn read_host_key(cx: &dyn InGuest) -> Result<Option<String>, StepError> {
    let out = cx.hypervisor().exec(
        &Cmd::probe(["cat", "/etc/ssh/ssh_host_ed25519_key.pub"]).timeout(Duration::from_secs(20)),
    )?;
    Ok(out.success().then(|| out.stdout_str().trim().to_string()))
}

/// Whether SSH access is in place: our key authorized, the pinned host key current.
fn in_place(cx: &dyn InGuest, access: &Access) -> Result<bool, StepError> {
    let (address, public_key, known_hosts) =
        (&access.address, &access.public_key, &access.known_hosts);
    if !cx.runs()? {
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
    if !access.authorize_root {
        return Ok(true);
    }
    let out = cx.hypervisor().exec(&Cmd::probe([
        "grep",
        "-qxF",
        public_key,
        "/root/.ssh/authorized_keys",
    ]))?;
    Ok(out.success())
}

/// Opens the guest to SSH and pins its host key.
fn open(cx: &dyn InGuest, access: &Access) -> Result<(), StepError> {
    let (address, public_key, known_hosts) = (
        access.address.as_str(),
        access.public_key.as_str(),
        access.known_hosts.as_path(),
    );
    let script = match access.authorize_root {
        true => SSH_ACCESS,
        false => HOST_KEY,
    };
    let out = cx.hypervisor().exec(
        &Cmd::act(["/bin/sh", "-c", script, "sh", public_key]).timeout(Duration::from_secs(60)),
    )?;
    if !out.success() {
        return Err(StepError::new(
            "could not open the guest to SSH (is openssh-server installed in it?)",
            out.tail(20),
        ));
    }
    if out.skipped {
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
    write_known_hosts(known_hosts, &lines)?;
    wait_listening(address)
}

fn write_known_hosts(known_hosts: &Path, lines: &[String]) -> Result<(), StepError> {
    if let Some(dir) = known_hosts.parent() {
        state_machine::private_dir(dir)
            .map_err(|e| StepError::new(format!("{}: {e}", dir.display()), ""))?;
    }
    let write = |text: String| -> std::io::Result<()> {
        use std::io::Write;
        state_machine::create_private(known_hosts)?.write_all(text.as_bytes())
    };
    write(lines.join("\n") + "\n")
        .map_err(|e| StepError::new(format!("{}: {e}", known_hosts.display()), ""))
}

/// Waits up to 15 s for sshd to listen on `address` (it may take a moment).
fn wait_listening(address: &str) -> Result<(), StepError> {
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
        format!("sshd in the guest does not listen on {address}:22"),
        "",
    ))
}

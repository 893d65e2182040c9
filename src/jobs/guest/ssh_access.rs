//! Opening a container to SSH (`exec_via: ssh`): Phoenix's key authorized, sshd running, and the
//! guest's host key read through the hypervisor and pinned in Phoenix's own known_hosts.

use crate::exec::Cmd;
use crate::jobs::lxc::CtCx;
use crate::jobs::StepError;
use std::path::Path;
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

fn read_host_key(cx: &CtCx) -> Result<Option<String>, StepError> {
    let out = cx.backend().exec(
        cx.id(),
        &Cmd::probe(["cat", "/etc/ssh/ssh_host_ed25519_key.pub"]).timeout(Duration::from_secs(20)),
    )?;
    Ok(out.success().then(|| out.stdout_str().trim().to_string()))
}

/// Whether SSH access is in place: our key authorized, the pinned host key current.
pub fn in_place(
    cx: &CtCx,
    address: &str,
    public_key: &str,
    known_hosts: &Path,
) -> Result<bool, StepError> {
    if cx.backend().state(cx.id())? != Some(crate::backend::RunState::Running) {
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
    let out = cx.backend().exec(
        cx.id(),
        &Cmd::probe(["grep", "-qxF", public_key, "/root/.ssh/authorized_keys"]),
    )?;
    Ok(out.success())
}

/// Opens the guest to SSH and pins its host key.
pub fn open(
    cx: &CtCx,
    address: &str,
    public_key: &str,
    known_hosts: &Path,
) -> Result<(), StepError> {
    let out = cx.backend().exec(
        cx.id(),
        &Cmd::act(["/bin/sh", "-c", SSH_ACCESS, "sh", public_key]).timeout(Duration::from_secs(60)),
    )?;
    if !out.success() {
        return Err(StepError::new(
            "could not open the guest to SSH (is openssh-server installed in it?)",
            out.tail(20),
        ));
    }
    if cx.runner().dry_run() {
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
        state_machine::private_dir(dir)
            .map_err(|e| StepError::new(format!("{}: {e}", dir.display()), ""))?;
    }
    let write = |text: String| -> std::io::Result<()> {
        use std::io::Write;
        state_machine::create_private(known_hosts)?.write_all(text.as_bytes())
    };
    write(lines.join("\n") + "\n")
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
        format!("sshd in guest {} does not listen on {address}:22", cx.id()),
        "",
    ))
}

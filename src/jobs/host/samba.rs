//! `services`: Samba. Each share is a step of its own (changing one share re-runs only its step):
//! Phoenix's block `samba share NAME` in `/etc/samba/smb.conf`, beside what the file already
//! held, and the shared directory (owned by `samba.user`, mode 0770). The Samba password of
//! `samba.user` (by reference, never the hard-coded one upstream wrote) is a step too: compared by
//! its NT hash ([`ntlm`]), set with `smbpasswd -s` on stdin.

use super::{node, ntlm, push_value, HostCx, HostState};
use crate::backend::Change;
use crate::config::host::{Samba, SambaShare};
use crate::config::secret::SecretRef;
use crate::exec::Cmd;
use crate::jobs::{Row, StepError, Table};

const CONF: &str = "/etc/samba/smb.conf";

pub fn steps(t: &mut Table<HostState, HostCx>, cx: &HostCx) {
    let Some(samba) = cx.setup.samba.clone() else {
        return;
    };
    if let (Some(user), Some(password)) = (samba.user.clone(), samba.password.clone()) {
        let row = Row::new(
            "samba_user",
            HostState::Services,
            &("samba_user", &user, &password),
        );
        push_value(
            t,
            row,
            (user, password),
            |cx, (user, password)| login_fails(cx, user, password),
            |cx, (user, password)| set_password(cx, user, password),
        );
    }
    for share in &samba.shares {
        let row = Row::new(
            format!("samba_share:{}", share.name),
            HostState::Services,
            &("samba_share", share, &samba.user),
        );
        push_value(
            t,
            row,
            (share.clone(), samba.clone()),
            |cx, (share, _)| share_differs(cx, share),
            |cx, (share, samba)| make_share(cx, share, samba),
        );
    }
}

fn section(share: &SambaShare) -> String {
    let mut out = format!("[{}]\n   path = {}\n", share.name, share.path);
    if !share.valid_users.is_empty() {
        out.push_str(&format!(
            "   valid users = {}\n",
            share.valid_users.join(" ")
        ));
    }
    for (k, v) in &share.options {
        out.push_str(&format!("   {k} = {v}\n"));
    }
    out
}

fn block(share: &SambaShare) -> String {
    format!("samba share {}", share.name)
}

fn share_differs(cx: &HostCx, share: &SambaShare) -> Result<Vec<Change>, StepError> {
    let current = node::read(cx, CONF)?;
    let now = current.as_deref().unwrap_or("");
    let want = node::with_block(CONF, now, &block(share), &section(share))?;
    let mut out = Vec::new();
    if current.as_deref() != Some(want.as_str()) {
        out.push(Change::new(
            format!("{CONF} [{}]", share.name),
            current,
            Some(want),
        ));
    }
    if node::ask(cx, ["test", "-d", &share.path])?.is_none() {
        out.push(Change::new(
            share.path.clone(),
            None,
            Some("a directory".into()),
        ));
    }
    Ok(out)
}

fn make_share(cx: &HostCx, share: &SambaShare, samba: &Samba) -> Result<(), StepError> {
    node::act(cx, ["mkdir", "-p", &share.path])?;
    if let Some(user) = &samba.user {
        node::act(cx, ["chown", &format!("{user}:"), &share.path])?;
    }
    node::act(cx, ["chmod", "0770", &share.path])?;
    let current = node::read(cx, CONF)?.unwrap_or_default();
    let want = node::with_block(CONF, &current, &block(share), &section(share))?;
    node::write(cx, CONF, &want, 0o644)?;
    node::act(cx, ["systemctl", "reload-or-restart", "smbd"])
}

/// What differs when Samba's NT hash of `user` is not that of the configured password (read with
/// `pdbedit -w`, whose output is never logged).
fn login_fails(cx: &HostCx, user: &str, password: &SecretRef) -> Result<Vec<Change>, StepError> {
    let secret = resolve(user, password)?;
    let cmd = Cmd::probe(["pdbedit", "-L", "-w", "-u", user]).secret_output();
    let out = cx.session.runner.output(&cmd)?;
    let live = out
        .success()
        .then(|| {
            out.stdout_str()
                .split(':')
                .nth(3)
                .map(str::to_ascii_uppercase)
        })
        .flatten();
    Ok(match live == Some(ntlm::nt_hash(secret.expose())) {
        true => Vec::new(),
        false => vec![Change::new(
            format!("Samba password of {user}"),
            live.map(|_| "another password".to_string()),
            Some("the configured one".into()),
        )],
    })
}

fn set_password(cx: &HostCx, user: &str, password: &SecretRef) -> Result<(), StepError> {
    if node::ask(cx, ["id", "-u", user])?.is_none() {
        return Err(StepError::new(
            format!("samba.user {user} is not a login on the node: add it to `users`"),
            "",
        ));
    }
    let secret = resolve(user, password)?;
    let twice = format!("{0}\n{0}\n", secret.expose());
    let cmd = Cmd::act(["smbpasswd", "-a", "-s", user])
        .stdin(twice)
        .secret_output();
    let out = cx.session.runner.output(&cmd)?;
    match out.success() {
        true => Ok(()),
        false => Err(StepError::new(
            format!("smbpasswd refused the password of {user}"),
            "",
        )),
    }
}

fn resolve(user: &str, password: &SecretRef) -> Result<crate::config::values::Secret, StepError> {
    password
        .resolve()
        .map_err(|e| StepError::new(format!("samba.password of {user}: {e}"), ""))
}

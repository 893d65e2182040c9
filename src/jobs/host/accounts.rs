//! `accounts`: each user of `users`, a login with a home, its password hash (by reference, given
//! to `chpasswd -e` on stdin), its SSH keys as the whole of its `authorized_keys`, and sudo through
//! a drop-in of Phoenix's (`/etc/sudoers.d/phoenix-<user>`; without a password when the user has
//! none).

use super::{node, push_value, HostCx, HostState};
use crate::backend::Change;
use crate::config::host::HostUser;
use crate::config::secret::SecretRef;
use crate::config::values::Secret;
use crate::exec::Cmd;
use crate::jobs::{Row, StepError, Table};

pub fn steps(t: &mut Table<HostState, HostCx>, cx: &HostCx) {
    for user in &cx.setup.users {
        let row = Row::new(
            format!("user:{}", user.name),
            HostState::Accounts,
            &("user", user),
        );
        push_value(t, row, user.clone(), differs, converge);
    }
}

/// Phoenix's sudoers drop-in for the user (sudo skips files whose name holds a `.`).
fn sudoers(user: &HostUser) -> String {
    format!("/etc/sudoers.d/phoenix-{}", user.name.replace('.', "_"))
}

fn sudo_line(user: &HostUser) -> String {
    let nopasswd = match user.password_hash {
        Some(_) => "",
        None => "NOPASSWD: ",
    };
    format!("{} ALL=(ALL:ALL) {nopasswd}ALL\n", user.name)
}

fn keys_text(user: &HostUser) -> String {
    user.ssh_keys.iter().map(|k| format!("{k}\n")).collect()
}

/// The user's home, `None` when there is no such user.
fn home(cx: &HostCx, user: &HostUser) -> Result<Option<String>, StepError> {
    let entry = node::ask(cx, ["getent", "passwd", &user.name])?;
    Ok(entry.and_then(|e| e.split(':').nth(5).map(String::from)))
}

fn differs(cx: &HostCx, user: &HostUser) -> Result<Vec<Change>, StepError> {
    let Some(home) = home(cx, user)? else {
        return Ok(vec![Change::new(
            format!("user {}", user.name),
            None,
            Some("exists".into()),
        )]);
    };
    let mut out = Vec::new();
    let keys_file = format!("{home}/.ssh/authorized_keys");
    let keys = node::read(cx, &keys_file)?;
    if !user.ssh_keys.is_empty() && keys.as_deref() != Some(keys_text(user).as_str()) {
        out.push(Change::new(keys_file, keys, Some(keys_text(user))));
    }
    let sudo = node::read(cx, &sudoers(user))?;
    let want = user.sudo.then(|| sudo_line(user));
    if sudo != want {
        out.push(Change::new(sudoers(user), sudo, want));
    }
    if let Some(hash) = &user.password_hash {
        let hash = resolve(user, hash)?;
        let live = shadow_hash(cx, user)?;
        if live.as_deref() != Some(hash.expose()) {
            // What differs is named, never shown.
            let was = live.map(|_| "another password".to_string());
            out.push(Change::new(
                format!("password of {}", user.name),
                was,
                Some("the configured one".into()),
            ));
        }
    }
    Ok(out)
}

/// The hash, refused when it could not be one line of `chpasswd -e`'s input.
fn resolve(user: &HostUser, hash: &SecretRef) -> Result<Secret, StepError> {
    let fail = |e: String| StepError::new(format!("password_hash of {}: {e}", user.name), "");
    let secret = hash.resolve().map_err(fail)?;
    if secret
        .expose()
        .contains(|c: char| c == ':' || c.is_control())
    {
        return Err(fail(
            "it holds a `:` or a control character: a crypt(3) hash (`openssl passwd -6`) has neither"
                .into(),
        ));
    }
    Ok(secret)
}

/// The hash in the node's shadow file (its output is never logged).
fn shadow_hash(cx: &HostCx, user: &HostUser) -> Result<Option<String>, StepError> {
    let cmd = Cmd::probe(["getent", "shadow", &user.name]).secret_output();
    let out = cx.session.runner.output(&cmd)?;
    Ok(out
        .success()
        .then(|| out.stdout_str().split(':').nth(1).map(String::from))
        .flatten()
        .filter(|h| !h.is_empty() && h != "!" && h != "*"))
}

/// Sets the hash through `chpasswd -e`'s stdin.
fn set_password(cx: &HostCx, user: &HostUser, hash: &SecretRef) -> Result<(), StepError> {
    let hash = resolve(user, hash)?;
    let line = format!("{}:{}\n", user.name, hash.expose());
    let out = cx
        .session
        .runner
        .output(&Cmd::act(["chpasswd", "-e"]).stdin(line))?;
    match out.success() {
        true => Ok(()),
        false => Err(StepError::new(
            format!("chpasswd refused the password_hash of {}", user.name),
            out.tail(5).replace(hash.expose(), "<redacted>"),
        )),
    }
}

fn converge(cx: &HostCx, user: &HostUser) -> Result<(), StepError> {
    let home = match home(cx, user)? {
        Some(h) => h,
        None => {
            node::act(
                cx,
                [
                    "useradd",
                    "--create-home",
                    "--shell",
                    "/bin/bash",
                    &user.name,
                ],
            )?;
            home(cx, user)?.unwrap_or_else(|| format!("/home/{}", user.name))
        }
    };
    if !user.ssh_keys.is_empty() {
        let ssh = format!("{home}/.ssh");
        let owner = format!("{0}:{0}", user.name);
        node::act(
            cx,
            [
                "install", "-d", "-m", "700", "-o", &user.name, "-g", &user.name, &ssh,
            ],
        )?;
        let keys = format!("{ssh}/authorized_keys");
        node::write(cx, &keys, &keys_text(user), 0o600)?;
        node::act(cx, ["chown", &owner, &keys])?;
    }
    if let Some(hash) = &user.password_hash {
        set_password(cx, user, hash)?;
    }
    match user.sudo {
        true => {
            node::act(cx, ["mkdir", "-p", "/etc/sudoers.d"])?;
            node::write(cx, &sudoers(user), &sudo_line(user), 0o440)
        }
        false => node::act(cx, ["rm", "-f", &sudoers(user)]),
    }
}

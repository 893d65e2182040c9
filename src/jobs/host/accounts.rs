//! `accounts`: each user of `users`, a login with a home, its SSH keys as the whole of its
//! `authorized_keys`, and sudo through a drop-in of Phoenix's (`/etc/sudoers.d/phoenix-<user>`,
//! without a password: Phoenix sets none).

use super::{node, push, HostCx, HostState};
use crate::backend::Change;
use crate::config::host::HostUser;
use crate::jobs::{Row, StepError, Table};

pub fn steps(t: &mut Table<HostState, HostCx>, cx: &HostCx) {
    for user in &cx.setup.users {
        let row = Row::new(
            format!("user:{}", user.name),
            HostState::Accounts,
            &("user", user),
        );
        let (want, user) = (user.clone(), user.clone());
        push(
            t,
            row,
            move |cx| differs(cx, &want),
            move |cx| converge(cx, &user),
        );
    }
}

fn sudoers(user: &HostUser) -> String {
    format!("/etc/sudoers.d/phoenix-{}", user.name)
}

fn sudo_line(user: &HostUser) -> String {
    format!("{} ALL=(ALL:ALL) NOPASSWD: ALL\n", user.name)
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
    Ok(out)
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
    match user.sudo {
        true => {
            node::act(cx, ["mkdir", "-p", "/etc/sudoers.d"])?;
            node::write(cx, &sudoers(user), &sudo_line(user), 0o440)
        }
        false => node::act(cx, ["rm", "-f", &sudoers(user)]),
    }
}

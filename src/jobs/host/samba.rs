//! `services`: Samba. Each share is a step of its own (changing one share re-runs only its step):
//! Phoenix's block `samba share NAME` in `/etc/samba/smb.conf`, beside what the file already
//! held, and the shared directory (owned by `samba.user`, mode 0770). The Samba password of
//! `samba.user` (by reference, never the hard-coded one upstream wrote) is a step too: checked by
//! logging in with it, set with `smbpasswd -s` on stdin.

use super::{node, push, HostCx, HostState};
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
        let (u, p) = (user.clone(), password.clone());
        push(
            t,
            row,
            move |cx| login_fails(cx, &u, &p),
            move |cx| set_password(cx, &user, &password),
        );
    }
    for share in &samba.shares {
        let row = Row::new(
            format!("samba_share:{}", share.name),
            HostState::Services,
            &("samba_share", share, &samba.user),
        );
        let (want, s) = (
            (share.clone(), samba.clone()),
            (share.clone(), samba.clone()),
        );
        push(
            t,
            row,
            move |cx| share_differs(cx, &want.0),
            move |cx| make_share(cx, &s.0, &s.1),
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
    let want = node::with_block(
        current.as_deref().unwrap_or(""),
        &block(share),
        &section(share),
    );
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
        node::act(cx, ["chown", &format!("{user}:{user}"), &share.path])?;
    }
    node::act(cx, ["chmod", "0770", &share.path])?;
    let current = node::read(cx, CONF)?.unwrap_or_default();
    let want = node::with_block(&current, &block(share), &section(share));
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
    Ok(match live == Some(nt_hash(secret.expose())) {
        true => Vec::new(),
        false => vec![Change::new(
            format!("Samba password of {user}"),
            live.map(|_| "another password".to_string()),
            Some("the configured one".into()),
        )],
    })
}

/// The NT hash Samba keeps of a password: MD4 of its UTF-16LE form, in upper-case hex.
fn nt_hash(password: &str) -> String {
    let bytes: Vec<u8> = password.encode_utf16().flat_map(u16::to_le_bytes).collect();
    md4(&bytes).iter().map(|b| format!("{b:02X}")).collect()
}

/// MD4 (RFC 1320), for [`nt_hash`] only.
fn md4(input: &[u8]) -> [u8; 16] {
    let mut msg = input.to_vec();
    let bits = (input.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_le_bytes());
    let mut h: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    let f = |x: u32, y: u32, z: u32| (x & y) | (!x & z);
    let g = |x: u32, y: u32, z: u32| (x & y) | (x & z) | (y & z);
    let hh = |x: u32, y: u32, z: u32| x ^ y ^ z;
    for chunk in msg.chunks(64) {
        let x: Vec<u32> = chunk
            .chunks(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let [mut a, mut b, mut c, mut d] = h;
        for &i in &[0, 4, 8, 12] {
            a = (a.wrapping_add(f(b, c, d)).wrapping_add(x[i])).rotate_left(3);
            d = (d.wrapping_add(f(a, b, c)).wrapping_add(x[i + 1])).rotate_left(7);
            c = (c.wrapping_add(f(d, a, b)).wrapping_add(x[i + 2])).rotate_left(11);
            b = (b.wrapping_add(f(c, d, a)).wrapping_add(x[i + 3])).rotate_left(19);
        }
        for &i in &[0, 1, 2, 3] {
            let k = 0x5a82_7999u32;
            a = (a
                .wrapping_add(g(b, c, d))
                .wrapping_add(x[i])
                .wrapping_add(k))
            .rotate_left(3);
            d = (d
                .wrapping_add(g(a, b, c))
                .wrapping_add(x[i + 4])
                .wrapping_add(k))
            .rotate_left(5);
            c = (c
                .wrapping_add(g(d, a, b))
                .wrapping_add(x[i + 8])
                .wrapping_add(k))
            .rotate_left(9);
            b = (b
                .wrapping_add(g(c, d, a))
                .wrapping_add(x[i + 12])
                .wrapping_add(k))
            .rotate_left(13);
        }
        for &i in &[0, 2, 1, 3] {
            let k = 0x6ed9_eba1u32;
            a = (a
                .wrapping_add(hh(b, c, d))
                .wrapping_add(x[i])
                .wrapping_add(k))
            .rotate_left(3);
            d = (d
                .wrapping_add(hh(a, b, c))
                .wrapping_add(x[i + 8])
                .wrapping_add(k))
            .rotate_left(9);
            c = (c
                .wrapping_add(hh(d, a, b))
                .wrapping_add(x[i + 4])
                .wrapping_add(k))
            .rotate_left(11);
            b = (b
                .wrapping_add(hh(c, d, a))
                .wrapping_add(x[i + 12])
                .wrapping_add(k))
            .rotate_left(15);
        }
        h = [
            h[0].wrapping_add(a),
            h[1].wrapping_add(b),
            h[2].wrapping_add(c),
            h[3].wrapping_add(d),
        ];
    }
    let mut out = [0u8; 16];
    for (i, w) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md4_and_the_nt_hash_match_their_references() {
        // RFC 1320's test suite, and the NT hash of "password" as Samba stores it.
        let hex = |b: [u8; 16]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(hex(md4(b"")), "31d6cfe0d16ae931b73c59d7e0c089c0");
        assert_eq!(hex(md4(b"abc")), "a448017aaf21d8525fc10ae87aa6729d");
        assert_eq!(
            hex(md4(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            )),
            "e33b4ddc9c38f2199c3e7b164fcc0536"
        );
        assert_eq!(nt_hash("password"), "8846F7EAEE8FB117AD06BDD830B7586C");
    }
}

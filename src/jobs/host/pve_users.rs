//! `accounts`: each login's Proxmox user, `pve_user:<name>`: `<name>@pam` (`pveum user add`) with
//! its role on its path (`pveum acl modify`; upstream gave `Administrator` on `/`, the default).
//! Read back from `pveum ... list --output-format json`. Roles Phoenix did not give stay.

use super::{node, push_value, HostCx, HostState};
use crate::backend::Change;
use crate::config::host::PveAcl;
use crate::jobs::{Row, StepError, Table};
use serde_json::Value;

pub fn steps(t: &mut Table<HostState, HostCx>, cx: &HostCx) {
    for u in &cx.setup.users {
        // root@pam is Proxmox's superuser: it holds every role, and takes no ACL entries.
        let Some(acl) = u.proxmox.clone().filter(|_| u.name != "root") else {
            continue;
        };
        let row = Row::new(
            format!("pve_user:{}", u.name),
            HostState::Accounts,
            &("pve_user", &u.name, &acl),
        );
        push_value(
            t,
            row,
            (format!("{}@pam", u.name), acl),
            |cx, (id, acl)| differs(cx, id, acl),
            |cx, (id, acl)| converge(cx, id, acl),
        );
    }
}

fn list(cx: &HostCx, what: &str) -> Result<Vec<Value>, StepError> {
    if !node::has(cx, "pveum")? {
        return Err(StepError::new(
            "the file gives users a Proxmox role (`users[].proxmox`, Administrator on / unless set), and the node has no `pveum`",
            "run setup on a Proxmox VE node, or set \"proxmox\": false on the user",
        ));
    }
    let json = node::ask_all(cx, ["pveum", what, "list", "--output-format", "json"])?;
    let json = json.ok_or_else(|| StepError::new(format!("`pveum {what} list` failed"), ""))?;
    serde_json::from_str::<Vec<Value>>(&json)
        .map_err(|e| StepError::new(format!("`pveum {what} list` printed no JSON list: {e}"), ""))
}

fn has_user(cx: &HostCx, id: &str) -> Result<bool, StepError> {
    Ok(list(cx, "user")?.iter().any(|u| u["userid"] == id))
}

fn has_acl(cx: &HostCx, id: &str, acl: &PveAcl) -> Result<bool, StepError> {
    Ok(list(cx, "acl")?.iter().any(|a| {
        a["path"] == acl.path.as_str()
            && a["type"] == "user"
            && a["ugid"] == id
            && a["roleid"] == acl.role.as_str()
    }))
}

fn differs(cx: &HostCx, id: &str, acl: &PveAcl) -> Result<Vec<Change>, StepError> {
    let mut out = Vec::new();
    if !has_user(cx, id)? {
        out.push(Change::new(
            format!("proxmox user {id}"),
            None,
            Some("exists".into()),
        ));
    }
    if !has_acl(cx, id, acl)? {
        let role = format!("{} on {}", acl.role, acl.path);
        out.push(Change::new(
            format!("proxmox role of {id}"),
            None,
            Some(role),
        ));
    }
    Ok(out)
}

fn converge(cx: &HostCx, id: &str, acl: &PveAcl) -> Result<(), StepError> {
    if !has_user(cx, id)? {
        node::act(cx, ["pveum", "user", "add", id])?;
    }
    if !has_acl(cx, id, acl)? {
        let (path, role) = (acl.path.as_str(), acl.role.as_str());
        node::act(
            cx,
            [
                "pveum", "acl", "modify", path, "--users", id, "--roles", role,
            ],
        )?;
    }
    Ok(())
}

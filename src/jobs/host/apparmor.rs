//! `services`: AppArmor tunables (`apparmor.tunables`), `apparmor`: Phoenix's block in each
//! `/etc/apparmor.d/tunables/<name>` (the distribution's lines stay; upstream overwrote `home`),
//! then AppArmor reloaded where it runs.

use super::{node, push_value, HostCx, HostState};
use crate::backend::Change;
use crate::jobs::{Row, StepError, Table};
use std::collections::BTreeMap;

type Tunables = BTreeMap<String, Vec<String>>;

pub fn steps(t: &mut Table<HostState, HostCx>, cx: &HostCx) {
    if cx.setup.apparmor_tunables.is_empty() {
        return;
    }
    let tunables = cx.setup.apparmor_tunables.clone();
    let row = Row::new("apparmor", HostState::Services, &("apparmor", &tunables));
    push_value(t, row, tunables, differs, converge);
}

fn path(name: &str) -> String {
    format!("/etc/apparmor.d/tunables/{name}")
}

fn wanted(cx: &HostCx, name: &str, lines: &[String]) -> Result<String, StepError> {
    let current = node::read(cx, &path(name))?.unwrap_or_default();
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    node::with_block(&path(name), &current, "apparmor", &body)
}

fn differs(cx: &HostCx, tunables: &Tunables) -> Result<Vec<Change>, StepError> {
    let mut out = Vec::new();
    for (name, lines) in tunables {
        out.extend(node::file_change(
            cx,
            &path(name),
            &wanted(cx, name, lines)?,
        )?);
    }
    Ok(out)
}

fn converge(cx: &HostCx, tunables: &Tunables) -> Result<(), StepError> {
    node::act(cx, ["mkdir", "-p", "/etc/apparmor.d/tunables"])?;
    for (name, lines) in tunables {
        let text = wanted(cx, name, lines)?;
        node::write(cx, &path(name), &text, 0o644)?;
    }
    if node::ask(cx, ["systemctl", "is-active", "apparmor"])?.as_deref() == Some("active") {
        node::act(cx, ["systemctl", "reload", "apparmor"])?;
    }
    Ok(())
}

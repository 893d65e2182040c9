//! `system`: the time zone (`timezone`) and the host name (`network.hostname`).

use super::{node, push, HostCx, HostState};
use crate::backend::Change;
use crate::jobs::{Row, StepError, Table};

pub fn steps(t: &mut Table<HostState, HostCx>, cx: &HostCx) {
    if let Some(tz) = cx.setup.timezone.clone() {
        let row = Row::new("timezone", HostState::System, &("timezone", &tz));
        let want = tz.clone();
        push(
            t,
            row,
            move |cx| timezone_differs(cx, &want),
            move |cx| set_timezone(cx, &tz),
        );
    }
    if let Some(name) = cx.setup.hostname.clone() {
        let row = Row::new("hostname", HostState::System, &("hostname", &name));
        let want = name.clone();
        push(
            t,
            row,
            move |cx| hostname_differs(cx, &want),
            move |cx| set_hostname(cx, &name),
        );
    }
}

fn zone_file(tz: &str) -> String {
    format!("/usr/share/zoneinfo/{tz}")
}

fn timezone_differs(cx: &HostCx, tz: &str) -> Result<Vec<Change>, StepError> {
    let file = node::read(cx, "/etc/timezone")?.map(|s| s.trim().to_string());
    let link = node::ask(cx, ["readlink", "/etc/localtime"])?;
    let mut out = Vec::new();
    if file.as_deref() != Some(tz) {
        out.push(Change::new("/etc/timezone", file, Some(tz.into())));
    }
    if link.as_deref() != Some(&zone_file(tz)) {
        out.push(Change::new("/etc/localtime", link, Some(zone_file(tz))));
    }
    Ok(out)
}

fn set_timezone(cx: &HostCx, tz: &str) -> Result<(), StepError> {
    if node::ask(cx, ["test", "-f", &zone_file(tz)])?.is_none() {
        return Err(StepError::new(
            format!(
                "time zone {tz:?} is not known on the node (no {})",
                zone_file(tz)
            ),
            "",
        ));
    }
    node::act(cx, ["ln", "-sfn", &zone_file(tz), "/etc/localtime"])?;
    node::write(cx, "/etc/timezone", &format!("{tz}\n"), 0o644)
}

fn hostname_differs(cx: &HostCx, name: &str) -> Result<Vec<Change>, StepError> {
    let file = node::read(cx, "/etc/hostname")?.map(|s| s.trim().to_string());
    let live = node::ask(cx, ["hostname"])?;
    let mut out = Vec::new();
    if file.as_deref() != Some(name) {
        out.push(Change::new("/etc/hostname", file, Some(name.into())));
    }
    if live.as_deref() != Some(name) {
        out.push(Change::new("hostname", live, Some(name.into())));
    }
    Ok(out)
}

fn set_hostname(cx: &HostCx, name: &str) -> Result<(), StepError> {
    node::write(cx, "/etc/hostname", &format!("{name}\n"), 0o644)?;
    node::act(cx, ["hostname", name])
}

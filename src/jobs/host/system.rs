//! `system`: the time zone (`timezone`) and the host name (`network.hostname`), which also
//! resolves locally (Phoenix's block of `/etc/hosts`, as Debian's installer writes it: services
//! such as Samba look their own name up and stall when nothing answers).

use super::{node, push_value, HostCx, HostState};
use crate::backend::Change;
use crate::jobs::{Row, StepError, Table};

pub fn steps(t: &mut Table<HostState, HostCx>, cx: &HostCx) {
    if let Some(tz) = cx.setup.timezone.clone() {
        let row = Row::new("timezone", HostState::System, &("timezone", &tz));
        push_value(
            t,
            row,
            tz,
            |cx, v| timezone_differs(cx, v),
            |cx, v| set_timezone(cx, v),
        );
    }
    if let Some(name) = cx.setup.hostname.clone() {
        let row = Row::new("hostname", HostState::System, &("hostname", &name));
        push_value(
            t,
            row,
            name,
            |cx, v| hostname_differs(cx, v),
            |cx, v| set_hostname(cx, v),
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

const HOSTS: &str = "/etc/hosts";

/// `/etc/hosts` with the node's name on its management address (`network.interfaces.address`,
/// as Proxmox wants it), else on 127.0.1.1 as Debian's installer writes it.
fn hosts_with(cx: &HostCx, current: &str, name: &str) -> Result<String, StepError> {
    let h = &cx.session.fleet.hypervisor;
    let ip = h.setup.address.as_deref().unwrap_or("127.0.1.1");
    let line = match &h.domain_name {
        Some(d) => format!("{ip}\t{name}.{d} {name}\n"),
        None => format!("{ip}\t{name}\n"),
    };
    node::with_block(HOSTS, current, "hostname", &line)
}

fn hostname_differs(cx: &HostCx, name: &str) -> Result<Vec<Change>, StepError> {
    let file = node::read(cx, "/etc/hostname")?.map(|s| s.trim().to_string());
    let live = node::ask(cx, ["hostname"])?;
    let hosts = node::read(cx, HOSTS)?;
    let want_hosts = hosts_with(cx, hosts.as_deref().unwrap_or(""), name)?;
    let mut out = Vec::new();
    if file.as_deref() != Some(name) {
        out.push(Change::new("/etc/hostname", file, Some(name.into())));
    }
    if live.as_deref() != Some(name) {
        out.push(Change::new("hostname", live, Some(name.into())));
    }
    if hosts.as_deref() != Some(want_hosts.as_str()) {
        out.push(Change::new(HOSTS, hosts, Some(want_hosts)));
    }
    Ok(out)
}

fn set_hostname(cx: &HostCx, name: &str) -> Result<(), StepError> {
    node::write(cx, "/etc/hostname", &format!("{name}\n"), 0o644)?;
    let hosts = node::read(cx, HOSTS)?.unwrap_or_default();
    node::write(cx, HOSTS, &hosts_with(cx, &hosts, name)?, 0o644)?;
    node::act(cx, ["hostname", name])
}

//! `services`: the DNS server. dnsmasq answers the fleet's names: every container and VM with a
//! static address, as `<name>.<domain_name>` and `<name>` (lower case), from a file of Phoenix's
//! own, `/etc/dnsmasq.d/phoenix.conf`, and asks `upstream_servers` the rest. Upstream's
//! hard-coded addresses are not reproduced: every record comes from the fleet.

use super::{node, push_value, HostCx, HostState};
use crate::backend::Change;
use crate::config::values::IpConfig;
use crate::config::Fleet;
use crate::jobs::{Row, StepError, Table};

const FILE: &str = "/etc/dnsmasq.d/phoenix.conf";

pub fn steps(t: &mut Table<HostState, HostCx>, cx: &HostCx) {
    let Some(dns) = &cx.setup.dns else {
        return;
    };
    let fleet = &cx.session.fleet;
    let text = render(fleet, &dns.upstream_servers);
    let row = Row::new("dns_server", HostState::Services, &("dnsmasq", &text));
    push_value(t, row, text, |cx, v| differs(cx, v), |cx, v| write(cx, v));
}

/// The fleet's names and addresses, sorted by name.
fn records(fleet: &Fleet) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = fleet
        .guests()
        .iter()
        .filter_map(|g| match g.ip()? {
            IpConfig::Static(cidr) => Some((g.name().to_ascii_lowercase(), cidr.addr.to_string())),
            IpConfig::Dhcp => None,
        })
        .collect();
    out.sort();
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

pub fn render(fleet: &Fleet, upstream: &[String]) -> String {
    let domain = fleet.hypervisor.domain_name.as_deref();
    let mut out =
        String::from("# Written by `phoenix setup` from dns_server and the fleet's guests.\n");
    out.push_str("domain-needed\nbogus-priv\n");
    if let Some(d) = domain {
        out.push_str(&format!("local=/{d}/\ndomain={d}\n"));
    }
    if !upstream.is_empty() {
        out.push_str("no-resolv\n");
    }
    for s in upstream {
        out.push_str(&format!("server={s}\n"));
    }
    for (name, ip) in records(fleet) {
        match domain {
            Some(d) => out.push_str(&format!("host-record={name}.{d},{name},{ip}\n")),
            None => out.push_str(&format!("host-record={name},{ip}\n")),
        }
    }
    out
}

fn differs(cx: &HostCx, want: &str) -> Result<Vec<Change>, StepError> {
    let mut out: Vec<Change> = node::file_change(cx, FILE, want)?.into_iter().collect();
    let active = node::ask(cx, ["systemctl", "is-active", "dnsmasq"])?;
    if active.is_none() {
        out.push(Change::new(
            "dnsmasq",
            Some("not running".into()),
            Some("running".into()),
        ));
    }
    Ok(out)
}

fn write(cx: &HostCx, text: &str) -> Result<(), StepError> {
    node::act(cx, ["mkdir", "-p", "/etc/dnsmasq.d"])?;
    node::write(cx, FILE, text, 0o644)?;
    node::act(cx, ["systemctl", "enable", "dnsmasq"])?;
    node::act(cx, ["systemctl", "restart", "dnsmasq"])
}

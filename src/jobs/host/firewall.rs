//! `services`: the node's firewall, `/etc/pve/firewall/cluster.fw`, from the hypervisor file's
//! `firewall` (or `shared_volumes.firewall`): its options and its rules, in pve-firewall's file
//! format. Guests' own rules are set on each guest, not here. pve-firewall reads the file itself.

use super::{node, push_value, HostCx, HostState};
use crate::backend::Change;
use crate::config::common::{Direction, FirewallRule};
use crate::config::hypervisor::HostFirewall;
use crate::jobs::{Row, StepError, Table};

pub fn steps(t: &mut Table<HostState, HostCx>, cx: &HostCx) {
    let Some(fw) = cx.firewall.clone() else {
        return;
    };
    let file = cx.pve_etc.join("firewall/cluster.fw").display().to_string();
    let text = render(&fw);
    let row = Row::new("firewall", HostState::Services, &("cluster.fw", &text));
    push_value(
        t,
        row,
        (file, text),
        |cx, (file, text)| differs(cx, file, text),
        |cx, (file, text)| write(cx, file, text),
    );
}

/// cluster.fw as pve-firewall writes it: `[OPTIONS]`, then `[RULES]`.
pub fn render(fw: &HostFirewall) -> String {
    let mut out = format!("[OPTIONS]\n\nenable: {}\n", u8::from(fw.enabled));
    if let Some(p) = &fw.default_input_policy {
        out.push_str(&format!("policy_in: {p}\n"));
    }
    if let Some(p) = &fw.default_output_policy {
        out.push_str(&format!("policy_out: {p}\n"));
    }
    out.push_str("\n[RULES]\n\n");
    for r in &fw.rules {
        out.push_str(&rule(r));
        out.push('\n');
    }
    out
}

fn rule(r: &FirewallRule) -> String {
    let dir = match r.direction {
        Direction::In => "IN",
        Direction::Out => "OUT",
    };
    let mut line = format!("{dir} {}", r.action.to_ascii_uppercase());
    let opts = [
        ("-i", &r.iface),
        ("-source", &r.source),
        ("-dest", &r.dest),
        ("-p", &r.proto),
        ("-dport", &r.port),
    ];
    for (flag, v) in opts {
        if let Some(v) = v {
            line.push_str(&format!(" {flag} {v}"));
        }
    }
    if let Some(c) = &r.comment {
        line.push_str(&format!(" # {c}"));
    }
    line
}

fn differs(cx: &HostCx, file: &str, text: &str) -> Result<Vec<Change>, StepError> {
    Ok(node::file_change(cx, file, text)?.into_iter().collect())
}

fn write(cx: &HostCx, file: &str, text: &str) -> Result<(), StepError> {
    let dir = file.rsplit_once('/').map(|(d, _)| d).unwrap_or("/");
    node::act(cx, ["mkdir", "-p", dir])?;
    node::write(cx, file, text, 0o640)
}

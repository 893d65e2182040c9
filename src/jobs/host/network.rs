//! `system`: the management interface (`network.interfaces`), `network`. Phoenix renders its
//! stanza into a file of its own, `/etc/network/interfaces.d/phoenix-<name>` (static address,
//! gateway, `dns-nameservers`; a bridge `vmbrN` with its ports, keeping those it has when the file
//! names none), makes sure `/etc/network/interfaces` reads that directory, and applies it with
//! `ifreload -a` (ifupdown2, as on Proxmox VE) only when the file or the live address differs.
//!
//! An interface also defined by hand in `/etc/network/interfaces` (the installer's `vmbr0`) is
//! left to its author when it has the file's address and gateway. Otherwise it is not defined
//! twice: Phoenix stops and says so, and with `--allow-destructive` comments that stanza out
//! (`#phoenix-moved# `), keeping its lines, and moves other files of `interfaces.d` that define
//! it (upstream's `50-<name>.cfg`) to `/var/lib/phoenix/host/moved/`.

use super::{node, push_value, HostCx, HostState};
use crate::backend::Change;
use crate::config::host_system::Interface;
use crate::jobs::{Row, StepError, Table};

const MAIN: &str = "/etc/network/interfaces";
const SOURCE: &str = "source /etc/network/interfaces.d/*";
const MOVED: &str = "#phoenix-moved# ";
const DIR: &str = "/etc/network/interfaces.d";
const MOVED_DIR: &str = "/var/lib/phoenix/host/moved";

pub fn steps(t: &mut Table<HostState, HostCx>, cx: &HostCx) {
    let Some(i) = cx.setup.interface.clone() else {
        return;
    };
    let row = Row::new("network", HostState::System, &("network", &i));
    push_value(t, row, i, differs, converge);
}

fn file_of(i: &Interface) -> String {
    format!("{DIR}/phoenix-{}", i.name)
}

fn is_bridge(i: &Interface) -> bool {
    i.name.starts_with("vmbr")
}

/// The bridge's ports: the file's, else those it has now, else none.
fn ports(cx: &HostCx, i: &Interface) -> Result<String, StepError> {
    if let Some(p) = &i.bridge_ports {
        return Ok(p.clone());
    }
    let live = node::ask_all(cx, ["ls", "-1", &format!("/sys/class/net/{}/brif", i.name)])?;
    // Guests' ports (tapN, vethN, fwprN, ...) come and go with the guests: not the bridge's own.
    let guest = ["tap", "veth", "fwpr", "fwln", "fwbr"];
    let live: Vec<String> = live
        .unwrap_or_default()
        .lines()
        .filter(|p| !guest.iter().any(|g| p.starts_with(g)))
        .map(String::from)
        .collect();
    Ok(if live.is_empty() {
        "none".into()
    } else {
        live.join(" ")
    })
}

fn render(cx: &HostCx, i: &Interface) -> Result<String, StepError> {
    let mut s = format!(
        "# Written by `phoenix setup`; edit the hypervisor file instead.\nauto {0}\niface {0} inet static\n\taddress {1}\n",
        i.name, i.address
    );
    if let Some(g) = &i.gateway {
        s.push_str(&format!("\tgateway {g}\n"));
    }
    if is_bridge(i) {
        s.push_str(&format!(
            "\tbridge-ports {}\n\tbridge-stp off\n\tbridge-fd 0\n",
            ports(cx, i)?
        ));
    }
    if !i.dns_nameservers.is_empty() {
        s.push_str(&format!(
            "\tdns-nameservers {}\n",
            i.dns_nameservers.join(" ")
        ));
    }
    Ok(s)
}

/// The lines of `/etc/network/interfaces` that define `name` by hand (its `iface` stanza, and
/// an `auto`/`allow-hotplug` line naming it).
fn hand_stanza(main: &str, name: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut inside = false;
    for (n, line) in main.lines().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let starts = matches!(
            words.first(),
            Some(&("iface" | "auto" | "allow-hotplug" | "source" | "mapping"))
        );
        if starts {
            inside = words.first() == Some(&"iface") && words.get(1) == Some(&name);
        }
        let names_it = matches!(words.first(), Some(&("auto" | "allow-hotplug")))
            && words[1..].contains(&name);
        if inside || names_it {
            out.push(n);
        }
    }
    out
}

fn reads_dir(main: &str) -> bool {
    main.lines().any(|l| {
        let l = l.trim();
        l == SOURCE
            || l == "source-directory /etc/network/interfaces.d"
            || l == "source /etc/network/interfaces.d/*.cfg"
    })
}

/// `/etc/network/interfaces` as it must be: reading Phoenix's directory, `name` not defined by
/// hand (commented out when `moving`).
fn main_file(main: &str, name: &str, moving: bool) -> Result<String, StepError> {
    let hand = hand_stanza(main, name);
    if !hand.is_empty() && !moving {
        return Err(StepError::new(
            format!("{name} is defined by hand in {MAIN}; Phoenix would define it twice"),
            "remove that stanza, or rerun with --allow-destructive to have Phoenix comment it out (`phoenix plan --setup --allow-destructive` shows it)",
        ));
    }
    let mut out: String = main
        .lines()
        .enumerate()
        .map(|(n, l)| match hand.contains(&n) {
            true => format!("{MOVED}{l}\n"),
            false => format!("{l}\n"),
        })
        .collect();
    if !reads_dir(&out) {
        out.push_str(&format!("\n{SOURCE}\n"));
    }
    Ok(out)
}

fn live_address(cx: &HostCx, i: &Interface) -> Result<Option<String>, StepError> {
    let out = node::ask_all(cx, ["ip", "-o", "-4", "addr", "show", "dev", &i.name])?;
    Ok(out.and_then(|o| {
        o.split_whitespace()
            .skip_while(|w| *w != "inet")
            .nth(1)
            .map(String::from)
    }))
}

/// Whether the hand-written stanza of `i` already says what the file says (address and
/// gateway): then the node is as asked, and Phoenix leaves it to its author.
fn hand_written_holds(main: &str, i: &Interface) -> bool {
    let lines = hand_stanza(main, &i.name);
    let value = |key: &str| {
        main.lines()
            .enumerate()
            .filter(|(n, _)| lines.contains(n))
            .find_map(|(_, l)| {
                let mut w = l.split_whitespace();
                (w.next() == Some(key)).then(|| w.next().unwrap_or("").to_string())
            })
    };
    !lines.is_empty()
        && value("address").as_deref() == Some(i.address.as_str())
        && value("gateway") == i.gateway
}

/// The other files of `interfaces.d` that define the interface (upstream wrote
/// `50-<name>.cfg`), with their text.
fn others(cx: &HostCx, i: &Interface) -> Result<Vec<(String, String)>, StepError> {
    let listing = node::ask_all(cx, ["ls", "-1", DIR])?.unwrap_or_default();
    let mut out = Vec::new();
    for name in listing
        .lines()
        .filter(|f| format!("{DIR}/{f}") != file_of(i))
    {
        let path = format!("{DIR}/{name}");
        let text = node::read(cx, &path)?.unwrap_or_default();
        if !hand_stanza(&text, &i.name).is_empty() {
            out.push((path, text));
        }
    }
    Ok(out)
}

/// Files of others that define the interface too: an error, or with `--allow-destructive`
/// moved out of the directory (to `/var/lib/phoenix/host/moved/`).
fn move_others(cx: &HostCx, others: &[(String, String)]) -> Result<(), StepError> {
    if others.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = others.iter().map(|(p, _)| p.as_str()).collect();
    if !cx.allow_destructive {
        return Err(StepError::new(
            format!("{} define(s) the interface too; Phoenix would define it twice", names.join(", ")),
            "remove them, or rerun with --allow-destructive to have Phoenix move them to /var/lib/phoenix/host/moved/",
        ));
    }
    node::act(cx, ["mkdir", "-p", MOVED_DIR])?;
    for p in names {
        node::act(cx, ["mv", p, MOVED_DIR])?;
    }
    Ok(())
}

fn differs(cx: &HostCx, i: &Interface) -> Result<Vec<Change>, StepError> {
    let main = node::read(cx, MAIN)?.unwrap_or_default();
    let others = others(cx, i)?;
    let holds = others.iter().any(|(_, t)| hand_written_holds(t, i));
    if holds || hand_written_holds(&main, i) {
        return Ok(Vec::new());
    }
    let mut out: Vec<Change> = node::file_change(cx, &file_of(i), &render(cx, i)?)?
        .into_iter()
        .collect();
    for (path, text) in others {
        out.push(Change::new(path, Some(text), None));
    }
    let hand = !hand_stanza(&main, &i.name).is_empty();
    if hand || !reads_dir(&main) {
        let want = main_file(&main, &i.name, cx.allow_destructive)?;
        out.push(Change::new(MAIN, Some(main), Some(want)));
    }
    let live = live_address(cx, i)?;
    if live.as_deref() != Some(i.address.as_str()) {
        out.push(Change::new(
            format!("{} address", i.name),
            live,
            Some(i.address.clone()),
        ));
    }
    Ok(out)
}

/// The node's address this run reaches it by (the server side of `SSH_CONNECTION`), if over SSH.
fn session_address(cx: &HostCx) -> Result<Option<String>, StepError> {
    let line = node::ask(cx, ["sh", "-c", "echo \"$SSH_CONNECTION\""])?.unwrap_or_default();
    Ok(line.split_whitespace().nth(2).map(String::from))
}

/// Moving the address Phoenix is connected through would cut the run off mid-step.
fn check_not_our_address(cx: &HostCx, i: &Interface) -> Result<(), StepError> {
    let ip = |cidr: &str| cidr.split('/').next().unwrap_or("").to_string();
    let live = live_address(cx, i)?.map(|a| ip(&a));
    let (Some(live), Some(ours)) = (live, session_address(cx)?) else {
        return Ok(());
    };
    if live != ours || live == ip(&i.address) || cx.allow_destructive {
        return Ok(());
    }
    Err(StepError::new(
        format!(
            "changing {}'s address from {} cuts off this run, which reaches the node there over SSH",
            i.name, live
        ),
        "run `phoenix setup` on the node itself (or over another address), or rerun with --allow-destructive and reconnect to the new address",
    ))
}

fn converge(cx: &HostCx, i: &Interface) -> Result<(), StepError> {
    check_not_our_address(cx, i)?;
    let main = node::read(cx, MAIN)?.unwrap_or_default();
    let fixed = main_file(&main, &i.name, cx.allow_destructive)?;
    if !node::has(cx, "ifreload")? {
        return Err(StepError::new(
            "the node has no `ifreload` (ifupdown2, which Proxmox VE uses) to apply the interface",
            "install ifupdown2, or remove `network.interfaces` from the file",
        ));
    }
    move_others(cx, &others(cx, i)?)?;
    node::act(cx, ["mkdir", "-p", DIR])?;
    node::write(cx, &file_of(i), &render(cx, i)?, 0o644)?;
    if fixed != main {
        node::write(cx, MAIN, &fixed, 0o644)?;
    }
    node::act(cx, ["ifreload", "-a"])
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSTALLER: &str = "auto lo\niface lo inet loopback\n\niface eno1 inet manual\n\nauto vmbr0\niface vmbr0 inet static\n\taddress 10.0.0.13/24\n\tgateway 10.0.0.1\n\tbridge-ports eno1\n\nsource /etc/network/interfaces.d/*\n";

    #[test]
    fn an_interface_defined_by_hand_is_moved_only_when_allowed() {
        assert!(main_file(INSTALLER, "vmbr0", false).is_err());
        let moved = main_file(INSTALLER, "vmbr0", true).unwrap();
        assert!(moved.contains("#phoenix-moved# auto vmbr0\n#phoenix-moved# iface vmbr0 inet static\n#phoenix-moved# \taddress 10.0.0.13/24\n"), "{moved}");
        assert!(moved.contains("\niface eno1 inet manual\n"), "{moved}");
        assert!(
            moved.ends_with("source /etc/network/interfaces.d/*\n"),
            "{moved}"
        );
        assert_eq!(
            main_file(&moved, "vmbr0", false).unwrap(),
            moved,
            "once moved, nothing more"
        );
        let vmbr0 = |address: &str| Interface {
            name: "vmbr0".into(),
            address: address.into(),
            gateway: Some("10.0.0.1".into()),
            bridge_ports: None,
            dns_nameservers: Vec::new(),
        };
        assert!(
            hand_written_holds(INSTALLER, &vmbr0("10.0.0.13/24")),
            "the installer's, as asked"
        );
        assert!(!hand_written_holds(INSTALLER, &vmbr0("10.0.0.14/24")));
        let bare = main_file("auto lo\niface lo inet loopback\n", "vmbr7", false).unwrap();
        assert!(
            bare.ends_with("\nsource /etc/network/interfaces.d/*\n"),
            "{bare}"
        );
    }
}

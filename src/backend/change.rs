//! What differs between a live guest and the configuration, key by key: what `phoenix plan` shows
//! and what a drift probe finds. A backend reports a setting's differences in its own keys
//! (`lxc.cgroup2.memory.max` on plain LXC, `memory` on Proxmox); no difference means in place.

use crate::config::GuestId;
use serde::Serialize;

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// What differs: a config key, a file in the guest, an owner on the host.
    pub key: String,
    /// What the guest has now (`None`: nothing).
    pub live: Option<String>,
    /// What the configuration asks for (`None`: it goes).
    pub want: Option<String>,
}

impl Change {
    pub fn new(key: impl Into<String>, live: Option<String>, want: Option<String>) -> Change {
        Change {
            key: key.into(),
            live,
            want,
        }
    }

    /// Something the configuration asks for is missing.
    pub fn missing(key: impl Into<String>, want: impl Into<String>) -> Change {
        Change::new(key, None, Some(want.into()))
    }
}

/// A guest as read once, for comparing many settings with it: its configuration as the backend
/// stores it (the LXC config file, Proxmox's `/etc/pve/lxc/CTID.conf`) and whether it is a template.
#[derive(Debug, Clone)]
pub struct Live {
    pub id: GuestId,
    pub config: String,
    pub template: bool,
    /// The snapshots, where the same read gave them (Proxmox keeps them in the config file).
    pub snapshots: Option<Vec<String>>,
}

/// The differences between two sets of `key<sep>value` lines: a key found once on each side with
/// different values is one change; other lines are added or removed. Order does not matter.
pub fn lines(have: &[String], want: &[String], sep: char) -> Vec<Change> {
    let split = |l: &String| match l.split_once(sep) {
        Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
        None => (l.trim().to_string(), String::new()),
    };
    let mut gone: Vec<(String, String)> = have
        .iter()
        .filter(|l| !want.contains(l))
        .map(split)
        .collect();
    let mut out = Vec::new();
    for (k, v) in want.iter().filter(|l| !have.contains(l)).map(split) {
        let count = |side: &[String]| side.iter().filter(|l| split(l).0 == k).count();
        let single = count(have) == 1 && count(want) == 1;
        match gone.iter().position(|(gk, _)| *gk == k).filter(|_| single) {
            Some(i) => {
                let (_, old) = gone.remove(i);
                out.push(Change::new(k, Some(old), Some(v)));
            }
            None => out.push(Change::new(k, None, Some(v))),
        }
    }
    out.extend(gone.into_iter().map(|(k, v)| Change::new(k, Some(v), None)));
    // The same lines in another order or number (the order of device rules matters).
    if out.is_empty() && have != want {
        out.push(Change::new(
            "order of lines",
            Some(have.join("; ")),
            Some(want.join("; ")),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn single_keys_change_and_repeated_keys_are_added_or_removed() {
        let have = v(&[
            "lxc.cgroup2.memory.max = 2048M",
            "lxc.mount.entry = /a a none bind 0 0",
            "lxc.mount.entry = /b b none bind 0 0",
        ]);
        let want = v(&[
            "lxc.mount.entry = /b b none bind 0 0",
            "lxc.cgroup2.memory.max = 1024M",
            "lxc.mount.entry = /c c none bind 0 0",
        ]);
        assert_eq!(
            lines(&have, &want, '='),
            vec![
                Change::new(
                    "lxc.cgroup2.memory.max",
                    Some("2048M".into()),
                    Some("1024M".into())
                ),
                Change::new("lxc.mount.entry", None, Some("/c c none bind 0 0".into())),
                Change::new("lxc.mount.entry", Some("/a a none bind 0 0".into()), None),
            ]
        );
        assert!(lines(&want, &want, '=').is_empty());
        let reordered = v(&["a = 1", "b = 2"]);
        let changes = lines(&reordered, &v(&["b = 2", "a = 1"]), '=');
        assert_eq!(changes[0].key, "order of lines");
        assert_eq!(lines(&v(&["a = 1", "a = 1"]), &v(&["a = 1"]), '=').len(), 1);
    }
}

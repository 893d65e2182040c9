//! `storage`: the Proxmox storages of `storage.cfg`, one step `storage:<id>` each, added with
//! `pvesm add`, changed with `pvesm set`; and `storages_unlisted`, which removes the storages the
//! file no longer lists — those Phoenix created (recorded on the node) always, others only with
//! `--allow-destructive` (upstream removed every storage it did not know, on every run).
//! A property Proxmox fixes at creation (a path, a pool, a server) changes by removing and adding
//! the storage again: for a storage Phoenix did not create, only with `--allow-destructive`.

use super::{node, push, HostCx, HostState};
use crate::backend::Change;
use crate::config::host_storage::PveStorage;
use crate::jobs::{Row, StepError, Table};
use std::collections::BTreeMap;

/// Never removed: the storages a Proxmox installer makes.
const PROTECTED: &[&str] = &["local", "local-lvm", "local-zfs"];

pub fn steps(t: &mut Table<HostState, HostCx>, cx: &HostCx) {
    for s in &cx.setup.storages {
        let row = Row::new(
            format!("storage:{}", s.id),
            HostState::Storage,
            &("storage", s),
        );
        let (want, s) = (s.clone(), s.clone());
        push(
            t,
            row,
            move |cx| differs(cx, &want),
            move |cx| converge(cx, &s),
        );
    }
    let listed: Vec<String> = cx.setup.storages.iter().map(|s| s.id.clone()).collect();
    let row = Row::new(
        "storages_unlisted",
        HostState::Storage,
        &("unlisted", &listed),
    );
    let want = listed.clone();
    push(
        t,
        row,
        move |cx| unlisted(cx, &want),
        move |cx| remove_unlisted(cx, &listed),
    );
}

/// A storage as `storage.cfg` has it: its type and its properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub kind: String,
    pub properties: BTreeMap<String, String>,
}

/// PVE::SectionConfig's format: `type: id`, then indented `key value` lines.
pub fn parse(text: &str) -> BTreeMap<String, Section> {
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            current = line.split_once(':').map(|(kind, id)| {
                let id = id.trim().to_string();
                let properties = BTreeMap::new();
                let kind = kind.trim().to_string();
                out.insert(id.clone(), Section { kind, properties });
                id
            });
            continue;
        }
        // A flag is written bare (`disable`).
        let line = line.trim();
        let (k, v) = line.split_once(char::is_whitespace).unwrap_or((line, "1"));
        let Some(id) = &current else { continue };
        if let Some(s) = out.get_mut(id) {
            s.properties.insert(k.to_string(), v.trim().to_string());
        }
    }
    out
}

fn cfg_path(cx: &HostCx) -> String {
    cx.pve_etc.join("storage.cfg").display().to_string()
}

fn live(cx: &HostCx) -> Result<BTreeMap<String, Section>, StepError> {
    Ok(parse(&node::read(cx, &cfg_path(cx))?.unwrap_or_default()))
}

/// `content` compares as a set; every other property as written.
fn same(key: &str, live: Option<&String>, want: &str) -> bool {
    fn set(s: &str) -> Vec<&str> {
        let mut v: Vec<&str> = s.split(',').map(str::trim).collect();
        v.sort_unstable();
        v
    }
    match (key, live) {
        ("content", Some(l)) => set(l) == set(want),
        (_, Some(l)) => l == want,
        (_, None) => false,
    }
}

fn describe(kind: &str, properties: &BTreeMap<String, String>) -> String {
    let props: Vec<String> = properties.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{kind} {}", props.join(" "))
}

fn differs(cx: &HostCx, want: &PveStorage) -> Result<Vec<Change>, StepError> {
    let Some(have) = live(cx)?.remove(&want.id) else {
        let key = format!("storage {}", want.id);
        return Ok(vec![Change::new(
            key,
            None,
            Some(describe(&want.kind, &want.properties)),
        )]);
    };
    if have.kind != want.kind {
        let key = format!("storage {} type", want.id);
        return Ok(vec![Change::new(
            key,
            Some(have.kind),
            Some(want.kind.clone()),
        )]);
    }
    Ok(want
        .properties
        .iter()
        .filter(|(k, v)| !same(k, have.properties.get(*k), v))
        .map(|(k, v)| {
            let key = format!("storage {} {k}", want.id);
            Change::new(key, have.properties.get(k).cloned(), Some(v.clone()))
        })
        .collect())
}

fn converge(cx: &HostCx, want: &PveStorage) -> Result<(), StepError> {
    let changes = differs(cx, want)?;
    let Some(have) = live(cx)?.remove(&want.id) else {
        return add(cx, want);
    };
    let fixed = have.kind != want.kind
        || want.fixed().iter().any(|k| {
            want.properties
                .get(*k)
                .is_some_and(|v| !same(k, have.properties.get(*k), v))
        });
    if !fixed {
        return set(cx, want, &changes);
    }
    let what = format!("storage.{}", want.id);
    if !node::created(cx, &what)? && !cx.allow_destructive {
        return Err(StepError::new(
            format!(
                "storage {} exists as `{}` and Phoenix did not create it; what differs ({}) changes only by removing it and adding it again",
                want.id,
                describe(&have.kind, &have.properties),
                keys(&changes)
            ),
            "rerun with --allow-destructive to let Phoenix replace it (`phoenix plan --setup --allow-destructive` lists it), or give the storage another id",
        ));
    }
    node::act(cx, ["pvesm", "remove", &want.id])?;
    add(cx, want)
}

fn keys(changes: &[Change]) -> String {
    let v: Vec<&str> = changes.iter().map(|c| c.key.as_str()).collect();
    v.join(", ")
}

fn add(cx: &HostCx, want: &PveStorage) -> Result<(), StepError> {
    if let Some(dir) = want.properties.get("path").filter(|_| want.kind == "dir") {
        node::act(cx, ["mkdir", "-p", dir])?;
    }
    let mut argv = vec![
        "pvesm".to_string(),
        "add".into(),
        want.kind.clone(),
        want.id.clone(),
    ];
    for (k, v) in &want.properties {
        argv.extend([format!("--{k}"), v.clone()]);
    }
    node::act_argv(cx, &argv)?;
    // Recorded once made: a run killed in between leaves it unrecorded, and so kept, not
    // removed without asking.
    node::record_created(cx, &format!("storage.{}", want.id))
}

fn set(cx: &HostCx, want: &PveStorage, changes: &[Change]) -> Result<(), StepError> {
    let mut argv = vec!["pvesm".to_string(), "set".into(), want.id.clone()];
    for (k, v) in &want.properties {
        if changes
            .iter()
            .any(|c| c.key == format!("storage {} {k}", want.id))
        {
            argv.extend([format!("--{k}"), v.clone()]);
        }
    }
    node::act_argv(cx, &argv)
}

/// The storages the file does not list that this run would remove: Phoenix's own, and with
/// `--allow-destructive` the others that this node may use (no `nodes` limit: `storage.cfg` is
/// the cluster's) and no guest's config names — never `local`, `local-lvm`, `local-zfs`.
fn doomed(cx: &HostCx, listed: &[String]) -> Result<Vec<(String, Section)>, StepError> {
    let mut out = Vec::new();
    for (id, section) in live(cx)? {
        if listed.contains(&id) || PROTECTED.contains(&id.as_str()) {
            continue;
        }
        let ours = node::created(cx, &format!("storage.{id}"))?;
        if ours || (cx.allow_destructive && unused(cx, &id, &section)?) {
            out.push((id, section));
        } else {
            tracing::info!("storage {id} is not in the file and Phoenix did not create it: kept (--allow-destructive removes it when no guest uses it)");
        }
    }
    Ok(out)
}

/// Whether no guest config on the cluster names a volume of `id`, and no `nodes` list limits it
/// to some nodes.
fn unused(cx: &HostCx, id: &str, section: &Section) -> Result<bool, StepError> {
    if section.properties.contains_key("nodes") {
        return Ok(false);
    }
    let nodes = cx.pve_etc.join("nodes").display().to_string();
    let named = node::ask(cx, ["grep", "-rlF", "-e", &format!("{id}:"), &nodes])?;
    Ok(named.is_none())
}

fn unlisted(cx: &HostCx, listed: &[String]) -> Result<Vec<Change>, StepError> {
    Ok(doomed(cx, listed)?
        .into_iter()
        .map(|(id, s)| {
            Change::new(
                format!("storage {id}"),
                Some(describe(&s.kind, &s.properties)),
                None,
            )
        })
        .collect())
}

fn remove_unlisted(cx: &HostCx, listed: &[String]) -> Result<(), StepError> {
    for (id, _) in doomed(cx, listed)? {
        node::act(cx, ["pvesm", "remove", &id])?;
        node::forget_created(cx, &format!("storage.{id}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_cfg_sections_parse() {
        let cfg = parse(
            "dir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl,backup\n\nzfspool: tank\n\tdisable\n\tpool tank/subvols\n\tsparse 1\n",
        );
        assert_eq!(cfg["local"].kind, "dir");
        assert_eq!(cfg["local"].properties["path"], "/var/lib/vz");
        assert_eq!(cfg["tank"].properties["sparse"], "1");
        assert_eq!(cfg["tank"].properties["disable"], "1");
        assert!(same(
            "content",
            Some(&"vztmpl,iso,backup".to_string()),
            "backup,iso,vztmpl"
        ));
        assert!(!same("path", Some(&"/a".to_string()), "/b"));
    }
}

//! `storage`: the Proxmox storages of `storage.cfg`, one step `storage:<id>` each, added with
//! `pvesm add`, changed with `pvesm set`; and `storages_unlisted`, which removes the storages the
//! file no longer lists — those Phoenix created (recorded on the node) always, others only with
//! `--allow-destructive` (upstream removed every storage it did not know, on every run).
//! A property Proxmox fixes at creation (a path, a pool, a server) changes by removing and adding
//! the storage again: for a storage Phoenix did not create, only with `--allow-destructive`.

use super::{node, push_value, HostCx, HostState};
use crate::backend::proxmox::{parse_storage_cfg, Storage as Section};
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
        push_value(t, row, s.clone(), differs, converge);
    }
    let listed: Vec<String> = cx.setup.storages.iter().map(|s| s.id.clone()).collect();
    let row = Row::new(
        "storages_unlisted",
        HostState::Storage,
        &("unlisted", &listed),
    );
    push_value(
        t,
        row,
        listed,
        |cx, v| unlisted(cx, v),
        |cx, v| remove_unlisted(cx, v),
    );
}

fn cfg_path(cx: &HostCx) -> String {
    cx.pve_etc.join("storage.cfg").display().to_string()
}

fn live(cx: &HostCx) -> Result<BTreeMap<String, Section>, StepError> {
    Ok(parse_storage_cfg(
        &node::read(cx, &cfg_path(cx))?.unwrap_or_default(),
    ))
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

/// The properties of `want` that `have` holds otherwise.
fn differing<'a>(want: &'a PveStorage, have: &Section) -> Vec<&'a str> {
    want.properties
        .iter()
        .filter(|(k, v)| !same(k, have.properties.get(*k), v))
        .map(|(k, _)| k.as_str())
        .collect()
}

fn differs(cx: &HostCx, want: &PveStorage) -> Result<Vec<Change>, StepError> {
    let key = |what: &str| format!("storage {}{what}", want.id);
    let Some(have) = live(cx)?.remove(&want.id) else {
        let described = describe(&want.kind, &want.properties);
        return Ok(vec![Change::new(key(""), None, Some(described))]);
    };
    if have.kind != want.kind {
        let kinds = (Some(have.kind), Some(want.kind.clone()));
        return Ok(vec![Change::new(key(" type"), kinds.0, kinds.1)]);
    }
    Ok(differing(want, &have)
        .into_iter()
        .map(|k| {
            let live = have.properties.get(k).cloned();
            Change::new(
                key(&format!(" {k}")),
                live,
                Some(want.properties[k].clone()),
            )
        })
        .collect())
}

fn converge(cx: &HostCx, want: &PveStorage) -> Result<(), StepError> {
    let Some(have) = live(cx)?.remove(&want.id) else {
        return add(cx, want);
    };
    let keys = differing(want, &have);
    let fixed = have.kind != want.kind || want.fixed().iter().any(|k| keys.contains(k));
    if !fixed {
        return set(cx, want, &keys);
    }
    let what = format!("storage.{}", want.id);
    if !node::created(cx, &what)? && !cx.allow_destructive {
        return Err(StepError::new(
            format!(
                "storage {} exists as `{}` and Phoenix did not create it; what differs ({}) changes only by removing it and adding it again",
                want.id,
                describe(&have.kind, &have.properties),
                if have.kind != want.kind { "type".to_string() } else { keys.join(", ") }
            ),
            "rerun with --allow-destructive to let Phoenix replace it (`phoenix plan --setup --allow-destructive` lists it), or give the storage another id",
        ));
    }
    node::act(cx, ["pvesm", "remove", &want.id])?;
    add(cx, want)
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

/// `pvesm set` of the properties in `keys` (names of `want`'s properties, from [`differing`]).
fn set(cx: &HostCx, want: &PveStorage, keys: &[&str]) -> Result<(), StepError> {
    let mut argv = vec!["pvesm".to_string(), "set".into(), want.id.clone()];
    for k in keys {
        argv.extend([format!("--{k}"), want.properties[*k].clone()]);
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
    fn content_compares_as_a_set() {
        assert!(same(
            "content",
            Some(&"vztmpl,iso,backup".to_string()),
            "backup,iso,vztmpl"
        ));
        assert!(!same("path", Some(&"/a".to_string()), "/b"));
    }
}

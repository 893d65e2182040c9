//! `phoenix init DIR`: a config directory to start from: a minimal fleet (a container from a
//! template, and a clone of its snapshot) whose `$comment`s say what each part is for, the JSON
//! Schemas its `$schema` links point to, and an example feature. What it writes validates.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The files, by path below DIR.
const FILES: &[(&str, &str)] = &[
    ("phoenix_hypervisor_config.json", HYPERVISOR),
    ("phoenix_lxc_configs.json", LXC),
    ("features/hello.sh", FEATURE),
    (
        "schema/definitions.schema.json",
        include_str!("../../config/schema/definitions.schema.json"),
    ),
    (
        "schema/phoenix_hypervisor_config.schema.json",
        include_str!("../../config/schema/phoenix_hypervisor_config.schema.json"),
    ),
    (
        "schema/phoenix_lxc_configs.schema.json",
        include_str!("../../config/schema/phoenix_lxc_configs.schema.json"),
    ),
    (
        "schema/phoenix_vm_configs.schema.json",
        include_str!("../../config/schema/phoenix_vm_configs.schema.json"),
    ),
    (
        "schema/phoenix_stacks_config.schema.json",
        include_str!("../../config/schema/phoenix_stacks_config.schema.json"),
    ),
];

const HYPERVISOR: &str = r#"{
    "$schema": "./schema/phoenix_hypervisor_config.schema.json",
    "$comment": "The host: its bridge and DNS. `phoenix validate` checks this directory; see `man phoenix`.",
    "version": "1.0.0",
    "domain_name": "phoenix.lan",
    "timezone": "UTC",
    "network": {
        "interfaces": {
            "$comment": "The bridge guests attach to, with the host's address on it.",
            "name": "vmbr0",
            "address": "10.254.10.1/24",
            "dns_nameservers": ["10.254.10.1"]
        }
    }
}
"#;

const LXC: &str = r#"{
    "$schema": "./schema/phoenix_lxc_configs.schema.json",
    "lxc_configs": {
        "900": {
            "$comment": "A template container: made from the tarball (a path, or on Proxmox a volume id such as local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst), customized by its features, then snapshotted as final-form for its clones.",
            "name": "base",
            "template": "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
            "storage_pool": "local-zfs",
            "storage_size_gb": 8,
            "memory_mb": 1024,
            "cores": 2,
            "network_config": {"name": "eth0", "bridge": "vmbr0", "ip": "10.254.10.90/24", "gw": "10.254.10.1"},
            "features": ["hello"],
            "template_snapshot_name": "final-form"
        },
        "950": {
            "$comment": "A guest cloned from 900's final-form snapshot; `phoenix run 950` builds 900 first.",
            "name": "app",
            "clone_from_ctid": "900",
            "memory_mb": 2048,
            "cores": 2,
            "network_config": {"name": "eth0", "bridge": "vmbr0", "ip": "10.254.10.50/24", "gw": "10.254.10.1"}
        }
    }
}
"#;

const FEATURE: &str = r#"#!/bin/sh
# An example feature: runs once inside the guest (again only when this file or what it reads
# changes). Name it in a guest's "features". It reads nothing from the configuration:
# phoenix-reads:
set -eu
echo "hello from $(hostname)" > /etc/motd
"#;

/// Writes the scaffold into `dir`; refuses to overwrite a file unless `force`. Returns what it
/// wrote.
pub fn scaffold(dir: &Path, force: bool) -> Result<Vec<PathBuf>> {
    let existing: Vec<PathBuf> = FILES
        .iter()
        .map(|(p, _)| dir.join(p))
        .filter(|p| p.exists())
        .collect();
    if !force && !existing.is_empty() {
        let names: Vec<String> = existing.iter().map(|p| p.display().to_string()).collect();
        return Err(Error::usage(format!(
            "{} already exist(s); nothing was written (--force overwrites)",
            names.join(", ")
        )));
    }
    let mut wrote = Vec::new();
    for (path, text) in FILES {
        let p = dir.join(path);
        let io = |e: std::io::Error| Error::usage(format!("{}: {e}", p.display()));
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(&p, text).map_err(io)?;
        if path.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).map_err(io)?;
        }
        wrote.push(p);
    }
    Ok(wrote)
}

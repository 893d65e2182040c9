//! The node's storage as `phoenix setup` converges it: ZFS pools and datasets (`zfs`), and the
//! Proxmox storages (`storage.cfg`) made from three places — a dataset's `proxmox_storage_type`
//! (upstream's shape), an NFS export when `network.nfs_server` is set (upstream's `nfs-<name>`),
//! and `storages`, a list of storages written out.

use super::decode::{Node, Obj};
use super::values::Token;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// `zfs`: the ARC cap, pools and datasets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Zfs {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arc_max_gb: Option<u64>,
    pub pools: Vec<Pool>,
    pub datasets: Vec<Dataset>,
}

/// A pool over whole disks (`/dev/disk/by-id/...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pool {
    pub name: String,
    /// `mirror`, `raidz1`, `raidz2`, or `single` (a stripe).
    pub raid_level: String,
    pub disks: Vec<String>,
}

/// `<pool>/<name>`, mounted at `/<pool>/<name>`, with its properties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dataset {
    pub pool: String,
    pub name: String,
    pub properties: BTreeMap<String, String>,
}

impl Dataset {
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.pool, self.name)
    }

    pub fn mountpoint(&self) -> String {
        format!("/{}", self.full_name())
    }
}

/// One storage of `storage.cfg`: its id, type, and the properties `pvesm add` gets (`content` as
/// a sorted comma list, booleans as `0`/`1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PveStorage {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub properties: BTreeMap<String, String>,
    /// Where it was asked for (file and JSON pointer), for errors.
    pub found_at: String,
}

impl PveStorage {
    /// The properties Proxmox fixes when a storage is added (`fixed => 1` in the plugin's
    /// options): they change only by removing the storage and adding it again.
    pub fn fixed(&self) -> &'static [&'static str] {
        match self.kind.as_str() {
            "dir" => &["path"],
            "zfspool" => &["pool"],
            _ => &["server", "export", "path"],
        }
    }
}

const TYPES: &[&str] = &["dir", "zfspool", "nfs"];
const PROPERTIES: &[&str] = &[
    "path", "pool", "server", "export", "content", "shared", "options", "sparse",
];

/// `zfs`. Its storages (upstream's `proxmox_storage_type` on a dataset) go to `storages`, with
/// their ids from `ids` (`proxmox_storage_ids`).
pub fn zfs(n: Node<'_>, ids: &BTreeMap<String, String>, storages: &mut Vec<PveStorage>) -> Zfs {
    let Some(o) = n.object() else {
        return Zfs::default();
    };
    let mut z = Zfs {
        arc_max_gb: o.opt_uint("arc_max_gb", 0, 1 << 20),
        ..Zfs::default()
    };
    if let Some(v) = o.get("arc_max") {
        z.arc_max_gb = z.arc_max_gb.or_else(|| legacy_arc_max(v.node()));
    }
    if let Some(v) = o.get("pools") {
        z.pools = v.node().list(pool).unwrap_or_default();
    }
    if let Some(v) = o.get("datasets") {
        let list = v.node().list(|d| dataset(d, ids, storages));
        z.datasets = list.unwrap_or_default();
    }
    if let Some(v) = o.get("settings") {
        settings(v.node());
    }
    o.finish();
    z
}

/// Sept 2025: `arc_max` as a string like "32G".
fn legacy_arc_max(node: Node<'_>) -> Option<u64> {
    let s = node.str()?;
    match s.trim_end_matches(['G', 'g']).parse::<u64>() {
        Ok(gb) => {
            node.legacy(
                "`arc_max` as a string is a Sept 2025 shape",
                format!("\"arc_max_gb\": {gb}"),
            );
            Some(gb)
        }
        Err(_) => {
            node.error(
                format!("arc_max {s:?} is not a size in GiB like \"32G\""),
                Some("use arc_max_gb: 32".into()),
            );
            None
        }
    }
}

/// `zfs.settings.allow_destructive_operations` made upstream wipe disks on every run; Phoenix
/// asks for `--allow-destructive` on the command line instead, each time.
fn settings(n: Node<'_>) {
    let Some(o) = n.object() else { return };
    if let Some(v) = o.get("allow_destructive_operations") {
        if v.node().bool() == Some(true) {
            v.node().warning(
                "ignored: a file does not allow destroying data; pass --allow-destructive to the one run that should (`phoenix plan --setup --allow-destructive` lists what it would do)",
                None,
            );
        }
    }
    o.finish();
}

fn pool(n: Node<'_>) -> Option<Pool> {
    let o = n.object()?;
    let name = o
        .req("name", "the pool's name, like tank")
        .and_then(|v| v.node().token(Token::Name))?;
    let raid_level = match o.opt_str("raid_level").map(|r| r.to_lowercase()) {
        None => "single".to_string(),
        Some(r) if ["single", "stripe", "mirror", "raidz1", "raidz2", "raidz3"].contains(&&*r) => r,
        Some(r) => {
            n.error(
                format!("raid_level {r:?} is not one of single, mirror, raidz1, raidz2, raidz3"),
                None,
            );
            return None;
        }
    };
    let disks = o
        .get("disks")
        .and_then(|v| v.node().list(super::lxc::abs_path))
        .unwrap_or_default();
    o.finish();
    // No disks: a pool that must exist, made by hand (Sept 2025 files listed pools so).
    let least = match raid_level.as_str() {
        "mirror" | "raidz1" => 2,
        "raidz2" => 3,
        "raidz3" => 4,
        _ => 1,
    };
    if !disks.is_empty() && disks.len() < least {
        n.error(
            format!("pool {name} ({raid_level}) needs at least {least} disk(s)"),
            Some("\"disks\": [\"/dev/disk/by-id/...\"]".into()),
        );
        return None;
    }
    Some(Pool {
        name,
        raid_level,
        disks,
    })
}

fn dataset(
    n: Node<'_>,
    ids: &BTreeMap<String, String>,
    out: &mut Vec<PveStorage>,
) -> Option<Dataset> {
    let o = n.object()?;
    let name = o
        .req("name", "the dataset's name within its pool")
        .and_then(|v| v.node().token(Token::Path))?;
    let (pool, name) = match o.get("pool") {
        Some(v) => (v.node().token(Token::Name)?, name),
        None => legacy_pool(n, &name)?,
    };
    let properties = o
        .get("properties")
        .map(|p| properties(p.node()))
        .unwrap_or_default();
    o.mark("storage_class");
    o.mark("proxmox_content_type");
    let d = Dataset {
        pool,
        name,
        properties,
    };
    if let Some(kind) = o.opt_str("proxmox_storage_type") {
        let content = o
            .get("proxmox_content_type")
            .and_then(|v| content(v.node()));
        let id = ids
            .get(&format!("{}_{}", d.pool, d.name.replace('-', "_")))
            .cloned()
            .unwrap_or_else(|| format!("{}-{}", d.pool, d.name.replace('/', "-")));
        let mut props = BTreeMap::new();
        match kind.as_str() {
            "zfspool" => props.insert("pool".to_string(), d.full_name()),
            "dir" => {
                props.insert("shared".to_string(), "1".to_string());
                props.insert("path".to_string(), d.mountpoint())
            }
            other => {
                n.error(
                    format!("proxmox_storage_type {other:?} is not zfspool or dir"),
                    None,
                );
                None
            }
        };
        if let Some(c) = content {
            props.insert("content".into(), c);
        }
        if props.contains_key("pool") || props.contains_key("path") {
            out.push(storage_at(n, id, kind, props));
        }
    }
    o.finish();
    Some(d)
}

/// Sept 2025: `"name": "pool/dataset"` without `pool`.
fn legacy_pool(n: Node<'_>, name: &str) -> Option<(String, String)> {
    match name.split_once('/') {
        Some((pool, ds)) if !pool.is_empty() && !ds.is_empty() => {
            n.legacy(
                "a dataset named `pool/dataset` without `pool` is a Sept 2025 shape",
                format!("\"pool\": {pool:?}, \"name\": {ds:?}"),
            );
            Some((pool.to_string(), ds.to_string()))
        }
        _ => {
            n.error(
                "missing required field `pool` (the pool it lives in)",
                Some("\"pool\": \"tank\"".into()),
            );
            None
        }
    }
}

fn storage_at(
    n: Node<'_>,
    id: String,
    kind: String,
    properties: BTreeMap<String, String>,
) -> PveStorage {
    PveStorage {
        id,
        kind,
        properties,
        found_at: format!("{}#{}", n.file, n.pointer()),
    }
}

/// Dataset properties: an object (Sept 2025) or a comma string `k=v,k=v` (since).
pub fn properties(n: Node<'_>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let pairs: Vec<(String, String)> = match n.value {
        Value::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .filter_map(|part| match part.split_once('=') {
                Some((k, v)) => Some((k.trim().to_string(), v.trim().to_string())),
                None => {
                    n.error(format!("property {part:?} is not key=value"), None);
                    None
                }
            })
            .collect(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().map_or(v.to_string(), String::from)))
            .collect(),
        _ => {
            n.error("expected an object or a \"key=value,...\" string", None);
            Vec::new()
        }
    };
    for (k, v) in pairs {
        let ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.:-/@+".contains(c))
        };
        match ok(&k) && ok(&v) {
            true => {
                out.insert(k, v);
            }
            false => n.error(
                format!("property {k}={v} is not a ZFS property and value"),
                Some("like recordsize=128K or compression=lz4".into()),
            ),
        }
    }
    out
}

/// Content types: `"images,rootdir"` or a list; sorted, as `storage.cfg` keeps them.
fn content(n: Node<'_>) -> Option<String> {
    let mut words = match n.value {
        Value::String(s) => s.split(',').map(|w| w.trim().to_string()).collect(),
        _ => n.list(|w| w.str().map(String::from))?,
    };
    words.retain(|w| !w.is_empty());
    const KNOWN: &[&str] = &[
        "images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import",
    ];
    if let Some(bad) = words.iter().find(|w| !KNOWN.contains(&w.as_str())) {
        n.error(
            format!("content type {bad:?} is not one of {}", KNOWN.join(", ")),
            None,
        );
        return None;
    }
    words.sort();
    words.dedup();
    Some(words.join(","))
}

/// `storages`: `[{"id", "type": "dir"|"zfspool"|"nfs", "path"|"pool"|"server"+"export", "content",
/// "shared", "options"}]`.
pub fn storages(n: Node<'_>) -> Vec<PveStorage> {
    n.list(storage).unwrap_or_default()
}

fn storage(n: Node<'_>) -> Option<PveStorage> {
    let o = n.object()?;
    let id = o
        .req("id", "the storage id, like models")
        .and_then(|v| v.node().token(Token::Name))?;
    let kind = o.req("type", "dir, zfspool or nfs").and_then(|v| {
        let node = v.node();
        let t = node.str()?;
        if TYPES.contains(&t) {
            return Some(t.to_string());
        }
        node.error(
            format!("storage type {t:?} is not one of dir, zfspool, nfs"),
            None,
        );
        None
    })?;
    let props = storage_properties(&o);
    o.finish();
    if !pve_storage_id(&id) {
        n.error(
            format!("{id:?} is not a Proxmox storage id (a letter, then letters, digits, `-`, `_`, `.`, ending in a letter or digit)"),
            None,
        );
        return None;
    }
    let allowed: &[&str] = match kind.as_str() {
        "dir" => &["path", "content", "shared"],
        "zfspool" => &["pool", "content", "sparse"],
        _ => &["server", "export", "path", "content", "options"],
    };
    if let Some(k) = props.keys().find(|k| !allowed.contains(&k.as_str())) {
        n.error(
            format!(
                "a {kind} storage has no `{k}` (it takes {})",
                allowed.join(", ")
            ),
            None,
        );
        return None;
    }
    if kind == "zfspool" {
        let content = props.get("content").map_or("", String::as_str);
        if let Some(c) = content
            .split(',')
            .find(|c| !c.is_empty() && !["images", "rootdir"].contains(c))
        {
            n.error(
                format!("a zfspool storage holds images and rootdir, not {c}"),
                None,
            );
            return None;
        }
    }
    let need: &[&str] = match kind.as_str() {
        "dir" => &["path"],
        "zfspool" => &["pool"],
        _ => &["server", "export"],
    };
    if let Some(missing) = need.iter().find(|k| !props.contains_key(**k)) {
        n.error(format!("a {kind} storage needs `{missing}`"), None);
        return None;
    }
    Some(storage_at(n, id, kind, props))
}

fn storage_properties(o: &Obj<'_>) -> BTreeMap<String, String> {
    let mut props = BTreeMap::new();
    for key in PROPERTIES {
        let Some(v) = o.get(key) else { continue };
        let node = v.node();
        let value = match *key {
            "content" => content(node),
            "shared" | "sparse" => node.bool().map(|b| u8::from(b).to_string()),
            "path" | "export" => super::lxc::abs_path(node),
            "pool" => node.token(Token::Path),
            _ => node.token(Token::Options),
        };
        if let Some(value) = value {
            props.insert(key.to_string(), value);
        }
    }
    props
}

/// PVE::JSONSchema's `pve-storage-id`.
fn pve_storage_id(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphabetic()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
}

/// Upstream's NFS storage for each export of this node: `nfs-<last path part>`, served by
/// `network.nfs_server`, mounted at `/mnt/nfs/<id>` with upstream's options and contents.
pub fn nfs_storages(
    server: &str,
    exports: &[super::host::NfsExport],
    file: &str,
) -> Vec<PveStorage> {
    exports
        .iter()
        .filter_map(|e| {
            let base = e.path.trim_end_matches('/').rsplit('/').next()?;
            let id = format!("nfs-{base}");
            let props = [
                ("server", server.to_string()),
                ("export", e.path.clone()),
                ("path", format!("/mnt/nfs/{id}")),
                ("content", "backup,images,iso,snippets,vztmpl".to_string()),
                ("options", "vers=4,soft,timeo=30,retrans=3".to_string()),
            ];
            Some(PveStorage {
                id,
                kind: "nfs".into(),
                properties: props.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                found_at: format!("{file}#/nfs/exports"),
            })
        })
        .collect()
}

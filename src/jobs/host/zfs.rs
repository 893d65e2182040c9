//! `storage`: ZFS, where the node has it — the ARC cap (`zfs_arc`), one step per pool
//! (`zfs_pool:<name>`) and per dataset (`zfs_dataset:<pool>/<name>`).
//!
//! A pool that exists is never touched again; one that exists but is not imported (a reinstalled
//! node) is imported, not recreated. A new pool goes only over disks without a
//! signature; a disk that holds one (a file system, an old pool, a partition table) is wiped only
//! with `--allow-destructive` — listed first by `phoenix plan --setup --allow-destructive` — and
//! never because the file says so (upstream's `allow_destructive_operations`). A dataset is
//! created at `/<pool>/<name>` with its properties, or has them set (its mountpoint is never
//! changed once it exists).

use super::{node, push, push_value, HostCx, HostState};
use crate::backend::Change;
use crate::config::host_storage::{Dataset, Pool};
use crate::jobs::{Row, StepError, Table};

const ARC_FILE: &str = "/etc/modprobe.d/zfs.conf";
const ARC_LIVE: &str = "/sys/module/zfs/parameters/zfs_arc_max";

pub fn steps(t: &mut Table<HostState, HostCx>, cx: &HostCx) {
    let z = &cx.setup.zfs;
    if let Some(gb) = z.arc_max_gb {
        let row = Row::new("zfs_arc", HostState::Storage, &("zfs_arc", gb));
        push(
            t,
            row,
            move |cx| arc_differs(cx, gb),
            move |cx| set_arc(cx, gb),
        );
    }
    for p in &z.pools {
        let row = Row::new(
            format!("zfs_pool:{}", p.name),
            HostState::Storage,
            &("pool", p),
        );
        push_value(t, row, p.clone(), pool_differs, create_pool);
    }
    for d in &z.datasets {
        let step = format!("zfs_dataset:{}", d.full_name());
        let row = Row::new(&step, HostState::Storage, &("dataset", d));
        push_value(t, row, d.clone(), dataset_differs, converge_dataset);
    }
}

/// Without `zfs` on the node nothing here can hold: say so, once, in the step's error.
fn need_zfs(cx: &HostCx) -> Result<(), StepError> {
    match node::has(cx, "zpool")? && node::has(cx, "zfs")? {
        true => Ok(()),
        false => Err(StepError::new(
            "the file asks for ZFS (`zfs`), and the node has no `zpool`/`zfs` commands",
            "install zfsutils-linux on the node (a Proxmox VE node has it), or remove the `zfs` section",
        )),
    }
}

fn arc_line(gb: u64) -> String {
    format!("options zfs zfs_arc_max={}\n", gb << 30)
}

fn arc_differs(cx: &HostCx, gb: u64) -> Result<Vec<Change>, StepError> {
    let current = node::read(cx, ARC_FILE)?.unwrap_or_default();
    let want = node::with_block(ARC_FILE, &current, "zfs.arc", &arc_line(gb))?;
    let mut out: Vec<Change> = node::file_change(cx, ARC_FILE, &want)?
        .into_iter()
        .collect();
    let live = node::read(cx, ARC_LIVE)?.map(|s| s.trim().to_string());
    if live.as_ref().is_some_and(|l| *l != (gb << 30).to_string()) {
        out.push(Change::new(ARC_LIVE, live, Some((gb << 30).to_string())));
    }
    Ok(out)
}

/// The cap for the next boot (`/etc/modprobe.d/zfs.conf`), and now where the module is loaded.
fn set_arc(cx: &HostCx, gb: u64) -> Result<(), StepError> {
    let current = node::read(cx, ARC_FILE)?.unwrap_or_default();
    let want = node::with_block(ARC_FILE, &current, "zfs.arc", &arc_line(gb))?;
    node::act(cx, ["mkdir", "-p", "/etc/modprobe.d"])?;
    node::write(cx, ARC_FILE, &want, 0o644)?;
    if node::read(cx, ARC_LIVE)?.is_some() {
        let script = format!("echo {} > {ARC_LIVE}", gb << 30);
        node::act(cx, ["sh", "-c", &script])?;
    }
    // The module may load from the initramfs (root on ZFS): it must carry the cap too.
    node::update_initramfs(cx)
}

fn pool_differs(cx: &HostCx, p: &Pool) -> Result<Vec<Change>, StepError> {
    if node::has(cx, "zpool")?
        && node::ask(cx, ["zpool", "list", "-H", "-o", "name", &p.name])?.is_some()
    {
        return Ok(Vec::new());
    }
    let mut out = vec![Change::new(
        format!("zfs pool {}", p.name),
        None,
        Some(format!("{} {}", p.raid_level, p.disks.join(" "))),
    )];
    if cx.allow_destructive {
        for (disk, signatures) in signatures(cx, p)? {
            out.push(Change::new(
                format!("disk {disk} (wiped)"),
                Some(signatures),
                None,
            ));
        }
    }
    Ok(out)
}

/// Each disk of `p` that holds a signature, with what `wipefs` finds on it.
fn signatures(cx: &HostCx, p: &Pool) -> Result<Vec<(String, String)>, StepError> {
    let mut out = Vec::new();
    for disk in &p.disks {
        let found = node::ask_all(cx, ["wipefs", "--noheadings", "--output", "TYPE", disk])?;
        let Some(found) = found else {
            return Err(StepError::new(
                format!("pool {}: cannot read disk {disk}", p.name),
                "check the path (`ls -l /dev/disk/by-id/`)",
            ));
        };
        let kinds: Vec<&str> = found.split_whitespace().collect();
        if !kinds.is_empty() {
            out.push((disk.clone(), kinds.join(", ")));
        }
    }
    Ok(out)
}

/// `zpool create` as upstream made them (autotrim, lz4, no atime), after wiping what
/// `--allow-destructive` allows.
fn create_pool(cx: &HostCx, p: &Pool) -> Result<(), StepError> {
    need_zfs(cx)?;
    // A pool that exists but is not imported (a reinstalled node) is imported, never recreated.
    if node::ask(cx, ["zpool", "import", &p.name])?.is_some() {
        return Ok(());
    }
    if p.disks.is_empty() {
        return Err(StepError::new(
            format!(
                "pool {} does not exist, and the file gives no disks to make it of",
                p.name
            ),
            "create it by hand (`zpool create`), or give its `disks` (and `raid_level`)",
        ));
    }
    let used = signatures(cx, p)?;
    if !used.is_empty() && !cx.allow_destructive {
        let list: Vec<String> = used.iter().map(|(d, s)| format!("{d} ({s})")).collect();
        return Err(StepError::new(
            format!("pool {}: disks hold data: {}", p.name, list.join("; ")),
            "check them; `phoenix setup --allow-destructive` wipes them (`phoenix plan --setup --allow-destructive` lists it first)",
        ));
    }
    for (disk, _) in &used {
        node::act(cx, ["wipefs", "--all", disk])?;
    }
    node::act_argv(cx, &pool_argv(p))?;
    node::record_created(cx, &format!("pool.{}", p.name))
}

fn pool_argv(p: &Pool) -> Vec<String> {
    let mut argv: Vec<String> = [
        "zpool",
        "create",
        "-o",
        "autotrim=on",
        "-O",
        "compression=lz4",
        "-O",
        "atime=off",
    ]
    .map(String::from)
    .into();
    argv.push(p.name.clone());
    if !matches!(p.raid_level.as_str(), "single" | "stripe") {
        argv.push(p.raid_level.clone());
    }
    argv.extend(p.disks.iter().cloned());
    argv
}

fn dataset_differs(cx: &HostCx, d: &Dataset) -> Result<Vec<Change>, StepError> {
    let name = d.full_name();
    let live = match node::has(cx, "zfs")? {
        true => node::ask_all(
            cx,
            [
                "zfs",
                "get",
                "-H",
                "-p",
                "-o",
                "property,value",
                "all",
                &name,
            ],
        )?,
        false => None,
    };
    let Some(live) = live else {
        return Ok(vec![Change::new(
            format!("zfs dataset {name}"),
            None,
            Some(props(d)),
        )]);
    };
    let have: std::collections::BTreeMap<&str, &str> =
        live.lines().filter_map(|l| l.split_once('\t')).collect();
    Ok(wanted(d)
        .into_iter()
        .filter(|(k, v)| !same_value(have.get(k.as_str()).copied(), v))
        .map(|(k, v)| {
            let key = format!("zfs {name} {k}");
            Change::new(key, have.get(k.as_str()).map(|s| s.to_string()), Some(v))
        })
        .collect())
}

/// Sizes (`quota=800G`) read back as bytes (`-p`), `none` as `0`, and `acltype=posixacl` as
/// `posix`; the rest as written.
fn same_value(live: Option<&str>, want: &str) -> bool {
    let Some(live) = live else { return false };
    let want = match want {
        "none" if live == "0" => "0",
        "posixacl" => "posix",
        w => w,
    };
    live == want || parse_size(want).is_some_and(|b| live.parse::<u64>() == Ok(b))
}

fn parse_size(s: &str) -> Option<u64> {
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
    let shift = match unit.to_ascii_uppercase().trim_end_matches('B') {
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        "P" => 50,
        _ => return None,
    };
    let n: f64 = num.parse().ok()?;
    Some((n * (1u64 << shift) as f64) as u64)
}

/// The properties compared and set: the file's. The mountpoint is set when Phoenix creates the
/// dataset, never changed on one that exists.
fn wanted(d: &Dataset) -> Vec<(String, String)> {
    d.properties.clone().into_iter().collect()
}

fn props(d: &Dataset) -> String {
    let v: Vec<String> = wanted(d).iter().map(|(k, v)| format!("{k}={v}")).collect();
    v.join(",")
}

fn converge_dataset(cx: &HostCx, d: &Dataset) -> Result<(), StepError> {
    need_zfs(cx)?;
    let name = d.full_name();
    if node::ask(cx, ["zfs", "list", "-H", "-o", "name", &name])?.is_none() {
        let mut argv = vec!["zfs".to_string(), "create".into()];
        if !d.properties.contains_key("mountpoint") {
            argv.extend(["-o".to_string(), format!("mountpoint={}", d.mountpoint())]);
        }
        for (k, v) in wanted(d) {
            argv.extend(["-o".to_string(), format!("{k}={v}")]);
        }
        argv.push(name);
        return node::act_argv(cx, &argv);
    }
    for change in dataset_differs(cx, d)? {
        let prop = change.key.rsplit(' ').next().unwrap_or_default();
        let value = change.want.unwrap_or_default();
        node::act(cx, ["zfs", "set", &format!("{prop}={value}"), &name])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_are_created_as_upstream_made_them() {
        let p = |level: &str, disks: &[&str]| Pool {
            name: "quickOS".into(),
            raid_level: level.into(),
            disks: disks.iter().map(|d| d.to_string()).collect(),
        };
        assert_eq!(
            pool_argv(&p("mirror", &["/dev/a", "/dev/b"])).join(" "),
            "zpool create -o autotrim=on -O compression=lz4 -O atime=off quickOS mirror /dev/a /dev/b"
        );
        assert_eq!(
            pool_argv(&p("single", &["/dev/a"])).join(" "),
            "zpool create -o autotrim=on -O compression=lz4 -O atime=off quickOS /dev/a"
        );
    }

    #[test]
    fn sizes_compare_with_what_zfs_reads_back() {
        assert!(same_value(Some("858993459200"), "800G"));
        assert!(same_value(Some("1539316278886"), "1.4T"));
        assert!(same_value(Some("lz4"), "lz4"));
        assert!(!same_value(Some("off"), "lz4"));
        assert!(!same_value(None, "lz4"));
        assert!(same_value(Some("0"), "none"));
        assert!(same_value(Some("posix"), "posixacl"));
        assert_eq!(parse_size("128K"), Some(131072));
    }
}

//! Free space where the guests live (the LXC path on plain LXC; on Proxmox the storages the
//! fleet uses, from `pvesm status` on the node, or the node's root when that fails) and where
//! the state is kept: a warning under 10 GiB, a failure under 1 GiB.

use super::super::Options;
use super::{probe, Check};
use crate::backend::files::nearest_existing;
use crate::exec::Runner;
use crate::session::Session;
use std::collections::BTreeSet;
use std::path::Path;

const GIB_KIB: u64 = 1024 * 1024;
const WARN_BELOW_KIB: u64 = 10 * GIB_KIB;
const FAIL_BELOW_KIB: u64 = GIB_KIB;

/// Free space where the guests live.
pub fn guests(s: &Session, opts: &Options, has_fleet: bool) -> Vec<Check> {
    if s.backend.kind() == "lxc" {
        return vec![filesystem("disk (lxc path)", &opts.lxc_path, &*s.runner)];
    }
    let used = match has_fleet {
        true => storages_of(s),
        false => BTreeSet::new(),
    };
    let pvesm = match &opts.pve_tools {
        Some(d) => d.join("pvesm").display().to_string(),
        None => "pvesm".into(),
    };
    match probe(&*s.runner, [pvesm.as_str(), "status"]) {
        Some(table) => storages(&table, &used),
        None => vec![filesystem("disk (node root)", &opts.pve_root, &*s.runner)],
    }
}

/// Free space where the state is kept (this machine).
pub fn state(dir: &Path, local: &dyn Runner) -> Check {
    filesystem("disk (state dir)", dir, local)
}

/// The storages the containers' disks and volumes are on.
fn storages_of(s: &Session) -> BTreeSet<String> {
    let fleet = &s.fleet;
    let mut used = BTreeSet::new();
    for ct in fleet.lxc.containers.values() {
        used.extend(fleet.storage_of(ct).map(String::from));
        used.extend(ct.volumes.iter().map(|v| v.storage.clone()));
    }
    used
}

/// One check per active storage of `pvesm status` (those in `used`, when it names any).
fn storages(table: &str, used: &BTreeSet<String>) -> Vec<Check> {
    parse_pvesm(table)
        .into_iter()
        .filter(|(name, _)| used.is_empty() || used.contains(name))
        .map(|(name, free)| {
            let fix = format!(
                "free space on storage {name} (pvesm status), or move storage_pool elsewhere"
            );
            verdict(
                format!("disk (storage {name})"),
                format!("storage {name}"),
                free,
                fix,
            )
        })
        .collect()
}

/// `(name, available KiB)` of each active storage in `pvesm status` (Name Type Status Total
/// Used Available %).
fn parse_pvesm(table: &str) -> Vec<(String, u64)> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let free = f.get(5)?.parse().ok()?;
            (f.get(2) == Some(&"active")).then(|| (f[0].to_string(), free))
        })
        .collect()
}

/// Free space of the filesystem holding `path` (or its nearest existing parent), by `df -Pk`.
fn filesystem(name: &str, path: &Path, runner: &dyn Runner) -> Check {
    let shown = path.display().to_string();
    let at = nearest_existing(path)
        .unwrap_or(Path::new("/"))
        .display()
        .to_string();
    match probe(runner, ["df", "-Pk", at.as_str()]).and_then(|t| parse_df(&t)) {
        Some(free) => verdict(
            name.to_string(),
            shown.clone(),
            free,
            format!("free space on the filesystem holding {shown} (df -h {at})"),
        ),
        None => Check::warn(
            name,
            format!("cannot read the free space of {shown}"),
            format!("df -h {at}"),
        ),
    }
}

/// Available KiB in `df -Pk` output (Filesystem 1024-blocks Used Available Capacity Mounted).
fn parse_df(text: &str) -> Option<u64> {
    text.lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()
}

fn verdict(name: String, what: String, free_kib: u64, fix: String) -> Check {
    let detail = format!("{what}: {:.1} GiB free", free_kib as f64 / GIB_KIB as f64);
    if free_kib < FAIL_BELOW_KIB {
        Check::fail(name, format!("{detail}, under 1 GiB"), fix)
    } else if free_kib < WARN_BELOW_KIB {
        Check::warn(name, format!("{detail}, under 10 GiB"), fix)
    } else {
        Check::ok(name, detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::doctor::Level;

    #[test]
    fn df_and_pvesm_are_read() {
        let df = "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 100 40 60 40% /\n";
        assert_eq!(parse_df(df), Some(60));
        let pvesm = "Name Type Status Total (KiB) Used (KiB) Available (KiB) %\n\
                     local dir active 100 10 90 10.00%\n\
                     nfs nfs inactive 0 0 0 0.00%\n";
        assert_eq!(parse_pvesm(pvesm), [("local".to_string(), 90)]);
    }

    #[test]
    fn thresholds() {
        let at = |kib| verdict("d".into(), "x".into(), kib, "f".into()).status;
        assert_eq!(at(GIB_KIB / 2), Level::Fail);
        assert_eq!(at(5 * GIB_KIB), Level::Warn);
        assert_eq!(at(20 * GIB_KIB), Level::Ok);
    }
}

//! Which cgroup key family the host uses: `lxc.cgroup2.*` on a unified (v2) host such as Proxmox
//! 7/8, `lxc.cgroup.*` on a v1 or hybrid host (where cgroup2 keys are silently ignored).

use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

impl CgroupVersion {
    /// Reads the host: unified when the root has a non-empty `cgroup.controllers`.
    pub fn detect() -> CgroupVersion {
        Self::detect_at(Path::new("/sys/fs/cgroup"))
    }

    pub fn detect_at(root: &Path) -> CgroupVersion {
        match std::fs::read_to_string(root.join("cgroup.controllers")) {
            Ok(s) if !s.trim().is_empty() => CgroupVersion::V2,
            _ => CgroupVersion::V1,
        }
    }

    pub fn prefix(self) -> &'static str {
        match self {
            CgroupVersion::V1 => "lxc.cgroup",
            CgroupVersion::V2 => "lxc.cgroup2",
        }
    }

    /// Config lines limiting memory (and memory+swap) and CPU.
    pub fn resource_lines(
        self,
        memory_mb: u64,
        swap_mb: u64,
        cores: u64,
        memsw: bool,
    ) -> Vec<String> {
        let p = self.prefix();
        match self {
            CgroupVersion::V1 => {
                let mut v = vec![format!("{p}.memory.limit_in_bytes = {memory_mb}M")];
                if memsw {
                    v.push(format!(
                        "{p}.memory.memsw.limit_in_bytes = {}M",
                        memory_mb + swap_mb
                    ));
                }
                v.push(format!("{p}.cpu.cfs_period_us = 100000"));
                v.push(format!("{p}.cpu.cfs_quota_us = {}", cores * 100_000));
                v
            }
            CgroupVersion::V2 => vec![
                format!("{p}.memory.max = {memory_mb}M"),
                format!("{p}.memory.swap.max = {swap_mb}M"),
                format!("{p}.cpu.max = {} 100000", cores * 100_000),
            ],
        }
    }

    /// The live `lxc-cgroup` (key, value) pairs of the same limits.
    pub fn live_values(
        self,
        memory_mb: u64,
        swap_mb: u64,
        cores: u64,
        memsw: bool,
    ) -> Vec<(String, String)> {
        self.resource_lines(memory_mb, swap_mb, cores, memsw)
            .into_iter()
            .filter_map(|l| {
                let (k, v) = l.split_once(" = ")?;
                Some((
                    k.trim_start_matches(self.prefix())
                        .trim_start_matches('.')
                        .to_string(),
                    v.to_string(),
                ))
            })
            // The period must be set before the quota, and memsw after memory (kernel rules).
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_both_families() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(CgroupVersion::detect_at(d.path()), CgroupVersion::V1);
        std::fs::write(d.path().join("cgroup.controllers"), "").unwrap();
        assert_eq!(CgroupVersion::detect_at(d.path()), CgroupVersion::V1);
        std::fs::write(
            d.path().join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        assert_eq!(CgroupVersion::detect_at(d.path()), CgroupVersion::V2);
    }

    #[test]
    fn resource_keys() {
        assert_eq!(
            CgroupVersion::V2.resource_lines(512, 256, 2, false),
            [
                "lxc.cgroup2.memory.max = 512M",
                "lxc.cgroup2.memory.swap.max = 256M",
                "lxc.cgroup2.cpu.max = 200000 100000"
            ]
        );
        let v1 = CgroupVersion::V1.resource_lines(512, 0, 1, true);
        assert_eq!(v1[0], "lxc.cgroup.memory.limit_in_bytes = 512M");
        assert_eq!(v1[1], "lxc.cgroup.memory.memsw.limit_in_bytes = 512M");
        assert_eq!(
            CgroupVersion::V1.live_values(512, 0, 1, false)[0],
            ("memory.limit_in_bytes".to_string(), "512M".to_string())
        );
    }
}

//! The config-file lines each setting owns on plain LXC (its `# phoenix:begin NAME` section).

use super::config_file::normalise_option;
use super::LxcBackend;
use crate::backend::{gpu, idmap, BackendError, Nic, Result, Setting};
use crate::config::lxc::{MountPoint, Volume};
use crate::config::values::IpConfig;
use crate::config::GuestId;
use std::path::Path;

impl LxcBackend {
    /// The desired lines of a setting's section.
    pub(super) fn section_lines(&self, id: GuestId, s: &Setting) -> Result<Vec<String>> {
        Ok(match s {
            Setting::Hostname(_) => Vec::new(),
            Setting::Resources {
                memory_mb,
                swap_mb,
                cores,
            } => self
                .cgroup
                .resource_lines(*memory_mb, *swap_mb, *cores, self.memsw),
            Setting::Network { nics, .. } => nics.iter().flat_map(network).collect(),
            Setting::Startup {
                onboot,
                order,
                delay,
            } => startup(*onboot, *order, *delay),
            Setting::Security {
                apparmor_profile,
                nesting,
                features,
            } => security(apparmor_profile, *nesting, features),
            Setting::IdMaps { unprivileged, maps } if *unprivileged => {
                let mut v = vec!["lxc.include = /usr/share/lxc/config/userns.conf".to_string()];
                v.extend(idmap::lines(maps).map_err(BackendError::Invalid)?);
                v
            }
            Setting::IdMaps { .. } => Vec::new(),
            Setting::RawOptions(opts) => opts.iter().map(|o| normalise_option(o)).collect(),
            // The plain LXC backend runs on the guests' host: its /proc/devices is theirs.
            Setting::Gpus(gpus) => {
                let devices = std::fs::read_to_string("/proc/devices").unwrap_or_default();
                gpu::lines(gpus, self.cgroup, &devices)
            }
            Setting::Mounts { binds, volumes, .. } => self.mounts(id, binds, volumes),
            Setting::Firewall { .. } | Setting::RootfsSize(_) => {
                return Err(BackendError::Invalid(format!(
                    "{id}: the lxc backend cannot apply {}",
                    s.name()
                )));
            }
        })
    }

    /// Where a volume lives on the host: a directory under the container's own.
    pub(super) fn volume_dir(&self, id: GuestId, v: &Volume) -> std::path::PathBuf {
        self.dir(id).join("volumes").join(&v.name)
    }

    fn mounts(&self, id: GuestId, binds: &[MountPoint], volumes: &[Volume]) -> Vec<String> {
        let bind = |host: &str, path: &str, kind: &str| {
            format!(
                "lxc.mount.entry = {host} {} none bind,create={kind} 0 0",
                path.trim_start_matches('/')
            )
        };
        let files = binds.iter().map(|b| {
            let kind = if Path::new(&b.host_path).is_file() {
                "file"
            } else {
                "dir"
            };
            bind(&b.host_path, &b.container_path, kind)
        });
        let dirs = volumes.iter().map(|v| {
            bind(
                &self.volume_dir(id, v).display().to_string(),
                &v.mount_point,
                "dir",
            )
        });
        files.chain(dirs).collect()
    }
}

fn network(n: &Nic) -> Vec<String> {
    let k = format!("lxc.net.{}", n.index);
    let mut v = vec![
        format!("{k}.type = veth"),
        format!("{k}.link = {}", n.bridge),
        format!("{k}.flags = up"),
        format!("{k}.name = {}", n.name),
        format!("{k}.hwaddr = {}", n.hwaddr.to_string().to_ascii_lowercase()),
    ];
    if let IpConfig::Static(cidr) = n.ip {
        v.push(format!("{k}.ipv4.address = {cidr}"));
        if let Some(gw) = n.gw {
            v.push(format!("{k}.ipv4.gateway = {gw}"));
        }
    }
    v
}

fn startup(onboot: bool, order: Option<u64>, delay: Option<u64>) -> Vec<String> {
    let mut v = vec![format!("lxc.start.auto = {}", u8::from(onboot))];
    if let Some(o) = order {
        v.push(format!("lxc.start.order = {o}"));
    }
    if let Some(d) = delay {
        v.push(format!("lxc.start.delay = {d}"));
    }
    v
}

fn security(apparmor_profile: &str, nesting: bool, features: &[String]) -> Vec<String> {
    let mut v = Vec::new();
    let nest = nesting || features.iter().any(|f| f == "nesting=1");
    // With nesting the nesting.conf include picks the profile; otherwise set ours.
    if nest {
        v.push("lxc.include = /usr/share/lxc/config/nesting.conf".to_string());
        v.push("lxc.apparmor.allow_nesting = 1".to_string());
    }
    v.push(format!("lxc.apparmor.profile = {apparmor_profile}"));
    for f in features {
        match f.as_str() {
            // Only unprivileged containers filter keyctl; a privileged one has it.
            "nesting=1" | "nesting=0" | "keyctl=0" | "keyctl=1" | "fuse=0" => {}
            "fuse=1" => v.push(
                "lxc.mount.entry = /dev/fuse dev/fuse none bind,create=file,optional 0 0"
                    .to_string(),
            ),
            other => v.push(format!(
                "# Proxmox feature {other} has no plain-LXC equivalent; not applied"
            )),
        }
    }
    v
}

pub(super) fn resolv_conf(nameservers: &[std::net::Ipv4Addr]) -> String {
    let mut s = String::from("# Managed by Phoenix\n");
    for ns in nameservers {
        s.push_str(&format!("nameserver {ns}\n"));
    }
    s
}

//! NVIDIA GPU passthrough lines for a container: the per-GPU device nodes, the control nodes, and
//! cgroup device permissions with the majors the host really uses (`/proc/devices`), never a
//! hard-coded 243.

use super::cgroup::CgroupVersion;

/// The lines (`key = value`) for `gpus`; none when there are none. `devices` is the guests'
/// host's `/proc/devices`.
pub fn lines(gpus: &[u32], cgroup: CgroupVersion, devices: &str) -> Vec<String> {
    if gpus.is_empty() {
        return Vec::new();
    }
    let bind = |dev: &str| {
        format!("lxc.mount.entry = /dev/{dev} dev/{dev} none bind,optional,create=file 0 0")
    };
    let mut v: Vec<String> = gpus.iter().map(|g| bind(&format!("nvidia{g}"))).collect();
    for dev in [
        "nvidiactl",
        "nvidia-uvm",
        "nvidia-uvm-tools",
        "nvidia-modeset",
    ] {
        v.push(bind(dev));
    }
    v.push(
        "lxc.mount.entry = /dev/nvidia-caps dev/nvidia-caps none bind,optional,create=dir 0 0"
            .to_string(),
    );
    let allow = format!("{}.devices.allow", cgroup.prefix());
    v.push(format!("{allow} = c 195:* rwm"));
    for name in ["nvidia-uvm", "nvidia-caps"] {
        match major(devices, name) {
            Some(m) => v.push(format!("{allow} = c {m}:* rwm")),
            None => v.push(format!(
                "# {name} is not loaded on this host: no device permission for it"
            )),
        }
    }
    v
}

/// The major number of character device `name` in a `/proc/devices` listing.
fn major(devices: &str, name: &str) -> Option<String> {
    devices.lines().find_map(|l| {
        l.trim()
            .split_once(' ')
            .filter(|(_, n)| n.trim() == name)
            .map(|(m, _)| m.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majors_come_from_the_listing() {
        let devices = "Character devices:\n  1 mem\n195 nvidia\n235 nvidia-uvm\n511 nvidia-caps\n";
        assert_eq!(major(devices, "nvidia-uvm").as_deref(), Some("235"));
        assert_eq!(major(devices, "nvidia-caps").as_deref(), Some("511"));
        assert_eq!(major(devices, "nvidia-modeset"), None);
    }
}

//! VM settings as the keys of `/etc/pve/qemu-server/VMID.conf` (qemu-server
//! `PVE/QemuServer.pm` `$confdesc`): each setting owns some keys and wants a value for each (or
//! none); what differs is set with one `qm set` (`--delete` for what goes). The boot disk is grown
//! with `qm resize`, never shrunk. SSH keys reach `qm set` as a file on the node (qm.pm maps
//! `--sshkeys FILE` to its URI-escaped contents), so no key is on a command line.

use super::firewall::Kind;
use super::pct::{props, size_gb, PctConfig};
use super::qm::BOOT_DISK;
use super::ProxmoxBackend;
use crate::backend::vm::{CloudInit, VmSetting, Vms};
use crate::backend::{Change, Result, RunState};
use crate::config::values::IpConfig;
use crate::config::GuestId;
use crate::exec::Cmd;
use std::path::PathBuf;

/// The config as the VM will have it at its next start: the current values with the pending
/// ones (`[PENDING]`, where qemu-server keeps what a running VM cannot take now) over them.
pub fn effective(text: &str) -> PctConfig {
    let mut cfg = PctConfig::parse(text);
    for (k, v) in pending(text) {
        match (k.as_str(), v) {
            ("delete", Some(keys)) => {
                for d in keys.split(',') {
                    cfg.keys.remove(d.trim().trim_start_matches('!'));
                }
            }
            (_, Some(v)) => {
                cfg.keys.insert(k, v);
            }
            (_, None) => {}
        }
    }
    cfg
}

/// The `[PENDING]` section's `key: value` lines.
fn pending(text: &str) -> Vec<(String, Option<String>)> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim_end) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name == "PENDING";
        } else if let (true, Some((k, v))) = (inside, line.split_once(':')) {
            out.push((k.trim().to_string(), Some(v.trim().to_string())));
        }
    }
    out
}

/// Whether one of `s`'s keys waits in `[PENDING]` for the next start.
fn waits(text: &str, s: &VmSetting) -> bool {
    let keys: Vec<String> = wanted(s).into_iter().map(|(k, _)| k).collect();
    pending(text).iter().any(|(k, v)| {
        keys.contains(k)
            || (k == "delete"
                && v.as_deref()
                    .unwrap_or("")
                    .split(',')
                    .any(|d| keys.iter().any(|k| k == d.trim_start_matches('!'))))
    })
}

/// What qemu-server assumes for a key the config leaves out.
fn default_of(key: &str) -> Option<&'static str> {
    match key {
        "cores" => Some("1"),
        "memory" => Some("2048"),
        "onboot" => Some("0"),
        "ciupgrade" => Some("1"),
        _ => None,
    }
}

/// The keys `s` owns, each with the value it wants (`None`: absent).
fn wanted(s: &VmSetting) -> Vec<(String, Option<String>)> {
    let some = |k: &str, v: String| (k.to_string(), Some(v));
    match s {
        VmSetting::Name(name) => vec![some("name", name.clone())],
        VmSetting::Resources { cores, memory_mb } => {
            vec![
                some("cores", cores.to_string()),
                some("memory", memory_mb.to_string()),
            ]
        }
        VmSetting::Startup {
            onboot,
            order,
            delay,
        } => {
            let startup: Vec<String> = [("order", order), ("up", delay)]
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
                .collect();
            vec![
                ("onboot".into(), onboot.then(|| "1".to_string())),
                (
                    "startup".into(),
                    (!startup.is_empty()).then(|| startup.join(",")),
                ),
            ]
        }
        VmSetting::CloudInit(ci) => cloud_init(ci),
        VmSetting::Options(words) => option_pairs(words)
            .into_iter()
            .map(|(k, v)| (k, Some(v)))
            .collect(),
        VmSetting::DiskSize(_) | VmSetting::Firewall { .. } => Vec::new(),
    }
}

fn cloud_init(ci: &CloudInit) -> Vec<(String, Option<String>)> {
    let ip = match ci.ip {
        IpConfig::Dhcp => "ip=dhcp".to_string(),
        IpConfig::Static(c) => match ci.gw {
            Some(gw) => format!("ip={c},gw={gw}"),
            None => format!("ip={c}"),
        },
    };
    let ns: Vec<String> = ci.nameservers.iter().map(|a| a.to_string()).collect();
    vec![
        ("ciuser".into(), ci.user.clone()),
        (
            "sshkeys".into(),
            (!ci.ssh_keys.is_empty()).then(|| uri_escape(&keys_file(&ci.ssh_keys))),
        ),
        ("ipconfig0".into(), Some(ip)),
        ("nameserver".into(), (!ns.is_empty()).then(|| ns.join(" "))),
        ("searchdomain".into(), ci.searchdomain.clone()),
        ("ciupgrade".into(), Some(u8::from(ci.upgrade).to_string())),
    ]
}

/// The keys file: one key a line.
fn keys_file(keys: &[String]) -> String {
    keys.iter().map(|k| format!("{}\n", k.trim())).collect()
}

/// Perl's `URI::Escape::uri_escape`: all but `A-Za-z0-9-._~` as `%XX`.
fn uri_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn uri_unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `qm_options` words as key/value pairs: `--vga qxl` is `vga` = `qxl`; a flag without a value
/// is `1`.
pub fn option_pairs(words: &[String]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut it = words.iter().peekable();
    while let Some(w) = it.next() {
        let key = w.trim_start_matches('-').to_string();
        let value = match it.peek() {
            Some(v) if !v.starts_with('-') => it.next().cloned().unwrap_or_default(),
            _ => "1".to_string(),
        };
        out.push((key, value));
    }
    out
}

/// Whether the live value of `key` is what is wanted, as qemu-server reads both.
fn same(key: &str, live: Option<&str>, want: Option<&str>) -> bool {
    let live = live.or(default_of(key));
    let want = want.or(default_of(key));
    match (key, live, want) {
        ("sshkeys", Some(l), Some(w)) => lines(&uri_unescape(l)) == lines(&uri_unescape(w)),
        ("ipconfig0" | "startup", Some(l), Some(w)) => props(l) == props(w),
        _ => live == want,
    }
}

fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// How a value is shown in a plan: keys by count, not by their text.
fn shown(key: &str, v: Option<&str>) -> Option<String> {
    match key {
        "sshkeys" => v.map(|v| format!("{} key(s)", lines(&uri_unescape(v)).len())),
        _ => v.map(String::from),
    }
}

/// What differs between `s` and the config.
pub fn diff(cfg: &PctConfig, s: &VmSetting) -> Vec<Change> {
    if let VmSetting::DiskSize(gb) = s {
        let live = boot_disk_gb(cfg);
        return match live.is_some_and(|l| l >= *gb) {
            true => Vec::new(),
            false => vec![Change::new(
                format!("{BOOT_DISK}.size"),
                live.map(|l| format!("{l}G")),
                Some(format!("{gb}G")),
            )],
        };
    }
    if let VmSetting::Firewall { enabled, .. } = s {
        return net0_firewall(cfg, *enabled)
            .map(|(live, want)| vec![Change::new("net0", Some(live), Some(want))])
            .unwrap_or_default();
    }
    wanted(s)
        .into_iter()
        .filter(|(k, want)| !same(k, cfg.get(k), want.as_deref()))
        .map(|(k, want)| {
            let live = shown(&k, cfg.get(&k));
            let want = shown(&k, want.as_deref());
            Change::new(k, live, want)
        })
        .collect()
}

/// `net0` as it is and with its `firewall` flag as `enabled` asks, when they differ (the rules
/// apply to the interface only with the flag).
fn net0_firewall(cfg: &PctConfig, enabled: bool) -> Option<(String, String)> {
    let live = cfg.get("net0")?;
    let has = props(live).get("firewall").map(String::as_str) == Some("1");
    if has == enabled {
        return None;
    }
    let mut parts: Vec<String> = live
        .split(',')
        .filter(|p| !p.starts_with("firewall="))
        .map(String::from)
        .collect();
    if enabled {
        parts.push("firewall=1".into());
    }
    Some((live.to_string(), parts.join(",")))
}

fn boot_disk_gb(cfg: &PctConfig) -> Option<u64> {
    size_gb(props(cfg.get(BOOT_DISK)?).get("size")?)
}

impl ProxmoxBackend {
    /// Sets what differs; a cloud-init change on a running VM shuts it down (its next boot
    /// applies it, and the engine starts it again).
    pub(super) fn apply_vm_setting(&self, id: GuestId, s: &VmSetting) -> Result<()> {
        let cfg = effective(&self.vm_text(id)?);
        if let VmSetting::DiskSize(gb) = s {
            if boot_disk_gb(&cfg).is_some_and(|l| l >= *gb) {
                return Ok(());
            }
            let argv = self
                .qm(["resize", &id.to_string(), BOOT_DISK, &format!("{gb}G")].map(String::from));
            self.act(argv, 600)?;
            return Ok(());
        }
        if let VmSetting::Firewall { enabled, rules } = s {
            self.converge_firewall(Kind::Vm, id, *enabled, rules)?;
            if let Some((_, net0)) = net0_firewall(&cfg, *enabled) {
                self.act(
                    self.qm(["set".into(), id.to_string(), "--net0".into(), net0]),
                    120,
                )?;
            }
            return Ok(());
        }
        let differing: Vec<(String, Option<String>)> = wanted(s)
            .into_iter()
            .filter(|(k, want)| !same(k, cfg.get(k), want.as_deref()))
            .collect();
        if differing.is_empty() {
            return Ok(());
        }
        let keys_file = self.upload_keys(id, s)?;
        let result = self.qm_set(id, &differing, keys_file.as_ref());
        if let Some(f) = &keys_file {
            let _ = self
                .runner
                .output(&Cmd::act(["rm", "-f", &f.display().to_string()]));
        }
        result?;
        // cloud-init reads its drive at a start; qemu-server applies what waits at a start.
        let restart = s.needs_restart() || waits(&self.vm_text(id)?, s);
        if restart && self.vm_state(id)? == Some(RunState::Running) {
            self.vm_shutdown(id)?;
        }
        Ok(())
    }

    fn qm_set(
        &self,
        id: GuestId,
        differing: &[(String, Option<String>)],
        keys_file: Option<&PathBuf>,
    ) -> Result<()> {
        let mut argv = self.qm(["set".to_string(), id.to_string()]);
        let mut delete = Vec::new();
        for (k, want) in differing {
            match (k.as_str(), want) {
                (_, None) => delete.push(k.clone()),
                ("sshkeys", Some(_)) => {
                    argv.push("--sshkeys".into());
                    argv.push(
                        keys_file
                            .map(|f| f.display().to_string())
                            .unwrap_or_default(),
                    );
                }
                (_, Some(v)) => argv.extend([format!("--{k}"), v.clone()]),
            }
        }
        if !delete.is_empty() {
            argv.extend(["--delete".to_string(), delete.join(",")]);
        }
        self.act(argv, 120)?;
        Ok(())
    }

    /// The setting's SSH keys in a file on the node, for `qm set --sshkeys`.
    fn upload_keys(&self, id: GuestId, s: &VmSetting) -> Result<Option<PathBuf>> {
        let VmSetting::CloudInit(ci) = s else {
            return Ok(None);
        };
        if ci.ssh_keys.is_empty() {
            return Ok(None);
        }
        let path = PathBuf::from(format!(
            "/tmp/phoenix-sshkeys-{id}-{}",
            state_machine::now_ms()
        ));
        self.runner
            .put_file(&path, keys_file(&ci.ssh_keys).as_bytes(), 0o600)?;
        Ok(Some(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> PctConfig {
        PctConfig::parse(text)
    }

    #[test]
    fn resources_compare_with_qemu_servers_defaults() {
        let s = VmSetting::Resources {
            cores: 1,
            memory_mb: 2048,
        };
        assert!(diff(&cfg("name: a\n"), &s).is_empty());
        let s = VmSetting::Resources {
            cores: 2,
            memory_mb: 2048,
        };
        let d = diff(&cfg("cores: 1\nmemory: 2048\n"), &s);
        assert_eq!(
            d,
            [Change::new("cores", Some("1".into()), Some("2".into()))]
        );
    }

    #[test]
    fn cloud_init_keys_are_compared_decoded() {
        let ci = CloudInit {
            user: Some("phoenix".into()),
            ssh_keys: vec!["ssh-ed25519 AAAA me@x".into()],
            ip: IpConfig::Static("10.254.9.10/24".parse().unwrap()),
            gw: Some("10.254.9.1".parse().unwrap()),
            nameservers: vec!["10.254.9.1".parse().unwrap()],
            searchdomain: None,
            upgrade: false,
        };
        let text = "ciuser: phoenix\nsshkeys: ssh-ed25519%20AAAA%20me%40x%0A\nipconfig0: gw=10.254.9.1,ip=10.254.9.10/24\nnameserver: 10.254.9.1\nciupgrade: 0\n";
        assert!(diff(&cfg(text), &VmSetting::CloudInit(ci.clone())).is_empty());
        let mut other = ci;
        other.nameservers = vec!["10.254.9.53".parse().unwrap()];
        let d = diff(&cfg(text), &VmSetting::CloudInit(other));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].key, "nameserver");
        assert_eq!(uri_escape("a b/c~"), "a%20b%2Fc~");
        assert_eq!(uri_unescape("a%20b%2Fc~"), "a b/c~");
    }

    #[test]
    fn pending_values_count_as_what_the_vm_will_have() {
        let text = "cores: 2\nmemory: 1024\nballoon: 0\n\n[PENDING]\ncores: 1\ndelete: balloon\n\n[special:cloudinit]\nciuser: x\n";
        let cfg = effective(text);
        assert_eq!((cfg.get("cores"), cfg.get("balloon")), (Some("1"), None));
        let s = VmSetting::Resources {
            cores: 2,
            memory_mb: 1024,
        };
        assert_eq!(diff(&cfg, &s)[0].key, "cores");
        assert!(waits(text, &s));
        assert!(!waits("cores: 2\n", &s));
        assert!(waits(
            text,
            &VmSetting::Options(vec!["--balloon".into(), "0".into()])
        ));
    }

    #[test]
    fn options_and_disk_size() {
        let words: Vec<String> = ["--vga", "qxl", "--tablet", "--balloon", "0"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            option_pairs(&words),
            [
                ("vga".to_string(), "qxl".to_string()),
                ("tablet".into(), "1".into()),
                ("balloon".into(), "0".into())
            ]
        );
        let c = cfg("scsi0: local:9000/base-9000-disk-0.qcow2,size=2G\n");
        assert_eq!(diff(&c, &VmSetting::DiskSize(2)), []);
        assert_eq!(diff(&c, &VmSetting::DiskSize(1)), []);
        assert_eq!(diff(&c, &VmSetting::DiskSize(4))[0].key, "scsi0.size");
    }
}

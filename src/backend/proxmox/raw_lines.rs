//! Raw `lxc.*` lines in `/etc/pve/lxc/CTID.conf`: what the `security`, `idmap`, `lxc_options`
//! and `gpu` settings need that `pct set` cannot say. Proxmox turns comments into the
//! description, so the lines each setting wrote are recorded on the node, in
//! `<owned dir>/CTID.<step>`: a line the configuration no longer asks for is removed only when
//! Phoenix wrote it. A clone takes over its parent's records, so it drops what it does not ask for
//! (upstream's clones kept their parent's GPUs).

use super::pct::PctConfig;
use super::{tasks, ProxmoxBackend};
use crate::backend::cgroup::CgroupVersion;
use crate::backend::lxc::config_file::normalise_option;
use crate::backend::{gpu, idmap, BackendError, Change, Result, Setting};
use crate::config::GuestId;
use crate::digest;
use crate::exec::Cmd;
use std::path::PathBuf;

/// The settings that own raw lines, by step name.
const OWNERS: [&str; 4] = ["security", "idmap", "lxc_options", "gpu"];

impl ProxmoxBackend {
    fn owned_path(&self, id: GuestId, step: &str) -> PathBuf {
        self.layout.owned_dir.join(format!("{id}.{step}"))
    }

    fn owned_lines(&self, id: GuestId, step: &str) -> Result<Vec<String>> {
        Ok(self
            .read_remote(&self.owned_path(id, step))?
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect())
    }

    /// Wanted lines that are missing, and lines Phoenix wrote earlier that are no longer wanted.
    pub(super) fn raw_lines_diff(
        &self,
        id: GuestId,
        s: &Setting,
        c: &PctConfig,
    ) -> Result<Vec<Change>> {
        if !OWNERS.contains(&s.name()) {
            return Ok(Vec::new());
        }
        let want = self.wanted(s)?;
        // Stale lines are in the config and not wanted: none can be when every line is wanted,
        // and then Phoenix's record on the node need not be read.
        let owned = match c.raw.iter().all(|l| want.contains(l)) {
            true => Vec::new(),
            false => self.owned_lines(id, s.name())?,
        };
        let stale = owned
            .into_iter()
            .filter(|l| !want.contains(l) && c.raw.contains(l));
        let missing = want.iter().filter(|l| !c.raw.contains(l)).cloned();
        let key_value = |l: &String| match l.split_once(':') {
            Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
            None => (l.clone(), String::new()),
        };
        Ok(missing
            .map(|l| {
                let (k, v) = key_value(&l);
                Change::missing(k, v)
            })
            .chain(stale.map(|l| {
                let (k, v) = key_value(&l);
                Change::new(k, Some(v), None)
            }))
            .collect())
    }

    /// Rewrites the main section of the guest's config with the wanted lines instead of the ones
    /// Phoenix owned, and records the new ones. Snapshot sections keep what they recorded.
    pub(super) fn write_raw_lines(&self, id: GuestId, s: &Setting) -> Result<()> {
        if !OWNERS.contains(&s.name()) {
            return Ok(());
        }
        let want = self.wanted(s)?;
        let owned = self.owned_lines(id, s.name())?;
        self.edit_config(id, |text| rewritten(text, &owned, &want))?;
        self.mkdir_on_node(&self.layout.owned_dir)?;
        self.runner.put_file(
            &self.owned_path(id, s.name()),
            want.join("\n").as_bytes(),
            0o644,
        )?;
        Ok(())
    }

    /// A clone's config carries its parent's raw lines: the clone now owns them too.
    pub(super) fn take_over_raw_lines(&self, parent: GuestId, clone: GuestId) -> Result<()> {
        for step in OWNERS {
            if let Some(lines) = self.read_remote(&self.owned_path(parent, step))? {
                self.mkdir_on_node(&self.layout.owned_dir)?;
                self.runner
                    .put_file(&self.owned_path(clone, step), lines.as_bytes(), 0o644)?;
            }
        }
        Ok(())
    }
}

impl ProxmoxBackend {
    /// Replaces the config file with `edit` of it, as Proxmox writes it: under the container's
    /// config lock, only if nobody changed it since it was read (else read again, as Proxmox's
    /// digest check asks), through a new file renamed over the old one, so the container's
    /// config never goes missing.
    fn edit_config(&self, id: GuestId, edit: impl Fn(&str) -> String) -> Result<()> {
        let conf = self.layout.conf_path(id);
        for _ in 0..5 {
            let text = self.read_remote(&conf)?.ok_or(BackendError::NotFound(id))?;
            let out = edit(&text);
            if out == text {
                return Ok(());
            }
            let argv = [
                "sh",
                "-c",
                REPLACE_LOCKED,
                "sh",
                &conf.display().to_string(),
                &digest::hex(text.as_bytes()),
                &self.layout.lock_path(id).display().to_string(),
            ];
            let cmd = Cmd::act(argv.map(String::from)).stdin(out.into_bytes());
            match tasks::retry_locked(|| self.runner.run(&cmd)) {
                Err(e) if e.tail().contains("detected modified configuration") => continue,
                other => return other.map(|_| ()),
            }
        }
        Err(BackendError::Invalid(format!(
            "{}: changed by others at every try; run again",
            conf.display()
        )))
    }

    /// The raw lines a setting wants, in Proxmox syntax (`key: value`).
    fn wanted(&self, s: &Setting) -> Result<Vec<String>> {
        Ok(match s {
            // Proxmox VE 7 and later are cgroup v2 only; the majors are the node's.
            Setting::Gpus(g) if !g.is_empty() => {
                gpu::lines(g, CgroupVersion::V2, self.node_devices()?)
                    .into_iter()
                    .filter(|l| !l.starts_with('#'))
                    .map(pve)
                    .collect()
            }
            _ => wanted(s)?,
        })
    }
}

/// Replaces `$1` with stdin under the flock `$3` (pve-common `PVE::Tools::lock_file_full`, 10 s,
/// its message on timeout), unless the container is locked (`check_lock`, as `pct set` would be
/// refused) or its sha256 is no longer `$2` (pve-container's digest check); each with Proxmox's
/// message.
const REPLACE_LOCKED: &str = r#"set -e
mkdir -p "$(dirname "$3")"
exec 9>>"$3"
flock -w 10 9 || { echo "can't lock file '$3' - got timeout" >&2; exit 1; }
lock=$(sed -n 's/^lock: *//p' "$1" | head -n 1)
[ -z "$lock" ] || { echo "CT is locked ($lock)" >&2; exit 1; }
[ "$(sha256sum < "$1" | cut -d' ' -f1)" = "$2" ] || { echo "detected modified configuration - file changed by other user? Try again." >&2; exit 1; }
cat > "$1.phoenix-new"
mv -f "$1.phoenix-new" "$1""#;

/// `key = value` as Proxmox writes it: `key: value`.
fn pve(line: String) -> String {
    match line.split_once(" = ") {
        Some((k, v)) => format!("{k}: {v}"),
        None => line,
    }
}

/// The raw lines a setting wants, in Proxmox syntax (`key: value`); GPU lines need the node.
fn wanted(s: &Setting) -> Result<Vec<String>> {
    Ok(match s {
        Setting::Security {
            apparmor_profile,
            nesting,
            ..
        } => {
            let mut v = Vec::new();
            if apparmor_profile != "unconfined" || *nesting {
                v.push(format!("lxc.apparmor.profile: {apparmor_profile}"));
            }
            if *nesting {
                v.push("lxc.apparmor.allow_nesting: 1".to_string());
                v.push("lxc.include: /usr/share/lxc/config/nesting.conf".to_string());
            }
            v
        }
        Setting::IdMaps {
            unprivileged: true,
            maps,
        } if !maps.is_empty() => idmap::lines(maps)
            .map_err(BackendError::Invalid)?
            .into_iter()
            .map(pve)
            .collect(),
        Setting::RawOptions(opts) => opts.iter().map(|o| pve(normalise_option(o))).collect(),
        _ => Vec::new(),
    })
}

/// `text` with the main section's `owned` lines replaced by `want`.
fn rewritten(text: &str, owned: &[String], want: &[String]) -> String {
    let split = text.find("\n[").map(|i| i + 1).unwrap_or(text.len());
    let (main, snapshots) = text.split_at(split);
    let mut lines: Vec<&str> = main
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !owned.iter().any(|o| o == l) && !want.iter().any(|w| w == l))
        .collect();
    lines.extend(want.iter().map(String::as_str));
    let mut out = lines.join("\n");
    out.push('\n');
    if !snapshots.is_empty() {
        out.push('\n');
        out.push_str(snapshots);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_lines_are_replaced_and_snapshots_kept() {
        let text = "arch: amd64\nlxc.cap.drop: sys_time\nlxc.mount.entry: x\n\n[snap]\nlxc.cap.drop: sys_time\n";
        let out = rewritten(
            text,
            &["lxc.cap.drop: sys_time".into()],
            &["lxc.cap.drop: mknod".into()],
        );
        assert_eq!(
            out,
            "arch: amd64\nlxc.mount.entry: x\nlxc.cap.drop: mknod\n\n[snap]\nlxc.cap.drop: sys_time\n"
        );
    }
}

//! Proxmox VMs through the node's own tools, checked against qemu-server's source: create (the
//! cloud image imported as the boot disk with `import-from`), clone and snapshot as API tasks
//! ([`super::tasks`]); `qm set`/`qm resize` for what differs ([`super::vm_settings`]); `qm start`,
//! `shutdown`, `reboot`, `destroy`, `template`; the guest agent through `qm guest cmd` and
//! `qm guest exec` (whose JSON reply carries the guest's own exit code and output).

use super::pct::{self, PctConfig};
use super::ProxmoxBackend;
use crate::backend::vm::{Agent, VmSetting, VmSource, VmSpec, Vms};
use crate::backend::{guest_env, BackendError, Change, Live, Result, RunState, TaskSink};
use crate::config::GuestId;
use crate::exec::{Cmd, Output};
use std::collections::HashMap;
use std::time::Duration;

/// The boot disk, as upstream made it (`--scsi0`, `--scsihw virtio-scsi-pci`).
pub const BOOT_DISK: &str = "scsi0";
/// What `qm guest exec --pass-stdin` takes at most (qm.pm: 1 MiB).
const MAX_STDIN: usize = 1024 * 1024;

impl ProxmoxBackend {
    pub(super) fn qm<I: IntoIterator<Item = String>>(&self, args: I) -> Vec<String> {
        std::iter::once(self.tool("qm")).chain(args).collect()
    }

    fn qm_id(&self, verb: &str, id: GuestId, rest: &[&str]) -> Vec<String> {
        let head = [verb.to_string(), id.to_string()];
        self.qm(head.into_iter().chain(rest.iter().map(|s| s.to_string())))
    }

    pub(super) fn vm_config(&self, id: GuestId) -> Result<PctConfig> {
        Ok(PctConfig::parse(&self.vm_text(id)?))
    }

    /// The config file's text.
    pub(super) fn vm_text(&self, id: GuestId) -> Result<String> {
        let live = self.vm_inspect(id)?.ok_or(BackendError::NotFound(id))?;
        Ok(live.config)
    }

    /// Whether VM volumes on `storage` are files (dir, NFS, CIFS): then they are made qcow2, for
    /// snapshots and linked clones (a dir storage's default format is raw).
    fn file_storage(&self, storage: &str) -> Result<bool> {
        let kind = self.storages()?.get(storage).map(|s| s.kind.clone());
        Ok(matches!(
            kind.as_deref(),
            Some("dir" | "nfs" | "cifs" | "glusterfs")
        ))
    }

    fn create_from_image(&self, spec: &VmSpec, image: &str, task: TaskSink) -> Result<()> {
        let mut disk = format!("{}:0,import-from={image}", spec.storage);
        if self.file_storage(&spec.storage)? {
            disk.push_str(",format=qcow2");
        }
        let args = [
            ("vmid", spec.id.to_string()),
            ("name", spec.name.clone()),
            ("net0", format!("virtio,bridge={}", spec.bridge)),
            ("scsihw", "virtio-scsi-pci".into()),
            (BOOT_DISK, disk),
            ("ide2", format!("{}:cloudinit", spec.storage)),
            ("serial0", "socket".into()),
            ("vga", "serial0".into()),
            ("agent", "enabled=1".into()),
            ("boot", format!("order={BOOT_DISK}")),
        ];
        let path = format!("/nodes/{}/qemu", self.node()?);
        self.run_task(path, flags(&args), task)
    }

    fn clone_vm(
        &self,
        spec: &VmSpec,
        parent: GuestId,
        snapshot: Option<&str>,
        full: bool,
        task: TaskSink,
    ) -> Result<()> {
        let is_template = self.vm_config(parent)?.get("template") == Some("1");
        let linkable = !matches!(
            self.storages()?.get(&spec.storage).map(|s| s.kind.as_str()),
            Some("lvm" | "iscsi" | "iscsidirect")
        );
        let mut args = vec![("newid", spec.id.to_string()), ("name", spec.name.clone())];
        // Proxmox links clones of templates only; `full` also when asked, or when it cannot.
        if full || !is_template || !linkable {
            args.push(("full", "1".into()));
        }
        if let Some(s) = snapshot {
            args.push(("snapname", s.to_string()));
        }
        let path = format!("/nodes/{}/qemu/{parent}/clone", self.node()?);
        self.run_task(path, flags(&args), task)
    }

    /// `qm guest exec` of `argv` (stdin passed when given), its JSON reply read back into the
    /// guest's own exit code and output.
    fn guest_exec(&self, id: GuestId, cmd: &Cmd, argv: Vec<String>) -> Result<Output> {
        let secs = cmd.timeout.as_secs().max(1).to_string();
        let mut head = vec!["--timeout", secs.as_str()];
        if cmd.stdin.is_some() {
            head.extend(["--pass-stdin", "1"]);
        }
        head.push("--");
        let mut full = self.qm(["guest", "exec", &id.to_string()].map(String::from));
        full.extend(head.iter().map(|s| s.to_string()));
        full.extend(argv);
        let mut wrapped = cmd.wrapped(full);
        wrapped.timeout = cmd.timeout + Duration::from_secs(30);
        let out = self.runner.output(&wrapped)?;
        if out.skipped {
            return Ok(out);
        }
        if !out.success() {
            return Err(BackendError::Invalid(format!(
                "qm guest exec {id}: {}",
                out.tail(3).trim()
            )));
        }
        Ok(exec_reply(out))
    }
}

/// `--key value` words.
fn flags(args: &[(&str, String)]) -> Vec<String> {
    args.iter()
        .flat_map(|(k, v)| [format!("--{k}"), v.clone()])
        .collect()
}

/// `qm guest exec`'s reply (`{"exitcode": 0, "exited": 1, "out-data": "..."}`) as the guest
/// command's own output; a command still running at the timeout has no exit code.
fn exec_reply(mut out: Output) -> Output {
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let text = |k: &str| {
        json.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .as_bytes()
            .to_vec()
    };
    let exited = json.get("exited").and_then(|v| v.as_i64()) == Some(1);
    out.code = match exited {
        true => json
            .get("exitcode")
            .and_then(|v| v.as_i64())
            .map(|c| c as i32),
        false => None,
    };
    out.timed_out = !exited;
    out.stdout = text("out-data");
    out.stderr = text("err-data");
    out
}

/// The VM's state from `qm list` (`VMID NAME STATUS MEM(MB) BOOTDISK(GB) PID` rows).
fn qm_list_states(text: &str) -> HashMap<GuestId, RunState> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let id = cols.first()?.parse::<u32>().ok()?;
            let state = match *cols.get(2)? {
                "running" => RunState::Running,
                _ => RunState::Stopped,
            };
            Some((GuestId(id), state))
        })
        .collect()
}

/// What a failed `qm guest cmd ID ping` says of the agent (qemu-server `Agent.pm`
/// `assert_agent_available`, `agent_cmd`).
fn agent_of(text: &str) -> Option<Agent> {
    if text.contains("No QEMU guest agent configured") {
        Some(Agent::NotConfigured)
    } else if text.contains("QEMU guest agent is not running") || text.contains("Agent error") {
        Some(Agent::Silent)
    } else if text.contains("is not running") {
        Some(Agent::VmStopped)
    } else {
        None
    }
}

impl Vms for ProxmoxBackend {
    fn vm_states(&self, ids: &[GuestId]) -> Result<HashMap<GuestId, Option<RunState>>> {
        let paths: Vec<String> = ids
            .iter()
            .map(|id| self.layout.vm_conf_path(*id).display().to_string())
            .collect();
        let (list, configs) = self.list_with_configs("qm", &paths)?;
        let listed = qm_list_states(&list);
        self.keep_prefetched(ids, configs, &listed);
        Ok(ids
            .iter()
            .map(|id| (*id, listed.get(id).copied()))
            .collect())
    }

    fn vm_state(&self, id: GuestId) -> Result<Option<RunState>> {
        self.status_of("qm", id)
    }

    fn vm_inspect(&self, id: GuestId) -> Result<Option<Live>> {
        if let Some(live) = self.take_prefetched(id) {
            return Ok(Some(live));
        }
        let Some(config) = self.read_remote(&self.layout.vm_conf_path(id))? else {
            return Ok(None);
        };
        Ok(Some(self.live_of(id, config)))
    }

    fn vm_create(&self, spec: &VmSpec, source: &VmSource, task: TaskSink) -> Result<()> {
        match source {
            VmSource::Image(image) => self.create_from_image(spec, image, task),
            VmSource::Clone {
                parent,
                snapshot,
                full,
            } => self.clone_vm(spec, *parent, snapshot.as_deref(), *full, task),
        }
    }

    /// An interrupted create or clone leaves `lock: create` or `lock: clone` (and the disks it
    /// made): unlocked, then destroyed with its unreferenced disks.
    fn vm_discard_partial(&self, id: GuestId) -> Result<()> {
        let Some(live) = self.vm_inspect(id)? else {
            return Ok(());
        };
        if PctConfig::parse(&live.config).get("lock").is_some() {
            self.act(self.qm_id("unlock", id, &[]), 60)?;
        }
        if self.vm_state(id)? == Some(RunState::Running) {
            self.act(self.qm_id("stop", id, &[]), 120)?;
        }
        let flags = ["--purge", "1", "--destroy-unreferenced-disks", "1"];
        self.act(self.qm_id("destroy", id, &flags), 600)?;
        Ok(())
    }

    fn vm_diff(&self, live: &Live, s: &VmSetting) -> Result<Vec<Change>> {
        let mut out = super::vm_settings::diff(&super::vm_settings::effective(&live.config), s);
        if let VmSetting::Firewall { enabled, rules } = s {
            let kind = super::firewall::Kind::Vm;
            out.extend(self.firewall_diff(kind, live.id, *enabled, rules)?);
        }
        Ok(out)
    }

    fn vm_apply(&self, id: GuestId, s: &VmSetting) -> Result<()> {
        self.apply_vm_setting(id, s)
    }

    fn vm_start(&self, id: GuestId) -> Result<()> {
        match self.vm_state(id)? {
            None => Err(BackendError::NotFound(id)),
            Some(RunState::Running) => Ok(()),
            Some(_) => {
                self.act(self.qm_id("start", id, &[]), 150)?;
                Ok(())
            }
        }
    }

    fn vm_shutdown(&self, id: GuestId) -> Result<()> {
        if self.vm_state(id)? != Some(RunState::Running) {
            return Ok(());
        }
        let flags = ["--timeout", "120", "--forceStop", "1"];
        self.act(self.qm_id("shutdown", id, &flags), 200)?;
        Ok(())
    }

    fn vm_reboot(&self, id: GuestId) -> Result<()> {
        self.act(self.qm_id("reboot", id, &["--timeout", "120"]), 200)?;
        Ok(())
    }

    fn vm_destroy(&self, id: GuestId) -> Result<()> {
        let Some(state) = self.vm_state(id)? else {
            return Ok(());
        };
        if state == RunState::Running {
            self.act(self.qm_id("stop", id, &[]), 120)?;
        }
        self.act(self.qm_id("destroy", id, &["--purge", "1"]), 600)?;
        Ok(())
    }

    fn vm_agent(&self, id: GuestId) -> Result<Agent> {
        let argv = self.qm(["guest", "cmd", &id.to_string(), "ping"].map(String::from));
        let out = self
            .runner
            .output(&Cmd::probe(argv).timeout(Duration::from_secs(30)))?;
        if out.success() {
            return Ok(Agent::Answers);
        }
        let text = format!(
            "{}{}",
            out.stdout_str(),
            String::from_utf8_lossy(&out.stderr)
        );
        agent_of(&text).ok_or_else(|| {
            BackendError::Invalid(format!("qm guest cmd {id} ping: {}", out.tail(3).trim()))
        })
    }

    fn vm_exec(&self, id: GuestId, cmd: &Cmd) -> Result<Output> {
        if cmd.stdin.as_ref().is_some_and(|s| s.len() > MAX_STDIN) {
            return Err(BackendError::Invalid(format!(
                "guest {id}: more than 1 MiB of input for qm guest exec"
            )));
        }
        let mut argv = vec!["env".to_string(), "-i".into()];
        argv.extend(guest_env::assignments(&cmd.env));
        argv.extend(cmd.argv.iter().cloned());
        self.guest_exec(id, cmd, argv)
    }

    /// The file as the command's stdin, written by `sh` in the guest (the agent's file-write
    /// has no mode).
    fn vm_push(&self, id: GuestId, data: &[u8], path: &str, mode: u32) -> Result<()> {
        let script = r#"mkdir -p "$(dirname "$1")" && cat > "$1.phoenix-tmp" && chmod "$2" "$1.phoenix-tmp" && mv -f "$1.phoenix-tmp" "$1""#;
        let mode = format!("{mode:o}");
        let cmd = Cmd::act(["/bin/sh", "-c", script, "sh", path, &mode])
            .stdin(data.to_vec())
            .timeout(Duration::from_secs(120));
        let out = self.vm_exec(id, &cmd)?;
        if out.skipped || out.success() {
            return Ok(());
        }
        Err(BackendError::Invalid(format!(
            "writing {path} in VM {id}: {}",
            out.tail(3).trim()
        )))
    }

    fn vm_snapshot(&self, id: GuestId, name: &str, task: TaskSink) -> Result<()> {
        if self.vm_snapshot_names(id)?.iter().any(|s| s == name) {
            self.act(self.qm_id("delsnapshot", id, &[name]), 600)?;
        }
        let path = format!("/nodes/{}/qemu/{id}/snapshot", self.node()?);
        self.run_task(path, vec!["--snapname".into(), name.to_string()], task)
    }

    fn vm_discard_partial_snapshots(&self, id: GuestId) -> Result<()> {
        let live = self.vm_inspect(id)?.ok_or(BackendError::NotFound(id))?;
        for (name, _) in pct::sections(&live.config).into_iter().filter(|(_, f)| !f) {
            self.act(self.qm_id("delsnapshot", id, &[&name, "--force", "1"]), 600)?;
        }
        if matches!(
            PctConfig::parse(&live.config).get("lock"),
            Some("snapshot" | "snapshot-delete")
        ) {
            self.act(self.qm_id("unlock", id, &[]), 60)?;
        }
        Ok(())
    }

    fn vm_template(&self, id: GuestId) -> Result<()> {
        self.vm_shutdown(id)?;
        self.act(self.qm_id("template", id, &[]), 600)?;
        Ok(())
    }

    /// Kept under Phoenix's directory on the node as `images/<sha256>`: fetched (curl or wget)
    /// into a temporary file, checked, then moved into place, so a killed download never counts.
    fn vm_fetch_image(&self, url: &str, sha256: &str) -> Result<String> {
        let dest = self.layout.owned_dir.join(format!("images/{sha256}"));
        let script = r#"set -e; dest=$1 url=$2 sum=$3
[ -f "$dest" ] && exit 0
mkdir -p "${dest%/*}"; tmp="$dest.part.$$"; trap 'rm -f "$tmp"' EXIT
if command -v curl >/dev/null; then curl -fsSL -o "$tmp" "$url"; else wget -q -O "$tmp" "$url"; fi
got=$(sha256sum "$tmp" | cut -d' ' -f1)
[ "$got" = "$sum" ] || { echo "checksum mismatch: $url is $got, not $sum" >&2; exit 1; }
mv "$tmp" "$dest""#;
        let dest_s = dest.display().to_string();
        let cmd = Cmd::act(["sh", "-c", script, "sh", &dest_s, url, sha256])
            .timeout(Duration::from_secs(3600));
        self.runner.run(&cmd)?;
        Ok(dest_s)
    }

    fn vm_preflight(
        &self,
        storage: &str,
        image: Option<&str>,
        rules: &[crate::config::common::FirewallRule],
    ) -> Vec<crate::backend::Refusal> {
        self.vm_refusals(storage, image, rules)
    }

    fn vm_image_exists(&self, image: &str) -> Result<bool> {
        let argv = match crate::backend::files::is_volume_id(image) {
            true => vec![self.tool("pvesm"), "path".into(), image.to_string()],
            false => vec!["test".into(), "-f".into(), image.to_string()],
        };
        Ok(self.runner.output(&Cmd::probe(argv))?.success())
    }
}

impl ProxmoxBackend {
    fn vm_snapshot_names(&self, id: GuestId) -> Result<Vec<String>> {
        let live = self.vm_inspect(id)?.ok_or(BackendError::NotFound(id))?;
        Ok(live.snapshots.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_qm_list_and_agent_refusals() {
        let list = "      VMID NAME                 STATUS     MEM(MB)    BOOTDISK(GB) PID       \n      9000 tmpl                 stopped    1024             2.00 0         \n      1001 web                  running    1024             2.00 4242      \n";
        let s = qm_list_states(list);
        assert_eq!(s[&GuestId(9000)], RunState::Stopped);
        assert_eq!(s[&GuestId(1001)], RunState::Running);
        assert_eq!(
            agent_of("No QEMU guest agent configured"),
            Some(Agent::NotConfigured)
        );
        assert_eq!(
            agent_of("QEMU guest agent is not running"),
            Some(Agent::Silent)
        );
        assert_eq!(agent_of("VM 1001 is not running"), Some(Agent::VmStopped));
        assert_eq!(agent_of("something else"), None);
    }

    #[test]
    fn the_guest_exec_reply_is_the_guest_commands_output() {
        let out = |s: &str| Output {
            code: Some(0),
            stdout: s.as_bytes().to_vec(),
            stderr: Vec::new(),
            duration: Duration::ZERO,
            timed_out: false,
            skipped: false,
        };
        let r = exec_reply(out(
            r#"{"exitcode": 3, "exited": 1, "out-data": "hi\n", "err-data": "oops"}"#,
        ));
        assert_eq!((r.code, r.stdout_str().as_str()), (Some(3), "hi\n"));
        assert_eq!(String::from_utf8_lossy(&r.stderr), "oops");
        let r = exec_reply(out(r#"{"pid": 77}"#));
        assert!(r.code.is_none() && r.timed_out);
    }
}

//! Snapshots on plain LXC: `lxc-snapshot` names them `snapN`; Phoenix's name is in each one's
//! comment file. LXC cannot snapshot a running container, so a snapshot stops and restarts it. A
//! name taken again supersedes the old snapshot instead of deleting it: overlay clones made from it
//! use it as their lower layer.

use super::rootfs::Rootfs;
use super::LxcBackend;
use crate::backend::{Hypervisor, Result, RunState};
use crate::config::GuestId;
use crate::exec::Cmd;
use std::path::Path;
use std::time::Duration;

impl LxcBackend {
    /// `(snapN, comment name)` for every snapshot directory.
    fn snapshot_dirs(&self, id: GuestId) -> Result<Vec<(String, Option<String>)>> {
        let snaps = self.dir(id).join("snaps");
        let Ok(entries) = std::fs::read_dir(&snaps) else {
            return Ok(Vec::new());
        };
        let mut out: Vec<(String, Option<String>)> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("config").exists() || e.path().is_dir())
            .map(|e| {
                let dir = e.file_name().to_string_lossy().into_owned();
                let name = std::fs::read_to_string(e.path().join("comment"))
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty());
                (dir, name)
            })
            .collect();
        out.sort();
        Ok(out)
    }

    pub(super) fn find_snapshot_dir(&self, id: GuestId, name: &str) -> Result<Option<String>> {
        Ok(self
            .snapshot_dirs(id)?
            .into_iter()
            .find(|(_, n)| n.as_deref() == Some(name))
            .map(|(d, _)| d))
    }

    pub(super) fn snapshot_names(&self, id: GuestId) -> Result<Vec<String>> {
        Ok(self
            .snapshot_dirs(id)?
            .into_iter()
            .filter_map(|(_, n)| n)
            .collect())
    }

    pub(super) fn take_snapshot(&self, id: GuestId, name: &str) -> Result<()> {
        if let Some(old) = self.find_snapshot_dir(id, name)? {
            let old_comment = self.dir(id).join("snaps").join(old).join("comment");
            self.write_file(
                &old_comment,
                format!("{name}@superseded-{}\n", state_machine::now_ms()).as_bytes(),
            )?;
        }
        let running = self.state(id)? == Some(RunState::Running);
        let config = self.read_config(id)?;
        if let (true, Ok(Rootfs::Overlay { lowers, upper })) = (running, Rootfs::of(id, &config)) {
            return self.snapshot_frozen(id, name, &config, &lowers, &upper);
        }
        if running {
            self.stop(id)?;
        }
        let comment = self.dir(id).join(".phoenix-snapshot-comment");
        self.write_file(&comment, format!("{name}\n").as_bytes())?;
        let mut argv = self.lxc("lxc-snapshot", id);
        argv.extend(["-c".into(), comment.display().to_string()]);
        self.runner
            .run(&Cmd::act(argv).timeout(Duration::from_secs(900)))?;
        if running {
            self.start(id)?;
        }
        Ok(())
    }

    /// The snapshot of a running overlay container, without stopping it (`lxc-snapshot` refuses
    /// a running one): frozen only while its upper layer is copied, then written in the layout
    /// `lxc-snapshot` makes (`snaps/snapN/{overlay/delta, rootfs, config, ts, comment}`, the
    /// comment last, so a snapshot with its name is complete). Freeze, copy and thaw run as one
    /// detached script under the container's snapshot lock, so that a killed run never leaves the
    /// guest frozen; its redo waits for that lock before it cleans up.
    fn snapshot_frozen(
        &self,
        id: GuestId,
        name: &str,
        config: &str,
        lower: &str,
        upper: &Path,
    ) -> Result<()> {
        let snap = self.dir(id).join("snaps").join(self.next_snapshot_dir(id)?);
        let delta = snap.join("overlay/delta");
        let (p, n) = (self.path.display().to_string(), id.to_string());
        let dirs = [
            snap.join("overlay/work/work").display().to_string(),
            snap.join("rootfs").display().to_string(),
        ];
        self.runner
            .run(&Cmd::act(["mkdir", "-p", "--", &dirs[0], &dirs[1]]))?;
        // Constant script; paths and names travel as arguments.
        let script = r#"lxc-freeze -P "$1" -n "$2" || exit
cp -a --reflink=auto -- "$3" "$4"; rc=$?
lxc-unfreeze -P "$1" -n "$2"; exit $rc"#;
        let lock = self.snapshot_lock(id);
        let (from, to) = (upper.display().to_string(), delta.display().to_string());
        let argv = ["setsid", "--wait", "flock", &lock, "sh", "-c", script, "sh"];
        let mut argv: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
        argv.extend([p, n, from, to]);
        self.runner
            .run(&Cmd::act(argv).timeout(Duration::from_secs(900)))?;
        let rootfs = format!("lxc.rootfs.path = overlay:{lower}:{}", delta.display());
        let config: String = config
            .lines()
            .map(|l| match l.trim_start().starts_with("lxc.rootfs.path") {
                true => format!("{rootfs}\n"),
                false => format!("{l}\n"),
            })
            .collect();
        self.write_file(&snap.join("config"), config.as_bytes())?;
        let ts = self
            .runner
            .run(&Cmd::probe(["date", "+%Y:%m:%d %H:%M:%S"]))?
            .stdout_str();
        self.write_file(&snap.join("ts"), ts.trim().as_bytes())?;
        self.write_file(&snap.join("comment"), format!("{name}\n").as_bytes())
    }

    fn snapshot_lock(&self, id: GuestId) -> String {
        self.dir(id)
            .join(".phoenix-snapshot.lock")
            .display()
            .to_string()
    }

    /// `snapN` with N one past the highest taken.
    fn next_snapshot_dir(&self, id: GuestId) -> Result<String> {
        let next = self
            .snapshot_dirs(id)?
            .iter()
            .filter_map(|(d, _)| d.strip_prefix("snap")?.parse::<u64>().ok())
            .max()
            .map_or(0, |n| n + 1);
        Ok(format!("snap{next}"))
    }

    fn delete_snapshot_dir(&self, id: GuestId, dir: String) -> Result<()> {
        let mut argv = self.lxc("lxc-snapshot", id);
        argv.extend(["-d".into(), dir]);
        self.runner
            .run(&Cmd::act(argv).timeout(Duration::from_secs(300)))?;
        Ok(())
    }

    pub(super) fn remove_snapshot(&self, id: GuestId, name: &str) -> Result<()> {
        match self.find_snapshot_dir(id, name)? {
            Some(dir) => self.delete_snapshot_dir(id, dir),
            None => Ok(()),
        }
    }

    /// Removes snapshots an interrupted `lxc-snapshot` left without a name; one killed before it
    /// wrote the snapshot's config is a bare directory that `lxc-snapshot -d` cannot delete.
    pub(super) fn remove_unnamed_snapshots(&self, id: GuestId) -> Result<()> {
        // A frozen snapshot a killed run started ends (and thaws the guest) first.
        let lock = self.snapshot_lock(id);
        if Path::new(&lock).exists() {
            let wait = ["flock", &lock, "true"];
            self.runner
                .run(&Cmd::act(wait).timeout(Duration::from_secs(900)))?;
        }
        for (dir, name) in self.snapshot_dirs(id)? {
            let path = self.dir(id).join("snaps").join(&dir);
            match (name, path.join("config").exists()) {
                (Some(_), _) => {}
                (None, true) => self.delete_snapshot_dir(id, dir)?,
                (None, false) => {
                    let path = path.display().to_string();
                    let rm = ["rm", "-rf", "--one-file-system", "--", &path];
                    self.runner.run(&Cmd::act(rm))?;
                }
            }
        }
        Ok(())
    }
}

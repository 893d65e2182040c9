//! Snapshots on plain LXC: `lxc-snapshot` names them `snapN`; Phoenix's name is in each one's
//! comment file. LXC cannot snapshot a running container, so a snapshot stops and restarts it. A
//! name taken again supersedes the old snapshot instead of deleting it: overlay clones made from it
//! use it as their lower layer.

use super::LxcBackend;
use crate::backend::{Hypervisor, Result, RunState};
use crate::config::GuestId;
use crate::exec::Cmd;
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
        let was_running = self.state(id)? == Some(RunState::Running);
        if was_running {
            self.stop(id)?;
        }
        if let Some(old) = self.find_snapshot_dir(id, name)? {
            let old_comment = self.dir(id).join("snaps").join(old).join("comment");
            self.write_file(
                &old_comment,
                format!("{name}@superseded-{}\n", state_machine::now_ms()).as_bytes(),
            )?;
        }
        let comment = self.dir(id).join(".phoenix-snapshot-comment");
        self.write_file(&comment, format!("{name}\n").as_bytes())?;
        let mut argv = self.lxc("lxc-snapshot", id);
        argv.extend(["-c".into(), comment.display().to_string()]);
        self.runner
            .run(&Cmd::act(argv).timeout(Duration::from_secs(900)))?;
        if was_running {
            self.start(id)?;
        }
        Ok(())
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

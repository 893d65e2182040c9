//! An in-memory hypervisor for unit tests of orchestration logic (converge, drift, back-off, the
//! scheduler), without root or LXC. Never used outside `#[cfg(test)]`: the end-to-end tests drive
//! real LXC.
//!
//! Guests hold their settings, snapshots and files. Inside a guest, `cat PATH` reads a file, and a
//! pushed script "runs" as its comments say: `# memory-exit: N` exits N, `# memory-panic` panics
//! the calling thread; anything else succeeds. The guest's runner (`phoenix-run`) runs the script
//! it is given and writes its marker.

use super::{
    Applied, BackendError, Capabilities, Change, Hypervisor, Live, Result, RunState, Setting,
};
use crate::config::lxc::Container;
use crate::config::GuestId;
use crate::exec::{Cmd, Output};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Clone, Default)]
pub struct Guest {
    pub running: bool,
    pub settings: HashMap<&'static str, Setting>,
    /// In the order taken.
    pub snapshots: Vec<String>,
    pub files: HashMap<String, Vec<u8>>,
}

#[derive(Default)]
pub struct MemoryBackend {
    pub guests: Mutex<HashMap<GuestId, Guest>>,
    /// Every change, in order: `create 950`, `apply 950 memory`, `start 950`, `exec 950 feature`...
    pub log: Mutex<Vec<String>>,
    /// Changes are only logged (as `would ...`), not made.
    pub dry_run: std::sync::atomic::AtomicBool,
}

impl MemoryBackend {
    /// Logs a change; false in a dry run, where it must not be made.
    fn record(&self, entry: String) -> bool {
        let dry = self.dry_run.load(std::sync::atomic::Ordering::SeqCst);
        let entry = if dry { format!("would {entry}") } else { entry };
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(entry);
        !dry
    }

    fn with<T>(&self, id: GuestId, f: impl FnOnce(&mut Guest) -> T) -> Result<T> {
        let mut guests = self.guests.lock().unwrap_or_else(|p| p.into_inner());
        guests.get_mut(&id).map(f).ok_or(BackendError::NotFound(id))
    }

    /// The changes logged so far that start with `prefix`.
    pub fn changes(&self, prefix: &str) -> Vec<String> {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.iter()
            .filter(|l| l.starts_with(prefix))
            .cloned()
            .collect()
    }

    pub fn guest(&self, id: GuestId) -> Option<Guest> {
        let guests = self.guests.lock().unwrap_or_else(|p| p.into_inner());
        guests.get(&id).cloned()
    }

    /// Drift made behind Phoenix's back.
    pub fn tamper(&self, id: GuestId, f: impl FnOnce(&mut Guest)) {
        let _ = self.with(id, f);
    }

    fn run_script(&self, id: GuestId, cmd: &Cmd) -> Result<Output> {
        let body = self
            .with(id, |g| g.files.get(&cmd.argv[0]).cloned())?
            .unwrap_or_default();
        let body = String::from_utf8_lossy(&body).into_owned();
        if !self.record(format!("exec {id} {}", cmd.argv[0])) {
            return Ok(Output {
                code: Some(0),
                skipped: true,
                ..Output::default()
            });
        }
        if body.contains("# memory-panic") {
            panic!("the script of guest {id} panicked on purpose");
        }
        let code = body
            .lines()
            .find_map(|l| l.strip_prefix("# memory-exit: "))
            .and_then(|c| c.trim().parse().ok())
            .unwrap_or(0);
        Ok(Output {
            code: Some(code),
            stdout: format!("ran {}\n", cmd.argv[0]).into_bytes(),
            ..Output::default()
        })
    }
}

impl MemoryBackend {
    /// The guest's runner (`phoenix-run <dir> <token> <timeout> <marker> <digest> -- <script>`):
    /// runs the script, writes the marker on success, and reports as the real one does.
    fn run_once(&self, id: GuestId, cmd: &Cmd) -> Result<Output> {
        let (marker, digest) = (&cmd.argv[5], &cmd.argv[6]);
        let mut script = cmd.clone();
        script.argv = cmd.argv[8..].to_vec();
        let mut out = self.run_script(id, &script)?;
        if out.skipped {
            return Ok(out);
        }
        if out.success() {
            self.push(id, format!("{digest}\n").as_bytes(), marker, 0o644)?;
        }
        let code = out.code.unwrap_or(125);
        out.stdout
            .extend(format!("@@phoenix-run exit={code} attached=0 started=0\n").into_bytes());
        Ok(out)
    }
}

impl Hypervisor for MemoryBackend {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            firewall: false,
            resize_rootfs: false,
            templates: false,
            storage_locks: true,
        }
    }

    fn preflight(
        &self,
        _: &Container,
        _: Option<&Container>,
        _: Option<&str>,
    ) -> Vec<super::Refusal> {
        Vec::new()
    }

    fn state(&self, id: GuestId) -> Result<Option<RunState>> {
        let guests = self.guests.lock().unwrap_or_else(|p| p.into_inner());
        Ok(guests.get(&id).map(|g| match g.running {
            true => RunState::Running,
            false => RunState::Stopped,
        }))
    }

    fn create(&self, ct: &Container, _: &str, _: super::TaskSink) -> Result<()> {
        let id = ct.base.id;
        if !self.record(format!("create {id}")) {
            return Ok(());
        }
        let mut guests = self.guests.lock().unwrap_or_else(|p| p.into_inner());
        guests.insert(id, Guest::default());
        Ok(())
    }

    fn clone_from(
        &self,
        ct: &Container,
        parent: GuestId,
        snapshot: Option<&str>,
        _: super::TaskSink,
    ) -> Result<()> {
        let snapshot = snapshot.unwrap_or_default();
        let has = self.with(parent, |g| g.snapshots.iter().any(|s| s == snapshot))?;
        if !has {
            return Err(BackendError::Invalid(format!(
                "parent {parent} has no snapshot {snapshot}"
            )));
        }
        if !self.record(format!("clone {} from {parent}", ct.base.id)) {
            return Ok(());
        }
        let mut guests = self.guests.lock().unwrap_or_else(|p| p.into_inner());
        guests.insert(ct.base.id, Guest::default());
        Ok(())
    }

    fn discard_partial(&self, id: GuestId) -> Result<()> {
        if !self.record(format!("discard {id}")) {
            return Ok(());
        }
        let mut guests = self.guests.lock().unwrap_or_else(|p| p.into_inner());
        guests.remove(&id);
        Ok(())
    }

    fn inspect(&self, id: GuestId) -> Result<Option<Live>> {
        let guests = self.guests.lock().unwrap_or_else(|p| p.into_inner());
        Ok(guests.get(&id).map(|_| Live {
            id,
            config: String::new(),
            template: false,
            snapshots: None,
        }))
    }

    /// Settings are kept whole: one that differs is one change, its debug form on each side.
    fn diff(&self, live: &Live, s: &Setting) -> Result<Vec<Change>> {
        let have = self.with(live.id, |g| g.settings.get(s.name()).cloned())?;
        Ok(match have {
            Some(h) if h == *s => Vec::new(),
            h => vec![Change::new(
                s.name(),
                h.map(|h| format!("{h:?}")),
                Some(format!("{s:?}")),
            )],
        })
    }

    fn apply(&self, id: GuestId, s: &Setting) -> Result<Applied> {
        if !self.record(format!("apply {id} {}", s.name())) {
            return Ok(Applied::Live);
        }
        self.with(id, |g| {
            g.settings.insert(s.name(), s.clone());
            match g.running && s.needs_restart() {
                true => Applied::Restarted,
                false => Applied::Live,
            }
        })
    }

    fn start(&self, id: GuestId) -> Result<()> {
        if !self.with(id, |g| g.running)? && self.record(format!("start {id}")) {
            self.with(id, |g| g.running = true)?;
        }
        Ok(())
    }

    fn stop(&self, id: GuestId) -> Result<()> {
        if self.with(id, |g| g.running)? && self.record(format!("stop {id}")) {
            self.with(id, |g| g.running = false)?;
        }
        Ok(())
    }

    fn destroy(&self, id: GuestId) -> Result<()> {
        self.discard_partial(id)
    }

    fn snapshots(&self, id: GuestId) -> Result<Vec<String>> {
        self.with(id, |g| g.snapshots.clone())
    }

    /// Like LXC: a running guest is stopped for the snapshot and started again.
    fn snapshot(&self, id: GuestId, name: &str, _: super::TaskSink) -> Result<()> {
        let was_running = self.state(id)? == Some(RunState::Running);
        self.stop(id)?;
        if !self.record(format!("snapshot {id} {name}")) {
            return Ok(());
        }
        self.with(id, |g| {
            g.snapshots.retain(|s| s != name);
            g.snapshots.push(name.to_string());
        })?;
        if was_running {
            self.start(id)?;
        }
        Ok(())
    }

    fn delete_snapshot(&self, id: GuestId, name: &str) -> Result<()> {
        self.with(id, |g| g.snapshots.retain(|s| s != name))
    }

    fn discard_partial_snapshots(&self, _: GuestId) -> Result<()> {
        Ok(())
    }

    fn exec(&self, id: GuestId, cmd: &Cmd) -> Result<Output> {
        let dry = self.dry_run.load(std::sync::atomic::Ordering::SeqCst);
        let would_run = dry && cmd.mutating;
        if !would_run && !self.with(id, |g| g.running)? {
            return Err(BackendError::NotRunning(id));
        }
        match cmd.argv.first().map(String::as_str) {
            Some("cat") => {
                let file = self.with(id, |g| g.files.get(&cmd.argv[1]).cloned())?;
                Ok(Output {
                    code: Some(if file.is_some() { 0 } else { 1 }),
                    stdout: file.unwrap_or_default(),
                    ..Output::default()
                })
            }
            Some(path) if path.ends_with(".sh") => self.run_script(id, cmd),
            Some("/bin/sh") if cmd.argv.get(1).is_some_and(|r| r.ends_with("/phoenix-run")) => {
                self.run_once(id, cmd)
            }
            _ => Ok(Output {
                code: Some(0),
                ..Output::default()
            }),
        }
    }

    fn push(&self, id: GuestId, data: &[u8], path: &str, _: u32) -> Result<()> {
        if self.dry_run.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        self.with(id, |g| {
            g.files.insert(path.to_string(), data.to_vec());
        })
    }
}

//! Commands a killed run left behind. Every command Phoenix runs on this machine leads a process
//! group of its own and is killed with Phoenix (`PR_SET_PDEATHSIG`), but what it started (the
//! `cp` under `lxc-snapshot`, the `zstd` beside `tar`) may outlive it and race the resume. So
//! while a run holds the state store, each group is listed in `<state-dir>/children` when it
//! starts and crossed off when it ends ([`Ledger`]); the next holder of the store ends every
//! group still listed and still alive ([`end_left_over`]) before it touches a guest.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const FILE: &str = "children";

/// The list of process groups this run has running.
pub struct Ledger {
    file: Mutex<std::fs::File>,
}

impl Ledger {
    /// Starts a fresh list (the caller holds the store, and has ended what an earlier one left),
    /// headed by this boot's id: a list from before a reboot names no live process.
    pub fn open(state_dir: &Path) -> std::io::Result<Ledger> {
        let mut file = state_machine::create_private(&state_dir.join(FILE))?;
        file.write_all(format!("boot {}\n", boot_id()).as_bytes())?;
        Ok(Ledger {
            file: Mutex::new(file),
        })
    }

    /// Group `pid` (led by the command just spawned) runs.
    pub fn started(&self, pid: u32) {
        // A leader gone already has nothing left to end that can be told from another's.
        if let Some(leader) = Proc::read(pid) {
            self.append(&format!("+ {pid} {}\n", leader.start));
        }
    }

    /// Group `pid`'s leader has ended.
    pub fn ended(&self, pid: u32) {
        self.append(&format!("- {pid}\n"));
    }

    fn append(&self, line: &str) {
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        // One write per line; a line lost to a full disk costs only the clean-up of one group.
        if let Err(e) = f.write_all(line.as_bytes()) {
            tracing::warn!(error = %e, "cannot record a command's process group");
        }
    }
}

/// Ends the process groups a killed run left running (listed in `state_dir` in this boot, not
/// crossed off, and still theirs), and says what each was.
pub fn end_left_over(state_dir: &Path) -> Vec<String> {
    let path: PathBuf = state_dir.join(FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Vec::new();
    };
    let mut ended = Vec::new();
    let this_boot = text.lines().next() == Some(&format!("boot {}", boot_id()));
    for (pgid, since) in still_listed(&text).into_iter().filter(|_| this_boot) {
        let members = members(pgid, since);
        if members.is_empty() {
            continue;
        }
        let what: Vec<String> = members
            .iter()
            .map(|p| format!("{} (pid {})", p.comm, p.pid))
            .collect();
        kill_group(pgid, &members);
        ended.push(what.join(", "));
    }
    let _ = std::fs::remove_file(&path);
    ended
}

/// Groups started and not crossed off, with their leader's start time.
fn still_listed(text: &str) -> Vec<(u32, u64)> {
    let mut live: Vec<(u32, u64)> = Vec::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (sign, pid) = (f.next(), f.next().and_then(|p| p.parse::<u32>().ok()));
        match (sign, pid) {
            (Some("+"), Some(pid)) => {
                if let Some(since) = f.next().and_then(|s| s.parse().ok()) {
                    live.push((pid, since));
                }
            }
            (Some("-"), Some(pid)) => live.retain(|(p, _)| *p != pid),
            _ => {}
        }
    }
    live
}

/// The processes of the group `pgid` whose leader started at `since`. While its leader lives,
/// it is that group only if the leader's start time is `since`; once the leader is gone, the
/// kernel does not hand the number out again while any member lives, so the members are its.
fn members(pgid: u32, since: u64) -> Vec<Proc> {
    if Proc::read(pgid).is_some_and(|leader| leader.start != since) {
        return Vec::new();
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(Proc::read)
        .filter(|p| p.pgrp == pgid)
        .collect()
}

/// This boot's id (empty where the kernel does not say).
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn kill_group(pgid: u32, members: &[Proc]) {
    // SAFETY: kill(2) with a negative pid signals that process group; no memory is involved.
    unsafe {
        libc::kill(-(pgid as libc::pid_t), libc::SIGKILL);
    }
    // Gone once reaped by whoever is their parent now; wait a little for that.
    let deadline = Instant::now() + Duration::from_secs(5);
    while members
        .iter()
        .any(|m| Proc::read(m.pid).is_some_and(|p| !p.zombie))
    {
        if Instant::now() > deadline {
            tracing::warn!(pgid, "a left-over process group did not end within 5 s");
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What `/proc/<pid>/stat` says of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Proc {
    pid: u32,
    comm: String,
    pgrp: u32,
    /// Clock ticks after boot.
    start: u64,
    zombie: bool,
}

impl Proc {
    fn read(pid: u32) -> Option<Proc> {
        Proc::parse(
            pid,
            &std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?,
        )
    }

    /// `pid (comm) state ppid pgrp ...`, start time 22nd; `comm` may hold spaces and `)`.
    fn parse(pid: u32, stat: &str) -> Option<Proc> {
        let (head, rest) = stat.rsplit_once(')')?;
        let comm = head.split_once('(')?.1.to_string();
        let f: Vec<&str> = rest.split_whitespace().collect();
        Some(Proc {
            pid,
            comm,
            zombie: *f.first()? == "Z",
            pgrp: f.get(2)?.parse().ok()?,
            start: f.get(19)?.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn stat_lines_parse_with_odd_command_names() {
        let stat = "4242 (a) b) c) S 1 4240 4240 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 0 0";
        let p = Proc::parse(4242, stat).unwrap();
        assert_eq!(
            (p.comm.as_str(), p.pgrp, p.start),
            ("a) b) c", 4240, 987654)
        );
        assert!(Proc::parse(1, "garbage").is_none());
    }

    #[test]
    fn crossed_off_groups_are_not_listed() {
        assert_eq!(
            still_listed("boot x\n+ 10 5\n+ 11 6\n- 10\nbroken\n+ 12\n"),
            [(11, 6)]
        );
    }

    /// A group whose number now belongs to another leader is not ended; nor is a list from
    /// another boot.
    #[test]
    fn another_group_with_the_number_or_another_boot_is_left_alone() {
        let mut other = std::process::Command::new("sleep")
            .arg("300")
            .process_group(0)
            .spawn()
            .unwrap();
        let start = Proc::read(other.id()).unwrap().start;
        assert!(members(other.id(), start + 1).is_empty(), "another leader");
        assert_eq!(members(other.id(), start).len(), 1);
        let dir = tempfile::tempdir().unwrap();
        let list = format!("boot not-this-one\n+ {} {start}\n", other.id());
        std::fs::write(dir.path().join(FILE), list).unwrap();
        assert!(end_left_over(dir.path()).is_empty());
        assert!(other.try_wait().unwrap().is_none(), "still running");
        let _ = other.kill();
        let _ = other.wait();
    }

    /// A group a "killed run" left (its leader and a grandchild still running) is ended; one
    /// crossed off is left alone.
    #[test]
    fn left_over_groups_are_ended_and_the_list_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let spawn = || {
            std::process::Command::new("sh")
                .args(["-c", "sleep 300 & sleep 300"])
                .process_group(0)
                .spawn()
                .unwrap()
        };
        let (mut left, mut finished) = (spawn(), spawn());
        let ledger = Ledger::open(dir.path()).unwrap();
        ledger.started(left.id());
        ledger.started(finished.id());
        ledger.ended(finished.id());
        drop(ledger);
        std::thread::sleep(Duration::from_millis(100));
        let ended = end_left_over(dir.path());
        assert_eq!(ended.len(), 1, "{ended:?}");
        assert!(ended[0].contains("sleep"), "{ended:?}");
        assert!(left.wait().unwrap().code().is_none(), "killed");
        assert!(finished.try_wait().unwrap().is_none(), "still running");
        let since = Proc::read(finished.id()).unwrap().start;
        assert!(members(finished.id(), since).len() >= 2);
        assert!(!dir.path().join(FILE).exists());
        kill_group(finished.id(), &members(finished.id(), since));
        let _ = finished.wait();
    }
}

//! One writer per store: an exclusive lock on `<dir>/lock` (released by the kernel when the
//! process dies), and the holder's identity written into the file for others to read.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Who holds (or held) a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub started_ms: u64,
    pub command: String,
}

impl Holder {
    fn me() -> Holder {
        Holder {
            pid: std::process::id(),
            host: hostname(),
            started_ms: crate::now_ms(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
        }
    }

    fn to_text(&self) -> String {
        format!(
            "pid={}\nhost={}\nstarted_ms={}\ncommand={}\n",
            self.pid,
            self.host,
            self.started_ms,
            self.command.replace('\n', " ")
        )
    }

    fn parse(text: &str) -> Option<Holder> {
        let mut h = Holder {
            pid: 0,
            host: String::new(),
            started_ms: 0,
            command: String::new(),
        };
        for line in text.lines() {
            let (k, v) = line.split_once('=')?;
            match k {
                "pid" => h.pid = v.parse().ok()?,
                "host" => h.host = v.to_string(),
                "started_ms" => h.started_ms = v.parse().ok()?,
                "command" => h.command = v.to_string(),
                _ => {}
            }
        }
        (h.pid != 0).then_some(h)
    }

    /// Whether a process with this pid exists on this host now.
    pub fn alive(&self) -> bool {
        self.host == hostname() && Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = crate::now_ms().saturating_sub(self.started_ms) / 1000;
        write!(f, "pid {} on {}, started {secs}s ago", self.pid, self.host)?;
        if !self.command.is_empty() {
            write!(f, " ({})", self.command)?;
        }
        Ok(())
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// A held lock; dropping it clears the holder text and releases the lock.
#[derive(Debug)]
pub struct LockGuard {
    file: File,
}

pub enum Acquired {
    /// Locked. `stale` is the previous holder when it died without releasing (crash, SIGKILL).
    Held {
        guard: LockGuard,
        stale: Option<Holder>,
    },
    /// Another live writer holds it.
    Busy(Holder),
}

pub fn acquire(path: &Path) -> std::io::Result<Acquired> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    crate::private::file(&file)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let holder = Holder::parse(&text).unwrap_or(Holder {
                pid: 0,
                host: "unknown".into(),
                started_ms: 0,
                command: String::new(),
            });
            return Ok(Acquired::Busy(holder));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(e),
    }
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let stale = Holder::parse(&text);
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(Holder::me().to_text().as_bytes())?;
    file.sync_data()?;
    Ok(Acquired::Held {
        guard: LockGuard { file },
        stale,
    })
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.sync_data();
        let _ = self.file.unlock();
    }
}

/// Reads the holder of a lock without taking it (so a reader never gets in a writer's way):
/// `Some` while a live process is named there. A clean release empties the file; a dead holder's
/// text is left behind and is reported by the next writer as a stale lock.
pub fn holder(path: &Path) -> Option<Holder> {
    let text = std::fs::read_to_string(path).ok()?;
    Holder::parse(&text).filter(Holder::alive)
}

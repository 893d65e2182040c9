//! A guest script's output as it runs: while the runner ([`super::run_once`]) waits for its
//! instance, the instance's log is read again every two seconds from where the last read ended,
//! through the same way into the guest (`pct exec`, the guest agent, SSH), and each new line is
//! logged at once (target `phoenix::guest`: Phoenix's log, and the terminal with `-v`). Through
//! the guest agent this is the only way to see it before the script ends: `qm guest exec`
//! returns a command's output when it exits.

use super::InGuest;
use crate::backend::BackendError;
use crate::exec::{Cmd, Output};
use std::time::{Duration, Instant};

/// `$1` the instance's token, `$2` its directory, `$3` the first byte to read: the log from
/// there, once the instance is this token's (exit 3 before).
const READ: &str =
    r#"grep -qxF "token=$1" "$2/status" 2>/dev/null || exit 3; tail -c "+$3" "$2/log""#;
const EVERY: Duration = Duration::from_secs(2);

/// Runs `runner` while following the log of the instance `token` in `dir`; `step` names it in
/// the log lines.
pub fn exec_following(
    cx: &dyn InGuest,
    runner: &Cmd,
    dir: &str,
    token: &str,
    step: &str,
) -> Result<Output, BackendError> {
    std::thread::scope(|s| {
        // Finished also when it panics.
        let waiter = s.spawn(|| cx.exec().exec(runner));
        let mut log = Follower::new(step);
        while !waiter.is_finished() {
            let next = Instant::now() + EVERY;
            while !waiter.is_finished() && Instant::now() < next {
                std::thread::sleep(Duration::from_millis(100));
            }
            log.read(cx, dir, token);
        }
        log.finish();
        // A panic there goes on here, where the scheduler blames it on this guest.
        waiter
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// What has been read of one log, and the line not yet ended.
struct Follower<'a> {
    step: &'a str,
    offset: usize,
    partial: String,
}

impl<'a> Follower<'a> {
    fn new(step: &'a str) -> Self {
        Follower {
            step,
            offset: 0,
            partial: String::new(),
        }
    }

    /// Reads what the log gained; a failed read is tried again at the next turn.
    fn read(&mut self, cx: &dyn InGuest, dir: &str, token: &str) {
        let from = (self.offset + 1).to_string();
        let cmd = Cmd::probe(["/bin/sh", "-c", READ, "sh", token, dir, &from])
            .timeout(Duration::from_secs(20));
        let Ok(out) = cx.exec().exec(&cmd) else {
            return;
        };
        if !out.success() || out.skipped {
            return;
        }
        self.offset += out.stdout.len();
        self.partial.push_str(&String::from_utf8_lossy(&out.stdout));
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            self.emit(line.trim_end());
        }
    }

    fn emit(&self, line: &str) {
        tracing::info!(target: "phoenix::guest", step = self.step, "{line}");
    }

    fn finish(&mut self) {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            self.emit(&rest);
        }
    }
}

//! Proxmox tasks and locks. Create, clone and snapshot are API calls (`pvesh create`) that run a
//! task; on the command line pvesh waits for it and prints its UPID when it ends, exiting 0
//! whatever the result (pve-common `RESTEnvironment::fork_worker`, sync mode). Phoenix starts
//! that pvesh detached on the node, recording its output and exit code in a launch record under
//! its directory there ([`LAUNCH`]); the record is reported (and saved as the step's intent)
//! before Phoenix waits. A run killed meanwhile leaves the task running, finds the record again,
//! waits for it, and reads the UPID and the task's end (pve-manager `PVE/API2/Tasks.pm`,
//! `read_task_status`). Commands refused because another operation holds the guest's lock
//! ("CT is locked (disk)" while a clone copies its source; pve-guest-common
//! `AbstractConfig::check_lock`), its config file lock (pve-common `PVE::Tools::lock_file_full`:
//! "can't lock file ... - got timeout") or a cluster lock (pve-cluster `cfs_lock`: "cfs-lock
//! '...' error: got lock request timeout") are retried with back-off.

use super::ProxmoxBackend;
use crate::backend::{BackendError, Result, TaskEnd, TaskSink};
use crate::exec::{Cmd, ExecError, Output};
use std::time::{Duration, Instant};

/// How long a lock held by another operation is waited out.
const LOCK_PATIENCE: Duration = Duration::from_secs(300);

/// Whether a refusal is another operation's lock, which ends by itself.
pub fn locked_by_another(text: &str) -> bool {
    text.contains("CT is locked (")
        || (text.contains("can't lock file") && text.contains("got timeout"))
        || (text.contains("cfs-lock") && text.contains("got lock request timeout"))
}

/// Runs `f` until it is not refused for a lock, sleeping 0.25 s, 0.5 s, ... (at most 5 s) between
/// tries, for at most [`LOCK_PATIENCE`].
pub fn retry_locked(
    mut f: impl FnMut() -> std::result::Result<Output, ExecError>,
) -> Result<Output> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(250);
    loop {
        match f() {
            Err(e) if locked_by_another(&e.tail()) && started.elapsed() < LOCK_PATIENCE => {
                tracing::info!(target: "phoenix::proxmox", wait_ms = pause.as_millis() as u64, "locked by another operation; retrying: {}", e.tail().lines().last().unwrap_or_default());
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            other => return Ok(other?),
        }
    }
}

/// What `GET /nodes/NODE/tasks/UPID/status` says.
fn task_end(json: &serde_json::Value) -> Option<TaskEnd> {
    if json.get("status")?.as_str()? == "running" {
        return None;
    }
    Some(match json.get("exitstatus").and_then(|s| s.as_str()) {
        Some("OK") => TaskEnd::Ok,
        Some(other) => TaskEnd::Failed(other.to_string()),
        None => TaskEnd::Failed("no exit status".into()),
    })
}

/// Starts `$2...` detached from the command that starts it (its own session, no terminal), its
/// output in `$1.out`, its exit code in `$1.rc` when it ends, its pid in `$1.pid`.
const LAUNCH: &str = r#"rec=$1; shift
mkdir -p "${rec%/*}"
setsid sh -c '"$@" > "$0.out" 2>&1; echo $? > "$0.rc"' "$rec" "$@" < /dev/null > /dev/null 2>&1 &
echo $! > "$rec.pid""#;

/// What a launch record says: still running, or ended with the command's output and exit code.
enum Launch {
    Running,
    Ended {
        code: String,
        out: String,
    },
    /// No exit code and no live launcher (never launched, or the node restarted).
    Gone,
}

impl ProxmoxBackend {
    /// `pvesh create PATH ARGS` as a task: launched detached (see the module), its record
    /// reported to `task`, then waited for. A refusal for another operation's lock is retried.
    pub(super) fn run_task(&self, path: String, args: Vec<String>, task: TaskSink) -> Result<()> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(250);
        loop {
            let rec = self.launch_record(&path);
            task(&rec)?;
            let mut argv = vec![
                "sh".to_string(),
                "-c".into(),
                LAUNCH.into(),
                "sh".into(),
                rec.clone(),
            ];
            argv.extend(
                self.pvesh(
                    ["create".to_string(), path.clone()]
                        .into_iter()
                        .chain(args.iter().cloned()),
                ),
            );
            self.runner
                .run(&Cmd::act(argv).timeout(Duration::from_secs(30)))?;
            match self.wait_task(&rec)? {
                TaskEnd::Ok => return Ok(()),
                TaskEnd::Failed(why)
                    if locked_by_another(&why) && started.elapsed() < LOCK_PATIENCE =>
                {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
                TaskEnd::Failed(why) => {
                    return Err(BackendError::Invalid(format!("{path}: {why}")))
                }
            }
        }
    }

    /// A new launch record's path on the node.
    fn launch_record(&self, path: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let what = path.trim_start_matches("/nodes/").replace('/', "-");
        self.layout
            .owned_dir
            .join(format!("tasks/{what}-{nanos}"))
            .display()
            .to_string()
    }

    /// Waits for a launch record's command to end (at most an hour), then for its task's end.
    pub(super) fn wait_task(&self, rec: &str) -> Result<TaskEnd> {
        let deadline = Instant::now() + Duration::from_secs(3600);
        let mut pause = Duration::from_millis(100);
        loop {
            match self.read_launch(rec)? {
                Launch::Running if Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Launch::Running => {
                    return Err(BackendError::Invalid(format!(
                        "{rec}: still running after an hour"
                    )))
                }
                Launch::Gone => {
                    return Ok(TaskEnd::Failed(format!(
                        "{rec}: the task was never started, or the node lost it"
                    )))
                }
                Launch::Ended { code, out } => return self.task_result(&code, &out),
            }
        }
    }

    fn read_launch(&self, rec: &str) -> Result<Launch> {
        let probe = r#"if [ -e "$1.rc" ]; then cat "$1.rc"; echo ---; cat "$1.out"; elif [ -e "$1.pid" ] && kill -0 "$(cat "$1.pid")" 2>/dev/null; then echo running; else echo gone; fi"#;
        let out = self
            .runner
            .run(&Cmd::probe(["sh", "-c", probe, "sh", rec]))?
            .stdout_str();
        Ok(match out.split_once("---\n") {
            Some((code, text)) => Launch::Ended {
                code: code.trim().to_string(),
                out: text.to_string(),
            },
            None if out.trim() == "running" => Launch::Running,
            None => Launch::Gone,
        })
    }

    /// pvesh's exit code and output: refused before a task started, or the UPID of the task,
    /// whose status says how it ended.
    fn task_result(&self, code: &str, out: &str) -> Result<TaskEnd> {
        let upid = out
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with("UPID:"));
        let (Some(upid), "0") = (upid, code) else {
            let tail: Vec<&str> = out.lines().rev().take(3).collect();
            return Ok(TaskEnd::Failed(
                tail.into_iter().rev().collect::<Vec<_>>().join("; "),
            ));
        };
        let node = upid.split(':').nth(1).unwrap_or_default();
        let argv = self.pvesh([
            "get".to_string(),
            format!("/nodes/{node}/tasks/{upid}/status"),
            "--output-format".into(),
            "json".into(),
        ]);
        let out = self.runner.run(&Cmd::probe(argv))?;
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| BackendError::Invalid(format!("task status of {upid}: {e}")))?;
        Ok(task_end(&json)
            .unwrap_or_else(|| TaskEnd::Failed(format!("{upid} still runs after pvesh ended"))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lock_refusals_are_retried_and_others_are_not() {
        assert!(locked_by_another("CT is locked (disk)"));
        assert!(locked_by_another(
            "can't lock file '/run/lock/lxc/pve-config-950.lock' - got timeout"
        ));
        assert!(locked_by_another(
            "cfs-lock 'storage-tank' error: got lock request timeout"
        ));
        assert!(!locked_by_another("snapshot feature is not available"));
    }

    #[test]
    fn task_status_is_read() {
        assert_eq!(task_end(&json!({"status": "running"})), None);
        assert_eq!(
            task_end(&json!({"status": "stopped", "exitstatus": "OK"})),
            Some(TaskEnd::Ok)
        );
        assert_eq!(
            task_end(&json!({"status": "stopped", "exitstatus": "unexpected status"})),
            Some(TaskEnd::Failed("unexpected status".into()))
        );
    }
}

//! `phoenix doctor`: checks the guests' host (this machine, or the `--host` node over SSH) and
//! Phoenix's own directories before a first run, and says for each check what was found and what
//! to do. Read-only: it runs probes only, through the session's runner (so over SSH they run on
//! the node), and creates nothing, not even the state directory. By group:
//! - [`node`]: the backend and its tools, the cgroup layout, the inotify budget, the bridges;
//! - [`fleet`]: the configuration, and what the backend would refuse for it;
//! - [`dirs`]: the state and log directories;
//! - [`disk`]: free space where the guests live and where the state is kept;
//! - here: the session itself (SSH reachable, host key known).
//!
//! The exit status is 1 when any check fails (a run would fail), 0 otherwise.

mod dirs;
mod disk;
mod fleet;
mod node;
mod report;

pub use report::{Check, Level, Report};

use super::connect::{self, BackendKind, Purpose};
use super::Options;
use crate::config::Fleet;
use crate::error::Result;
use crate::exec::{Cmd, LocalRunner, Runner};
use crate::exit::Status;
use crate::session::Session;
use std::time::Duration;

/// Runs every check, prints the report, and says whether a run would fail.
pub fn run(opts: &Options) -> Result<Status> {
    let report = examine(opts);
    report.print(opts.output);
    Ok(match report.ok {
        true => Status::Success,
        false => Status::ChecksFailed,
    })
}

/// Every check, in the order they are shown.
pub fn examine(opts: &Options) -> Report {
    let (loaded, config) = fleet::load(opts);
    let host = opts
        .host
        .clone()
        .or_else(|| loaded.hypervisor.phoenix.host.clone());
    let resolved = opts
        .backend
        .resolve(host.as_deref(), opts.pve_tools.as_deref());
    let has_fleet = config.status != Level::Fail;
    let place = Place::of(host.as_deref());
    let mut checks = Vec::new();
    let session = open(opts, loaded, host.as_deref(), resolved, &mut checks);
    if let Some(s) = &session {
        checks.push(node::backend(s, opts, resolved, &place));
        checks.push(node::cgroup(&*s.runner, s.backend.kind(), &place));
        checks.push(node::inotify(&*s.runner, &place));
    }
    checks.push(config);
    if let (Some(s), true) = (&session, has_fleet) {
        checks.extend(fleet::refusals(s));
        checks.extend(fleet::host_files(s, opts));
        checks.extend(node::bridges(s, &place));
    }
    let local = LocalRunner::new(false);
    checks.push(dirs::check(
        "state dir",
        &opts.state_dir,
        "--state-dir",
        &local,
    ));
    checks.push(dirs::check("log dir", &opts.log_dir, "--log-dir", &local));
    if let Some(s) = &session {
        checks.extend(disk::guests(s, opts, has_fleet));
    }
    checks.push(disk::state(&opts.state_dir, &local));
    Report::new(checks)
}

/// The session to the guests' host, or `None` after saying (as a failed check) why there is none;
/// with a host, an ok `ssh` check.
fn open(
    opts: &Options,
    fleet: Fleet,
    host: Option<&str>,
    resolved: BackendKind,
    checks: &mut Vec<Check>,
) -> Option<Session> {
    const SKIPPED: &str = "; the checks on the guests' host are skipped";
    if let (Some(h), BackendKind::Lxc) = (host, resolved) {
        checks.push(Check::fail(
            "backend",
            format!("plain LXC drives this machine only, and a host is given ({h}){SKIPPED}"),
            "--backend proxmox (or auto), or leave out --host and the hypervisor file's host",
        ));
        return None;
    }
    // Read-only: an unknown host key is reported, never added to known_hosts.
    let opts = &Options {
        accept_new_host_keys: false,
        ..opts.clone()
    };
    match (connect::session(opts, fleet, Purpose::Guests), host) {
        (Ok(s), None) => Some(s),
        (Ok(s), Some(h)) => {
            checks.push(Check::ok(
                "ssh",
                format!("logged in to {h}; its host key is known"),
            ));
            Some(s)
        }
        (Err(e), h) => {
            checks.push(Check::fail(
                if h.is_some() { "ssh" } else { "session" },
                format!("{e}{SKIPPED}"),
                "check the login by hand (ssh -i IDENTITY HOST true); --identity, --known-hosts and --accept-new-host-keys choose the key and host keys",
            ));
            None
        }
    }
}

/// Where the guests' host is, for details: "on this machine" or "on root@pve1".
pub struct Place(String);

impl Place {
    fn of(host: Option<&str>) -> Place {
        Place(match host {
            Some(h) => format!("on {h}"),
            None => "on this machine".into(),
        })
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The stdout of a read-only command that succeeded; `None` when it failed or could not run.
fn probe<S: Into<String>>(
    runner: &dyn Runner,
    argv: impl IntoIterator<Item = S>,
) -> Option<String> {
    let cmd = Cmd::probe(argv).timeout(Duration::from_secs(30));
    runner
        .output(&cmd)
        .ok()
        .filter(|o| o.success())
        .map(|o| o.stdout_str())
}

/// Whether a read-only command exits 0 (`None`: it could not be run at all).
fn holds<S: Into<String>>(runner: &dyn Runner, argv: impl IntoIterator<Item = S>) -> Option<bool> {
    let cmd = Cmd::probe(argv).timeout(Duration::from_secs(30));
    runner.output(&cmd).ok().map(|o| o.success())
}

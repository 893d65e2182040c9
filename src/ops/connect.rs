//! Setting up a session: the runner (this machine, or SSH to `--host`), the backend, and the
//! state store.

use super::Options;
use crate::backend::proxmox::{NodeLayout, ProxmoxBackend};
use crate::backend::{lxc::LxcBackend, Hypervisor};
use crate::config::Fleet;
use crate::error::{Error, Result};
use crate::exec::ssh::{SshOptions, SshRunner, Target};
use crate::exec::ssh_key::GuestSsh;
use crate::exec::{orphans, LocalRunner, Runner};
use crate::graph::Graph;
use crate::limits::PoolLimits;
use crate::session::Session;
use crate::ui::out;
use state_machine::{OpenOptions, OpenReport, Store};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

/// Which hypervisor to drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// Proxmox when a node is given (`--host`) or `pct` is at hand, else plain LXC.
    Auto,
    Lxc,
    Proxmox,
}

impl BackendKind {
    pub const NAMES: &'static [&'static str] = &["auto", "lxc", "proxmox"];

    /// What `auto` means here.
    pub fn resolve(self, host: Option<&str>, tools: Option<&Path>) -> BackendKind {
        if self != BackendKind::Auto {
            return self;
        }
        let on_path = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("pct").is_file()));
        if host.is_some() || on_path || tools.is_some_and(|t| t.join("pct").is_file()) {
            BackendKind::Proxmox
        } else {
            BackendKind::Lxc
        }
    }
}

impl std::str::FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<BackendKind, String> {
        match s {
            "auto" => Ok(BackendKind::Auto),
            "lxc" => Ok(BackendKind::Lxc),
            "proxmox" => Ok(BackendKind::Proxmox),
            _ => Err(format!("{s:?} is not auto, lxc or proxmox")),
        }
    }
}

/// What a session is opened for.
#[derive(Debug, Clone, Copy)]
pub enum Purpose {
    /// A run: Phoenix's guest key at hand, `clone_jobs` create/clone/snapshot operations at once
    /// per storage pool (by default 1 where the backend's storage locks need it, else no limit),
    /// and in a dry run mutating commands only reported. The caller opens the store
    /// ([`hold_store`]) once its checks have passed.
    Run {
        dry_run: bool,
        clone_jobs: Option<usize>,
    },
    /// Operations on single guests (start, stop, status, delete): no store, no guest key.
    Guests,
}

/// The session for work on the jobs of `ids` outside a run (`adopt`, `health-check`): the
/// configuration loaded and checked, each id defined, Phoenix's guest key at hand.
pub fn jobs_session(opts: &Options, ids: &[crate::config::GuestId]) -> Result<Session> {
    crate::logging::init(&opts.log_dir, opts.verbose);
    let fleet = super::load::checked(opts)?;
    super::load::defined(&fleet, ids)?;
    let purpose = Purpose::Run {
        dry_run: false,
        clone_jobs: None,
    };
    session(opts, fleet, purpose)
}

/// The session for `fleet`: runner, backend, and for runs the store and guest key.
pub fn session(opts: &Options, fleet: Fleet, purpose: Purpose) -> Result<Session> {
    let graph = Graph::build(&fleet);
    let section = &fleet.hypervisor.phoenix;
    let host = opts.host.clone().or_else(|| section.host.clone());
    let (dry_run, clone_jobs) = match purpose {
        Purpose::Run {
            dry_run,
            clone_jobs,
        } => (dry_run, clone_jobs),
        Purpose::Guests => (false, None),
    };
    let runner = runner(opts, &fleet, host.as_deref(), dry_run)?;
    let backend = backend(opts, &fleet, host.as_deref(), runner.clone())?;
    let guest_ssh = match purpose {
        Purpose::Run { .. } => guest_key(opts, &fleet)?,
        Purpose::Guests => None,
    };
    let features = super::load::features(opts, &fleet);
    let limits = PoolLimits::new(clone_jobs.unwrap_or(
        match backend.capabilities().storage_locks {
            true => 1,
            false => usize::MAX,
        },
    ));
    Ok(Session {
        fleet,
        graph,
        runner,
        backend,
        features,
        store: None,
        state_dir: opts.state_dir.clone(),
        cancel: AtomicBool::new(false),
        limits,
        guest_ssh,
        found: OnceLock::new(),
    })
}

/// This machine, or one SSH session to the node (connected now: an unknown host key or a
/// refused login stops before any work).
fn runner(
    opts: &Options,
    fleet: &Fleet,
    host: Option<&str>,
    dry_run: bool,
) -> Result<Arc<dyn Runner>> {
    let Some(h) = host else {
        return Ok(Arc::new(LocalRunner::new(dry_run)));
    };
    let section = &fleet.hypervisor.phoenix;
    let target: Target = h
        .parse()
        .map_err(|e| Error::usage(format!("--host: {e}")))?;
    let mut ssh_opts = SshOptions {
        accept_new_host_keys: opts.accept_new_host_keys,
        identity: opts
            .identity
            .clone()
            .or_else(|| section.identity.as_ref().map(PathBuf::from)),
        ..SshOptions::default()
    };
    if let Some(kh) = opts
        .known_hosts
        .clone()
        .or_else(|| section.known_hosts.as_ref().map(PathBuf::from))
    {
        ssh_opts.known_hosts = kh;
    }
    let ssh = SshRunner::new(target, ssh_opts, dry_run);
    ssh.connect().map_err(|e| Error::usage(e.to_string()))?;
    Ok(Arc::new(ssh))
}

fn backend(
    opts: &Options,
    fleet: &Fleet,
    host: Option<&str>,
    runner: Arc<dyn Runner>,
) -> Result<Arc<dyn Hypervisor>> {
    Ok(
        match opts.backend.resolve(host, opts.pve_tools.as_deref()) {
            BackendKind::Lxc | BackendKind::Auto => {
                if host.is_some() {
                    return Err(Error::usage(
                        "the lxc backend drives this machine only; --host needs --backend proxmox",
                    ));
                }
                Arc::new(LxcBackend::new(runner, &opts.lxc_path))
            }
            BackendKind::Proxmox => Arc::new(ProxmoxBackend::new(
                runner,
                opts.pve_tools.clone(),
                NodeLayout::under(&opts.pve_root),
                opts.node
                    .clone()
                    .or_else(|| fleet.hypervisor.phoenix.node.clone()),
            )),
        },
    )
}

/// Phoenix's key for guests reached over SSH (and given to every VM's cloud-init user), made
/// on first use; none when no guest needs it.
fn guest_key(opts: &Options, fleet: &Fleet) -> Result<Option<GuestSsh>> {
    use crate::config::lxc::ExecVia;
    let uses_ssh = !fleet.vm.vms.is_empty()
        || fleet
            .lxc
            .containers
            .values()
            .any(|c| c.exec_via == ExecVia::Ssh);
    if !uses_ssh {
        return Ok(None);
    }
    GuestSsh::prepare(&opts.state_dir, opts.guest_identity.as_deref())
        .map(Some)
        .map_err(|e| Error::usage(format!("guest SSH key: {e}")))
}

/// Takes the state store for a command that changes guests: opens it for writing, ends the
/// commands a killed earlier holder left running (saying which), and lists this one's from now
/// on, so that the next holder can do the same ([`crate::exec::orphans`]).
pub fn hold_store(dir: &Path, runner: &dyn Runner) -> Result<Store> {
    let store = open_store(dir)?;
    if runner.dry_run() {
        return Ok(store);
    }
    for what in orphans::end_left_over(dir) {
        out::err_line(&format!(
            "warning: ended what a killed run left running: {what}"
        ));
    }
    match orphans::Ledger::open(dir) {
        Ok(ledger) => runner.track(Arc::new(ledger)),
        Err(e) => tracing::warn!(error = %e, "cannot list this run's commands"),
    }
    Ok(store)
}

/// Opens the state store for writing; reports a dead previous writer and unreadable records.
pub fn open_store(dir: &Path) -> Result<Store> {
    let (store, report) = Store::open(dir, OpenOptions::default())?;
    say_opened(report);
    Ok(store)
}

/// Opens the state store for `state reset`, salvaging it first when its files are damaged: the
/// damaged files are moved aside, the jobs whose views are whole are kept, and all of it is said.
pub fn open_or_salvage_store(dir: &Path) -> Result<Store> {
    let (store, report, salvage) = Store::open_or_salvage(dir, OpenOptions::default())?;
    if let Some(s) = salvage {
        let lost = match s.lost.is_empty() {
            true => String::new(),
            false => format!("; lost {} (reset them, and run)", s.lost.join(", ")),
        };
        out::err_line(&format!(
            "warning: the state store in {} was damaged; its files are now in {}; kept {} job(s) from its views{lost}",
            dir.display(),
            s.moved_to.display(),
            s.kept.len()
        ));
    }
    say_opened(report);
    Ok(store)
}

fn say_opened(report: OpenReport) {
    if let Some(dead) = report.stale_lock {
        out::err_line(&format!("warning: the previous run ({dead}) died without releasing the state store; its unfinished steps will be redone"));
    }
    for (job, step) in &report.interrupted {
        tracing::warn!(job = %job, step = %step, "interrupted step will run again");
    }
    for e in report.corrupt {
        out::err_line(&format!("warning: {}", Error::from(e)));
    }
}

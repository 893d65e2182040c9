//! What the guest-facing commands share: the checked configuration, its graph, the backend and
//! its command runner, the feature directories, and the state store.

use crate::backend::{lxc::LxcBackend, proxmox::ProxmoxBackend, Hypervisor};
use crate::cli::{BackendKind, GlobalArgs};
use crate::config::{Fleet, GuestId, GuestRef};
use crate::exec::ssh::{SshOptions, SshRunner, Target};
use crate::exec::{LocalRunner, Runner};
use crate::exit;
use crate::features::FeatureDirs;
use crate::graph::Graph;
use state_machine::{EngineError, Lifecycle, OpenOptions, Store};
use std::path::PathBuf;
use std::sync::Arc;

pub struct Session {
    pub fleet: Fleet,
    pub graph: Graph,
    pub runner: Arc<dyn Runner>,
    pub backend: Box<dyn Hypervisor>,
    pub features: FeatureDirs,
}

/// Which backend `auto` means here: proxmox when a node is given (`--host`) or `pct` is at hand,
/// else lxc.
pub fn resolve_backend(
    kind: BackendKind,
    host: Option<&str>,
    tools: Option<&std::path::Path>,
) -> BackendKind {
    match kind {
        BackendKind::Auto => {
            let on_path = std::env::var_os("PATH")
                .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("pct").is_file()));
            if host.is_some() || on_path || tools.is_some_and(|t| t.join("pct").is_file()) {
                BackendKind::Proxmox
            } else {
                BackendKind::Lxc
            }
        }
        k => k,
    }
}

impl Session {
    /// Loads and checks the configuration and sets up the runner (local, or SSH to `--host`) and
    /// the backend. Prints what is wrong and returns the exit code on failure.
    pub fn open(g: &GlobalArgs, dry_run: bool) -> Result<Session, i32> {
        let fleet = crate::commands::load_checked(g)?;
        let graph = Graph::build(&fleet);
        let section = &fleet.hypervisor.phoenix;
        let host = g.host.clone().or_else(|| section.host.clone());
        let runner: Arc<dyn Runner> = match &host {
            None => Arc::new(LocalRunner::new(dry_run)),
            Some(h) => {
                let target: Target = h.parse().map_err(|e| {
                    eprintln!("error: --host: {e}");
                    exit::USAGE
                })?;
                let mut opts = SshOptions {
                    accept_new_host_keys: g.accept_new_host_keys,
                    ..SshOptions::default()
                };
                opts.identity = g
                    .identity
                    .clone()
                    .or_else(|| section.identity.as_ref().map(PathBuf::from));
                if let Some(kh) = g
                    .known_hosts
                    .clone()
                    .or_else(|| section.known_hosts.as_ref().map(PathBuf::from))
                {
                    opts.known_hosts = kh;
                }
                let ssh = SshRunner::new(target, opts, dry_run);
                // Connect now: an unknown host key or a refused login stops before any work.
                ssh.connect().map_err(|e| {
                    eprintln!("error: {e}");
                    exit::USAGE
                })?;
                Arc::new(ssh)
            }
        };
        let backend: Box<dyn Hypervisor> = match resolve_backend(
            g.backend,
            host.as_deref(),
            g.pve_tools.as_deref(),
        ) {
            BackendKind::Lxc | BackendKind::Auto => {
                if host.is_some() {
                    eprintln!("error: the lxc backend drives this machine only; --host needs --backend proxmox");
                    return Err(exit::USAGE);
                }
                Box::new(LxcBackend::new(runner.clone(), &g.lxc_path))
            }
            BackendKind::Proxmox => Box::new(ProxmoxBackend::new(
                runner.clone(),
                g.pve_tools.clone(),
                g.pve_conf_dir.clone(),
                g.pve_owned_dir.clone(),
                g.node.clone().or_else(|| section.node.clone()),
            )),
        };
        let features = FeatureDirs::new(&g.features_dirs, fleet.dir.as_deref());
        Ok(Session {
            fleet,
            graph,
            runner,
            backend,
            features,
        })
    }

    /// The targets and everything they need, in build order (`all`: the whole fleet).
    pub fn order(&self, ids: &[GuestId]) -> Result<Vec<GuestId>, i32> {
        self.graph.order(ids).map_err(|e| {
            eprintln!("error: {e}");
            exit::USAGE
        })
    }

    /// Checks, before anything changes, what the guests in `order` need from this host.
    pub fn preflight(&self, g: &GlobalArgs, order: &[GuestId]) -> Result<(), i32> {
        crate::commands::preflight(g, &self.fleet, order)?;
        let mut problems = Vec::new();
        for id in order {
            match self.fleet.guest(*id) {
                Some(GuestRef::Vm(v)) => problems.push(format!(
                    "{}: VM {} ({}) needs the proxmox backend; the {} backend builds containers only",
                    self.fleet.file_of(crate::config::GuestKind::Vm),
                    v.id,
                    v.name,
                    self.backend.kind()
                )),
                Some(GuestRef::Ct(ct)) => problems.extend(self.backend.preflight(ct).into_iter().map(|p| format!("{}: {p}", ct.id))),
                None => {}
            }
        }
        problems.sort();
        problems.dedup();
        if problems.is_empty() {
            return Ok(());
        }
        for p in &problems {
            eprintln!("error: {p}");
        }
        eprintln!(
            "error: {} problem(s) on this host; nothing was changed",
            problems.len()
        );
        Err(exit::USAGE)
    }
}

/// Opens the state store for writing; a store locked by another run is exit code 3.
pub fn open_store(g: &GlobalArgs) -> Result<Store<Lifecycle>, i32> {
    match Store::<Lifecycle>::open(&g.state_dir, OpenOptions::default()) {
        Ok((store, report)) => {
            if let Some(dead) = report.stale_lock {
                eprintln!("warning: the previous run ({dead}) died without releasing the state store; its unfinished steps will be redone");
            }
            for (job, step) in &report.interrupted {
                tracing::warn!(job = %job, step = %step, "interrupted step will run again");
            }
            for e in &report.corrupt {
                eprintln!("warning: {e}");
            }
            Ok(store)
        }
        Err(e @ EngineError::Locked { .. }) => {
            eprintln!("error: {e}");
            Err(exit::LOCKED)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(exit::USAGE)
        }
    }
}

/// Whether to go ahead with something destructive: `--yes`, or a "y" typed at a terminal.
pub fn confirm(question: &str, yes: bool) -> bool {
    use std::io::{BufRead, IsTerminal, Write};
    if yes {
        return true;
    }
    if !std::io::stdin().is_terminal() {
        eprintln!("error: {question} needs confirmation: add --yes");
        return false;
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}

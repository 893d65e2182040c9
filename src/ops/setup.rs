//! `phoenix setup`: the node itself converged from the hypervisor file, as the job `host/<node>`
//! ([`crate::jobs::host`]), through the same engine as the guests: resumable, recorded, with
//! `--dry-run`, `state show host` and `state reset host`.

use super::connect::{self, Purpose};
use super::{load, run, Options};
use crate::backend::proxmox::NodeLayout;
use crate::converge::{self, Event, Outcome, Reporter, Summary};
use crate::error::{Error, Result};
use crate::exec::Cmd;
use crate::exit::Status;
use crate::jobs::host::{HostJob, HostOptions};
use crate::session::Session;
use crate::ui::out::{self, Format};
use std::sync::Arc;

/// How `phoenix setup` runs.
#[derive(Debug, Clone)]
pub struct SetupRequest {
    /// Print what would change; change nothing, record nothing.
    pub dry_run: bool,
    /// Reboot the node when a step needs it (never otherwise).
    pub reboot: bool,
    /// Wipe disks, remove storages Phoenix did not create, move hand-written definitions.
    pub allow_destructive: bool,
    pub step_timeout: std::time::Duration,
}

pub fn setup(opts: &Options, req: &SetupRequest) -> Result<(Summary, Status)> {
    crate::logging::init(&opts.log_dir, opts.verbose);
    let fleet = load::checked_host(opts)?;
    let purpose = Purpose::Run {
        dry_run: req.dry_run,
        clone_jobs: None,
    };
    let mut session = connect::session(opts, fleet, purpose)?;
    if !req.dry_run {
        session.store = Some(connect::hold_store(&opts.state_dir, &*session.runner)?);
    }
    let session = Arc::new(session);
    let job = job(opts, &session, req)?;
    let mut reporter = run::reporter(opts, req.dry_run);
    crate::exec::set_current_guest(Some("host".into()));
    let started = std::time::Instant::now();
    let guest = converge::converge(&job, &session, None, &mut reporter)?;
    let summary = Summary::finished(vec![guest], &session, started);
    reporter.event(&Event::RunFinished {
        summary: summary.clone(),
    });
    if opts.output == Format::Human && !opts.quiet {
        out::err_line(crate::ui::summary::render(&summary, req.dry_run).trim_end());
    }
    let status = match summary.guests[0].outcome {
        o if o.ok() => Status::Success,
        Outcome::RebootRequired => Status::RebootRequired,
        _ => Status::GuestFailed,
    };
    Ok((summary, status))
}

/// The node's job in `session`.
pub(crate) fn job(opts: &Options, session: &Arc<Session>, req: &SetupRequest) -> Result<HostJob> {
    let node = node_name(opts, session)?;
    let how = HostOptions {
        pve_etc: NodeLayout::under(&opts.pve_root).etc,
        reboot: req.reboot,
        allow_destructive: req.allow_destructive,
        step_timeout: req.step_timeout,
    };
    HostJob::prepare(session, &node, how).map_err(|e| Error::usage(e.to_string()))
}

/// The node's name for its job id: `--node`, the file's `phoenix.node`, the host name the file
/// asks for, else the node's own short host name.
fn node_name(opts: &Options, session: &Session) -> Result<String> {
    let h = &session.fleet.hypervisor;
    let named = opts.node.clone().or_else(|| h.phoenix.node.clone());
    if let Some(n) = named.or_else(|| h.setup.hostname.clone()) {
        return Ok(n);
    }
    let out = session
        .runner
        .run(&Cmd::probe(["hostname", "-s"]))
        .map_err(|e| Error::usage(format!("cannot ask the node its name: {e}")))?;
    Ok(out.stdout_str().trim().to_string())
}

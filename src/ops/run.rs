//! `phoenix run` (and upstream's names for it, `LetsGo` and `create`): the targets and
//! everything they need, converged in parallel as the graph allows.

use super::connect::{self, Purpose};
use super::{load, Options};
use crate::config::GuestId;
use crate::converge::{Event, Reporter, Summary};
use crate::error::{Error, Result};
use crate::exit::Status;
use crate::jobs::Lifecycle;
use crate::scheduler::{self, SharedReporter};
use crate::session::Session;
use crate::ui::metrics::{Metrics, Tee};
use crate::ui::out::{self, Format};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to run, and how.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The targets (with everything they need); empty: the whole fleet.
    pub ids: Vec<GuestId>,
    /// Stop each guest after this state.
    pub until: Option<Lifecycle>,
    /// Print, in order, what would run; change nothing, record nothing.
    pub dry_run: bool,
    pub fail_fast: bool,
    pub step_timeout: Duration,
    /// Guests at once (`None`: [`scheduler::default_jobs`]).
    pub jobs: Option<usize>,
    /// Create/clone/snapshot operations at once per storage pool (`None`: the backend's default).
    pub clone_jobs: Option<usize>,
    /// Guests taken as built, left out of the run: their dependents go on (`--assume-built`).
    pub assume_built: Vec<GuestId>,
}

/// The build order without the guests `--assume-built` names (each must be in the fleet): the
/// scheduler counts a prerequisite outside the order as met.
fn without_assumed(
    fleet: &crate::config::Fleet,
    mut order: Vec<GuestId>,
    assumed: &[GuestId],
) -> Result<Vec<GuestId>> {
    if let Some(id) = assumed.iter().find(|id| fleet.guest(**id).is_none()) {
        return Err(Error::usage(format!(
            "--assume-built {id}: guest {id} is not defined in the configuration"
        )));
    }
    order.retain(|id| !assumed.contains(id));
    Ok(order)
}

pub fn run(opts: &Options, req: &RunRequest) -> Result<(Summary, Status)> {
    crate::logging::init(&opts.log_dir, opts.verbose);
    let fleet = load::checked(opts)?;
    let purpose = Purpose::Run {
        dry_run: req.dry_run,
        clone_jobs: req.clone_jobs,
    };
    let mut session = connect::session(opts, fleet, purpose)?;
    let order = session
        .graph
        .order(&req.ids)
        .map_err(|e| Error::usage(e.to_string()))?;
    let order = without_assumed(&session.fleet, order, &req.assume_built)?;
    load::preflight(opts, &session, &order)?;
    if !req.dry_run {
        session.store = Some(connect::hold_store(&opts.state_dir, &*session.runner)?);
    }
    // A dry run prints what it would do in order: one guest at a time.
    let jobs = match req.dry_run {
        true => 1,
        false => req.jobs.unwrap_or_else(scheduler::default_jobs),
    };
    let reporter = reporter(opts, req.dry_run);
    observe_commands(&session, &reporter);
    let sched = scheduler::Options {
        until: req.until,
        step_timeout: req.step_timeout,
        fail_fast: req.fail_fast,
        jobs,
    };
    let summary = scheduler::run(Arc::new(session), order, sched, reporter)?;
    if opts.output == Format::Human && !opts.quiet {
        out::err_line(crate::ui::summary::render(&summary, req.dry_run).trim_end());
    }
    let status = if summary.cancelled {
        Status::Interrupted
    } else if summary.ok() {
        Status::Success
    } else {
        Status::GuestFailed
    };
    Ok((summary, status))
}

/// What the run reports to: the terminal (or JSON lines), and the metrics file of a real run.
pub(crate) fn reporter(opts: &Options, dry_run: bool) -> SharedReporter {
    let ui: Box<dyn Reporter> = match opts.output {
        Format::Json => Box::new(crate::ui::json::JsonLines),
        Format::Human => Box::new(crate::ui::human::Human::new(opts.verbose > 0, opts.quiet)),
    };
    let reporter: Box<dyn Reporter> = match (&opts.metrics_file, dry_run) {
        (Some(path), false) => Box::new(Tee(vec![ui, Box::new(Metrics::new(path.clone()))])),
        _ => ui,
    };
    SharedReporter(Arc::new(Mutex::new(reporter)))
}

/// Every command (and in a dry run, every one that would have run) becomes an event.
fn observe_commands(session: &Session, reporter: &SharedReporter) {
    let listener = reporter.clone();
    session.runner.observe(Box::new(move |cmd, output| {
        let mut r = listener.clone();
        let id = crate::exec::current_guest();
        r.event(&match output.skipped {
            true => Event::WouldRun {
                id,
                cmd: cmd.display(),
            },
            false => Event::Command {
                id,
                cmd: cmd.display(),
                code: output.code,
                ms: output.duration.as_millis() as u64,
                at_ms: state_machine::now_ms(),
                mutating: cmd.mutating,
            },
        });
    }));
}

use crate::cli::{GlobalArgs, RunOptions};
use crate::config::GuestId;
use crate::converge::{Event, Options, Reporter};
use crate::exit;
use crate::limits::PoolLimits;
use crate::output::Format;
use crate::scheduler::{self, Shared, SharedReporter};
use crate::session::{self, Session};
use state_machine::Lifecycle;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `phoenix run`, `phoenix LetsGo` and `phoenix create` (with `until`).
pub fn run(g: &GlobalArgs, ids: &[GuestId], o: &RunOptions, until: Option<Lifecycle>) -> i32 {
    crate::logging::init(&g.log_dir, g.verbose);
    let session = match Session::open(g, o.dry_run) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let order = match session.order(ids) {
        Ok(o) => o,
        Err(code) => return code,
    };
    if let Err(code) = session.preflight(g, &order) {
        return code;
    }
    let store = if o.dry_run {
        None
    } else {
        match session::open_store(g) {
            Ok(s) => Some(s),
            Err(code) => return code,
        }
    };
    // A dry run prints what it would do in order: one guest at a time.
    let jobs = if o.dry_run {
        1
    } else {
        o.jobs.map_or_else(scheduler::default_jobs, usize::from)
    };
    let opts = Options {
        until,
        step_timeout: Duration::from_secs(o.step_timeout),
        fail_fast: o.fail_fast,
        jobs,
    };
    let reporter: Box<dyn Reporter> = match g.output {
        Format::Json => Box::new(crate::ui::json::JsonLines),
        Format::Human => Box::new(crate::ui::human::Human::new(g.verbose > 0, g.quiet)),
    };
    let reporter = SharedReporter(Arc::new(Mutex::new(reporter)));
    let listener = reporter.clone();
    session.runner.observe(Box::new(move |cmd, out| {
        let mut r = listener.clone();
        r.event(&Event::Command {
            id: crate::exec::current_guest(),
            cmd: cmd.display(),
            code: out.code,
            ms: out.duration.as_millis() as u64,
            at_ms: state_machine::now_ms(),
            mutating: cmd.mutating,
        });
    }));
    // Guests reached over SSH need Phoenix's key (made on first use).
    let uses_ssh = order.iter().any(|id| matches!(session.fleet.guest(*id), Some(crate::config::GuestRef::Ct(c)) if c.exec_via == crate::config::lxc::ExecVia::Ssh));
    let guest_ssh = if uses_ssh {
        match crate::lifecycle::guest::GuestSsh::prepare(&g.state_dir, g.guest_identity.as_deref())
        {
            Ok(k) => Some(k),
            Err(e) => {
                eprintln!("error: guest SSH key: {e}");
                return exit::USAGE;
            }
        }
    } else {
        None
    };
    let Session {
        fleet,
        graph,
        runner,
        backend,
        features,
    } = session;
    let shared = Arc::new(Shared {
        fleet,
        graph,
        backend,
        runner,
        features,
        store,
        state_dir: g.state_dir.clone(),
        cancel: AtomicBool::new(false),
        limits: PoolLimits::new(usize::from(o.clone_jobs)),
        found: std::sync::OnceLock::new(),
        guest_ssh,
    });
    let summary = match scheduler::run(shared, order, Arc::new(opts), reporter) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: state store: {e}");
            return exit::GUEST_FAILED;
        }
    };
    if g.output == Format::Human && !g.quiet {
        eprint!("{}", crate::ui::summary::render(&summary, o.dry_run));
    }
    if summary.cancelled {
        exit::INTERRUPTED
    } else if summary.ok() {
        exit::OK
    } else {
        exit::GUEST_FAILED
    }
}

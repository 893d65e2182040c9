use crate::cli::{GlobalArgs, RunOptions};
use crate::config::GuestId;
use crate::converge::{self, Env, Options, Reporter};
use crate::exit;
use crate::output::Format;
use crate::session::{self, Session};
use state_machine::Lifecycle;
use std::sync::atomic::AtomicBool;
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
    let cancel = AtomicBool::new(false);
    let env = Env {
        fleet: &session.fleet,
        graph: &session.graph,
        backend: session.backend.as_ref(),
        runner: session.runner.as_ref(),
        features: &session.features,
        store: store.as_ref(),
        state_dir: &g.state_dir,
        cancel: &cancel,
    };
    let opts = Options {
        targets: ids.to_vec(),
        dry_run: o.dry_run,
        until,
        step_timeout: Duration::from_secs(o.step_timeout),
        fail_fast: o.fail_fast,
    };
    let mut reporter: Box<dyn Reporter> = match g.output {
        Format::Json => Box::new(crate::ui::json::JsonLines),
        Format::Human => Box::new(crate::ui::human::Human::new(g.verbose > 0, g.quiet)),
    };
    let summary = match converge::run(&env, &order, &opts, reporter.as_mut()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: state store: {e}");
            return exit::GUEST_FAILED;
        }
    };
    if g.output == Format::Human && !g.quiet {
        eprint!("{}", crate::ui::summary::render(&summary, o.dry_run));
    }
    if summary.ok() {
        exit::OK
    } else {
        exit::GUEST_FAILED
    }
}

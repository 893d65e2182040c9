//! One thin file per verb: parse nothing, decide nothing, call into the library, print, return an
//! exit code.

pub mod completions;
pub mod graph;
pub mod guest;
pub mod plan;
pub mod run;
pub mod state;
pub mod validate;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::config::{fleet, validate as checks, Diagnostics, Fleet, Severity};
use crate::exit;
use crate::features::FeatureDirs;
use crate::output;

/// Runs the parsed command line and returns the process exit code.
pub fn dispatch(cli: Cli) -> i32 {
    let g = &cli.global;
    match &cli.command {
        Command::Validate(a) => validate::run(g, a),
        Command::Graph(a) => graph::run(g, a),
        Command::Plan(a) => plan::run(g, a),
        Command::Completions(a) => completions::run(a),
        Command::Run(a) => {
            let ids = if a.all { Vec::new() } else { a.ids.clone() };
            run::run(g, &ids, &a.run, None)
        }
        Command::LetsGo(a) => run::run(g, &[], &a.run, None),
        Command::Create(a) => {
            let o = crate::cli::RunOptions {
                dry_run: false,
                fail_fast: false,
                step_timeout: 1800,
                jobs: None,
                clone_jobs: 1,
            };
            run::run(g, &a.ids, &o, Some(state_machine::Lifecycle::Created))
        }
        Command::State(crate::cli::StateCommand::Show(a)) => state::show(g, a),
        Command::State(crate::cli::StateCommand::Reset(a)) => state::reset(g, a),
        Command::Start(a) => guest::lifecycle(g, a, guest::Op::Start),
        Command::Stop(a) => guest::lifecycle(g, a, guest::Op::Stop),
        Command::Restart(a) => guest::lifecycle(g, a, guest::Op::Restart),
        Command::Delete(a) => guest::delete(g, a),
        Command::Status(a) => guest::status(g, a),
    }
}

/// Loads and checks the config directory for commands that act on it. Prints diagnostics; on any
/// error returns the exit code to stop with.
pub fn load_checked(g: &GlobalArgs) -> Result<Fleet, i32> {
    let dir = fleet::config_dir(g.config_dir.as_deref());
    let diag = Diagnostics::new();
    let fleet = match Fleet::load_dir(&dir, &diag) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(exit::USAGE);
        }
    };
    checks::check(&fleet, &diag);
    finish_diagnostics(diag, g.quiet).map(|()| fleet)
}

/// Checks the host files the given guests need (`run`/`plan` preflight): missing ones are errors.
pub fn preflight(g: &GlobalArgs, fleet: &Fleet, ids: &[crate::config::GuestId]) -> Result<(), i32> {
    let diag = Diagnostics::new();
    let features = FeatureDirs::new(&g.features_dirs, fleet.dir.as_deref());
    checks::host_references(fleet, ids, &features, Severity::Error, &diag);
    finish_diagnostics(diag, g.quiet)
}

fn finish_diagnostics(diag: Diagnostics, quiet: bool) -> Result<(), i32> {
    let errors = diag.error_count();
    let items = diag.into_sorted();
    output::print_diagnostics(&items, quiet);
    if errors > 0 {
        eprintln!("error: {errors} configuration error(s); nothing was changed");
        return Err(exit::USAGE);
    }
    Ok(())
}

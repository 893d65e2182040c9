//! One thin file per verb: the arguments become the library's options, one operation runs, its
//! result is printed.

mod adopt;
mod completions;
mod doctor;
mod graph;
mod guest;
mod health;
mod init;
mod manpages;
mod plan;
mod run;
mod setup;
mod state;
mod upstream;
mod validate;

use crate::cli::{Cli, Command, StateCommand};
use phoenix::exit::Status;
use phoenix::Result;

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> Result<Status> {
    let opts = cli.global.options();
    match &cli.command {
        Command::Validate(a) => validate::run(&opts, a),
        Command::Graph(a) => graph::run(&opts, a),
        Command::Plan(a) => plan::run(&opts, a),
        Command::Completions(a) => completions::run(a),
        Command::Init(a) => init::run(a),
        Command::Manpages(a) => manpages::run(a),
        Command::Doctor => doctor::run(&opts),
        Command::Run(a) => run::run(&opts, a),
        Command::LetsGo(a) => run::lets_go(&opts, a),
        Command::Create(a) => run::create(&opts, a),
        Command::Adopt(a) => adopt::run(&opts, a),
        Command::HealthCheck(a) => health::run(&opts, a),
        Command::Sync(_) => upstream::sync(),
        Command::Setup(a) => setup::run(&opts, a),
        Command::Swarm(_) => upstream::swarm(),
        Command::State(StateCommand::Show(a)) => state::show(&opts, a),
        Command::State(StateCommand::Reset(a)) => state::reset(&opts, a),
        Command::Start(a) => guest::start(&opts, a),
        Command::Stop(a) => guest::stop(&opts, a),
        Command::Restart(a) => guest::restart(&opts, a),
        Command::Delete(a) => guest::delete(&opts, a),
        Command::Status(a) => guest::status(&opts, a),
    }
}

/// Whether to go ahead with something destructive: `--yes`, or a "y" typed at a terminal.
fn confirm(yes: bool) -> impl Fn(&str) -> bool {
    move |question: &str| {
        use std::io::{BufRead, IsTerminal, Write};
        if yes {
            return true;
        }
        if !std::io::stdin().is_terminal() {
            return false;
        }
        let mut err = std::io::stderr();
        let _ = write!(err, "{question} [y/N] ");
        let _ = err.flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        matches!(answer.trim(), "y" | "Y" | "yes")
    }
}

use crate::cli::{Cli, CompletionsArgs};
use clap::CommandFactory;
use phoenix::exit::Status;
use phoenix::Result;

pub fn run(a: &CompletionsArgs) -> Result<Status> {
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut Cli::command(), "phoenix", &mut script);
    phoenix::ui::out::stdout(&String::from_utf8_lossy(&script));
    Ok(Status::Success)
}

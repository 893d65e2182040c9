use crate::cli::{Cli, CompletionsArgs};
use crate::exit;
use clap::CommandFactory;

pub fn run(a: &CompletionsArgs) -> i32 {
    let mut cmd = Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "phoenix", &mut std::io::stdout());
    exit::OK
}

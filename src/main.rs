//! The `phoenix` binary: parses the command line, runs one operation, prints an error once, and
//! exits with the code that says how it went.

mod cli;
mod commands;

use clap::FromArgMatches;

fn main() {
    let cli =
        cli::Cli::from_arg_matches(&cli::command().get_matches()).unwrap_or_else(|e| e.exit());
    let code = match commands::dispatch(cli) {
        Ok(status) => status.code(),
        Err(e) => {
            phoenix::ui::out::error(&e);
            e.exit_code()
        }
    };
    std::process::exit(code);
}

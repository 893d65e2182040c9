//! The `phoenix` binary: parses the command line, runs one operation, prints an error once, and
//! exits with the code that says how it went.

mod cli;
mod commands;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let code = match commands::dispatch(cli) {
        Ok(status) => status.code(),
        Err(e) => {
            phoenix::ui::out::error(&e);
            e.exit_code()
        }
    };
    std::process::exit(code);
}

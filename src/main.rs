use clap::Parser;

fn main() {
    let cli = phoenix::cli::Cli::parse();
    std::process::exit(phoenix::commands::dispatch(cli));
}

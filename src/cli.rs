//! Command-line definitions (clap derive). Global options work before or after the subcommand.

use crate::config::{FileKind, GuestId};
use crate::output::Format;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "phoenix",
    version,
    about = "Build fleets of Proxmox/LXC guests from the Phoenix Hypervisor JSON files, resumably",
    after_help = "Examples:\n  phoenix validate --config-dir ./config\n  phoenix graph --format mermaid\n  phoenix plan 950\n\nExit codes: 0 ok, 1 a guest failed, 2 usage or config error, 3 state store locked."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Directory holding phoenix_*_config(s).json [default: /usr/local/phoenix_hypervisor/etc]
    #[arg(long, global = true, env = "PHOENIX_CONFIG_DIR", value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    /// Output format for results
    #[arg(long, global = true, value_enum, default_value_t = Format::Human, env = "PHOENIX_OUTPUT")]
    pub output: Format,
    /// Extra directory searched first for feature scripts (repeatable)
    #[arg(long = "features-dir", global = true, value_name = "DIR")]
    pub features_dirs: Vec<PathBuf>,
    /// More detail (-v, -vv)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only errors
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check configuration files and report every problem at once
    #[command(
        after_help = "Examples:\n  phoenix validate                       # the whole --config-dir\n  phoenix validate etc/phoenix_lxc_configs.json\n  phoenix validate --kind lxc my-containers.json\n  phoenix validate --output json | jq '.diagnostics[]'\n\nExit code 2 when any error is found; warnings alone exit 0."
    )]
    Validate(ValidateArgs),
    /// Show the dependency graph (clones and dependencies) and the build order
    #[command(
        after_help = "Examples:\n  phoenix graph                  # whole fleet, text\n  phoenix graph 950 --format dot | dot -Tsvg > fleet.svg\n  phoenix graph --format mermaid\n  phoenix graph --output json"
    )]
    Graph(GraphArgs),
    /// Show what a run would touch, in order, and the states each guest passes through
    #[command(after_help = "Examples:\n  phoenix plan 950\n  phoenix plan --all --output json")]
    Plan(PlanArgs),
    /// Print a shell completion script
    #[command(
        after_help = "Examples:\n  phoenix completions bash > /etc/bash_completion.d/phoenix\n  phoenix completions zsh > ~/.zfunc/_phoenix\n  phoenix completions fish > ~/.config/fish/completions/phoenix.fish"
    )]
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Kind of the FILEs, when their names do not tell
    #[arg(long, value_enum)]
    pub kind: Option<FileKind>,
    /// Single files to check instead of the whole config directory
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    Text,
    Json,
    Dot,
    Mermaid,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Only these guests and what they need
    pub ids: Vec<GuestId>,
    /// Graph notation (--output json implies json)
    #[arg(long, value_enum)]
    pub format: Option<GraphFormat>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Guests to plan (with everything they need)
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub ids: Vec<GuestId>,
    /// Plan the whole fleet
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    pub shell: clap_complete::Shell,
}

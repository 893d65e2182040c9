//! Command-line definitions (clap derive). Global options work before or after the subcommand.
//! Everything here turns into the library's plain option structs ([`GlobalArgs::options`]); the
//! library never sees a clap type.

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{ArgGroup, Args, Parser, Subcommand};
use phoenix::config::{FileKind, GuestId};
use phoenix::jobs::Lifecycle;
use phoenix::ops::connect::BackendKind;
use phoenix::ops::graph::Notation;
use phoenix::ops::state::Target;
use phoenix::ui::out::Format;
use std::path::PathBuf;

/// A value parser for a library enum: its names for help and completions, its `FromStr` to parse.
macro_rules! names_of {
    ($t:ty) => {
        PossibleValuesParser::new(<$t>::NAMES).try_map(|s| s.parse::<$t>())
    };
}

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

/// The global options a verb's `--help` still shows; the others (node, SSH, directories) are
/// listed once, by `phoenix --help`.
const SHOWN_IN_VERBS: &[&str] = &["config_dir", "output", "verbose", "quiet"];

const GLOBALS_FOOTER: &str =
    "Node, SSH and directory options (--host, --state-dir, --backend, ...): see `phoenix --help`.";

/// The command line as parsed and documented: each verb's help shows that verb's options and the
/// few global ones every verb uses, with a pointer to the rest. The others are given to each verb
/// hidden, before clap would propagate them shown.
pub fn command() -> clap::Command {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    let hidden: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set() && !SHOWN_IN_VERBS.contains(&a.get_id().as_str()))
        .map(|a| a.clone().hide(true))
        .collect();
    hide_in_verbs(&mut cmd, &hidden);
    cmd
}

fn hide_in_verbs(cmd: &mut clap::Command, hidden: &[clap::Arg]) {
    for sub in cmd.get_subcommands_mut() {
        let mut s = std::mem::take(sub).args(hidden.iter().cloned());
        let help = match s.get_after_help() {
            Some(h) => format!("{h}\n\n{GLOBALS_FOOTER}"),
            None => GLOBALS_FOOTER.to_string(),
        };
        s = s.after_help(help);
        hide_in_verbs(&mut s, hidden);
        *sub = s;
    }
}

#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Directory holding phoenix_*_config(s).json [default: /usr/local/phoenix_hypervisor/etc]
    #[arg(long, global = true, env = "PHOENIX_CONFIG_DIR", value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    /// Output format for results
    #[arg(long, global = true, value_parser = names_of!(Format), default_value = "human", env = "PHOENIX_OUTPUT")]
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
    /// Where job state is kept
    #[arg(
        long,
        global = true,
        env = "PHOENIX_STATE_DIR",
        default_value = "/var/lib/phoenix",
        value_name = "DIR"
    )]
    pub state_dir: PathBuf,
    /// Where daily log files go
    #[arg(long, global = true, env = "PHOENIX_LOG_DIR", default_value = phoenix::logging::DEFAULT_LOG_DIR, value_name = "DIR")]
    pub log_dir: PathBuf,
    /// Hypervisor backend: auto picks proxmox when --host is given or `pct` is on PATH, else lxc
    #[arg(long, global = true, env = "PHOENIX_BACKEND", value_parser = names_of!(BackendKind), default_value = "auto", help_heading = "Node options")]
    pub backend: BackendKind,
    /// LXC container directory (lxc backend)
    #[arg(long, global = true, help_heading = "Node options", env = "PHOENIX_LXC_PATH", default_value = phoenix::backend::lxc::DEFAULT_LXC_PATH, value_name = "DIR")]
    pub lxc_path: PathBuf,
    /// Proxmox node to drive over SSH, user@node[:port] (default: this machine)
    #[arg(
        long,
        global = true,
        help_heading = "Node options",
        env = "PHOENIX_HOST",
        value_name = "USER@NODE[:PORT]"
    )]
    pub host: Option<String>,
    /// SSH private key for --host (default: ssh-agent, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa)
    #[arg(
        long,
        global = true,
        help_heading = "Node options",
        env = "PHOENIX_SSH_IDENTITY",
        value_name = "FILE"
    )]
    pub identity: Option<PathBuf>,
    /// known_hosts file the node's host key is checked against [default: ~/.ssh/known_hosts]
    #[arg(
        long,
        global = true,
        help_heading = "Node options",
        env = "PHOENIX_KNOWN_HOSTS",
        value_name = "FILE"
    )]
    pub known_hosts: Option<PathBuf>,
    /// Trust and record the host key of a node not yet in known_hosts (a changed key is always refused)
    #[arg(long, global = true, help_heading = "Node options")]
    pub accept_new_host_keys: bool,
    /// Proxmox node name for API paths [default: the node's hostname]
    #[arg(
        long,
        global = true,
        help_heading = "Node options",
        env = "PHOENIX_NODE",
        value_name = "NAME"
    )]
    pub node: Option<String>,
    /// Directory holding pct and pvesh on the node [default: its PATH]
    #[arg(
        long,
        global = true,
        help_heading = "Node options",
        env = "PHOENIX_PVE_TOOLS",
        value_name = "DIR"
    )]
    pub pve_tools: Option<PathBuf>,
    /// After each run, write Prometheus metrics here (for node_exporter's textfile collector)
    #[arg(long, global = true, env = "PHOENIX_METRICS_FILE", value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// The node's filesystem root: /etc/pve, /run/lock/lxc and Phoenix's records under it (a
    /// stand-in node's DIR; `/` on a real node)
    #[arg(
        long,
        global = true,
        help_heading = "Node options",
        env = "PHOENIX_PVE_ROOT",
        default_value = "/",
        value_name = "DIR",
        hide_short_help = true
    )]
    pub pve_root: PathBuf,
    /// SSH key for guests with `exec_via: ssh` [default: <state-dir>/guest_id_ed25519, made when missing]
    #[arg(
        long,
        global = true,
        help_heading = "Node options",
        env = "PHOENIX_GUEST_IDENTITY",
        value_name = "FILE"
    )]
    pub guest_identity: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check configuration files and report every problem at once
    #[command(
        after_help = "Examples:\n  phoenix validate                       # the whole --config-dir\n  phoenix validate etc/phoenix_lxc_configs.json\n  phoenix validate --kind lxc my-containers.json\n  phoenix validate --output json | jq '.diagnostics[]'\n  phoenix validate --explain              # the modern form of each legacy construct\n\nExit code 2 when any error is found; warnings alone exit 0."
    )]
    Validate(ValidateArgs),
    /// Show the dependency graph (clones and dependencies) and the build order
    #[command(
        after_help = "Examples:\n  phoenix graph                  # whole fleet, text\n  phoenix graph 950 --format dot | dot -Tsvg > fleet.svg\n  phoenix graph --format mermaid\n  phoenix graph --output json"
    )]
    Graph(GraphArgs),
    /// Show what a run would touch, in order, and the states each guest passes through
    #[command(
        after_help = "Examples:\n  phoenix plan 950\n  phoenix plan --all --output json\n  phoenix plan --setup --host root@pve1"
    )]
    Plan(PlanArgs),
    /// Converge guests and everything they need, in dependency order; resumes after interruption
    #[command(
        visible_alias = "converge",
        after_help = "Examples:\n  phoenix run 950                 # 950 and all it needs\n  phoenix run --all               # the whole fleet (also: phoenix LetsGo)\n  phoenix run 950 --dry-run       # print what would run; change nothing\n  phoenix run --all --output json # one JSON event per line\n\nExit codes: 0 converged, 1 a guest failed or was blocked, 2 usage or config error, 3 state store locked, 130 interrupted (the next run resumes)."
    )]
    Run(RunArgs),
    /// Upstream's name for `run --all`
    #[command(name = "LetsGo", hide = true)]
    LetsGo(LetsGoArgs),
    /// Show or reset what Phoenix recorded about guests
    #[command(subcommand)]
    State(StateCommand),
    /// Build guests and what they need, completely, as upstream's `create` did (`--until` stops
    /// at a state)
    #[command(
        after_help = "Examples:\n  phoenix create 950                  # the whole pipeline, like `phoenix run 950`\n  phoenix create 950 --until created  # only up to the created state"
    )]
    Create(CreateArgs),
    /// Record guests built outside Phoenix (by the bash tool, by hand) as converged, changing nothing
    #[command(
        after_help = "Every step is probed and the ones that hold are recorded, in order; the first that does not\nhold is listed with those after it, and the next `phoenix run` does only those. Features are\nasked with their --check mode whether their effect is in place; a script without one is\nlisted (--trust-scripts records it as run).\n\nExamples:\n  phoenix adopt 101 102 103\n  phoenix adopt 950 --output json\n\nExit codes: 0 everything held, 1 some step does not hold or a guest does not exist, 2 usage or config error."
    )]
    Adopt(AdoptArgs),
    /// Run guests' health checks now (the in-guest `health_check` and the host `health_checks`)
    #[command(
        name = "health-check",
        after_help = "Examples:\n  phoenix health-check 103\n  */5 * * * * root phoenix health-check 101 102 103 -q || alert\n\nExit codes: 0 all passed, 1 a check failed or a guest is not running, 2 usage or config error."
    )]
    HealthCheck(IdsArgs),
    /// Converge the node itself from the hypervisor file (time zone, host name, users, NFS
    /// exports, firewall), as the resumable job `host/<node>`
    #[command(
        long_flag = "setup-hypervisor",
        after_help = "Local, or over SSH with --host. Each step reads the node and changes only what differs; a\nsecond run changes nothing. `phoenix state show host` shows it, `phoenix state reset host`\nredoes it. Upstream's `phoenix --setup-hypervisor` runs this too.\n\nExamples:\n  phoenix setup --dry-run          # what would change\n  phoenix setup --host root@pve1\n  phoenix state show host\n\nExit codes: 0 converged, 1 a step failed (the next run resumes there), 2 usage or config error, 3 state store locked, 4 the node must reboot (the next run after it goes on)."
    )]
    Setup(SetupArgs),
    /// Upstream verbs Phoenix does differently: each says what to use instead
    #[command(name = "sync", hide = true)]
    Sync(UpstreamVerbArgs),

    #[command(name = "swarm", hide = true)]
    Swarm(UpstreamVerbArgs),
    /// Start guests (no cascade through dependencies)
    #[command(after_help = "Examples:\n  phoenix start 950 951")]
    Start(IdsArgs),
    /// Stop guests (no cascade through dependencies)
    #[command(after_help = "Examples:\n  phoenix stop 950")]
    Stop(IdsArgs),
    /// Stop then start guests
    #[command(after_help = "Examples:\n  phoenix restart 950")]
    Restart(IdsArgs),
    /// Destroy guests and forget their state (asks first unless --yes)
    #[command(after_help = "Examples:\n  phoenix delete 951 --yes")]
    Delete(DeleteArgs),
    /// Live status of guests: exists, running, recorded state
    #[command(
        after_help = "Examples:\n  phoenix status 950\n  phoenix status --output json 950 951"
    )]
    Status(IdsArgs),
    /// Check this host (or the --host node) before a first run, and say what to fix
    #[command(
        after_help = "Examples:\n  phoenix doctor\n  phoenix doctor --host root@pve1\n  phoenix doctor --output json\n\nExit code 1 when a check fails (a run would fail), 0 otherwise (warnings allowed)."
    )]
    Doctor,
    /// Write a config directory to start from: a minimal fleet, its JSON Schemas, a feature
    #[command(
        after_help = "Examples:\n  phoenix init /usr/local/phoenix_hypervisor/etc\n  phoenix init ./fleet && phoenix validate --config-dir ./fleet"
    )]
    Init(InitArgs),
    /// Write the man pages (phoenix.1, phoenix-run.1, ...) into a directory
    #[command(hide = true)]
    Manpages(ManpagesArgs),
    /// Print a shell completion script
    #[command(
        after_help = "Examples:\n  phoenix completions bash > /etc/bash_completion.d/phoenix\n  phoenix completions zsh > ~/.zfunc/_phoenix\n  phoenix completions fish > ~/.config/fish/completions/phoenix.fish"
    )]
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct ManpagesArgs {
    /// Where to write them
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The directory to write (made if missing)
    pub dir: PathBuf,
    /// Overwrite files that exist
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Kind of the FILEs, when their names do not tell
    #[arg(long, value_parser = names_of!(FileKind))]
    pub kind: Option<FileKind>,
    /// Single files to check instead of the whole config directory
    pub files: Vec<PathBuf>,
    /// For each construct of an older file shape, print how today's files write it
    #[arg(long)]
    pub explain: bool,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Only these guests and what they need
    pub ids: Vec<GuestId>,
    /// Graph notation (--output json implies json)
    #[arg(long, value_parser = names_of!(Notation))]
    pub format: Option<Notation>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("targets").required(true).args(["ids", "all", "setup"])))]
pub struct PlanArgs {
    /// Guests to plan (with everything they need)
    #[arg(conflicts_with_all = ["all", "setup"])]
    pub ids: Vec<GuestId>,
    /// Plan the whole fleet
    #[arg(long, conflicts_with = "setup")]
    pub all: bool,
    /// Plan `phoenix setup`: what it would change on the node
    #[arg(long)]
    pub setup: bool,
    /// With --setup: also list what `phoenix setup --allow-destructive` would destroy
    #[arg(long, requires = "setup")]
    pub allow_destructive: bool,
    /// Exit 0 when nothing would change, 2 when changes are pending, 1 on any error
    #[arg(long)]
    pub detailed_exitcode: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("targets").required(true).args(["ids", "all"])))]
pub struct RunArgs {
    /// Guests to converge (with everything they need)
    #[arg(conflicts_with = "all")]
    pub ids: Vec<GuestId>,
    /// The whole fleet
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub run: RunOptions,
}

#[derive(Debug, Args)]
pub struct LetsGoArgs {
    #[command(flatten)]
    pub run: RunOptions,
}

#[derive(Debug, Args, Clone)]
pub struct RunOptions {
    /// Print, in order, what would run; change nothing (not even recorded state)
    #[arg(long)]
    pub dry_run: bool,
    /// Stop starting new guests after the first failure
    #[arg(long)]
    pub fail_fast: bool,
    /// Time limit of one step (feature scripts included), in seconds
    #[arg(long, default_value_t = 1800, value_name = "SECS")]
    pub step_timeout: u64,
    /// Guests converging at once [default: 2 per core, 2 to 8]
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: Option<u16>,
    /// Create/clone/snapshot operations at once per storage pool [default: 1 on Proxmox, whose
    /// storage locks time out under parallel clones; no limit on plain LXC]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub clone_jobs: Option<u16>,
    /// Stop each guest once it reaches this state (its prerequisites are built completely)
    #[arg(long, value_name = "STATE")]
    pub until: Option<Lifecycle>,
    /// Treat these guests as built (not checked, not touched): their dependents go on. For
    /// guests this backend cannot build, e.g. VMs that exist already, on plain LXC
    #[arg(long, value_name = "ID", value_delimiter = ',')]
    pub assume_built: Vec<GuestId>,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Where guests are: state, step, status, attempts, last error; --history adds the journal
    #[command(
        after_help = "Examples:\n  phoenix state show\n  phoenix state show 950 --history\n  phoenix state show 950 --output json"
    )]
    Show(StateShowArgs),
    /// Send guests back to a state (or the start) so the next run redoes what follows
    #[command(
        after_help = "Examples:\n  phoenix state reset 950 --to configured\n  phoenix state reset --all --yes"
    )]
    Reset(StateResetArgs),
}

#[derive(Debug, Args)]
pub struct StateShowArgs {
    /// One guest, or `host` for the node (all when omitted)
    pub id: Option<Target>,
    /// Include the journal
    #[arg(long)]
    pub history: bool,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("targets").required(true).args(["ids", "all"])))]
pub struct StateResetArgs {
    /// Guests to reset, or `host` for the node
    #[arg(conflicts_with = "all")]
    pub ids: Vec<Target>,
    /// Every job in the store
    #[arg(long)]
    pub all: bool,
    /// Keep the steps of this state and earlier ones (default: back to the start): a guest state,
    /// or for `host` one of the node's (system, accounts, storage, services)
    #[arg(long, value_name = "STATE")]
    pub to: Option<String>,
    /// Do not ask
    #[arg(long, short)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct IdsArgs {
    #[arg(required = true)]
    pub ids: Vec<GuestId>,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Guests to build (with everything they need)
    #[arg(required = true)]
    pub ids: Vec<GuestId>,
    #[command(flatten)]
    pub run: RunOptions,
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Print what would change; change nothing (not even recorded state)
    #[arg(long)]
    pub dry_run: bool,
    /// Reboot the node when a step needs it (without it, the run stops with exit 4 and says so)
    #[arg(long)]
    pub reboot: bool,
    /// Time limit of one step (host scripts included), in seconds
    #[arg(long, default_value_t = 1800, value_name = "SECS")]
    pub step_timeout: u64,
    /// Also do what destroys data: wipe the disks of a new ZFS pool, remove storages Phoenix did
    /// not create, move a hand-written interface (`phoenix plan --setup --allow-destructive`
    /// lists them)
    #[arg(long)]
    pub allow_destructive: bool,
    /// Upstream's flag: refused, with what to do instead
    #[arg(long, hide = true)]
    pub wipe_disks: bool,
}

#[derive(Debug, Args)]
pub struct AdoptArgs {
    /// Guests to adopt
    #[arg(required = true)]
    pub ids: Vec<GuestId>,
    /// Record scripts that have no --check mode (application scripts) as run, when every step
    /// before them holds
    #[arg(long)]
    pub trust_scripts: bool,
}

/// Whatever upstream's verb took; Phoenix only explains.
#[derive(Debug, Args)]
pub struct UpstreamVerbArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub rest: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[arg(required = true)]
    pub ids: Vec<GuestId>,
    /// Do not ask
    #[arg(long, short)]
    pub yes: bool,
}

impl GlobalArgs {
    /// The library's options.
    pub fn options(&self) -> phoenix::ops::Options {
        phoenix::ops::Options {
            config_dir: self.config_dir.clone(),
            features_dirs: self.features_dirs.clone(),
            state_dir: self.state_dir.clone(),
            log_dir: self.log_dir.clone(),
            output: self.output,
            verbose: self.verbose,
            quiet: self.quiet,
            backend: self.backend,
            lxc_path: self.lxc_path.clone(),
            host: self.host.clone(),
            identity: self.identity.clone(),
            known_hosts: self.known_hosts.clone(),
            accept_new_host_keys: self.accept_new_host_keys,
            node: self.node.clone(),
            pve_tools: self.pve_tools.clone(),
            pve_root: self.pve_root.clone(),
            metrics_file: self.metrics_file.clone(),
            guest_identity: self.guest_identity.clone(),
        }
    }
}

impl RunOptions {
    /// The library's request to run `ids` (empty: the whole fleet).
    pub fn request(&self, ids: Vec<GuestId>) -> phoenix::ops::run::RunRequest {
        phoenix::ops::run::RunRequest {
            ids,
            until: self.until,
            dry_run: self.dry_run,
            fail_fast: self.fail_fast,
            step_timeout: std::time::Duration::from_secs(self.step_timeout),
            jobs: self.jobs.map(usize::from),
            clone_jobs: self.clone_jobs.map(usize::from),
            assume_built: self.assume_built.clone(),
        }
    }
}

//! Operations: what each verb does, on plain option structs, returning values or an
//! [`Error`](crate::Error). The binary's `commands/` only turn arguments into these options and
//! call one function here; nothing here knows about the command line.

pub mod adopt;
pub mod connect;
pub mod doctor;
pub mod graph;
pub mod guest;
pub mod health;
pub mod host_files;
pub mod init;
pub mod load;
pub mod plan;
pub mod run;
pub mod setup;
pub mod state;
pub mod validate;

use crate::ui::out::Format;
use connect::BackendKind;
use std::path::PathBuf;

/// What every operation may need: where things are, how to talk, and to which node.
#[derive(Debug, Clone)]
pub struct Options {
    /// The configuration directory (`None`: the upstream install path).
    pub config_dir: Option<PathBuf>,
    /// Extra directories searched first for feature scripts.
    pub features_dirs: Vec<PathBuf>,
    pub state_dir: PathBuf,
    pub log_dir: PathBuf,
    /// Where each run writes its Prometheus metrics (`None`: nowhere).
    pub metrics_file: Option<PathBuf>,
    pub output: Format,
    pub verbose: u8,
    pub quiet: bool,
    pub backend: BackendKind,
    /// Where plain LXC keeps containers.
    pub lxc_path: PathBuf,
    /// A node to drive over SSH, `user@node[:port]` (`None`: this machine, unless the
    /// hypervisor file names one).
    pub host: Option<String>,
    pub identity: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub accept_new_host_keys: bool,
    /// The Proxmox node's name in API paths (`None`: its hostname).
    pub node: Option<String>,
    /// Where `pct` and `pvesh` are on the node (`None`: its PATH).
    pub pve_tools: Option<PathBuf>,
    pub pve_root: PathBuf,
    /// The SSH key for guests with `exec_via: ssh` (`None`: one in the state directory).
    pub guest_identity: Option<PathBuf>,
}

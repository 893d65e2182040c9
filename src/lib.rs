//! Phoenix: builds fleets of Proxmox (or plain LXC) guests from the Phoenix Hypervisor JSON files,
//! driving each guest through durable, resumable states.
//!
//! The `phoenix` binary parses arguments (`src/cli.rs`) and calls one operation per verb
//! (`src/commands/`); this library holds everything else, in layers that only point down:
//!
//! | layer | modules | what |
//! |---|---|---|
//! | operations | [`ops`], [`ui`] | what each verb does, on plain option structs; how results are shown |
//! | running | [`scheduler`], [`converge`], [`session`] | a fleet in dependency order, one job through the engine, what a run shares |
//! | kinds of job | [`jobs`] | containers ([`jobs::lxc`]) and VMs ([`jobs::vm`]) as tables of steps, each a probe and an act |
//! | backends | [`backend`] | the hypervisor behind one trait: plain LXC, Proxmox (`pct`, `pvesh`) |
//! | model and mechanisms | [`config`], [`graph`], [`exec`], [`features`], [`limits`], [`digest`], [`logging`] | the configuration, its graph, commands as argv, local and SSH runners |
//!
//! The engine ([`state_machine`]) is a crate of its own and knows nothing of Phoenix. Errors are
//! values ([`Error`]), printed once by the binary.

pub mod backend;
pub mod config;
pub mod converge;
pub mod digest;
pub mod error;
pub mod exec;
pub mod exit;
pub mod features;
pub mod graph;
pub mod jobs;
pub mod limits;
pub mod logging;
pub mod ops;
pub mod scheduler;
pub mod session;
pub mod ui;

#[cfg(test)]
mod testing;

pub use error::{Error, Result};

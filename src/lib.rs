//! Phoenix: builds fleets of Proxmox (or plain LXC) guests from the Phoenix Hypervisor JSON files,
//! driving each guest through durable, resumable states.
//!
//! The library holds everything; the `phoenix` binary only parses arguments and calls in.

pub mod backend;
pub mod cli;
pub mod commands;
pub mod config;
pub mod converge;
pub mod digest;
pub mod exec;
pub mod exit;
pub mod features;
pub mod graph;
pub mod lifecycle;
pub mod limits;
pub mod logging;
pub mod output;
pub mod plan;
pub mod scheduler;
pub mod session;
pub mod state_view;
pub mod ui;

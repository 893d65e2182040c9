//! Phoenix: builds fleets of Proxmox (or plain LXC) guests from the Phoenix Hypervisor JSON files,
//! driving each guest through durable, resumable states.
//!
//! The library holds everything; the `phoenix` binary only parses arguments and calls in.

pub mod cli;
pub mod commands;
pub mod config;
pub mod exit;
pub mod features;
pub mod graph;
pub mod output;
pub mod plan;

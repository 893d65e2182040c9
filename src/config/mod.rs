//! Configuration: the four upstream JSON files (and `stacks/<name>/phoenix.json`), read into typed
//! models with every historical shape accepted, then checked as a whole.
//!
//! Decoding never stops at the first problem: every problem lands in [`Diagnostics`] as
//! `FILE: /json/pointer: what is wrong (hint)`.

pub mod common;
pub mod decode;
pub mod diagnostics;
pub mod fleet;
pub mod guest;
pub mod host;
pub mod host_storage;
pub mod host_system;
pub mod hypervisor;
pub mod lxc;
pub mod secret;
pub mod stacks;
pub mod validate;
pub mod values;
pub mod vm;

pub use diagnostics::{Diagnostic, Diagnostics, Severity};
pub use fleet::{FileKind, Fleet, GuestKind, GuestRef, LoadError};
pub use values::{GuestId, Mac, Secret};

//! What guest steps do inside a guest: how commands reach it ([`exec`]), scripts with their
//! markers and checks ([`scripts`]), whether its network answers ([`network`]), and SSH access
//! ([`ssh_access`]).

pub mod exec;
pub mod network;
pub mod scripts;
pub mod ssh_access;

pub use exec::GuestExec;

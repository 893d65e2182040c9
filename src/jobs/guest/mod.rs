//! What guest steps do inside a guest: how commands reach it ([`exec`]), scripts with their
//! inputs and checks ([`scripts`]), run once across crashes ([`run_once`]), whether its network answers ([`network`]), and SSH access
//! ([`ssh_access`]), and what upstream's application scripts expect beside them ([`upstream`]).

pub mod exec;
pub mod network;
pub mod run_once;
pub mod scripts;
pub mod ssh_access;
pub mod upstream;

pub use exec::GuestExec;

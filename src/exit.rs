//! Process exit codes, the same for every command.

/// Everything converged / the command did what was asked.
pub const OK: i32 = 0;
/// A guest failed (the others finished); `doctor`: a check failed.
pub const GUEST_FAILED: i32 = 1;
/// Bad usage or invalid configuration; nothing was changed.
pub const USAGE: i32 = 2;
/// The state store is locked by another running Phoenix.
pub const LOCKED: i32 = 3;
/// `plan --detailed-exitcode`: changes are pending (the same number as usage errors, which that
/// mode reports as 1, as `terraform plan` does).
pub const CHANGES_PENDING: i32 = 2;
/// Interrupted by SIGINT/SIGTERM; the next run resumes.
pub const INTERRUPTED: i32 = 130;
/// `setup`: a step's change waits for the node to reboot; after it, the next run goes on.
pub const REBOOT_REQUIRED: i32 = 4;

/// How a command that ran to its end went (errors are [`crate::Error`]s, with their own codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    /// A guest failed or was blocked; the summary says which.
    GuestFailed,
    /// Stopped by SIGINT/SIGTERM; the next run resumes.
    Interrupted,
    /// `plan --detailed-exitcode`: a run would change something.
    ChangesPending,
    /// `doctor`: a check failed (a run would fail).
    ChecksFailed,
    /// `setup`: the node must reboot before the next step.
    RebootRequired,
}

impl Status {
    pub fn code(self) -> i32 {
        match self {
            Status::Success => OK,
            Status::GuestFailed => GUEST_FAILED,
            Status::Interrupted => INTERRUPTED,
            Status::ChangesPending => CHANGES_PENDING,
            Status::ChecksFailed => GUEST_FAILED,
            Status::RebootRequired => REBOOT_REQUIRED,
        }
    }
}

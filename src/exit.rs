//! Process exit codes, the same for every command.

/// Everything converged / the command did what was asked.
pub const OK: i32 = 0;
/// A guest failed (the others finished).
pub const GUEST_FAILED: i32 = 1;
/// Bad usage or invalid configuration; nothing was changed.
pub const USAGE: i32 = 2;
/// The state store is locked by another running Phoenix.
pub const LOCKED: i32 = 3;
/// Interrupted by SIGINT/SIGTERM; the next run resumes.
pub const INTERRUPTED: i32 = 130;

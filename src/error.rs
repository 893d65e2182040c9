//! The one application error: what went wrong, where, and what to do, with the exit code it
//! stands for. Everything below returns it (or an error that converts into it); `main` prints it
//! once, as `error: ...` lines, and exits with [`Error::exit_code`].

use crate::config::LoadError;
use crate::exit;
use state_machine::EngineError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad usage: an id not in the configuration, an option that cannot work (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The configuration could not be read at all (exit 2).
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The configuration has errors, already printed one per line as diagnostics (exit 2).
    #[error("{errors} configuration error(s); nothing was changed")]
    Config { errors: usize },
    /// What this host lacks for the guests of a run, found before anything changed (exit 2).
    #[error("{}\n{} problem(s) on this host; nothing was changed", .0.join("\n"), .0.len())]
    Host(Vec<String>),
    /// The state store: locked by another run (exit 3), or unusable (exit 2).
    #[error("{error}{}", hint(.error))]
    Store { error: EngineError },
    /// Operations on guests that failed, one line each (exit 1).
    #[error("{}", .0.join("\n"))]
    Guests(Vec<String>),
    /// Any error of `plan --detailed-exitcode` (exit 1, as 2 means changes are pending there).
    #[error(transparent)]
    Planning(Box<Error>),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Store {
                error: EngineError::Locked { .. },
            } => exit::LOCKED,
            Error::Guests(_) | Error::Planning(_) => exit::GUEST_FAILED,
            _ => exit::USAGE,
        }
    }

    pub fn usage(message: impl Into<String>) -> Error {
        Error::Usage(message.into())
    }
}

impl From<EngineError> for Error {
    fn from(error: EngineError) -> Error {
        Error::Store { error }
    }
}

/// What to do about a store error, in commands the CLI accepts.
fn hint(e: &EngineError) -> String {
    match e {
        EngineError::TooNew { .. } => ": upgrade phoenix, or point --state-dir elsewhere".into(),
        EngineError::Corrupt { job, .. } => {
            format!(": `{}` clears it", reset_command(job))
        }
        EngineError::Sled { .. } | EngineError::Damaged { .. } => {
            ": `phoenix state reset --all` moves its files aside and keeps what can still be read"
                .into()
        }
        _ => String::new(),
    }
}

/// The `phoenix state reset` command that resets one job.
pub fn reset_command(job: &str) -> String {
    match job.split_once('/') {
        Some(("lxc" | "vm", id)) if id.parse::<u32>().is_ok() => {
            format!("phoenix state reset {id}")
        }
        _ => "phoenix state reset --all".into(),
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_name_commands_the_cli_accepts() {
        assert_eq!(reset_command("lxc/950"), "phoenix state reset 950");
        assert_eq!(reset_command("vm/1001"), "phoenix state reset 1001");
        assert_eq!(reset_command("(store format)"), "phoenix state reset --all");
        let e = Error::from(EngineError::Corrupt {
            job: "lxc/950".into(),
            detail: "bad header".into(),
        });
        assert!(e
            .to_string()
            .ends_with("`phoenix state reset 950` clears it"));
        assert_eq!(e.exit_code(), exit::USAGE);
    }
}

use crate::lock::Holder;
use std::path::PathBuf;

/// Everything the engine can fail with. Messages say what and where; what to do depends on the
/// program using the engine, which adds it (see [`EngineError::Corrupt`], [`EngineError::TooNew`]).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "state store {dir} is locked by another run: {holder} (wait for it to finish, or stop it)"
    )]
    Locked { dir: PathBuf, holder: Holder },
    #[error("state store {dir} was written by a newer version (format {found}; this build reads up to {supported})")]
    TooNew {
        dir: PathBuf,
        found: u16,
        supported: u16,
    },
    /// A job's record cannot be decoded; resetting the job ([`crate::Store::reset`]) clears it.
    #[error("state of job {job} is unreadable ({detail})")]
    Corrupt { job: String, detail: String },
    #[error("job {job}: {message}")]
    Invalid { job: String, message: String },
    #[error("state store {dir}: {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Sled's files lost what the views beside them show was there.
    #[error("state store {dir} is damaged: {detail}")]
    Damaged { dir: PathBuf, detail: String },
    #[error("state store {dir}: {source}")]
    Sled {
        dir: PathBuf,
        #[source]
        source: sled::Error,
    },
}

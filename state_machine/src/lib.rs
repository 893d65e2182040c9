//! A durable, resumable job engine on [sled].
//!
//! A *job* (`lxc/950`, `vm/1001`, `host/pve1`) is an ordered list of named *steps*; each step
//! belongs to the *state* it completes. Every kind of job declares its own ordered states (any
//! [`JobState`], most easily with [`job_states!`]), and one store holds jobs of every kind. The
//! engine knows nothing of what a step does: it records, durably, that a step started, then that it
//! succeeded or failed, so that a process killed at any instant resumes at the exact step it was in.
//!
//! # Contract
//!
//! * **Write-ahead.** [`Job::start`] makes `StepStarted` durable before the caller acts.
//!   [`Job::succeed_and_start_next`] writes `StepSucceeded`, the cursor advance and the next
//!   `StepStarted` in one atomic sled batch and one flush; [`Job::fail`] writes `StepFailed` with an
//!   output tail. Nothing happens between one step's success and the next step's start, so fusing
//!   them costs one flush per step and loses nothing.
//! * **Interrupted steps.** [`Store::open`] finds any step that started and never finished,
//!   journals `Interrupted`, and leaves the cursor on it: it runs again, once. Steps are
//!   at-least-once; long operations persist an intent ([`Job::save_intent`]) that the re-run reads
//!   back ([`StepRun::intent`]) to re-attach instead of repeating.
//! * **Desired state.** Each step carries a digest of the configuration it depends on. A step is
//!   *done* only while its recorded digest matches; [`Store::begin`] moves the cursor back to the
//!   earliest stale step and journals why.
//! * **Reset** ([`Store::reset`]) forgets the steps of later states; **locking** ([`Store::open`])
//!   allows one writer per store and names the holder otherwise; **readers** ([`Reader`]) work while
//!   a writer runs, from views the writer replaces atomically after each event.
//!
//! # Encoding
//!
//! Every stored value goes through [`codec`]: a header with a format version, then the value in
//! bincode 2. bincode is no longer maintained upstream (its authors stopped development in 2025);
//! it is used because the product card asks for it. Swapping it means changing the two functions
//! in `codec.rs` and bumping [`codec::FORMAT_VERSION`]: older stores are then refused with a clear
//! message rather than misread.

pub mod codec;
mod error;
mod journal;
mod lock;
mod private;
mod reader;
mod record;
mod salvage;
mod spec;
mod state;
mod status;
mod store;
mod views;

pub use error::EngineError;
pub use journal::{Event, EventKind, JournalSummary};
pub use lock::Holder;
pub use private::{create as create_private, dir as private_dir};
pub use reader::{JobView, ReadOutcome, Reader};
pub use record::{DoneStep, ErrorInfo, JobRecord, Started};
pub use salvage::Salvage;
pub use spec::{JobSpec, StepSpec};
pub use state::JobState;
pub use status::{Status, StatusEvent, ALL_EVENTS, ALL_STATUSES, TRANSITIONS};
pub use store::{Job, OpenOptions, OpenReport, StepRun, Store};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

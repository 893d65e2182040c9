use crate::cli::{IdsArgs, LetsGoArgs, RunArgs};
use phoenix::exit::Status;
use phoenix::jobs::Lifecycle;
use phoenix::ops::{self, run::RunRequest, Options};
use phoenix::Result;

pub fn run(opts: &Options, a: &RunArgs) -> Result<Status> {
    let ids = if a.all { Vec::new() } else { a.ids.clone() };
    Ok(ops::run::run(opts, &a.run.request(ids))?.1)
}

/// Upstream's `LetsGo`: the whole fleet.
pub fn lets_go(opts: &Options, a: &LetsGoArgs) -> Result<Status> {
    Ok(ops::run::run(opts, &a.run.request(Vec::new()))?.1)
}

/// Up to `created` (prerequisites completely: clones need their parent's snapshot).
pub fn create(opts: &Options, a: &IdsArgs) -> Result<Status> {
    let req = RunRequest {
        until: Some(Lifecycle::Created),
        ..RunRequest::new(a.ids.clone())
    };
    Ok(ops::run::run(opts, &req)?.1)
}

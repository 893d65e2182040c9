use crate::cli::{CreateArgs, LetsGoArgs, RunArgs};
use phoenix::exit::Status;
use phoenix::ops::{self, Options};
use phoenix::Result;

pub fn run(opts: &Options, a: &RunArgs) -> Result<Status> {
    let ids = if a.all { Vec::new() } else { a.ids.clone() };
    Ok(ops::run::run(opts, &a.run.request(ids))?.1)
}

/// Upstream's `LetsGo`: the whole fleet.
pub fn lets_go(opts: &Options, a: &LetsGoArgs) -> Result<Status> {
    Ok(ops::run::run(opts, &a.run.request(Vec::new()))?.1)
}

/// Upstream's `create`: the whole guest and what it needs (`--until` stops earlier).
pub fn create(opts: &Options, a: &CreateArgs) -> Result<Status> {
    Ok(ops::run::run(opts, &a.run.request(a.ids.clone()))?.1)
}

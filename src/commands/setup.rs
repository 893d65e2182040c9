use crate::cli::SetupArgs;
use phoenix::exit::Status;
use phoenix::ops::setup::{self, SetupRequest};
use phoenix::ops::Options;
use phoenix::Result;

pub fn run(opts: &Options, a: &SetupArgs) -> Result<Status> {
    let req = SetupRequest { dry_run: a.dry_run };
    Ok(setup::setup(opts, &req)?.1)
}

use crate::cli::SetupArgs;
use phoenix::exit::Status;
use phoenix::ops::setup::{self, SetupRequest};
use phoenix::ops::Options;
use phoenix::{Error, Result};

pub fn run(opts: &Options, a: &SetupArgs) -> Result<Status> {
    if a.wipe_disks {
        return Err(Error::usage(
            "--wipe-disks is upstream's flag, and Phoenix never wipes every disk it is given: \
             `phoenix plan --setup --allow-destructive` lists what would be wiped or removed, \
             then `phoenix setup --allow-destructive` does it",
        ));
    }
    let req = SetupRequest {
        dry_run: a.dry_run,
        reboot: a.reboot,
        allow_destructive: a.allow_destructive,
        step_timeout: std::time::Duration::from_secs(a.step_timeout),
    };
    Ok(setup::setup(opts, &req)?.1)
}

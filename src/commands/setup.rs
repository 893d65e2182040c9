use crate::cli::SetupArgs;
use phoenix::exit::Status;
use phoenix::ops::setup::{self, SetupRequest};
use phoenix::ops::Options;
use phoenix::{Error, Result};

pub fn run(opts: &Options, a: &SetupArgs) -> Result<Status> {
    if a.wipe_disks {
        return Err(Error::usage(
            "`phoenix setup` does not manage disks or ZFS pools yet, and never wipes a disk it \
             was not asked to by name: create the pools by hand (`zpool create`), then run \
             `phoenix setup` without --wipe-disks",
        ));
    }
    let req = SetupRequest {
        dry_run: a.dry_run,
        reboot: a.reboot,
        step_timeout: std::time::Duration::from_secs(a.step_timeout),
    };
    Ok(setup::setup(opts, &req)?.1)
}

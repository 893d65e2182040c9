use phoenix::exit::Status;
use phoenix::ops::Options;
use phoenix::Result;

pub fn run(opts: &Options) -> Result<Status> {
    phoenix::ops::doctor::run(opts)
}

use crate::cli::IdsArgs;
use phoenix::exit::Status;
use phoenix::ops::{health, Options};
use phoenix::ui::out::{self, Format};
use phoenix::Result;

pub fn run(opts: &Options, a: &IdsArgs) -> Result<Status> {
    let guests = health::check(opts, &a.ids)?;
    let healthy = guests.iter().all(|g| g.healthy());
    match opts.output {
        Format::Json => out::json(&guests),
        Format::Human if opts.quiet && healthy => {}
        Format::Human => out::stdout(&phoenix::ui::health::render(&guests)),
    }
    match healthy {
        true => Ok(Status::Success),
        false => Ok(Status::GuestFailed),
    }
}

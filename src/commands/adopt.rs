use crate::cli::AdoptArgs;
use phoenix::exit::Status;
use phoenix::ops::{adopt, Options};
use phoenix::ui::out::{self, Format};
use phoenix::Result;

pub fn run(opts: &Options, a: &AdoptArgs) -> Result<Status> {
    let adoptions = adopt::adopt(opts, &a.ids, a.trust_scripts)?;
    match opts.output {
        Format::Json => out::json(&adoptions),
        Format::Human => out::stdout(&phoenix::ui::adopt::render(&adoptions)),
    }
    match adoptions.iter().all(|a| a.complete()) {
        true => Ok(Status::Success),
        false => Ok(Status::GuestFailed),
    }
}

use crate::cli::{DeleteArgs, IdsArgs};
use phoenix::exit::Status;
use phoenix::ops::guest::{self, Op};
use phoenix::ops::Options;
use phoenix::ui::out::{self, Format};
use phoenix::{Error, Result};

pub fn start(opts: &Options, a: &IdsArgs) -> Result<Status> {
    guest::lifecycle(opts, &a.ids, Op::Start).map(|()| Status::Success)
}

pub fn stop(opts: &Options, a: &IdsArgs) -> Result<Status> {
    guest::lifecycle(opts, &a.ids, Op::Stop).map(|()| Status::Success)
}

pub fn restart(opts: &Options, a: &IdsArgs) -> Result<Status> {
    guest::lifecycle(opts, &a.ids, Op::Restart).map(|()| Status::Success)
}

pub fn delete(opts: &Options, a: &DeleteArgs) -> Result<Status> {
    guest::delete(opts, &a.ids, super::confirm(a.yes)).map(|()| Status::Success)
}

pub fn status(opts: &Options, a: &IdsArgs) -> Result<Status> {
    let (found, failed) = guest::status(opts, &a.ids)?;
    match opts.output {
        Format::Json => out::json(&found),
        Format::Human => out::stdout(&phoenix::ui::state::guest_table(&found)),
    }
    match failed.is_empty() {
        true => Ok(Status::Success),
        false => Err(Error::Guests(failed)),
    }
}

use crate::cli::{StateResetArgs, StateShowArgs};
use phoenix::exit::Status;
use phoenix::ops::state::{self, ResetRequest};
use phoenix::ops::Options;
use phoenix::Result;

pub fn show(opts: &Options, a: &StateShowArgs) -> Result<Status> {
    state::show(opts, a.id, a.history).map(|()| Status::Success)
}

pub fn reset(opts: &Options, a: &StateResetArgs) -> Result<Status> {
    let req = ResetRequest {
        targets: a.ids.clone(),
        all: a.all,
        to: a.to.clone(),
    };
    state::reset(opts, &req, super::confirm(a.yes)).map(|()| Status::Success)
}

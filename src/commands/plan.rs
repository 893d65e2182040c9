use crate::cli::PlanArgs;
use phoenix::exit::Status;
use phoenix::ops::{self, Options};
use phoenix::ui::out::{self, Format};
use phoenix::{Error, Result};

pub fn run(opts: &Options, a: &PlanArgs) -> Result<Status> {
    let ids = if a.all { Vec::new() } else { a.ids.clone() };
    let planned = match a.setup {
        true => ops::plan::host(opts, a.allow_destructive),
        false => ops::plan::run(opts, &ids),
    };
    let plan = match planned {
        Ok(plan) => plan,
        Err(e) if a.detailed_exitcode => return Err(Error::Planning(Box::new(e))),
        Err(e) => return Err(e),
    };
    match opts.output {
        Format::Json => plan.changes.iter().for_each(out::json_line),
        Format::Human => out::stdout(&plan.to_text()),
    }
    Ok(match (a.detailed_exitcode, plan.errors(), plan.pending()) {
        (true, 0, true) => Status::ChangesPending,
        (true, 0, false) | (false, 0, _) => Status::Success,
        _ => Status::GuestFailed,
    })
}

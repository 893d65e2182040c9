use crate::cli::PlanArgs;
use phoenix::exit::Status;
use phoenix::ops::{self, Options};
use phoenix::ui::out::{self, Format};
use phoenix::Result;

pub fn run(opts: &Options, a: &PlanArgs) -> Result<Status> {
    let ids = if a.all { Vec::new() } else { a.ids.clone() };
    let plan = ops::plan::run(opts, &ids)?;
    match opts.output {
        Format::Json => out::json(&plan),
        Format::Human => out::stdout(&plan.to_text()),
    }
    Ok(Status::Success)
}

use crate::cli::GraphArgs;
use phoenix::exit::Status;
use phoenix::ops::graph::{self, Notation};
use phoenix::ops::Options;
use phoenix::ui::out::{self, Format};
use phoenix::Result;

pub fn run(opts: &Options, a: &GraphArgs) -> Result<Status> {
    let view = graph::view(opts, &a.ids)?;
    let notation = match (a.format, opts.output) {
        (Some(n), _) => n,
        (None, Format::Json) => Notation::Json,
        (None, Format::Human) => Notation::Text,
    };
    match graph::render(&view, notation) {
        Some(text) => out::stdout(&text),
        None => out::json(&view),
    }
    Ok(Status::Success)
}

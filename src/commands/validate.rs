use crate::cli::ValidateArgs;
use phoenix::exit::Status;
use phoenix::ops::{self, Options};
use phoenix::ui::out::{self, Format};
use phoenix::{Error, Result};

pub fn run(opts: &Options, a: &ValidateArgs) -> Result<Status> {
    let report = ops::validate::validate(opts, &a.files, a.kind)?;
    match opts.output {
        Format::Json => out::json(&report),
        Format::Human => {
            out::diagnostics(&report.diagnostics, opts.quiet);
            if a.explain {
                out::stdout(&phoenix::ui::explain::render(&report.diagnostics));
            }
            if !opts.quiet {
                let verdict = if report.valid { "valid" } else { "invalid" };
                out::err_line(&format!(
                    "{verdict}: {} guest(s), {} error(s), {} warning(s)",
                    report.guests, report.errors, report.warnings
                ));
            }
        }
    }
    match report.valid {
        true => Ok(Status::Success),
        false => Err(Error::Config {
            errors: report.errors,
        }),
    }
}

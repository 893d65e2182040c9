//! Loading the configuration for an operation: every file read, every problem reported at once
//! (printed as diagnostics), and an error when any of them is an error.

use super::Options;
use crate::config::{fleet, validate, Diagnostics, Fleet, Severity};
use crate::error::{Error, Result};
use crate::features::FeatureDirs;
use crate::graph::Graph;
use crate::ui::out;

/// The checked fleet of `--config-dir`; diagnostics are printed.
pub fn checked(opts: &Options) -> Result<Fleet> {
    let dir = fleet::config_dir(opts.config_dir.as_deref());
    let diag = Diagnostics::new();
    let fleet = Fleet::load_dir(&dir, &diag)?;
    check(&fleet, &diag);
    finish(diag, opts.quiet)?;
    Ok(fleet)
}

/// Everything validation checks across files: references, ids, addresses, and cycles.
pub fn check(fleet: &Fleet, diag: &Diagnostics) {
    validate::check(fleet, diag);
    Graph::build(fleet).report_cycles(fleet, diag);
}

/// The feature directories of `opts` for `fleet`.
pub fn features(opts: &Options, fleet: &Fleet) -> FeatureDirs {
    FeatureDirs::new(&opts.features_dirs, fleet.dir.as_deref())
}

/// Checks the host files the given guests need (`run`/`plan`): missing ones are errors.
pub fn preflight(opts: &Options, fleet: &Fleet, ids: &[crate::config::GuestId]) -> Result<()> {
    let diag = Diagnostics::new();
    super::host_files::check(fleet, ids, &features(opts, fleet), Severity::Error, &diag);
    finish(diag, opts.quiet)
}

/// Prints the diagnostics; an error when any is an error.
fn finish(diag: Diagnostics, quiet: bool) -> Result<()> {
    let errors = diag.error_count();
    out::diagnostics(&diag.into_sorted(), quiet);
    if errors > 0 {
        return Err(Error::Config { errors });
    }
    Ok(())
}

//! `phoenix validate`: the config directory or single files, every problem reported at once.

use super::{host_files, load, Options};
use crate::config::{fleet, Diagnostic, Diagnostics, FileKind, Fleet, GuestId, Severity};
use crate::error::Result;
use serde::Serialize;
use std::path::PathBuf;

/// What validation found.
#[derive(Debug, Serialize)]
pub struct Report {
    pub valid: bool,
    pub errors: usize,
    pub warnings: usize,
    pub guests: usize,
    pub diagnostics: Vec<Diagnostic>,
}

/// Checks `files` (of `kind`, or as their names tell), or the whole config directory when none
/// are given.
pub fn validate(opts: &Options, files: &[PathBuf], kind: Option<FileKind>) -> Result<Report> {
    let diag = Diagnostics::new();
    let fleet = match files.is_empty() {
        true => Fleet::load_dir(&fleet::config_dir(opts.config_dir.as_deref()), &diag)?,
        false => Fleet::load_files(files, kind, &diag)?,
    };
    load::check(&fleet, &diag);
    let ids: Vec<GuestId> = fleet.guests().iter().map(|g| g.id()).collect();
    let features = load::features(opts, &fleet);
    host_files::check(&fleet, &ids, &features, Severity::Warning, &diag);
    let errors = diag.error_count();
    let diagnostics = diag.into_sorted();
    Ok(Report {
        valid: errors == 0,
        errors,
        warnings: diagnostics.len() - errors,
        guests: ids.len(),
        diagnostics,
    })
}

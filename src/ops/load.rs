//! Loading the configuration for an operation: every file read, every problem reported at once
//! (printed as diagnostics), and an error when any of them is an error.

use super::Options;
use crate::backend::Refusal;
use crate::config::lxc::Container;
use crate::config::{fleet, validate, Diagnostics, Fleet, GuestId, GuestRef, Severity};
use crate::error::{Error, Result};
use crate::features::FeatureDirs;
use crate::graph::Graph;
use crate::session::Session;
use crate::ui::out;

/// The checked fleet of `--config-dir`; diagnostics are printed.
pub fn checked(opts: &Options) -> Result<Fleet> {
    checked_with(opts, Fleet::load_dir)
}

/// The same for `phoenix setup`: the hypervisor file is enough.
pub fn checked_host(opts: &Options) -> Result<Fleet> {
    checked_with(opts, Fleet::load_host_dir)
}

fn checked_with(
    opts: &Options,
    load: fn(&std::path::Path, &Diagnostics) -> std::result::Result<Fleet, fleet::LoadError>,
) -> Result<Fleet> {
    let dir = fleet::config_dir(opts.config_dir.as_deref());
    let diag = Diagnostics::new();
    let fleet = load(&dir, &diag)?;
    check(&fleet, &diag);
    finish(diag, opts.quiet)?;
    Ok(fleet)
}

/// Everything validation checks across files: references, ids, addresses, and cycles.
pub fn check(fleet: &Fleet, diag: &Diagnostics) {
    validate::check(fleet, diag);
    Graph::build(fleet).report_cycles(fleet, diag);
}

/// What the backend will refuse for container `ct`, given its clone parent and its storage.
pub fn refusals_of(session: &Session, ct: &Container) -> Vec<Refusal> {
    let fleet = &session.fleet;
    let parent = ct.base.clone_from.and_then(|p| match fleet.guest(p) {
        Some(GuestRef::Ct(p)) => Some(p),
        _ => None,
    });
    session.backend.preflight(ct, parent, fleet.storage_of(ct))
}

/// Refuses the first of `ids` the configuration does not define.
pub fn defined(fleet: &Fleet, ids: &[GuestId]) -> Result<()> {
    match ids.iter().find(|id| fleet.guest(**id).is_none()) {
        Some(id) => Err(Error::usage(format!(
            "guest {id} is not defined in the configuration"
        ))),
        None => Ok(()),
    }
}

/// The feature directories of `opts` for `fleet`.
pub fn features(opts: &Options, fleet: &Fleet) -> FeatureDirs {
    FeatureDirs::new(&opts.features_dirs, fleet.dir.as_deref())
}

/// Checks the host files the given guests need (`run`/`plan`): missing ones are errors.
pub fn preflight(opts: &Options, session: &Session, ids: &[GuestId]) -> Result<()> {
    let (fleet, diag) = (&session.fleet, Diagnostics::new());
    super::host_files::check(fleet, ids, &features(opts, fleet), Severity::Error, &diag);
    backend_preflight(session, ids, &diag);
    finish(diag, opts.quiet)
}

/// What the backend will refuse for the guests of the run (storage, files on the guests' host,
/// snapshots it cannot take, images, firewall rules), as errors at their fields.
fn backend_preflight(session: &Session, ids: &[GuestId], diag: &Diagnostics) {
    let fleet = &session.fleet;
    for id in ids {
        let Some(g) = fleet.guest(*id) else {
            continue;
        };
        let refusals = match g {
            GuestRef::Ct(ct) => refusals_of(session, ct),
            GuestRef::Vm(vm) => crate::jobs::vm::refusals(session, vm),
        };
        let (file, at) = (fleet.file_of(g.kind()), fleet.pointer_of(g));
        for r in refusals {
            let ptr = match r.field.is_empty() {
                true => at.clone(),
                false => format!("{at}/{}", r.field),
            };
            diag.push(Severity::Error, &file, &ptr, r.message, Some(r.hint));
        }
    }
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

//! The configuration, and what a run would refuse for it before changing anything: the backend's
//! own preflight (storages and their snapshots, templates, mount sources, raw keys, firewall
//! rules; bridges on plain LXC) and the scripts on this machine the guests name.

use super::super::{host_files, load, Options};
use super::Check;
use crate::backend::Refusal;
use crate::config::{fleet as config, Diagnostics, Fleet, GuestId, GuestRef, Severity};
use crate::error::Error;
use crate::session::Session;

/// The checked fleet (or, when it does not load, just its hypervisor file, which may name the
/// host) and the `config` check.
pub fn load(opts: &Options) -> (Fleet, Check) {
    match load::checked(opts) {
        Ok(fleet) => {
            let check = loaded(&fleet);
            (fleet, check)
        }
        Err(e) => (hypervisor_only(opts), not_loaded(&e)),
    }
}

fn loaded(fleet: &Fleet) -> Check {
    let dir = fleet
        .dir
        .as_deref()
        .map_or(String::new(), |d| format!(" in {}", d.display()));
    Check::ok(
        "config",
        format!(
            "{} container(s) and {} VM(s){dir}, valid",
            fleet.lxc.containers.len(),
            fleet.vm.vms.len()
        ),
    )
}

fn not_loaded(e: &Error) -> Check {
    const SKIPPED: &str = "the checks that need the fleet (preflight, bridges) are skipped";
    match e {
        Error::Config { errors } => Check::fail(
            "config",
            format!("{errors} configuration error(s), printed above; {SKIPPED}"),
            "fix each at its field (phoenix validate lists them again)",
        ),
        other => Check::fail(
            "config",
            format!("{other}; {SKIPPED}"),
            "point --config-dir at the configuration, or write one to start from: phoenix init DIR",
        ),
    }
}

/// The hypervisor file alone (its `phoenix` section names the host), read without reporting.
fn hypervisor_only(opts: &Options) -> Fleet {
    let dir = config::config_dir(opts.config_dir.as_deref());
    let hypervisor = Fleet::load_dir(&dir, &Diagnostics::new())
        .map(|f| f.hypervisor)
        .unwrap_or_default();
    Fleet {
        hypervisor,
        ..Fleet::default()
    }
}

/// What the backend would refuse, one failed check per refusal at its field; one ok check when
/// there is none. Missing bridges are left to the bridge checks, which cover every backend.
pub fn refusals(s: &Session) -> Vec<Check> {
    let fleet = &s.fleet;
    let mut checks = Vec::new();
    for ct in fleet.lxc.containers.values() {
        let at = fleet.pointer_of(GuestRef::Ct(ct));
        for r in load::refusals_of(s, ct) {
            if r.field.ends_with("bridge") {
                continue;
            }
            checks.push(refused(&at, r));
        }
    }
    if checks.is_empty() {
        checks.push(Check::ok(
            "preflight",
            format!(
                "the {} backend refuses nothing for the {} container(s)",
                s.backend.kind(),
                fleet.lxc.containers.len()
            ),
        ));
    }
    checks
}

fn refused(at: &str, r: Refusal) -> Check {
    let field = match r.field.is_empty() {
        true => at.to_string(),
        false => format!("{at}/{}", r.field),
    };
    Check::fail("preflight", format!("{field}: {}", r.message), r.hint)
}

/// Feature, application and host-check scripts missing on this machine, as `run` reports them.
pub fn host_files(s: &Session, opts: &Options) -> Vec<Check> {
    let fleet = &s.fleet;
    let ids: Vec<GuestId> = fleet.guests().iter().map(|g| g.id()).collect();
    let diag = Diagnostics::new();
    host_files::check(
        fleet,
        &ids,
        &load::features(opts, fleet),
        Severity::Error,
        &diag,
    );
    let missing: Vec<Check> = diag
        .into_sorted()
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| {
            let fix = d.hint.clone().unwrap_or_else(|| "add the file".into());
            Check::fail("scripts", format!("{}: {}", d.pointer, d.message), fix)
        })
        .collect();
    match missing.is_empty() {
        true => vec![Check::ok(
            "scripts",
            "every feature, application and host-check script the guests name is here",
        )],
        false => missing,
    }
}

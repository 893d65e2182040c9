//! The files on this host that guests refer to: feature scripts, application scripts and host
//! check scripts (templates and mount sources are on the guests' host: its backend checks them). `validate` reports missing ones as warnings (the config
//! may be checked away from its host), `run` and `plan` as errors.

use crate::config::validate::resolve;
use crate::config::{Diagnostics, Fleet, GuestId, GuestRef, Severity};
use crate::features::FeatureDirs;
use std::path::Path;

pub fn check(
    fleet: &Fleet,
    ids: &[GuestId],
    features: &FeatureDirs,
    severity: Severity,
    diag: &Diagnostics,
) {
    for id in ids {
        let Some(g) = fleet.guest(*id) else { continue };
        let file = fleet.file_of(g.kind());
        let at = fleet.pointer_of(g);
        for (i, f) in g.base().features.iter().enumerate() {
            if features.find(f).is_none() {
                diag.push(
                    severity,
                    &file,
                    &format!("{at}/features/{i}"),
                    format!(
                        "feature {f:?} has no script {f}.sh in {}",
                        features.describe()
                    ),
                    Some(
                        "add the script to one of those directories, or --features-dir DIR".into(),
                    ),
                );
            }
        }
        if let GuestRef::Ct(c) = g {
            let missing = |ptr: String, what: &str, path: &Path, hint: &str| {
                diag.push(
                    severity,
                    &file,
                    &ptr,
                    format!("{what} {} does not exist on this host", path.display()),
                    Some(hint.to_string()),
                );
            };
            container_files(fleet, c, &at, &missing);
        }
    }
}

fn container_files(
    fleet: &Fleet,
    c: &crate::config::lxc::Container,
    at: &str,
    missing: &dyn Fn(String, &str, &Path, &str),
) {
    let relative = "paths are relative to the config directory";
    if let Some(s) = &c.application_script {
        let p = resolve(fleet, s);
        if !p.is_file() {
            missing(
                format!("{at}/application_script"),
                "application script",
                &p,
                relative,
            );
        }
    }
    for (i, h) in c.health_checks.iter().enumerate() {
        let p = resolve(fleet, &h.script);
        if !p.is_file() {
            missing(
                format!("{at}/health_checks/{i}/script"),
                "host check script",
                &p,
                relative,
            );
        }
    }
}

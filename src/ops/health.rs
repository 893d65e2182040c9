//! `phoenix health-check`: the listed guests' checks, now (`health_check` inside the guest,
//! `health_checks` on the host), for cron and monitoring: nothing is recorded or changed.

use super::connect;
use super::Options;
use crate::backend::RunState;
use crate::config::GuestId;
use crate::converge::checks;
pub use crate::converge::checks::GuestHealth;
use crate::error::Result;
use crate::jobs::{self, GuestJob};
use std::sync::Arc;
use std::time::Duration;

pub fn check(opts: &Options, ids: &[GuestId]) -> Result<Vec<GuestHealth>> {
    let session = Arc::new(connect::jobs_session(opts, ids)?);
    Ok(ids.iter().map(|id| guest(&session, *id)).collect())
}

fn guest(session: &Arc<crate::session::Session>, id: GuestId) -> GuestHealth {
    let name = session.fleet.guest(id).map(|g| g.name().to_string());
    let mut health = GuestHealth {
        id: id.to_string(),
        name: name.unwrap_or_default(),
        checks: Vec::new(),
        error: None,
    };
    let job = match jobs::prepare(session, id, Duration::from_secs(300)) {
        Ok(job) => job,
        Err(e) => {
            health.error = Some(e.to_string());
            return health;
        }
    };
    match session.found_state(id) {
        Ok(Some(RunState::Running)) => {}
        Ok(Some(_)) => health.error = Some("it is not running".into()),
        Ok(None) => health.error = Some("it does not exist".into()),
        Err(e) => health.error = Some(e.to_string()),
    }
    if health.error.is_none() {
        crate::exec::set_current_guest(Some(id.to_string()));
        health.checks = match &job {
            GuestJob::Container(j) => checks::run(j),
            GuestJob::Vm(j) => checks::run(j),
        };
        crate::exec::set_current_guest(None);
        if health.checks.is_empty() {
            health.error = Some(
                "it has no checks: add `health_check` or `health_checks` to its config".into(),
            );
        }
    }
    health
}

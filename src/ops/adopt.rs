//! `phoenix adopt`: guests built outside Phoenix recorded as far as they hold, nothing changed
//! ([`crate::converge::adopt`]). The next `run` does only what did not hold.

use super::connect;
use super::{load, Options};
use crate::config::GuestId;
use crate::converge::adopt;
pub use crate::converge::adopt::Adoption;
use crate::error::Result;
use crate::jobs::{self, GuestJob};
use std::sync::Arc;
use std::time::Duration;

/// Adopts each of `ids`; `trust_scripts`: scripts without a check mode count as run.
pub fn adopt(opts: &Options, ids: &[GuestId], trust_scripts: bool) -> Result<Vec<Adoption>> {
    let session = connect::jobs_session(opts, ids)?;
    load::preflight(opts, &session, ids)?;
    let store = connect::hold_store(&opts.state_dir, &*session.runner)?;
    let session = Arc::new(session);
    Ok(ids
        .iter()
        .map(|id| one(&session, &store, *id, trust_scripts))
        .collect())
}

fn one(
    session: &Arc<crate::session::Session>,
    store: &state_machine::Store,
    id: GuestId,
    trust_scripts: bool,
) -> Adoption {
    let name = session
        .fleet
        .guest(id)
        .map(|g| g.name().to_string())
        .unwrap_or_default();
    let mut adoption = Adoption {
        id: id.to_string(),
        name,
        steps: Vec::new(),
        error: None,
    };
    crate::exec::set_current_guest(Some(id.to_string()));
    let exists = || match session.found_state(id) {
        Ok(None) => Err(format!(
            "it does not exist, so there is nothing to adopt (`phoenix run {id}` builds it)"
        )),
        Err(e) => Err(e.to_string()),
        Ok(Some(_)) => Ok(()),
    };
    let adopted = |r: Result<_, _>| r.map_err(|e: state_machine::EngineError| e.to_string());
    let found = match jobs::prepare(session, id, Duration::from_secs(1800)) {
        Err(e) => Err(e.to_string()),
        Ok(GuestJob::Container(job)) => {
            exists().and_then(|()| adopted(adopt::adopt(&job, store, trust_scripts)))
        }
        Ok(GuestJob::Vm(job)) => {
            exists().and_then(|()| adopted(adopt::adopt(&job, store, trust_scripts)))
        }
    };
    crate::exec::set_current_guest(None);
    match found {
        Ok(steps) => adoption.steps = steps,
        Err(e) => adoption.error = Some(e),
    }
    adoption
}

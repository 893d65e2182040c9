//! Direct guest operations: start, stop, restart, delete, status. Only the listed guests; no
//! cascade through dependencies (upstream's start/stop walked the whole chain).

use crate::cli::{DeleteArgs, GlobalArgs, IdsArgs};
use crate::config::{GuestId, GuestRef};
use crate::exit;
use crate::output::{self, Format};
use crate::session::{self, Session};
use serde::Serialize;

#[derive(Clone, Copy)]
pub enum Op {
    Start,
    Stop,
    Restart,
}

/// The session, once every id is known to be a container this backend manages.
fn open(g: &GlobalArgs, ids: &[GuestId]) -> Result<Session, i32> {
    let s = Session::open(g, false)?;
    containers(&s, ids)?;
    Ok(s)
}

fn containers(s: &Session, ids: &[GuestId]) -> Result<(), i32> {
    for id in ids {
        match s.fleet.guest(*id) {
            Some(GuestRef::Ct(_)) => {}
            Some(GuestRef::Vm(_)) => {
                eprintln!(
                    "error: {id} is a VM; the {} backend manages containers only",
                    s.backend.kind()
                );
                return Err(exit::USAGE);
            }
            None => {
                eprintln!("error: guest {id} is not defined in the configuration");
                return Err(exit::USAGE);
            }
        }
    }
    Ok(())
}

pub fn lifecycle(g: &GlobalArgs, a: &IdsArgs, op: Op) -> i32 {
    crate::logging::init(&g.log_dir, g.verbose);
    let s = match open(g, &a.ids) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let mut code = exit::OK;
    for id in &a.ids {
        let result = match op {
            Op::Start => s.backend.start(*id),
            Op::Stop => s.backend.stop(*id),
            Op::Restart => s.backend.stop(*id).and_then(|()| s.backend.start(*id)),
        };
        match result {
            Ok(()) => {
                if !g.quiet {
                    eprintln!(
                        "{id}: {}",
                        match op {
                            Op::Start => "running",
                            Op::Stop => "stopped",
                            Op::Restart => "restarted",
                        }
                    );
                }
            }
            Err(e) => {
                eprintln!("error: {id}: {e}");
                code = exit::GUEST_FAILED;
            }
        }
    }
    code
}

pub fn delete(g: &GlobalArgs, a: &DeleteArgs) -> i32 {
    crate::logging::init(&g.log_dir, g.verbose);
    let s = match open(g, &a.ids) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let list = a
        .ids
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if !session::confirm(&format!("destroy {list} and its snapshots?"), a.yes) {
        return exit::USAGE;
    }
    let store = match session::open_store(g) {
        Ok(st) => st,
        Err(c) => return c,
    };
    let mut code = exit::OK;
    for id in &a.ids {
        match s.backend.destroy(*id) {
            Ok(()) => {
                if let Err(e) = store.remove(&format!("lxc/{id}")) {
                    eprintln!("warning: {id}: destroyed, but its state could not be removed: {e}");
                }
                if !g.quiet {
                    eprintln!("{id}: destroyed");
                }
            }
            Err(e) => {
                eprintln!("error: {id}: {e}");
                code = exit::GUEST_FAILED;
            }
        }
    }
    code
}

#[derive(Serialize)]
struct StatusJson {
    id: String,
    name: String,
    exists: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    running: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recorded_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recorded_status: Option<String>,
    snapshots: Vec<String>,
}

pub fn status(g: &GlobalArgs, a: &IdsArgs) -> i32 {
    let s = match open(g, &a.ids) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let reader = state_machine::Reader::new(&g.state_dir);
    let mut out = Vec::new();
    let mut code = exit::OK;
    for id in &a.ids {
        let name = s
            .fleet
            .guest(*id)
            .map(|g| g.name().to_string())
            .unwrap_or_default();
        let state = match s.backend.state(*id) {
            Ok(st) => st,
            Err(e) => {
                eprintln!("error: {id}: {e}");
                code = exit::GUEST_FAILED;
                continue;
            }
        };
        let rec = match reader.job(&format!("lxc/{id}")) {
            Some(state_machine::ReadOutcome::Ok(v)) => Some(v.record),
            _ => None,
        };
        out.push(StatusJson {
            id: id.to_string(),
            name,
            exists: state.is_some(),
            running: state.map(|st| st == crate::backend::RunState::Running),
            recorded_state: rec.as_ref().map(|r| r.state.clone()),
            recorded_status: rec.as_ref().map(|r| r.status.to_string()),
            snapshots: if state.is_some() {
                s.backend.snapshots(*id).unwrap_or_default()
            } else {
                Vec::new()
            },
        });
    }
    match g.output {
        Format::Json => output::print_json(&out),
        Format::Human => {
            let rows: Vec<Vec<String>> = out
                .iter()
                .map(|st| {
                    let live = match (st.exists, st.running) {
                        (false, _) => "absent".to_string(),
                        (true, Some(true)) => "running".to_string(),
                        _ => "stopped".to_string(),
                    };
                    vec![
                        st.id.clone(),
                        st.name.clone(),
                        live,
                        format!(
                            "{} {}",
                            st.recorded_state.clone().unwrap_or_else(|| "-".into()),
                            st.recorded_status.clone().unwrap_or_default()
                        ),
                        st.snapshots.join(", "),
                    ]
                })
                .collect();
            print!(
                "{}",
                crate::ui::table::render(
                    &["GUEST", "NAME", "LIVE", "RECORDED", "SNAPSHOTS"],
                    &rows
                )
            );
        }
    }
    code
}

//! What a run would do: the guests it touches, in order, and the states each passes through.

use super::{load, Options};
use crate::config::{Fleet, GuestId, GuestKind};
use crate::error::{Error, Result};
use crate::graph::{Graph, GraphError, Reason};
use crate::jobs::Lifecycle;
use serde::Serialize;
use state_machine::JobState;

#[derive(Debug, Clone, Serialize)]
pub struct Parent {
    pub id: String,
    pub reason: Reason,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedGuest {
    pub id: String,
    pub kind: GuestKind,
    pub name: String,
    pub parents: Vec<Parent>,
    /// Whether the guest was asked for, or is pulled in because a target needs it.
    pub target: bool,
    pub states: Vec<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub guests: Vec<PlannedGuest>,
}

/// `phoenix plan`: the configuration checked, the host files the guests need checked, and the
/// plan of a run of `targets` (empty: the whole fleet).
pub fn run(opts: &Options, targets: &[GuestId]) -> Result<Plan> {
    let fleet = load::checked(opts)?;
    let graph = Graph::build(&fleet);
    let plan = plan(&fleet, &graph, targets).map_err(|e| Error::usage(e.to_string()))?;
    let ids: Vec<GuestId> = plan
        .guests
        .iter()
        .filter_map(|p| p.id.parse().ok())
        .collect();
    load::preflight(opts, &fleet, &ids)?;
    Ok(plan)
}

/// Plans a run of `targets` (empty: the whole fleet).
pub fn plan(
    fleet: &Fleet,
    graph: &Graph,
    targets: &[GuestId],
) -> std::result::Result<Plan, GraphError> {
    let order = graph.order(targets)?;
    let guests = order
        .iter()
        .filter_map(|id| {
            let g = fleet.guest(*id)?;
            Some(PlannedGuest {
                id: id.to_string(),
                kind: g.kind(),
                name: g.name().to_string(),
                parents: graph
                    .prerequisites(*id)
                    .iter()
                    .map(|(p, r)| Parent {
                        id: p.to_string(),
                        reason: *r,
                    })
                    .collect(),
                target: targets.is_empty() || targets.contains(id),
                states: Lifecycle::all().iter().map(|s| s.name()).collect(),
            })
        })
        .collect();
    Ok(Plan { guests })
}

impl Plan {
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "{} guest(s), in order:", self.guests.len());
        for (i, g) in self.guests.iter().enumerate() {
            let parents: Vec<String> = g
                .parents
                .iter()
                .map(|p| {
                    format!(
                        "{} ({})",
                        p.id,
                        if p.reason == Reason::Clone {
                            "clone"
                        } else {
                            "dependency"
                        }
                    )
                })
                .collect();
            let needs = if parents.is_empty() {
                String::new()
            } else {
                format!(", needs {}", parents.join(", "))
            };
            let why = if g.target { "" } else { " [prerequisite]" };
            let _ = writeln!(
                s,
                "{:>3}. {} {} {}{why}{needs}",
                i + 1,
                g.kind,
                g.id,
                g.name
            );
            let _ = writeln!(s, "     {}", g.states.join(" -> "));
        }
        s
    }
}

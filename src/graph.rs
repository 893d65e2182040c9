//! The fleet's dependency graph: an edge from a prerequisite to the guest that needs it, for each
//! `clone_from_ctid`/`clone_from_vmid` and each `dependencies` entry. Containers and VMs share one
//! id space. The build order is upstream's: depth-first post-order from the targets in the order
//! given, visiting a guest's clone parent before its dependencies.

use crate::config::{Diagnostics, Fleet, GuestId, GuestKind};
use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

/// Why one guest needs another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    Clone,
    Dependency,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GraphError {
    #[error(
        "guest {0} is not defined in the configuration (see `phoenix graph` for the ids that are)"
    )]
    Unknown(GuestId),
    #[error("dependency cycle: {}", .0.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(" -> "))]
    Cycle(Vec<GuestId>),
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeInfo {
    pub id: String,
    pub kind: GuestKind,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EdgeInfo {
    pub from: String,
    pub to: String,
    pub reason: Reason,
}

/// The graph in the shape `phoenix graph --output json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct GraphView {
    pub nodes: Vec<NodeInfo>,
    pub edges: Vec<EdgeInfo>,
    pub order: Vec<String>,
}

pub struct Graph {
    graph: DiGraph<GuestId, Reason>,
    index: HashMap<GuestId, NodeIndex>,
    /// Prerequisites of each guest in visiting order (clone parent first, then dependencies).
    prereqs: BTreeMap<GuestId, Vec<(GuestId, Reason)>>,
    info: BTreeMap<GuestId, (GuestKind, String)>,
    /// All guests in the upstream enumeration order (containers by id text, then VMs).
    all: Vec<GuestId>,
}

impl Graph {
    pub fn build(fleet: &Fleet) -> Graph {
        let mut graph = DiGraph::new();
        let mut index = HashMap::new();
        let mut info = BTreeMap::new();
        let guests = fleet.guests();
        let mut all = Vec::with_capacity(guests.len());
        for g in &guests {
            if index.contains_key(&g.id()) {
                continue; // an id clash, reported by validation
            }
            index.insert(g.id(), graph.add_node(g.id()));
            info.insert(g.id(), (g.kind(), g.name().to_string()));
            all.push(g.id());
        }
        let mut prereqs: BTreeMap<GuestId, Vec<(GuestId, Reason)>> = BTreeMap::new();
        for g in &guests {
            let list = prereqs.entry(g.id()).or_default();
            let candidates = g
                .clone_from()
                .map(|p| (p, Reason::Clone))
                .into_iter()
                .chain(g.dependencies().iter().map(|d| (*d, Reason::Dependency)));
            for (p, reason) in candidates {
                if let (Some(&from), Some(&to)) = (index.get(&p), index.get(&g.id())) {
                    if !list.iter().any(|(q, _)| *q == p) {
                        list.push((p, reason));
                        graph.add_edge(from, to, reason);
                    }
                }
            }
        }
        Graph {
            graph,
            index,
            prereqs,
            info,
            all,
        }
    }

    pub fn contains(&self, id: GuestId) -> bool {
        self.index.contains_key(&id)
    }

    /// What `id` needs, in visiting order.
    pub fn prerequisites(&self, id: GuestId) -> &[(GuestId, Reason)] {
        self.prereqs.get(&id).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The guests that need `id` directly.
    pub fn dependents(&self, id: GuestId) -> Vec<GuestId> {
        let Some(&n) = self.index.get(&id) else {
            return Vec::new();
        };
        let mut out: Vec<GuestId> = self
            .graph
            .neighbors_directed(n, petgraph::Direction::Outgoing)
            .map(|m| self.graph[m])
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Every cycle, each as `a, b, ..., a`, one per strongly connected component.
    pub fn cycles(&self) -> Vec<Vec<GuestId>> {
        let mut out = Vec::new();
        for scc in petgraph::algo::tarjan_scc(&self.graph) {
            let members: BTreeSet<GuestId> = scc.iter().map(|n| self.graph[*n]).collect();
            let Some(&start) = members.iter().next() else {
                continue;
            };
            let self_loop =
                members.len() == 1 && self.prerequisites(start).iter().any(|(p, _)| *p == start);
            if members.len() < 2 && !self_loop {
                continue;
            }
            if let Some(path) = self.cycle_from(start, &members) {
                out.push(path);
            }
        }
        out.sort();
        out
    }

    /// Reports every cycle as a configuration error at the first guest on it.
    pub fn report_cycles(&self, fleet: &Fleet, diag: &Diagnostics) {
        for cycle in self.cycles() {
            let (file, ptr) = match fleet.guest(cycle[0]) {
                Some(g) => (fleet.file_of(g.kind()), fleet.pointer_of(g)),
                None => (fleet.file_of(GuestKind::Lxc), String::new()),
            };
            let path: Vec<String> = cycle.iter().map(|id| id.to_string()).collect();
            diag.error(
                &file,
                &ptr,
                format!("dependency cycle: {}", path.join(" -> ")),
                Some("break the cycle: a guest cannot need itself".into()),
            );
        }
    }

    /// A path `start -> ... -> start` along prerequisite edges inside `members`.
    fn cycle_from(&self, start: GuestId, members: &BTreeSet<GuestId>) -> Option<Vec<GuestId>> {
        let mut stack = vec![(start, 0usize)];
        let mut path = vec![start];
        let mut seen = BTreeSet::from([start]);
        while let Some((node, next)) = stack.last_mut() {
            let prereqs = self.prerequisites(*node);
            if *next >= prereqs.len() {
                stack.pop();
                path.pop();
                continue;
            }
            let (p, _) = prereqs[*next];
            *next += 1;
            if p == start {
                path.push(start);
                return Some(path);
            }
            if members.contains(&p) && seen.insert(p) {
                stack.push((p, 0));
                path.push(p);
            }
        }
        None
    }

    /// The targets and everything they need, in build order. No targets: the whole fleet.
    pub fn order(&self, targets: &[GuestId]) -> Result<Vec<GuestId>, GraphError> {
        for t in targets {
            if !self.contains(*t) {
                return Err(GraphError::Unknown(*t));
            }
        }
        let roots: &[GuestId] = if targets.is_empty() {
            &self.all
        } else {
            targets
        };
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Active,
            Done,
        }
        let mut marks: HashMap<GuestId, Mark> = HashMap::new();
        let mut order = Vec::new();
        for &root in roots {
            if marks.contains_key(&root) {
                continue;
            }
            // Iterative DFS (10,000-guest chains must not overflow the stack).
            let mut stack: Vec<(GuestId, usize)> = vec![(root, 0)];
            marks.insert(root, Mark::Active);
            while let Some((node, next)) = stack.last_mut() {
                let prereqs = self.prerequisites(*node);
                if *next < prereqs.len() {
                    let (p, _) = prereqs[*next];
                    *next += 1;
                    match marks.get(&p) {
                        None => {
                            marks.insert(p, Mark::Active);
                            stack.push((p, 0));
                        }
                        Some(Mark::Active) => {
                            let pos = stack.iter().position(|(n, _)| *n == p).unwrap_or(0);
                            let mut cycle: Vec<GuestId> =
                                stack[pos..].iter().map(|(n, _)| *n).collect();
                            cycle.push(p);
                            return Err(GraphError::Cycle(cycle));
                        }
                        Some(Mark::Done) => {}
                    }
                } else {
                    let id = *node;
                    marks.insert(id, Mark::Done);
                    order.push(id);
                    stack.pop();
                }
            }
        }
        Ok(order)
    }

    /// The subgraph over `ids`, with its order, for printing.
    pub fn view(&self, ids: &[GuestId]) -> GraphView {
        let set: BTreeSet<GuestId> = ids.iter().copied().collect();
        let nodes = ids
            .iter()
            .filter_map(|id| {
                self.info.get(id).map(|(kind, name)| NodeInfo {
                    id: id.to_string(),
                    kind: *kind,
                    name: name.clone(),
                })
            })
            .collect();
        let mut edges = Vec::new();
        for id in ids {
            for (p, reason) in self.prerequisites(*id) {
                if set.contains(p) {
                    edges.push(EdgeInfo {
                        from: p.to_string(),
                        to: id.to_string(),
                        reason: *reason,
                    });
                }
            }
        }
        GraphView {
            nodes,
            edges,
            order: ids.iter().map(|i| i.to_string()).collect(),
        }
    }
}

impl GraphView {
    pub fn to_dot(&self) -> String {
        let mut s = String::from("digraph phoenix {\n  rankdir=LR;\n  node [shape=box];\n");
        for n in &self.nodes {
            let shape = if n.kind == GuestKind::Vm {
                ", style=rounded"
            } else {
                ""
            };
            let _ = writeln!(
                s,
                "  \"{}\" [label=\"{} {}\\n{}\"{shape}];",
                n.id,
                n.kind,
                n.id,
                dot_escape(&n.name)
            );
        }
        for e in &self.edges {
            let style = if e.reason == Reason::Clone {
                "solid"
            } else {
                "dashed"
            };
            let _ = writeln!(
                s,
                "  \"{}\" -> \"{}\" [label=\"{}\", style={style}];",
                e.from,
                e.to,
                reason_word(e.reason)
            );
        }
        s.push_str("}\n");
        s
    }

    pub fn to_mermaid(&self) -> String {
        let mut s = String::from("graph LR\n");
        for n in &self.nodes {
            let _ = writeln!(
                s,
                "    g{}[\"{} {}: {}\"]",
                n.id,
                n.kind,
                n.id,
                mermaid_escape(&n.name)
            );
        }
        for e in &self.edges {
            let arrow = if e.reason == Reason::Clone {
                "-->"
            } else {
                "-.->"
            };
            let _ = writeln!(
                s,
                "    g{} {arrow}|{}| g{}",
                e.from,
                reason_word(e.reason),
                e.to
            );
        }
        s
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let names: BTreeMap<&str, &NodeInfo> =
            self.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
        for (i, id) in self.order.iter().enumerate() {
            let Some(n) = names.get(id.as_str()) else {
                continue;
            };
            let needs: Vec<String> = self
                .edges
                .iter()
                .filter(|e| &e.to == id)
                .map(|e| format!("{} ({})", e.from, reason_word(e.reason)))
                .collect();
            let needs = if needs.is_empty() {
                String::new()
            } else {
                format!("  needs {}", needs.join(", "))
            };
            let _ = writeln!(
                s,
                "{:>3}. {:<3} {:<6} {}{needs}",
                i + 1,
                n.kind,
                n.id,
                n.name
            );
        }
        s
    }
}

fn reason_word(r: Reason) -> &'static str {
    match r {
        Reason::Clone => "clone",
        Reason::Dependency => "dependency",
    }
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn mermaid_escape(s: &str) -> String {
    s.replace('"', "#quot;")
}

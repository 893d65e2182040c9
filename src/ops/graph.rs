//! `phoenix graph`: the dependency graph of the targets (and what they need) with its build order.

use super::{load, Options};
use crate::config::GuestId;
use crate::error::{Error, Result};
use crate::graph::{Graph, GraphView};

/// How to draw the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notation {
    Text,
    Json,
    Dot,
    Mermaid,
}

impl Notation {
    pub const NAMES: &'static [&'static str] = &["text", "json", "dot", "mermaid"];
}

impl std::str::FromStr for Notation {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Notation, String> {
        match s {
            "text" => Ok(Notation::Text),
            "json" => Ok(Notation::Json),
            "dot" => Ok(Notation::Dot),
            "mermaid" => Ok(Notation::Mermaid),
            _ => Err(format!("{s:?} is not text, json, dot or mermaid")),
        }
    }
}

pub fn view(opts: &Options, targets: &[GuestId]) -> Result<GraphView> {
    let fleet = load::checked(opts)?;
    let graph = Graph::build(&fleet);
    let order = graph
        .order(targets)
        .map_err(|e| Error::usage(e.to_string()))?;
    Ok(graph.view(&order))
}

/// The view in `notation` (JSON is printed by the caller as a document).
pub fn render(view: &GraphView, notation: Notation) -> Option<String> {
    match notation {
        Notation::Json => None,
        Notation::Dot => Some(view.to_dot()),
        Notation::Mermaid => Some(view.to_mermaid()),
        Notation::Text => Some(view.to_text()),
    }
}

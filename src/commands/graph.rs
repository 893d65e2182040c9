use crate::cli::{GlobalArgs, GraphArgs, GraphFormat};
use crate::exit;
use crate::graph::Graph;
use crate::output::{self, Format};

pub fn run(g: &GlobalArgs, a: &GraphArgs) -> i32 {
    let fleet = match super::load_checked(g) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let graph = Graph::build(&fleet);
    let order = match graph.order(&a.ids) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let view = graph.view(&order);
    let format = match (a.format, g.output) {
        (Some(f), _) => f,
        (None, Format::Json) => GraphFormat::Json,
        (None, Format::Human) => GraphFormat::Text,
    };
    match format {
        GraphFormat::Json => output::print_json(&view),
        GraphFormat::Dot => print!("{}", view.to_dot()),
        GraphFormat::Mermaid => print!("{}", view.to_mermaid()),
        GraphFormat::Text => print!("{}", view.to_text()),
    }
    exit::OK
}

use crate::cli::{GlobalArgs, PlanArgs};
use crate::exit;
use crate::graph::Graph;
use crate::output::{self, Format};

pub fn run(g: &GlobalArgs, a: &PlanArgs) -> i32 {
    let fleet = match super::load_checked(g) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let graph = Graph::build(&fleet);
    let plan = match crate::plan::plan(&fleet, &graph, &a.ids) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let ids: Vec<_> = plan
        .guests
        .iter()
        .filter_map(|p| p.id.parse().ok())
        .collect();
    if let Err(code) = super::preflight(g, &fleet, &ids) {
        return code;
    }
    match g.output {
        Format::Json => output::print_json(&plan),
        Format::Human => print!("{}", plan.to_text()),
    }
    exit::OK
}

use crate::cli::{GlobalArgs, ValidateArgs};
use crate::config::{fleet, validate as checks, Diagnostics, Fleet, Severity};
use crate::exit;
use crate::features::FeatureDirs;
use crate::output::{self, Format};
use serde::Serialize;

#[derive(Serialize)]
struct Report<'a> {
    valid: bool,
    errors: usize,
    warnings: usize,
    guests: usize,
    diagnostics: &'a [crate::config::Diagnostic],
}

pub fn run(g: &GlobalArgs, a: &ValidateArgs) -> i32 {
    let diag = Diagnostics::new();
    let loaded = if a.files.is_empty() {
        Fleet::load_dir(&fleet::config_dir(g.config_dir.as_deref()), &diag)
    } else {
        Fleet::load_files(&a.files, a.kind, &diag)
    };
    let fleet = match loaded {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    checks::check(&fleet, &diag);
    let ids: Vec<_> = fleet.guests().iter().map(|g| g.id()).collect();
    let features = FeatureDirs::new(&g.features_dirs, fleet.dir.as_deref());
    checks::host_references(&fleet, &ids, &features, Severity::Warning, &diag);
    let errors = diag.error_count();
    let items = diag.into_sorted();
    let warnings = items.len() - errors;
    match g.output {
        Format::Json => output::print_json(&Report {
            valid: errors == 0,
            errors,
            warnings,
            guests: ids.len(),
            diagnostics: &items,
        }),
        Format::Human => {
            output::print_diagnostics(&items, g.quiet);
            if !g.quiet {
                let verdict = if errors == 0 { "valid" } else { "invalid" };
                eprintln!(
                    "{verdict}: {} guest(s), {errors} error(s), {warnings} warning(s)",
                    ids.len()
                );
            }
        }
    }
    if errors > 0 {
        exit::USAGE
    } else {
        exit::OK
    }
}

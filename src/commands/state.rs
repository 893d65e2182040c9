use crate::cli::{GlobalArgs, StateResetArgs, StateShowArgs};
use crate::exit;
use crate::output::{self, Format};
use crate::session;
use crate::state_view;
use state_machine::{ReadOutcome, Reader};

pub fn show(g: &GlobalArgs, a: &StateShowArgs) -> i32 {
    let reader = Reader::new(&g.state_dir);
    let note = state_view::reader_note(&reader);
    if let Some(id) = a.id {
        // A guest id names an lxc or a vm job; look for either.
        let found = ["lxc", "vm"]
            .iter()
            .find_map(|k| reader.job(&format!("{k}/{id}")));
        return match found {
            None => {
                eprintln!(
                    "error: no state recorded for {id} in {} (it has not been run yet)",
                    g.state_dir.display()
                );
                exit::USAGE
            }
            Some(ReadOutcome::Unreadable { job, detail }) => {
                eprintln!("error: state of {job} is unreadable: {detail} (`phoenix state reset {id}` clears it)");
                exit::GUEST_FAILED
            }
            Some(ReadOutcome::Ok(view)) => {
                match g.output {
                    Format::Json => output::print_json(&state_view::job_json(
                        &view.record,
                        &view.journal,
                        a.history,
                    )),
                    Format::Human => {
                        if let Some(n) = &note {
                            eprintln!("{n}");
                        }
                        print!(
                            "{}",
                            state_view::detail(&view.record, &view.journal, a.history)
                        );
                    }
                }
                exit::OK
            }
        };
    }
    let jobs = reader.jobs();
    match g.output {
        Format::Json => {
            let list: Vec<serde_json::Value> = jobs
                .iter()
                .map(|o| match o {
                    ReadOutcome::Ok(v) => {
                        serde_json::to_value(state_view::job_json(&v.record, &v.journal, a.history))
                            .unwrap_or_default()
                    }
                    ReadOutcome::Unreadable { job, detail } => {
                        serde_json::json!({"job": job, "status": "unreadable", "error": detail})
                    }
                })
                .collect();
            output::print_json(&serde_json::json!({"writer": note, "jobs": list}));
        }
        Format::Human => {
            if let Some(n) = &note {
                eprintln!("{n}");
            }
            if jobs.is_empty() {
                eprintln!(
                    "no state recorded in {} yet (run `phoenix run ...` first)",
                    g.state_dir.display()
                );
            } else {
                print!("{}", state_view::table_of(&jobs));
            }
        }
    }
    exit::OK
}

pub fn reset(g: &GlobalArgs, a: &StateResetArgs) -> i32 {
    let store = match session::open_store(g) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let ids: Vec<String> = if a.all {
        match store.job_ids() {
            Ok(ids) => ids,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::USAGE;
            }
        }
    } else {
        let known = store.job_ids().unwrap_or_default();
        a.ids
            .iter()
            .filter_map(|id| {
                ["lxc", "vm"]
                    .iter()
                    .map(|k| format!("{k}/{id}"))
                    .find(|j| known.contains(j))
            })
            .collect()
    };
    if ids.is_empty() {
        eprintln!(
            "nothing to reset: no state recorded for {}",
            if a.all {
                "any guest".to_string()
            } else {
                a.ids
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
        return exit::OK;
    }
    let to =
        a.to.map_or("the start".to_string(), |s| format!("state {s}"));
    if !session::confirm(&format!("reset {} to {to}?", ids.join(", ")), a.yes) {
        return exit::USAGE;
    }
    let who = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    match store.reset(&ids, a.to, &format!("phoenix state reset by {who}")) {
        Ok(done) => {
            if !g.quiet {
                eprintln!(
                    "reset {} to {to}; the next `phoenix run` redoes what follows",
                    done.join(", ")
                );
            }
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::USAGE
        }
    }
}

//! `phoenix state show` (read without the store's lock, while a run goes on) and
//! `phoenix state reset`.

use super::{connect, Options};
use crate::config::{fleet, Diagnostics, Fleet, GuestId};
use crate::error::{Error, Result};
use crate::jobs::host::HostState;
use crate::jobs::Lifecycle;
use crate::ui::out::{self, Format};
use crate::ui::state as view;
use state_machine::{JobState, ReadOutcome, Reader};

/// What `state show` and `state reset` name: a guest by its id, or the node (`host`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Guest(GuestId),
    Host,
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Target, String> {
        match s {
            "host" => Ok(Target::Host),
            _ => s.parse().map(Target::Guest),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Guest(id) => write!(f, "{id}"),
            Target::Host => f.write_str("host"),
        }
    }
}

/// The job ids a guest id may be recorded under (containers and VMs share one id space).
fn job_ids(id: GuestId) -> [String; 2] {
    [format!("lxc/{id}"), format!("vm/{id}")]
}

/// Whether `job` is what `target` names (`host/<node>` for the node).
fn names(target: Target, job: &str) -> bool {
    match target {
        Target::Guest(id) => job_ids(id).iter().any(|j| j == job),
        Target::Host => job.starts_with("host/"),
    }
}

pub fn show(opts: &Options, target: Option<Target>, history: bool) -> Result<()> {
    let reader = Reader::new(&opts.state_dir);
    let note = view::reader_note(&reader);
    if opts.output == Format::Human {
        if let Some(n) = &note {
            out::err_line(n);
        }
    }
    match target {
        Some(Target::Guest(id)) => show_one(opts, &reader, id, history),
        Some(Target::Host) => show_host(opts, &reader, history),
        None => {
            show_all(opts, &reader, note, history);
            Ok(())
        }
    }
}

fn show_one(opts: &Options, reader: &Reader, id: GuestId, history: bool) -> Result<()> {
    let found = job_ids(id).into_iter().find_map(|j| reader.job(&j));
    match found {
        None => Err(not_recorded(opts, id)),
        Some(ReadOutcome::Unreadable { job, detail }) => Err(Error::usage(format!(
            "state of {job} is unreadable: {detail} (`{}` clears it)",
            crate::error::reset_command(&job)
        ))),
        Some(ReadOutcome::Ok(v)) => {
            match opts.output {
                Format::Json => out::json(&view::job_json(&v.record, &v.journal, history)),
                Format::Human => out::stdout(&view::detail(&v.record, &v.journal, history)),
            }
            Ok(())
        }
    }
}

fn show_host(opts: &Options, reader: &Reader, history: bool) -> Result<()> {
    let found = reader.jobs().into_iter().find_map(|o| match o {
        ReadOutcome::Ok(v) if v.record.id.starts_with("host/") => Some(v),
        _ => None,
    });
    let Some(v) = found else {
        return Err(Error::usage(format!(
            "no state recorded for the node in {}: `phoenix setup` has not run yet",
            opts.state_dir.display()
        )));
    };
    match opts.output {
        Format::Json => out::json(&view::job_json(&v.record, &v.journal, history)),
        Format::Human => out::stdout(&view::detail(&v.record, &v.journal, history)),
    }
    Ok(())
}

/// Why there is no state for `id`: not in the configuration, or not run yet.
fn not_recorded(opts: &Options, id: GuestId) -> Error {
    let dir = fleet::config_dir(opts.config_dir.as_deref());
    let state_dir = opts.state_dir.display();
    match Fleet::load_dir(&dir, &Diagnostics::new()) {
        Ok(f) if f.guest(id).is_none() => Error::usage(format!(
            "guest {id} is not defined in the configuration ({}), and {state_dir} records no state for it",
            dir.display()
        )),
        Ok(_) => Error::usage(format!(
            "no state recorded for {id} in {state_dir}: it has not been run yet (`phoenix run {id}`)"
        )),
        Err(_) => Error::usage(format!(
            "no state recorded for {id} in {state_dir} (and no configuration at {} to look it up in)",
            dir.display()
        )),
    }
}

fn show_all(opts: &Options, reader: &Reader, note: Option<String>, history: bool) {
    let jobs = reader.jobs();
    match opts.output {
        Format::Json => {
            let list: Vec<serde_json::Value> = jobs
                .iter()
                .map(|o| match o {
                    ReadOutcome::Ok(v) => {
                        serde_json::to_value(view::job_json(&v.record, &v.journal, history))
                            .unwrap_or_default()
                    }
                    ReadOutcome::Unreadable { job, detail } => {
                        serde_json::json!({"job": job, "status": "unreadable", "error": detail})
                    }
                })
                .collect();
            out::json(&serde_json::json!({"writer": note, "jobs": list}));
        }
        Format::Human if jobs.is_empty() => out::err_line(&format!(
            "no state recorded in {} yet (run `phoenix run ...` first)",
            opts.state_dir.display()
        )),
        Format::Human => out::stdout(&view::table_of(&jobs)),
    }
}

/// What to reset.
pub struct ResetRequest {
    /// Empty with `all`.
    pub targets: Vec<Target>,
    pub all: bool,
    /// Keep the steps of this state and earlier ones (`None`: back to the start): a guest state,
    /// or for the node one of its own.
    pub to: Option<String>,
}

pub fn reset(opts: &Options, req: &ResetRequest, confirmed: impl Fn(&str) -> bool) -> Result<()> {
    let store = connect::open_or_salvage_store(&opts.state_dir)?;
    let known = store.job_ids()?;
    let ids: Vec<String> = match req.all {
        true => known,
        false => known
            .into_iter()
            .filter(|j| req.targets.iter().any(|t| names(*t, j)))
            .collect(),
    };
    if ids.is_empty() {
        let which = match req.all {
            true => "any guest".to_string(),
            false => req
                .targets
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        };
        out::err_line(&format!("nothing to reset: no state recorded for {which}"));
        return Ok(());
    }
    let (hosts, guests): (Vec<String>, Vec<String>) =
        ids.iter().cloned().partition(|j| j.starts_with("host/"));
    let guest_to = state_of::<Lifecycle>(req.to.as_deref(), !guests.is_empty())?;
    let host_to = state_of::<HostState>(req.to.as_deref(), !hosts.is_empty())?;
    let to = req
        .to
        .as_ref()
        .map_or("the start".to_string(), |s| format!("state {s}"));
    let question = format!("reset {} to {to}?", ids.join(", "));
    if !confirmed(&question) {
        return Err(Error::usage(format!(
            "{question} not confirmed (answer y at a terminal, or add --yes)"
        )));
    }
    let who = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    let reason = format!("phoenix state reset by {who}");
    let mut done = store.reset(&guests, guest_to, &reason)?;
    done.extend(store.reset(&hosts, host_to, &reason)?);
    if !opts.quiet {
        out::err_line(&format!(
            "reset {} to {to}; the next `phoenix run` redoes what follows",
            done.join(", ")
        ));
    }
    Ok(())
}

/// `to` as a state of the kind of job being reset (when any is).
fn state_of<S: JobState>(to: Option<&str>, needed: bool) -> Result<Option<S>> {
    match to {
        Some(t) if needed => S::parse(t).map(Some).map_err(Error::usage),
        _ => Ok(None),
    }
}

//! What `phoenix state show` and `phoenix status` print: jobs as the engine recorded them (read
//! without the lock), and guests as they are.

use crate::ui::table;
use serde::Serialize;
use state_machine::{Event, EventKind, JobRecord, ReadOutcome, Reader};
use std::fmt::Write as _;

#[derive(Debug, Serialize)]
pub struct JobJson<'a> {
    pub job: &'a str,
    pub state: &'a str,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<&'a str>,
    pub attempt: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<ErrorJson<'a>>,
    pub steps: Vec<StepJson<'a>>,
    pub updated_at_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<EventJson>>,
}

#[derive(Debug, Serialize)]
pub struct ErrorJson<'a> {
    pub step: &'a str,
    pub message: &'a str,
    pub output_tail: &'a str,
}

#[derive(Debug, Serialize)]
pub struct StepJson<'a> {
    pub name: &'a str,
    pub state: &'a str,
    pub started_at_ms: u64,
    pub finished_at_ms: u64,
    pub duration_ms: u64,
    pub attempts: u32,
}

#[derive(Debug, Serialize)]
pub struct EventJson {
    pub seq: u64,
    pub at_ms: u64,
    pub run: String,
    pub event: &'static str,
    pub detail: String,
}

pub fn describe(kind: &EventKind) -> String {
    match kind {
        EventKind::JobCreated => String::new(),
        EventKind::StepStarted { step, attempt } => format!("{step} (attempt {attempt})"),
        EventKind::StepSucceeded { step, duration_ms } => format!("{step} in {duration_ms} ms"),
        EventKind::StepFailed { step, error, .. } => format!("{step}: {error}"),
        EventKind::StepInterrupted { step, run_id } => {
            format!("{step} (run {run_id} died inside it)")
        }
        EventKind::StateEntered { state } => state.clone(),
        EventKind::ConfigChanged { step, reason } => format!("{step}: {reason}"),
        EventKind::Reset { to, reason } => format!("to {to}: {reason}"),
        EventKind::IntentSaved { step } => step.clone(),
        EventKind::Note { step, message } => format!("{step}: {message}"),
    }
}

pub fn event_json(e: &Event) -> EventJson {
    EventJson {
        seq: e.seq,
        at_ms: e.at,
        run: e.run_id.clone(),
        event: e.kind.name(),
        detail: describe(&e.kind),
    }
}

pub fn job_json<'a>(r: &'a JobRecord, journal: &[Event], history: bool) -> JobJson<'a> {
    JobJson {
        job: &r.id,
        state: &r.state,
        status: r.status.to_string(),
        step: r.cursor.as_deref(),
        attempt: r.attempt,
        last_error: r.last_error.as_ref().map(|e| ErrorJson {
            step: &e.step,
            message: &e.message,
            output_tail: &e.output_tail,
        }),
        steps: r
            .done
            .iter()
            .map(|d| StepJson {
                name: &d.name,
                state: &d.state,
                started_at_ms: d.started_at,
                finished_at_ms: d.finished_at,
                duration_ms: d.finished_at.saturating_sub(d.started_at),
                attempts: d.attempts,
            })
            .collect(),
        updated_at_ms: r.updated_at,
        history: history.then(|| journal.iter().map(event_json).collect()),
    }
}

fn ago(ms: u64) -> String {
    let s = state_machine::now_ms().saturating_sub(ms) / 1000;
    match s {
        0..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        3600..=86_399 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

/// The table of all jobs.
pub fn table_of(outcomes: &[ReadOutcome]) -> String {
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| match o {
            ReadOutcome::Ok(v) => {
                let r = &v.record;
                let err = r
                    .last_error
                    .as_ref()
                    .map(|e| format!("{}: {}", e.step, e.message))
                    .unwrap_or_default();
                vec![
                    r.id.clone(),
                    r.state.clone(),
                    r.status.to_string(),
                    r.cursor.clone().unwrap_or_else(|| "-".into()),
                    r.attempt.to_string(),
                    ago(r.updated_at),
                    err,
                ]
            }
            ReadOutcome::Unreadable { job, detail } => vec![
                job.clone(),
                "?".into(),
                "unreadable".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                format!("{detail} (phoenix state reset clears it)"),
            ],
        })
        .collect();
    table::render(
        &[
            "JOB",
            "STATE",
            "STATUS",
            "NEXT STEP",
            "ATTEMPT",
            "UPDATED",
            "LAST ERROR",
        ],
        &rows,
    )
}

/// One job in detail.
pub fn detail(r: &JobRecord, journal: &[Event], history: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}: {} ({})", r.id, r.state, r.status);
    if let Some(c) = &r.cursor {
        let _ = writeln!(s, "next step: {c} (attempt {} so far)", r.attempt);
    }
    if let Some(st) = &r.started {
        let _ = writeln!(
            s,
            "running: {} since {} (run {})",
            st.step,
            ago(st.at),
            st.run_id
        );
    }
    if let Some(e) = &r.last_error {
        let _ = writeln!(s, "last error in {} ({}): {}", e.step, ago(e.at), e.message);
        for l in e.output_tail.lines() {
            let _ = writeln!(s, "    | {l}");
        }
    }
    let rows: Vec<Vec<String>> = r
        .done
        .iter()
        .map(|d| {
            vec![
                d.name.clone(),
                d.state.clone(),
                format!("{} ms", d.finished_at.saturating_sub(d.started_at)),
                d.attempts.to_string(),
                ago(d.finished_at),
            ]
        })
        .collect();
    let _ = writeln!(s, "\ndone steps:");
    s.push_str(&table::render(
        &["STEP", "STATE", "DURATION", "ATTEMPTS", "FINISHED"],
        &rows,
    ));
    let notes = notes(journal);
    if !notes.is_empty() {
        let _ = writeln!(s, "\nnotes (latest last):");
        for n in notes {
            let _ = writeln!(s, "  {n}");
        }
    }
    if history {
        let _ = writeln!(s, "\nhistory:");
        if r.journal_summary.compacted > 0 {
            let _ = writeln!(
                s,
                "({} older events compacted: {:?})",
                r.journal_summary.compacted, r.journal_summary.counts
            );
        }
        let rows: Vec<Vec<String>> = journal
            .iter()
            .map(|e| {
                vec![
                    e.seq.to_string(),
                    ago(e.at),
                    e.run_id.clone(),
                    e.kind.name().to_string(),
                    describe(&e.kind),
                ]
            })
            .collect();
        s.push_str(&table::render(
            &["SEQ", "WHEN", "RUN", "EVENT", "DETAIL"],
            &rows,
        ));
    }
    s
}

/// The steps' remarks (re-attached to a script an earlier run started) and the drift runs found,
/// the last ten.
fn notes(journal: &[Event]) -> Vec<String> {
    let notes: Vec<String> = journal
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Note { step, message } => Some(format!("{} {step}: {message}", ago(e.at))),
            EventKind::ConfigChanged { step, reason } if reason.starts_with("drift:") => {
                Some(format!("{} {step}: {reason}", ago(e.at)))
            }
            _ => None,
        })
        .collect();
    notes[notes.len().saturating_sub(10)..].to_vec()
}

/// Reads the store (no lock needed) and says who is writing, if anyone.
pub fn reader_note(reader: &Reader) -> Option<String> {
    reader
        .writer()
        .map(|h| format!("a run is in progress: {h}"))
}

/// One guest as it is and as Phoenix recorded it.
#[derive(Debug, Serialize)]
pub struct GuestStatus {
    pub id: String,
    pub name: String,
    pub exists: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_status: Option<String>,
    pub snapshots: Vec<String>,
}

/// `phoenix status`: each guest live and as recorded.
pub fn guest_table(guests: &[GuestStatus]) -> String {
    let rows: Vec<Vec<String>> = guests
        .iter()
        .map(|st| {
            let live = match (st.exists, st.running) {
                (false, _) => "absent",
                (true, Some(true)) => "running",
                _ => "stopped",
            };
            vec![
                st.id.clone(),
                st.name.clone(),
                live.to_string(),
                format!(
                    "{} {}",
                    st.recorded_state.as_deref().unwrap_or("-"),
                    st.recorded_status.as_deref().unwrap_or_default()
                ),
                st.snapshots.join(", "),
            ]
        })
        .collect();
    table::render(&["GUEST", "NAME", "LIVE", "RECORDED", "SNAPSHOTS"], &rows)
}

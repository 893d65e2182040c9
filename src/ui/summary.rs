//! The table printed at the end of a run.

use super::table;
use crate::converge::{Outcome, Summary};

pub fn render(s: &Summary, dry_run: bool) -> String {
    let rows: Vec<Vec<String>> = s
        .guests
        .iter()
        .map(|g| {
            let note = match (&g.error, &g.blocked_by) {
                (Some(e), _) => e.clone(),
                (None, Some(b)) => format!("blocked by {b}"),
                _ => String::new(),
            };
            vec![
                g.id.clone(),
                g.name.clone(),
                g.outcome.word().to_string(),
                g.state.clone(),
                format!("{}/{}", g.steps_changed, g.steps_run),
                format!("{:.1}s", g.duration_ms as f64 / 1000.0),
                note,
            ]
        })
        .collect();
    let mut out = String::from("\n");
    out.push_str(&table::render(
        &[
            "GUEST",
            "NAME",
            "OUTCOME",
            "STATE",
            "CHANGED/RUN",
            "TIME",
            "NOTE",
        ],
        &rows,
    ));
    let count = |o: Outcome| s.guests.iter().filter(|g| g.outcome == o).count();
    let verdict = if dry_run {
        "dry run: nothing was changed".to_string()
    } else if s.ok() && count(Outcome::Converged) == 0 {
        "everything is up to date: nothing to do".to_string()
    } else if count(Outcome::RebootRequired) > 0 {
        "waiting for a reboot: the next run after it goes on".to_string()
    } else {
        format!(
            "{} converged, {} unchanged, {} failed, {} blocked, {} cancelled",
            count(Outcome::Converged),
            count(Outcome::Unchanged),
            count(Outcome::Failed) + count(Outcome::Unsupported),
            count(Outcome::Blocked),
            count(Outcome::Cancelled)
        )
    };
    out.push_str(&format!(
        "\n{verdict} ({} guest(s) in {:.2}s; {} command(s), {} of them changes, {:.2}s in commands)\n",
        s.guests.len(),
        s.duration_ms as f64 / 1000.0,
        s.commands,
        s.mutating_commands,
        s.command_ms as f64 / 1000.0
    ));
    out
}

//! `--output json` for runs: one JSON object per line per event, on stdout.

use crate::converge::{Event, Reporter};

#[derive(Default)]
pub struct JsonLines;

impl Reporter for JsonLines {
    fn event(&mut self, e: &Event) {
        // A closed stdout does not stop the run: the events are in the log too.
        if let Ok(line) = serde_json::to_string(e) {
            super::out::line(&line);
        }
    }
}

//! `--output json` for runs: one JSON object per line per event, on stdout.

use crate::converge::{Event, Reporter};
use std::io::Write;

#[derive(Default)]
pub struct JsonLines;

impl Reporter for JsonLines {
    fn event(&mut self, e: &Event) {
        let mut out = std::io::stdout().lock();
        if let Ok(line) = serde_json::to_string(e) {
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}

//! How results reach the operator: human text or JSON on stdout, messages on stderr, colour only
//! on a terminal and never when `NO_COLOR` is set. Nothing here panics: a closed pipe
//! (`phoenix graph | head -1`) ends the output quietly, and the command finishes as it would.

use crate::config::{Diagnostic, Severity};
use serde::Serialize;
use std::io::{IsTerminal, Write};

/// `--output`: for people, or one JSON document (or one JSON object per line for runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Human,
    Json,
}

impl Format {
    pub const NAMES: &'static [&'static str] = &["human", "json"];
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "human" => Ok(Format::Human),
            "json" => Ok(Format::Json),
            _ => Err(format!("{s:?} is not human or json")),
        }
    }
}

/// Writes `text` to stdout (write errors, a closed pipe among them, end the output quietly).
pub fn stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Writes one line to stdout.
pub fn line(text: &str) {
    stdout(&format!("{text}\n"));
}

/// Writes one line to stderr.
pub fn err_line(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// Prints a value as pretty JSON on stdout.
pub fn json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => line(&s),
        Err(e) => err_line(&format!("error: cannot encode output as JSON: {e}")),
    }
}

/// Prints a value as one line of JSON on stdout (a stream of objects, one per line).
pub fn json_line<T: Serialize>(value: &T) {
    match serde_json::to_string(value) {
        Ok(s) => line(&s),
        Err(e) => err_line(&format!("error: cannot encode output as JSON: {e}")),
    }
}

/// Whether to colour text written to stderr.
pub fn color_stderr() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

pub fn paint(text: &str, code: &str, on: bool) -> String {
    if on {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// Prints diagnostics to stderr, one per line: `error: FILE: /ptr: message (hint)`.
pub fn diagnostics(items: &[Diagnostic], quiet: bool) {
    let color = color_stderr();
    let mut err = std::io::stderr().lock();
    for d in items {
        if quiet && d.severity == Severity::Warning {
            continue;
        }
        let label = match d.severity {
            Severity::Error => paint("error", "1;31", color),
            Severity::Warning => paint("warning", "1;33", color),
        };
        let _ = writeln!(err, "{label}: {d}");
    }
}

/// Prints an error, each of its lines as `error: ...`.
pub fn error(e: &crate::error::Error) {
    let label = paint("error", "1;31", color_stderr());
    let mut err = std::io::stderr().lock();
    for l in e.to_string().lines() {
        let _ = writeln!(err, "{label}: {l}");
    }
}

//! How results reach the operator: human text or JSON, colour only on a terminal and never when
//! `NO_COLOR` is set.

use crate::config::{Diagnostic, Severity};
use serde::Serialize;
use std::io::{IsTerminal, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    #[default]
    Human,
    Json,
}

/// Whether to colour text written to stderr.
pub fn color_stderr() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

fn paint(text: &str, code: &str, on: bool) -> String {
    if on {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// Prints diagnostics to stderr, one per line: `error: FILE: /ptr: message (hint)`.
pub fn print_diagnostics(items: &[Diagnostic], quiet: bool) {
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

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: cannot encode output as JSON: {e}"),
    }
}

//! `phoenix validate --explain`: each construct of an older file shape, and how today's files
//! write it.

use crate::config::Diagnostic;
use std::fmt::Write;

pub fn render(diagnostics: &[Diagnostic]) -> String {
    let legacy: Vec<&Diagnostic> = diagnostics.iter().filter(|d| d.modern.is_some()).collect();
    if legacy.is_empty() {
        return "No constructs of older file shapes: these files are written the modern way.\n"
            .into();
    }
    let mut out = format!(
        "{} construct(s) of older file shapes; each loads, and is written today as shown:\n",
        legacy.len()
    );
    for d in legacy {
        let pointer = if d.pointer.is_empty() {
            "/"
        } else {
            &d.pointer
        };
        let _ = write!(
            out,
            "\n{}: {pointer}\n  was:    {}\n  modern: {}\n",
            d.file,
            d.message,
            d.modern.as_deref().unwrap_or_default()
        );
    }
    out
}

//! `phoenix health-check` for people: one line per check, its output's tail when it failed.

use crate::converge::checks::GuestHealth;
use std::fmt::Write;

pub fn render(guests: &[GuestHealth]) -> String {
    let mut out = String::new();
    for g in guests {
        if let Some(e) = &g.error {
            let _ = writeln!(out, "✗ {} {}: {e}", g.id, g.name);
            continue;
        }
        for c in &g.checks {
            let mark = if c.passed { "✓" } else { "✗" };
            let _ = write!(out, "{mark} {} {} {}", g.id, g.name, c.check);
            match &c.error {
                Some(e) => {
                    let _ = writeln!(out, ": {e}");
                    for l in c.output_tail.lines() {
                        let _ = writeln!(out, "    {l}");
                    }
                }
                None => out.push('\n'),
            }
        }
    }
    out
}

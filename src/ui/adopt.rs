//! `phoenix adopt` for people: per guest, what was recorded and what the next run will do.

use crate::converge::adopt::Adoption;
use std::fmt::Write;

pub fn render(adoptions: &[Adoption]) -> String {
    let mut out = String::new();
    for a in adoptions {
        let _ = write!(out, "{} {}: ", a.id, a.name);
        if let Some(e) = &a.error {
            let _ = writeln!(out, "not adopted: {e}");
            continue;
        }
        let recorded = a.steps.iter().filter(|v| v.recorded).count();
        let _ = writeln!(out, "{recorded} of {} steps recorded", a.steps.len());
        let pending: Vec<_> = a.steps.iter().filter(|v| !v.recorded).collect();
        if pending.is_empty() {
            let _ = writeln!(out, "  everything holds: the next run changes nothing");
            continue;
        }
        let _ = writeln!(out, "  the next run does these (nothing was changed):");
        for v in pending {
            let why = match (&v.why, v.holds) {
                (Some(w), _) => w.clone(),
                (None, true) => "holds; recorded once the steps before it are".into(),
                (None, false) => "does not hold".into(),
            };
            let _ = writeln!(out, "    {}  {why}", v.step);
        }
    }
    out
}

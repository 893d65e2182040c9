//! What `phoenix doctor` found: one [`Check`] per thing looked at (ok, warn or fail, what was
//! found, and when not ok what to do), and how the list is shown: aligned lines for people, or
//! one JSON object.

use crate::ui::out::{self, Format};
use serde::Serialize;

/// How a check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    /// A run would work, but something deserves attention.
    Warn,
    /// A run would fail.
    Fail,
}

impl Level {
    /// The label that starts a human line, all of one width.
    fn label(self) -> &'static str {
        match self {
            Level::Ok => "ok   ",
            Level::Warn => "warn ",
            Level::Fail => "FAIL ",
        }
    }
}

/// One check: its name, how it went, what was found, and what to do when it is not ok.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Level,
    pub detail: String,
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status: Level::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn warn(
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            status: Level::Warn,
            fix: Some(fix.into()),
            ..Check::ok(name, detail)
        }
    }

    pub fn fail(
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            status: Level::Fail,
            ..Check::warn(name, detail, fix)
        }
    }
}

/// Every check, and whether none failed (a run would not fail on anything seen here).
#[derive(Debug, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
    pub ok: bool,
}

impl Report {
    pub fn new(checks: Vec<Check>) -> Report {
        let ok = checks.iter().all(|c| c.status != Level::Fail);
        Report { checks, ok }
    }

    fn count(&self, level: Level) -> usize {
        self.checks.iter().filter(|c| c.status == level).count()
    }

    /// The report as people read it: one aligned line per check, its fix below it, a summary.
    pub fn human(&self) -> String {
        let width = self.checks.iter().map(|c| c.name.chars().count()).max();
        let mut text = String::new();
        for c in &self.checks {
            let pad = width.unwrap_or(0).saturating_sub(c.name.chars().count()) + 2;
            text.push_str(c.status.label());
            text.push_str(&c.name);
            text.extend(std::iter::repeat_n(' ', pad));
            text.push_str(&c.detail);
            text.push('\n');
            if let Some(fix) = &c.fix {
                text.push_str(&format!("  fix: {fix}\n"));
            }
        }
        text.push_str(&self.summary());
        text.push('\n');
        text
    }

    fn summary(&self) -> String {
        let verdict = match self.ok {
            true => "ready for a first run",
            false => "a run would fail: fix the FAIL lines",
        };
        format!(
            "{} ok, {} warning(s), {} failed: {verdict}",
            self.count(Level::Ok),
            self.count(Level::Warn),
            self.count(Level::Fail)
        )
    }

    /// Prints the report on stdout in `format`.
    pub fn print(&self, format: Format) {
        match format {
            Format::Human => out::stdout(&self.human()),
            Format::Json => out::json(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_aligned_with_fixes_below_and_a_summary() {
        let r = Report::new(vec![
            Check::ok("cgroup", "v2"),
            Check::fail("bridge br0", "missing", "ip link add br0 type bridge"),
        ]);
        assert_eq!(
            r.human(),
            "ok   cgroup      v2\nFAIL bridge br0  missing\n  fix: ip link add br0 type bridge\n\
             1 ok, 0 warning(s), 1 failed: a run would fail: fix the FAIL lines\n"
        );
        assert!(!r.ok);
    }

    #[test]
    fn json_has_the_documented_fields() {
        let r = Report::new(vec![Check::warn("inotify", "128", "sysctl -w x=1")]);
        let v = serde_json::to_value(&r).expect("a report encodes");
        assert_eq!(v["ok"], true);
        assert_eq!(v["checks"][0]["status"], "warn");
        assert_eq!(v["checks"][0]["fix"], "sysctl -w x=1");
        assert_eq!(v["checks"][0]["name"], "inotify");
    }
}

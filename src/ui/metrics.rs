//! After each run, a Prometheus text-format file for node_exporter's textfile collector
//! (`--metrics-file`): each guest's recorded state and last outcome, its steps' durations, the
//! drift found and put back, and the run's duration. Written whole, then renamed into place, so
//! the collector never reads half a file.

use crate::converge::{Event, GuestSummary, Reporter, Summary};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Collects what a run reports, and writes the file when it finishes.
pub struct Metrics {
    path: PathBuf,
    steps: BTreeMap<(String, String), u64>,
    drift: BTreeMap<String, u64>,
    /// Drifted steps not yet put back, by guest and step.
    drifted: std::collections::BTreeSet<(String, String)>,
    corrected: BTreeMap<String, u64>,
    failed_steps: BTreeMap<String, u64>,
}

impl Metrics {
    pub fn new(path: PathBuf) -> Metrics {
        Metrics {
            path,
            steps: BTreeMap::new(),
            drift: BTreeMap::new(),
            drifted: Default::default(),
            corrected: BTreeMap::new(),
            failed_steps: BTreeMap::new(),
        }
    }

    /// Written whole and synced, then renamed over the last one; readable by the collector
    /// (node_exporter runs as its own user), whatever the umask.
    fn write(&self, summary: &Summary) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let tmp = self.path.with_extension("prom.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        f.write_all(self.render(summary).as_bytes())?;
        f.sync_all()?;
        std::fs::rename(tmp, &self.path)
    }

    /// The text exposition format, one family after another.
    pub fn render(&self, summary: &Summary) -> String {
        let mut out = String::new();
        let mut family = |name: &str, help: &str, samples: Vec<(String, String)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let secs = |ms: u64| format!("{:.3}", ms as f64 / 1000.0);
        // One sample per guest: its `id` and `name` labels, then `extra`'s label and value.
        let per_guest = |extra: &dyn Fn(&GuestSummary) -> (String, String)| {
            let guests = summary.guests.iter();
            guests
                .map(|g| {
                    let (label, value) = extra(g);
                    let (id, name) = (escape(&g.id), escape(&g.name));
                    (format!("{{id=\"{id}\",name=\"{name}\"{label}}}"), value)
                })
                .collect()
        };
        let count = |m: &BTreeMap<String, u64>, g: &GuestSummary| {
            m.get(&g.id).copied().unwrap_or(0).to_string()
        };
        family(
            "phoenix_run_duration_seconds",
            "Duration of the last run.",
            vec![(String::new(), secs(summary.duration_ms))],
        );
        family(
            "phoenix_run_timestamp_seconds",
            "When the last run ended (Unix time).",
            vec![(String::new(), now.to_string())],
        );
        family(
            "phoenix_run_commands",
            "Commands the last run ran, and of them, those that changed something.",
            vec![
                ("{kind=\"all\"}".into(), summary.commands.to_string()),
                (
                    "{kind=\"mutating\"}".into(),
                    summary.mutating_commands.to_string(),
                ),
            ],
        );
        family(
            "phoenix_guest_state",
            "The state recorded for each guest of the last run (1 for its state).",
            per_guest(&|g| (format!(",state=\"{}\"", escape(&g.state)), "1".into())),
        );
        family(
            "phoenix_guest_outcome",
            "Each guest's outcome in the last run (1 for its outcome).",
            per_guest(&|g| {
                (
                    format!(",outcome=\"{}\"", g.outcome.word().to_ascii_lowercase()),
                    "1".into(),
                )
            }),
        );
        family(
            "phoenix_guest_duration_seconds",
            "How long each guest took in the last run.",
            per_guest(&|g| (String::new(), secs(g.duration_ms))),
        );
        family(
            "phoenix_guest_steps_changed",
            "Steps that changed each guest in the last run.",
            per_guest(&|g| (String::new(), g.steps_changed.to_string())),
        );
        family(
            "phoenix_guest_drift_found",
            "Done steps the last run found drifted (each was run again).",
            per_guest(&|g| (String::new(), count(&self.drift, g))),
        );
        family(
            "phoenix_guest_drift_corrected",
            "Drifted steps the last run put back (ran again successfully).",
            per_guest(&|g| (String::new(), count(&self.corrected, g))),
        );
        family(
            "phoenix_guest_steps_failed",
            "Steps that failed in the last run.",
            per_guest(&|g| (String::new(), count(&self.failed_steps, g))),
        );
        family(
            "phoenix_step_duration_seconds",
            "Duration of each step the last run ran.",
            self.steps
                .iter()
                .map(|((id, step), ms)| {
                    (
                        format!("{{id=\"{}\",step=\"{}\"}}", escape(id), escape(step)),
                        secs(*ms),
                    )
                })
                .collect(),
        );
        out
    }
}

/// The step a drift event names (`start: state stopped → running`, `snapshot:golden: ...`); a
/// missing guest is put back by its `create`.
fn drifted_step(what: &str) -> String {
    match what.split_once(": ") {
        Some((step, _)) if !what.starts_with("guest is missing") => step.to_string(),
        _ => "create".to_string(),
    }
}

/// A label value, escaped as the text format asks.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Reporter for Metrics {
    fn event(&mut self, e: &Event) {
        match e {
            Event::StepSucceeded { id, step, ms, .. } => {
                self.steps.insert((id.clone(), step.clone()), *ms);
                if self.drifted.remove(&(id.clone(), step.clone())) {
                    *self.corrected.entry(id.clone()).or_default() += 1;
                }
            }
            Event::StepFailed { id, .. } => *self.failed_steps.entry(id.clone()).or_default() += 1,
            Event::Drift { id, what } => {
                *self.drift.entry(id.clone()).or_default() += 1;
                self.drifted.insert((id.clone(), drifted_step(what)));
            }
            Event::RunFinished { summary } => {
                if let Err(e) = self.write(summary) {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot write the metrics file");
                    crate::ui::out::err_line(&format!(
                        "warning: metrics file {}: {e}",
                        self.path.display()
                    ));
                }
            }
            _ => {}
        }
    }
}

/// Passes every event to each of its reporters, in order.
pub struct Tee(pub Vec<Box<dyn Reporter>>);

impl Reporter for Tee {
    fn event(&mut self, e: &Event) {
        for r in &mut self.0 {
            r.event(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GuestId;
    use crate::converge::Outcome;
    use crate::jobs::Label;

    #[test]
    fn every_family_is_declared_and_labels_are_escaped() {
        let mut m = Metrics::new(PathBuf::from("unused"));
        let label = Label::new("lxc", GuestId(950), "api \"prod\"");
        let mut g = GuestSummary::new(&label, Outcome::Converged);
        g.state = "completed".into();
        g.duration_ms = 1500;
        m.event(&Event::Drift {
            id: "950".into(),
            what: "snapshot:golden: snapshot golden".into(),
        });
        m.event(&Event::StepSucceeded {
            id: "950".into(),
            step: "snapshot:golden".into(),
            changed: true,
            ms: 250,
        });
        let summary = Summary {
            guests: vec![g],
            cancelled: false,
            duration_ms: 2000,
            commands: 9,
            mutating_commands: 2,
            command_ms: 100,
        };
        let text = m.render(&summary);
        for line in [
            r#"phoenix_guest_outcome{id="950",name="api \"prod\"",outcome="converged"} 1"#,
            r#"phoenix_guest_drift_found{id="950",name="api \"prod\""} 1"#,
            r#"phoenix_guest_drift_corrected{id="950",name="api \"prod\""} 1"#,
            r#"phoenix_guest_duration_seconds{id="950",name="api \"prod\""} 1.500"#,
            r#"phoenix_step_duration_seconds{id="950",step="snapshot:golden"} 0.250"#,
            r#"phoenix_run_commands{kind="mutating"} 2"#,
        ] {
            assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
        }
        let declared = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        assert_eq!(
            declared,
            text.lines().filter(|l| l.starts_with("# HELP ")).count()
        );
        for sample in text.lines().filter(|l| !l.starts_with('#')) {
            let family = sample.split(['{', ' ']).next().unwrap_or_default();
            assert!(text.contains(&format!("# TYPE {family} gauge")), "{sample}");
        }
    }
}

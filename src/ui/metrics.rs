//! After each run, a Prometheus text-format file for node_exporter's textfile collector
//! (`--metrics-file`): each guest's recorded state and last outcome, its steps' durations, the
//! drift found and put back, and the run's duration. Written whole, then renamed into place, so
//! the collector never reads half a file.

use crate::converge::{Event, Reporter, Summary};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Collects what a run reports, and writes the file when it finishes.
pub struct Metrics {
    path: PathBuf,
    steps: BTreeMap<(String, String), u64>,
    drift: BTreeMap<String, u64>,
    failed_steps: BTreeMap<String, u64>,
}

impl Metrics {
    pub fn new(path: PathBuf) -> Metrics {
        Metrics {
            path,
            steps: BTreeMap::new(),
            drift: BTreeMap::new(),
            failed_steps: BTreeMap::new(),
        }
    }

    fn write(&self, summary: &Summary) -> std::io::Result<()> {
        let tmp = self.path.with_extension("prom.tmp");
        std::fs::write(&tmp, self.render(summary))?;
        std::fs::rename(tmp, &self.path)
    }

    /// The text exposition format, one family after another.
    pub fn render(&self, summary: &Summary) -> String {
        let mut out = String::new();
        let mut family = |name: &str, help: &str, kind: &str, samples: Vec<(String, String)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let secs = |ms: u64| format!("{:.3}", ms as f64 / 1000.0);
        family(
            "phoenix_run_duration_seconds",
            "Duration of the last run.",
            "gauge",
            vec![(String::new(), secs(summary.duration_ms))],
        );
        family(
            "phoenix_run_timestamp_seconds",
            "When the last run ended (Unix time).",
            "gauge",
            vec![(String::new(), now.to_string())],
        );
        family(
            "phoenix_run_commands",
            "Commands the last run ran, and of them, those that changed something.",
            "gauge",
            vec![
                ("{kind=\"all\"}".into(), summary.commands.to_string()),
                (
                    "{kind=\"mutating\"}".into(),
                    summary.mutating_commands.to_string(),
                ),
            ],
        );
        let guest =
            |id: &str, name: &str| format!("id=\"{}\",name=\"{}\"", escape(id), escape(name));
        family(
            "phoenix_guest_state",
            "The state recorded for each guest of the last run (1 for its state).",
            "gauge",
            summary
                .guests
                .iter()
                .map(|g| {
                    (
                        format!(
                            "{{{},state=\"{}\"}}",
                            guest(&g.id, &g.name),
                            escape(&g.state)
                        ),
                        "1".into(),
                    )
                })
                .collect(),
        );
        family(
            "phoenix_guest_outcome",
            "Each guest's outcome in the last run (1 for its outcome).",
            "gauge",
            summary
                .guests
                .iter()
                .map(|g| {
                    (
                        format!(
                            "{{{},outcome=\"{}\"}}",
                            guest(&g.id, &g.name),
                            g.outcome.word().to_ascii_lowercase()
                        ),
                        "1".into(),
                    )
                })
                .collect(),
        );
        family(
            "phoenix_guest_duration_seconds",
            "How long each guest took in the last run.",
            "gauge",
            summary
                .guests
                .iter()
                .map(|g| {
                    (
                        format!("{{{}}}", guest(&g.id, &g.name)),
                        secs(g.duration_ms),
                    )
                })
                .collect(),
        );
        family(
            "phoenix_guest_steps_changed",
            "Steps that changed each guest in the last run.",
            "gauge",
            summary
                .guests
                .iter()
                .map(|g| {
                    (
                        format!("{{{}}}", guest(&g.id, &g.name)),
                        g.steps_changed.to_string(),
                    )
                })
                .collect(),
        );
        let by_id = |m: &BTreeMap<String, u64>| {
            summary
                .guests
                .iter()
                .map(|g| {
                    (
                        format!("{{{}}}", guest(&g.id, &g.name)),
                        m.get(&g.id).copied().unwrap_or(0).to_string(),
                    )
                })
                .collect()
        };
        family(
            "phoenix_guest_drift_found",
            "Done steps the last run found drifted (each was run again).",
            "gauge",
            by_id(&self.drift),
        );
        family(
            "phoenix_guest_steps_failed",
            "Steps that failed in the last run.",
            "gauge",
            by_id(&self.failed_steps),
        );
        family(
            "phoenix_step_duration_seconds",
            "Duration of each step the last run ran.",
            "gauge",
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
            }
            Event::StepFailed { id, .. } => *self.failed_steps.entry(id.clone()).or_default() += 1,
            Event::Drift { id, .. } => *self.drift.entry(id.clone()).or_default() += 1,
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

//! Progress for people: on a terminal, one indicatif line per active guest (state, step k/n,
//! elapsed); otherwise plain lines, one per state entered, change, failure and guest finished.

use crate::converge::{Event, Outcome, Reporter};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

pub struct Human {
    bars: Option<MultiProgress>,
    active: HashMap<String, ProgressBar>,
    names: HashMap<String, String>,
    state: HashMap<String, String>,
    verbose: bool,
    quiet: bool,
}

impl Human {
    pub fn new(verbose: bool, quiet: bool) -> Human {
        let bars = (std::io::stderr().is_terminal() && !quiet)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Human {
            bars,
            active: HashMap::new(),
            names: HashMap::new(),
            state: HashMap::new(),
            verbose,
            quiet,
        }
    }

    fn line(&self, text: String) {
        if self.quiet {
            return;
        }
        match &self.bars {
            Some(m) => {
                let _ = m.println(text);
            }
            None => {
                let _ = writeln!(std::io::stderr(), "{text}");
            }
        }
    }

    fn label(&self, id: &str) -> String {
        match self.names.get(id) {
            Some(n) => format!("{id} {n}"),
            None => id.to_string(),
        }
    }
}

impl Reporter for Human {
    fn event(&mut self, e: &Event) {
        match e {
            Event::GuestStarted {
                id,
                name,
                steps,
                pending,
            } => {
                self.names.insert(id.clone(), name.clone());
                if *pending == 0 {
                    return;
                }
                if let Some(m) = &self.bars {
                    let bar = m.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {prefix:.bold} {msg} [{elapsed}]")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_prefix(self.label(id));
                    bar.enable_steady_tick(Duration::from_millis(120));
                    self.active.insert(id.clone(), bar);
                } else if self.verbose {
                    self.line(format!(
                        "{}: {pending} of {steps} step(s) to run",
                        self.label(id)
                    ));
                }
            }
            Event::StateEntered { id, state } => {
                self.state.insert(id.clone(), state.clone());
                if self.bars.is_none() {
                    self.line(format!("{}: {state}", self.label(id)));
                }
            }
            Event::StepStarted {
                id,
                step,
                index,
                total,
                attempt,
            } => {
                if let Some(bar) = self.active.get(id) {
                    let state = self.state.get(id).map(String::as_str).unwrap_or("defined");
                    let retry = if *attempt > 1 {
                        format!(" (attempt {attempt})")
                    } else {
                        String::new()
                    };
                    bar.set_message(format!("{state} · {step} ({index}/{total}){retry}"));
                } else if self.verbose {
                    self.line(format!("{}: {step} ({index}/{total}) ...", self.label(id)));
                }
            }
            Event::StepSucceeded {
                id,
                step,
                changed,
                ms,
            } => {
                if *changed || self.verbose {
                    let what = if *changed { "changed" } else { "ok" };
                    let text = format!("{}: {step} {what} ({ms} ms)", self.label(id));
                    if self.bars.is_none() || self.verbose {
                        self.line(text);
                    }
                }
            }
            Event::StepFailed {
                id,
                step,
                error,
                output_tail,
            } => {
                let mut text = format!("{}: {step} FAILED: {error}", self.label(id));
                for l in output_tail
                    .lines()
                    .rev()
                    .take(10)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                {
                    text.push_str(&format!("\n    | {l}"));
                }
                self.line(text);
            }
            Event::StepPlanned {
                id,
                step,
                up_to_date,
            } => {
                if !up_to_date || self.verbose {
                    let what = if *up_to_date {
                        "up to date"
                    } else {
                        "would run"
                    };
                    self.line(format!("{}: {step}: {what}", self.label(id)));
                }
            }
            Event::Drift { id, what } => self.line(format!("{}: drift: {what}", self.label(id))),
            Event::Warning { id, message } => {
                self.line(format!("warning: {}: {message}", self.label(id)))
            }
            Event::GuestFinished { id, outcome, ms } => {
                if let Some(bar) = self.active.remove(id) {
                    bar.finish_and_clear();
                }
                let text = match outcome {
                    Outcome::Unchanged if !self.verbose => return,
                    Outcome::Blocked => {
                        format!("{}: blocked (a prerequisite failed)", self.label(id))
                    }
                    other => format!(
                        "{}: {} in {:.1}s",
                        self.label(id),
                        outcome_word(*other),
                        *ms as f64 / 1000.0
                    ),
                };
                self.line(text);
            }
            Event::RunFinished { .. } => {}
        }
    }
}

pub fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Unchanged => "unchanged",
        Outcome::Converged => "converged",
        Outcome::Failed => "FAILED",
        Outcome::Blocked => "blocked",
        Outcome::Cancelled => "cancelled",
        Outcome::Planned => "planned",
    }
}

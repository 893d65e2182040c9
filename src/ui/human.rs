//! Progress for people. On a terminal: a fleet line (completed / running / waiting / failed /
//! blocked, elapsed) above one indicatif line per active guest (state · step k/n, elapsed).
//! Otherwise plain lines: states entered, changes, failures, guests finished, and the fleet line
//! after each guest.

use crate::converge::{Event, Outcome, Reporter};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Fleet {
    total: usize,
    running: HashSet<String>,
    completed: usize,
    failed: usize,
    blocked: usize,
    cancelled: usize,
}

pub struct Human {
    bars: Option<MultiProgress>,
    fleet_bar: Option<ProgressBar>,
    active: HashMap<String, ProgressBar>,
    names: HashMap<String, String>,
    state: HashMap<String, String>,
    fleet: Fleet,
    started: Instant,
    verbose: bool,
    quiet: bool,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
}

impl Human {
    pub fn new(verbose: bool, quiet: bool) -> Human {
        let bars = (std::io::stderr().is_terminal() && !quiet)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Human {
            bars,
            fleet_bar: None,
            active: HashMap::new(),
            names: HashMap::new(),
            state: HashMap::new(),
            fleet: Fleet::default(),
            started: Instant::now(),
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

    /// `fleet: 3 completed · 2 running · 5 waiting · 0 failed · 0 blocked · 12.3s`
    pub fn fleet_line(&self) -> String {
        let f = &self.fleet;
        let waiting = f
            .total
            .saturating_sub(f.completed + f.running.len() + f.failed + f.blocked + f.cancelled);
        let mut s = format!(
            "fleet: {} completed · {} running · {waiting} waiting · {} failed · {} blocked",
            f.completed,
            f.running.len(),
            f.failed,
            f.blocked
        );
        if f.cancelled > 0 {
            s.push_str(&format!(" · {} cancelled", f.cancelled));
        }
        s.push_str(&format!(" · {:.1}s", self.started.elapsed().as_secs_f64()));
        s
    }

    fn update_fleet(&self) {
        if let Some(bar) = &self.fleet_bar {
            bar.set_message(self.fleet_line());
        }
    }
}

impl Reporter for Human {
    fn event(&mut self, e: &Event) {
        match e {
            Event::RunStarted { guests, jobs } => self.on_run_started(*guests, *jobs),
            Event::GuestStarted {
                id,
                name,
                steps,
                pending,
            } => self.on_guest_started(id, name, *steps, *pending),
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
            } => self.on_step_started(id, step, (*index, *total), *attempt),
            Event::StepSucceeded {
                id,
                step,
                changed,
                ms,
            } => {
                if (*changed && self.bars.is_none()) || self.verbose {
                    let what = if *changed { "changed" } else { "ok" };
                    self.line(format!("{}: {step} {what} ({ms} ms)", self.label(id)));
                }
            }
            Event::StepFailed {
                id,
                step,
                error,
                reboot_required: true,
                ..
            } => {
                let text = format!("{}: {step} waits for a reboot: {error}", self.label(id));
                self.line(text);
            }
            Event::StepFailed {
                id,
                step,
                error,
                output_tail,
                ..
            } => self.on_step_failed(id, step, error, output_tail),
            // A dry run's plan goes to stdout, in order: each step that would run, then the
            // commands it would run.
            Event::StepPlanned {
                id,
                step,
                up_to_date,
            } => {
                if !up_to_date {
                    super::out::line(&format!("would run step {step} of {id}:"));
                } else if self.verbose {
                    self.line(format!("{}: {step}: up to date", self.label(id)));
                }
            }
            Event::WouldRun { cmd, .. } => super::out::line(&format!("  would run: {cmd}")),
            Event::Command {
                id, cmd, code, ms, ..
            } => self.on_command(id.as_deref(), cmd, *code, *ms),
            Event::Cancelling { message } => self.line(message.clone()),
            Event::Drift { id, what } => self.line(format!("{}: drift: {what}", self.label(id))),
            Event::Note { id, step, message } => {
                self.line(format!("{}: {step}: {message}", self.label(id)))
            }
            Event::Warning { id, message } => {
                self.line(format!("warning: {}: {message}", self.label(id)))
            }
            Event::GuestFinished {
                id,
                outcome,
                ms,
                error,
            } => self.on_guest_finished(id, *outcome, *ms, error.as_deref()),
            Event::RunFinished { .. } => {
                if let Some(bar) = self.fleet_bar.take() {
                    bar.finish_and_clear();
                }
            }
        }
    }
}

impl Human {
    fn on_run_started(&mut self, guests: usize, jobs: usize) {
        self.fleet.total = guests;
        self.started = Instant::now();
        if let Some(m) = &self.bars {
            let bar = m.add(ProgressBar::new_spinner());
            bar.set_style(style("{msg}"));
            bar.enable_steady_tick(Duration::from_millis(250));
            self.fleet_bar = Some(bar);
            self.update_fleet();
        } else if self.verbose {
            self.line(format!("fleet: {guests} guest(s), up to {jobs} at once"));
        }
    }

    fn on_guest_started(&mut self, id: &str, name: &str, steps: usize, pending: usize) {
        self.names.insert(id.to_string(), name.to_string());
        self.fleet.running.insert(id.to_string());
        self.update_fleet();
        if pending == 0 {
            return;
        }
        if let Some(m) = &self.bars {
            let bar = m.add(ProgressBar::new_spinner());
            bar.set_style(style("{spinner} {prefix:.bold} {msg} [{elapsed}]"));
            bar.set_prefix(self.label(id));
            bar.enable_steady_tick(Duration::from_millis(120));
            self.active.insert(id.to_string(), bar);
        } else if self.verbose {
            self.line(format!(
                "{}: {pending} of {steps} step(s) to run",
                self.label(id)
            ));
        }
    }

    fn on_step_started(
        &mut self,
        id: &str,
        step: &str,
        (index, total): (usize, usize),
        attempt: u32,
    ) {
        if let Some(bar) = self.active.get(id) {
            let state = self.state.get(id).map(String::as_str).unwrap_or("defined");
            let retry = if attempt > 1 {
                format!(" (attempt {attempt})")
            } else {
                String::new()
            };
            bar.set_message(format!("{state} · {step} ({index}/{total}){retry}"));
        } else if self.verbose {
            self.line(format!("{}: {step} ({index}/{total}) ...", self.label(id)));
        }
    }

    /// The error and the last ten lines of what failed.
    fn on_step_failed(&mut self, id: &str, step: &str, error: &str, output_tail: &str) {
        let mut text = format!("{}: {step} FAILED: {error}", self.label(id));
        let lines: Vec<&str> = output_tail.lines().collect();
        for l in &lines[lines.len().saturating_sub(10)..] {
            text.push_str(&format!("\n    | {l}"));
        }
        self.line(text);
    }

    fn on_command(&mut self, id: Option<&str>, cmd: &str, code: Option<i32>, ms: u64) {
        if !self.verbose {
            return;
        }
        let who = id
            .map(|i| self.label(i))
            .unwrap_or_else(|| "phoenix".into());
        let code = code.map_or("signal".to_string(), |c| c.to_string());
        self.line(format!("{who}: $ {cmd}  [exit {code}, {ms} ms]"));
    }

    fn on_guest_finished(&mut self, id: &str, outcome: Outcome, ms: u64, error: Option<&str>) {
        if let Some(bar) = self.active.remove(id) {
            bar.finish_and_clear();
        }
        self.fleet.running.remove(id);
        match outcome {
            Outcome::Failed | Outcome::Unsupported => self.fleet.failed += 1,
            Outcome::Blocked => self.fleet.blocked += 1,
            Outcome::Cancelled => self.fleet.cancelled += 1,
            _ => self.fleet.completed += 1,
        }
        self.update_fleet();
        let label = self.label(id);
        let text = match outcome {
            Outcome::Unchanged if !self.verbose => None,
            Outcome::Blocked => Some(format!("{label}: blocked (a prerequisite failed)")),
            Outcome::Unsupported => Some(format!(
                "{label}: cannot be built here: {}",
                error.unwrap_or_default()
            )),
            other => Some(format!(
                "{label}: {} in {:.1}s",
                other.word(),
                ms as f64 / 1000.0
            )),
        };
        if let Some(t) = text {
            self.line(t);
        }
        let worth_a_fleet_line = self.verbose || outcome != Outcome::Unchanged;
        if self.bars.is_none() && self.fleet.total > 1 && !self.quiet && worth_a_fleet_line {
            self.line(self.fleet_line());
        }
    }
}

//! A `phoenix run --all` in flight, read as it goes: the steps it starts, one by one, so that a
//! test can kill it inside any of them (`StepStarted` is durable before its event is printed).

use super::Lab;
use serde_json::Value;
use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Stdio};

pub struct LiveRun {
    pub child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl LiveRun {
    /// Starts `phoenix --output json run --all` with `env`.
    pub fn start(lab: &Lab, env: &[(&str, &str)]) -> LiveRun {
        let mut cmd = lab.phoenix();
        cmd.envs(env.iter().copied())
            .args(["--output", "json", "run", "--all"]);
        LiveRun::of(cmd)
    }

    /// Starts `cmd` (a `phoenix --output json ...`), reading its events as they come.
    pub fn of(mut cmd: std::process::Command) -> LiveRun {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("phoenix");
        let stdout = child.stdout.take().expect("piped stdout");
        LiveRun {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// The next step started, as `(guest id, step)`; `None` once the run's output ends.
    pub fn next_step(&mut self) -> Option<(String, String)> {
        for line in self.lines.by_ref() {
            let Ok(e) = serde_json::from_str::<Value>(&line.ok()?) else {
                continue;
            };
            if e["event"] == "step_started" {
                let field = |k: &str| e[k].as_str().unwrap_or_default().to_string();
                return Some((field("id"), field("step")));
            }
        }
        None
    }

    /// SIGKILL, and reaped.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for it to end by itself.
    pub fn finish(mut self) -> std::process::ExitStatus {
        self.child.wait().expect("wait")
    }
}

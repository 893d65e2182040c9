//! Guest scripts run exactly once across crashes, through a small runner in the guest
//! (`run_once.sh`, installed as `/var/lib/phoenix/bin/phoenix-run`). The runner holds a lock for
//! the life of the instance, keeps its status (token, pid, start, exit) and log under
//! `/var/lib/phoenix/runs/<step>/`, detaches the instance so it outlives a killed `phoenix run`,
//! `lxc-attach`, `pct exec` or SSH connection, kills the script's whole process group at the step
//! timeout, and writes the step's marker itself on success.
//!
//! The step saves the instance's token in its intent before it starts it; a redo with that token
//! waits for the instance still in flight (streaming its log) or takes the result of the one that
//! finished, and starts a new instance only when none is in flight. The one case where a script
//! runs a second time is an instance that vanished without a result (the guest restarted under
//! it); the runner says so in the step's output.

use super::scripts::Script;
use super::InGuest;
use crate::exec::{Cmd, Output};
use crate::jobs::{Attempt, StepError};
use std::time::Duration;

const RUNNER: &[u8] = include_bytes!("run_once.sh");
const RUNNER_PATH: &str = "/var/lib/phoenix/bin/phoenix-run";
const RUNS_DIR: &str = "/var/lib/phoenix/runs";
const RESULT: &str = "@@phoenix-run ";
/// The runner's own failure (a tool missing in the guest, its lock unusable), before any script.
const RUNNER_FAILED: i32 = 125;
/// Beyond the step timeout: the runner's TERM-then-KILL of the script's group.
const GRACE: Duration = Duration::from_secs(30);

/// What the runner reported on its last line.
#[derive(Debug, PartialEq, Eq)]
struct Finished {
    exit: i32,
    attached: bool,
    started: String,
}

/// The token of the instance an earlier attempt started with these inputs (`digest`) and did not
/// see finish: only the runner can say whether it is in flight or how it ended. A token saved
/// with other inputs is not this step's: a new instance runs (after that one, if in flight).
pub fn pending(at: &Attempt<'_>, digest: &str) -> Option<String> {
    let tag = tag(digest);
    at.intent.token.clone().filter(|t| t.starts_with(&tag))
}

fn tag(digest: &str) -> String {
    crate::digest::hex(digest.as_bytes())[..12].to_string()
}

/// Runs `script` in the guest once: re-attaching to the instance an earlier attempt started.
pub fn run(
    cx: &dyn InGuest,
    at: &mut Attempt<'_>,
    script: &Script,
    digest: &str,
) -> Result<(), StepError> {
    cx.exec().push(RUNNER, RUNNER_PATH, 0o755)?;
    let token = match pending(at, digest) {
        Some(t) => t,
        None => {
            let t = format!(
                "{}-{}-{}",
                tag(digest),
                state_machine::now_ms(),
                std::process::id()
            );
            at.save(|i| i.token = Some(t.clone()))?;
            t
        }
    };
    let dir = run_dir(script);
    let runner = command(cx, script, &token, digest);
    let out = super::follow::exec_following(cx, &runner, &dir, &token, &script.step)?;
    if out.skipped {
        return Ok(());
    }
    let (result, tail) = parse(&out);
    if result.is_none() && out.code == Some(RUNNER_FAILED) {
        at.save(|i| i.token = None)?;
        let what = format!("{}: the guest-side runner could not run it", script.label);
        return Err(StepError::new(what, tail));
    }
    let Some(result) = result else {
        return Err(StepError::new(
            format!(
                "{}: lost contact with the script in the guest ({}); the next run re-attaches to it",
                script.label,
                lost(&out)
            ),
            tail,
        ));
    };
    at.save(|i| i.token = None)?;
    if result.attached {
        at.note(format!(
            "re-attached to the instance an earlier run started (at {} epoch s)",
            result.started
        ));
    }
    match result.exit {
        0 => Ok(()),
        124 => Err(StepError::new(
            format!(
                "{} timed out after {}s; its process group in the guest was killed",
                script.label,
                cx.step_timeout().as_secs()
            ),
            tail,
        )),
        code => Err(StepError::new(
            format!("{} exited with code {code}", script.label),
            tail,
        )),
    }
}

/// Where the runner keeps the step's instance: its lock, status and log.
fn run_dir(script: &Script) -> String {
    format!("{RUNS_DIR}/{}", script.step.replace(':', "_"))
}

fn command(cx: &dyn InGuest, script: &Script, token: &str, digest: &str) -> Cmd {
    let dir = run_dir(script);
    let timeout = cx.step_timeout().as_secs().to_string();
    let (marker, path) = (script.marker(), script.path());
    let argv = [
        "/bin/sh",
        RUNNER_PATH,
        &dir,
        token,
        &timeout,
        &marker,
        digest,
        "--",
        &path,
    ];
    let mut argv: Vec<String> = argv.into_iter().map(String::from).collect();
    argv.extend(script.args.iter().cloned());
    // The runner may first wait for an earlier instance (with other inputs) to end.
    let mut cmd = Cmd::act(argv).timeout(cx.step_timeout() * 2 + GRACE);
    cmd.env = script.env.clone();
    cmd
}

/// The runner's result (the last line of its stdout, which the runner always prints last, so a
/// script cannot fake it), and the output's tail without it.
fn parse(out: &Output) -> (Option<Finished>, String) {
    let stdout = out.stdout_str();
    let result = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .and_then(|l| l.strip_prefix(RESULT))
        .map(fields_of);
    let tail = out.tail(41);
    let mut kept: Vec<&str> = tail.lines().filter(|l| !l.starts_with(RESULT)).collect();
    while kept.last().is_some_and(|l| l.trim().is_empty()) {
        kept.pop();
    }
    (result, kept.join("\n"))
}

fn fields_of(fields: &str) -> Finished {
    let get = |k: &str| {
        fields
            .split_whitespace()
            .find_map(|f| f.strip_prefix(k)?.strip_prefix('='))
            .unwrap_or_default()
            .to_string()
    };
    Finished {
        exit: get("exit").parse().unwrap_or(125),
        attached: get("attached") == "1",
        started: get("started"),
    }
}

fn lost(out: &Output) -> String {
    match (out.timed_out, out.code) {
        (true, _) => "no result within the step timeout".into(),
        (false, Some(c)) => format!("the runner exited with {c} and no result"),
        (false, None) => "the connection was killed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::Intent;

    #[test]
    fn only_a_token_saved_with_the_same_inputs_is_pending() {
        let mut save = |_: &Intent| Ok(());
        let mut at = Attempt::new(Intent::default(), &mut save);
        assert_eq!(pending(&at, "inputs-1"), None);
        at.intent.token = Some(format!("{}-1733-42", tag("inputs-1")));
        assert_eq!(pending(&at, "inputs-1"), at.intent.token);
        assert_eq!(pending(&at, "inputs-2"), None);
    }

    #[test]
    fn the_result_line_is_read_and_taken_out_of_the_output() {
        let out = Output {
            code: Some(3),
            stdout: b"working\nfailed\n\n@@phoenix-run exit=3 attached=1 started=1733\n".to_vec(),
            stderr: Vec::new(),
            duration: Duration::ZERO,
            timed_out: false,
            skipped: false,
        };
        let (result, tail) = parse(&out);
        assert_eq!(
            result,
            Some(Finished {
                exit: 3,
                attached: true,
                started: "1733".into()
            })
        );
        assert_eq!(tail, "working\nfailed");
        let faked = Output {
            stdout: b"@@phoenix-run exit=0 attached=0 started=1\nreal\n\n@@phoenix-run exit=3 attached=0 started=2\n".to_vec(),
            ..out.clone()
        };
        assert_eq!(
            parse(&faked).0.map(|r| r.exit),
            Some(3),
            "only the last line counts"
        );
        let no_result = Output {
            stdout: b"@@phoenix-run exit=0 attached=0 started=1\nthen cut\n".to_vec(),
            ..out.clone()
        };
        assert_eq!(parse(&no_result).0, None);
        let cut = Output {
            stdout: b"working\n".to_vec(),
            code: None,
            ..out
        };
        assert_eq!(parse(&cut).0, None);
        assert_eq!(lost(&cut), "the connection was killed");
    }
}

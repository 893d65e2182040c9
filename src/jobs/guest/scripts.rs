//! Scripts that run inside guests: features, the application script, health checks. Features and
//! the application script run once per set of inputs: each step's digest covers the script's
//! body, its environment and the config keys it reads, and the guest-side runner ([`run_once`])
//! leaves a marker holding that digest.
//!
//! A script says what it reads in a header comment, among the comment lines at its top:
//!
//! ```sh
//! # phoenix-reads: name vllm_engine_config
//! ```
//!
//! The keys are those of the guest's JSON (`PHOENIX_CONFIG`); `# phoenix-reads:` with nothing
//! after it reads no key, and a script without the header reads the whole config. A script
//! receives only what it declares: `PHOENIX_CONFIG` holds those keys, and the environment carries
//! `PHOENIX_FEATURE`, `PHOENIX_CONFIG`, `PHOENIX_MODE=apply`, plus `PHOENIX_CTID` and
//! `PHOENIX_GUEST_ID` for `id`, `PHOENIX_GUEST_NAME` for `name`, `PHOENIX_BOOTSTRAP_CA_URL` for
//! `bootstrap_ca_url`, `PHOENIX_NVIDIA_{DRIVER_VERSION,REPO_URL,RUNFILE_URL}` for `nvidia`.

use super::run_once;
use super::upstream::{self, Staged};
use super::InGuest;
use crate::config::common::GuestHealthCheck;
use crate::config::guest::GuestBase;
use crate::exec::Cmd;
use crate::jobs::{Attempt, StepError};
use serde_json::{Map, Value};
use std::time::Duration;

const RUN_DIR: &str = "/var/lib/phoenix/run";
/// Waits (at most two minutes) until a systemd guest has finished booting; any other returns.
const BOOT_SETTLED: &str = "command -v systemctl >/dev/null 2>&1 || exit 0; \
    timeout 120 systemctl is-system-running --wait >/dev/null 2>&1; exit 0";
const BOOT_WAIT: Duration = Duration::from_secs(130);
const MARKER_DIR: &str = "/var/lib/phoenix/markers";
const HEADER: &str = "phoenix-reads:";
/// The header of a script that has a `--check` mode (`# phoenix-check-mode: yes`).
const CHECK_HEADER: &str = "phoenix-check-mode:";

/// What a script reads of its guest's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reads {
    /// No header: the whole config.
    All,
    /// The keys its header names (possibly none).
    Keys(Vec<String>),
}

/// The value of header `name` among the comment lines at the top of `body`.
fn header(body: &[u8], name: &str) -> Option<String> {
    String::from_utf8_lossy(body)
        .lines()
        .take_while(|l| l.starts_with('#'))
        .find_map(|l| {
            let v = l.trim_start_matches('#').trim().strip_prefix(name)?;
            Some(v.trim().to_string())
        })
}

/// Whether the script says it has a `--check` mode that changes nothing.
pub fn has_check_mode(body: &[u8]) -> bool {
    header(body, CHECK_HEADER).is_some_and(|v| v == "yes")
}

impl Reads {
    /// The header among the comment lines at the top of `body` (after the `#!` line).
    pub fn of(body: &[u8]) -> Reads {
        match header(body, HEADER) {
            Some(keys) => Reads::Keys(keys.split_whitespace().map(String::from).collect()),
            None => Reads::All,
        }
    }

    fn has(&self, key: &str) -> bool {
        match self {
            Reads::All => true,
            Reads::Keys(keys) => keys.iter().any(|k| k == key),
        }
    }
}

/// One guest script as a step runs it.
#[derive(Debug, Clone)]
pub struct Script {
    /// The step it is (`feature:docker`, `application_script`).
    pub step: String,
    /// `PHOENIX_FEATURE`.
    pub label: String,
    pub body: Vec<u8>,
    pub args: Vec<String>,
    /// What it is given: the config it reads, as pushed to `PHOENIX_CONFIG`, and its environment.
    pub config: Value,
    pub env: Vec<(String, String)>,
    reads: Reads,
    /// It has a `--check` mode (`# phoenix-check-mode: yes`).
    pub check_mode: bool,
    /// Files put beside it before it runs (an upstream application script's helpers).
    staged: Vec<Staged>,
    /// Where it is put, when not in Phoenix's run directory.
    at: Option<String>,
}

impl Script {
    /// A script of the guest `guest` (a container or a VM, as configured), whose common part
    /// is `base`.
    pub fn new(
        guest: &impl serde::Serialize,
        base: &GuestBase,
        step: &str,
        label: &str,
        body: Vec<u8>,
        args: Vec<String>,
    ) -> Script {
        let reads = Reads::of(&body);
        // Serializing a guest cannot fail: its maps have string keys.
        let all = serde_json::to_value(guest).unwrap_or(Value::Null);
        let env = env(&all, base, step, label, &reads);
        let config = config(all, &reads);
        Script {
            step: step.to_string(),
            label: label.to_string(),
            check_mode: has_check_mode(&body),
            staged: Vec::new(),
            at: None,
            body,
            args,
            config,
            env,
            reads,
        }
    }

    /// An upstream application script (`name` as the config gives it): run from `/tmp/phoenix_run`
    /// beside the helper library and config copies it expects ([`upstream`]). The library counts
    /// among its inputs; the copies of the other files do not (their every change would run every
    /// application script again): they are staged fresh for each run of it.
    pub fn upstream(mut self, fleet: &crate::config::Fleet, name: &str) -> Script {
        self.staged = upstream::staged(fleet);
        self.at = Some(upstream::script_path(name));
        self
    }

    /// The named inputs its step's digest covers: `body`, `env` (its fixed environment and
    /// arguments; the variables that carry a key count as that key), and each key it reads
    /// (`config` for the whole of it); `phoenix plan` names the ones that changed.
    pub fn parts(&self) -> Vec<(String, String)> {
        let env = fixed_env(&self.step, &self.label);
        let mut parts = vec![
            ("body".to_string(), crate::digest::hex(&self.body)),
            ("env".to_string(), format!("{env:?} {:?}", self.args)),
        ];
        match &self.reads {
            Reads::All => parts.push(("config".into(), self.config.to_string())),
            Reads::Keys(keys) => parts.extend(keys.iter().map(|k| {
                let v = self.config.get(k).cloned().unwrap_or(Value::Null);
                (k.clone(), v.to_string())
            })),
        }
        if self.at.is_some() {
            parts.push(("helpers".into(), crate::digest::hex(upstream::utils())));
        }
        parts
    }

    pub fn path(&self) -> String {
        self.at
            .clone()
            .unwrap_or_else(|| run_file(&self.step, "sh"))
    }

    pub fn config_path(&self) -> String {
        run_file(&self.step, "json")
    }

    pub fn marker(&self) -> String {
        format!("{MARKER_DIR}/{}.digest", self.step.replace(':', "_"))
    }
}

/// Where a step's files go in the guest: `/var/lib/phoenix/run/feature_docker.sh`.
fn run_file(step: &str, ext: &str) -> String {
    format!("{RUN_DIR}/{}.{ext}", step.replace(':', "_"))
}

/// The guest's config as a script that reads `reads` sees it.
fn config(all: Value, reads: &Reads) -> Value {
    match reads {
        Reads::All => all,
        Reads::Keys(keys) => {
            let mut m = Map::new();
            for k in keys {
                m.insert(k.clone(), all.get(k).cloned().unwrap_or(Value::Null));
            }
            Value::Object(m)
        }
    }
}

/// What every script is given, whatever it reads.
fn fixed_env(step: &str, label: &str) -> Vec<(String, String)> {
    vec![
        ("PHOENIX_FEATURE".to_string(), label.to_string()),
        ("PHOENIX_CONFIG".to_string(), run_file(step, "json")),
        ("PHOENIX_MODE".to_string(), "apply".to_string()),
    ]
}

/// The fixed environment, and the variables that carry the keys it reads (their values from the
/// guest's config as serialized, `all`).
fn env(
    all: &Value,
    base: &GuestBase,
    step: &str,
    label: &str,
    reads: &Reads,
) -> Vec<(String, String)> {
    let mut e = fixed_env(step, label);
    if reads.has("id") {
        e.push(("PHOENIX_CTID".into(), base.id.to_string()));
        e.push(("PHOENIX_GUEST_ID".into(), base.id.to_string()));
    }
    if reads.has("name") {
        e.push(("PHOENIX_GUEST_NAME".into(), base.name.clone()));
    }
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(String::from);
    if let Some(url) = text(all.get("bootstrap_ca_url")).filter(|_| reads.has("bootstrap_ca_url")) {
        e.push(("PHOENIX_BOOTSTRAP_CA_URL".into(), url));
    }
    let nvidia = [
        ("PHOENIX_NVIDIA_DRIVER_VERSION", "driver_version"),
        ("PHOENIX_NVIDIA_REPO_URL", "repo_url"),
        ("PHOENIX_NVIDIA_RUNFILE_URL", "runfile_url"),
    ];
    for (k, key) in nvidia.into_iter().filter(|_| reads.has("nvidia")) {
        if let Some(v) = text(all.get("nvidia").and_then(|n| n.get(key))) {
            e.push((k.to_string(), v));
        }
    }
    e
}

/// Whether the guest's marker for `script` holds `digest`.
pub fn marker_matches(cx: &dyn InGuest, script: &Script, digest: &str) -> Result<bool, StepError> {
    if !cx.runs()? {
        return Ok(false);
    }
    let cmd = Cmd::probe(["cat", &script.marker()]).timeout(Duration::from_secs(20));
    let out = cx.exec().exec(&cmd)?;
    Ok(out.success() && out.stdout_str().trim() == digest)
}

/// Pushes the script and the config it reads, and runs it once through the guest's runner. A
/// redo that re-attaches pushes nothing: the instance may be reading those files.
pub fn run(
    cx: &dyn InGuest,
    at: &mut Attempt<'_>,
    script: &Script,
    digest: &str,
) -> Result<(), StepError> {
    if run_once::pending(at, digest).is_none() {
        push(cx, script)?;
    }
    run_once::run(cx, at, script, digest)
}

/// Puts the script in the guest, with the config it reads and what it expects beside it.
fn push(cx: &dyn InGuest, script: &Script) -> Result<(), StepError> {
    // Serializing a JSON value cannot fail.
    let config = serde_json::to_vec_pretty(&script.config).unwrap_or_default();
    cx.exec().push(&config, &script.config_path(), 0o600)?;
    if !script.staged.is_empty() {
        // systemd empties /tmp early in a boot: stage there once the boot is over.
        cx.exec()
            .exec(&Cmd::probe(["/bin/sh", "-c", BOOT_SETTLED]).timeout(BOOT_WAIT))?;
    }
    for f in &script.staged {
        cx.exec().push(&f.data, &f.path, f.mode)?;
    }
    cx.exec().push(&script.body, &script.path(), 0o700)?;
    Ok(())
}

/// `phoenix adopt`: asks the script's `--check` mode whether its effect is in place (changing
/// nothing but Phoenix's files under `/var/lib/phoenix`); on yes, leaves the marker a run would
/// have left, so no later run runs it again for these inputs.
pub fn confirm(cx: &dyn InGuest, script: &Script, digest: &str) -> Result<bool, StepError> {
    if !cx.runs()? {
        return Err(StepError::new("the guest is not running", ""));
    }
    push(cx, script)?;
    let path = script.path();
    let mut argv = vec![path.as_str(), "--check"];
    argv.extend(script.args.iter().map(String::as_str));
    let mut cmd = Cmd::probe(argv).timeout(cx.step_timeout());
    cmd.env = script
        .env
        .iter()
        .filter(|(k, _)| k != "PHOENIX_MODE")
        .cloned()
        .collect();
    cmd = cmd.env("PHOENIX_MODE", "check");
    let out = cx.exec().exec(&cmd)?;
    if !out.success() {
        let said = out.tail(1);
        return Err(StepError::new(
            format!("--check: {}", said.trim()),
            out.tail(20),
        ));
    }
    cx.exec().push(digest.as_bytes(), &script.marker(), 0o600)?;
    Ok(true)
}

/// Whether the step is done: the marker holds `digest` and no instance an earlier attempt
/// started is still the runner's to settle (in flight, or finished unseen).
pub fn ran(
    cx: &dyn InGuest,
    at: &Attempt<'_>,
    script: &Script,
    digest: &str,
) -> Result<bool, StepError> {
    Ok(run_once::pending(at, digest).is_none() && marker_matches(cx, script, digest)?)
}

/// Runs the guest's health check until it passes, `retries` more times at most.
pub fn health_check(cx: &dyn InGuest, check: &GuestHealthCheck) -> Result<(), StepError> {
    let mut last = None;
    for attempt in 0..=check.retries {
        if attempt > 0 {
            std::thread::sleep(Duration::from_secs(u64::from(check.interval_s)));
        }
        let cmd = Cmd::probe(["/bin/sh", "-c", &check.command]).timeout(Duration::from_secs(60));
        let out = cx.exec().exec(&cmd)?;
        if out.success() {
            return Ok(());
        }
        last = Some(out);
    }
    let tail = last.map(|o| o.tail(20)).unwrap_or_default();
    Err(StepError::new(
        format!(
            "health check `{}` failed {} time(s)",
            check.command,
            check.retries + 1
        ),
        tail,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_names_the_keys_and_its_absence_means_everything() {
        let r = |s: &str| Reads::of(s.as_bytes());
        assert_eq!(
            r("#!/bin/sh\n# Feature: x\n# phoenix-reads: name vllm_engine_config\nset -eu\n"),
            Reads::Keys(vec!["name".into(), "vllm_engine_config".into()])
        );
        assert_eq!(r("#!/bin/sh\n#phoenix-reads:\n"), Reads::Keys(vec![]));
        assert_eq!(r("#!/bin/sh\necho\n# phoenix-reads: name\n"), Reads::All);
        assert_eq!(r(""), Reads::All);
    }

    #[test]
    fn the_check_mode_is_declared_in_the_header() {
        assert!(has_check_mode(b"#!/bin/sh\n# phoenix-check-mode: yes\n"));
        assert!(!has_check_mode(b"#!/bin/sh\n# phoenix-check-mode: no\n"));
        assert!(!has_check_mode(
            b"#!/bin/sh\nset -e\n# phoenix-check-mode: yes\n"
        ));
    }
}

//! Reading and writing the node through the session's runner (this machine, or SSH to `--host`).

use super::HostCx;
use crate::backend::Change;
use crate::exec::Cmd;
use crate::jobs::StepError;
use std::path::Path;

/// The file's text, `None` when it does not exist.
pub fn read(cx: &HostCx, path: &str) -> Result<Option<String>, StepError> {
    let out = cx.session.runner.output(&Cmd::probe(["cat", path]))?;
    Ok(out.success().then(|| out.stdout_str()))
}

/// The change that would make `path` hold `want` (none when it does).
pub fn file_change(cx: &HostCx, path: &str, want: &str) -> Result<Option<Change>, StepError> {
    let live = read(cx, path)?;
    Ok((live.as_deref() != Some(want)).then(|| Change::new(path, live, Some(want.into()))))
}

/// Writes the whole file (a temporary file renamed over it).
pub fn write(cx: &HostCx, path: &str, data: &str, mode: u32) -> Result<(), StepError> {
    write_bytes(cx, path, data.as_bytes(), mode)
}

pub fn write_bytes(cx: &HostCx, path: &str, data: &[u8], mode: u32) -> Result<(), StepError> {
    Ok(cx.session.runner.put_file(Path::new(path), data, mode)?)
}

/// Runs a command that changes the node; fails with its output when it fails.
pub fn act<const N: usize>(cx: &HostCx, argv: [&str; N]) -> Result<(), StepError> {
    act_argv(cx, &argv)
}

/// [`act`] for an argv built at run time.
pub fn act_argv<S: AsRef<str>>(cx: &HostCx, argv: &[S]) -> Result<(), StepError> {
    let words: Vec<&str> = argv.iter().map(AsRef::as_ref).collect();
    let out = cx.session.runner.output(&Cmd::act(words.iter().copied()))?;
    match out.success() {
        true => Ok(()),
        false => Err(StepError::new(
            format!("`{}` failed", words.join(" ")),
            out.tail(20),
        )),
    }
}

/// What a read-only command prints, `None` when it fails.
pub fn ask_all<const N: usize>(cx: &HostCx, argv: [&str; N]) -> Result<Option<String>, StepError> {
    let out = cx.session.runner.output(&Cmd::probe(argv))?;
    Ok(out.success().then(|| out.stdout_str()))
}

/// Whether the node has `command` on its PATH.
pub fn has(cx: &HostCx, command: &str) -> Result<bool, StepError> {
    let script = format!("command -v {}", crate::exec::quote::quote(command));
    Ok(ask(cx, ["sh", "-c", &script])?.is_some())
}

/// Rebuilds the initramfs after a change to `/etc/modprobe.d`, where the node has the tool.
pub fn update_initramfs(cx: &HostCx) -> Result<(), StepError> {
    match has(cx, "update-initramfs")? {
        true => act(cx, ["update-initramfs", "-u", "-k", "all"]),
        false => Ok(()),
    }
}

/// Where the node keeps what Phoenix created on it (a file per thing: `storage.<id>`,
/// `pool.<name>`), so that Phoenix removes only what it made.
const CREATED_DIR: &str = "/var/lib/phoenix/host/created";

pub fn created(cx: &HostCx, what: &str) -> Result<bool, StepError> {
    Ok(ask(cx, ["test", "-e", &format!("{CREATED_DIR}/{what}")])?.is_some())
}

/// Records `what` as Phoenix's, before the command that makes it runs: a run killed between the
/// two leaves a record of something absent, which the next run makes.
pub fn record_created(cx: &HostCx, what: &str) -> Result<(), StepError> {
    act(cx, ["mkdir", "-p", CREATED_DIR])?;
    write(cx, &format!("{CREATED_DIR}/{what}"), "", 0o644)
}

pub fn forget_created(cx: &HostCx, what: &str) -> Result<(), StepError> {
    act(cx, ["rm", "-f", &format!("{CREATED_DIR}/{what}")])
}

/// The first line a read-only command prints, `None` when it fails.
pub fn ask<const N: usize>(cx: &HostCx, argv: [&str; N]) -> Result<Option<String>, StepError> {
    let out = cx.session.runner.output(&Cmd::probe(argv))?;
    Ok(out
        .success()
        .then(|| out.stdout_str().lines().next().unwrap_or("").to_string()))
}

/// `current` with Phoenix's block `name` replaced by `body` (or, the first time, `body` appended
/// as that block). What lies outside Phoenix's blocks stays as it is. A block whose end line is
/// gone is an error: what follows it cannot be told apart from the block.
pub fn with_block(path: &str, current: &str, name: &str, body: &str) -> Result<String, StepError> {
    let begin = format!(
        "# BEGIN phoenix {name}: written by `phoenix setup`; edit the hypervisor file instead"
    );
    let end = format!("# END phoenix {name}");
    let mut out = String::new();
    let mut inside = false;
    let mut placed = false;
    for line in current.lines() {
        if line == begin {
            inside = true;
        } else if line == end {
            inside = false;
            out.push_str(&format!("{begin}\n{body}{end}\n"));
            placed = true;
        } else if !inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    if inside {
        return Err(StepError::new(
            format!("{path} has Phoenix's line `{begin}` without its `{end}`"),
            "put the end line back (or remove the block) by hand; Phoenix rewrites the block",
        ));
    }
    if !placed {
        out.push_str(&format!("{begin}\n{body}{end}\n"));
    }
    Ok(out)
}

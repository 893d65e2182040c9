//! `storage`: the NFS exports, as Phoenix's block of `/etc/exports`. Lines Phoenix did not write
//! stay as they are (upstream truncated the file); the block is replaced whole, the exported
//! directories are made, and `exportfs -ra` runs where the node has it. A line of someone else's
//! that exports a directory Phoenix exports too (upstream's own lines, after a migration) would
//! export it twice: the step stops naming it, and `--allow-destructive` removes it.

use super::{node, push_value, HostCx, HostState};
use crate::backend::Change;
use crate::config::host::NfsExport;
use crate::exec::Cmd;
use crate::jobs::{Row, StepError, Table};

const FILE: &str = "/etc/exports";
const BLOCK: &str = "nfs.exports";

pub fn steps(t: &mut Table<HostState, HostCx>, cx: &HostCx) {
    if cx.setup.exports.is_empty() {
        return;
    }
    let exports = cx.setup.exports.clone();
    let row = Row::new(
        "nfs_exports",
        HostState::Storage,
        &("nfs_exports", &exports),
    );
    push_value(
        t,
        row,
        exports,
        |cx, v| differs(cx, v),
        |cx, v| converge(cx, v),
    );
}

/// The lines of `/etc/exports` that Phoenix owns.
fn lines(exports: &[NfsExport]) -> String {
    let mut out = String::new();
    for e in exports {
        let opts = e.options.join(",");
        let clients: Vec<String> = e.clients.iter().map(|c| format!("{c}({opts})")).collect();
        out.push_str(&format!("{} {}\n", e.path, clients.join(" ")));
    }
    out
}

/// The file as it must be; `drop_foreign`: without the lines of others that export Phoenix's
/// directories (else such a line is an error).
fn merged(current: &str, exports: &[NfsExport], drop_foreign: bool) -> Result<String, StepError> {
    let block = node::with_block(FILE, current, BLOCK, &lines(exports))?;
    let clashing = clashes(&block, exports);
    if clashing.is_empty() {
        return Ok(block);
    }
    if !drop_foreign {
        return Err(StepError::new(
            format!("{FILE} exports what Phoenix exports, on a line it did not write: {}", clashing.join(" | ")),
            "remove that line, or rerun with --allow-destructive to have Phoenix remove it (`phoenix plan --setup --allow-destructive` lists it)",
        ));
    }
    Ok(block
        .lines()
        .filter(|l| !clashing.contains(&l.to_string()))
        .map(|l| format!("{l}\n"))
        .collect())
}

/// The lines outside Phoenix's block that export one of `exports`' directories.
fn clashes(text: &str, exports: &[NfsExport]) -> Vec<String> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("# BEGIN phoenix ") || line.starts_with("# END phoenix ") {
            inside = line.starts_with("# BEGIN");
            continue;
        }
        let path = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_matches('"');
        if !inside && exports.iter().any(|e| e.path == path) {
            out.push(line.to_string());
        }
    }
    out
}

fn differs(cx: &HostCx, exports: &[NfsExport]) -> Result<Vec<Change>, StepError> {
    let current = node::read(cx, FILE)?.unwrap_or_default();
    let want = merged(&current, exports, cx.allow_destructive)?;
    Ok(node::file_change(cx, FILE, &want)?.into_iter().collect())
}

fn converge(cx: &HostCx, exports: &[NfsExport]) -> Result<(), StepError> {
    for e in exports {
        node::act(cx, ["mkdir", "-p", &e.path])?;
    }
    let current = node::read(cx, FILE)?.unwrap_or_default();
    let want = merged(&current, exports, cx.allow_destructive)?;
    node::write(cx, FILE, &want, 0o644)?;
    let has_exportfs = Cmd::probe(["sh", "-c", "command -v exportfs"]);
    if cx.session.runner.output(&has_exportfs)?.success() {
        node::act(cx, ["exportfs", "-ra"])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_is_replaced_and_other_lines_stay() {
        let e = |p: &str| NfsExport {
            path: p.into(),
            clients: vec!["10.0.0.2".into(), "10.0.0.3".into()],
            options: vec!["rw".into(), "sync".into()],
        };
        let merged = |c: &str, e: &[NfsExport]| merged(c, e, false).unwrap();
        let first = merged("/srv/theirs 10.0.0.9(ro)\n", &[e("/a")]);
        assert_eq!(
            first,
            "/srv/theirs 10.0.0.9(ro)\n# BEGIN phoenix nfs.exports: written by `phoenix setup`; edit the hypervisor file instead\n/a 10.0.0.2(rw,sync) 10.0.0.3(rw,sync)\n# END phoenix nfs.exports\n"
        );
        let again = merged(&first, &[e("/b")]);
        assert!(again.contains("/srv/theirs 10.0.0.9(ro)\n") && again.contains("\n/b 10.0.0.2"));
        assert!(!again.contains("/a "), "{again}");
        assert_eq!(merged(&again, &[e("/b")]), again);
        let cut = first.replace("# END phoenix nfs.exports\n", "/srv/theirs2 10.0.0.8(ro)\n");
        assert!(
            super::merged(&cut, &[e("/b")], true).is_err(),
            "a block without its end"
        );
        let theirs = "/a 10.0.0.9(ro)\n/srv/theirs 10.0.0.9(ro)\n";
        assert!(
            super::merged(theirs, &[e("/a")], false).is_err(),
            "/a twice"
        );
        let kept = super::merged(theirs, &[e("/a")], true).unwrap();
        assert!(
            kept.starts_with("/srv/theirs 10.0.0.9(ro)\n# BEGIN"),
            "{kept}"
        );
    }
}

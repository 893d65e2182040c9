//! `system`: apt. `apt_sources` writes each source as a deb822 file of Phoenix's own
//! (`/etc/apt/sources.list.d/phoenix-<name>.sources`), removes Phoenix's files the file no longer
//! lists, switches off the sources named in `apt.disable` (`Enabled: no`, the rest of their file
//! kept) and updates the index when anything changed. `apt_packages` installs what is missing
//! (`dpkg-query` says which), never upgrading or removing.

use super::{node, push_value, HostCx, HostState};
use crate::backend::Change;
use crate::config::host_system::{Apt, AptSource};
use crate::exec::Cmd;
use crate::jobs::{Row, StepError, Table};

const DIR: &str = "/etc/apt/sources.list.d";

pub fn steps(t: &mut Table<HostState, HostCx>, cx: &HostCx) {
    let Some(apt) = cx.setup.apt.clone() else {
        return;
    };
    if !apt.sources.is_empty() || !apt.disable.is_empty() {
        let row = Row::new(
            "apt_sources",
            HostState::System,
            &("apt_sources", &apt.sources, &apt.disable),
        );
        push_value(t, row, apt.clone(), sources_differ, write_sources);
    }
    if !apt.packages.is_empty() {
        let row = Row::new(
            "apt_packages",
            HostState::System,
            &("apt_packages", &apt.packages),
        );
        push_value(
            t,
            row,
            apt.packages,
            |cx, v| missing_changes(cx, v),
            |cx, v| install(cx, v),
        );
    }
}

fn file_of(name: &str) -> String {
    format!("{DIR}/phoenix-{name}.sources")
}

fn render(s: &AptSource) -> String {
    let mut out = String::from("# Written by `phoenix setup`; edit the hypervisor file instead.\n");
    for (k, v) in &s.fields {
        out.push_str(&format!("{k}: {v}\n"));
    }
    out
}

/// A disabled source's file: every stanza with `Enabled: no`.
fn disabled(text: &str) -> String {
    let mut out = String::new();
    for stanza in text.split("\n\n") {
        let kept: Vec<&str> = stanza
            .lines()
            .filter(|l| !l.to_ascii_lowercase().starts_with("enabled:"))
            .collect();
        if kept
            .iter()
            .all(|l| l.trim().is_empty() || l.starts_with('#'))
        {
            out.push_str(&kept.join("\n"));
        } else {
            out.push_str(&format!("{}\nEnabled: no", kept.join("\n")));
        }
        out.push_str("\n\n");
    }
    format!("{}\n", out.trim_end())
}

/// Phoenix's source files on the node now.
fn ours(cx: &HostCx) -> Result<Vec<String>, StepError> {
    let listing = node::ask_all(cx, ["ls", "-1", DIR])?.unwrap_or_default();
    Ok(listing
        .lines()
        .filter(|f| f.starts_with("phoenix-") && f.ends_with(".sources"))
        .map(|f| format!("{DIR}/{f}"))
        .collect())
}

fn sources_differ(cx: &HostCx, apt: &Apt) -> Result<Vec<Change>, StepError> {
    let mut out = Vec::new();
    for s in &apt.sources {
        out.extend(node::file_change(cx, &file_of(&s.name), &render(s))?);
    }
    for f in ours(cx)? {
        if !apt.sources.iter().any(|s| file_of(&s.name) == f) {
            out.push(Change::new(f, Some("a source of Phoenix's".into()), None));
        }
    }
    for name in &apt.disable {
        let path = format!("{DIR}/{name}.sources");
        if let Some(text) = node::read(cx, &path)? {
            out.extend(node::file_change(cx, &path, &disabled(&text))?);
        }
    }
    Ok(out)
}

fn write_sources(cx: &HostCx, apt: &Apt) -> Result<(), StepError> {
    for s in &apt.sources {
        node::write(cx, &file_of(&s.name), &render(s), 0o644)?;
    }
    for f in ours(cx)? {
        if !apt.sources.iter().any(|s| file_of(&s.name) == f) {
            node::act(cx, ["rm", "-f", &f])?;
        }
    }
    for name in &apt.disable {
        let path = format!("{DIR}/{name}.sources");
        if let Some(text) = node::read(cx, &path)? {
            node::write(cx, &path, &disabled(&text), 0o644)?;
        }
    }
    apt_get(cx, &["update"])
}

/// `apt-get` without questions; its output is the error when it fails.
fn apt_get(cx: &HostCx, args: &[&str]) -> Result<(), StepError> {
    let mut argv = vec![
        "apt-get",
        "-q",
        "-y",
        "-o",
        "Dpkg::Options::=--force-confold",
    ];
    argv.extend_from_slice(args);
    let cmd = Cmd::act(argv.iter().copied())
        .env("DEBIAN_FRONTEND", "noninteractive")
        .timeout(cx.step_timeout);
    let out = cx.session.runner.output(&cmd)?;
    match out.success() {
        true => Ok(()),
        false => Err(StepError::new(
            format!("`apt-get {}` failed", args.join(" ")),
            out.tail(20),
        )),
    }
}

fn missing(cx: &HostCx, packages: &[String]) -> Result<Vec<String>, StepError> {
    let mut out = Vec::new();
    for p in packages {
        let status = node::ask(cx, ["dpkg-query", "-W", "-f", "${db:Status-Status}", p])?;
        if status.as_deref() != Some("installed") {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn missing_changes(cx: &HostCx, packages: &[String]) -> Result<Vec<Change>, StepError> {
    Ok(missing(cx, packages)?
        .into_iter()
        .map(|p| Change::new(format!("package {p}"), None, Some("installed".into())))
        .collect())
}

fn install(cx: &HostCx, packages: &[String]) -> Result<(), StepError> {
    let todo = missing(cx, packages)?;
    let mut args = vec!["install", "--no-install-recommends"];
    args.extend(todo.iter().map(String::as_str));
    if apt_get(cx, &args).is_err() {
        // The index may be older than the sources: once more after an update.
        apt_get(cx, &["update"])?;
        apt_get(cx, &args)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disabled_source_keeps_its_stanzas() {
        let text = "Types: deb\nURIs: https://enterprise.proxmox.com/debian/pve\nSuites: trixie\nComponents: pve-enterprise\n";
        let off = disabled(text);
        assert_eq!(off, format!("{text}Enabled: no\n"));
        assert_eq!(disabled(&off), off, "disabling twice changes nothing");
        let two = format!("{text}\n{text}Enabled: yes\n");
        assert_eq!(disabled(&two).matches("Enabled: no").count(), 2);
    }
}

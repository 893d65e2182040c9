//! The library's layers only point down (cargo's `commands → ops → core`): every `crate::` path
//! in a module names its own layer or a lower one, the command line stays in the binary, and the
//! engine crate knows nothing of Phoenix.

use std::collections::BTreeMap;
use std::path::Path;

/// Each top-level module of the library and its layer; higher layers may use lower ones.
const LAYERS: &[(&str, u8)] = &[
    ("digest", 0),
    ("exit", 0),
    ("features", 0),
    ("limits", 0),
    ("logging", 0),
    ("config", 1),
    ("exec", 1),
    ("graph", 2),
    ("error", 2),
    ("backend", 3),
    ("session", 4),
    ("jobs", 5),
    ("converge", 6),
    ("scheduler", 7),
    ("ui", 8),
    ("ops", 9),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

/// Rust files under `dir`, with the top-level module each belongs to.
fn sources(dir: &Path, out: &mut Vec<(String, std::path::PathBuf)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            let rel = p.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap();
            let top = rel
                .components()
                .nth(1)
                .unwrap()
                .as_os_str()
                .to_string_lossy();
            out.push((top.trim_end_matches(".rs").to_string(), p.clone()));
        }
    }
}

/// `crate::<module>` paths in the code (comments skipped).
fn uses(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .flat_map(|l| l.match_indices("crate::").map(move |(i, _)| &l[i + 7..]))
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

#[test]
fn library_modules_only_use_their_layer_or_lower_ones() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut upward: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (module, path) in &files {
        // The binary (main, cli, commands) may use everything; test support too.
        if ["main", "cli", "commands", "lib", "testing"].contains(&module.as_str()) {
            continue;
        }
        let Some(own) = layer(module) else {
            panic!(
                "{}: module {module} has no layer in tests/layering.rs",
                path.display()
            );
        };
        let text = std::fs::read_to_string(path).unwrap();
        let tests_start = text.find("#[cfg(test)]").unwrap_or(text.len());
        for used in uses(&text[..tests_start]) {
            match layer(&used) {
                Some(l) if l <= own => {}
                Some(_) => upward
                    .entry(format!("{}", path.display()))
                    .or_default()
                    .push(used),
                None if used == "testing" => {}
                None => panic!("{}: crate::{used} is not a library module", path.display()),
            }
        }
    }
    assert!(
        upward.is_empty(),
        "modules that use a higher layer: {upward:#?}"
    );
}

#[test]
fn the_command_line_stays_in_the_binary() {
    let lib = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs")).unwrap();
    assert!(!lib.contains("mod cli") && !lib.contains("mod commands"));
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    for (module, path) in files {
        if ["main", "cli", "commands"].contains(&module.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("clap::"), "{} uses clap", path.display());
    }
}

#[test]
fn the_engine_knows_nothing_of_phoenix() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("state_machine/src"),
        &mut files,
    );
    for (_, path) in files {
        let text = std::fs::read_to_string(&path).unwrap().to_lowercase();
        assert!(
            !text.contains("phoenix"),
            "{} mentions Phoenix",
            path.display()
        );
        assert!(
            !text.contains("lifecycle"),
            "{} has guest states",
            path.display()
        );
    }
}

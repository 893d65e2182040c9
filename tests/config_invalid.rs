//! The bad-input corpus: every file in fixtures/invalid names the file, JSON pointer and message
//! that must be reported, and the loader must report it (and never panic).

mod common;

use phoenix::config::{Diagnostics, Fleet, Severity};
use serde_json::{json, Value};
use std::path::PathBuf;

struct Case {
    name: String,
    doc: Value,
}

fn cases() -> Vec<Case> {
    let dir = common::repo().join("fixtures/invalid");
    let mut out: Vec<Case> = std::fs::read_dir(&dir)
        .expect("fixtures/invalid")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| Case {
            name: p.file_stem().unwrap().to_string_lossy().into_owned(),
            doc: serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap(),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Materialises a case's files in a temp dir.
fn materialise(case: &Case) -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    if let Some(files) = case.doc["files"].as_object() {
        for (name, value) in files {
            let p = dir.path().join(name);
            std::fs::write(&p, serde_json::to_vec_pretty(value).unwrap()).unwrap();
            paths.push(p);
        }
    }
    if let Some(files) = case.doc["raw_files"].as_object() {
        for (name, value) in files {
            let p = dir.path().join(name);
            std::fs::write(&p, value.as_str().unwrap()).unwrap();
            paths.push(p);
        }
    }
    (dir, paths)
}

#[test]
fn corpus_has_at_least_forty_cases() {
    assert!(
        cases().len() >= 40,
        "only {} invalid fixtures",
        cases().len()
    );
}

#[test]
fn every_invalid_config_is_reported_at_its_pointer() {
    let mut failures = Vec::new();
    for case in cases() {
        let (dir, paths) = materialise(&case);
        let diag = Diagnostics::new();
        let has_guest_file = paths.iter().any(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.contains("lxc") || n.contains("vm")
        });
        let fleet = if has_guest_file {
            Fleet::load_dir(dir.path(), &diag).expect("load_dir")
        } else {
            Fleet::load_files(&paths, None, &diag).expect("load_files")
        };
        phoenix::ops::load::check(&fleet, &diag);
        let items = diag.into_sorted();
        let want = &case.doc["expect"];
        let (file, pointer, message) = (
            want["file"].as_str().unwrap(),
            want["pointer"].as_str().unwrap(),
            want["message"].as_str().unwrap(),
        );
        let found = items.iter().any(|d| {
            d.severity == Severity::Error
                && d.file.ends_with(file)
                && d.pointer == pointer
                && d.message.contains(message)
        });
        if !found {
            failures.push(format!(
                "{}: wanted error {file}: {pointer}: ...{message}...\n  got:\n    {}",
                case.name,
                items
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("\n    ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn cli_exits_2_and_prints_file_pointer_message() {
    for name in ["memory-zero", "dependency-cycle", "not-json"] {
        let case = cases().into_iter().find(|c| c.name == name).unwrap();
        let (dir, _) = materialise(&case);
        let out = assert_cmd::Command::cargo_bin("phoenix")
            .unwrap()
            .args(["validate", "--config-dir"])
            .arg(dir.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let want = &case.doc["expect"];
        let pointer = match want["pointer"].as_str().unwrap() {
            "" => "/",
            p => p,
        };
        let needle = format!("{}: {}: ", want["file"].as_str().unwrap(), pointer);
        assert!(
            stderr.contains(&needle),
            "{name}: {needle:?} not in\n{stderr}"
        );
        assert!(
            stderr.contains(want["message"].as_str().unwrap()),
            "{name}: {stderr}"
        );
    }
}

/// One bad field is reported where it stands; the guest keeps its shape, so its clones do not
/// lose their source and a cycle through it is still found.
#[test]
fn a_bad_field_keeps_the_guests_shape() {
    let net = |host: u8| json!({"bridge": "vmbr0", "ip": format!("10.254.9.{host}/24"), "gw": "10.254.9.1"});
    let dir = common::write_dir(&[(
        "phoenix_lxc_configs.json",
        json!({"lxc_configs": {
            "901": {"name": "tmpl", "memory_mb": "lots", "cores": 1, "template": "/t.tar.zst",
                    "template_snapshot_name": "final-form", "network_config": net(11),
                    "dependencies": ["951"]},
            "950": {"name": "api", "memory_mb": 512, "cores": 1, "clone_from_ctid": "901",
                    "network_config": net(50)},
            "951": {"name": "worker", "memory_mb": 512, "cores": 1, "clone_from_ctid": "901",
                    "network_config": net(51)},
        }}),
    )]);
    let (_, items) = common::load(dir.path());
    let errors: Vec<String> = items
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| format!("{}: {}", d.pointer, d.message))
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("/lxc_configs/901/memory_mb:")),
        "{errors:#?}"
    );
    assert!(
        !errors.iter().any(|e| e.contains("does not exist")),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("dependency cycle: 901 -> 951 -> 901")),
        "{errors:#?}"
    );
}

/// A host hook in `lxc_options` is refused unless its container allows host hooks.
#[test]
fn host_hooks_pass_only_where_the_container_allows_them() {
    let case = cases()
        .into_iter()
        .find(|c| c.name == "lxc-option-host-hook")
        .unwrap();
    let mut doc = case.doc.clone();
    doc["files"]["phoenix_lxc_configs.json"]["lxc_configs"]["950"]["allow_host_hooks"] =
        json!(true);
    let (dir, _) = materialise(&Case {
        name: case.name,
        doc,
    });
    let diag = Diagnostics::new();
    let fleet = Fleet::load_dir(dir.path(), &diag).expect("load_dir");
    phoenix::ops::load::check(&fleet, &diag);
    let errors: Vec<String> = diag
        .into_sorted()
        .iter()
        .filter(|d| d.severity == Severity::Error && d.pointer.contains("lxc_options"))
        .map(|d| d.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let ct = &fleet.lxc.containers[&phoenix::config::GuestId(950)];
    assert_eq!(ct.lxc_options, ["lxc.hook.pre-start = /tmp/x.sh"]);
}

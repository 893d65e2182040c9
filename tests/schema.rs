//! The JSON Schemas in config/schema accept what the loader accepts: the example config, the
//! upstream files, and reject the structurally invalid fixtures.

mod common;

use serde_json::Value;
use std::path::Path;

fn read(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Resolves `$ref`s between our schemas from config/schema, offline.
struct LocalSchemas;

impl jsonschema::Retrieve for LocalSchemas {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let name = uri
            .path()
            .as_str()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let path = common::repo().join("config/schema").join(name);
        Ok(serde_json::from_slice(&std::fs::read(path)?)?)
    }
}

fn validator(schema_file: &str) -> jsonschema::Validator {
    let dir = common::repo().join("config/schema");
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .with_retriever(LocalSchemas)
        .build(&read(&dir.join(schema_file)))
        .unwrap_or_else(|e| panic!("{schema_file}: {e}"))
}

fn schema_for(file: &str) -> &'static str {
    match file {
        f if f.contains("lxc") => "phoenix_lxc_configs.schema.json",
        f if f.contains("vm") => "phoenix_vm_configs.schema.json",
        f if f.contains("stacks") => "phoenix_stacks_config.schema.json",
        _ => "phoenix_hypervisor_config.schema.json",
    }
}

fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// Each of the four upstream files in `dir` (those it has) matches its schema.
fn assert_matches_schemas(dir: &Path) {
    for f in [
        "phoenix_lxc_configs.json",
        "phoenix_vm_configs.json",
        "phoenix_hypervisor_config.json",
        "phoenix_stacks_config.json",
    ] {
        if !dir.join(f).exists() {
            continue;
        }
        let errs = errors(&validator(schema_for(f)), &read(&dir.join(f)));
        assert!(errs.is_empty(), "{f}: {errs:#?}");
    }
}

#[test]
fn example_config_matches_schemas() {
    assert_matches_schemas(&common::repo().join("config"));
}

/// `phoenix init` writes a fleet that validates and matches the schemas it writes beside it.
#[test]
fn the_scaffold_of_init_validates() {
    let dir = tempfile::tempdir().unwrap();
    let phoenix = || std::process::Command::new(env!("CARGO_BIN_EXE_phoenix"));
    let out = phoenix().arg("init").arg(dir.path()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = phoenix()
        .arg("validate")
        .arg("--config-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.contains("0 error(s), 0 warning(s)"),
        "{err}"
    );
    assert_matches_schemas(dir.path());
    for f in std::fs::read_dir(common::repo().join("config/schema")).unwrap() {
        let f = f.unwrap();
        let copy = std::fs::read(dir.path().join("schema").join(f.file_name())).unwrap();
        assert_eq!(
            copy,
            std::fs::read(f.path()).unwrap(),
            "{:?} is the shipped schema",
            f.file_name()
        );
    }
    let again = phoenix().arg("init").arg(dir.path()).output().unwrap();
    assert_eq!(again.status.code(), Some(2), "refuses to overwrite");
}

#[test]
fn upstream_head_matches_schemas() {
    let Some(dir) = common::upstream_head() else {
        return;
    };
    assert_matches_schemas(&dir);
}

#[test]
fn schemas_reject_the_structurally_invalid_fixtures() {
    let dir = common::repo().join("fixtures/invalid");
    let mut missed = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let case = read(&entry.unwrap().path());
        let expect = &case["expect"];
        if !expect["schema_rejects"].as_bool().unwrap() {
            continue;
        }
        let file = expect["file"].as_str().unwrap();
        let doc = match case["files"].get(file) {
            Some(d) => d.clone(),
            None => match serde_json::from_str(case["raw_files"][file].as_str().unwrap()) {
                Ok(d) => d,
                Err(_) => continue,
            },
        };
        if validator(schema_for(file)).is_valid(&doc) {
            missed.push(format!("{file}: {}", expect["message"]));
        }
    }
    assert!(missed.is_empty(), "schema accepted: {missed:#?}");
}

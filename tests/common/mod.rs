//! Helpers shared by the integration tests.
#![allow(dead_code)]

use phoenix::config::{Diagnostic, Diagnostics, Fleet};
use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The upstream project's real files, when the shared fixtures are present beside the checkout.
pub fn upstream_head() -> Option<PathBuf> {
    let p = repo().join("../shared/fixtures/upstream-head");
    p.is_dir().then_some(p)
}

/// Loads a directory and checks it, returning every diagnostic.
pub fn load(dir: &Path) -> (Option<Fleet>, Vec<Diagnostic>) {
    let diag = Diagnostics::new();
    match Fleet::load_dir(dir, &diag) {
        Ok(fleet) => {
            phoenix::ops::load::check(&fleet, &diag);
            (Some(fleet), diag.into_sorted())
        }
        Err(e) => panic!("load_dir({}) failed: {e}", dir.display()),
    }
}

/// Writes `files` (name -> JSON value) into a fresh temp dir.
pub fn write_dir(files: &[(&str, serde_json::Value)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, value) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, serde_json::to_vec_pretty(value).expect("json")).expect("write");
    }
    dir
}

/// A bridge made for one test, deleted with it; `None` (after saying why) without root, which
/// CI always has.
pub struct Bridge {
    pub name: String,
}

impl Bridge {
    pub fn make() -> Option<Bridge> {
        let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
        });
        if !root {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "CI=true but not root"
            );
            eprintln!("\n\n*** SKIPPING: making a bridge needs root ***\n\n");
            return None;
        }
        let name = format!("phxpl{}", std::process::id() % 100_000);
        let ok = std::process::Command::new("ip")
            .args(["link", "add", &name, "type", "bridge"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ip link add {name} type bridge");
        Some(Bridge { name })
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.name])
            .status();
    }
}

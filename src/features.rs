//! Finding feature scripts: `--features-dir DIR` (in the order given), then
//! `<config-dir>/features/`, then the `features/` shipped with Phoenix.

use std::path::{Path, PathBuf};

/// The directories searched for `<name>.sh`, first match wins.
#[derive(Debug, Clone, Default)]
pub struct FeatureDirs {
    dirs: Vec<PathBuf>,
}

impl FeatureDirs {
    pub fn new(user_dirs: &[PathBuf], config_dir: Option<&Path>) -> Self {
        let mut dirs: Vec<PathBuf> = user_dirs.to_vec();
        if let Some(c) = config_dir {
            dirs.push(c.join("features"));
        }
        dirs.push(shipped_dir());
        FeatureDirs { dirs }
    }

    /// The script for feature `name`, if any directory has it.
    pub fn find(&self, name: &str) -> Option<PathBuf> {
        self.dirs
            .iter()
            .map(|d| d.join(format!("{name}.sh")))
            .find(|p| p.is_file())
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The search list for messages.
    pub fn describe(&self) -> String {
        self.dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The shipped scripts: `<prefix>/share/phoenix/features` next to an installed binary, else the
/// source tree's `features/` (a development build).
pub fn shipped_dir() -> PathBuf {
    if let Ok(exe) = std::env::current_exe() {
        if let Some(prefix) = exe.parent().and_then(Path::parent) {
            let installed = prefix.join("share/phoenix/features");
            if installed.is_dir() {
                return installed;
            }
        }
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("features")
}

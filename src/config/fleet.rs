//! Finding and reading the configuration files, and the fleet they describe.

use super::decode::root;
use super::diagnostics::Diagnostics;
use super::guest::GuestBase;
use super::hypervisor::{self, HypervisorFile};
use super::lxc::{self, Container, LxcFile};
use super::stacks::{self, Stack};
use super::values::GuestId;
use super::values::IpConfig;
use super::vm::{self, Vm, VmFile};
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};

pub const HYPERVISOR_FILE: &str = "phoenix_hypervisor_config.json";
pub const LXC_FILE: &str = "phoenix_lxc_configs.json";
pub const VM_FILE: &str = "phoenix_vm_configs.json";
pub const STACKS_FILE: &str = "phoenix_stacks_config.json";
/// Where the upstream tool keeps its files; the last fallback for `--config-dir`.
pub const DEFAULT_CONFIG_DIR: &str = "/usr/local/phoenix_hypervisor/etc";
/// Files larger than this are refused before parsing.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Which of the upstream files a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Hypervisor,
    Lxc,
    Vm,
    Stacks,
    /// `stacks/<name>/phoenix.json`.
    Stack,
}

impl FileKind {
    /// The names `--kind` takes, in the order of [`FileKind::ALL`].
    pub const NAMES: &'static [&'static str] = &["hypervisor", "lxc", "vm", "stacks", "stack"];
    pub const ALL: [FileKind; 5] = [
        FileKind::Hypervisor,
        FileKind::Lxc,
        FileKind::Vm,
        FileKind::Stacks,
        FileKind::Stack,
    ];

    /// Guesses the kind from a file name, as the upstream names them.
    pub fn from_path(path: &Path) -> Option<FileKind> {
        let name = path.file_name()?.to_str()?;
        if name == "phoenix.json" {
            return Some(FileKind::Stack);
        }
        let name = name.to_ascii_lowercase();
        [
            ("lxc", FileKind::Lxc),
            ("vm", FileKind::Vm),
            ("stacks", FileKind::Stacks),
            ("hypervisor", FileKind::Hypervisor),
        ]
        .into_iter()
        .find(|(needle, _)| name.contains(needle))
        .map(|(_, k)| k)
    }
}

impl std::str::FromStr for FileKind {
    type Err = String;
    fn from_str(s: &str) -> Result<FileKind, String> {
        FileKind::NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| FileKind::ALL[i])
            .ok_or_else(|| format!("{s:?} is not one of {}", FileKind::NAMES.join(", ")))
    }
}

/// Failure to load at all (as opposed to problems inside files, which are diagnostics).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("configuration directory {0} does not exist (give --config-dir DIR or set PHOENIX_CONFIG_DIR)")]
    NoDir(PathBuf),
    #[error(
        "{0} holds neither {LXC_FILE} nor {VM_FILE}: nothing to build (is --config-dir right?)"
    )]
    NoGuestFiles(PathBuf),
    #[error("cannot tell what kind of file {0} is from its name (use --kind lxc|vm|hypervisor|stacks|stack)")]
    UnknownKind(PathBuf),
}

/// Guests are containers or VMs, in one id space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GuestKind {
    Lxc,
    Vm,
}

impl fmt::Display for GuestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GuestKind::Lxc => "lxc",
            GuestKind::Vm => "vm",
        })
    }
}

/// A guest of either kind.
#[derive(Debug, Clone, Copy)]
pub enum GuestRef<'a> {
    Ct(&'a Container),
    Vm(&'a Vm),
}

impl<'a> GuestRef<'a> {
    /// What every guest has.
    pub fn base(&self) -> &'a GuestBase {
        match self {
            GuestRef::Ct(c) => &c.base,
            GuestRef::Vm(v) => &v.base,
        }
    }
    pub fn id(&self) -> GuestId {
        self.base().id
    }
    pub fn kind(&self) -> GuestKind {
        match self {
            GuestRef::Ct(_) => GuestKind::Lxc,
            GuestRef::Vm(_) => GuestKind::Vm,
        }
    }
    pub fn name(&self) -> &'a str {
        &self.base().name
    }
    pub fn clone_from(&self) -> Option<GuestId> {
        self.base().clone_from
    }
    pub fn dependencies(&self) -> &'a [GuestId] {
        &self.base().dependencies
    }
    /// Its first network's address setting, when it has one.
    pub fn ip(&self) -> Option<IpConfig> {
        match self {
            GuestRef::Ct(c) => c.network.as_ref().map(|n| n.ip),
            GuestRef::Vm(v) => v.network.as_ref().map(|n| n.ip),
        }
    }
    /// The job id the engine records this guest under: `lxc/950`, `vm/1001`.
    pub fn job_id(&self) -> String {
        format!("{}/{}", self.kind(), self.id())
    }
}

/// Where each file came from, for messages.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sources {
    pub hypervisor: Option<PathBuf>,
    pub lxc: Option<PathBuf>,
    pub vm: Option<PathBuf>,
    pub stacks: Option<PathBuf>,
    pub stack_manifests: Vec<PathBuf>,
}

/// Everything the configuration describes.
#[derive(Debug, Default)]
pub struct Fleet {
    /// The configuration directory, when loaded from one (relative paths resolve against it).
    pub dir: Option<PathBuf>,
    pub sources: Sources,
    pub hypervisor: HypervisorFile,
    pub lxc: LxcFile,
    pub vm: VmFile,
    pub stacks: Vec<Stack>,
    pub stack_manifests: Vec<Stack>,
    /// Loaded from single files: references to ids in other files are warnings.
    pub partial: bool,
}

impl Fleet {
    pub fn guest(&self, id: GuestId) -> Option<GuestRef<'_>> {
        if let Some(c) = self.lxc.containers.get(&id) {
            return Some(GuestRef::Ct(c));
        }
        self.vm
            .vms
            .iter()
            .find(|v| v.base.id == id)
            .map(GuestRef::Vm)
    }

    /// Containers (ids sorted as text, as upstream's `jq keys`) then VMs in file order: the
    /// upstream enumeration order that `run --all` keeps.
    pub fn guests(&self) -> Vec<GuestRef<'_>> {
        let mut cts: Vec<&Container> = self.lxc.containers.values().collect();
        cts.sort_by_cached_key(|c| c.base.id.to_string());
        cts.into_iter()
            .map(GuestRef::Ct)
            .chain(self.vm.vms.iter().map(GuestRef::Vm))
            .collect()
    }

    /// The file a guest is defined in, for messages.
    /// The storage a container's root disk is on: its own `storage_pool`, or for a clone without
    /// one, its parent's (clones are made on their source's storage).
    pub fn storage_of<'a>(&'a self, ct: &'a crate::config::lxc::Container) -> Option<&'a str> {
        let mut cur = ct;
        for _ in 0..64 {
            if let Some(pool) = &cur.base.storage_pool {
                return Some(pool);
            }
            match cur.base.clone_from.and_then(|p| self.guest(p)) {
                Some(GuestRef::Ct(parent)) => cur = parent,
                _ => return None,
            }
        }
        None
    }

    pub fn file_of(&self, kind: GuestKind) -> String {
        let p = match kind {
            GuestKind::Lxc => &self.sources.lxc,
            GuestKind::Vm => &self.sources.vm,
        };
        p.as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| match kind {
                GuestKind::Lxc => LXC_FILE.into(),
                GuestKind::Vm => VM_FILE.into(),
            })
    }

    /// The JSON pointer of a guest in its file.
    pub fn pointer_of(&self, g: GuestRef<'_>) -> String {
        match g {
            GuestRef::Ct(c) => format!("/lxc_configs/{}", c.base.id),
            GuestRef::Vm(v) => {
                let i = self
                    .vm
                    .vms
                    .iter()
                    .position(|x| x.base.id == v.base.id)
                    .unwrap_or(0);
                format!("/vms/{i}")
            }
        }
    }

    /// Loads a configuration directory: the four files by their upstream names, `core_paths`
    /// honoured when they point at existing files, and `stacks/*/phoenix.json`.
    pub fn load_dir(dir: &Path, diag: &Diagnostics) -> Result<Fleet, LoadError> {
        Self::load_dir_with(dir, diag, true)
    }

    /// The hypervisor file of `dir`, with whatever guest files it has (`phoenix setup` needs no
    /// guests).
    pub fn load_host_dir(dir: &Path, diag: &Diagnostics) -> Result<Fleet, LoadError> {
        Self::load_dir_with(dir, diag, false)
    }

    fn load_dir_with(dir: &Path, diag: &Diagnostics, guests: bool) -> Result<Fleet, LoadError> {
        if !dir.is_dir() {
            return Err(LoadError::NoDir(dir.to_path_buf()));
        }
        let mut fleet = Fleet {
            dir: Some(dir.to_path_buf()),
            ..Fleet::default()
        };
        let hyp_path = dir.join(HYPERVISOR_FILE);
        if hyp_path.is_file() {
            fleet.load_file(&hyp_path, FileKind::Hypervisor, diag);
        }
        let pick = |configured: &Option<String>, default: &str| -> PathBuf {
            match configured {
                Some(p) if Path::new(p).is_file() => PathBuf::from(p),
                _ => dir.join(default),
            }
        };
        let lxc_path = pick(&fleet.hypervisor.lxc_config_file, LXC_FILE);
        let vm_path = pick(&fleet.hypervisor.vm_config_file, VM_FILE);
        let none = !lxc_path.is_file() && !vm_path.is_file();
        if guests && none && fleet.hypervisor.embedded_vms.is_empty() {
            return Err(LoadError::NoGuestFiles(dir.to_path_buf()));
        }
        if lxc_path.is_file() {
            fleet.load_file(&lxc_path, FileKind::Lxc, diag);
        }
        if vm_path.is_file() {
            fleet.load_file(&vm_path, FileKind::Vm, diag);
        }
        let stacks_path = dir.join(STACKS_FILE);
        if stacks_path.is_file() {
            fleet.load_file(&stacks_path, FileKind::Stacks, diag);
        }
        if let Ok(entries) = std::fs::read_dir(dir.join("stacks")) {
            let mut manifests: Vec<PathBuf> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.path().join("phoenix.json"))
                .filter(|p| p.is_file())
                .collect();
            manifests.sort();
            for m in manifests {
                fleet.load_file(&m, FileKind::Stack, diag);
            }
        }
        fleet.merge_embedded_vms(diag);
        fleet.imply_snapshot_names(diag);
        Ok(fleet)
    }

    /// Loads single files (`phoenix validate FILE...`).
    pub fn load_files(
        files: &[PathBuf],
        kind: Option<FileKind>,
        diag: &Diagnostics,
    ) -> Result<Fleet, LoadError> {
        let mut fleet = Fleet {
            partial: true,
            ..Fleet::default()
        };
        for f in files {
            let k = kind
                .or_else(|| FileKind::from_path(f))
                .ok_or_else(|| LoadError::UnknownKind(f.clone()))?;
            fleet.load_file(f, k, diag);
        }
        fleet.merge_embedded_vms(diag);
        fleet.imply_snapshot_names(diag);
        Ok(fleet)
    }

    /// Files of Sept 2025 cloned from a container's lifecycle snapshot without naming it: the
    /// clone source gets `final-form` (the snapshot it takes last), with a warning.
    fn imply_snapshot_names(&mut self, diag: &Diagnostics) {
        let sources: Vec<GuestId> = self
            .lxc
            .containers
            .values()
            .filter_map(|c| c.base.clone_from)
            .collect();
        let file = self.file_of(GuestKind::Lxc);
        for id in sources {
            let Some(c) = self.lxc.containers.get(&id) else {
                continue;
            };
            let base = &c.base;
            if base.template_snapshot_name.is_some()
                || base.is_template
                || !c.enable_lifecycle_snapshots
            {
                continue;
            }
            let at = format!(
                "{}/enable_lifecycle_snapshots",
                self.pointer_of(GuestRef::Ct(c))
            );
            diag.legacy(
                &file,
                &at,
                format!("{id} is cloned from and names no snapshot; clones start from its last lifecycle snapshot, `final-form`"),
                "\"template_snapshot_name\": \"final-form\"".into(),
            );
            if let Some(c) = self.lxc.containers.get_mut(&id) {
                c.base.template_snapshot_name = Some("final-form".into());
            }
        }
    }

    fn load_file(&mut self, path: &Path, kind: FileKind, diag: &Diagnostics) {
        let name = path.display().to_string();
        let Some(value) = read_json(path, &name, diag) else {
            return;
        };
        let node = root(&value, &name, diag);
        match kind {
            FileKind::Hypervisor => {
                self.hypervisor = hypervisor::decode(node);
                self.sources.hypervisor = Some(path.into());
            }
            FileKind::Lxc => {
                self.lxc = lxc::decode(node);
                self.sources.lxc = Some(path.into());
            }
            FileKind::Vm => {
                self.vm = vm::decode(node);
                self.sources.vm = Some(path.into());
            }
            FileKind::Stacks => {
                self.stacks = stacks::decode_catalogue(node);
                self.sources.stacks = Some(path.into());
            }
            FileKind::Stack => {
                let stack_name = path
                    .parent()
                    .and_then(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if let Some(s) = stacks::stack(&stack_name, node, false) {
                    self.stack_manifests.push(s);
                }
                self.sources.stack_manifests.push(path.into());
            }
        }
    }

    fn merge_embedded_vms(&mut self, diag: &Diagnostics) {
        if self.hypervisor.embedded_vms.is_empty() {
            return;
        }
        let file = self
            .sources
            .hypervisor
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        if self.vm.defaults.storage_pool.is_none() {
            if let Some(d) = self.hypervisor.embedded_vm_defaults.clone() {
                self.vm.defaults = d;
            }
        }
        for v in std::mem::take(&mut self.hypervisor.embedded_vms) {
            if self.vm.vms.iter().any(|x| x.base.id == v.base.id) {
                diag.warning(
                    &file,
                    "/vms",
                    format!(
                        "VM {} is defined in both files; the VM file wins",
                        v.base.id
                    ),
                    None,
                );
            } else {
                self.vm.vms.push(v);
            }
        }
    }
}

/// Reads and parses one file; any failure becomes a diagnostic on the file's root.
fn read_json(path: &Path, name: &str, diag: &Diagnostics) -> Option<serde_json::Value> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            diag.error(name, "", format!("cannot read file: {e}"), None);
            return None;
        }
    };
    if meta.len() > MAX_FILE_BYTES {
        diag.error(
            name,
            "",
            format!(
                "file is {} bytes, over the {MAX_FILE_BYTES}-byte limit",
                meta.len()
            ),
            None,
        );
        return None;
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            diag.error(name, "", format!("cannot read file: {e}"), None);
            return None;
        }
    };
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        diag.error(
            name,
            "",
            "file is empty",
            Some("it must hold one JSON object".into()),
        );
        return None;
    }
    match serde_json::from_slice(&bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            diag.error(
                name,
                "",
                format!("not valid JSON: {e}"),
                Some("check the line and column named".into()),
            );
            None
        }
    }
}

/// The configuration directory: `--config-dir` (or `PHOENIX_CONFIG_DIR`), else
/// the upstream install path.
pub fn config_dir(arg: Option<&Path>) -> PathBuf {
    arg.map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_DIR))
}

//! A store whose sled files are damaged (truncated, scribbled over) is moved aside and started
//! anew from the views the writer keeps beside it: every job whose view is whole keeps its record
//! and journal, the others are lost, and the caller is told which, and where the damaged files
//! went. Damage shows as a sled error, or as sled having recovered to an older state than the
//! views hold (sled takes a damaged log for a torn tail and drops what follows; the views are
//! written after each flush of sled, so they are never legitimately ahead of it).
//!
//! The lock is held from the check to the end. The views stay in place (a copy goes with the
//! damaged files) and the new store records its format last, so a salvage cut short leaves a
//! store that reads as damaged and is salvaged again from the same views.

use crate::record::JobRecord;
use crate::views::{file_stem, job_from_stem, read_view};
use crate::{EngineError, Event, OpenOptions, OpenReport, Store};
use std::path::{Path, PathBuf};

/// What [`Store::open_or_salvage`] did to a damaged store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Salvage {
    /// Where the damaged sled files (and a copy of the views) are now.
    pub moved_to: PathBuf,
    /// Jobs kept (their views were whole).
    pub kept: Vec<String>,
    /// Jobs lost (their views were damaged or missing a record).
    pub lost: Vec<String>,
}

impl Store {
    /// Opens the store in `dir`; when its sled files cannot be read whole, salvages it first.
    pub fn open_or_salvage(
        dir: &Path,
        opts: OpenOptions,
    ) -> Result<(Store, OpenReport, Option<Salvage>), EngineError> {
        let (guard, stale) = Store::lock(dir)?;
        // Checked before recovery, which would write what it found into the views.
        let store = Store::open_locked(dir, opts.clone(), guard)?;
        let damage = store
            .check_format()
            .and_then(|()| store.read_all())
            .and_then(|()| store.behind_views());
        match damage {
            Ok(false) => {
                let report = store.recovered(stale)?;
                return Ok((store, report, None));
            }
            Ok(true) => {}
            Err(e) if damaged(&e) => {}
            Err(e) => return Err(e),
        }
        let guard = store.into_lock();
        let io = |source| EngineError::Io {
            dir: dir.to_path_buf(),
            source,
        };
        let (kept, lost) = whole_views(dir).map_err(io)?;
        let moved_to = dir.join(format!("db.damaged-{}", crate::now_ms()));
        std::fs::rename(dir.join("db"), &moved_to).map_err(io)?;
        copy_dir(&dir.join("views"), &moved_to.join("views")).map_err(io)?;
        let store = Store::open_locked(dir, opts, guard)?;
        for (rec, events) in &kept {
            store.restore(rec, events)?;
        }
        store.mark_format()?;
        for job in &lost {
            let _ =
                std::fs::remove_file(dir.join("views").join(format!("{}.view", file_stem(job))));
        }
        let report = store.recovered(stale)?;
        let salvage = Salvage {
            moved_to,
            kept: kept.iter().map(|(r, _)| r.id.clone()).collect(),
            lost,
        };
        Ok((store, report, Some(salvage)))
    }
}

/// Whether `e` says the store's files are damaged (rather than locked, or newer).
fn damaged(e: &EngineError) -> bool {
    match e {
        EngineError::Sled { .. } | EngineError::Damaged { .. } => true,
        EngineError::Corrupt { job, .. } => job == "(store format)",
        _ => false,
    }
}

type Kept = Vec<(JobRecord, Vec<Event>)>;

/// The jobs whose views are whole (record and journal), and those whose views are not.
fn whole_views(dir: &Path) -> std::io::Result<(Kept, Vec<String>)> {
    let (mut kept, mut lost) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir(dir.join("views"))? {
        let path = entry?.path();
        let Some(stem) = path
            .file_name()
            .and_then(|n| n.to_str()?.strip_suffix(".view"))
        else {
            continue;
        };
        match read_view(&path) {
            Ok(v) if !v.torn => match v.record {
                Some(Ok(rec)) => kept.push((rec, v.events)),
                _ => lost.push(job_from_stem(stem)),
            },
            _ => lost.push(job_from_stem(stem)),
        }
    }
    kept.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    lost.sort();
    Ok((kept, lost))
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    crate::private::dir(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

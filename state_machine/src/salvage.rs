//! A store whose sled files are damaged (truncated, scribbled over) is moved aside and started
//! anew from the views the writer keeps beside it: every job whose view is whole keeps its record
//! and journal, the others are lost, and the caller is told which, and where the damaged files
//! went. Damage shows as a sled error, or as sled having recovered to an older state than the
//! views hold (sled takes a damaged log for a torn tail and drops what follows; the views are
//! written after each flush of sled, so they are never legitimately ahead of it).

use crate::lock::{self, Acquired};
use crate::record::JobRecord;
use crate::views::{job_from_stem, read_view};
use crate::{EngineError, Event, OpenOptions, OpenReport, Store};
use std::path::{Path, PathBuf};

/// What [`Store::open_or_salvage`] did to a damaged store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Salvage {
    /// Where the damaged sled files are now.
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
        // Checked before recovery, which would write what it found into the views.
        match Store::open_unrecovered(dir, opts.clone()) {
            Ok((store, stale)) => match store.read_all().and_then(|()| store.behind_views()) {
                Ok(false) => {
                    let report = store.recovered(stale)?;
                    return Ok((store, report, None));
                }
                Ok(true) => drop(store),
                Err(e) if damaged(&e) => drop(store),
                Err(e) => return Err(e),
            },
            Err(e) if damaged(&e) => {}
            Err(e) => return Err(e),
        }
        let (kept, salvage) = move_aside(dir)?;
        let (store, _) = Store::open(dir, opts.clone())?;
        for (rec, events) in &kept {
            store.restore(rec, events)?;
        }
        drop(store);
        // Opened once more, so that what was in progress is marked interrupted.
        let (store, report) = Store::open(dir, opts)?;
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

/// Under the store's lock: reads every whole view, and moves the sled files aside.
fn move_aside(dir: &Path) -> Result<(Kept, Salvage), EngineError> {
    let io = |source| EngineError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    let _guard = match lock::acquire(&dir.join("lock")).map_err(io)? {
        Acquired::Held { guard, .. } => guard,
        Acquired::Busy(holder) => {
            return Err(EngineError::Locked {
                dir: dir.to_path_buf(),
                holder,
            })
        }
    };
    let (mut kept, mut lost) = (Vec::new(), Vec::new());
    let views = dir.join("views");
    for entry in std::fs::read_dir(&views).map_err(io)? {
        let path = entry.map_err(io)?.path();
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
    // The views go with the damaged files; the new store writes its own from what is restored.
    let moved_to = dir.join(format!("db.damaged-{}", crate::now_ms()));
    std::fs::rename(dir.join("db"), &moved_to).map_err(io)?;
    std::fs::rename(&views, moved_to.join("views")).map_err(io)?;
    let salvage = Salvage {
        moved_to,
        kept: kept.iter().map(|(r, _)| r.id.clone()).collect(),
        lost,
    };
    Ok((kept, salvage))
}

//! Read-only access that needs no lock: from the views the writer keeps (see `views.rs`).

use crate::codec::CodecError;
use crate::journal::Event;
use crate::lock::{self, Holder};
use crate::record::JobRecord;
use crate::status::Status;
use crate::views::{job_from_stem, read_view, ViewFile};
use std::path::{Path, PathBuf};

/// One job as a reader sees it.
#[derive(Debug, Clone)]
pub struct JobView {
    pub record: JobRecord,
    pub journal: Vec<Event>,
}

/// A job's view, or why it could not be read.
#[derive(Debug)]
pub enum ReadOutcome {
    Ok(Box<JobView>),
    Unreadable { job: String, detail: String },
}

pub struct Reader {
    dir: PathBuf,
}

impl Reader {
    pub fn new(dir: &Path) -> Reader {
        Reader {
            dir: dir.to_path_buf(),
        }
    }

    /// The live writer, if a run holds the store now.
    pub fn writer(&self) -> Option<Holder> {
        lock::holder(&self.dir.join("lock"))
    }

    /// Every job, in id order. When no writer is alive, a job left `in_progress` is shown as
    /// `interrupted`: its process died inside the step, and the next run redoes it.
    pub fn jobs(&self) -> Vec<ReadOutcome> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("views")) else {
            return Vec::new();
        };
        let mut stems: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".view"))
                    .map(String::from)
            })
            .collect();
        stems.sort();
        let live = self.writer().is_some();
        stems
            .iter()
            .map(|stem| self.read(&job_from_stem(stem), live))
            .collect()
    }

    /// One job, if the store has it.
    pub fn job(&self, id: &str) -> Option<ReadOutcome> {
        let stem = crate::views::file_stem(id);
        if !self.dir.join("views").join(format!("{stem}.view")).exists() {
            return None;
        }
        Some(self.read(id, self.writer().is_some()))
    }

    fn read(&self, id: &str, live_writer: bool) -> ReadOutcome {
        let path = self
            .dir
            .join("views")
            .join(format!("{}.view", crate::views::file_stem(id)));
        let unreadable = |detail: String| ReadOutcome::Unreadable {
            job: id.to_string(),
            detail,
        };
        match read_view(&path) {
            Err(e) => unreadable(e.to_string()),
            // Without a writer nothing is mid-append: the file was cut short or damaged.
            Ok(ViewFile { torn: true, .. }) if !live_writer => unreadable(
                "its view file is cut short or damaged; the next run rebuilds it from the store"
                    .into(),
            ),
            Ok(ViewFile { record: None, .. }) => unreadable("no record in its view yet".into()),
            Ok(ViewFile {
                record: Some(Err(CodecError::TooNew { found })),
                ..
            }) => unreadable(format!("written by a newer version (format {found})")),
            Ok(ViewFile {
                record: Some(Err(CodecError::Corrupt(d))),
                ..
            }) => unreadable(d),
            Ok(ViewFile {
                record: Some(Ok(mut record)),
                events: journal,
                ..
            }) => {
                if !live_writer && record.status == Status::InProgress {
                    record.status = Status::Interrupted;
                }
                // Events compacted away in sled may linger in an older view: keep the kept ones.
                let journal = journal
                    .into_iter()
                    .filter(|e| e.seq >= record.journal_first)
                    .collect();
                ReadOutcome::Ok(Box::new(JobView { record, journal }))
            }
        }
    }
}

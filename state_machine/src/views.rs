//! Files the writer keeps beside the sled store so that readers never need its lock:
//! `views/<job>.rec` (the record, replaced atomically by rename) and `views/<job>.jnl` (the journal,
//! appended to; rewritten atomically on compaction). They are derived data: sled is the truth, and
//! every writer rebuilds them when it opens the store. They are not fsynced.

use crate::codec;
use crate::journal::Event;
use crate::record::JobRecord;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A file-name-safe form of a job id (`lxc/950` → `lxc%2F950`).
pub fn file_stem(job: &str) -> String {
    let mut out = String::with_capacity(job.len() + 4);
    for b in job.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn job_from_stem(stem: &str) -> String {
    let bytes = stem.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&stem[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A view file is rewritten from sled once it grows past this.
const MAX_VIEW_BYTES: u64 = 1 << 20;

pub struct Views {
    dir: PathBuf,
}

const TAG_EVENT: u8 = b'E';
const TAG_RECORD: u8 = b'R';

impl Views {
    pub fn create(dir: &Path) -> std::io::Result<Views> {
        crate::private::dir(dir)?;
        Ok(Views {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, job: &str) -> PathBuf {
        self.dir.join(format!("{}.view", file_stem(job)))
    }

    /// Appends the events and then the record in one write. Returns whether the file has grown
    /// past its limit and should be rewritten.
    pub fn append(&self, rec: &JobRecord, events: &[Event]) -> std::io::Result<bool> {
        let mut buf = Vec::with_capacity(1024);
        for e in events {
            frame(&mut buf, TAG_EVENT, &codec::encode(e));
        }
        frame(&mut buf, TAG_RECORD, &codec::encode(rec));
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(self.path(&rec.id))?;
        crate::private::file(&f)?;
        f.write_all(&buf)?;
        Ok(f.metadata()?.len() > MAX_VIEW_BYTES)
    }

    /// Replaces the view with the given journal and record, atomically (write, then rename).
    pub fn rewrite(&self, rec: &JobRecord, events: &[Event]) -> std::io::Result<()> {
        let mut buf = Vec::new();
        for e in events {
            frame(&mut buf, TAG_EVENT, &codec::encode(e));
        }
        frame(&mut buf, TAG_RECORD, &codec::encode(rec));
        let tmp = self.dir.join(format!("{}.view.tmp", file_stem(&rec.id)));
        let mut f = crate::private::create(&tmp)?;
        f.write_all(&buf)?;
        drop(f);
        std::fs::rename(tmp, self.path(&rec.id))
    }

    pub fn remove(&self, job: &str) {
        let _ = std::fs::remove_file(self.path(job));
    }
}

/// `[len u32 LE][tag u8][body]`: a reader stops cleanly at a torn last frame.
fn frame(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.extend_from_slice(&((body.len() + 1) as u32).to_le_bytes());
    out.push(tag);
    out.extend_from_slice(body);
}

/// What a view file holds: the last complete record, and the journal (in order, without repeats).
pub struct ViewFile {
    pub record: Option<Result<JobRecord, codec::CodecError>>,
    pub events: Vec<Event>,
    /// It does not end with a whole record frame: cut short (damage, or a writer mid-append), so
    /// its last record may not be the job's.
    pub torn: bool,
}

/// Reads a view file. A torn or undecodable tail is ignored (the writer may be mid-append).
pub fn read_view(path: &Path) -> std::io::Result<ViewFile> {
    let bytes = std::fs::read(path)?;
    let mut record = None;
    let mut events: Vec<Event> = Vec::new();
    let mut at = 0usize;
    let mut last_tag = None;
    while at + 5 <= bytes.len() {
        let len =
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let Some(body) = bytes.get(at + 4..at + 4 + len) else {
            break;
        };
        let (tag, body) = (body[0], &body[1..]);
        match tag {
            TAG_EVENT => match codec::decode::<Event>(body) {
                Ok(e) if events.last().is_none_or(|l| e.seq > l.seq) => events.push(e),
                Ok(_) => {}
                Err(_) => break,
            },
            TAG_RECORD => record = Some(codec::decode::<JobRecord>(body)),
            _ => break,
        }
        last_tag = Some(tag);
        at += 4 + len;
    }
    let torn = at != bytes.len() || last_tag != Some(TAG_RECORD);
    Ok(ViewFile {
        record,
        events,
        torn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_round_trip() {
        for id in ["lxc/950", "vm/1001", "host/setup", "odd id%/x", "ünï"] {
            assert_eq!(job_from_stem(&file_stem(id)), id);
            assert!(file_stem(id)
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.%".contains(&b)));
        }
    }
}

//! The store: open (lock, version check, recovery of interrupted steps), jobs, reset.

use crate::codec::{self, CodecError, FORMAT_VERSION};
use crate::error::EngineError;
use crate::journal::{inflight_key, journal_key, journal_prefix, record_key, Event, EventKind};
use crate::lock::{self, Acquired, Holder, LockGuard};
use crate::record::{DoneStep, ErrorInfo, JobRecord, Started};
use crate::spec::{JobSpec, StepSpec};
use crate::state::JobState;
use crate::status::{Status, StatusEvent};
use crate::views::Views;
use std::path::{Path, PathBuf};

const META_FORMAT: &[u8] = b"meta:format";

/// Options for [`Store::open`].
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Journal events kept per job; older ones are compacted into the job's summary.
    pub journal_cap: u64,
    /// The id recorded with every event of this process (e.g. `run-<time>-<pid>`).
    pub run_id: String,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            journal_cap: 1000,
            run_id: format!("run-{}-{}", crate::now_ms(), std::process::id()),
        }
    }
}

/// What opening found.
#[derive(Debug, Default)]
pub struct OpenReport {
    /// `(job, step)` for every step that a dead process left started.
    pub interrupted: Vec<(String, String)>,
    /// The previous writer, when it died holding the lock.
    pub stale_lock: Option<Holder>,
    /// Jobs whose records could not be read (reset clears them).
    pub corrupt: Vec<EngineError>,
}

/// A locked, open state store. One per process; see [`crate::Reader`] for read-only access.
///
/// The store is not typed by state: each job's steps are recorded by their states' names, and
/// [`Store::begin`] and [`Store::reset`] take the job's own [`JobState`] type, so jobs of different
/// kinds (each with its own states) live side by side.
pub struct Store {
    dir: PathBuf,
    db: sled::Db,
    tree: sled::Tree,
    views: Views,
    opts: OpenOptions,
    _lock: LockGuard,
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, taking its writer lock. Fails fast with
    /// [`EngineError::Locked`] naming the holder when another process has it.
    pub fn open(dir: &Path, opts: OpenOptions) -> Result<(Store, OpenReport), EngineError> {
        let (store, stale) = Store::open_unrecovered(dir, opts)?;
        let report = store.recovered(stale)?;
        Ok((store, report))
    }

    /// Opens the store without touching what a dead writer left (see [`Store::recovered`]).
    pub(crate) fn open_unrecovered(
        dir: &Path,
        opts: OpenOptions,
    ) -> Result<(Store, Option<Holder>), EngineError> {
        let (guard, stale) = Store::lock(dir)?;
        let store = Store::open_locked(dir, opts, guard)?;
        store.check_format()?;
        Ok((store, stale))
    }

    /// Closes sled and hands back the writer lock, still held.
    pub(crate) fn into_lock(self) -> LockGuard {
        let Store {
            db, tree, _lock, ..
        } = self;
        drop(tree);
        drop(db);
        _lock
    }

    /// Takes the store's writer lock (the previous holder, when it died holding it).
    pub(crate) fn lock(dir: &Path) -> Result<(LockGuard, Option<Holder>), EngineError> {
        let io = |source| EngineError::Io {
            dir: dir.to_path_buf(),
            source,
        };
        crate::private::dir(dir).map_err(io)?;
        match lock::acquire(&dir.join("lock")).map_err(io)? {
            Acquired::Held { guard, stale } => Ok((guard, stale)),
            Acquired::Busy(holder) => Err(EngineError::Locked {
                dir: dir.to_path_buf(),
                holder,
            }),
        }
    }

    /// Opens sled and the views under a lock already held; the format is not checked.
    pub(crate) fn open_locked(
        dir: &Path,
        opts: OpenOptions,
        guard: LockGuard,
    ) -> Result<Store, EngineError> {
        let db = open_sled(&dir.join("db")).map_err(|source| EngineError::Sled {
            dir: dir.to_path_buf(),
            source,
        })?;
        let tree = (*db).clone();
        let views = Views::create(&dir.join("views")).map_err(|source| EngineError::Io {
            dir: dir.to_path_buf(),
            source,
        })?;
        Ok(Store {
            dir: dir.to_path_buf(),
            db,
            tree,
            views,
            opts,
            _lock: guard,
        })
    }

    /// Marks what a dead writer left started as interrupted and brings the views up to date.
    pub(crate) fn recovered(&self, stale: Option<Holder>) -> Result<OpenReport, EngineError> {
        let mut report = OpenReport {
            stale_lock: stale,
            ..Default::default()
        };
        self.recover(&mut report)?;
        Ok(report)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn run_id(&self) -> &str {
        &self.opts.run_id
    }

    fn sled_err(&self, source: sled::Error) -> EngineError {
        EngineError::Sled {
            dir: self.dir.clone(),
            source,
        }
    }

    pub(crate) fn check_format(&self) -> Result<(), EngineError> {
        match self.tree.get(META_FORMAT).map_err(|e| self.sled_err(e))? {
            Some(v) => {
                let found = match codec::decode::<u16>(&v) {
                    Ok(f) => f,
                    Err(CodecError::TooNew { found }) => found,
                    Err(CodecError::Corrupt(detail)) => {
                        return Err(EngineError::Corrupt {
                            job: "(store format)".into(),
                            detail,
                        })
                    }
                };
                if found > FORMAT_VERSION {
                    return Err(EngineError::TooNew {
                        dir: self.dir.clone(),
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
            }
            None if self.has_views() => {
                return Err(EngineError::Damaged {
                    dir: self.dir.clone(),
                    detail: "its sled files hold nothing, but views of its jobs exist".into(),
                })
            }
            None => self.mark_format()?,
        }
        Ok(())
    }

    /// Records the format of a new store (a salvage does it last: until then the store reads
    /// as damaged, and a salvage cut short is done again).
    pub(crate) fn mark_format(&self) -> Result<(), EngineError> {
        self.tree
            .insert(META_FORMAT, codec::encode(&FORMAT_VERSION))
            .map_err(|e| self.sled_err(e))?;
        self.flush()
    }

    /// Whether a writer ever wrote a job's view here.
    fn has_views(&self) -> bool {
        std::fs::read_dir(self.dir.join("views")).is_ok_and(|mut d| {
            d.any(|e| e.is_ok_and(|e| e.path().extension().is_some_and(|x| x == "view")))
        })
    }

    /// Marks every started-but-unfinished step interrupted, and brings the reader views up to
    /// date: all of them when they were never built, those the dead writer touched after a crash.
    fn recover(&self, report: &mut OpenReport) -> Result<(), EngineError> {
        let io = |source| EngineError::Io {
            dir: self.dir.clone(),
            source,
        };
        let mut inflight = Vec::new();
        for item in self.tree.scan_prefix(b"run:") {
            let (key, _) = item.map_err(|e| self.sled_err(e))?;
            inflight.push(String::from_utf8_lossy(&key[4..]).into_owned());
        }
        for job in inflight {
            let mut rec = match self.job(&job) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e @ EngineError::Corrupt { .. }) => {
                    report.corrupt.push(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            if let Some(started) = rec.started.take() {
                rec.status = transition(&rec, StatusEvent::Interrupt)?;
                rec.cursor = Some(started.step.clone());
                let event = self.event(
                    &mut rec,
                    EventKind::StepInterrupted {
                        step: started.step.clone(),
                        run_id: started.run_id,
                    },
                );
                self.commit(&mut rec, vec![event])?;
                report.interrupted.push((job, started.step));
            }
        }
        let marker = self.dir.join("views").join(".complete");
        let since = match (&report.stale_lock, marker.exists()) {
            (_, false) => Some(0),
            (Some(dead), true) => Some(dead.started_ms),
            (None, true) => None,
        };
        if let Some(since) = since {
            for item in self.tree.scan_prefix(b"job:") {
                let (key, value) = item.map_err(|e| self.sled_err(e))?;
                let job = String::from_utf8_lossy(&key[4..]).into_owned();
                match decode_record(&job, &value, &self.dir) {
                    Ok(rec) if rec.updated_at >= since => {
                        self.views.rewrite(&rec, &self.journal(&job)?).map_err(io)?
                    }
                    Ok(_) => {}
                    Err(e @ EngineError::Corrupt { .. }) => report.corrupt.push(e),
                    Err(e) => return Err(e),
                }
            }
            crate::private::create(&marker).map_err(io)?;
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), EngineError> {
        self.db.flush().map(|_| ()).map_err(|e| self.sled_err(e))
    }

    /// The record of one job, if it has one.
    pub fn job(&self, id: &str) -> Result<Option<JobRecord>, EngineError> {
        match self
            .tree
            .get(record_key(id))
            .map_err(|e| self.sled_err(e))?
        {
            None => Ok(None),
            Some(v) => decode_record(id, &v, &self.dir).map(Some),
        }
    }

    /// Every job, in id order; unreadable ones as errors naming the job.
    pub fn jobs(&self) -> Result<Vec<Result<JobRecord, EngineError>>, EngineError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(b"job:") {
            let (key, value) = item.map_err(|e| self.sled_err(e))?;
            let id = String::from_utf8_lossy(&key[4..]).into_owned();
            out.push(decode_record(&id, &value, &self.dir));
        }
        Ok(out)
    }

    /// The kept journal of a job, oldest first.
    pub fn journal(&self, id: &str) -> Result<Vec<Event>, EngineError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(journal_prefix(id)) {
            let (_, value) = item.map_err(|e| self.sled_err(e))?;
            out.push(codec::decode(&value).map_err(|e| EngineError::Corrupt {
                job: id.to_string(),
                detail: format!("journal: {e}"),
            })?);
        }
        Ok(out)
    }

    fn event(&self, rec: &mut JobRecord, kind: EventKind) -> Event {
        let e = Event {
            seq: rec.journal_next,
            at: crate::now_ms(),
            run_id: self.opts.run_id.clone(),
            kind,
        };
        rec.journal_next += 1;
        e
    }

    /// Writes the record and events in one atomic batch, flushes, and updates the views.
    fn commit(&self, rec: &mut JobRecord, events: Vec<Event>) -> Result<(), EngineError> {
        rec.updated_at = crate::now_ms();
        let mut batch = sled::Batch::default();
        for e in &events {
            batch.insert(journal_key(&rec.id, e.seq), codec::encode(e));
        }
        // Compaction: past the cap by a quarter, drop the oldest quarter into the summary.
        let kept = rec.journal_next - rec.journal_first;
        let mut compacted = false;
        if kept > self.opts.journal_cap + self.opts.journal_cap / 4 {
            let drop_to = rec.journal_next - self.opts.journal_cap;
            for seq in rec.journal_first..drop_to {
                if let Some(old) = self
                    .tree
                    .get(journal_key(&rec.id, seq))
                    .map_err(|e| self.sled_err(e))?
                {
                    if let Ok(e) = codec::decode::<Event>(&old) {
                        rec.journal_summary.absorb(&e);
                    }
                }
                batch.remove(journal_key(&rec.id, seq));
            }
            rec.journal_first = drop_to;
            compacted = true;
        }
        batch.insert(record_key(&rec.id), codec::encode(rec));
        match rec.started {
            Some(_) => batch.insert(inflight_key(&rec.id), &[][..]),
            None => batch.remove(inflight_key(&rec.id)),
        }
        self.tree.apply_batch(batch).map_err(|e| self.sled_err(e))?;
        self.flush()?;
        let io = |source| EngineError::Io {
            dir: self.dir.clone(),
            source,
        };
        let too_big = !compacted && self.views.append(rec, &events).map_err(io)?;
        if compacted || too_big {
            self.views
                .rewrite(rec, &self.journal(&rec.id)?)
                .map_err(io)?;
        }
        Ok(())
    }

    /// Prepares a job to run `spec`: creates its record if new, forgets steps that are no longer
    /// in the spec or whose digest changed (journaling why), and places the cursor on the first
    /// step that is not done. Returns the job, ready for [`Job::start`].
    pub fn begin<S: JobState>(&self, spec: &JobSpec<S>) -> Result<Job<'_, S>, EngineError> {
        spec.check().map_err(|message| EngineError::Invalid {
            job: spec.id.clone(),
            message,
        })?;
        let mut events = Vec::new();
        let mut rec = match self.job(&spec.id)? {
            Some(r) => r,
            None => {
                let mut r = JobRecord::new(&spec.id, S::initial().name(), crate::now_ms());
                events.push(self.event(&mut r, EventKind::JobCreated));
                r
            }
        };
        let mut keep = Vec::with_capacity(rec.done.len());
        for d in std::mem::take(&mut rec.done) {
            match spec.steps.iter().find(|s| s.name == d.name) {
                None => events.push(self.event(
                    &mut rec,
                    EventKind::ConfigChanged {
                        step: d.name.clone(),
                        reason: "step is no longer part of the job".into(),
                    },
                )),
                Some(s) if s.digest != d.digest => events.push(self.event(
                    &mut rec,
                    EventKind::ConfigChanged {
                        step: d.name.clone(),
                        reason: format!(
                            "configuration changed (digest {} -> {})",
                            short(&d.digest),
                            short(&s.digest)
                        ),
                    },
                )),
                Some(_) => keep.push(d),
            }
        }
        rec.done = keep;
        let cursor = next_undone(spec, &rec, 0);
        let new_cursor = cursor.map(|i| spec.steps[i].name.clone());
        if new_cursor != rec.cursor
            && rec.status != Status::Failed
            && rec.status != Status::Interrupted
        {
            rec.attempt = 0;
        }
        rec.cursor = new_cursor;
        let event = if cursor.is_some() {
            StatusEvent::WorkAdded
        } else {
            StatusEvent::NothingLeft
        };
        rec.status = transition(&rec, event)?;
        let state = derived_state(spec, &rec);
        if state.name() != rec.state {
            rec.state = state.name().to_string();
        }
        if !events.is_empty() || self.job(&spec.id)?.as_ref() != Some(&rec) {
            self.commit(&mut rec, events)?;
        }
        Ok(Job {
            store: self,
            spec: spec.clone(),
            rec,
            current: None,
        })
    }

    /// Sends jobs back: to the first step after `to`'s steps (keeping the steps of `to` and
    /// earlier states), or to the very start with `None`. Works on unreadable records too (they
    /// are removed). Returns the ids reset.
    pub fn reset<S: JobState>(
        &self,
        ids: &[String],
        to: Option<S>,
        reason: &str,
    ) -> Result<Vec<String>, EngineError> {
        let mut done_ids = Vec::new();
        for id in ids {
            match self.job(id) {
                Ok(Some(mut rec)) => {
                    let keep_until = to.unwrap_or_else(S::initial);
                    rec.done
                        .retain(|d| S::from_name(&d.state).is_some_and(|s| s <= keep_until));
                    rec.status = transition(&rec, StatusEvent::Reset)?;
                    rec.started = None;
                    rec.intent = None;
                    rec.last_error = None;
                    rec.attempt = 0;
                    rec.cursor = None;
                    rec.state = keep_until.name().to_string();
                    let ev = self.event(
                        &mut rec,
                        EventKind::Reset {
                            to: keep_until.name().to_string(),
                            reason: reason.to_string(),
                        },
                    );
                    self.commit(&mut rec, vec![ev])?;
                    done_ids.push(id.clone());
                }
                Ok(None) => {}
                Err(EngineError::Corrupt { .. }) => {
                    self.remove(id)?;
                    done_ids.push(id.clone());
                }
                Err(e) => return Err(e),
            }
        }
        Ok(done_ids)
    }

    /// Forgets that the named steps are done (e.g. drift: the guest was found stopped), so the
    /// next run redoes them. Journaled with `reason`. Returns whether anything was forgotten.
    pub fn forget(&self, id: &str, steps: &[&str], reason: &str) -> Result<bool, EngineError> {
        let Some(mut rec) = self.job(id)? else {
            return Ok(false);
        };
        let before = rec.done.len();
        let mut events = Vec::new();
        rec.done.retain(|d| !steps.contains(&d.name.as_str()));
        if rec.done.len() == before {
            return Ok(false);
        }
        for step in steps {
            events.push(self.event(
                &mut rec,
                EventKind::ConfigChanged {
                    step: step.to_string(),
                    reason: reason.to_string(),
                },
            ));
        }
        if rec.status == Status::Completed {
            rec.status = transition(&rec, StatusEvent::WorkAdded)?;
        }
        self.commit(&mut rec, events)?;
        Ok(true)
    }

    /// Every job id with a record (readable or not).
    pub fn job_ids(&self) -> Result<Vec<String>, EngineError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(b"job:") {
            let (key, _) = item.map_err(|e| self.sled_err(e))?;
            out.push(String::from_utf8_lossy(&key[4..]).into_owned());
        }
        Ok(out)
    }

    /// Deletes a job's record and journal without reading them. The view goes first: a view
    /// left without a record would read as sled having lost it.
    pub fn remove(&self, id: &str) -> Result<(), EngineError> {
        self.views.remove(id);
        let mut batch = sled::Batch::default();
        batch.remove(record_key(id));
        batch.remove(inflight_key(id));
        for item in self.tree.scan_prefix(journal_prefix(id)) {
            let (key, _) = item.map_err(|e| self.sled_err(e))?;
            batch.remove(key);
        }
        self.tree.apply_batch(batch).map_err(|e| self.sled_err(e))?;
        self.flush()
    }

    /// Puts back a job's record and journal as they were (salvaging a damaged store): a record
    /// with a step started is marked interrupted when the store is next opened.
    pub(crate) fn restore(&self, rec: &JobRecord, events: &[Event]) -> Result<(), EngineError> {
        let mut batch = sled::Batch::default();
        for e in events {
            batch.insert(journal_key(&rec.id, e.seq), codec::encode(e));
        }
        batch.insert(record_key(&rec.id), codec::encode(rec));
        if rec.started.is_some() {
            batch.insert(inflight_key(&rec.id), &[][..]);
        }
        self.tree.apply_batch(batch).map_err(|e| self.sled_err(e))?;
        self.flush()?;
        self.views
            .rewrite(rec, events)
            .map_err(|source| EngineError::Io {
                dir: self.dir.clone(),
                source,
            })
    }

    /// Reads every key and value, so that damage anywhere in sled's files shows now.
    pub(crate) fn read_all(&self) -> Result<(), EngineError> {
        for item in self.tree.iter() {
            item.map_err(|e| self.sled_err(e))?;
        }
        Ok(())
    }

    /// Whether some job's view holds a later record than sled does (so sled lost what it had
    /// flushed).
    pub(crate) fn behind_views(&self) -> Result<bool, EngineError> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("views")) else {
            return Ok(false);
        };
        for entry in entries.flatten() {
            let Ok(view) = crate::views::read_view(&entry.path()) else {
                continue;
            };
            let Some(Ok(seen)) = view.record else {
                continue;
            };
            let ahead = match self.job(&seen.id) {
                Ok(Some(rec)) => rec.journal_next < seen.journal_next,
                Ok(None) => true,
                Err(_) => false,
            };
            if ahead {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Writes raw bytes as a job's record (tests use it to simulate corruption).
    #[doc(hidden)]
    pub fn put_raw_record(&self, id: &str, bytes: &[u8]) -> Result<(), EngineError> {
        self.tree
            .insert(record_key(id), bytes)
            .map_err(|e| self.sled_err(e))?;
        self.flush()
    }
}

/// Opens sled. sled releases its own file lock from a background thread shortly after the last
/// handle drops, so a store reopened right after a previous writer exits (ours holds the outer
/// lock) may briefly see it held: retry that case for up to two seconds.
fn open_sled(path: &Path) -> sled::Result<sled::Db> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    crate::private::dir(path)?;
    loop {
        let result = sled::Config::new()
            .path(path)
            .mode(sled::Mode::LowSpace)
            .cache_capacity(64 * 1024 * 1024)
            .open();
        if result.is_ok() {
            // sled makes its files with the process's umask (those it makes later are inside
            // this 0700 directory).
            crate::private::contents(path)?;
        }
        match result {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

fn short(d: &str) -> &str {
    &d[..d.len().min(12)]
}

fn decode_record(id: &str, bytes: &[u8], dir: &Path) -> Result<JobRecord, EngineError> {
    codec::decode(bytes).map_err(|e| match e {
        CodecError::TooNew { found } => EngineError::TooNew {
            dir: dir.to_path_buf(),
            found,
            supported: FORMAT_VERSION,
        },
        CodecError::Corrupt(detail) => EngineError::Corrupt {
            job: id.to_string(),
            detail,
        },
    })
}

fn transition(rec: &JobRecord, event: StatusEvent) -> Result<Status, EngineError> {
    rec.status
        .on_event(event)
        .ok_or_else(|| EngineError::Invalid {
            job: rec.id.clone(),
            message: format!("{event:?} is not allowed while the job is {}", rec.status),
        })
}

/// Index of the first step at or after `from` that is not done with its current digest.
fn next_undone<S: JobState>(spec: &JobSpec<S>, rec: &JobRecord, from: usize) -> Option<usize> {
    (from..spec.steps.len()).find(|&i| {
        let s = &spec.steps[i];
        rec.done_step(&s.name).is_none_or(|d| d.digest != s.digest)
    })
}

/// The furthest state all of whose steps, and all earlier states' steps, are done.
fn derived_state<S: JobState>(spec: &JobSpec<S>, rec: &JobRecord) -> S {
    let mut state = S::initial();
    for &s in S::all()
        .iter()
        .take_while(|&&s| spec.until.is_none_or(|u| s <= u))
    {
        let complete = spec.steps.iter().filter(|st| st.state <= s).all(|st| {
            rec.done_step(&st.name)
                .is_some_and(|d| d.digest == st.digest)
        });
        if !complete {
            break;
        }
        state = s;
    }
    state
}

/// A step that has been durably started.
#[derive(Debug, Clone)]
pub struct StepRun<S> {
    pub index: usize,
    pub spec: StepSpec<S>,
    /// Starts of this step so far, this one included.
    pub attempt: u32,
    /// What an earlier, interrupted attempt saved with [`Job::save_intent`].
    pub intent: Option<Vec<u8>>,
}

impl<S> StepRun<S> {
    pub fn intent(&self) -> Option<&[u8]> {
        self.intent.as_deref()
    }
}

/// A job being run. Drive it with [`Job::start`], then [`Job::succeed_and_start_next`] /
/// [`Job::succeed`] / [`Job::fail`].
pub struct Job<'s, S: JobState> {
    store: &'s Store,
    spec: JobSpec<S>,
    rec: JobRecord,
    current: Option<(usize, u64)>,
}

impl<S: JobState> Job<'_, S> {
    pub fn record(&self) -> &JobRecord {
        &self.rec
    }

    pub fn spec(&self) -> &JobSpec<S> {
        &self.spec
    }

    /// The step the cursor is on, without starting it.
    pub fn peek(&self) -> Option<&StepSpec<S>> {
        next_undone(&self.spec, &self.rec, 0).map(|i| &self.spec.steps[i])
    }

    fn started_events(
        &mut self,
        index: usize,
        events: &mut Vec<Event>,
    ) -> Result<StepRun<S>, EngineError> {
        let step = self.spec.steps[index].clone();
        if self.rec.cursor.as_deref() != Some(step.name.as_str()) {
            self.rec.attempt = 0;
        }
        self.rec.attempt += 1;
        self.rec.cursor = Some(step.name.clone());
        self.rec.status = transition(&self.rec, StatusEvent::StepStarted)?;
        let now = crate::now_ms();
        self.rec.started = Some(Started {
            step: step.name.clone(),
            at: now,
            run_id: self.store.opts.run_id.clone(),
        });
        self.rec.run_id = Some(self.store.opts.run_id.clone());
        let intent = match &self.rec.intent {
            Some((s, data)) if *s == step.name => Some(data.clone()),
            _ => None,
        };
        let attempt = self.rec.attempt;
        events.push(self.store.event(
            &mut self.rec,
            EventKind::StepStarted {
                step: step.name.clone(),
                attempt,
            },
        ));
        self.current = Some((index, now));
        Ok(StepRun {
            index,
            spec: step,
            attempt: self.rec.attempt,
            intent,
        })
    }

    /// Durably starts the cursor step (`StepStarted` flushed) and returns it; `None` when every
    /// step is done.
    pub fn start(&mut self) -> Result<Option<StepRun<S>>, EngineError> {
        let Some(index) = next_undone(&self.spec, &self.rec, 0) else {
            return Ok(None);
        };
        let mut events = Vec::new();
        let run = self.started_events(index, &mut events)?;
        self.store.commit(&mut self.rec, events)?;
        Ok(Some(run))
    }

    /// Saves an intent or handle for the running step, durably, before a long operation.
    pub fn save_intent(&mut self, data: &[u8]) -> Result<(), EngineError> {
        let Some((index, _)) = self.current else {
            return Err(EngineError::Invalid {
                job: self.rec.id.clone(),
                message: "save_intent outside a step".into(),
            });
        };
        let step = self.spec.steps[index].name.clone();
        self.rec.intent = Some((step.clone(), data.to_vec()));
        let ev = self
            .store
            .event(&mut self.rec, EventKind::IntentSaved { step });
        self.store.commit(&mut self.rec, vec![ev])
    }

    /// Journals a remark of the running step.
    pub fn note(&mut self, message: &str) -> Result<(), EngineError> {
        let Some((index, _)) = self.current else {
            return Err(EngineError::Invalid {
                job: self.rec.id.clone(),
                message: "note outside a step".into(),
            });
        };
        let kind = EventKind::Note {
            step: self.spec.steps[index].name.clone(),
            message: message.to_string(),
        };
        let ev = self.store.event(&mut self.rec, kind);
        self.store.commit(&mut self.rec, vec![ev])
    }

    fn success_events(&mut self, events: &mut Vec<Event>) -> Result<usize, EngineError> {
        let Some((index, started_at)) = self.current.take() else {
            return Err(EngineError::Invalid {
                job: self.rec.id.clone(),
                message: "no step is running".into(),
            });
        };
        let step = &self.spec.steps[index];
        let now = crate::now_ms();
        self.rec.done.retain(|d| d.name != step.name);
        self.rec.done.push(DoneStep {
            name: step.name.clone(),
            state: step.state.name().to_string(),
            digest: step.digest.clone(),
            started_at,
            finished_at: now,
            attempts: self.rec.attempt,
        });
        self.rec.started = None;
        self.rec.intent = None;
        self.rec.last_error = None;
        let next = next_undone(&self.spec, &self.rec, 0);
        let ev = if next.is_some() {
            StatusEvent::StepSucceeded
        } else {
            StatusEvent::LastStepSucceeded
        };
        self.rec.status = transition(&self.rec, ev)?;
        self.rec.cursor = next.map(|i| self.spec.steps[i].name.clone());
        self.rec.attempt = 0;
        let name = step.name.clone();
        events.push(self.store.event(
            &mut self.rec,
            EventKind::StepSucceeded {
                step: name,
                duration_ms: now.saturating_sub(started_at),
            },
        ));
        let state = derived_state(&self.spec, &self.rec);
        if state.name() != self.rec.state {
            self.rec.state = state.name().to_string();
            events.push(self.store.event(
                &mut self.rec,
                EventKind::StateEntered {
                    state: state.name().to_string(),
                },
            ));
        }
        Ok(index)
    }

    /// Records the running step's success (one flush). The job stops here.
    pub fn succeed(&mut self) -> Result<(), EngineError> {
        let mut events = Vec::new();
        self.success_events(&mut events)?;
        self.store.commit(&mut self.rec, events)
    }

    /// Records the running step's success and starts the next one in the same atomic batch and
    /// flush. Returns the next step, or `None` when the job is complete.
    pub fn succeed_and_start_next(&mut self) -> Result<Option<StepRun<S>>, EngineError> {
        let mut events = Vec::new();
        self.success_events(&mut events)?;
        let next = match next_undone(&self.spec, &self.rec, 0) {
            Some(i) => Some(self.started_events(i, &mut events)?),
            None => None,
        };
        self.store.commit(&mut self.rec, events)?;
        Ok(next)
    }

    /// Records the running step's failure with its error and output tail (one flush).
    pub fn fail(&mut self, error: &str, output_tail: &str) -> Result<(), EngineError> {
        let Some((index, _)) = self.current.take() else {
            return Err(EngineError::Invalid {
                job: self.rec.id.clone(),
                message: "no step is running".into(),
            });
        };
        let step = self.spec.steps[index].name.clone();
        self.rec.status = transition(&self.rec, StatusEvent::StepFailed)?;
        self.rec.started = None;
        self.rec.last_error = Some(ErrorInfo {
            step: step.clone(),
            message: error.to_string(),
            output_tail: output_tail.to_string(),
            at: crate::now_ms(),
        });
        let ev = self.store.event(
            &mut self.rec,
            EventKind::StepFailed {
                step,
                error: error.to_string(),
                output_tail: output_tail.to_string(),
            },
        );
        self.store.commit(&mut self.rec, vec![ev])
    }
}

//! The engine's contract, end to end on a real sled store in a temp dir.

use state_machine::*;
use std::path::Path;

state_machine::job_states! {
    /// The states of the jobs in these tests (a guest's, as an example of a kind of job).
    enum Stage {
        Defined = "defined",
        Created = "created",
        Configured = "configured",
        Running = "running",
        Customizing = "customizing",
        Completed = "completed",
    }
}

fn opts(run: &str) -> OpenOptions {
    OpenOptions {
        run_id: run.to_string(),
        ..OpenOptions::default()
    }
}

fn open(dir: &Path, run: &str) -> (Store, OpenReport) {
    Store::open(dir, opts(run)).unwrap()
}

fn spec(digest3: &str) -> JobSpec<Stage> {
    JobSpec::new("lxc/950")
        .step("create", Stage::Created, "d1")
        .step("resources", Stage::Configured, "d2")
        .step("network", Stage::Configured, digest3)
        .step("start", Stage::Running, "d4")
        .step("feature:docker", Stage::Customizing, "d5")
        .step("health", Stage::Completed, "d6")
}

/// Runs a job to the end, returning the steps that ran.
fn run_all(job: &mut Job<'_, Stage>) -> Vec<String> {
    let mut ran = Vec::new();
    let mut step = job.start().unwrap();
    while let Some(s) = step {
        ran.push(s.spec.name.clone());
        step = job.succeed_and_start_next().unwrap();
    }
    ran
}

fn kinds(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| match &e.kind {
            EventKind::StepStarted { step, .. } => format!("start {step}"),
            EventKind::StepSucceeded { step, .. } => format!("ok {step}"),
            EventKind::StepFailed { step, .. } => format!("fail {step}"),
            EventKind::StepInterrupted { step, .. } => format!("interrupted {step}"),
            EventKind::StateEntered { state } => format!("state {state}"),
            EventKind::ConfigChanged { step, .. } => format!("changed {step}"),
            EventKind::Reset { to, .. } => format!("reset {to}"),
            other => other.name().to_string(),
        })
        .collect()
}

#[test]
fn a_job_runs_through_its_states_and_journals_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), "r1");
    let mut job = store.begin(&spec("d3")).unwrap();
    assert_eq!(job.record().state, "defined");
    assert_eq!(
        run_all(&mut job),
        [
            "create",
            "resources",
            "network",
            "start",
            "feature:docker",
            "health"
        ]
    );
    let rec = store.job("lxc/950").unwrap().unwrap();
    assert_eq!(rec.status, Status::Completed);
    assert_eq!(rec.state, "completed");
    assert_eq!(rec.cursor, None);
    assert_eq!(rec.done.len(), 6);
    let j = store.journal("lxc/950").unwrap();
    assert_eq!(
        kinds(&j)[..8],
        [
            "job_created",
            "start create",
            "ok create",
            "state created",
            "start resources",
            "ok resources",
            "start network",
            "ok network"
        ]
    );
    assert!(j
        .windows(2)
        .all(|w| w[1].seq == w[0].seq + 1 && w[1].at >= w[0].at));
    // A second run does nothing.
    let mut again = store.begin(&spec("d3")).unwrap();
    assert!(run_all(&mut again).is_empty());
    assert_eq!(store.journal("lxc/950").unwrap().len(), j.len());
}

#[test]
fn an_interrupted_step_runs_again_once_and_keeps_its_intent() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = open(dir.path(), "r1");
        let mut job = store.begin(&spec("d3")).unwrap();
        let s = job.start().unwrap().unwrap();
        assert_eq!(s.spec.name, "create");
        let s = job.succeed_and_start_next().unwrap().unwrap();
        assert_eq!(s.spec.name, "resources");
        job.save_intent(b"clone 901->950 issued").unwrap();
        // The process dies here: no succeed, no fail.
    }
    let (store, report) = open(dir.path(), "r2");
    assert_eq!(
        report.interrupted,
        vec![("lxc/950".to_string(), "resources".to_string())]
    );
    let rec = store.job("lxc/950").unwrap().unwrap();
    assert_eq!(rec.status, Status::Interrupted);
    assert_eq!(rec.cursor.as_deref(), Some("resources"));
    let mut job = store.begin(&spec("d3")).unwrap();
    let s = job.start().unwrap().unwrap();
    assert_eq!((s.spec.name.as_str(), s.attempt), ("resources", 2));
    assert_eq!(s.intent(), Some(&b"clone 901->950 issued"[..]));
    let mut ran = vec![s.spec.name.clone()];
    let mut next = job.succeed_and_start_next().unwrap();
    while let Some(s) = next {
        assert!(s.intent.is_none());
        ran.push(s.spec.name.clone());
        next = job.succeed_and_start_next().unwrap();
    }
    assert_eq!(
        ran,
        ["resources", "network", "start", "feature:docker", "health"]
    );
    let k = kinds(&store.journal("lxc/950").unwrap());
    let i = k.iter().position(|e| e == "interrupted resources").unwrap();
    assert_eq!(k[i + 1], "start resources");
    assert_eq!(
        k.iter().filter(|e| *e == "start create").count(),
        1,
        "a completed step is not redone"
    );
}

#[test]
fn a_failure_is_recorded_and_retried_with_the_attempt_count_kept() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = open(dir.path(), "r1");
        let mut job = store.begin(&spec("d3")).unwrap();
        job.start().unwrap();
        job.fail("pct create exited 255", "storage 'x' does not exist\n")
            .unwrap();
        let rec = store.job("lxc/950").unwrap().unwrap();
        assert_eq!(rec.status, Status::Failed);
        let err = rec.last_error.unwrap();
        assert_eq!(
            (err.step.as_str(), err.output_tail.as_str()),
            ("create", "storage 'x' does not exist\n")
        );
    }
    let (store, report) = open(dir.path(), "r2");
    assert!(report.interrupted.is_empty());
    let mut job = store.begin(&spec("d3")).unwrap();
    assert_eq!(job.record().status, Status::Failed);
    let s = job.start().unwrap().unwrap();
    assert_eq!((s.spec.name.as_str(), s.attempt), ("create", 2));
    job.succeed().unwrap();
    let rec = store.job("lxc/950").unwrap().unwrap();
    assert_eq!(rec.last_error, None);
    assert_eq!(rec.done[0].attempts, 2);
}

#[test]
fn a_changed_digest_moves_the_cursor_back_to_the_earliest_stale_step() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), "r1");
    run_all(&mut store.begin(&spec("d3")).unwrap());
    let mut job = store.begin(&spec("d3-changed")).unwrap();
    assert_eq!(job.record().status, Status::Idle);
    assert_eq!(job.record().cursor.as_deref(), Some("network"));
    assert_eq!(job.record().state, "created");
    // Only the stale step runs; the later, still-fresh ones are not repeated.
    assert_eq!(run_all(&mut job), ["network"]);
    let j = store.journal("lxc/950").unwrap();
    assert!(j.iter().any(|e| matches!(&e.kind, EventKind::ConfigChanged { step, reason } if step == "network" && reason.contains("configuration changed"))));
    assert_eq!(
        store.job("lxc/950").unwrap().unwrap().status,
        Status::Completed
    );
}

#[test]
fn steps_added_and_removed_are_reconciled() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), "r1");
    run_all(&mut store.begin(&spec("d3")).unwrap());
    let mut s = spec("d3");
    s.steps.retain(|st| st.name != "feature:docker");
    s.steps.insert(
        4,
        StepSpec {
            name: "feature:ollama".into(),
            state: Stage::Customizing,
            digest: "o".into(),
        },
    );
    let mut job = store.begin(&s).unwrap();
    assert_eq!(run_all(&mut job), ["feature:ollama"]);
    let rec = store.job("lxc/950").unwrap().unwrap();
    assert!(rec.done_step("feature:docker").is_none());
    let j = store.journal("lxc/950").unwrap();
    assert!(j.iter().any(|e| matches!(&e.kind, EventKind::ConfigChanged { step, reason } if step == "feature:docker" && reason.contains("no longer"))));
}

#[test]
fn reset_to_a_state_or_to_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), "r1");
    run_all(&mut store.begin(&spec("d3")).unwrap());
    let ids = store
        .reset(
            &["lxc/950".to_string()],
            Some(Stage::Configured),
            "operator asked",
        )
        .unwrap();
    assert_eq!(ids, ["lxc/950"]);
    let rec = store.job("lxc/950").unwrap().unwrap();
    assert_eq!(
        (rec.state.as_str(), rec.status),
        ("configured", Status::Idle)
    );
    assert_eq!(
        run_all(&mut store.begin(&spec("d3")).unwrap()),
        ["start", "feature:docker", "health"]
    );
    store
        .reset::<Stage>(&["lxc/950".to_string()], None, "again")
        .unwrap();
    assert_eq!(run_all(&mut store.begin(&spec("d3")).unwrap()).len(), 6);
    let j = store.journal("lxc/950").unwrap();
    assert!(j.iter().any(|e| matches!(&e.kind, EventKind::Reset { to, reason } if to == "configured" && reason == "operator asked")));
    assert!(store
        .reset::<Stage>(&["lxc/404".to_string()], None, "x")
        .unwrap()
        .is_empty());
}

#[test]
fn reset_several_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), "r1");
    for id in ["lxc/1", "lxc/2", "vm/3"] {
        let mut s = spec("d3");
        s.id = id.into();
        run_all(&mut store.begin(&s).unwrap());
    }
    let all = store.job_ids().unwrap();
    assert_eq!(store.reset::<Stage>(&all, None, "all").unwrap().len(), 3);
    assert!(store
        .jobs()
        .unwrap()
        .iter()
        .all(|r| r.as_ref().unwrap().status == Status::Idle));
}

#[test]
fn a_second_writer_is_refused_with_the_holders_name() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, _) = open(dir.path(), "r1");
    match Store::open(dir.path(), opts("r2")) {
        Err(EngineError::Locked { holder, .. }) => {
            assert_eq!(holder.pid, std::process::id());
            assert!(holder.alive());
            let msg = EngineError::Locked {
                dir: dir.path().into(),
                holder,
            }
            .to_string();
            assert!(
                msg.contains(&format!("pid {}", std::process::id())),
                "{msg}"
            );
        }
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("expected Locked, got a store"),
    }
}

#[test]
fn a_stale_lock_of_a_dead_process_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("lock"),
        "pid=999999\nhost=elsewhere\nstarted_ms=1\ncommand=phoenix run 950\n",
    )
    .unwrap();
    let (_store, report) = open(dir.path(), "r1");
    let stale = report.stale_lock.expect("stale lock");
    assert_eq!(stale.pid, 999999);
    assert!(!stale.alive());
}

#[test]
fn the_lock_is_released_when_the_store_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), "r1"));
    let (_s, report) = open(dir.path(), "r2");
    assert!(
        report.stale_lock.is_none(),
        "a clean release leaves no holder behind"
    );
}

#[test]
fn a_store_from_a_newer_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), "r1"));
    {
        let db = sled::open(dir.path().join("db")).unwrap();
        let mut v = b"PX".to_vec();
        v.extend_from_slice(&(codec::FORMAT_VERSION + 1).to_le_bytes());
        v.push(0);
        db.insert("meta:format", v).unwrap();
        db.flush().unwrap();
    }
    match Store::open(dir.path(), opts("r2")) {
        Err(EngineError::TooNew { found, .. }) => assert_eq!(found, codec::FORMAT_VERSION + 1),
        Err(e) => panic!("expected TooNew, got {e}"),
        Ok(_) => panic!("a newer store must be refused"),
    }
}

#[test]
fn a_corrupt_record_names_the_job_and_reset_clears_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = open(dir.path(), "r1");
        run_all(&mut store.begin(&spec("d3")).unwrap());
        store
            .put_raw_record("lxc/950", b"PX\x01\x00\xff\xff")
            .unwrap();
        store.put_raw_record("lxc/951", b"garbage").unwrap();
    }
    let (store, _) = open(dir.path(), "r2");
    let jobs = store.jobs().unwrap();
    let corrupt: Vec<String> = jobs
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|e| e.to_string())
        .collect();
    assert_eq!(corrupt.len(), 2, "{corrupt:?}");
    let msg = &corrupt[0];
    assert!(msg.contains("lxc/950") && !msg.contains("phoenix"), "{msg}");
    assert!(matches!(
        store.job("lxc/950"),
        Err(EngineError::Corrupt { .. })
    ));
    assert!(matches!(
        store.begin(&spec("d3")),
        Err(EngineError::Corrupt { .. })
    ));
    assert_eq!(
        store
            .reset::<Stage>(
                &["lxc/950".to_string(), "lxc/951".to_string()],
                None,
                "corrupt"
            )
            .unwrap()
            .len(),
        2
    );
    assert!(store.job("lxc/950").unwrap().is_none());
    assert_eq!(run_all(&mut store.begin(&spec("d3")).unwrap()).len(), 6);
}

#[test]
fn readers_work_while_a_writer_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), "r1");
    let mut job = store.begin(&spec("d3")).unwrap();
    job.start().unwrap();
    job.succeed_and_start_next().unwrap();
    let reader = Reader::new(dir.path());
    assert_eq!(reader.writer().unwrap().pid, std::process::id());
    let jobs = reader.jobs();
    assert_eq!(jobs.len(), 1);
    let ReadOutcome::Ok(view) = &jobs[0] else {
        panic!("unreadable")
    };
    assert_eq!(view.record.status, Status::InProgress);
    assert_eq!(view.record.started.as_ref().unwrap().step, "resources");
    assert_eq!(
        kinds(&view.journal),
        kinds(&store.journal("lxc/950").unwrap())
    );
    drop(job);
    drop(store);
    // With the writer gone, a step left in progress reads as interrupted.
    let ReadOutcome::Ok(view) = Reader::new(dir.path()).job("lxc/950").unwrap() else {
        panic!()
    };
    assert_eq!(view.record.status, Status::Interrupted);
    assert!(Reader::new(dir.path()).job("lxc/404").is_none());
}

#[test]
fn the_journal_is_bounded_and_summarised() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(
        dir.path(),
        OpenOptions {
            journal_cap: 8,
            run_id: "r".into(),
        },
    )
    .unwrap();
    for i in 0..10 {
        let s = spec(&format!("d3-{i}"));
        run_all(&mut store.begin(&s).unwrap());
    }
    let j = store.journal("lxc/950").unwrap();
    assert!(j.len() <= 10, "kept {}", j.len());
    assert!(j.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    let rec = store.job("lxc/950").unwrap().unwrap();
    let sum = &rec.journal_summary;
    assert_eq!(sum.compacted + j.len() as u64, rec.journal_next);
    assert!(sum.counts["step_started"] > 0);
    assert_eq!(j.first().unwrap().seq, rec.journal_first);
    let ReadOutcome::Ok(view) = Reader::new(dir.path()).job("lxc/950").unwrap() else {
        panic!()
    };
    assert_eq!(
        view.journal, j,
        "the reader's view is rewritten on compaction"
    );
}

#[test]
fn invalid_specs_and_calls_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), "r1");
    let dup = JobSpec::new("x")
        .step("a", Stage::Created, "1")
        .step("a", Stage::Created, "1");
    assert!(matches!(
        store.begin(&dup),
        Err(EngineError::Invalid { .. })
    ));
    let back = JobSpec::new("x")
        .step("a", Stage::Running, "1")
        .step("b", Stage::Created, "1");
    assert!(matches!(
        store.begin(&back),
        Err(EngineError::Invalid { .. })
    ));
    let initial = JobSpec::new("x").step("a", Stage::Defined, "1");
    assert!(matches!(
        store.begin(&initial),
        Err(EngineError::Invalid { .. })
    ));
    let mut job = store.begin(&spec("d3")).unwrap();
    assert!(matches!(job.succeed(), Err(EngineError::Invalid { .. })));
    assert!(matches!(
        job.fail("x", ""),
        Err(EngineError::Invalid { .. })
    ));
    assert!(matches!(
        job.save_intent(b"x"),
        Err(EngineError::Invalid { .. })
    ));
}

#[test]
fn forgetting_done_steps_makes_them_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), "r1");
    run_all(&mut store.begin(&spec("d3")).unwrap());
    assert!(store
        .forget("lxc/950", &["start"], "drift: found stopped")
        .unwrap());
    assert!(!store.forget("lxc/950", &["start"], "again").unwrap());
    assert_eq!(store.job("lxc/950").unwrap().unwrap().status, Status::Idle);
    assert_eq!(run_all(&mut store.begin(&spec("d3")).unwrap()), ["start"]);
}

state_machine::job_states! {
    /// A second kind of job with states of its own (a host's setup, say).
    enum Setup {
        Pending = "pending",
        Prepared = "prepared",
        Rebooted = "rebooted",
        Done = "done",
    }
}

/// One store holds jobs of different kinds, each typed by its own states, and resetting one kind
/// to one of its states leaves the other kind alone.
#[test]
fn one_store_holds_jobs_of_different_state_types() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), "r1");
    let host = JobSpec::new("host/pve1")
        .step("packages", Setup::Prepared, "p1")
        .step("driver", Setup::Rebooted, "p2")
        .step("dns", Setup::Done, "p3");
    assert_eq!(run_all(&mut store.begin(&spec("d3")).unwrap()).len(), 6);
    let mut job = store.begin(&host).unwrap();
    let first = job.start().unwrap().unwrap();
    assert_eq!(first.spec.state, Setup::Prepared);
    job.succeed().unwrap();
    assert_eq!(store.job("host/pve1").unwrap().unwrap().state, "prepared");
    assert_eq!(store.job("lxc/950").unwrap().unwrap().state, "completed");

    store
        .reset(&["host/pve1".to_string()], Some(Setup::Prepared), "reboot")
        .unwrap();
    let mut job = store.begin(&host).unwrap();
    assert_eq!(job.start().unwrap().unwrap().spec.name, "driver");
    let guest = store.job("lxc/950").unwrap().unwrap();
    assert_eq!(
        (guest.state.as_str(), guest.status),
        ("completed", Status::Completed)
    );
}

/// Two jobs: lxc/950 complete, lxc/951 with a step in progress.
fn two_jobs(dir: &Path) {
    let (store, _) = open(dir, "r1");
    run_all(&mut store.begin(&spec("d3")).unwrap());
    let mut other = store
        .begin(&JobSpec::new("lxc/951").step("create", Stage::Created, "d1"))
        .unwrap();
    other.start().unwrap();
    std::mem::forget(other);
    drop(store);
}

/// Ways to damage sled's main file.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// Its first bytes overwritten.
    Head,
    /// A stretch in the middle overwritten.
    Middle,
    /// Cut to a third.
    Truncated,
}

fn damage(dir: &Path, how: Damage) {
    let file = dir.join("db").join("db");
    let mut bytes = std::fs::read(&file).unwrap();
    let len = bytes.len();
    match how {
        Damage::Head => bytes[..64.min(len)].fill(0xA5),
        Damage::Middle => bytes[len / 3..2 * len / 3].fill(0xA5),
        Damage::Truncated => bytes.truncate(len / 3),
    }
    std::fs::write(&file, bytes).unwrap();
}

#[test]
fn a_damaged_store_is_salvaged_from_its_views() {
    for how in [Damage::Head, Damage::Middle, Damage::Truncated] {
        let dir = tempfile::tempdir().unwrap();
        two_jobs(dir.path());
        damage(dir.path(), how);
        let (store, report, salvage) = Store::open_or_salvage(dir.path(), opts("r2")).unwrap();
        let salvage = salvage.unwrap_or_else(|| panic!("{how:?}: not salvaged"));
        assert_eq!(salvage.kept, ["lxc/950", "lxc/951"]);
        assert!(salvage.lost.is_empty());
        assert!(salvage.moved_to.exists());
        assert_eq!(
            store.job("lxc/950").unwrap().unwrap().status,
            Status::Completed
        );
        assert_eq!(
            store.job("lxc/951").unwrap().unwrap().status,
            Status::Interrupted
        );
        assert_eq!(report.interrupted, [("lxc/951".into(), "create".into())]);
        assert!(kinds(&store.journal("lxc/950").unwrap()).contains(&"ok health".to_string()));
    }
}

#[test]
fn a_view_cut_short_is_unreadable_not_another_state() {
    let dir = tempfile::tempdir().unwrap();
    two_jobs(dir.path());
    // The writer is gone (the forgotten job's lock went with the store).
    let view = dir.path().join("views").join("lxc%2F950.view");
    let bytes = std::fs::read(&view).unwrap();
    std::fs::write(&view, &bytes[..bytes.len() - 7]).unwrap();
    match Reader::new(dir.path()).job("lxc/950") {
        Some(ReadOutcome::Unreadable { detail, .. }) => {
            assert!(detail.contains("cut short"), "{detail}")
        }
        _ => panic!("a torn view must be unreadable"),
    }
}
#[test]
fn a_store_whose_sled_files_lost_everything_is_refused_until_salvaged() {
    let dir = tempfile::tempdir().unwrap();
    two_jobs(dir.path());
    damage(dir.path(), Damage::Head);
    match Store::open(dir.path(), opts("r2")) {
        Err(e @ EngineError::Damaged { .. }) => {
            assert!(e.to_string().contains("damaged"), "{e}")
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a store that lost its jobs must not open as a new one"),
    }
    let (store, _, salvage) = Store::open_or_salvage(dir.path(), opts("r3")).unwrap();
    assert!(salvage.is_some());
    assert!(store.job("lxc/950").unwrap().is_some());
}

/// A run cut at a state (`phoenix create --until created`) leaves the job in that state, not in
/// the last one, although no later state has steps in its spec; the full spec later goes on.
#[test]
fn a_job_cut_at_a_state_stays_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), "r1");
    let cut = JobSpec::new("lxc/950")
        .until(Stage::Created)
        .step("create", Stage::Created, "d1");
    let mut job = store.begin(&cut).unwrap();
    assert_eq!(run_all(&mut job), ["create"]);
    assert_eq!(job.record().state, "created");
    let mut job = store.begin(&spec("d3")).unwrap();
    assert_eq!(job.record().state, "created");
    assert_eq!(run_all(&mut job).len(), 5);
    assert_eq!(job.record().state, "completed");
}

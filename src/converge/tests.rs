//! Converging one guest on the in-memory backend: the table runs in order once, changes run
//! only what they touch, drift is put back, failures back off, and a guest stopped by an
//! interrupted step runs again.

use super::{Event, Outcome};
use crate::config::GuestId;
use crate::jobs::{Intent, Lifecycle};
use crate::testing::{clone_of, ct, Rig};
use serde_json::json;
use state_machine::{JobSpec, JobState};

const STEPS: [&str; 12] = [
    "create",
    "hostname",
    "resources",
    "network",
    "startup",
    "security",
    "lxc_options",
    "gpu",
    "idmap",
    "mounts",
    "start",
    "feature:hello",
];

fn one_guest() -> Rig {
    let rig = Rig::new();
    rig.feature("hello", "# phoenix-reads: name\necho hello");
    let mut c = ct("api", 50);
    c["features"] = json!(["hello"]);
    rig.fleet(&[(950, c)], &[]);
    rig
}

#[test]
fn a_new_container_runs_every_step_in_order_then_nothing() {
    let rig = one_guest();
    let (s, events) = rig.converge(950);
    assert_eq!(s.outcome, Outcome::Converged, "{s:?}");
    let mut want: Vec<String> = STEPS.iter().map(|s| format!("950 {s}")).collect();
    want.push("950 snapshot:final-form".into());
    assert_eq!(events.started(), want);
    assert_eq!(s.state, "completed");
    let g = rig.backend.guest(GuestId(950)).unwrap();
    assert!(g.running);
    assert_eq!(g.snapshots, ["final-form"]);

    let before = rig.backend.log.lock().unwrap().len();
    let (s, events) = rig.converge(950);
    assert_eq!(s.outcome, Outcome::Unchanged);
    assert!(events.started().is_empty());
    assert_eq!(
        rig.backend.log.lock().unwrap().len(),
        before,
        "nothing changed"
    );
}

#[test]
fn a_changed_setting_runs_only_its_step_and_what_chains_it() {
    let rig = one_guest();
    rig.converge(950);
    let mut c = ct("api", 50);
    c["features"] = json!(["hello"]);
    c["memory_mb"] = json!(512);
    rig.fleet(&[(950, c)], &[]);
    let (s, events) = rig.converge(950);
    assert_eq!(s.outcome, Outcome::Converged);
    // The snapshot chains every step before it: it is taken again.
    assert_eq!(
        events.started(),
        ["950 resources", "950 snapshot:final-form"]
    );
    assert_eq!(
        rig.backend.changes("apply"),
        [
            "apply 950 hostname",
            "apply 950 resources",
            "apply 950 network",
            "apply 950 startup",
            "apply 950 security",
            "apply 950 lxc_options",
            "apply 950 gpu",
            "apply 950 idmap",
            "apply 950 mounts",
            "apply 950 resources",
        ]
    );
}

/// A script runs again when what it reads changes, and only then; one that declares nothing
/// reads the whole config.
#[test]
fn a_script_follows_the_keys_it_reads() {
    let rig = one_guest();
    rig.feature("whole", "echo reads everything");
    let fleet = |name: &str, memory: u64| {
        let mut c = ct(name, 50);
        c["features"] = json!(["hello", "whole"]);
        c["memory_mb"] = json!(memory);
        rig.fleet(&[(950, c)], &[]);
    };
    fleet("api", 2048);
    rig.converge(950);
    fleet("api", 1024);
    let (_, events) = rig.converge(950);
    assert_eq!(
        events.started(),
        [
            "950 resources",
            "950 feature:whole",
            "950 snapshot:final-form"
        ]
    );
    fleet("web", 1024);
    let (_, events) = rig.converge(950);
    assert_eq!(
        events.started(),
        [
            "950 hostname",
            "950 feature:hello",
            "950 feature:whole",
            "950 snapshot:final-form"
        ]
    );
}

#[test]
fn drift_a_stopped_container_is_started_and_a_missing_one_rebuilt() {
    let rig = one_guest();
    rig.converge(950);
    rig.backend.tamper(GuestId(950), |g| g.running = false);
    let (s, events) = rig.converge(950);
    assert_eq!(s.outcome, Outcome::Converged);
    assert_eq!(events.started(), ["950 start"]);
    assert!(events.all().iter().any(
        |e| matches!(e, Event::Drift { what, .. } if what == "start: state stopped → running")
    ));

    rig.backend.guests.lock().unwrap().remove(&GuestId(950));
    let (s, events) = rig.converge(950);
    assert_eq!(s.outcome, Outcome::Converged);
    assert_eq!(events.started().len(), STEPS.len() + 1, "every step again");
    assert!(rig.backend.guest(GuestId(950)).unwrap().running);
}

#[test]
fn drift_a_changed_setting_and_a_deleted_snapshot_run_only_their_steps() {
    let rig = one_guest();
    rig.converge(950);
    rig.backend.tamper(GuestId(950), |g| {
        g.settings.remove("mounts");
        g.snapshots.clear();
    });
    let (s, events) = rig.converge(950);
    assert_eq!(s.outcome, Outcome::Converged);
    assert_eq!(events.started(), ["950 mounts", "950 snapshot:final-form"]);
    let (s, events) = rig.converge(950);
    assert_eq!(s.outcome, Outcome::Unchanged);
    assert!(events.started().is_empty());
}

#[test]
fn a_failed_step_is_retried_after_a_backoff_that_a_cancel_cuts_short() {
    let rig = Rig::new();
    rig.feature("broken", "# memory-exit: 3");
    let mut c = ct("api", 50);
    c["features"] = json!(["broken"]);
    rig.fleet(&[(950, c)], &[]);
    let (s, _) = rig.converge(950);
    assert_eq!(s.outcome, Outcome::Failed);
    assert!(
        s.error.as_deref().unwrap().contains("exited with code 3"),
        "{s:?}"
    );
    assert_eq!(s.state, "running");

    let session = rig.session(false);
    session
        .cancel
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (s, events) = rig.converge_in(&session, 950);
    assert_eq!(s.outcome, Outcome::Cancelled);
    assert!(events.started().is_empty(), "nothing runs once cancelled");
    let pause = crate::limits::retry_backoff(2);
    assert!(!pause.is_zero());
    assert!(events
        .all()
        .iter()
        .any(|e| matches!(e, Event::Warning { message, .. }
        if *message == format!("retrying feature:broken (attempt 2) in {}s", pause.as_secs()))));
}

/// A run killed inside a step that stopped the guest (a snapshot) leaves it stopped; the redo
/// starts it again.
#[test]
fn a_guest_stopped_by_an_interrupted_step_runs_again() {
    let rig = one_guest();
    rig.converge(950);
    {
        let session = rig.session(false);
        let store = session.store.as_ref().unwrap();
        store
            .forget("lxc/950", &["snapshot:final-form"], "test: take it again")
            .unwrap();
        // The spec as the job's table has it, so that the digests match.
        let job =
            match crate::jobs::prepare(&session, GuestId(950), std::time::Duration::from_secs(5)) {
                Ok(crate::jobs::GuestJob::Container(j)) => j,
                Ok(_) => panic!("950 is a container"),
                Err(e) => panic!("{e}"),
            };
        use crate::jobs::JobKind;
        let mut spec = JobSpec::new("lxc/950");
        for s in &job.table().steps {
            spec = spec.step(s.name.clone(), s.state, s.digest.clone());
        }
        let mut engine = store.begin(&spec).unwrap();
        let run = engine.start().unwrap().unwrap();
        assert_eq!(run.spec.name, "snapshot:final-form");
        let intent = Intent {
            issued: true,
            was_running: Some(true),
            ..Intent::default()
        };
        engine.save_intent(&intent.encode()).unwrap();
        // ...and the process dies here, with the guest stopped for the snapshot.
    }
    rig.backend.tamper(GuestId(950), |g| g.running = false);
    let (s, events) = rig.converge(950);
    assert_eq!(s.outcome, Outcome::Converged, "{s:?}");
    assert_eq!(events.started(), ["950 snapshot:final-form"]);
    assert!(
        rig.backend.guest(GuestId(950)).unwrap().running,
        "running again"
    );
    assert_eq!(Lifecycle::all().len(), 6);
}

#[test]
fn a_clone_needs_its_parent_and_its_snapshot() {
    let rig = one_guest();
    rig.fleet(
        &[(900, ct("base", 10)), (950, clone_of("api", 50, 900))],
        &[],
    );
    let (s, _) = rig.converge(950);
    assert_eq!(s.outcome, Outcome::Failed);
    assert!(s.error.unwrap().contains("guest 900 does not exist"));
    rig.converge(900);
    let (s, _) = rig.converge(950);
    assert_eq!(s.outcome, Outcome::Converged);
    assert_eq!(rig.backend.changes("clone"), ["clone 950 from 900"]);
}

#[test]
fn a_dry_run_changes_nothing_and_says_what_would_run() {
    let rig = one_guest();
    rig.backend
        .dry_run
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let session = rig.session(true);
    let (s, events) = rig.converge_in(&session, 950);
    assert_eq!(s.outcome, Outcome::Planned);
    assert!(rig.backend.guest(GuestId(950)).is_none(), "nothing made");
    assert_eq!(rig.backend.changes("would"), ["would create 950"]);
    let planned: Vec<String> = events
        .all()
        .into_iter()
        .filter_map(|e| match e {
            Event::StepPlanned {
                step, up_to_date, ..
            } if !up_to_date => Some(step),
            _ => None,
        })
        .collect();
    assert_eq!(planned.len(), STEPS.len() + 1);
    assert!(
        !rig.dir.path().join("state/views").exists(),
        "nothing recorded"
    );
}

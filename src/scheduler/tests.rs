//! The scheduler on the in-memory backend: who may start (blocking, capacity, `--fail-fast`), a
//! VM the backend cannot build reported on its own, and a panicking guest blamed on itself.

use super::ready::{Decision, ReadySet};
use crate::config::GuestId;
use crate::converge::Outcome;
use crate::testing::{clone_of, ct, Rig};
use serde_json::json;

fn ids(v: &[u32]) -> Vec<GuestId> {
    v.iter().map(|i| GuestId(*i)).collect()
}

/// 900 → 950 → 951 (a dependency), and 952 beside them.
fn chain(rig: &Rig) {
    let mut c951 = clone_of("b", 51, 900);
    c951["dependencies"] = json!(["950"]);
    rig.fleet(
        &[
            (900, ct("base", 10)),
            (950, clone_of("a", 50, 900)),
            (951, c951),
            (952, clone_of("c", 52, 900)),
        ],
        &[],
    );
}

#[test]
fn guests_start_when_their_prerequisites_finish_and_failures_block_dependents() {
    let rig = Rig::new();
    chain(&rig);
    let session = rig.session(true);
    let order = session.graph.order(&[]).unwrap();
    let mut ready = ReadySet::new(&order, &session.graph);
    assert_eq!(ready.next(4, true), [Decision::Start(GuestId(900))]);
    assert!(ready.next(4, true).is_empty(), "900 is still running");
    ready.finish(GuestId(900), Outcome::Converged);
    assert_eq!(
        ready.next(1, true),
        [Decision::Start(GuestId(950))],
        "capacity 1"
    );
    assert_eq!(ready.next(4, true), [Decision::Start(GuestId(952))]);
    ready.finish(GuestId(950), Outcome::Failed);
    assert_eq!(
        ready.next(4, true),
        [Decision::Blocked(GuestId(951), GuestId(950))]
    );
    assert_eq!(ready.running(), 1);
    ready.finish(GuestId(952), Outcome::Converged);
    assert!(ready.never_started().is_empty());
}

#[test]
fn blocking_cascades_and_nothing_starts_once_stopped() {
    let rig = Rig::new();
    chain(&rig);
    let session = rig.session(true);
    let order = session.graph.order(&[]).unwrap();
    let mut ready = ReadySet::new(&order, &session.graph);
    ready.next(4, true);
    ready.finish(GuestId(900), Outcome::Unsupported);
    let blocked: Vec<Decision> = ready.next(4, true);
    assert_eq!(
        blocked,
        [
            Decision::Blocked(GuestId(950), GuestId(900)),
            // Its first prerequisite that did not finish well: its clone parent.
            Decision::Blocked(GuestId(951), GuestId(900)),
            Decision::Blocked(GuestId(952), GuestId(900)),
        ]
    );

    let mut ready = ReadySet::new(&order, &session.graph);
    assert!(ready.next(4, false).is_empty(), "--fail-fast or Ctrl-C");
    assert_eq!(ready.never_started(), ids(&[900, 950, 951, 952]));
}

#[test]
fn fail_fast_cancels_what_has_not_started() {
    let rig = Rig::new();
    rig.feature("broken", "# memory-exit: 1");
    let mut bad = ct("bad", 50);
    bad["features"] = json!(["broken"]);
    rig.fleet(&[(950, bad), (951, ct("a", 51)), (952, ct("b", 52))], &[]);
    let (s, _) = rig.run(&[], 1, true);
    let outcome = |id: &str| s.guest(id).unwrap().outcome;
    assert_eq!(outcome("950"), Outcome::Failed);
    assert_eq!(outcome("951"), Outcome::Cancelled);
    assert_eq!(outcome("952"), Outcome::Cancelled);
    let (s, _) = rig.run(&[951, 952], 1, true);
    assert!(s.ok(), "{s:?}");
}

/// One graph for containers and VMs: the VM is reported before anything starts, its dependent is
/// blocked, and what does not need it is built.
#[test]
fn a_vm_the_backend_cannot_build_blocks_only_its_dependents() {
    let rig = Rig::new();
    let mut needs_vm = ct("needs-vm", 51);
    needs_vm["dependencies"] = json!(["1001"]);
    rig.fleet(
        &[(950, ct("free", 50)), (951, needs_vm)],
        &[json!({"vmid": 1001, "name": "docker-host", "is_template": true, "template_image": "debian-12.qcow2"})],
    );
    let (s, events) = rig.run(&[], 4, false);
    let g = |id: &str| s.guest(id).unwrap().clone();
    assert_eq!(g("1001").outcome, Outcome::Unsupported);
    assert!(
        g("1001")
            .error
            .unwrap()
            .contains("the memory backend cannot build VMs (VM 1001 docker-host)"),
        "{s:?}"
    );
    assert_eq!(g("951").outcome, Outcome::Blocked);
    assert_eq!(g("951").blocked_by.as_deref(), Some("1001"));
    assert_eq!(g("950").outcome, Outcome::Converged);
    assert!(!s.ok());
    // `--assume-built 1001`: the VM exists elsewhere; its dependent is built against it.
    let (s, _) = rig.run_without(&[], &[1001], 4, false);
    assert!(s.ok(), "{s:?}");
    assert_eq!(s.guest("951").unwrap().outcome, Outcome::Converged);
    assert!(s.guest("1001").is_none(), "not touched: {s:?}");
    // Reported first: before any step of any guest started.
    let first_step = events
        .all()
        .iter()
        .position(|e| matches!(e, crate::converge::Event::StepStarted { .. }))
        .unwrap();
    let vm_reported = events
        .all()
        .iter()
        .position(|e| matches!(e, crate::converge::Event::GuestFinished { id, .. } if id == "1001"))
        .unwrap();
    assert!(vm_reported < first_step);
}

#[test]
fn a_panicking_guest_is_blamed_on_itself_and_the_others_finish() {
    let rig = Rig::new();
    rig.feature("slow", "echo slow");
    rig.feature("boom", "# memory-panic");
    let mut first = ct("first", 50);
    first["features"] = json!(["slow"]);
    let mut second = ct("second", 51);
    second["features"] = json!(["boom"]);
    rig.fleet(&[(950, first), (951, second)], &[]);
    let (s, _) = rig.run(&[], 2, false);
    let g = |id: &str| s.guest(id).unwrap().clone();
    assert_eq!(g("951").outcome, Outcome::Failed);
    assert!(
        g("951").error.unwrap().contains("panicked on purpose"),
        "{s:?}"
    );
    assert_eq!(g("950").outcome, Outcome::Converged);
}

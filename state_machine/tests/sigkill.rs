//! A real child process drives jobs and is SIGKILLed at 20+ different points; after each kill the
//! store reopens, and at the end: no completed step ran twice, each interrupted step ran again
//! exactly once more, no step ran without being started durably, and journals are in order.
//!
//! The child is this test binary itself, re-run with `SM_DRIVER_DIR` set (see `driver_child`).

use state_machine::*;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

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

const JOBS: [&str; 3] = ["lxc/900", "lxc/950", "vm/1001"];
const STEPS: usize = 40;

fn spec(id: &str) -> JobSpec<Stage> {
    let states = [
        Stage::Created,
        Stage::Configured,
        Stage::Running,
        Stage::Customizing,
        Stage::Completed,
    ];
    let mut s = JobSpec::new(id);
    for i in 0..STEPS {
        s = s.step(
            format!("step{i:02}"),
            states[i * states.len() / STEPS],
            "v1",
        );
    }
    s
}

/// Appends one line, durably: the side effect of a step.
fn effect(path: &Path, line: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(format!("{line}\n").as_bytes()).unwrap();
    f.sync_data().unwrap();
}

/// The child: runs every job to completion, sleeping a little inside each step.
#[test]
fn driver_child() {
    let Some(dir) = std::env::var_os("SM_DRIVER_DIR") else {
        return;
    };
    let dir = Path::new(&dir);
    let run_id = format!("pid{}", std::process::id());
    let (store, _) = Store::open(
        &dir.join("store"),
        OpenOptions {
            run_id,
            ..Default::default()
        },
    )
    .unwrap();
    for id in JOBS {
        let mut job = store.begin(&spec(id)).unwrap();
        let mut step = job.start().unwrap();
        while let Some(s) = step {
            // Tell the parent a step is under way (it kills on these), then act.
            println!("P {id} {}", s.spec.name);
            effect(
                &dir.join("effects"),
                &format!("{id} {} {}", s.spec.name, s.attempt),
            );
            std::thread::sleep(Duration::from_micros(300 + (s.index as u64 * 137) % 900));
            step = job.succeed_and_start_next().unwrap();
        }
    }
}

#[test]
fn sigkill_at_many_points_then_resume() {
    let dir = tempfile::tempdir().unwrap();
    let me = std::env::current_exe().unwrap();
    let spawn = || {
        Command::new(&me)
            .args(["--exact", "driver_child", "--nocapture", "--test-threads=1"])
            .env("SM_DRIVER_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // Kill points: after the k-th step report of a run, plus a delay that lands the kill at
    // different places (inside the act, inside the commit, between steps).
    let mut kills = 0;
    for k in 0..26u64 {
        let mut child = spawn();
        let stdout = child.stdout.take().unwrap();
        let target = 1 + (k * 3) % 5;
        let mut seen = 0;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("P ") {
                seen += 1;
                if seen == target {
                    std::thread::sleep(Duration::from_micros((k * 97) % 1_200));
                    break;
                }
            }
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
    }
    assert!(
        kills >= 20,
        "only {kills} kills landed while the child was running"
    );
    let status = spawn().wait_with_output().unwrap().status;
    assert!(status.success(), "the final run must finish");

    let (store, report) = Store::open(&dir.path().join("store"), OpenOptions::default()).unwrap();
    assert!(report.interrupted.is_empty(), "{:?}", report.interrupted);
    let effects = std::fs::read_to_string(dir.path().join("effects")).unwrap_or_default();
    let mut ran: BTreeMap<(String, String), u32> = BTreeMap::new();
    for line in effects.lines() {
        let mut parts = line.split(' ');
        let (job, step) = (
            parts.next().unwrap().to_string(),
            parts.next().unwrap().to_string(),
        );
        *ran.entry((job, step)).or_default() += 1;
    }
    let mut total_interrupts = 0;
    for id in JOBS {
        let rec = store.job(id).unwrap().unwrap();
        assert_eq!(rec.status, Status::Completed, "{id}");
        let journal = store.journal(id).unwrap();
        assert!(
            journal
                .windows(2)
                .all(|w| w[1].seq == w[0].seq + 1 && w[1].at >= w[0].at),
            "{id}: journal out of order"
        );
        for s in spec(id).steps {
            let interrupts = journal.iter().filter(|e| matches!(&e.kind, EventKind::StepInterrupted { step, .. } if *step == s.name)).count() as u32;
            let succeeded = journal
                .iter()
                .filter(
                    |e| matches!(&e.kind, EventKind::StepSucceeded { step, .. } if *step == s.name),
                )
                .count();
            let started = journal
                .iter()
                .filter(
                    |e| matches!(&e.kind, EventKind::StepStarted { step, .. } if *step == s.name),
                )
                .count() as u32;
            let executions = ran
                .get(&(id.to_string(), s.name.clone()))
                .copied()
                .unwrap_or(0);
            total_interrupts += interrupts;
            assert_eq!(succeeded, 1, "{id} {}: succeeded exactly once", s.name);
            assert_eq!(
                started,
                1 + interrupts,
                "{id} {}: started once, plus once per interruption",
                s.name
            );
            // A step's effect runs only after its start is durable, and again only after an
            // interruption: at least once in all, at most once per start.
            assert!(
                executions >= 1 && executions <= started,
                "{id} {}: ran {executions} times for {started} starts",
                s.name
            );
            if interrupts == 0 {
                assert_eq!(
                    executions, 1,
                    "{id} {}: never interrupted, so never redone",
                    s.name
                );
            }
        }
    }
    assert!(
        total_interrupts >= 10,
        "only {total_interrupts} kills landed inside a step"
    );
}

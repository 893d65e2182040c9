//! Property: random jobs, random outcomes, a crash (the store dropped mid-step) at a random point;
//! after reopening and finishing, no completed step ran twice, every interrupted step ran again
//! exactly once, and the journal is in order.

use proptest::prelude::*;
use state_machine::*;
use std::collections::BTreeMap;

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

#[derive(Debug, Clone)]
enum Outcome {
    Succeed,
    Fail,
    Crash,
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![6 => Just(Outcome::Succeed), 1 => Just(Outcome::Fail), 1 => Just(Outcome::Crash)]
}

fn spec(n_steps: usize) -> JobSpec<Stage> {
    let states = [
        Stage::Created,
        Stage::Configured,
        Stage::Running,
        Stage::Customizing,
        Stage::Completed,
    ];
    let mut s = JobSpec::new("lxc/1");
    for i in 0..n_steps {
        s = s.step(format!("s{i}"), states[i * states.len() / n_steps], "d");
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn crashes_never_redo_completed_steps(n_steps in 1usize..9, outcomes in prop::collection::vec(outcome(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec(n_steps);
        let mut executed: BTreeMap<String, u32> = BTreeMap::new();
        let mut crashes: BTreeMap<String, u32> = BTreeMap::new();
        let mut outcomes = outcomes.into_iter();
        let mut run = 0;
        'runs: loop {
            run += 1;
            let (store, _) = Store::open(dir.path(), OpenOptions { run_id: format!("r{run}"), ..Default::default() }).unwrap();
            let mut job = store.begin(&spec).unwrap();
            let mut step = job.start().unwrap();
            while let Some(s) = step {
                *executed.entry(s.spec.name.clone()).or_default() += 1;
                match outcomes.next().unwrap_or(Outcome::Succeed) {
                    Outcome::Succeed => step = job.succeed_and_start_next().unwrap(),
                    Outcome::Fail => {
                        job.fail("boom", "tail").unwrap();
                        continue 'runs;
                    }
                    Outcome::Crash => {
                        *crashes.entry(s.spec.name.clone()).or_default() += 1;
                        continue 'runs; // job and store dropped mid-step
                    }
                }
            }
            break;
        }
        let (store, report) = Store::open(dir.path(), OpenOptions::default()).unwrap();
        prop_assert!(report.interrupted.is_empty());
        let rec = store.job("lxc/1").unwrap().unwrap();
        prop_assert_eq!(rec.status, Status::Completed);
        let journal = store.journal("lxc/1").unwrap();
        prop_assert!(journal.windows(2).all(|w| w[1].seq == w[0].seq + 1 && w[1].at >= w[0].at));
        for (i, e) in journal.iter().enumerate() {
            match &e.kind {
                // No completed step is ever started again.
                EventKind::StepSucceeded { step, .. } => {
                    let redone = journal[i + 1..].iter().any(|l| matches!(&l.kind, EventKind::StepStarted { step: s, .. } if s == step));
                    prop_assert!(!redone, "{} started again after it succeeded", step);
                }
                // The interrupted step is the next one started, exactly then.
                EventKind::StepInterrupted { step, .. } => {
                    let next = journal[i + 1..].iter().find(|l| matches!(l.kind, EventKind::StepStarted { .. }));
                    let resumed = matches!(next.map(|n| &n.kind), Some(EventKind::StepStarted { step: s, .. }) if s == step);
                    prop_assert!(resumed, "{} was interrupted but not the next step started", step);
                }
                _ => {}
            }
        }
        let interrupted: usize = journal.iter().filter(|e| matches!(e.kind, EventKind::StepInterrupted { .. })).count();
        prop_assert_eq!(interrupted as u32, crashes.values().sum::<u32>());
        for s in &spec.steps {
            let started = journal.iter().filter(|e| matches!(&e.kind, EventKind::StepStarted { step, .. } if *step == s.name)).count() as u32;
            prop_assert_eq!(started, executed[&s.name]);
        }
    }
}

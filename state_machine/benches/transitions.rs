//! Benchmark: durable step transitions and store open time.
//! Run with `cargo bench -p state_machine --bench transitions`.
//!
//! * fused: `succeed_and_start_next` (StepSucceeded + cursor + next StepStarted, one batch, one
//!   flush): the per-step cost of a running job.
//! * separate: `succeed` then `start` (two batches, two flushes), for comparison.
//! * open: a store holding 10,000 jobs (6 steps done each), opened cleanly and after a crash.

use state_machine::*;
use std::time::{Duration, Instant};

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

/// 100 jobs of 20 steps: the shape of a fleet of guests.
const JOBS: usize = 100;
const STEPS_PER_JOB: usize = 20;
const STEPS: usize = JOBS * STEPS_PER_JOB;

fn spec(id: &str, n: usize) -> JobSpec<Stage> {
    let states = [
        Stage::Created,
        Stage::Configured,
        Stage::Running,
        Stage::Customizing,
        Stage::Completed,
    ];
    let mut s = JobSpec::new(id);
    for i in 0..n {
        s = s.step(
            format!("step{i:05}"),
            states[i * states.len() / n],
            "digest-0123456789abcdef",
        );
    }
    s
}

fn percentiles(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    (
        us(v[v.len() / 2]),
        us(v[v.len() * 99 / 100]),
        us(v[v.len() - 1]),
    )
}

fn fused() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), OpenOptions::default()).unwrap();
    let mut times = Vec::with_capacity(STEPS);
    let total = Instant::now();
    for j in 0..JOBS {
        let mut job = store
            .begin(&spec(&format!("lxc/{}", 1000 + j), STEPS_PER_JOB))
            .unwrap();
        job.start().unwrap();
        loop {
            let t = Instant::now();
            let next = job.succeed_and_start_next().unwrap();
            times.push(t.elapsed());
            if next.is_none() {
                break;
            }
        }
    }
    let secs = total.elapsed().as_secs_f64();
    let (p50, p99, max) = percentiles(times);
    println!("fused    ({STEPS} steps): p50 {p50:.0} µs, p99 {p99:.0} µs, max {max:.0} µs, {:.0} steps/s", STEPS as f64 / secs);
}

fn separate() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), OpenOptions::default()).unwrap();
    let mut times = Vec::with_capacity(STEPS);
    let total = Instant::now();
    for j in 0..JOBS {
        let mut job = store
            .begin(&spec(&format!("lxc/{}", 1000 + j), STEPS_PER_JOB))
            .unwrap();
        for _ in 0..STEPS_PER_JOB {
            let t = Instant::now();
            job.start().unwrap();
            job.succeed().unwrap();
            times.push(t.elapsed());
        }
    }
    let secs = total.elapsed().as_secs_f64();
    let (p50, p99, max) = percentiles(times);
    println!("separate ({STEPS} steps): p50 {p50:.0} µs, p99 {p99:.0} µs, max {max:.0} µs, {:.0} steps/s", STEPS as f64 / secs);
}

fn open_10k() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = Store::open(dir.path(), OpenOptions::default()).unwrap();
        let s = spec("x", 6);
        let t = Instant::now();
        for i in 0..10_000 {
            let mut sp = s.clone();
            sp.id = format!("lxc/{}", 1000 + i);
            let mut job = store.begin(&sp).unwrap();
            let mut step = job.start().unwrap();
            while step.is_some() {
                step = job.succeed_and_start_next().unwrap();
            }
        }
        println!(
            "populate: 10,000 jobs x 6 steps in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut clean = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let (store, report) = Store::open(dir.path(), OpenOptions::default()).unwrap();
        clean.push(t.elapsed());
        assert!(report.interrupted.is_empty());
        drop(store);
        std::thread::sleep(Duration::from_millis(100));
    }
    let (p50, _, max) = percentiles(clean);
    println!(
        "open 10,000 jobs (clean): median {:.1} ms, max {:.1} ms",
        p50 / 1000.0,
        max / 1000.0
    );
    let t = Instant::now();
    let reader = Reader::new(dir.path());
    let n = reader.jobs().len();
    println!(
        "reader: all {n} jobs from the views in {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
}

fn main() {
    fused();
    separate();
    if std::env::args().all(|a| a != "--no-open") {
        open_10k();
    }
}

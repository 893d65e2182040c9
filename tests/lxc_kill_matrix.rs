//! The kill matrix on real LXC: `phoenix run` is SIGKILLed inside every step of a template, a
//! template cloned from it and two guests (snapshots included), each next run resuming. Pass 1
//! kills as each step starts; pass 2, on a fresh fleet, kills 150 to 900 ms into each long step
//! (creates, starts, features, snapshots, scripts, checks). After each pass, one more run: exit 0,
//! every guest completed and running, no duplicate, unnamed or superseded snapshot, each feature
//! body completed exactly once, and then nothing left to do.

mod lab;

use lab::live::LiveRun;
use lab::Lab;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

/// Steps whose act takes long enough to be killed well into it.
fn long(step: &str) -> bool {
    ["create", "start", "application_script", "health_check"].contains(&step)
        || step.starts_with("feature:")
        || step.starts_with("snapshot:")
}

/// How long into a long step pass 2 kills, in turn.
const OFFSETS_MS: [u64; 3] = [150, 400, 900];

/// Runs until every step `offset` picks has been killed into once (`offset(step, kills so far)`:
/// how many ms after the step starts, or `None` to let it be); returns the steps killed in.
fn pass(lab: &Lab, offset: impl Fn(&str, usize) -> Option<u64>) -> BTreeSet<(String, String)> {
    let mut killed = BTreeSet::new();
    'runs: loop {
        let mut run = LiveRun::start(lab, &[]);
        while let Some((id, step)) = run.next_step() {
            let Some(ms) = offset(&step, killed.len()) else {
                continue;
            };
            if killed.insert((id, step)) {
                std::thread::sleep(Duration::from_millis(ms));
                run.kill();
                continue 'runs;
            }
        }
        let _ = run.finish();
        return killed;
    }
}

#[test]
fn sigkill_inside_every_step_then_one_run_resumes_exactly() {
    let Some(lab) = Lab::new() else { return };
    lab.fleet()
        .template(900, "base")
        .features(&["sleepy"])
        .clone_of(901, "tmpl", 900)
        .snapshot("final-form")
        .features(&["once"])
        .clone_of(950, "api", 901)
        .features(&["marker"])
        .set("application_script", json!("scripts/app_sleep.sh"))
        .set(
            "health_check",
            json!({"command": "test -s /var/lib/phoenix-test/marker", "retries": 3, "interval": 1}),
        )
        .clone_of(951, "worker", 900)
        .depends_on(&[950])
        .write();

    let killed = pass(&lab, |_, _| Some(0));
    assert!(
        killed.len() >= 40,
        "killed in only {} steps: {killed:?}",
        killed.len()
    );
    resumed_exactly(&lab);

    let ids: Vec<String> = [951, 950, 901, 900].iter().map(|i| lab.arg(*i)).collect();
    let mut delete = vec!["delete", "--yes"];
    delete.extend(ids.iter().map(String::as_str));
    let out = lab.run(&delete);
    assert!(out.status.success(), "{}", lab::text(&out));
    let killed = pass(&lab, |step, n| {
        long(step).then(|| OFFSETS_MS[n % OFFSETS_MS.len()])
    });
    // Of the 15 long steps, a few finish unkilled while the test waits inside another guest's.
    assert!(
        killed.len() >= 10,
        "killed in only {} steps: {killed:?}",
        killed.len()
    );
    resumed_exactly(&lab);
}

/// One more run finishes the fleet, and nothing was done twice.
fn resumed_exactly(lab: &Lab) {
    let run = lab.run_json(&["--all"]);
    run.expect(lab, 0, &[]);
    for id in [900, 901, 950, 951] {
        let st = lab.state(id);
        assert_eq!(st["status"], "completed", "{id}: {st}");
        assert!(lab.attach(id, &["true"]).status.success(), "{id} runs");
    }
    assert_eq!(lab.containers(), ["900", "901", "950", "951"]);
    assert_eq!(lab.snapshots(900), ["final-form"], "900");
    assert_eq!(lab.snapshots(901), ["final-form"], "901");
    // Each feature body once: sleepy in 900 (951 inherits its record), once in 901, marker and
    // the application script in 950.
    let count = |id, what: &str| {
        lab.effects(id)
            .lines()
            .filter(|l| l.starts_with(what))
            .count()
    };
    assert_eq!(count(900, "sleepy"), 1, "{}", lab.effects(900));
    assert_eq!(count(951, "sleepy"), 1, "{}", lab.effects(951));
    assert_eq!(count(950, "marker"), 1, "{}", lab.effects(950));
    assert_eq!(count(950, "app "), 1, "{}", lab.effects(950));
    let once = lab.attach(950, &["cat", "/var/lib/phoenix-test/once.log"]);
    let once = String::from_utf8_lossy(&once.stdout).into_owned();
    assert_eq!(once.matches("start").count(), 1, "{once}");
    assert_eq!(once.matches("end").count(), 1, "{once}");
    assert!(!once.contains("overlap"), "{once}");
    let again = lab.run_json(&["--all"]);
    again.expect(lab, 0, &[]);
    assert_eq!(again.summary.mutating_commands, 0, "{again}");
}

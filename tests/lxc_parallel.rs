//! Parallel convergence on real LXC: a 30-guest fleet (ordering and limits checked from the
//! journals and the event stream), fail-fast, and SIGINT (graceful and immediate) then resume.

mod lab;

use lab::Lab;
use phoenix::converge::{Event, Outcome};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

#[test]
fn thirty_guests_in_dependency_order_within_limits() {
    let Some(lab) = Lab::new() else { return };
    let mut t1 = lab.clone_ct("tmpl-a", 101, 900);
    t1["template_snapshot_name"] = json!("final-form");
    let mut t2 = lab.clone_ct("tmpl-b", 102, 900);
    t2["template_snapshot_name"] = json!("final-form");
    let mut fleet = vec![(900, lab.template_ct("base", 100)), (901, t1), (902, t2)];
    for i in 0..27u32 {
        let parent = if i % 2 == 0 { 901 } else { 902 };
        let mut g = lab.clone_ct(&format!("g{i}"), 10 + i as u8, parent);
        if i % 5 == 4 {
            g["dependencies"] = json!([(950 + i - 1).to_string()]);
        }
        fleet.push((950 + i, g));
    }
    lab.write_fleet(&fleet);
    let run = lab.run_json(&["--all", "--jobs", "4", "--clone-jobs", "1"]);
    run.expect(&lab, 0, &[]);
    assert_eq!(lab.containers().len(), 30);

    // Never more than 4 guests at once (from the event stream, which is in time order).
    let (mut now, mut max) = (0i32, 0i32);
    for e in &run.events {
        match e {
            Event::GuestStarted { .. } => {
                now += 1;
                max = max.max(now);
            }
            Event::GuestFinished { outcome, .. } if *outcome != Outcome::Blocked => now -= 1,
            _ => {}
        }
    }
    assert!(max <= 4, "{max} guests ran at once");
    assert!(
        max >= 3,
        "the fleet should have run in parallel (max {max})"
    );

    // Never more than one create/clone/snapshot at a time in the pool.
    let mut spans: Vec<(u64, u64)> = run
        .commands()
        .filter(|(cmd, mutating, ..)| {
            *mutating
                && ["tar ", "lxc-copy ", "lxc-snapshot "]
                    .iter()
                    .any(|p| cmd.starts_with(p))
        })
        .map(|(_, _, ms, end)| (end - ms, end))
        .collect();
    spans.sort();
    for w in spans.windows(2) {
        assert!(w[1].0 + 2 >= w[0].1, "clone operations overlapped: {w:?}");
    }

    // No guest started before its prerequisites completed (journal timestamps).
    let states: HashMap<u32, Value> = fleet.iter().map(|(id, _)| (*id, lab.state(*id))).collect();
    let first_start = |st: &Value| {
        st["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["started_at_ms"].as_u64().unwrap())
            .min()
            .unwrap()
    };
    let completion = |st: &Value| {
        st["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["finished_at_ms"].as_u64().unwrap())
            .max()
            .unwrap()
    };
    for (id, def) in &fleet {
        let mut prereqs = Vec::new();
        if let Some(p) = def.get("clone_from_ctid") {
            prereqs.push(p.as_str().unwrap().parse::<u32>().unwrap() - lab.id(0));
        }
        for d in def
            .get("dependencies")
            .and_then(|d| d.as_array())
            .cloned()
            .unwrap_or_default()
        {
            prereqs.push(d.as_str().unwrap().parse().unwrap());
        }
        for p in prereqs {
            assert!(
                first_start(&states[id]) >= completion(&states[&p]),
                "{id} started before {p} completed"
            );
        }
        assert_eq!(states[id]["status"], "completed", "{id}");
    }
}

#[test]
fn fail_fast_stops_starting_new_guests() {
    let Some(lab) = Lab::new() else { return };
    let mut bad = lab.clone_ct("bad", 50, 900);
    bad["features"] = json!(["fails"]);
    lab.write_fleet(&[
        (900, lab.template_ct("base", 100)),
        (950, bad),
        (951, lab.clone_ct("a", 51, 900)),
        (952, lab.clone_ct("b", 52, 900)),
    ]);
    lab.run_json(&["--all", "--jobs", "1", "--fail-fast"])
        .expect(
            &lab,
            1,
            &[
                (950, Outcome::Failed),
                (951, Outcome::Cancelled),
                (952, Outcome::Cancelled),
            ],
        );
    assert!(!lab.containers().contains(&"951".to_string()));
}

/// Runs `phoenix run --all` and sends SIGINT `signals` times once `after` feature steps started.
fn interrupt(lab: &Lab, after: usize, signals: usize) -> (Option<i32>, Vec<Value>) {
    let mut child = lab
        .phoenix()
        .args(["--output", "json", "run", "--all", "--jobs", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let mut events = Vec::new();
    let mut seen = 0;
    let mut sent = false;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let Ok(line) = line else { break };
        let Ok(e) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if !sent && e["event"] == "step_started" && e["step"] == "feature:sleepy" {
            seen += 1;
            if seen == after {
                for _ in 0..signals {
                    std::process::Command::new("kill")
                        .args(["-INT", &pid])
                        .status()
                        .unwrap();
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                sent = true;
            }
        }
        events.push(e);
    }
    (child.wait().unwrap().code(), events)
}

#[test]
fn sigint_finishes_running_steps_then_resumes() {
    let Some(lab) = Lab::new() else { return };
    let mut fleet = vec![(900, lab.template_ct("base", 100))];
    for i in 0..4u32 {
        let mut g = lab.clone_ct(&format!("g{i}"), 50 + i as u8, 900);
        g["features"] = json!(["sleepy"]);
        fleet.push((950 + i, g));
    }
    lab.write_fleet(&fleet);

    // One interrupt: running steps finish and are recorded; nothing new starts; exit 130.
    let (code, events) = interrupt(&lab, 2, 1);
    assert_eq!(code, Some(130));
    assert!(events.iter().any(|e| e["event"] == "cancelling"));
    let s = lab::run::Run::summary_of(&events);
    assert!(s.cancelled);
    assert!(s.guests.iter().any(|g| g.outcome == Outcome::Cancelled));
    for i in 0..4 {
        let st = lab.state(950 + i);
        if st.is_null() {
            continue;
        }
        assert_ne!(st["status"], "in_progress");
        assert!(
            !st["history"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["event"] == "step_interrupted"),
            "a graceful stop interrupts nothing"
        );
    }

    // The next run finishes what was left, and redoes nothing.
    lab.run_json(&["--all"]).expect(&lab, 0, &[]);
    for i in 0..4 {
        let st = lab.state(950 + i);
        assert_eq!(st["status"], "completed");
        let started = st["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == "step_started")
            .count();
        assert_eq!(
            started,
            st["steps"].as_array().unwrap().len(),
            "{}: a step ran twice",
            950 + i
        );
    }
}

#[test]
fn a_second_sigint_aborts_at_once_and_the_next_run_resumes() {
    let Some(lab) = Lab::new() else { return };
    let mut fleet = vec![(900, lab.template_ct("base", 100))];
    for i in 0..2u32 {
        let mut g = lab.clone_ct(&format!("g{i}"), 50 + i as u8, 900);
        g["features"] = json!(["sleepy"]);
        fleet.push((950 + i, g));
    }
    lab.write_fleet(&fleet);
    let (code, _) = interrupt(&lab, 1, 2);
    assert_eq!(code, Some(130));
    let interrupted_before: usize = (0..2)
        .map(|i| lab.state(950 + i))
        .filter(|s| s["status"] == "interrupted")
        .count();
    assert!(
        interrupted_before >= 1,
        "the aborted step shows as interrupted"
    );
    lab.run_json(&["--all"]).expect(&lab, 0, &[]);
    for i in 0..2 {
        let st = lab.state(950 + i);
        assert_eq!(st["status"], "completed");
        let h = st["history"].as_array().unwrap();
        let n = |ev: &str| h.iter().filter(|e| e["event"] == ev).count();
        assert_eq!(
            n("step_started"),
            st["steps"].as_array().unwrap().len() + n("step_interrupted")
        );
    }
}

//! Crash and resume on real LXC: `phoenix run` is SIGKILLed inside a dozen different steps
//! (create, configure, start, a sleeping feature, the application script, the health check, the
//! snapshot); each next run resumes. At the end: the fleet is complete, each kill shows in the
//! journal as `interrupted` at its step, no completed step ran twice, and there is no duplicate
//! container or snapshot.

mod lab;

use lab::live::LiveRun;
use lab::Lab;
use serde_json::json;

#[test]
fn sigkill_inside_steps_then_resume() {
    let Some(lab) = Lab::new() else { return };
    let mut t900 = lab.template_ct("base", 100);
    t900["features"] = json!(["sleepy"]);
    let mut t901 = lab.clone_ct("tmpl", 101, 900);
    t901["template_snapshot_name"] = json!("final-form");
    let mut c950 = lab.clone_ct("api", 50, 901);
    c950["features"] = json!(["marker"]);
    c950["application_script"] = json!("scripts/app_sleep.sh");
    c950["health_check"] =
        json!({"command": "test -s /var/lib/phoenix-test/marker", "retries": 2, "interval": 1});
    lab.write_fleet(&[(900, t900), (901, t901), (950, c950)]);

    // (guest, step) to kill inside, in the order the run reaches them.
    let points = [
        (900, "create"),
        (900, "hostname"),
        (900, "network"),
        (900, "start"),
        (900, "feature:sleepy"),
        (900, "snapshot:final-form"),
        (901, "create"),
        (901, "resources"),
        (901, "start"),
        (950, "feature:marker"),
        (950, "application_script"),
        (950, "health_check"),
    ];
    for (guest, step) in points {
        // The act sleeps 400 ms after its start is recorded.
        let delay = [("PHOENIX_STEP_DELAY_MS", "400")];
        let Some(run) = run_until_step(&lab, &delay, guest, step) else {
            panic!("the run never reached {guest} {step}");
        };
        run.kill();
    }
    let out = lab.run(&["run", "--all"]);
    assert!(out.status.success(), "{}", lab::text(&out));

    for (guest, step) in points {
        let st = lab.state(guest);
        let history = st["history"].as_array().unwrap();
        assert!(
            history.iter().any(|e| e["event"] == "step_interrupted"
                && e["detail"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{step} "))),
            "{guest}: no interruption recorded at {step}"
        );
    }
    for guest in [900u32, 901, 950] {
        let st = lab.state(guest);
        assert_eq!(st["status"], "completed", "{guest}");
        let history = st["history"].as_array().unwrap();
        let count = |event: &str, step: &str| {
            history
                .iter()
                .filter(|e| {
                    e["event"] == event
                        && e["detail"].as_str().unwrap_or("").split(' ').next() == Some(step)
                })
                .count()
        };
        for s in st["steps"].as_array().unwrap() {
            let name = s["name"].as_str().unwrap();
            assert_eq!(
                count("step_succeeded", name),
                1,
                "{guest} {name}: completed once"
            );
            assert_eq!(
                count("step_started", name),
                1 + count("step_interrupted", name),
                "{guest} {name}: redone only after an interruption"
            );
        }
    }
    assert_eq!(
        lab.containers(),
        ["900", "901", "950"],
        "no duplicate container"
    );
    assert_eq!(
        lab.snapshots(900),
        ["final-form"],
        "no duplicate or unnamed snapshot"
    );
    assert_eq!(lab.snapshots(901), ["final-form"]);
    // The features' own effects: sleepy ran once per interruption plus once in 900 (inherited by
    // its clones), the marker once more than its interruptions in 950.
    let effects = lab.effects(950);
    assert_eq!(
        effects.lines().filter(|l| l.starts_with("marker")).count(),
        1,
        "{effects}"
    );
    assert_eq!(
        effects
            .lines()
            .filter(|l| l.starts_with(&format!("app {}", lab.arg(950))))
            .count(),
        1,
        "{effects}"
    );
}

/// Starts `phoenix run --all` (with `env`) and returns it once it has started `step` of `guest`,
/// or `None` if it never does.
fn run_until_step(lab: &Lab, env: &[(&str, &str)], guest: u32, step: &str) -> Option<LiveRun> {
    let mut run = LiveRun::start(lab, env);
    while let Some((id, s)) = run.next_step() {
        if id == lab.arg(guest) && s == step {
            return Some(run);
        }
    }
    let _ = run.finish();
    None
}

/// The processes whose command line names `dir` (the lab's own directory).
fn processes_naming(dir: &std::path::Path) -> Vec<String> {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            cmd.contains(&needle).then(|| format!("{pid}: {cmd}"))
        })
        .collect()
}

/// A run killed while `tar` extracts the template leaves nothing of its own running: the command
/// dies with Phoenix, and the next run (which ends whatever such a command started) builds the
/// guest from a clean slate.
#[test]
fn nothing_a_killed_run_started_outlives_it() {
    let Some(lab) = Lab::new() else { return };
    lab.fleet().template(900, "base").write();
    let run = run_until_step(&lab, &[], 900, "create").expect("create");
    // Inside the extraction of the 136 MB template (several seconds), once it has begun (a
    // busy machine may take a while to get there).
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while processes_naming(&lab.path("lxc")).is_empty() && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        !processes_naming(&lab.path("lxc")).is_empty(),
        "tar should be running"
    );
    run.kill();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let left = processes_naming(&lab.path("lxc"));
    assert!(left.is_empty(), "left running: {left:#?}");

    let out = lab.run(&["run", "--all"]);
    assert!(out.status.success(), "{}", lab::text(&out));
    assert_eq!(lab.containers(), ["900"]);
}

/// A run killed inside a snapshot (the container frozen while its overlay's upper layer is
/// copied), at several moments: the next run waits for the detached copy to end and thaw the
/// guest, removes the half-made snapshot or adopts a finished one, and no unnamed or superseded
/// snapshot stays.
#[test]
fn a_run_killed_inside_a_snapshot_resumes_exactly() {
    for offset_ms in [0, 20, 60, 150] {
        let Some(lab) = Lab::new() else { return };
        lab.fleet().template(900, "base").write();
        let run = run_until_step(&lab, &[], 900, "snapshot:final-form").expect("snapshot");
        std::thread::sleep(std::time::Duration::from_millis(offset_ms));
        run.kill();

        let out = lab.run(&["run", "--all"]);
        assert!(out.status.success(), "{offset_ms} ms: {}", lab::text(&out));
        assert_eq!(lab.snapshots(900), ["final-form"], "{offset_ms} ms");
        assert_eq!(lab.state(900)["status"], "completed", "{offset_ms} ms");
        let running = lab.attach(900, &["true"]);
        assert!(running.status.success(), "{offset_ms} ms: the guest runs");
        let left = processes_naming(&lab.path("lxc"));
        assert!(
            left.iter().all(|p| !p.contains("snaps")),
            "{offset_ms} ms: {left:#?}"
        );
    }
}

/// A state store whose sled files were scribbled over: `run` refuses it, naming the store and the
/// command that recovers; `state reset --all` moves the damage aside and keeps the jobs; the next
/// run converges without rebuilding anything.
#[test]
fn a_damaged_store_is_recovered_by_reset_then_a_clean_run() {
    let Some(lab) = Lab::new() else { return };
    lab.fleet().template(900, "base").write();
    lab.run_json(&["--all"]).expect(&lab, 0, &[]);
    let db = lab.path("state/db/db");
    let mut bytes = std::fs::read(&db).unwrap();
    bytes[..64].fill(0xA5);
    std::fs::write(&db, bytes).unwrap();

    let out = lab.run(&["run", "--all"]);
    assert_eq!(out.status.code(), Some(2), "{}", lab::text(&out));
    let text = lab::text(&out);
    assert!(
        text.contains(&lab.path("state").display().to_string()),
        "{text}"
    );
    assert!(text.contains("phoenix state reset --all"), "{text}");

    let out = lab.run(&["state", "reset", "--all", "--yes"]);
    assert!(out.status.success(), "{}", lab::text(&out));
    assert!(
        lab::text(&out).contains("kept 1 job(s)"),
        "{}",
        lab::text(&out)
    );
    let run = lab.run_json(&["--all"]);
    run.expect(&lab, 0, &[]);
    assert!(
        run.commands()
            .all(|(cmd, mutating, _, _)| !mutating || !cmd.contains("tar")),
        "nothing rebuilt: {run}"
    );
    assert_eq!(lab.containers(), ["900"]);
    assert_eq!(lab.snapshots(900), ["final-form"]);
}

//! Convergence on real LXC: drift made by hand is shown by `phoenix plan` and put back by
//! `phoenix run` without re-running features; a feature SIGKILLed mid-run is re-attached to by the
//! next run and its body runs exactly once, and so is one whose SSH connection was cut; scripts
//! run again only when what they read changes.

mod lab;

use lab::{steps_of_last_run, text, Backend, Lab};
use phoenix::converge::{Event, Outcome::*};
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `phoenix plan --all --detailed-exitcode`: its exit code and lines.
fn plan(lab: &Lab) -> (Option<i32>, Vec<String>) {
    let out = lab.run(&["plan", "--all", "--detailed-exitcode"]);
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    (out.status.code(), lines)
}

/// Rewrites the container's LXC config file line by line.
fn edit_config(lab: &Lab, id: u32, edit: impl Fn(&str) -> Option<String>) {
    let path = lab.path(&format!("lxc/{}/config", lab.arg(id)));
    let cfg = std::fs::read_to_string(&path).unwrap();
    let out: Vec<String> = cfg.lines().filter_map(&edit).collect();
    std::fs::write(&path, out.join("\n") + "\n").unwrap();
}

fn lxc(lab: &Lab, tool: &str, args: &[&str]) {
    let out = Command::new(tool)
        .arg("-P")
        .arg(lab.path("lxc"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{tool} {args:?}: {}", text(&out));
}

#[test]
fn hand_made_drift_is_planned_then_put_back_without_rerunning_features() {
    let Some(lab) = Lab::new() else { return };
    let data = lab.path("host/data");
    std::fs::create_dir_all(&data).unwrap();
    let mount = json!([{"host_path": data.display().to_string(), "container_path": "/mnt/data"}]);
    lab.fleet()
        .template(950, "api")
        .features(&["sleepy"])
        .snapshot("golden")
        .set("mount_points", mount)
        .set("memory_mb", json!(256))
        .template(951, "worker")
        .write();
    lab.run_json(&["--all"]).expect(&lab, 0, &[]).all(Converged);
    assert_eq!(
        plan(&lab),
        (
            Some(0),
            vec!["No changes: 2 guest(s) match the configuration.".into()]
        )
    );

    // Behind Phoenix's back: 950 stopped, its memory raised, its mount and snapshot removed; 951
    // destroyed.
    let (a, b) = (lab.arg(950), lab.arg(951));
    let sleepy_runs = lab.effects(950).matches("sleepy").count();
    assert_eq!(sleepy_runs, 1);
    // The memory limit's key depends on the host's cgroup version.
    let cfg = std::fs::read_to_string(lab.path(&format!("lxc/{a}/config"))).unwrap();
    let memory_key = ["lxc.cgroup2.memory.max", "lxc.cgroup.memory.limit_in_bytes"]
        .into_iter()
        .find(|k| cfg.contains(k))
        .expect("a memory limit");
    lxc(&lab, "lxc-stop", &["-n", &a, "-k"]);
    edit_config(&lab, 950, |l| match l {
        _ if l.starts_with(memory_key) => Some(format!("{memory_key} = 999M")),
        _ if l.contains("mnt/data") => None,
        _ => Some(l.to_string()),
    });
    lxc(&lab, "lxc-snapshot", &["-n", &a, "-d", "snap0"]);
    // `lxc-destroy -s` refuses a running container that has snapshots.
    lxc(&lab, "lxc-stop", &["-n", &b, "-k"]);
    lxc(&lab, "lxc-destroy", &["-n", &b, "-s"]);

    let (code, lines) = plan(&lab);
    assert_eq!(code, Some(2), "{lines:#?}");
    let has = |want: &str| lines.iter().any(|l| l.starts_with(want));
    for want in [
        format!("~ {a} resources: {memory_key} 999M → 256M (drift)"),
        format!("+ {a} mounts: lxc.mount.entry {}", data.display()),
        format!("! {a} start: stopped, config says running"),
        format!("+ {a} snapshot:golden: snapshot golden (drift)"),
        format!("! {b} is missing: rebuild"),
    ] {
        assert!(has(&want), "no line {want:?} in {lines:#?}");
    }
    assert!(!lines.iter().any(|l| l.contains("feature:")), "{lines:#?}");

    lab.run_json(&["--all"]).expect(&lab, 0, &[]).all(Converged);
    assert_eq!(
        steps_of_last_run(&lab.state(950)),
        ["resources", "mounts", "start", "snapshot:golden"]
    );
    assert_eq!(
        lab.effects(950).matches("sleepy").count(),
        sleepy_runs,
        "no feature re-ran"
    );
    let cfg = std::fs::read_to_string(lab.path(&format!("lxc/{a}/config"))).unwrap();
    assert!(
        cfg.contains(&format!("{memory_key} = 256M")) && cfg.contains("mnt/data"),
        "{cfg}"
    );
    assert!(lab.snapshots(950).contains(&"golden".to_string()));
    assert_eq!(lab.containers(), ["950", "951"]);
    assert_eq!(plan(&lab).0, Some(0));
    // The run's metrics (node_exporter's textfile format) say what was found and put back.
    let prom = std::fs::read_to_string(lab.path("metrics.prom")).unwrap();
    for want in [
        format!("phoenix_guest_drift_found{{id=\"{a}\",name=\"api\"}} 4"),
        format!("phoenix_guest_drift_corrected{{id=\"{a}\",name=\"api\"}} 4"),
        format!("phoenix_guest_outcome{{id=\"{a}\",name=\"api\",outcome=\"converged\"}} 1"),
        format!("phoenix_guest_state{{id=\"{a}\",name=\"api\",state=\"completed\"}} 1"),
        format!("phoenix_step_duration_seconds{{id=\"{a}\",step=\"resources\"}} "),
        "# TYPE phoenix_run_duration_seconds gauge".to_string(),
    ] {
        assert!(prom.contains(&want), "no {want:?} in\n{prom}");
    }
    let show = lab.run(&["state", "show", &a]);
    assert!(text(&show).contains("drift: "), "{}", text(&show));
}

/// Starts `phoenix run --all` and returns it once the `once` feature's body runs in guest 950
/// (a SIGKILLed run's next run finds the instance still in flight).
fn run_until_once_runs(lab: &Lab) -> std::process::Child {
    let mut child = lab
        .phoenix()
        .args(["--output", "json", "run", "--all"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    if !wait_for_once_log(lab, "start") {
        let _ = child.kill();
        panic!("the once feature did not start");
    }
    child
}

/// Waits (two minutes at most) until the `once` feature's log in guest 950 holds `word`.
fn wait_for_once_log(lab: &Lab, word: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let log = lab.attach(950, &["cat", "/var/lib/phoenix-test/once.log"]);
        if String::from_utf8_lossy(&log.stdout).contains(word) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// The next run re-attaches to the `once` feature an interrupted run started (in flight, or
/// finished unseen): it says so (in its events and in `state show`), and the feature's body ran
/// exactly once, never beside itself.
fn next_run_reattaches_and_once_ran_once(lab: &Lab) {
    let run = lab.run_json(&["--all"]);
    run.expect(lab, 0, &[]).all(Converged);
    let notes: Vec<&String> = run
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Note { message, .. } => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(notes.len(), 1, "{run}");
    assert!(notes[0].contains("re-attached"), "{notes:?}");
    let log = lab.attach(950, &["cat", "/var/lib/phoenix-test/once.log"]);
    let log = String::from_utf8_lossy(&log.stdout).into_owned();
    assert_eq!(log.matches("start").count(), 1, "{log}");
    assert_eq!(log.matches("end").count(), 1, "{log}");
    assert!(!log.contains("overlap"), "{log}");
    let show = lab.run(&["state", "show", &lab.arg(950)]);
    assert!(text(&show).contains("re-attached"), "{}", text(&show));
}

#[test]
fn a_run_killed_inside_a_feature_reattaches_and_the_body_runs_once() {
    let Some(lab) = Lab::new() else { return };
    lab.fleet().template(950, "api").features(&["once"]).write();
    // Inside the feature's 4 s sleep.
    let mut child = run_until_once_runs(&lab);
    child.kill().unwrap();
    let _ = child.wait();
    next_run_reattaches_and_once_ran_once(&lab);
}

#[test]
fn an_ssh_connection_cut_inside_a_feature_reattaches_and_the_body_runs_once() {
    let Some(lab) = Lab::with_backend(Backend::ProxmoxSsh) else {
        return;
    };
    lab.fleet().template(950, "api").features(&["once"]).write();
    let mut child = run_until_once_runs(&lab);
    lab.sshd.as_ref().expect("sshd").drop_sessions();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "the cut run fails the step");
    // This time the instance finishes before the next run: that run takes its result.
    assert!(wait_for_once_log(&lab, "end"));
    next_run_reattaches_and_once_ran_once(&lab);
}

/// The scripts a job's last run ran (features and the application script).
fn scripts_of_last_run(lab: &Lab, id: u32) -> Vec<String> {
    steps_of_last_run(&lab.state(id))
        .into_iter()
        .filter(|s| s.starts_with("feature:") || s == "application_script")
        .collect()
}

#[test]
fn scripts_run_again_only_when_what_they_read_changes() {
    let Some(lab) = Lab::new() else { return };
    // marker reads `id name`, keyed reads `cores`, sleepy and the application script read nothing.
    let write = |name: &str, cores: u32, memory: u32| {
        lab.fleet()
            .template(950, name)
            .features(&["marker", "sleepy", "keyed"])
            .set("cores", json!(cores))
            .set("memory_mb", json!(memory))
            .set("application_script", json!("scripts/app_sleep.sh"))
            .write()
    };
    write("api", 1, 256);
    lab.run_json(&["--all"]).expect(&lab, 0, &[]).all(Converged);
    let a = lab.arg(950);

    // Renamed: the hostname changes, and only the script that reads the name runs again.
    write("renamed", 1, 256);
    let (code, lines) = plan(&lab);
    assert_eq!(code, Some(2), "{lines:#?}");
    let rerun = format!("↻ {a} feature:marker (input name changed)");
    assert!(lines.contains(&rerun), "no {rerun:?} in {lines:#?}");
    lab.run_json(&["--all"]).expect(&lab, 0, &[]).all(Converged);
    assert!(steps_of_last_run(&lab.state(950)).contains(&"hostname".to_string()));
    assert_eq!(scripts_of_last_run(&lab, 950), ["feature:marker"]);
    let marker = lab.attach(950, &["cat", "/var/lib/phoenix-test/marker"]);
    assert_eq!(
        String::from_utf8_lossy(&marker.stdout).trim(),
        format!("{a} renamed marker")
    );

    // A key no script reads: its setting converges, no script runs.
    write("renamed", 1, 384);
    lab.run_json(&["--all"]).expect(&lab, 0, &[]).all(Converged);
    assert!(steps_of_last_run(&lab.state(950)).contains(&"resources".to_string()));
    assert_eq!(scripts_of_last_run(&lab, 950), Vec::<String>::new());

    // The key keyed reads: keyed runs again, and sees the new value.
    write("renamed", 2, 384);
    let (_, lines) = plan(&lab);
    let rerun = format!("↻ {a} feature:keyed (input cores changed)");
    assert!(lines.contains(&rerun), "no {rerun:?} in {lines:#?}");
    lab.run_json(&["--all"]).expect(&lab, 0, &[]).all(Converged);
    assert_eq!(scripts_of_last_run(&lab, 950), ["feature:keyed"]);
    let effects = lab.effects(950);
    assert_eq!(effects.matches("keyed cores=1").count(), 1, "{effects}");
    assert_eq!(effects.matches("keyed cores=2").count(), 1, "{effects}");
    assert_eq!(effects.matches("sleepy").count(), 1, "{effects}");
    assert_eq!(effects.matches("app ").count(), 1, "{effects}");
    assert_eq!(plan(&lab).0, Some(0));
}

/// A guest stopped after a failed run (a host reboot, say) is started again by the next run, which
/// fails again only for the feature's own reason, and finishes once the feature is fixed: nobody
/// has to run `phoenix start` by hand.
#[test]
fn a_guest_stopped_after_a_failure_is_started_by_the_next_run() {
    let Some(lab) = Lab::new() else { return };
    let a = lab.arg(950);
    lab.fleet()
        .template(950, "api")
        .features(&["fails"])
        .write();
    lab.run_json(&["--all"]).expect(&lab, 1, &[(950, Failed)]);
    lxc(&lab, "lxc-stop", &["-n", &a, "-k"]);

    let run = lab.run_json(&["--all"]);
    run.expect(&lab, 1, &[(950, Failed)]);
    let error = run.guest(&lab, 950).error.clone().unwrap_or_default();
    assert!(error.contains("exited with code 3"), "{error}");
    assert!(lab.attach(950, &["true"]).status.success(), "started again");

    lxc(&lab, "lxc-stop", &["-n", &a, "-k"]);
    lab.fleet()
        .template(950, "api")
        .features(&["sleepy"])
        .write();
    lab.run_json(&["--all"])
        .expect(&lab, 0, &[(950, Converged)]);
    assert!(lab.attach(950, &["true"]).status.success());
}

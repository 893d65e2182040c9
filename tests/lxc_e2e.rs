//! `phoenix run` on real LXC containers: build, idempotent re-run, config changes that converge
//! only what changed, reset, failures that block only dependents, dry run, and bad input.

mod lab;

use lab::{steps_of_last_run, text, Lab};
use serde_json::json;

#[test]
fn fleet_build_rerun_change_and_reset() {
    let Some(lab) = Lab::new(21) else { return };
    let mut t900 = lab.template_ct("base", 100);
    t900["features"] = json!(["marker"]);
    let mut t901 = lab.clone_ct("tmpl", 101, 900);
    t901["template_snapshot_name"] = json!("final-form");
    let mut c950 = lab.clone_ct("api", 50, 901);
    c950["application_script"] = json!("scripts/app_sleep.sh");
    c950["health_check"] =
        json!({"command": "test -s /var/lib/phoenix-test/marker", "retries": 3, "interval": 1});
    let mut c951 = lab.clone_ct("worker", 51, 901);
    c951["dependencies"] = json!(["950"]);
    lab.write_fleet(&[
        (900, t900),
        (901, t901.clone()),
        (950, c950.clone()),
        (951, c951.clone()),
    ]);

    // 1. Full build.
    let (code, events) = lab.run_json(&["--all"]);
    assert_eq!(code, 0, "{events:#?}");
    let s = lab::summary(&events);
    assert!(
        s["guests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["outcome"] == "converged"),
        "{s:#}"
    );
    assert_eq!(lab.containers(), ["900", "901", "950", "951"]);
    let host = lab.attach(950, &["hostname"]);
    assert_eq!(String::from_utf8_lossy(&host.stdout).trim(), "api");
    let marker = lab.attach(950, &["cat", "/var/lib/phoenix-test/marker"]);
    assert_eq!(
        String::from_utf8_lossy(&marker.stdout).trim(),
        format!("{} base marker", lab.arg(900)),
        "inherited from the template"
    );
    let ping = lab.attach(951, &["busybox", "ping", "-c1", "-W2", &lab.ip(50)]);
    assert!(
        ping.status.success(),
        "guests reach each other on the lab bridge"
    );
    assert_eq!(lab.snapshots(900), ["final-form"]);
    assert_eq!(lab.state(950)["status"], "completed");

    // 2. A second run changes nothing and runs no mutating command.
    let (code, events) = lab.run_json(&["--all"]);
    assert_eq!(code, 0);
    let s = lab::summary(&events);
    assert_eq!(s["mutating_commands"], 0, "{s:#}");
    assert!(s["guests"]
        .as_array()
        .unwrap()
        .iter()
        .all(|g| g["outcome"] == "unchanged"));

    // 3. Memory, a mount and a feature change: only those steps run.
    let shared = lab.path("host/shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("hello"), "from the host").unwrap();
    let mut c950b = c950.clone();
    c950b["memory_mb"] = json!(384);
    c950b["mount_points"] =
        json!([{"host_path": shared.display().to_string(), "container_path": "/mnt/shared"}]);
    c950b["features"] = json!(["sleepy"]);
    let t900 = lab.template_ct("base", 100);
    let mut t900b = t900.clone();
    t900b["features"] = json!(["marker"]);
    lab.write_fleet(&[(900, t900b), (901, t901), (950, c950b), (951, c951)]);
    let (code, events) = lab.run_json(&[&lab.arg(950)]);
    assert_eq!(code, 0, "{events:#?}");
    // The checks re-run after any change (their digest chains the steps before them); they
    // change nothing themselves.
    assert_eq!(
        steps_of_last_run(&lab.state(950)),
        ["resources", "mounts", "feature:sleepy", "health_check"]
    );
    let cfg = std::fs::read_to_string(lab.path(&format!("lxc/{}/config", lab.arg(950)))).unwrap();
    assert!(cfg.contains("384M"), "{cfg}");
    let seen = lab.attach(950, &["cat", "/mnt/shared/hello"]);
    assert_eq!(
        String::from_utf8_lossy(&seen.stdout),
        "from the host",
        "the mount is live after its restart"
    );
    let outcomes: Vec<_> = lab::summary(&events)["guests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["id"].clone(), g["outcome"].clone()))
        .collect();
    assert!(outcomes.contains(&(json!(lab.arg(900)), json!("unchanged"))));

    // 4. Reset to configured: the next run redoes everything after it.
    let out = lab.run(&[
        "state",
        "reset",
        &lab.arg(950),
        "--to",
        "configured",
        "--yes",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let (code, _) = lab.run_json(&[&lab.arg(950)]);
    assert_eq!(code, 0);
    assert_eq!(
        steps_of_last_run(&lab.state(950)),
        [
            "start",
            "feature:sleepy",
            "application_script",
            "health_check"
        ]
    );

    // 5. Status and state show agree with reality.
    let st = lab.run(&["--output", "json", "status", &lab.arg(950)]);
    let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(st[0]["running"], true);
    assert_eq!(st[0]["recorded_state"], "completed");
    let table = lab.run(&["state", "show"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains(&format!("lxc/{}", lab.arg(951))));

    // 6. Drift: a stopped guest is started again by the next run, and only that.
    assert!(lab.run(&["stop", &lab.arg(951)]).status.success());
    let (code, _) = lab.run_json(&[&lab.arg(951)]);
    assert_eq!(code, 0);
    assert_eq!(steps_of_last_run(&lab.state(951)), ["start"]);
}

#[test]
fn a_failing_feature_blocks_only_its_dependents() {
    let Some(lab) = Lab::new(22) else { return };
    let mut bad = lab.clone_ct("bad", 50, 900);
    bad["features"] = json!(["fails"]);
    let mut dependent = lab.clone_ct("dependent", 51, 900);
    dependent["dependencies"] = json!(["950"]);
    let independent = lab.clone_ct("independent", 52, 900);
    lab.write_fleet(&[
        (900, lab.template_ct("base", 100)),
        (950, bad),
        (951, dependent),
        (952, independent),
    ]);
    let (code, events) = lab.run_json(&["--all"]);
    assert_eq!(code, 1);
    let s = lab::summary(&events);
    let outcome = |id: u32| lab.outcome(&s, id);
    assert_eq!(outcome(950), "failed");
    assert_eq!(outcome(951), "blocked");
    assert_eq!(outcome(952), "converged");
    let st = lab.state(950);
    assert_eq!(st["status"], "failed");
    assert_eq!(st["step"], "feature:fails");
    let tail = st["last_error"]["output_tail"].as_str().unwrap();
    assert!(tail.contains("the widget is broken (exit 3)"), "{tail}");
    assert!(st["last_error"]["message"]
        .as_str()
        .unwrap()
        .contains("exited with code 3"));
    assert_eq!(
        lab.state(951),
        serde_json::Value::Null,
        "a blocked guest is not started"
    );
    assert!(!lab.containers().contains(&"951".to_string()));
    let human = lab.run(&["run", &lab.arg(951)]);
    assert_eq!(human.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&human.stderr).contains(&format!("blocked by {}", lab.arg(950))),
        "{}",
        text(&human)
    );
    // The retry keeps the attempt count.
    let st = lab.state(950);
    assert_eq!(st["attempt"], 2);
}

#[test]
fn dry_run_and_bad_input_change_nothing() {
    let Some(lab) = Lab::new(23) else { return };
    lab.write_fleet(&[
        (900, lab.template_ct("base", 100)),
        (950, lab.clone_ct("api", 50, 900)),
    ]);
    let out = lab.run(&["run", "--all", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("would run: tar --zstd"), "{stdout}");
    assert!(
        stdout.contains(&format!("would run step create of {}", lab.arg(950))),
        "{stdout}"
    );
    assert!(lab.containers().is_empty(), "a dry run creates nothing");
    assert!(
        !lab.path("state/views").exists()
            || std::fs::read_dir(lab.path("state/views")).unwrap().count() == 0
    );

    // A CTID not in the config.
    let out = lab.run(&["run", "4242"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("guest 4242 is not defined"));

    // A bridge that does not exist: say how to create it.
    let mut ghost = lab.template_ct("ghost", 60);
    ghost["network_config"]["bridge"] = json!("phxnone0");
    lab.write_fleet(&[(900, ghost)]);
    let out = lab.run(&["run", &lab.arg(900)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ip link add phxnone0 type bridge"),
        "{}",
        text(&out)
    );

    // A missing template.
    let mut missing = lab.template_ct("missing", 61);
    missing["template"] = json!("/nonexistent/t.tar.zst");
    lab.write_fleet(&[(900, missing)]);
    let out = lab.run(&["run", &lab.arg(900)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "/lxc_configs/{}/template: template /nonexistent/t.tar.zst does not exist",
            lab.arg(900)
        )),
        "{}",
        text(&out)
    );

    // A store locked by another run: exit 3, naming the holder.
    lab.write_fleet(&[(900, lab.template_ct("base", 100))]);
    let (_store, _) = state_machine::Store::<state_machine::Lifecycle>::open(
        &lab.path("state"),
        Default::default(),
    )
    .unwrap();
    let out = lab.run(&["run", &lab.arg(900)]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("pid {}", std::process::id())),
        "{}",
        text(&out)
    );
    assert!(lab.containers().is_empty());
}

#[test]
fn scripts_run_over_ssh_into_the_guest() {
    let Some(lab) = Lab::new(35) else { return };
    let mut t900 = lab.template_ct("base", 100);
    t900["features"] = json!(["marker"]);
    let mut c950 = lab.clone_ct("api", 50, 900);
    c950["exec_via"] = json!("ssh");
    c950["features"] = json!(["sleepy"]);
    c950["application_script"] = json!("scripts/app_sleep.sh");
    c950["health_check"] =
        json!({"command": "test -n \"$SSH_CONNECTION\"", "retries": 1, "interval": 1});
    let mut c951 = lab.clone_ct("plain", 51, 900);
    c951["features"] = json!(["marker"]);
    lab.write_fleet(&[(900, t900), (950, c950), (951, c951)]);
    let (code, events) = lab.run_json(&["--all"]);
    assert_eq!(code, 0, "{:#}", lab::summary(&events));
    // The template's feature ran through the hypervisor.
    let via = lab.attach(951, &["cat", "/var/lib/phoenix-test/via"]);
    assert_eq!(String::from_utf8_lossy(&via.stdout).trim(), "hypervisor");
    // 950's ran over SSH from the lab bridge's address, and its host key was pinned.
    let steps: Vec<String> = lab.state(950)["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    let at = |n: &str| {
        steps
            .iter()
            .position(|s| s == n)
            .unwrap_or_else(|| panic!("{n} missing from {steps:?}"))
    };
    assert_eq!(
        at("ssh_access"),
        at("start") + 1,
        "SSH access is opened right after the start"
    );
    let effects = String::from_utf8_lossy(
        &lab.attach(950, &["cat", "/var/lib/phoenix-test/effects"])
            .stdout,
    )
    .into_owned();
    assert!(
        effects.lines().any(|l| l.starts_with("sleepy"))
            && effects
                .lines()
                .any(|l| l.starts_with(&format!("app {}", lab.arg(950)))),
        "{effects}"
    );
    let pinned = std::fs::read_to_string(lab.path("state/guest_known_hosts")).unwrap();
    assert!(
        pinned.starts_with(&format!("{} ssh-ed25519 ", lab.ip(50))),
        "{pinned}"
    );
    let auth = lab.attach(950, &["cat", "/root/.ssh/authorized_keys"]);
    assert!(String::from_utf8_lossy(&auth.stdout).contains("phoenix-guest-access"));
    // The health check's command saw an SSH session, so it ran over SSH.
    assert_eq!(lab.state(950)["status"], "completed");
    // A second run changes nothing, over SSH too.
    let (code, events) = lab.run_json(&["--all"]);
    assert_eq!(code, 0);
    assert_eq!(lab::summary(&events)["mutating_commands"], 0);
}

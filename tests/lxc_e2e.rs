//! `phoenix run` on real LXC containers: build, idempotent re-run, config changes that converge
//! only what changed, reset, failures that block only dependents, a VM the backend cannot build,
//! dry run, and bad input.

mod lab;

use lab::{steps_of_last_run, text, Lab};
use phoenix::converge::Outcome::*;
use serde_json::json;

/// 900 (template, `marker`) → 901 (template) → 950 (app, health check) and 951 (needs 950).
fn fleet(lab: &Lab, change_950: impl FnOnce(lab::fleet::Fleet<'_>) -> lab::fleet::Fleet<'_>) {
    let f = lab
        .fleet()
        .template(900, "base")
        .features(&["marker"])
        .clone_of(901, "tmpl", 900)
        .snapshot("final-form")
        .clone_of(950, "api", 901)
        .set("application_script", json!("scripts/app_sleep.sh"))
        .set(
            "health_check",
            json!({"command": "test -s /var/lib/phoenix-test/marker", "retries": 3, "interval": 1}),
        );
    change_950(f)
        .clone_of(951, "worker", 901)
        .depends_on(&[950])
        .write();
}

#[test]
fn fleet_build_rerun_change_and_reset() {
    let Some(lab) = Lab::new() else { return };
    fleet(&lab, |f| f);

    // 1. Full build.
    lab.run_json(&["--all"]).expect(&lab, 0, &[]).all(Converged);
    assert_eq!(lab.containers(), ["900", "901", "950", "951"]);
    let host = lab.attach(950, &["hostname"]);
    assert_eq!(String::from_utf8_lossy(&host.stdout).trim(), "api");
    let marker = lab.attach(950, &["cat", "/var/lib/phoenix-test/marker"]);
    assert_eq!(
        String::from_utf8_lossy(&marker.stdout).trim(),
        format!("{} base marker", lab.arg(900)),
        "inherited from the template"
    );
    let ping = lab.attach(951, &["busybox", "ping", "-c1", "-W2", &lab.ip_of(950)]);
    assert!(
        ping.status.success(),
        "guests reach each other on the lab bridge"
    );
    assert_eq!(lab.snapshots(900), ["final-form"]);
    assert_eq!(lab.state(950)["status"], "completed");

    // 2. A second run changes nothing and runs no mutating command.
    let run = lab.run_json(&["--all"]);
    run.expect(&lab, 0, &[]).all(Unchanged);
    assert_eq!(run.summary.mutating_commands, 0, "{run}");

    // 3. Memory, a mount and a feature change: only those steps run.
    let shared = lab.path("host/shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("hello"), "from the host").unwrap();
    let mount =
        json!([{"host_path": shared.display().to_string(), "container_path": "/mnt/shared"}]);
    fleet(&lab, |f| {
        f.set("memory_mb", json!(384))
            .set("mount_points", mount)
            .features(&["sleepy"])
    });
    lab.run_json(&[&lab.arg(950)])
        .expect(&lab, 0, &[(900, Unchanged), (950, Converged)]);
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
    lab.run_json(&[&lab.arg(950)]).expect(&lab, 0, &[]);
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
    lab.run_json(&[&lab.arg(951)])
        .expect(&lab, 0, &[(951, Converged)]);
    assert_eq!(steps_of_last_run(&lab.state(951)), ["start"]);
}

#[test]
fn a_failing_feature_blocks_only_its_dependents() {
    let Some(lab) = Lab::new() else { return };
    lab.fleet()
        .template(900, "base")
        .clone_of(950, "bad", 900)
        .features(&["fails"])
        .clone_of(951, "dependent", 900)
        .depends_on(&[950])
        .clone_of(952, "independent", 900)
        .write();
    let run = lab.run_json(&["--all"]);
    run.expect(&lab, 1, &[(950, Failed), (951, Blocked), (952, Converged)]);
    assert_eq!(run.guest(&lab, 951).blocked_by, Some(lab.arg(950)));
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
    assert_eq!(lab.state(950)["attempt"], 2);
}

/// One graph for containers and VMs on a backend that cannot build VMs: the VM is reported on its
/// own before anything starts, its dependent is blocked, and the rest is built (and planned by a
/// dry run); `--assume-built` then builds the dependent against the VM.
#[test]
fn a_vm_is_reported_its_dependents_blocked_and_the_rest_built() {
    let Some(lab) = Lab::new() else { return };
    lab.fleet()
        .vm(1001, "docker-host")
        .template(900, "base")
        .clone_of(950, "needs-vm", 900)
        .depends_on(&[1001])
        .clone_of(951, "free", 900)
        .write();
    let out = lab.run(&["run", "--all", "--dry-run"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("would run step create of {}", lab.arg(951))),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("the lxc backend cannot build VMs"));
    assert!(lab.containers().is_empty(), "a dry run creates nothing");

    let run = lab.run_json(&["--all"]);
    run.expect(
        &lab,
        1,
        &[
            (1001, Unsupported),
            (950, Blocked),
            (951, Converged),
            (900, Converged),
        ],
    );
    assert!(run
        .guest(&lab, 1001)
        .error
        .as_deref()
        .unwrap()
        .contains("the lxc backend cannot build VMs"));
    assert_eq!(run.guest(&lab, 950).blocked_by, Some(lab.arg(1001)));
    assert_eq!(lab.containers(), ["900", "951"]);

    // The VM exists elsewhere: its dependent is built against it.
    let run = lab.run_json(&["--all", "--assume-built", &lab.arg(1001)]);
    run.expect(&lab, 0, &[(950, Converged), (951, Unchanged)]);
    assert_eq!(lab.containers(), ["900", "950", "951"]);
}

#[test]
fn dry_run_and_bad_input_change_nothing() {
    let Some(lab) = Lab::new() else { return };
    lab.fleet()
        .template(900, "base")
        .clone_of(950, "api", 900)
        .write();
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
    // With --output json, stdout is the event stream alone: what would run are events.
    let out = lab.run(&["--output", "json", "run", "--all", "--dry-run"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in stdout.lines() {
        let e: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert!(e["event"].is_string(), "{line}");
    }
    assert!(stdout.contains(r#""event":"would_run""#), "{stdout}");

    // A CTID not in the config.
    let out = lab.run(&["run", "4242"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("guest 4242 is not defined"));

    // A bridge that does not exist: say how to create it.
    lab.fleet()
        .template(900, "ghost")
        .set(
            "network_config",
            json!({"bridge": "phxnone0", "ip": format!("{}/24", lab.ip(60)), "gw": lab.ip(1)}),
        )
        .write();
    let out = lab.run(&["run", &lab.arg(900)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ip link add phxnone0 type bridge"),
        "{}",
        text(&out)
    );

    // A missing template.
    lab.fleet()
        .template(900, "missing")
        .set("template", json!("/nonexistent/t.tar.zst"))
        .write();
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
    lab.fleet().template(900, "base").write();
    let (_store, _) = state_machine::Store::open(&lab.path("state"), Default::default()).unwrap();
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
    let Some(lab) = Lab::new() else { return };
    lab.fleet()
        .template(900, "base")
        .features(&["marker"])
        .clone_of(950, "api", 900)
        .set("exec_via", json!("ssh"))
        .features(&["sleepy"])
        .set("application_script", json!("scripts/app_sleep.sh"))
        .set(
            "health_check",
            json!({"command": "test -n \"$SSH_CONNECTION\"", "retries": 1, "interval": 1}),
        )
        .clone_of(951, "plain", 900)
        .features(&["marker"])
        .write();
    lab.run_json(&["--all"]).expect(&lab, 0, &[]);
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
        pinned.starts_with(&format!("{} ssh-ed25519 ", lab.ip_of(950))),
        "{pinned}"
    );
    let auth = lab.attach(950, &["cat", "/root/.ssh/authorized_keys"]);
    assert!(String::from_utf8_lossy(&auth.stdout).contains("phoenix-guest-access"));
    // The health check's command saw an SSH session, so it ran over SSH.
    assert_eq!(lab.state(950)["status"], "completed");
    // A second run changes nothing, over SSH too.
    let run = lab.run_json(&["--all"]);
    run.expect(&lab, 0, &[]);
    assert_eq!(run.summary.mutating_commands, 0);
}

/// Containers made from one tarball share one unpacked image as the lower layer of their overlay
/// rootfs; the image goes when the last container that uses it is deleted.
#[test]
fn containers_from_one_tarball_share_an_image_that_goes_with_the_last() {
    let Some(lab) = Lab::new() else { return };
    lab.fleet()
        .template(900, "one")
        .template(901, "two")
        .write();
    lab.run_json(&["--all"]).expect(&lab, 0, &[]);
    let images = lab.path("lxc/.phoenix-images");
    let unpacked: Vec<_> = std::fs::read_dir(&images)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("rootfs").is_dir())
        .map(|e| e.path())
        .collect();
    assert_eq!(unpacked.len(), 1, "{unpacked:?}");
    for id in [900, 901] {
        let cfg =
            std::fs::read_to_string(lab.path(&format!("lxc/{}/config", lab.arg(id)))).unwrap();
        let lower = format!("overlay:{}/rootfs:", unpacked[0].display());
        assert!(cfg.contains(&lower), "{id}: {cfg}");
    }
    let (a, b) = (lab.arg(900), lab.arg(901));
    assert!(lab.run(&["delete", "--yes", &a]).status.success());
    assert!(unpacked[0].exists(), "901 still uses it");
    assert!(lab.run(&["delete", "--yes", &b]).status.success());
    assert!(!unpacked[0].exists(), "pruned with the last container");
}

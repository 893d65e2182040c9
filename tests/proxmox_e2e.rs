//! The Proxmox backend end to end, locally and over SSH: `pct` is the faithful double in
//! fixtures/pve (real LXC underneath), SSH goes to a real sshd on the loopback. The same fleet as
//! the LXC suite: build, idempotent re-run, a change converging only its steps, raw lines added
//! and removed, reset, and SIGKILL inside steps then resume.

mod lab;

use lab::{steps_of_last_run, text, Backend, Lab};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::Stdio;

fn fleet(lab: &Lab, extra_950: Option<(&str, Value)>) {
    let mut t900 = lab.template_ct("base", 100);
    t900["features"] = json!(["marker"]);
    t900["storage_size_gb"] = json!(4);
    let mut c950 = lab.clone_ct("api", 50, 900);
    c950["application_script"] = json!("scripts/app_sleep.sh");
    c950["health_check"] =
        json!({"command": "test -s /var/lib/phoenix-test/marker", "retries": 3, "interval": 1});
    if let Some((k, v)) = extra_950 {
        c950[k] = v;
    }
    let mut c951 = lab.clone_ct("worker", 51, 900);
    c951["dependencies"] = json!(["950"]);
    lab.write_fleet(&[(900, t900), (950, c950), (951, c951)]);
}

fn scenario(backend: Backend) {
    let Some(lab) = Lab::with_backend(backend) else {
        return;
    };
    fleet(&lab, None);
    lab.run_json(&["--all"]).expect(&lab, 0, &[]);
    assert_eq!(lab.containers(), ["900", "950", "951"]);
    let conf = std::fs::read_to_string(lab.path(&format!("pve/{}.conf", lab.arg(950)))).unwrap();
    assert!(
        conf.contains("hostname: api") && conf.contains("memory: 256"),
        "{conf}"
    );
    assert_eq!(
        String::from_utf8_lossy(&lab.attach(950, &["hostname"]).stdout).trim(),
        "api"
    );
    assert!(lab
        .attach(951, &["busybox", "ping", "-c1", "-W2", &lab.ip(50)])
        .status
        .success());
    let t900 = std::fs::read_to_string(lab.path(&format!("pve/{}.conf", lab.arg(900)))).unwrap();
    assert!(
        t900.contains("[final-form]") && t900.contains("size=4G"),
        "{t900}"
    );

    // Idempotent: no mutating command.
    let run = lab.run_json(&["--all"]);
    run.expect(&lab, 0, &[]);
    assert_eq!(run.summary.mutating_commands, 0, "{run}");

    // Memory and a raw option: only their steps (and the checks after them) run.
    fleet(
        &lab,
        Some(("lxc_options", json!(["lxc.cap.drop: sys_time"]))),
    );
    let mut defs = serde_json::from_str::<Value>(
        &std::fs::read_to_string(lab.path("config/phoenix_lxc_configs.json")).unwrap(),
    )
    .unwrap();
    defs["lxc_configs"][lab.arg(950)]["memory_mb"] = json!(384);
    std::fs::write(
        lab.path("config/phoenix_lxc_configs.json"),
        defs.to_string(),
    )
    .unwrap();
    lab.run_json(&[&lab.arg(950)]).expect(&lab, 0, &[]);
    assert_eq!(
        steps_of_last_run(&lab.state(950)),
        ["resources", "lxc_options", "health_check"]
    );
    let conf = std::fs::read_to_string(lab.path(&format!("pve/{}.conf", lab.arg(950)))).unwrap();
    assert!(
        conf.contains("memory: 384") && conf.contains("lxc.cap.drop: sys_time"),
        "{conf}"
    );

    // The option removed from the config is removed from the node.
    defs["lxc_configs"][lab.arg(950)]["lxc_options"] = json!([]);
    std::fs::write(
        lab.path("config/phoenix_lxc_configs.json"),
        defs.to_string(),
    )
    .unwrap();
    lab.run_json(&[&lab.arg(950)]).expect(&lab, 0, &[]);
    let conf = std::fs::read_to_string(lab.path(&format!("pve/{}.conf", lab.arg(950)))).unwrap();
    assert!(!conf.contains("lxc.cap.drop"), "{conf}");

    // Reset to configured redoes what follows.
    assert!(lab
        .run(&[
            "state",
            "reset",
            &lab.arg(950),
            "--to",
            "configured",
            "--yes"
        ])
        .status
        .success());
    lab.run_json(&[&lab.arg(950)]).expect(&lab, 0, &[]);
    assert_eq!(
        steps_of_last_run(&lab.state(950)),
        ["start", "application_script", "health_check"]
    );

    // Crash and resume: SIGKILL inside steps of a fresh guest, then finish.
    let mut defs2 = defs.clone();
    defs2["lxc_configs"][lab.arg(952)] = {
        let mut c = lab.clone_ct("late", 52, 900);
        c["features"] = json!(["sleepy"]);
        c
    };
    std::fs::write(
        lab.path("config/phoenix_lxc_configs.json"),
        defs2.to_string(),
    )
    .unwrap();
    for step in ["create", "network", "start", "feature:sleepy"] {
        let mut child = lab
            .phoenix()
            .env("PHOENIX_STEP_DELAY_MS", "400")
            .args(["--output", "json", "run", &lab.arg(952)])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let Ok(e) = serde_json::from_str::<Value>(&line.unwrap_or_default()) else {
                continue;
            };
            if e["event"] == "step_started" && e["step"] == step {
                child.kill().unwrap();
                break;
            }
        }
        let _ = child.wait();
    }
    let out = lab.run(&["run", &lab.arg(952)]);
    assert!(out.status.success(), "{}", text(&out));
    let st = lab.state(952);
    let h = st["history"].as_array().unwrap();
    for step in ["create", "network", "start", "feature:sleepy"] {
        assert!(
            h.iter().any(|e| e["event"] == "step_interrupted"
                && e["detail"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{step} "))),
            "no interruption at {step}"
        );
    }
    let n = |ev: &str| h.iter().filter(|e| e["event"] == ev).count();
    assert_eq!(
        n("step_started"),
        st["steps"].as_array().unwrap().len() + n("step_interrupted")
    );
    assert_eq!(
        lab.containers(),
        ["900", "950", "951", "952"],
        "no duplicate container"
    );
}

#[test]
fn proxmox_backend_on_the_node() {
    scenario(Backend::Proxmox);
}

#[test]
fn proxmox_backend_over_ssh() {
    scenario(Backend::ProxmoxSsh);
}

#[test]
fn the_pct_double_rejects_what_pct_rejects() {
    let Some(lab) = Lab::with_backend(Backend::Proxmox) else {
        return;
    };
    let pct = |args: &[&str]| {
        std::process::Command::new(lab.path("bin/pct"))
            .args(args)
            .output()
            .unwrap()
    };
    for bad in [
        vec!["status"],
        vec!["status", "12"],
        vec!["frobnicate", "100"],
        vec!["create", "43900", lab::TEMPLATE, "--memory", "lots"],
        vec!["create", "43900", lab::TEMPLATE, "--colour", "blue"],
        vec!["create", "43900", lab::TEMPLATE, "--net0", "bridge=vmbr0"],
        vec![
            "create",
            "43900",
            lab::TEMPLATE,
            "--net0",
            "name=eth0,ip=10.0.0.5",
        ],
        vec!["create", "43900", "/nonexistent.tar.zst"],
        vec!["config", "33999"],
    ] {
        let out = pct(&bad);
        assert!(!out.status.success(), "pct {bad:?} was accepted");
        assert!(!out.stderr.is_empty(), "pct {bad:?} says nothing");
    }
    assert!(pct(&[
        "create",
        "43900",
        lab::TEMPLATE,
        "--hostname",
        "t",
        "--memory",
        "256",
        "--net0",
        &format!(
            "name=eth0,bridge={},ip={}/24,gw={}",
            lab.bridge,
            lab.ip(10),
            lab.ip(1)
        )
    ])
    .status
    .success());
    assert!(
        !pct(&["create", "43900", lab::TEMPLATE]).status.success(),
        "already exists"
    );
    assert!(
        !pct(&["set", "43900", "--unprivileged", "1"])
            .status
            .success(),
        "read-only option"
    );
    assert!(
        !pct(&["resize", "43900", "rootfs", "1G"]).status.success(),
        "cannot shrink"
    );
    assert!(pct(&["resize", "43900", "rootfs", "+2G"]).status.success());
    assert!(pct(&["snapshot", "43900", "s1"]).status.success());
    assert!(
        !pct(&["snapshot", "43900", "s1"]).status.success(),
        "name used twice"
    );
    assert!(
        !pct(&["snapshot", "43900", "1bad"]).status.success(),
        "bad snapshot name"
    );
    assert!(
        !pct(&["exec", "43900", "--", "true"]).status.success(),
        "not running"
    );
    assert!(pct(&["start", "43900"]).status.success());
    assert!(
        !pct(&["start", "43900"]).status.success(),
        "already running"
    );
    assert!(!pct(&["destroy", "43900"]).status.success(), "running");
    assert_eq!(
        String::from_utf8_lossy(&pct(&["exec", "43900", "--", "hostname"]).stdout).trim(),
        "t"
    );
    assert!(pct(&["destroy", "43900", "--force", "1", "--purge", "1"])
        .status
        .success());
}

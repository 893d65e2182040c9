//! `phoenix doctor` on real labs (tests/lab): a plain-LXC host ready for its fleet, a fleet on a
//! bridge that does not exist, a stand-in Proxmox node asked for a snapshot its storage cannot
//! take, and the same node over SSH, where the checks run on the node.

mod lab;

use lab::{text, Backend, Lab};
use serde_json::{json, Value};
use std::process::Output;

/// `phoenix --output json doctor` with `env` on top of the lab's: its exit code and report.
fn doctor(lab: &Lab, env: &[(&str, &std::path::Path)]) -> (i32, Value, Output) {
    let out = lab
        .phoenix()
        .envs(env.iter().copied())
        .args(["--output", "json", "doctor"])
        .output()
        .expect("phoenix doctor");
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor's JSON: {e}\n{}", text(&out)));
    (out.status.code().unwrap_or(-1), report, out)
}

fn checks(report: &Value) -> Vec<Value> {
    report["checks"].as_array().cloned().unwrap_or_default()
}

/// The first check called `name`.
fn named(report: &Value, name: &str) -> Value {
    checks(report)
        .into_iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check: {report:#}"))
}

fn failed(report: &Value) -> Vec<Value> {
    checks(report)
        .into_iter()
        .filter(|c| c["status"] == "fail")
        .collect()
}

#[test]
fn a_ready_lxc_host_passes_and_nothing_is_made() {
    let Some(lab) = Lab::new() else { return };
    lab.fleet().template(900, "base").write();
    let fresh = lab.path("state/not-yet");
    let (code, report, out) = doctor(&lab, &[("PHOENIX_STATE_DIR", &fresh)]);
    assert_eq!(code, 0, "{report:#}\n{}", text(&out));
    assert_eq!(report["ok"], true);
    assert!(failed(&report).is_empty(), "{report:#}");
    for name in [
        "backend",
        "cgroup",
        "inotify",
        "config",
        "preflight",
        "scripts",
        &format!("bridge {}", lab.bridge),
        "state dir",
        "log dir",
        "disk (lxc path)",
        "disk (state dir)",
    ] {
        let c = named(&report, name);
        assert!(
            ["ok", "warn"].contains(&c["status"].as_str().unwrap_or("")),
            "{c}"
        );
    }
    assert!(named(&report, "backend")["detail"]
        .as_str()
        .is_some_and(|d| d.contains("LXC")));
    assert!(!fresh.exists(), "doctor made the state dir");
}

#[test]
fn a_missing_bridge_fails_with_the_command_that_makes_it() {
    let Some(lab) = Lab::new() else { return };
    let bridge = format!("phxno{}", lab.net);
    let mut ct = lab.template_ct("base", 10);
    ct["network_config"]["bridge"] = json!(bridge);
    lab.write_fleet(&[(900, ct)]);
    let (code, report, out) = doctor(&lab, &[]);
    assert_eq!(code, 1, "{report:#}\n{}", text(&out));
    assert_eq!(report["ok"], false);
    let check = named(&report, &format!("bridge {bridge}"));
    assert_eq!(check["status"], "fail", "{check}");
    let fix = check["fix"].as_str().unwrap_or("");
    assert!(fix.contains(&format!("ip link add {bridge}")), "{fix}");
    assert_eq!(failed(&report).len(), 1, "only the bridge: {report:#}");
}

#[test]
fn a_snapshot_on_a_dir_storage_fails_at_its_field() {
    let Some(lab) = Lab::with_backend(Backend::Proxmox) else {
        return;
    };
    lab.fleet()
        .template(900, "base")
        .set("storage_pool", json!("local"))
        .write();
    let (code, report, out) = doctor(&lab, &[]);
    assert_eq!(code, 1, "{report:#}\n{}", text(&out));
    let refusals: Vec<Value> = failed(&report)
        .into_iter()
        .filter(|c| c["name"] == "preflight")
        .collect();
    assert!(
        refusals.iter().any(|c| c["detail"]
            .as_str()
            .is_some_and(|d| d.contains("template_snapshot_name") && d.contains("local"))),
        "{report:#}"
    );
    assert!(refusals.iter().all(|c| c["fix"].is_string()), "{report:#}");
}

#[test]
fn over_ssh_the_checks_run_on_the_node() {
    let Some(lab) = Lab::with_backend(Backend::ProxmoxSsh) else {
        return;
    };
    lab.fleet().template(900, "base").write();
    let sshd = lab.sshd.as_ref().expect("an sshd");
    let before = sshd.logins();
    let (code, report, out) = doctor(&lab, &[]);
    assert_eq!(code, 0, "{report:#}\n{}", text(&out));
    assert!(failed(&report).is_empty(), "{report:#}");
    assert!(sshd.logins() > before, "doctor logged in to the node");
    assert_eq!(named(&report, "ssh")["status"], "ok");
    let on_node = format!("on {}", sshd.target());
    for name in [
        "inotify",
        "cgroup",
        "backend",
        &format!("bridge {}", lab.bridge),
    ] {
        let detail = named(&report, name)["detail"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(detail.contains(&on_node), "{name}: {detail}");
    }
    let disk = named(&report, "disk (storage tank)");
    assert!(
        disk["detail"]
            .as_str()
            .is_some_and(|d| d.contains("GiB free")),
        "{disk}"
    );
}

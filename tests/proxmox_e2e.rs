//! The Proxmox backend end to end on a stand-in node (`fixtures/pve/node`: pct, pvesh, pvesm and
//! pveam mirroring Proxmox VE's source, on real LXC), locally and over SSH to a real sshd on the
//! loopback, with `--jobs 4`: a template fetched with pveam, snapshot clones and a linked clone of
//! a Proxmox template, a bind mount, firewall rules, a GPU asked for and then removed, an
//! idempotent re-run, drift put back, SIGKILL inside steps and resume. Then, one test per way a
//! real node differs from what Phoenix once assumed.

mod lab;

use lab::{steps_of_last_run, text, Backend, Lab};
use serde_json::{json, Value};

const APPLIANCE: &str = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst";

fn rules() -> Value {
    json!({"enabled": true, "rules": [
        {"type": "in", "action": "ACCEPT", "proto": "tcp", "port": "22", "iface": "net0"},
        {"type": "in", "action": "ACCEPT", "proto": "tcp", "port": "80"},
        {"type": "in", "action": "DROP", "proto": "udp", "port": "53", "comment": "no dns"},
    ]})
}

/// The fleet of the scenario; `change` edits the definitions before they are written.
fn fleet(lab: &Lab, change: impl FnOnce(&mut Value)) {
    let data = lab.path("host/data");
    std::fs::create_dir_all(&data).unwrap();
    let mut defs = json!({});
    let mut add = |id: u32, v: Value| defs[lab.arg(id)] = v;
    let mut base = lab.template_ct("base", 10);
    base["template"] = json!(APPLIANCE);
    base["storage_size_gb"] = json!(4);
    base["features"] = json!(["marker"]);
    base["firewall"] = rules();
    add(900, base);
    let mut api = lab.clone_ct("api", 50, 900);
    api["application_script"] = json!("scripts/app_sleep.sh");
    api["health_check"] =
        json!({"command": "test -s /var/lib/phoenix-test/marker", "retries": 3, "interval": 1});
    api["mount_points"] = json!([{"host_path": data, "container_path": "/srv/data"}]);
    api["gpu_assignment"] = json!("0");
    add(950, api);
    let mut worker = lab.clone_ct("worker", 51, 900);
    worker["dependencies"] = json!([lab.arg(950)]);
    add(951, worker);
    let mut tmpl = lab.template_ct("tmpl", 60);
    tmpl["is_template"] = json!(true);
    tmpl["enable_lifecycle_snapshots"] = json!(true);
    add(960, tmpl);
    add(961, lab.clone_ct("linked", 61, 960));
    change(&mut defs);
    std::fs::write(
        lab.path("config/phoenix_lxc_configs.json"),
        json!({ "lxc_configs": defs }).to_string(),
    )
    .unwrap();
}

fn firewall_ports(lab: &Lab, id: u32) -> Vec<String> {
    let path = format!("/nodes/{}/lxc/{}/firewall/rules", node_name(), lab.arg(id));
    let out = lab.node_tool("pvesh", &["get", &path, "--output-format", "json"]);
    let rules: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
    rules
        .iter()
        .map(|r| r["dport"].as_str().unwrap_or("").to_string())
        .collect()
}

fn node_name() -> String {
    let out = std::process::Command::new("uname")
        .arg("-n")
        .output()
        .unwrap();
    let n = String::from_utf8_lossy(&out.stdout);
    n.trim().split('.').next().unwrap().to_string()
}

fn scenario(backend: Backend) {
    let Some(lab) = Lab::with_backend(backend) else {
        return;
    };
    fleet(&lab, |_| {});
    lab.run_json(&["--all", "--jobs", "4"]).expect(&lab, 0, &[]);
    assert_eq!(lab.containers(), ["900", "950", "951", "960", "961"]);
    let base = lab.pve_conf(900);
    assert!(
        base.contains("[final-form]") && base.contains("rootfs: tank:subvol-"),
        "{base}"
    );
    assert_eq!(
        firewall_ports(&lab, 900),
        ["22", "80", "53"],
        "rules in the configured order"
    );
    let tmpl = lab.pve_conf(960);
    assert!(
        tmpl.contains("template: 1") && !tmpl.contains('['),
        "a template without snapshots: {tmpl}"
    );
    assert!(
        lab.pve_conf(961).contains("rootfs: tank:basevol-"),
        "a linked clone of the template"
    );
    let api = lab.pve_conf(950);
    assert!(
        api.contains("mp0: ") && api.contains("dev/nvidia0"),
        "{api}"
    );
    assert_eq!(
        String::from_utf8_lossy(&lab.attach(950, &["hostname"]).stdout).trim(),
        "api"
    );
    assert!(lab
        .attach(951, &["busybox", "ping", "-c1", "-W2", &lab.ip(50)])
        .status
        .success());

    let again = lab.run_json(&["--all", "--jobs", "4"]);
    again.expect(&lab, 0, &[]);
    assert_eq!(again.summary.mutating_commands, 0, "idempotent: {again}");

    // Memory, a raw option, the hostname (of a running container) and the GPU given back.
    fleet(&lab, |d| {
        let api = &mut d[lab.arg(950)];
        api["memory_mb"] = json!(384);
        api["lxc_options"] = json!(["lxc.cap.drop: sys_time"]);
        api["gpu_assignment"] = json!("none");
        api["name"] = json!("api2");
    });
    lab.run_json(&[&lab.arg(950)]).expect(&lab, 0, &[]);
    let api = lab.pve_conf(950);
    assert!(
        api.contains("memory: 384") && api.contains("lxc.cap.drop: sys_time"),
        "{api}"
    );
    assert!(!api.contains("nvidia"), "the GPU lines are gone: {api}");
    assert_eq!(
        String::from_utf8_lossy(&lab.attach(950, &["hostname"]).stdout).trim(),
        "api2"
    );

    // A rule deleted by hand: plan sees it, run puts it back in its place.
    let rule1 = format!(
        "/nodes/{}/lxc/{}/firewall/rules/1",
        node_name(),
        lab.arg(900)
    );
    assert!(lab.node_tool("pvesh", &["delete", &rule1]).status.success());
    let plan = lab.run(&["plan", &lab.arg(900), "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    lab.run_json(&[&lab.arg(900)]).expect(&lab, 0, &[]);
    assert_eq!(firewall_ports(&lab, 900), ["22", "80", "53"]);

    // SIGKILL inside steps of a fresh clone (its clone task outlives the kill), then resume.
    fleet(&lab, |d| {
        let mut late = lab.clone_ct("late", 52, 900);
        late["features"] = json!(["sleepy"]);
        d[lab.arg(952)] = late;
    });
    for step in ["create", "network", "start", "feature:sleepy"] {
        let mut live = lab::live::LiveRun::start(&lab, &[("PHOENIX_STEP_DELAY_MS", "400")]);
        while let Some((id, s)) = live.next_step() {
            if id == lab.arg(952) && s == step {
                std::thread::sleep(std::time::Duration::from_millis(500));
                break;
            }
        }
        live.kill();
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
    assert_eq!(
        lab.containers(),
        ["900", "950", "951", "952", "960", "961"],
        "no duplicate"
    );
    assert!(!lab.pve_conf(952).contains("lock:"), "no lock left behind");
}

#[test]
fn proxmox_on_a_stand_in_node() {
    scenario(Backend::Proxmox);
}

#[test]
fn proxmox_over_ssh() {
    scenario(Backend::ProxmoxSsh);
}

/// What a node would refuse is an error at `plan` (and `run`), at its field, before any change:
/// a snapshot on a storage without snapshots or of a container with a bind mount, a clone of a
/// container with a bind mount, a raw key Proxmox drops, a rule pve-firewall refuses.
#[test]
fn what_proxmox_refuses_is_refused_at_plan_time() {
    let Some(lab) = Lab::with_backend(Backend::Proxmox) else {
        return;
    };
    let data = lab.path("host/data");
    std::fs::create_dir_all(&data).unwrap();
    let mut dir_snapshot = lab.template_ct("on-dir", 10);
    dir_snapshot["storage_pool"] = json!("local"); // a dir storage
    let mut bind = lab.template_ct("bind", 11);
    bind["mount_points"] = json!([{"host_path": data, "container_path": "/srv"}]);
    let mut raw = lab.ct("raw", 12);
    raw["clone_from_ctid"] = json!(lab.arg(901));
    raw["lxc_options"] = json!(["lxc.mystery.key: 1"]);
    let mut fw = lab.template_ct("fw", 13);
    fw["firewall"] =
        json!({"enabled": true, "rules": [{"type": "in", "action": "ACCEPT", "iface": "eth0"}]});
    lab.write_fleet(&[(900, dir_snapshot), (901, bind), (902, raw), (903, fw)]);
    for verb in ["plan", "run"] {
        let out = lab.run(&[verb, "--all"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{verb}: {}", text(&out));
        let at = |id: u32, field: &str| format!("/lxc_configs/{}/{field}", lab.arg(id));
        for (id, field, words) in [
            (900, "template_snapshot_name", "type dir"),
            (901, "template_snapshot_name", "bind mount"),
            (902, "clone_from_ctid", "unable to clone mountpoint"),
            (902, "lxc_options/0", "drops raw key"),
            (903, "firewall/rules/0/iface", "netN"),
        ] {
            assert!(
                err.lines()
                    .any(|l| l.contains(&at(id, field)) && l.contains(words)),
                "{verb}: no {field} of {id} ({words}):\n{err}"
            );
        }
        assert!(lab.containers().is_empty(), "nothing was changed");
    }
}

/// A lab on a stand-in node with one container (900) built, and its definition.
fn one_container(name: &str) -> Option<(Lab, Value)> {
    let lab = Lab::with_backend(Backend::Proxmox)?;
    let mut ct = lab.template_ct(name, 10);
    ct["template_snapshot_name"] = Value::Null;
    lab.write_fleet(&[(900, ct.clone())]);
    lab.run_json(&["--all"]).expect(&lab, 0, &[]);
    Some((lab, ct))
}

/// "CT is locked (...)": an operation of someone else's holds the container; Phoenix waits it out.
#[test]
fn a_locked_container_is_waited_for() {
    let Some((lab, mut ct)) = one_container("locked") else {
        return;
    };
    let conf = lab.path(&format!("node/etc/pve/lxc/{}.conf", lab.arg(900)));
    let text0 = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, format!("{text0}lock: backup\n")).unwrap();
    let unlock = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(2));
        std::fs::write(&conf, text0).unwrap();
    });
    ct["memory_mb"] = json!(320);
    lab.write_fleet(&[(900, ct)]);
    lab.run_json(&["--all"]).expect(&lab, 0, &[]);
    unlock.join().unwrap();
    assert!(lab.pve_conf(900).contains("memory: 320"));
}

/// Phoenix writes raw lines into `/etc/pve/lxc/CTID.conf` under pve-container's config lock
/// (`/run/lock/lxc/pve-config-CTID.lock`): while someone else holds it, Phoenix waits.
#[test]
fn the_config_file_is_written_under_the_config_lock() {
    let Some((lab, mut ct)) = one_container("held") else {
        return;
    };
    let lock = lab.path(&format!(
        "node/run/lock/lxc/pve-config-{}.lock",
        lab.arg(900)
    ));
    let mut holder = std::process::Command::new("flock")
        .arg(&lock)
        .args(["sleep", "3"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    ct["lxc_options"] = json!(["lxc.cap.drop: sys_time"]);
    lab.write_fleet(&[(900, ct)]);
    lab.run_json(&["--all"]).expect(&lab, 0, &[]);
    assert!(
        holder.try_wait().unwrap().is_some(),
        "the config was written while the lock was held"
    );
    let _ = holder.wait();
    assert!(lab.pve_conf(900).contains("lxc.cap.drop: sys_time"));
}

/// The stand-in's firewall follows pve-firewall (its own unit tests, in Python).
#[test]
fn the_stand_in_firewall_passes_its_tests() {
    let out = std::process::Command::new("python3")
        .args(["-m", "unittest", "discover", "-s", "pvelib", "-t", "."])
        .current_dir(lab::repo().join("fixtures/pve"))
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", text(&out));
}

/// A create task still running when Phoenix is killed is waited for and adopted, never started a
/// second time; its UPID is the step's intent.
#[test]
fn an_interrupted_create_task_is_adopted() {
    let Some(lab) = Lab::with_backend(Backend::Proxmox) else {
        return;
    };
    lab.set_task_delay_ms(3000);
    let mut ct = lab.template_ct("slow", 10);
    ct["template_snapshot_name"] = Value::Null;
    lab.write_fleet(&[(900, ct)]);
    let mut live = lab::live::LiveRun::start(&lab, &[]);
    while let Some((_, step)) = live.next_step() {
        if step == "create" {
            std::thread::sleep(std::time::Duration::from_millis(1000));
            break;
        }
    }
    live.kill();
    assert!(
        lab.pve_conf(900).contains("lock: create"),
        "the task still runs"
    );
    let out = lab.run(&["run", "--all"]);
    assert!(out.status.success(), "{}", text(&out));
    let tasks = std::fs::read_dir(lab.path("node/var/log/pve/tasks")).unwrap();
    let creates = tasks.filter_map(|e| e.ok()).filter(|e| {
        let name = e.file_name().to_string_lossy().to_string();
        name.contains("vzcreate") && name.ends_with(".json")
    });
    assert_eq!(creates.count(), 1, "one create task, adopted");
    assert!(!lab.pve_conf(900).contains("lock:"));
    assert_eq!(steps_of_last_run(&lab.state(900))[0], "create");
}

/// The stand-in refuses what Proxmox refuses, with its messages.
#[test]
fn the_stand_in_node_refuses_what_proxmox_refuses() {
    let Some(lab) = Lab::with_backend(Backend::Proxmox) else {
        return;
    };
    let pct = |args: &[&str]| lab.node_tool("pct", args);
    let fails = |args: &[&str], message: &str| {
        let out = pct(args);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            !out.status.success() && err.contains(message),
            "pct {args:?}: {err}"
        );
    };
    let ct = lab.arg(900);
    let net0 = format!(
        "name=eth0,bridge={},ip={}/24,gw={}",
        lab.bridge,
        lab.ip(10),
        lab.ip(1)
    );
    fails(&["status", "12"], "invalid format");
    fails(
        &["create", &ct, lab::TEMPLATE, "--memory", "lots"],
        "type check ('integer') failed",
    );
    fails(
        &["create", &ct, lab::TEMPLATE, "--colour", "blue"],
        "not defined in schema",
    );
    fails(
        &["create", &ct, lab::TEMPLATE, "--net0", "bridge=vmbr0"],
        "property 'name' is missing",
    );
    fails(&["create", &ct, "/nonexistent.tar.zst"], "can't find file");
    let create = [
        "create",
        &ct,
        lab::TEMPLATE,
        "--storage",
        "tank",
        "--rootfs",
        "tank:2",
        "--net0",
        &net0,
    ];
    assert!(pct(&create).status.success());
    fails(&create, "already exists");
    fails(
        &["set", &ct, "--unprivileged", "1"],
        "unable to modify read-only option",
    );
    fails(
        &["resize", &ct, "rootfs", "1G"],
        "unable to shrink disk size",
    );
    fails(
        &["resize", &ct, "rootfs", "2G"],
        "disk is already at specified size",
    );
    fails(&["snapshot", &ct, "1bad"], "invalid configuration ID");
    assert!(pct(&["snapshot", &ct, "s1"]).status.success());
    fails(&["snapshot", &ct, "s1"], "snapshot name 's1' already used");
    fails(
        &["template", &ct],
        "unable to create template, because CT contains snapshots",
    );
    assert!(pct(&["start", &ct]).status.success());
    fails(&["start", &ct], "already running");
    fails(&["destroy", &ct], "container is running");
    assert!(
        pct(&["set", &ct, "--nameserver", "10.254.0.1", "--hostname", "t2"])
            .status
            .success()
    );
    let conf = lab.pve_conf(900);
    assert!(
        conf.contains("hostname: t2") && conf.contains("[pve:pending]\nnameserver: 10.254.0.1"),
        "pending until restart: {conf}"
    );
    assert!(pct(&["stop", &ct]).status.success());
    assert!(pct(&["delsnapshot", &ct, "s1"]).status.success());
    assert!(pct(&["template", &ct]).status.success());
    fails(&["start", &ct], "you can't start a CT if it's a template");
    fails(
        &["snapshot", &ct, "s2"],
        "you can't take a snapshot if it's a template",
    );
    fails(
        &["clone", &ct, &lab.arg(901), "--storage", "tank"],
        "parameter 'storage' not allowed for linked clones",
    );
    assert!(pct(&["clone", &ct, &lab.arg(901)]).status.success());
    let dir_ct = lab.arg(902);
    assert!(pct(&[
        "create",
        &dir_ct,
        lab::TEMPLATE,
        "--storage",
        "local",
        "--rootfs",
        "local:2",
        "--mp0",
        "/tmp,mp=/mnt"
    ])
    .status
    .success());
    fails(
        &["snapshot", &dir_ct, "s1"],
        "snapshot feature is not available",
    );
    fails(
        &["clone", &dir_ct, &lab.arg(903)],
        "unable to clone mountpoint 'mp0' (type bind)",
    );
}

//! VMs end to end on the stand-in node (`fixtures/pve/qm` over real QEMU): template 9000 from the
//! cached Debian test image (`scripts/build-vm-image`), customized and sealed, and its linked
//! clones 1001 and 1002,
//! booted, their cloud-init users reached over SSH at their static addresses with Phoenix's key;
//! 1002 serves NFS (a feature run over SSH, `exec_via: ssh`) behind firewall rules, and 1001
//! mounts it (`volumes`) and runs its features through the guest agent;
//! SIGKILL of `phoenix run` during the import, the clone, the wait for cloud-init and a feature,
//! each resumed exactly; a no-op re-run; a changed core count and a changed cloud-init setting
//! converged alone. One fleet, so that few VMs boot.

mod lab;

use lab::live::LiveRun;
use lab::{steps_of_last_run, text, Backend, Lab};
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

/// The cached test image (built on first use, by its recipe).
fn image() -> String {
    let out = Command::new(lab::repo().join("scripts/build-vm-image"))
        .output()
        .expect("scripts/build-vm-image");
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn qemu() -> bool {
    Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn vm(lab: &Lab, id: u32, name: &str, host: u8) -> Value {
    json!({
        "vmid": lab.id(id), "name": name, "cores": 2, "memory_mb": 768,
        "storage_pool": "local", "network_bridge": lab.bridge,
        "network_config": {"ip": format!("{}/24", lab.ip(host)), "gw": lab.ip(1), "nameserver": lab.ip(1)},
        "user_config": {"username": "phoenix"},
    })
}

/// The fleet: template 9000 and its clones 1001 (a feature, a snapshot after it) and 1002.
fn fleet(lab: &Lab, image: &str, change: impl FnOnce(&mut Vec<Value>)) {
    let mut tmpl = vm(lab, 9000, "tmpl", 90);
    tmpl["is_template"] = json!(true);
    tmpl["template_image"] = json!(image);
    tmpl["disk_size_gb"] = json!(3);
    // A feature: the template boots, runs it, and is sealed before it is converted.
    tmpl["features"] = json!(["motd"]);
    let mut web = vm(lab, 1001, "web", 101);
    web["clone_from_vmid"] = json!(lab.id(9000));
    web["features"] = json!(["marker", "sleepy"]);
    web["snapshots"] = json!({"post-features": "built"});
    web["dependencies"] = json!([lab.arg(1002)]);
    web["volumes"] = json!([{"type": "nfs", "server": lab.ip(102), "path": "/srv/share", "mount_point": "/mnt/share"}]);
    let mut db = vm(lab, 1002, "db", 102);
    db["clone_from_vmid"] = json!(lab.id(9000));
    db["features"] = json!(["nfs_server", "marker"]);
    db["exec_via"] = json!("ssh");
    db["firewall"] = json!({"enabled": true, "rules": [
        {"type": "in", "action": "ACCEPT", "proto": "tcp", "port": "22"},
        {"type": "in", "action": "ACCEPT", "proto": "tcp", "port": "2049", "comment": "nfs"},
    ]});
    let mut vms = vec![tmpl, web, db];
    change(&mut vms);
    let file =
        json!({"vm_defaults": {"storage_pool": "local", "network_bridge": lab.bridge}, "vms": vms});
    std::fs::write(lab.path("config/phoenix_vm_configs.json"), file.to_string()).unwrap();
}

fn node_name() -> String {
    let out = Command::new("uname").arg("-n").output().unwrap();
    let n = String::from_utf8_lossy(&out.stdout);
    n.trim().split('.').next().unwrap().to_string()
}

fn qm(lab: &Lab, args: &[&str]) -> String {
    let out = lab.node_tool("qm", args);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn vm_conf(lab: &Lab, id: u32) -> String {
    let path = lab.path(&format!("node/etc/pve/qemu-server/{}.conf", lab.id(id)));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `argv` in the VM over SSH as its cloud-init user, with Phoenix's guest key.
fn ssh(lab: &Lab, host: u8, argv: &str) -> String {
    let key = lab.path("state/guest_id_ed25519");
    let out = Command::new("ssh")
        .args(["-i", key.to_str().unwrap()])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "LogLevel=ERROR",
        ])
        .arg(format!("phoenix@{}", lab.ip(host)))
        .arg(argv)
        .output()
        .expect("ssh");
    assert!(out.status.success(), "ssh {argv}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Starts a run and SIGKILLs it `after` into step `step` of guest `id` (lab-relative).
fn kill_in(lab: &Lab, id: u32, step: &str, after: Duration) {
    let mut live = LiveRun::start(lab, &[("PHOENIX_STEP_DELAY_MS", "400")]);
    while let Some((gid, s)) = live.next_step() {
        if gid == lab.arg(id) && s == step {
            std::thread::sleep(after);
            break;
        }
    }
    live.kill();
}

fn interrupted_at(lab: &Lab, id: u32, step: &str) -> bool {
    let st = lab.state(id);
    st["history"].as_array().into_iter().flatten().any(|e| {
        e["event"] == "step_interrupted"
            && e["detail"]
                .as_str()
                .unwrap_or("")
                .starts_with(&format!("{step} "))
    })
}

#[test]
fn vms_build_resume_and_converge_on_a_stand_in_node() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if !qemu() {
        assert!(!ci, "CI=true but qemu-system-x86_64 is not installed");
        eprintln!("\n\n*** SKIPPING VM test: qemu-system-x86_64 is not installed ***\n\n");
        return;
    }
    let Some(lab) = Lab::with_backend(Backend::Proxmox) else {
        return;
    };
    let content = "iso,vztmpl,backup,rootdir,images";
    let out = lab.node_tool("pvesm", &["set", "local", "--content", content]);
    assert!(out.status.success(), "{}", text(&out));
    let image = image();
    fleet(&lab, &image, |_| {});

    // SIGKILL in the import, the clone, the wait for cloud-init and a feature.
    let t0 = std::time::Instant::now();
    kill_in(&lab, 9000, "create", Duration::from_millis(600));
    kill_in(&lab, 1001, "create", Duration::from_millis(600));
    kill_in(&lab, 1001, "start", Duration::from_secs(20));
    kill_in(&lab, 1001, "feature:sleepy", Duration::from_millis(1500));
    let started = std::time::Instant::now();
    let run = lab.run_json(&["--all", "--jobs", "2"]);
    run.expect(&lab, 0, &[]);
    eprintln!(
        "figures: the run after the kills {:?}; from the first start {:?}",
        started.elapsed(),
        t0.elapsed()
    );
    for (id, step) in [
        (9000, "create"),
        (1001, "create"),
        (1001, "start"),
        (1001, "feature:sleepy"),
    ] {
        assert!(
            interrupted_at(&lab, id, step),
            "no interruption of {id} at {step}"
        );
    }
    let list = qm(&lab, &["list"]);
    assert_eq!(list.lines().count(), 4, "three VMs, no duplicate: {list}");
    for id in [9000, 1001, 1002] {
        let dir = lab.path(&format!("node/var/lib/vz/images/{}", lab.id(id)));
        let files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            // The stand-in's record of the kernel to boot, beside each disk.
            .filter(|f| !f.ends_with(".standin-boot.json"))
            .collect();
        assert_eq!(
            files.len(),
            2,
            "{id}: a disk and a cloud-init volume, no duplicate: {files:?}"
        );
    }
    let tmpl = vm_conf(&lab, 9000);
    assert!(
        tmpl.contains("template: 1") && tmpl.contains("size=3G"),
        "{tmpl}"
    );
    let web = vm_conf(&lab, 1001);
    assert!(
        web.contains("[built]") && web.contains("base-"),
        "a linked clone with its snapshot: {web}"
    );
    assert_eq!(web.matches("\n[").count(), 1, "one snapshot: {web}");

    // Over SSH, with the key cloud-init gave the user, at the static addresses.
    assert_eq!(ssh(&lab, 101, "hostname"), "web");
    assert_eq!(ssh(&lab, 102, "hostname"), "db");
    // The sealed template's clones are machines of their own, with what its feature made.
    let ids = [101, 102].map(|h| ssh(&lab, h, "cat /etc/machine-id"));
    assert!(!ids[0].is_empty() && ids[0] != ids[1], "{ids:?}");
    assert_eq!(ssh(&lab, 101, "cat /etc/motd"), "welcome to tmpl");
    assert_eq!(
        ssh(&lab, 101, "cat /mnt/share/hello"),
        "shared by db",
        "the NFS volume"
    );
    assert!(ssh(&lab, 101, "cat /etc/fstab").contains("/mnt/share nfs"));
    assert!(
        vm_conf(&lab, 1002).contains("firewall=1"),
        "net0 has the firewall on"
    );
    let rules = lab.node_tool(
        "pvesh",
        &[
            "get",
            &format!(
                "/nodes/{}/qemu/{}/firewall/rules",
                node_name(),
                lab.id(1002)
            ),
            "--output-format",
            "json",
        ],
    );
    let rules: Vec<Value> = serde_json::from_slice(&rules.stdout).unwrap_or_default();
    let ports: Vec<&str> = rules
        .iter()
        .map(|r| r["dport"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(ports, ["22", "2049"], "rules in the configured order");
    // 1002's scripts ran over SSH through sudo (its journal has them); 1001's through the agent.
    let sudo_runs = |host: u8| {
        let log = ssh(&lab, host, "sudo journalctl _COMM=sudo --no-pager");
        log.matches("phoenix-run").count()
    };
    assert!(sudo_runs(102) > 0, "1002's features ran over SSH");
    assert_eq!(sudo_runs(101), 0, "1001's ran through the agent");
    // A feature's output is logged as it comes, before the step ends (nfs_server prints a line,
    // then sleeps).
    let log = logs(&lab);
    let streamed = log
        .iter()
        .position(|l| l.contains("phoenix::guest") && l.contains("exporting /srv/share"));
    let ended = log
        .iter()
        .position(|l| l.contains("\"step_succeeded\"") && l.contains("feature:nfs_server"));
    assert!(
        streamed.is_some() && streamed < ended,
        "streamed {streamed:?}, ended {ended:?}"
    );
    let effects = ssh(&lab, 101, "sudo cat /var/lib/phoenix-test/effects");
    assert_eq!(
        effects.matches("marker").count(),
        1,
        "each feature once: {effects}"
    );
    assert_eq!(
        effects.matches("sleepy").count(),
        1,
        "each feature once: {effects}"
    );

    let again = lab.run_json(&["--all", "--jobs", "2"]);
    again.expect(&lab, 0, &[]);
    assert_eq!(again.summary.mutating_commands, 0, "idempotent: {again}");
    eprintln!(
        "figures: no-op re-run {} ms, {} commands",
        again.summary.duration_ms, again.summary.commands
    );

    // Fewer cores for 1002, another name server for 1001: only those steps run (each VM
    // restarted for it; at once, now that 1001 no longer waits for 1002).
    fleet(&lab, &image, |v| {
        v[1]["dependencies"] = json!([]);
        v[2]["cores"] = json!(1);
        v[1]["network_config"]["nameserver"] = json!(lab.ip(53));
    });
    let changed = lab.run_json(&["--all", "--jobs", "2"]);
    changed.expect(&lab, 0, &[]);
    eprintln!(
        "figures: cores and cloud-init changed: {} ms",
        changed.summary.duration_ms
    );
    assert_eq!(cores(&lab, 1002), "1");
    assert_eq!(steps_of_last_run(&lab.state(1002)), ["resources"]);
    let web_steps = steps_of_last_run(&lab.state(1001));
    assert_eq!(web_steps[0], "cloud_init", "{web_steps:?}");
    assert!(
        !web_steps
            .iter()
            .any(|s| s.starts_with("feature:") || s == "create"),
        "{web_steps:?}"
    );
    let resolv = ssh(&lab, 101, "cat /run/systemd/resolve/resolv.conf");
    assert!(resolv.contains(&lab.ip(53)), "{resolv}");

    // Drift behind Phoenix's back: a core count set by hand (pending until the next start), a
    // snapshot deleted. The plan shows each; the run puts each back.
    let id = |x: u32| lab.arg(x);
    let qm_ok = |args: &[&str]| assert!(lab.node_tool("qm", args).status.success(), "qm {args:?}");
    qm_ok(&["set", &id(1002), "--cores", "2"]);
    qm_ok(&["delsnapshot", &id(1001), "built"]);
    let plan = lab.run(&["--output", "json", "plan", "--all"]);
    let plan_text = String::from_utf8_lossy(&plan.stdout);
    for drift in ["cores", "snapshot"] {
        assert!(
            plan_text.contains(drift),
            "plan shows the {drift} drift: {plan_text}"
        );
    }
    let fixed = lab.run_json(&["--all", "--jobs", "2"]);
    fixed.expect(&lab, 0, &[]);
    eprintln!("figures: drift put back: {} ms", fixed.summary.duration_ms);
    assert!(
        !vm_conf(&lab, 1002).contains("[PENDING]"),
        "the pending change undone"
    );
    assert!(vm_conf(&lab, 1001).contains("[built]"));
    let again = lab.run_json(&["--all", "--jobs", "2"]);
    assert_eq!(again.summary.mutating_commands, 0, "converged: {again}");

    // The verbs take VM ids; stopped by one, a VM is drift the plan shows.
    let stop = lab.run(&["stop", &id(1002)]);
    assert!(stop.status.success(), "{}", text(&stop));
    let status = lab.run(&["--output", "json", "status", &id(1002)]);
    let status: Value = serde_json::from_slice(&status.stdout).unwrap_or_default();
    assert_eq!(status[0]["running"], json!(false), "{status}");
    let plan = lab.run(&["--output", "json", "plan", &id(1002)]);
    assert!(
        String::from_utf8_lossy(&plan.stdout).contains("state"),
        "{}",
        text(&plan)
    );
}

/// Phoenix's log lines, oldest first (one file a day).
fn logs(lab: &Lab) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(lab.path("log"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The VM's current core count (its config's main section).
fn cores(lab: &Lab, id: u32) -> String {
    let conf = vm_conf(lab, id);
    let cfg = phoenix::backend::proxmox::pct::PctConfig::parse(&conf);
    cfg.get("cores").unwrap_or("1").to_string()
}

/// A template image given as a URL with its SHA-256 (served on the loopback here): a wrong sum
/// is refused and nothing is kept; the right one is downloaded once into the node's cache, from
/// which a second template is made after the server is gone. Templates without features never
/// boot, so this needs no QEMU beyond `qemu-img`.
#[test]
fn a_template_image_from_a_url_is_downloaded_once_and_checked() {
    let Some(lab) = Lab::with_backend(Backend::Proxmox) else {
        return;
    };
    let content = "iso,vztmpl,backup,rootdir,images";
    assert!(lab
        .node_tool("pvesm", &["set", "local", "--content", content])
        .status
        .success());
    let web = lab.path("web");
    std::fs::create_dir_all(&web).unwrap();
    let img = web.join("cloud.img");
    let out = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&img)
        .arg("64M")
        .output()
        .expect("qemu-img");
    assert!(out.status.success(), "{}", text(&out));
    let sum = phoenix::digest::hex(&std::fs::read(&img).unwrap());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .current_dir(&web)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 -m http.server");
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let url = format!("http://127.0.0.1:{port}/cloud.img");
    let write = |vms: Vec<Value>| {
        let file = json!({"vm_defaults": {"storage_pool": "local", "network_bridge": lab.bridge}, "vms": vms});
        std::fs::write(lab.path("config/phoenix_vm_configs.json"), file.to_string()).unwrap();
    };
    let template = |id: u32, sha256: &str| {
        let mut t = vm(&lab, id, &format!("t{id}"), 90);
        t["is_template"] = json!(true);
        t["template_image"] = json!(url);
        t["template_image_sha256"] = json!(sha256);
        t
    };
    let cached = lab.path(&format!("node/var/lib/phoenix/pve/images/{sum}"));

    write(vec![template(9000, &"0".repeat(64))]);
    let bad = lab.run_json(&["--all"]);
    assert_eq!(bad.code, 1, "{bad}");
    assert!(
        bad.stderr.contains("checksum mismatch") || format!("{bad}").contains("checksum mismatch"),
        "{bad}"
    );
    assert!(!cached.exists());

    write(vec![template(9000, &sum)]);
    lab.run_json(&["--all"]).expect(&lab, 0, &[]);
    assert!(cached.exists(), "kept in the node's cache");
    assert!(vm_conf(&lab, 9000).contains("template: 1"));

    let _ = server.kill();
    let _ = server.wait();
    write(vec![template(9000, &sum), template(9001, &sum)]);
    lab.run_json(&["--all"]).expect(&lab, 0, &[]);
    assert!(
        vm_conf(&lab, 9001).contains("template: 1"),
        "made from the cache"
    );
}

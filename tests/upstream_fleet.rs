//! Fleets the bash tool built and the files it ran: adopting guests built outside Phoenix,
//! upstream application scripts run unchanged beside their helpers, and the model servers the
//! upstream files configure (vLLM, Ollama) served from their config, on real containers.

mod common;
mod lab;

use lab::{Backend, Lab};
use phoenix::converge::{Event, Outcome};
use serde_json::{json, Value};

/// A container built as the bash tool built it (UPSTREAM.md §2.2: `pct create`, `pct start`,
/// the feature's effect through `pct exec`), with 384 MB where the file says 256. Adopting it
/// changes nothing and lists what does not hold; the next run changes only that.
#[test]
fn a_guest_the_bash_tool_built_is_adopted_and_the_next_run_changes_only_what_did_not_hold() {
    let Some(lab) = Lab::with_backend(Backend::Proxmox) else {
        return;
    };
    lab.fleet()
        .template(950, "api")
        .features(&["motd", "marker"])
        .write();
    let id = lab.arg(950);
    let net0 = format!(
        "name=eth0,bridge={},ip={}/24,gw={}",
        lab.bridge,
        lab.ip_of(950),
        lab.ip(1)
    );
    let by_hand: [&[&str]; 3] = [
        &[
            "create",
            &id,
            lab::TEMPLATE,
            "--hostname",
            "api",
            "--memory",
            "384",
            "--cores",
            "1",
            "--storage",
            "tank",
            "--rootfs",
            "tank:8",
            "--net0",
            &net0,
        ],
        &["start", &id],
        &[
            "exec",
            &id,
            "--",
            "sh",
            "-c",
            "echo 'welcome to api' > /etc/motd",
        ],
    ];
    for args in by_hand {
        let out = lab.node_tool("pct", args);
        assert!(out.status.success(), "pct {args:?}: {}", lab::text(&out));
    }

    let out = lab.run(&["--output", "json", "adopt", &id]);
    assert_eq!(out.status.code(), Some(1), "{}", lab::text(&out));
    let adopted: Value = serde_json::from_slice(&out.stdout).unwrap();
    let steps = adopted[0]["steps"].as_array().unwrap().clone();
    let holds = |name: &str| {
        steps
            .iter()
            .find(|s| s["step"] == name)
            .map(|s| s["holds"].clone())
    };
    assert_eq!(holds("create"), Some(json!(true)), "{adopted:#}");
    assert_eq!(holds("resources"), Some(json!(false)), "{adopted:#}");
    assert_eq!(
        holds("feature:motd"),
        Some(json!(true)),
        "its --check confirms it: {adopted:#}"
    );
    let marker = steps
        .iter()
        .find(|s| s["step"] == "feature:marker")
        .unwrap();
    assert!(
        marker["why"].as_str().unwrap().contains("--check"),
        "{marker}"
    );
    let not_held: Vec<&str> = steps
        .iter()
        .filter(|s| s["holds"] == false)
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    eprintln!("not holding when adopted: {not_held:?}");
    assert!(
        lab.pve_conf(950).contains("memory: 384"),
        "adopting changed nothing"
    );
    assert_eq!(lab.effects(950), "", "adopting ran no feature");

    let run = lab.run_json(&[&id]);
    run.expect(&lab, 0, &[(950, Outcome::Converged)]);
    let changed: Vec<&str> = run
        .events
        .iter()
        .filter_map(|e| match e {
            Event::StepSucceeded {
                step,
                changed: true,
                ..
            } => Some(step.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        changed.contains(&"resources") && changed.contains(&"feature:marker"),
        "{run}"
    );
    for step in &changed {
        assert!(
            not_held.contains(step),
            "{step} held when adopted, yet the run changed it: {run}"
        );
    }
    assert!(lab.pve_conf(950).contains("memory: 256"));
    assert!(!lab.effects(950).contains("motd"), "motd ran again");
    lab.run_json(&[&id]).all(Outcome::Unchanged);
}

/// An application script written for the bash tool (it sources the helper library from
/// /tmp/phoenix_run and reads the config copies through it) runs unchanged; the copies hold no
/// secret.
#[test]
fn an_upstream_application_script_runs_unchanged_beside_its_helpers() {
    let Some(lab) = Lab::new() else { return };
    std::fs::copy(
        lab::repo().join("fixtures/scripts/upstream_style_app.sh"),
        lab.path("config/scripts/phoenix_hypervisor_lxc_950.sh"),
    )
    .unwrap();
    lab.fleet()
        .template(950, "app-host")
        .set(
            "application_script",
            json!("scripts/phoenix_hypervisor_lxc_950.sh"),
        )
        .set(
            "health_check",
            json!({"command": "test -s /root/upstream_app_result.txt", "retries": 0, "interval": 1}),
        )
        .write();
    let lxc_file = lab.path("config/phoenix_lxc_configs.json");
    let mut lxc: Value = serde_json::from_slice(&std::fs::read(&lxc_file).unwrap()).unwrap();
    lxc["nvidia_driver_version"] = json!("580.76.05");
    std::fs::write(&lxc_file, lxc.to_string()).unwrap();
    let secret = "s3cret-admin-pw";
    std::fs::write(
        lab.path("config/phoenix_hypervisor_config.json"),
        json!({"domain_name": "lab.internal", "portainer_api": {"admin_password": secret}})
            .to_string(),
    )
    .unwrap();
    // Upstream's `create` built the whole guest; `--until` stops at a state.
    let created = lab.run(&["create", &lab.arg(950), "--until", "created"]);
    assert!(created.status.success(), "{}", lab::text(&created));
    assert_eq!(lab.state(950)["state"], "created");
    let out = lab.run(&["create", &lab.arg(950)]);
    assert!(out.status.success(), "{}", lab::text(&out));
    assert_eq!(lab.state(950)["state"], "completed");
    let result = lab.attach(950, &["cat", "/root/upstream_app_result.txt"]);
    let result = String::from_utf8_lossy(&result.stdout);
    for line in [
        "NAME=app-host".to_string(),
        format!("IP={}", lab.ip_of(950)),
        "NVIDIA_DRIVER_VERSION=580.76.05".into(),
        "DOMAIN_NAME=lab.internal".into(),
        "PORTAINER_ADMIN_PASSWORD=absent".into(),
        "ERREXIT=on".into(),
        "PCT_EXEC=yes".into(),
        "PCT_PUSH=yes".into(),
    ] {
        assert!(
            result.lines().any(|l| l == line),
            "{line} not in:\n{result}"
        );
    }
    let grep = lab.attach(
        950,
        &["grep", "-r", secret, "/tmp/phoenix_run", "/var/lib/phoenix"],
    );
    assert_eq!(grep.status.code(), Some(1), "the secret reached the guest");
    lab.run_json(&[&lab.arg(950)]).all(Outcome::Unchanged);

    // Health checks on demand: exit 0 while they pass, 1 (with the failing check) once not.
    let health = lab.run(&["health-check", &lab.arg(950), "-q"]);
    assert_eq!(health.status.code(), Some(0), "{}", lab::text(&health));
    assert!(
        health.stdout.is_empty(),
        "quiet when healthy: {}",
        lab::text(&health)
    );
    lab.attach(950, &["rm", "/root/upstream_app_result.txt"]);
    let health = lab.run(&["--output", "json", "health-check", &lab.arg(950)]);
    assert_eq!(health.status.code(), Some(1), "{}", lab::text(&health));
    let report: Value = serde_json::from_slice(&health.stdout).unwrap();
    assert_eq!(
        report[0]["checks"][0]["check"], "health_check",
        "{report:#}"
    );
    assert_eq!(report[0]["checks"][0]["passed"], false, "{report:#}");
}

/// The vLLM feature serves the model from `vllm_engine_config` as a systemd unit, restarted only
/// when the arguments change; Ollama pulls the configured models. Stand-ins replace vLLM and
/// Ollama (no GPU, no internet): they open the ports, answer the health endpoints and record
/// their arguments.
#[test]
fn model_servers_run_from_their_config_and_restart_only_when_it_changes() {
    let Some(lab) = Lab::new() else { return };
    // Upstream's own 910 (Qwen 2.5 7B AWQ on two GPUs), with the memory share as the test's knob.
    let upstream_910 = common::upstream_head()
        .and_then(|d| std::fs::read(d.join("phoenix_lxc_configs.json")).ok())
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .map(|f| f["lxc_configs"]["910"]["vllm_engine_config"].clone())
        .filter(|v| v.is_object())
        .unwrap_or_else(|| {
            json!({
                "ModelConfig": {"model": "Qwen/Qwen2.5-7B-Instruct-AWQ", "trust_remote_code": true, "max_model_len": 4096},
                "CacheConfig": {"quantization": "awq_marlin", "gpu_memory_utilization": 0.5},
                "ParallelConfig": {"tensor_parallel_size": 2},
                "ServerConfig": {"host": "0.0.0.0", "port": 8000, "served_model_name": "qwen2.5-7b-awq"}
            })
        });
    let engine = |util: f64| {
        let mut e = upstream_910.clone();
        e["CacheConfig"]["gpu_memory_utilization"] = json!(util);
        e
    };
    let write = |util: f64| {
        lab.fleet()
            .template(910, "vllm")
            .features(&["vllm_standin", "vllm"])
            .set("vllm_engine_config", engine(util))
            .template(914, "ollama")
            .features(&["ollama_standin", "ollama"])
            .set(
                "ollama_models",
                json!(["tinyllama:latest", "nomic-embed-text"]),
            )
            .write();
    };
    write(0.5);
    lab.run_json(&["--all"]).all(Outcome::Converged);
    let argv = || {
        let out = lab.attach(910, &["cat", "/run/vllm-standin/argv.json"]);
        serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null)
    };
    let pid = || {
        let out = lab.attach(
            910,
            &[
                "systemctl",
                "show",
                "-p",
                "MainPID",
                "--value",
                "vllm_model_server",
            ],
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let words: Vec<String> = serde_json::from_value(argv()["argv"].clone()).unwrap();
    let has = |w: &[String], pair: &[&str]| w.windows(pair.len()).any(|x| x == pair);
    for pair in [
        &["--model", "Qwen/Qwen2.5-7B-Instruct-AWQ"][..],
        &["--tensor-parallel-size", "2"],
        &["--gpu-memory-utilization", "0.5"],
        &["--quantization", "awq_marlin"],
        &["--served-model-name", "qwen2.5-7b-awq"],
        &["--port", "8000"],
        &["--trust-remote-code"],
    ] {
        assert!(has(&words, pair), "{pair:?} not in {words:?}");
    }
    let models = lab.attach(910, &["curl", "-fsS", "http://127.0.0.1:8000/v1/models"]);
    assert!(String::from_utf8_lossy(&models.stdout).contains("qwen2.5-7b-awq"));
    let tags = lab.attach(914, &["curl", "-fsS", "http://127.0.0.1:11434/api/tags"]);
    let tags = String::from_utf8_lossy(&tags.stdout);
    assert!(
        tags.contains("tinyllama:latest") && tags.contains("nomic-embed-text"),
        "{tags}"
    );

    let first = pid();
    lab.run_json(&["--all"]).all(Outcome::Unchanged);
    assert_eq!(pid(), first, "a no-op run restarts nothing");

    write(0.85);
    lab.run_json(&["--all"]).expect(
        &lab,
        0,
        &[(910, Outcome::Converged), (914, Outcome::Unchanged)],
    );
    let ran = lab::steps_of_last_run(&lab.state(910));
    assert!(ran.contains(&"feature:vllm".to_string()), "{ran:?}");
    assert!(
        !ran.contains(&"feature:vllm_standin".to_string()),
        "{ran:?}"
    );
    assert_ne!(pid(), first, "new arguments restart the server");
    let words: Vec<String> = serde_json::from_value(argv()["argv"].clone()).unwrap();
    assert!(
        has(&words, &["--gpu-memory-utilization", "0.85"]),
        "{words:?}"
    );
}

/// Upstream's own files in a config directory of the test's, with the application scripts they
/// name, and the host files they name supplied, `phoenix plan --all` with `args` and `envs` (in a
/// mount and network namespace of its own).
fn plan_upstream_head(
    head: &std::path::Path,
    args: &[&str],
    envs: &[(&str, std::path::PathBuf)],
) -> (std::process::Output, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir(&config).unwrap();
    for e in std::fs::read_dir(head).unwrap().filter_map(|e| e.ok()) {
        if e.path().is_file() {
            std::fs::copy(e.path(), config.join(e.file_name())).unwrap();
        }
    }
    for s in ["101", "102", "103", "vllm", "955", "957"] {
        let p = config.join(format!("phoenix_hypervisor_lxc_{s}.sh"));
        std::fs::write(p, "#!/bin/bash\necho \"$1\"\n").unwrap();
    }
    // The template's directory needs a mount point; made here when missing, removed after.
    let made_mount_point = !std::path::Path::new("/fastData").exists();
    std::fs::create_dir_all("/fastData").unwrap();
    let supply = r#"set -e
        ip link set lo up
        ip link add vmbr0 type bridge
        mount -t sysfs none /sys
        mount -t tmpfs none /mnt
        mount -t tmpfs none /fastData
        for d in 101/logs 101/ssl 102/certs 103/ssl; do mkdir -p /mnt/pve/quickOS/lxc-persistent-data/$d; done
        mkdir -p /fastData/shared-iso/template/cache
        : > /fastData/shared-iso/template/cache/ubuntu-24.04-standard_24.04-2_amd64.tar.zst
        exec "$@""#;
    let out = std::process::Command::new("unshare")
        .args([
            "--mount",
            "--net",
            "--propagation",
            "private",
            "sh",
            "-c",
            supply,
            "sh",
        ])
        .arg(env!("CARGO_BIN_EXE_phoenix"))
        .arg("--config-dir")
        .arg(&config)
        .args(args)
        .args(["--output", "json", "--state-dir"])
        .arg(dir.path().join("state"))
        .arg("--lxc-path")
        .arg(dir.path().join("lxc"))
        .args(["plan", "--all"])
        .envs(envs.iter().map(|(k, v)| (*k, v.as_os_str())))
        .output()
        .unwrap();
    if made_mount_point {
        let _ = std::fs::remove_dir("/fastData");
    }
    let changes = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (out, changes)
}

fn planned<'a>(changes: &'a [Value], kind: &str) -> Vec<&'a str> {
    changes
        .iter()
        .filter(|c| c["kind"] == kind && c["action"] == "create")
        .map(|c| c["guest"].as_str().unwrap())
        .collect()
}

/// `phoenix plan --all` on upstream's own files, with the host files they name supplied (the
/// application scripts, bind-mount sources, template, bridge `vmbr0`) in a network and mount
/// namespace of the test's own: every container plans; only the VMs are refused (this backend
/// has none).
#[test]
fn upstream_head_plans_every_container() {
    let Some(head) = common::upstream_head() else {
        return;
    };
    if !lab::sshd::is_root() {
        assert!(std::env::var("CI").is_err(), "CI=true needs root");
        return;
    }
    let (out, changes) = plan_upstream_head(&head, &["--backend", "lxc"], &[]);
    // Exit 1: the VMs cannot be planned here; nothing else may be an error.
    assert_eq!(out.status.code(), Some(1), "{}", lab::text(&out));
    let errors: Vec<&Value> = changes.iter().filter(|c| c["action"] == "error").collect();
    assert!(errors.iter().all(|c| c["kind"] == "vm"), "{errors:#?}");
    assert_eq!(
        planned(&changes, "lxc").len(),
        12,
        "every container plans: {changes:#?}"
    );
}

/// The same on a stand-in Proxmox node with the storages upstream's files name
/// (`quickOS-lxc-disks`, a zfspool; `quickOS-vm-disks`, a dir storage for VM disks): all 15
/// guests plan, the VMs among them, without an error.
#[test]
fn upstream_head_plans_all_fifteen_guests_on_a_stand_in_node() {
    let Some(head) = common::upstream_head() else {
        return;
    };
    let Some(lab) = Lab::with_backend(Backend::Proxmox) else {
        return;
    };
    let vm_disks = lab.path("node/vmdisks");
    for args in [
        vec![
            "add",
            "zfspool",
            "quickOS-lxc-disks",
            "--pool",
            "tank/lxc",
            "--content",
            "rootdir,images",
        ],
        vec![
            "add",
            "dir",
            "quickOS-vm-disks",
            "--path",
            vm_disks.to_str().unwrap(),
            "--content",
            "images,iso",
        ],
    ] {
        let out = lab.node_tool("pvesm", &args);
        assert!(out.status.success(), "{}", lab::text(&out));
    }
    let envs = [
        ("PHOENIX_PVE_TOOLS", lab.path("node/bin")),
        ("PHOENIX_PVE_ROOT", lab.path("node")),
    ];
    let (out, changes) = plan_upstream_head(&head, &["--backend", "proxmox"], &envs);
    assert_eq!(out.status.code(), Some(0), "{}", lab::text(&out));
    assert_eq!(planned(&changes, "lxc").len(), 12, "{changes:#?}");
    assert_eq!(
        planned(&changes, "vm"),
        ["9000", "1001", "1002"],
        "{changes:#?}"
    );
}

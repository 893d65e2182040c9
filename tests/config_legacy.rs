//! Every historical shape of the upstream files (UPSTREAM.md §7.3) loads into the current model.

mod common;

use phoenix::config::{GuestId, Severity};
use serde_json::json;

fn ok(dir: &std::path::Path) -> phoenix::config::Fleet {
    let (fleet, diags) = common::load(dir);
    let errors: Vec<_> = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    fleet.unwrap()
}

fn base_ct() -> serde_json::Value {
    json!({"name": "base", "memory_mb": 1024, "cores": 2, "template": "/t.tar.zst",
           "network_config": {"name": "eth0", "bridge": "vmbr0", "ip": "10.254.1.10/24", "gw": "10.254.1.1"},
           "template_snapshot_name": "final-form"})
}

#[test]
fn aug_2025_container_shape() {
    // features as one string, clone_from_template_ctid, flat vllm_* keys, numeric ids, is_template.
    let dir = common::write_dir(&[(
        "phoenix_lxc_configs.json",
        json!({"lxc_configs": {
            "900": base_ct(),
            "950": {"name": "vllm", "memory_mb": 2048, "cores": 4, "clone_from_template_ctid": 900,
                    "network_config": {"name": "eth0", "bridge": "vmbr0", "ip": "10.254.1.50/24", "gw": "10.254.1.1"},
                    "features": "base_setup nvidia", "is_template": false, "static_ip": "10.0.0.50",
                    "vllm_model": "ibm/granite", "vllm_tensor_parallel_size": 2, "vllm_port": 8000,
                    "vllm_parameters": {"x": 1}}
        }}),
    )]);
    let fleet = ok(dir.path());
    let c = &fleet.lxc.containers[&GuestId(950)];
    assert_eq!(c.base.clone_from, Some(GuestId(900)));
    assert_eq!(c.base.features, vec!["base_setup", "nvidia"]);
    let v = c.vllm_engine_config.as_ref().unwrap();
    assert_eq!(v["ModelConfig"]["model"], "ibm/granite");
    assert_eq!(v["ParallelConfig"]["tensor_parallel_size"], 2);
    assert_eq!(v["ServerConfig"]["port"], 8000);
    assert_eq!(v["parameters"]["x"], 1);
}

#[test]
fn sept_2025_hypervisor_with_embedded_vms_and_old_shapes() {
    let dir = common::write_dir(&[
        (
            "phoenix_lxc_configs.json",
            json!({"lxc_configs": {"900": base_ct()}}),
        ),
        (
            "phoenix_hypervisor_config.json",
            json!({
                "$schema": "x", "version": "0.1",
                "network": {"interfaces": {"name": "vmbr0", "dns_nameservers": "8.8.8.8 1.1.1.1"}},
                "zfs": {"arc_max": "32G", "datasets": [{"name": "iso", "pool": "fast", "properties": {"compression": "lz4", "recordsize": "1M"}}]},
                "proxmox_storage_ids": {"fastdata_backup": "fastData-backup", "fastdata_iso": "fastData-iso"},
                "shared_volumes": {"ssl": {"host_path": "/x", "mounts": {"953": "/etc/ssl"}},
                                    "firewall": {"enabled": true, "default_input_policy": "DROP", "global_firewall_rules": []}},
                "vm_defaults": {"template": "ubuntu", "cores": 2, "memory_mb": 2048, "disk_size_gb": 32, "storage_pool": "local-lvm", "network_bridge": "vmbr0"},
                "vms": [{"vmid": "8000", "name": "tmpl", "is_template": true, "template_image": "noble.img",
                         "post_create_scripts": ["a.sh"]},
                        {"vmid": 8001, "name": "vm1", "clone_from_vmid": "8000",
                         "snapshots": {"pre_features": "pre", "post_features": "post"},
                         "network_config": {"ip": "10.254.1.80/24", "gw": "10.254.1.1", "nameservers": ["10.254.1.1"]},
                         "docker_stacks": [{"name": "qdrant_service", "environment": "production"}]}]
            }),
        ),
    ]);
    let fleet = ok(dir.path());
    let h = &fleet.hypervisor;
    assert_eq!(h.dns_nameservers, vec!["8.8.8.8", "1.1.1.1"]);
    assert_eq!(h.setup.zfs.arc_max_gb, Some(32));
    assert_eq!(h.setup.zfs.datasets[0].full_name(), "fast/iso");
    assert_eq!(h.setup.zfs.datasets[0].properties["recordsize"], "1M");
    assert_eq!(h.proxmox_storage_ids["fastdata_iso"], "fastData-iso");
    assert_eq!(
        h.firewall.as_ref().unwrap().default_input_policy.as_deref(),
        Some("DROP")
    );
    assert_eq!(
        fleet.vm.vms.len(),
        2,
        "embedded VMs are routed to the VM model"
    );
    assert_eq!(fleet.vm.defaults.storage_pool.as_deref(), Some("local-lvm"));
    let vm = fleet
        .vm
        .vms
        .iter()
        .find(|v| v.base.id == GuestId(8001))
        .unwrap();
    assert_eq!(vm.snapshots.pre_features.as_deref(), Some("pre"));
    assert_eq!(vm.snapshots.post_features.as_deref(), Some("post"));
    assert_eq!(
        vm.docker_stacks[0].environment.as_deref(),
        Some("production")
    );
    assert_eq!(vm.base.clone_from, Some(GuestId(8000)));
}

#[test]
fn current_shapes_with_strings_properties_and_top_level_firewall() {
    let dir = common::write_dir(&[
        (
            "phoenix_lxc_configs.json",
            json!({"lxc_configs": {"900": base_ct()}}),
        ),
        (
            "phoenix_vm_configs.json",
            json!({"vm_defaults": {}, "vms": [
            {"vmid": 9000, "name": "t", "is_template": true, "template_image": "noble.img",
             "snapshots": {"pre-features": "a", "post-features": "b"}, "docker_stacks": ["portainer_service"]}]}),
        ),
        (
            "phoenix_hypervisor_config.json",
            json!({
                "network": {"interfaces": {"dns_nameservers": ["10.0.0.13", "8.8.8.8"]}},
                "zfs": {"arc_max_gb": 16, "datasets": [{"name": "d", "pool": "p", "properties": "recordsize=128K,compression=lz4"}]},
                "firewall": {"enabled": true, "global_firewall_rules": [{"type": "in", "action": "accept", "proto": "icmp"}]}
            }),
        ),
        (
            "phoenix_stacks_config.json",
            json!({"docker_stacks": {"qdrant_service": {"compose_file_path": "stacks/q/docker-compose.yml",
            "environments": {"production": {"variables": [{"name": "PASSWORD", "value": "s3cret"}], "files": [], "services": {"q": {"traefik_labels": ["a=b"]}}}}}}}),
        ),
    ]);
    let fleet = ok(dir.path());
    assert_eq!(
        fleet.hypervisor.setup.zfs.datasets[0].properties["compression"],
        "lz4"
    );
    assert_eq!(
        fleet.hypervisor.firewall.as_ref().unwrap().found_at,
        "/firewall"
    );
    assert_eq!(
        fleet.hypervisor.firewall.as_ref().unwrap().rules[0].action,
        "ACCEPT"
    );
    assert_eq!(fleet.vm.vms[0].snapshots.pre_features.as_deref(), Some("a"));
    let json = serde_json::to_string(&fleet.stacks).unwrap();
    assert!(
        !json.contains("s3cret"),
        "stack variable values are secrets: {json}"
    );
}

#[test]
fn unknown_keys_are_warnings_not_errors() {
    let mut ct = base_ct();
    ct["colour"] = json!("blue");
    let dir = common::write_dir(&[(
        "phoenix_lxc_configs.json",
        json!({"lxc_configs": {"900": ct}, "extra_root": 1}),
    )]);
    let (_, diags) = common::load(dir.path());
    assert!(
        diags.iter().all(|d| d.severity == Severity::Warning),
        "{diags:#?}"
    );
    assert!(diags
        .iter()
        .any(|d| d.pointer == "/lxc_configs/900/colour" && d.message.contains("unknown key")));
    assert!(diags.iter().any(|d| d.pointer == "/extra_root"));
}

#[test]
fn core_paths_are_honoured_when_they_exist() {
    let elsewhere = common::write_dir(&[(
        "containers.json",
        json!({"lxc_configs": {"900": base_ct()}}),
    )]);
    let lxc = elsewhere.path().join("containers.json");
    let dir = common::write_dir(&[(
        "phoenix_hypervisor_config.json",
        json!({"core_paths": {"lxc_config_file": lxc.to_str().unwrap(), "vm_config_file": "/nonexistent/vms.json"}}),
    )]);
    let fleet = ok(dir.path());
    assert_eq!(fleet.sources.lxc.as_deref(), Some(lxc.as_path()));
    assert!(fleet.lxc.containers.contains_key(&GuestId(900)));
}

#[test]
fn single_file_validation_turns_cross_file_references_into_warnings() {
    let dir = common::write_dir(&[(
        "phoenix_lxc_configs.json",
        json!({"lxc_configs": {"900": base_ct(), "950": {"name": "a", "memory_mb": 512, "cores": 1, "clone_from_ctid": "900",
            "network_config": {"bridge": "vmbr0", "ip": "dhcp"}, "dependencies": ["1002"]}}}),
    )]);
    let out = assert_cmd::Command::cargo_bin("phoenix")
        .unwrap()
        .arg("validate")
        .arg(dir.path().join("phoenix_lxc_configs.json"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: "));
    assert!(String::from_utf8_lossy(&out.stderr).contains("dependency 1002 does not exist"));
    // The same reference in a whole directory is an error.
    let out = assert_cmd::Command::cargo_bin("phoenix")
        .unwrap()
        .args(["validate", "--config-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Shapes of files that worked upstream, loaded with a warning that says what to change:
/// Proxmox container features among `features` (before feature scripts existed), `qm_options`
/// entries holding several words, embedded VMs without a `vmid` (never buildable; left out),
/// and one static address on two guests.
#[test]
fn shapes_that_worked_upstream_load_with_a_warning() {
    let mut ct = base_ct();
    ct["features"] = json!(["nesting=1,keyctl=1", "base_setup"]);
    let mut twin = base_ct();
    twin["name"] = json!("twin");
    twin["clone_from_ctid"] = json!("900");
    let dir = common::write_dir(&[
        (
            "phoenix_lxc_configs.json",
            json!({"lxc_configs": {"900": ct, "901": twin}}),
        ),
        (
            "phoenix_vm_configs.json",
            json!({"vm_defaults": {}, "vms": [{"vmid": 9000, "name": "tmpl", "is_template": true,
                "template_image": "noble.img", "qm_options": ["--vga qxl", "--balloon", "0"]}]}),
        ),
        (
            "phoenix_hypervisor_config.json",
            json!({"vms": [{"name": "webserver-vm", "cores": 4, "memory_mb": 8192}]}),
        ),
    ]);
    let (fleet, diags) = common::load(dir.path());
    let errors: Vec<_> = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let fleet = fleet.unwrap();
    let c = &fleet.lxc.containers[&GuestId(900)];
    assert_eq!(c.base.features, ["base_setup"]);
    assert_eq!(c.pct_options, ["nesting=1", "keyctl=1"]);
    let vm = fleet
        .vm
        .vms
        .iter()
        .find(|v| v.base.id == GuestId(9000))
        .expect("vm 9000");
    assert_eq!(vm.qm_options, ["--vga", "qxl", "--balloon", "0"]);
    assert!(
        fleet.hypervisor.embedded_vms.is_empty(),
        "the VM without vmid is left out"
    );
    let warned = |words: &str| {
        diags
            .iter()
            .any(|d| d.severity == Severity::Warning && d.message.contains(words))
    };
    for words in [
        "is Proxmox container features",
        "holds 2 words",
        "has no `vmid`",
        "is also given to 900",
    ] {
        assert!(warned(words), "no warning {words:?} in {diags:#?}");
    }
}

/// Every version of the upstream files in their history loads on its own (warnings allowed).
#[test]
fn every_historical_upstream_file_loads() {
    let Some(head) = common::upstream_head() else {
        return;
    };
    let history = head.parent().unwrap().join("upstream-history");
    let mut count = 0;
    let mut failures = Vec::new();
    for dir in std::fs::read_dir(&history)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
    {
        for file in std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
        {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_phoenix"))
                .args([
                    "validate",
                    "--kind",
                    kind_of(&dir.file_name().to_string_lossy()),
                ])
                .arg(file.path())
                .output()
                .unwrap();
            count += 1;
            if !out.status.success() {
                failures.push(format!(
                    "{}: {}",
                    file.path().display(),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    assert_eq!(count, 194, "the corpus holds 194 files");
    assert!(
        failures.is_empty(),
        "{} of 194 refused:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn kind_of(dir: &str) -> &'static str {
    match dir {
        "phoenix_lxc_configs" => "lxc",
        "phoenix_vm_configs" => "vm",
        "phoenix_stacks_config" => "stacks",
        _ => "hypervisor",
    }
}

/// The legacy corpus: one fixture per older shape Phoenix accepts (`fixtures/legacy/`). Each
/// loads (exit 0), warns at its pointer, and `validate --explain` prints its modern form.
#[test]
fn each_legacy_shape_loads_and_explains_its_modern_form() {
    let dir = common::repo().join("fixtures/legacy");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures/legacy")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 8, "{} legacy fixtures", cases.len());
    for case in cases {
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&case).unwrap()).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        for (name, value) in doc["files"].as_object().unwrap() {
            std::fs::write(
                tmp.path().join(name),
                serde_json::to_vec_pretty(value).unwrap(),
            )
            .unwrap();
        }
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_phoenix"))
            .args(["validate", "--explain", "--config-dir"])
            .arg(tmp.path())
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        let want = &doc["expect"];
        let s = |k: &str| want[k].as_str().unwrap_or_default().to_string();
        assert!(
            out.status.success(),
            "{}: refused:\n{stderr}",
            case.display()
        );
        let Some(modern) = want["modern"].as_str() else {
            // Not a shape, and no modern form: a warning at the pointer says what to change.
            let at = format!("{}: {}: ", s("file"), s("pointer"));
            assert!(
                stderr
                    .lines()
                    .any(|l| l.contains(&at) && l.contains(&s("message"))),
                "{}: no warning at {at:?}:\n{stderr}",
                case.display()
            );
            continue;
        };
        let located = format!("{}: {}\n  was:    ", s("file"), s("pointer"));
        assert!(
            stdout.contains(&located) && stdout.contains(&s("message")),
            "{}: no explanation at {located:?}:\n{stdout}",
            case.display()
        );
        assert!(
            stdout.contains(&format!("  modern: {modern}")),
            "{}: modern form {modern:?} missing:\n{stdout}",
            case.display(),
        );
    }
}

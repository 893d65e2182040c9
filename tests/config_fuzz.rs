//! No input makes the loader panic: random bytes, random JSON, and mutations of real files.

mod common;

use phoenix::config::{Diagnostics, Fleet};
use proptest::prelude::*;
use serde_json::Value;

fn load_bytes(name: &str, bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), bytes).unwrap();
    let diag = Diagnostics::new();
    if let Ok(fleet) = Fleet::load_dir(dir.path(), &diag) {
        phoenix::ops::load::check(&fleet, &diag);
        let graph = phoenix::graph::Graph::build(&fleet);
        let _ = graph.order(&[]);
        let _ = graph.cycles();
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[0-9]{1,12}".prop_map(Value::String),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop_oneof![
            Just("name".to_string()),
            Just("memory_mb".to_string()),
            Just("cores".to_string()),
            Just("clone_from_ctid".to_string()),
            Just("dependencies".to_string()),
            Just("network_config".to_string()),
            Just("ip".to_string()),
            Just("gw".to_string()),
            Just("features".to_string()),
            Just("firewall".to_string()),
            Just("rules".to_string()),
            Just("950".to_string()),
            Just("951".to_string()),
            Just("template".to_string()),
            "[a-z_]{1,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        load_bytes("phoenix_lxc_configs.json", &bytes);
    }

    #[test]
    fn random_containers_never_panic(cts in prop::collection::btree_map("[0-9]{1,4}|x", json_value(), 0..4)) {
        let doc = serde_json::json!({"lxc_configs": cts});
        load_bytes("phoenix_lxc_configs.json", &serde_json::to_vec(&doc).unwrap());
    }

    #[test]
    fn random_vm_files_never_panic(vms in prop::collection::vec(json_value(), 0..4)) {
        let doc = serde_json::json!({"vm_defaults": {}, "vms": vms});
        load_bytes("phoenix_vm_configs.json", &serde_json::to_vec(&doc).unwrap());
    }
}

#[test]
fn deep_nesting_and_huge_numbers_do_not_panic() {
    load_bytes("phoenix_lxc_configs.json", "[".repeat(100_000).as_bytes());
    load_bytes(
        "phoenix_lxc_configs.json",
        br#"{"lxc_configs": {"950": {"memory_mb": 1e400, "cores": -99999999999999999999999}}}"#,
    );
}

#[test]
fn a_hundred_megabyte_file_is_handled() {
    // 100 MB of valid JSON: a string that long is read, the container rejected with a message.
    let mut doc = String::from(r#"{"lxc_configs": {"950": {"name": ""#);
    doc.push_str(&"a".repeat(100 * 1024 * 1024));
    doc.push_str(r#""}}}"#);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("phoenix_lxc_configs.json"), doc).unwrap();
    let diag = Diagnostics::new();
    let fleet = Fleet::load_dir(dir.path(), &diag).unwrap();
    phoenix::ops::load::check(&fleet, &diag);
    assert!(diag.has_errors());
}

//! The upstream project's current real files (read from ../shared, never copied) load without
//! errors, and every guest comes after its prerequisites in the build order.

mod common;

use phoenix::config::{GuestId, Severity};
use phoenix::graph::Graph;

#[test]
fn upstream_head_validates_and_orders() {
    let Some(dir) = common::upstream_head() else {
        eprintln!("SKIP: ../shared/fixtures/upstream-head is not present");
        return;
    };
    let (fleet, diags) = common::load(&dir);
    let fleet = fleet.unwrap();
    let errors: Vec<_> = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    assert!(
        errors.is_empty(),
        "upstream HEAD must load without errors: {errors:#?}"
    );
    // HEAD carries no unknown keys at all: every field is modelled or knowingly ignored.
    assert!(
        !diags.iter().any(|d| d.message.contains("unknown key")),
        "{diags:#?}"
    );
    assert_eq!(fleet.lxc.containers.len(), 12);
    assert_eq!(fleet.vm.vms.len(), 3);

    let graph = Graph::build(&fleet);
    let order = graph.order(&[]).unwrap();
    let pos = |id: GuestId| order.iter().position(|x| *x == id).unwrap();
    for id in &order {
        for (p, _) in graph.prerequisites(*id) {
            assert!(pos(*p) < pos(*id), "{p} must come before {id}");
        }
    }
    // Exactly the order the upstream tool computes for LetsGo (UPSTREAM.md §1.5).
    let text: Vec<String> = order.iter().map(|i| i.to_string()).collect();
    assert_eq!(
        text.join(" "),
        "900 103 101 102 9000 1001 1002 901 911 801 802 910 912 914 917"
    );
    // The closure of one target: 801 needs 911 -> 901 -> 900, and 1002 with its chain.
    let sub: Vec<String> = graph
        .order(&[GuestId(801)])
        .unwrap()
        .iter()
        .map(|i| i.to_string())
        .collect();
    assert_eq!(sub.join(" "), "900 9000 103 102 1001 1002 901 911 801");
}

#[test]
fn upstream_head_quirks_are_read_as_upstream_meant() {
    let Some(dir) = common::upstream_head() else {
        return;
    };
    let (fleet, _) = common::load(&dir);
    let fleet = fleet.unwrap();
    let ct = |id| &fleet.lxc.containers[&GuestId(id)];
    // "0, 1" with a space.
    assert_eq!(ct(901).gpus, vec![0, 1]);
    // Root-level nvidia_* fallback, made explicit per container.
    assert_eq!(ct(901).nvidia.driver_version.as_deref(), Some("580.76.05"));
    // String ids.
    assert_eq!(ct(901).base.clone_from, Some(GuestId(900)));
    assert_eq!(ct(801).base.dependencies, vec![GuestId(1002)]);
    // Host firewall nested under shared_volumes at HEAD.
    let fw = fleet.hypervisor.firewall.as_ref().unwrap();
    assert_eq!(fw.found_at, "/shared_volumes/firewall");
    // The Portainer password is a secret: never printed.
    let pw = fleet
        .hypervisor
        .portainer_api
        .admin_password
        .as_ref()
        .unwrap();
    assert_eq!(format!("{pw:?}"), "<redacted>");
    // docker_stacks as strings.
    assert_eq!(fleet.vm.vms[1].docker_stacks[0].name, "portainer_service");
    // Stack manifests from stacks/*/phoenix.json.
    assert_eq!(fleet.stack_manifests.len(), 3);
}

//! What every guest has, container or VM: identity, where it comes from, what it needs, how it
//! boots. Decoded once for both files.

use super::common::{self, Firewall, TraefikService};
use super::decode::{Node, Obj};
use super::values::{GuestId, Token};
use serde::Serialize;

/// The fields a container and a VM share. Decoding keeps a guest's shape (its id, name, clone
/// source and dependencies) even when another of its fields is wrong, so that the graph, clone
/// checks and cycle checks still see it; the wrong field is reported where it stands.
#[derive(Debug, Clone, Serialize)]
pub struct GuestBase {
    pub id: GuestId,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clone_from: Option<GuestId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_snapshot_name: Option<String>,
    pub is_template: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_pool: Option<String>,
    pub features: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firewall: Option<Firewall>,
    pub dependencies: Vec<GuestId>,
    pub start_at_boot: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_order: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_delay: Option<u64>,
    pub trigger_sync_on_completion: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traefik_service: Option<TraefikService>,
}

/// How the shared fields are spelled in one file.
pub struct Spelling {
    /// `container` or `VM`, for messages.
    pub what: &'static str,
    /// The clone-source key and its legacy aliases.
    pub clone_key: &'static str,
    pub clone_aliases: &'static [&'static str],
}

pub const CONTAINER: Spelling = Spelling {
    what: "container",
    clone_key: "clone_from_ctid",
    clone_aliases: &["clone_from_template_ctid"],
};

pub const VM: Spelling = Spelling {
    what: "VM",
    clone_key: "clone_from_vmid",
    clone_aliases: &[],
};

/// A guest's name: its hostname, which the kernel holds in 64 bytes and DNS in one label of 63.
fn hostname(n: Node<'_>) -> Option<String> {
    let name = n.token(Token::Hostname)?;
    if name.len() > 63 {
        n.error(
            format!(
                "the name is {} characters; a hostname has at most 63",
                name.len()
            ),
            Some("shorten it: a guest's name is its hostname".into()),
        );
        return None;
    }
    Some(name)
}

/// Decodes the shared fields of guest `id` from `o` (reporting what is wrong at `node`).
pub fn base(id: GuestId, o: &Obj<'_>, node: Node<'_>, spelling: &Spelling) -> GuestBase {
    let name = o
        .req("name", "the guest's hostname")
        .and_then(|v| hostname(v.node()));
    let clone_from = o
        .get_alias(spelling.clone_key, spelling.clone_aliases)
        .and_then(|v| v.node().guest_id());
    if clone_from == Some(id) {
        node.error(
            format!("{} {id} clones itself", spelling.what),
            Some(format!("{} names the parent template", spelling.clone_key)),
        );
    }
    let name_token = |key: &'static str| o.get(key).and_then(|v| v.node().token(Token::Name));
    GuestBase {
        id,
        // A wrong name is reported; the guest keeps its place in the fleet under its id.
        name: name.unwrap_or_else(|| id.to_string()),
        clone_from,
        template_snapshot_name: name_token("template_snapshot_name"),
        is_template: o.opt_bool("is_template").unwrap_or(false),
        storage_pool: name_token("storage_pool"),
        features: common::features(o),
        firewall: o.get("firewall").and_then(|v| common::firewall(v.node())),
        dependencies: common::dependencies(o),
        start_at_boot: o.opt_bool("start_at_boot").unwrap_or(false),
        boot_order: o.opt_uint("boot_order", 0, 100_000),
        boot_delay: o.opt_uint("boot_delay", 0, 86_400),
        trigger_sync_on_completion: o.opt_bool("trigger_sync_on_completion").unwrap_or(false),
        traefik_service: o
            .get("traefik_service")
            .and_then(|v| common::traefik_service(v.node())),
    }
}

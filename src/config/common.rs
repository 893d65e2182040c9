//! Shapes shared by the container and VM files: firewall rules, traefik services, health checks.

use super::decode::{Node, Obj};
use super::values::Token;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FirewallRule {
    #[serde(rename = "type")]
    pub direction: Direction,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proto: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iface: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Firewall {
    pub enabled: bool,
    pub rules: Vec<FirewallRule>,
}

pub fn firewall_rule(n: Node<'_>) -> Option<FirewallRule> {
    let o = n.object()?;
    let direction = o.req("type", "\"in\" or \"out\"").and_then(|v| {
        let node = v.node();
        match node.str()?.to_ascii_lowercase().as_str() {
            "in" => Some(Direction::In),
            "out" => Some(Direction::Out),
            other => {
                node.error(
                    format!("rule type {other:?} is not \"in\" or \"out\""),
                    None,
                );
                None
            }
        }
    });
    let action = o.req("action", "ACCEPT, DROP or REJECT").and_then(|v| {
        let node = v.node();
        let a = node.str()?.to_ascii_uppercase();
        if ["ACCEPT", "DROP", "REJECT"].contains(&a.as_str()) {
            Some(a)
        } else {
            node.error(format!("action {a:?} is not ACCEPT, DROP or REJECT"), None);
            None
        }
    });
    let proto = o.get("proto").and_then(|v| {
        let node = v.node();
        let p = node.str()?.to_ascii_lowercase();
        if ["tcp", "udp", "icmp", "icmpv6", "gre", "esp", "ah", "sctp"].contains(&p.as_str()) {
            Some(p)
        } else {
            node.error(
                format!("protocol {p:?} is not one of tcp, udp, icmp, icmpv6, gre, esp, ah, sctp"),
                None,
            );
            None
        }
    });
    let addr = |key: &'static str| o.get(key).and_then(|v| v.node().token(Token::Options));
    let source = addr("source");
    let dest = addr("dest");
    let port = o.get("port").and_then(|v| {
        let node = v.node();
        let text = match node.value {
            serde_json::Value::Number(num) => num.to_string(),
            _ => node.str()?.to_string(),
        };
        let ok = !text.is_empty()
            && text.split(',').all(|p| {
                p.split(':').all(|n| n.trim().parse::<u16>().is_ok_and(|n| n > 0))
            });
        if ok {
            Some(text)
        } else {
            node.error(format!("port {text:?} is not a port, list or range (e.g. \"22\", \"80,443\", \"8000:8100\")"), None);
            None
        }
    });
    let iface = o.get("iface").and_then(|v| v.node().token(Token::Name));
    let comment = o.opt_str("comment");
    o.finish();
    Some(FirewallRule {
        direction: direction?,
        action: action?,
        proto,
        source,
        dest,
        port,
        iface,
        comment,
    })
}

pub fn firewall(n: Node<'_>) -> Option<Firewall> {
    let o = n.object()?;
    let enabled = o
        .req("enabled", "true or false")
        .and_then(|v| v.node().bool())
        .unwrap_or(false);
    let rules = o
        .get("rules")
        .and_then(|v| v.node().list(firewall_rule))
        .unwrap_or_default();
    o.finish();
    Some(Firewall { enabled, rules })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraefikService {
    pub name: String,
    pub port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
}

pub fn traefik_service(n: Node<'_>) -> Option<TraefikService> {
    let o = n.object()?;
    let name = o
        .req("name", "the service name")
        .and_then(|v| v.node().token(Token::Hostname));
    let port = o
        .req("port", "the port the service listens on")
        .and_then(|v| v.node().uint(1, 65535));
    let scheme = o.opt_str("scheme");
    o.finish();
    Some(TraefikService {
        name: name?,
        port: port? as u16,
        scheme,
    })
}

/// A command run inside the guest until it succeeds: `health_check {command, retries, interval}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuestHealthCheck {
    pub command: String,
    pub retries: u32,
    pub interval_s: u32,
}

pub fn guest_health_check(n: Node<'_>) -> Option<GuestHealthCheck> {
    let o = n.object()?;
    let command = o
        .req("command", "a shell command run inside the guest")
        .and_then(|v| {
            let node = v.node();
            let c = node.nonempty_str()?;
            if c.contains('\n') || c.contains('\0') {
                node.error("must be one line", None);
                return None;
            }
            Some(c.to_string())
        });
    let retries = o.opt_uint("retries", 0, 1000).unwrap_or(3) as u32;
    let interval_s = o.opt_uint("interval", 0, 3600).unwrap_or(5) as u32;
    o.finish();
    Some(GuestHealthCheck {
        command: command?,
        retries,
        interval_s,
    })
}

/// A host-side check: `health_checks [{name, script, args}]`, run on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostCheck {
    pub name: String,
    pub script: String,
    pub args: Vec<String>,
}

pub fn host_check(n: Node<'_>) -> Option<HostCheck> {
    let o = n.object()?;
    let name = o
        .req("name", "a label for the check")
        .and_then(|v| v.node().nonempty_str().map(String::from));
    let script = o
        .req(
            "script",
            "a script path, relative to the config dir or absolute",
        )
        .and_then(|v| v.node().token(super::values::Token::Path));
    let args = o
        .get("args")
        .and_then(|v| v.node().str_or_list())
        .unwrap_or_default();
    o.finish();
    Some(HostCheck {
        name: name?,
        script: script?,
        args,
    })
}

/// Proxmox's container features (pve-container `$features_desc`).
const PCT_FEATURES: &[&str] = &[
    "nesting",
    "keyctl",
    "fuse",
    "mknod",
    "mount",
    "force_rw_sys",
];

/// Whether a `features` entry is Proxmox container features (`nesting=1,keyctl=1`), as files from
/// before feature scripts (Aug 2025) wrote them there.
fn is_pct_features(entry: &str) -> bool {
    entry.split(',').all(|kv| {
        kv.split_once('=')
            .is_some_and(|(k, v)| PCT_FEATURES.contains(&k) && !v.is_empty())
    })
}

/// The Proxmox container features written among `features` (see [`features`]), one per entry
/// (`nesting=1`), for `pct_options`.
pub fn pct_features_in_features(o: &Obj<'_>) -> Vec<String> {
    let Some(v) = o.get("features") else {
        return Vec::new();
    };
    let entries = match v.node().value {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|e| e.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    };
    entries
        .iter()
        .filter(|e| is_pct_features(e))
        .flat_map(|e| e.split(',').map(String::from))
        .collect()
}

/// Reads `features`: an array of names, or (Aug 2025 files) one string. Proxmox container
/// features written there (`nesting=1`) are not feature scripts: they are left out, with a
/// warning, and containers apply them as `pct_options`.
pub fn features(o: &Obj<'_>) -> Vec<String> {
    let Some(v) = o.get("features") else {
        return Vec::new();
    };
    let node = v.node();
    let names = match node.value {
        serde_json::Value::String(_) => {
            let names = node.str_or_list();
            let list = names.clone().unwrap_or_default();
            node.legacy(
                "`features` as one string is an Aug 2025 shape",
                format!("\"features\": {}", serde_json::json!(list)),
            );
            names
        }
        _ => node.list(|n| {
            let s = n.nonempty_str()?;
            match is_pct_features(s) {
                true => Some(s.to_string()),
                false => n.token(Token::Name),
            }
        }),
    };
    let (pct, names): (Vec<String>, Vec<String>) = names
        .unwrap_or_default()
        .into_iter()
        .partition(|f| is_pct_features(f));
    for f in &pct {
        let options: Vec<&str> = f.split(',').collect();
        node.legacy(
            format!("{f:?} is Proxmox container features, not a feature script (a shape from before feature scripts): containers apply it as pct_options"),
            format!("\"pct_options\": {}", serde_json::json!(options)),
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, f) in names.iter().enumerate() {
        if super::values::check_token(f, Token::Name).is_err() {
            node.error(
                format!("feature name {f:?} may only hold letters, digits, `_`, `.` and `-`"),
                None,
            );
        } else if !seen.insert(f.clone()) {
            let at = node.child(&i.to_string(), node.value);
            at.node().error(
                format!("feature {f:?} is listed twice"),
                Some("each feature runs once".into()),
            );
        }
    }
    names
}

/// Reads `dependencies`: ids as strings or numbers.
pub fn dependencies(o: &Obj<'_>) -> Vec<super::values::GuestId> {
    o.get("dependencies")
        .and_then(|v| v.node().list(|n| n.guest_id()))
        .unwrap_or_default()
}

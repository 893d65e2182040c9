//! `phoenix_stacks_config.json` and the per-stack manifests `stacks/<name>/phoenix.json`.

use super::common::{self, FirewallRule};
use super::decode::Node;
use super::values::{Secret, Token};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct StackVariable {
    pub name: String,
    /// Stack variables hold passwords in real files: kept as a secret.
    pub value: Secret,
}

#[derive(Debug, Clone, Serialize)]
pub struct StackFile {
    pub source: String,
    pub destination_in_container: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StackEnvironment {
    pub variables: Vec<StackVariable>,
    pub files: Vec<StackFile>,
    pub traefik_labels: BTreeMap<String, Vec<String>>,
    pub firewall_rules: Vec<FirewallRule>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Stack {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compose_file_path: Option<String>,
    pub environments: BTreeMap<String, StackEnvironment>,
}

/// `phoenix_stacks_config.json`: `{docker_stacks: {name: {...}}}`.
pub fn decode_catalogue(root: Node<'_>) -> Vec<Stack> {
    let Some(o) = root.object() else {
        return Vec::new();
    };
    o.mark("$schema");
    let mut out = Vec::new();
    match o.get("docker_stacks") {
        Some(v) => {
            if let Some(stacks) = v.node().object() {
                for (name, value) in stacks.map() {
                    let at = stacks.node.child(name, value);
                    if let Some(s) = stack(name, at.node(), true) {
                        out.push(s);
                    }
                }
            }
        }
        None => root.error(
            "missing required field `docker_stacks`",
            Some("an object keyed by stack name".into()),
        ),
    }
    o.finish();
    out
}

/// One stack: an entry of the catalogue, or a whole `stacks/<name>/phoenix.json`.
pub fn stack(name: &str, n: Node<'_>, in_catalogue: bool) -> Option<Stack> {
    if super::values::check_token(name, Token::Name).is_err() {
        n.error(
            format!("stack name {name:?} may only hold letters, digits, `_`, `.` and `-`"),
            None,
        );
    }
    let o = n.object()?;
    o.mark("name");
    o.mark("nginx_proxy");
    let description = o.opt_str("description");
    let compose_file_path = if in_catalogue {
        o.req(
            "compose_file_path",
            "the compose file, relative to the install root",
        )
        .and_then(|v| v.node().token(Token::Path))
    } else {
        None
    };
    let mut environments = BTreeMap::new();
    if let Some(v) = o.get("environments") {
        if let Some(envs) = v.node().object() {
            for (env, value) in envs.map() {
                let at = envs.node.child(env, value);
                if let Some(e) = environment(at.node()) {
                    environments.insert(env.clone(), e);
                }
            }
        }
    }
    o.finish();
    Some(Stack {
        name: name.to_string(),
        description,
        compose_file_path,
        environments,
    })
}

fn environment(n: Node<'_>) -> Option<StackEnvironment> {
    let o = n.object()?;
    let variables = o
        .get("variables")
        .and_then(|v| {
            v.node().list(|n| {
                let vo = n.object()?;
                let name = vo
                    .req("name", "the variable name")
                    .and_then(|v| v.node().token(Token::Name));
                let value = vo.get("value").map(|v| match v.value {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
                vo.finish();
                Some(StackVariable {
                    name: name?,
                    value: Secret::new(value.unwrap_or_default()),
                })
            })
        })
        .unwrap_or_default();
    let files = o
        .get("files")
        .and_then(|v| {
            v.node().list(|n| {
                let fo = n.object()?;
                let source = fo
                    .req("source", "a file path")
                    .and_then(|v| v.node().token(Token::Path));
                let dest = fo
                    .req(
                        "destination_in_container",
                        "where the file appears in the container",
                    )
                    .and_then(|v| v.node().token(Token::Path));
                fo.finish();
                Some(StackFile {
                    source: source?,
                    destination_in_container: dest?,
                })
            })
        })
        .unwrap_or_default();
    let mut traefik_labels = BTreeMap::new();
    if let Some(v) = o.get("services") {
        if let Some(services) = v.node().object() {
            for (svc, value) in services.map() {
                let at = services.node.child(svc, value);
                if let Some(so) = at.node().object() {
                    let labels = so.str_list("traefik_labels");
                    so.finish();
                    traefik_labels.insert(svc.clone(), labels);
                }
            }
        }
    }
    let firewall_rules = o
        .get("firewall_rules")
        .and_then(|v| v.node().list(common::firewall_rule))
        .unwrap_or_default();
    o.finish();
    Some(StackEnvironment {
        variables,
        files,
        traefik_labels,
        firewall_rules,
    })
}

//! The node's system sections that `phoenix setup` converges: apt (`apt`), the management
//! interface (`network.interfaces`), the NVIDIA driver (`nvidia_driver`), AppArmor tunables
//! (`apparmor`) and certificate renewal (`certificate_renewal`).

use super::decode::Node;
use super::values::Token;
use serde::Serialize;
use std::collections::BTreeMap;

/// `apt`: deb822 sources of Phoenix's own, sources to switch off, packages to install.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Apt {
    pub sources: Vec<AptSource>,
    /// Names of `/etc/apt/sources.list.d/<name>.sources` to disable (`Enabled: no`), like
    /// `pve-enterprise`.
    pub disable: Vec<String>,
    pub packages: Vec<String>,
}

/// One source, written as `/etc/apt/sources.list.d/phoenix-<name>.sources`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AptSource {
    pub name: String,
    /// deb822 fields in their order: Types, URIs, Suites, Components, Signed-By, Trusted.
    pub fields: Vec<(String, String)>,
}

/// `network.interfaces`: the node's management interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interface {
    pub name: String,
    /// CIDR, like 10.0.0.13/24.
    pub address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// `bridge_ports` (a bridge `vmbrN` keeps the ports it has when this is absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bridge_ports: Option<String>,
    pub dns_nameservers: Vec<String>,
}

/// `nvidia_driver`: the host driver from NVIDIA's runfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NvidiaDriver {
    pub version: String,
    /// `https://...`, `file:///...`, or a path on the node.
    pub runfile_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runfile_sha256: Option<String>,
}

/// `certificate_renewal`: a script of `<config-dir>/host/` run by a systemd timer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertRenewal {
    pub script: String,
    /// systemd's `OnCalendar=` (`hourly` by default, as upstream's cron line).
    pub on_calendar: String,
}

pub fn apt(n: Node<'_>) -> Option<Apt> {
    let o = n.object()?;
    let names = |k: &'static str| {
        o.get(k)
            .and_then(|v| v.node().list(|i| i.token(Token::Name)))
            .unwrap_or_default()
    };
    let apt = Apt {
        sources: o
            .get("sources")
            .and_then(|v| v.node().list(source))
            .unwrap_or_default(),
        disable: names("disable"),
        packages: names("packages"),
    };
    o.finish();
    Some(apt)
}

fn source(n: Node<'_>) -> Option<AptSource> {
    let o = n.object()?;
    let name = o
        .req("name", "a name for its file, like nodesource")
        .and_then(|v| v.node().token(Token::Name))?;
    let words = |k: &'static str| -> Option<String> {
        let v = o.get(k)?;
        let node = v.node();
        let list = node.str_or_list()?;
        if list.iter().any(|w| {
            w.is_empty() || w.contains(char::is_whitespace) || w.contains(char::is_control)
        }) {
            node.error("expected words without spaces", None);
            return None;
        }
        Some(list.join(" "))
    };
    let mut fields = vec![(
        "Types".to_string(),
        words("types").unwrap_or_else(|| "deb".into()),
    )];
    for (key, field) in [
        ("uris", "URIs"),
        ("suites", "Suites"),
        ("components", "Components"),
    ] {
        if let Some(v) = words(key) {
            fields.push((field.into(), v));
        }
    }
    if let Some(p) = o
        .get("signed_by")
        .and_then(|v| super::lxc::abs_path(v.node()))
    {
        fields.push(("Signed-By".into(), p));
    }
    if o.opt_bool("trusted") == Some(true) {
        fields.push(("Trusted".into(), "yes".into()));
    }
    o.finish();
    for need in ["URIs", "Suites"] {
        if !fields.iter().any(|(k, _)| k == need) {
            n.error(format!("a source needs `{}`", need.to_lowercase()), None);
            return None;
        }
    }
    Some(AptSource { name, fields })
}

pub fn nvidia(n: Node<'_>) -> Option<NvidiaDriver> {
    let o = n.object()?;
    let install = o.opt_bool("install").unwrap_or(false);
    let version = o.get("version").and_then(|v| v.node().token(Token::Name));
    let url = o
        .get("runfile_url")
        .and_then(|v| v.node().token(Token::Options));
    let sha = o.get("runfile_sha256").and_then(|v| {
        let node = v.node();
        let s = node.str()?;
        let hex = s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit());
        hex.then(|| s.to_lowercase())
            .or_else(|| bad(node, "64 hex digits"))
    });
    for k in ["cuda_version", "install_vllm_libs"] {
        o.mark(k);
    }
    o.finish();
    if !install {
        return None;
    }
    match (version, url) {
        (Some(version), Some(runfile_url)) => Some(NvidiaDriver {
            version,
            runfile_url,
            runfile_sha256: sha,
        }),
        _ => bad(n, "`version` and `runfile_url` when `install` is true"),
    }
}

/// `apparmor.tunables`: `{"home": ["@{HOMEDIRS}+=/srv/home/"]}`.
pub fn apparmor(n: Node<'_>) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let Some(o) = n.object() else { return out };
    if let Some(v) = o.get("tunables") {
        if let Some(t) = v.node().object() {
            for (name, lines) in t.map() {
                let at = t.node.child(name, lines);
                let node = at.node();
                if super::values::check_token(name, Token::Name).is_err() {
                    node.error(format!("{name:?} is not a tunables file name"), None);
                    continue;
                }
                let list = node
                    .list(|l| l.token(Token::ConfigLine))
                    .unwrap_or_default();
                out.insert(name.clone(), list);
            }
        }
    }
    o.finish();
    out
}

pub fn cert_renewal(n: Node<'_>) -> Option<CertRenewal> {
    let o = n.object()?;
    let script = o
        .req(
            "script",
            "the name of a script in <config-dir>/host/ (without .sh)",
        )
        .and_then(|v| v.node().token(Token::Name));
    let on_calendar = o
        .get("on_calendar")
        .and_then(|v| v.node().token(Token::ConfigLine))
        .unwrap_or_else(|| "hourly".into());
    o.finish();
    Some(CertRenewal {
        script: script?,
        on_calendar,
    })
}

fn bad<T>(n: Node<'_>, what: &str) -> Option<T> {
    n.error(format!("expected {what}"), None);
    None
}

//! What `phoenix setup` converges on the node, read from the hypervisor file: the time zone, the
//! host name (`network.hostname`), the admin users (`users`, one object as upstream wrote it or a
//! list), and the NFS exports (`nfs.exports`). The host firewall is [`super::hypervisor::HostFirewall`].

use super::decode::{Node, Obj};
use super::secret::SecretRef;
use super::values::{check_token, Token};
use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct HostSetup {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The node's management address (`network.interfaces.address`, without its prefix).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    pub users: Vec<HostUser>,
    pub exports: Vec<NfsExport>,
    /// `host_scripts`: the user's own host steps, `<config-dir>/host/<name>.sh`, run last.
    pub scripts: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samba: Option<Samba>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsServer>,
    /// `network.nfs_server`: with it, each export is also a Proxmox NFS storage (upstream's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nfs_server: Option<String>,
    pub zfs: super::host_storage::Zfs,
    /// Every storage of `storage.cfg` the file asks for, by id.
    pub storages: Vec<super::host_storage::PveStorage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apt: Option<super::host_system::Apt>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<super::host_system::Interface>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nvidia: Option<super::host_system::NvidiaDriver>,
    /// `apparmor.tunables`: lines of Phoenix's block in `/etc/apparmor.d/tunables/<name>`.
    pub apparmor_tunables: std::collections::BTreeMap<String, Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_renewal: Option<super::host_system::CertRenewal>,
}

/// `samba`: the login that owns the shares, its Samba password (by reference), the shares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Samba {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
    pub shares: Vec<SambaShare>,
}

/// One share: `[name]` with its path (upstream wrote it without the leading `/`), the users it
/// lets in, and smb.conf parameters (`"browseable=yes writable=yes"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SambaShare {
    pub name: String,
    pub path: String,
    pub valid_users: Vec<String>,
    pub options: Vec<(String, String)>,
}

/// `dns_server`: dnsmasq answering for the fleet's names, asking `upstream_servers` the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsServer {
    pub upstream_servers: Vec<String>,
}

/// A login on the node: its SSH keys, its password (a crypt(3) hash, by reference), and sudo when
/// asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostUser {
    pub name: String,
    pub sudo: bool,
    pub ssh_keys: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<SecretRef>,
    /// `proxmox`: the user's `<name>@pam` and its ACL (upstream gave `Administrator` on `/`,
    /// the default); `false` for none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxmox: Option<PveAcl>,
}

/// A role on a path of Proxmox's permission tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PveAcl {
    pub role: String,
    pub path: String,
}

/// One line of `/etc/exports`: `path client(options) ...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NfsExport {
    pub path: String,
    pub clients: Vec<String>,
    pub options: Vec<String>,
}

/// `timezone`: a zone name like `America/New_York`.
pub fn timezone(n: Node<'_>) -> Option<String> {
    n.token(Token::Path)
        .filter(|tz| !tz.starts_with('/') || bad(n, "a zone name like America/New_York"))
}

/// `host_scripts`: names of scripts in `<config-dir>/host/`.
pub fn scripts(n: Node<'_>) -> Vec<String> {
    n.list(|i| i.token(Token::Name)).unwrap_or_default()
}

/// `users`: one user (upstream's shape) or a list of them.
pub fn users(n: Node<'_>) -> Vec<HostUser> {
    match n.value {
        serde_json::Value::Array(_) => n.list(user).unwrap_or_default(),
        _ => user(n).into_iter().collect(),
    }
}

fn user(n: Node<'_>) -> Option<HostUser> {
    let o = n.object()?;
    let name = o
        .req("username", "the login to create, like phoenix_admin")
        .and_then(|v| v.node().token(Token::Name))?;
    let sudo = o.opt_bool("sudo_access").unwrap_or(false);
    let ssh_keys = keys(&o);
    let password_hash = o
        .get("password_hash")
        .and_then(|v| super::secret::secret(v.node(), &["", "NOT_SET"]));
    let proxmox = match o.get("proxmox") {
        None => Some(PveAcl {
            role: "Administrator".into(),
            path: "/".into(),
        }),
        Some(v) => pve_acl(v.node()),
    };
    o.finish();
    Some(HostUser {
        name,
        sudo,
        ssh_keys,
        password_hash,
        proxmox,
    })
}

/// `false`, or `{"role": "PVEAuditor", "path": "/"}`.
fn pve_acl(n: Node<'_>) -> Option<PveAcl> {
    if n.value.as_bool() == Some(false) {
        return None;
    }
    let o = n.object()?;
    let role = o
        .get("role")
        .and_then(|v| v.node().token(Token::Name))
        .unwrap_or_else(|| "Administrator".into());
    // As Proxmox keeps ACL paths: `//vms//100/` is `/vms/100`.
    let path = o
        .get("path")
        .and_then(|v| v.node().token(Token::Path))
        .map(|p| {
            let parts: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
            format!("/{}", parts.join("/"))
        })
        .unwrap_or_else(|| "/".into());
    o.finish();
    Some(PveAcl { role, path })
}

/// `ssh_public_key` (one key, possibly empty, as upstream wrote it) and `ssh_public_keys`.
fn keys(o: &Obj<'_>) -> Vec<String> {
    let mut keys = Vec::new();
    for k in ["ssh_public_key", "ssh_public_keys"] {
        let Some(v) = o.get(k) else { continue };
        let node = v.node();
        let given = match node.value {
            serde_json::Value::String(s) if s.trim().is_empty() => Vec::new(),
            serde_json::Value::String(s) => vec![s.trim().to_string()],
            _ => node.list(|k| k.str().map(String::from)).unwrap_or_default(),
        };
        for key in given {
            match key.split_whitespace().count() >= 2 && !key.contains(['\n', '\r']) {
                true => keys.push(key),
                false => node.error(
                    format!("{key:?} is not an SSH public key"),
                    Some("write it as one line: `ssh-ed25519 AAAA... comment`".into()),
                ),
            }
        }
    }
    keys
}

/// `nfs.exports`: `{path, clients[], options[]}` each.
pub fn exports(n: Node<'_>) -> Vec<NfsExport> {
    let Some(o) = n.object() else {
        return Vec::new();
    };
    let list = o
        .get("exports")
        .and_then(|v| v.node().list(export))
        .unwrap_or_default();
    o.finish();
    list
}

fn export(n: Node<'_>) -> Option<NfsExport> {
    let o = n.object()?;
    let path = o
        .req("path", "the directory to export")
        .and_then(|v| super::lxc::abs_path(v.node()))?;
    let words = |k: &'static str| {
        o.get(k)
            .and_then(|v| v.node().list(|i| i.token(Token::Options)))
            .unwrap_or_default()
    };
    let (clients, options) = (words("clients"), words("options"));
    o.finish();
    if clients.is_empty() {
        n.error(
            "an export needs at least one client",
            Some("\"clients\": [\"10.0.0.0/24\"]".into()),
        );
        return None;
    }
    Some(NfsExport {
        path,
        clients,
        options,
    })
}

fn bad(n: Node<'_>, what: &str) -> bool {
    n.error(format!("expected {what}"), None);
    false
}

/// `samba`.
pub fn samba(n: Node<'_>) -> Option<Samba> {
    let o = n.object()?;
    let user = o.get("user").and_then(|v| v.node().token(Token::Name));
    let password = o
        .get("password")
        .and_then(|v| super::secret::secret(v.node(), &[""]));
    let shares = o
        .get("shares")
        .and_then(|v| v.node().list(share))
        .unwrap_or_default();
    o.finish();
    Some(Samba {
        user,
        password,
        shares,
    })
}

fn share(n: Node<'_>) -> Option<SambaShare> {
    let o = n.object()?;
    let path = o
        .req("path", "the directory it shares")
        .and_then(|v| v.node().token(Token::Path))?;
    let name = match o.get("name") {
        Some(v) => v.node().token(Token::Name)?,
        None => {
            // Sept 2025 files named a share by its directory.
            let base = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
            if base.is_empty() || check_token(base, Token::Name).is_err() {
                n.error(
                    format!("a share without `name`, and its path {path:?} names none"),
                    Some("give it a \"name\"".into()),
                );
                return None;
            }
            let base = base.to_string();
            n.legacy(
                "a share without `name` (a Sept 2025 shape) is named after its directory",
                format!("\"name\": {base:?}"),
            );
            base
        }
    };
    let valid_users = o
        .get("valid_users")
        .and_then(|v| v.node().list(|u| u.token(Token::Name)))
        .unwrap_or_default();
    let options = o
        .get("options")
        .map(|v| share_options(v.node()))
        .unwrap_or_default();
    o.finish();
    Some(SambaShare {
        name,
        path: format!("/{}", path.trim_start_matches('/')),
        valid_users,
        options,
    })
}

/// `"browseable=yes writable=yes"`, or an object `{"browseable": "yes"}`.
fn share_options(n: Node<'_>) -> Vec<(String, String)> {
    let pairs: Vec<(String, String)> = match n.value {
        serde_json::Value::Object(m) => m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().map_or(v.to_string(), String::from)))
            .collect(),
        _ => n
            .str()
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    let bad = |s: &str| s.is_empty() || s.contains(['[', ']', '\n', '\r', '=']);
    if pairs
        .iter()
        .any(|(k, v)| bad(k) || v.contains(['\n', '\r']))
    {
        n.error(
            "share options are smb.conf parameters, one `key=value` a word",
            Some("\"options\": \"browseable=yes writable=yes\"".into()),
        );
        return Vec::new();
    }
    pairs
}

/// `dns_server` (when `enabled`).
pub fn dns_server(n: Node<'_>) -> Option<DnsServer> {
    let o = n.object()?;
    let enabled = o.opt_bool("enabled").unwrap_or(false);
    let upstream_servers = o
        .get("upstream_servers")
        .and_then(|v| v.node().list(|s| s.token(Token::Options)))
        .unwrap_or_default();
    o.mark("authoritative_zones");
    o.finish();
    enabled.then_some(DnsServer { upstream_servers })
}

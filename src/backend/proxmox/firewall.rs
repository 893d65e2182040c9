//! A guest's firewall rules (a container's or a VM's: one `VMID.fw` either way) through `pvesh`: read in position order, and converged without
//! deleting and recreating the rules already in place at the top. pve-firewall inserts every new
//! rule at the top, whatever `pos` says (`API2/Firewall/Rules.pm` `create_rule`: `unshift`), so
//! the missing rules are created last first and each moved below the kept ones (`moveto`, which
//! puts a rule before the one that was at that position). Every change names the digest of the
//! rules as read just before it, so pve-firewall refuses it if someone changed them in between.

use super::ProxmoxBackend;
use crate::backend::{BackendError, Change, Result};
use crate::config::common::{Direction, FirewallRule};
use crate::config::GuestId;
use crate::exec::Cmd;

/// Whose firewall: the API path segment of the guest's kind.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    Ct,
    Vm,
}

impl ProxmoxBackend {
    fn firewall_base(&self, kind: Kind, id: GuestId) -> Result<String> {
        let segment = match kind {
            Kind::Ct => "lxc",
            Kind::Vm => "qemu",
        };
        Ok(format!("/nodes/{}/{segment}/{id}/firewall", self.node()?))
    }

    /// Firewall rules as the node has them, in order, and their digest (none without rules).
    fn firewall_rules(
        &self,
        kind: Kind,
        id: GuestId,
    ) -> Result<(Vec<FirewallRule>, Option<String>)> {
        let out = self.runner.run(&Cmd::probe([
            self.tool("pvesh"),
            "get".into(),
            format!("{}/rules", self.firewall_base(kind, id)?),
            "--output-format".into(),
            "json".into(),
        ]))?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| BackendError::Invalid(format!("pvesh rules of {id}: {e}")))?;
        let list = v.as_array().cloned().unwrap_or_default();
        let digest = list
            .first()
            .and_then(|r| r.get("digest"))
            .and_then(|d| d.as_str())
            .map(String::from);
        let mut rules: Vec<(u64, FirewallRule)> = list.iter().filter_map(rule_from_json).collect();
        rules.sort_by_key(|(pos, _)| *pos);
        Ok((rules.into_iter().map(|(_, r)| r).collect(), digest))
    }

    pub(super) fn firewall_diff(
        &self,
        kind: Kind,
        id: GuestId,
        enabled: bool,
        rules: &[FirewallRule],
    ) -> Result<Vec<Change>> {
        let want: &[FirewallRule] = if enabled { rules } else { &[] };
        let (have, _) = self.firewall_rules(kind, id)?;
        if have == want {
            return Ok(Vec::new());
        }
        let show = |r: &[FirewallRule]| format!("{} rule(s)", r.len());
        Ok(vec![Change::new(
            "firewall rules",
            Some(show(&have)),
            Some(show(want)),
        )])
    }

    pub(super) fn converge_firewall(
        &self,
        kind: Kind,
        id: GuestId,
        enabled: bool,
        rules: &[FirewallRule],
    ) -> Result<()> {
        let base = self.firewall_base(kind, id)?;
        let want: &[FirewallRule] = if enabled { rules } else { &[] };
        let (delete, create) = plan(&self.firewall_rules(kind, id)?.0, want);
        let pvesh = |args: Vec<String>| self.act(self.pvesh(args), 60);
        let with_digest = |mut args: Vec<String>| -> Result<Vec<String>> {
            if let Some(d) = self.firewall_rules(kind, id)?.1 {
                args.extend(["--digest".into(), d]);
            }
            Ok(args)
        };
        for pos in delete {
            pvesh(with_digest(vec![
                "delete".into(),
                format!("{base}/rules/{pos}"),
            ])?)?;
        }
        // Last first, each then moved to just below the kept rules (it lands at the top).
        let kept = create.first().map_or(0, |(pos, _)| *pos);
        for (_, r) in create.into_iter().rev() {
            let mut args = vec!["create".into(), format!("{base}/rules")];
            args.extend(rule_args(&r));
            pvesh(args)?;
            if kept > 0 {
                let moveto = (kept + 1).to_string();
                let args = vec![
                    "set".into(),
                    format!("{base}/rules/0"),
                    "--moveto".into(),
                    moveto,
                ];
                pvesh(with_digest(args)?)?;
            }
        }
        pvesh(vec![
            "set".into(),
            format!("{base}/options"),
            "--enable".into(),
            u8::from(enabled).to_string(),
        ])?;
        Ok(())
    }
}

/// `pvesh create .../rules` options of a rule.
fn rule_args(r: &FirewallRule) -> Vec<String> {
    let direction = if r.direction == Direction::Out {
        "out"
    } else {
        "in"
    };
    let mut args: Vec<String> = vec![
        "--enable".into(),
        "1".into(),
        "--type".into(),
        direction.into(),
        "--action".into(),
        r.action.clone(),
    ];
    for (flag, v) in [
        ("--proto", &r.proto),
        ("--source", &r.source),
        ("--dest", &r.dest),
        ("--dport", &r.port),
        ("--iface", &r.iface),
        ("--comment", &r.comment),
    ] {
        if let Some(v) = v {
            args.extend([flag.to_string(), v.clone()]);
        }
    }
    args
}

fn rule_from_json(v: &serde_json::Value) -> Option<(u64, FirewallRule)> {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(String::from);
    Some((
        v.get("pos")?.as_u64()?,
        FirewallRule {
            direction: if s("type")? == "out" {
                Direction::Out
            } else {
                Direction::In
            },
            action: s("action")?.to_ascii_uppercase(),
            proto: s("proto"),
            source: s("source"),
            dest: s("dest"),
            port: s("dport"),
            iface: s("iface"),
            comment: s("comment"),
        },
    ))
}

/// What must change to turn `have` into `want`: rules to delete (positions, highest first) and
/// rules to create (with their positions). Rules already in place at the start are kept.
pub fn plan(
    have: &[FirewallRule],
    want: &[FirewallRule],
) -> (Vec<usize>, Vec<(usize, FirewallRule)>) {
    let same = have.iter().zip(want).take_while(|(a, b)| a == b).count();
    let delete = (same..have.len()).rev().collect();
    let create = want
        .iter()
        .enumerate()
        .skip(same)
        .map(|(i, r)| (i, r.clone()))
        .collect();
    (delete, create)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(port: &str) -> FirewallRule {
        FirewallRule {
            direction: Direction::In,
            action: "ACCEPT".into(),
            proto: Some("tcp".into()),
            source: None,
            dest: None,
            port: Some(port.into()),
            iface: None,
            comment: None,
        }
    }

    #[test]
    fn firewall_rules_converge_without_recreating_what_is_in_place() {
        let (d, c) = plan(&[rule("22"), rule("80")], &[rule("22"), rule("80")]);
        assert!(d.is_empty() && c.is_empty());
        let (d, c) = plan(&[rule("22"), rule("80")], &[rule("22"), rule("443")]);
        assert_eq!(d, [1]);
        assert_eq!(c, [(1, rule("443"))]);
        let (d, c) = plan(&[rule("22"), rule("80"), rule("8080")], &[rule("22")]);
        assert_eq!(d, [2, 1], "highest positions first");
        assert!(c.is_empty());
    }
}

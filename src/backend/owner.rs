//! Who owns a bind mount's host directory: the container's uid/gid as its host sees them, through
//! the container's id maps when it is unprivileged (an `id_maps` entry where one covers the id,
//! else the default map from [`idmap::BASE`]).

use super::{idmap, Change};
use crate::config::lxc::{IdMap, MountPoint};
use serde::Serialize;

/// How a container's ids appear on its host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ids {
    pub unprivileged: bool,
    pub maps: Vec<IdMap>,
}

impl Ids {
    /// The host id of the container's `id` of `kind` (`u` or `g`).
    pub fn host(&self, kind: char, id: u32) -> u32 {
        if !self.unprivileged {
            return id;
        }
        self.maps
            .iter()
            .find(|m| m.kind == kind && (m.container_id..m.container_id + m.size).contains(&id))
            .map_or(idmap::BASE + id, |m| m.host_id + (id - m.container_id))
    }
}

/// The host uid and gid `mount` should have; `None` where the configuration names none.
pub fn wanted(mount: &MountPoint, ids: &Ids) -> (Option<u32>, Option<u32>) {
    (
        mount.owner_uid.map(|u| ids.host('u', u)),
        mount.owner_gid.map(|g| ids.host('g', g)),
    )
}

/// `uid:gid` for `chown` (either may be empty), or `None` when nothing is asked.
pub fn chown_spec(mount: &MountPoint, ids: &Ids) -> Option<String> {
    match wanted(mount, ids) {
        (None, None) => None,
        (uid, gid) => Some(format!(
            "{}:{}",
            uid.map(|u| u.to_string()).unwrap_or_default(),
            gid.map(|g| g.to_string()).unwrap_or_default()
        )),
    }
}

/// Whether `uid:gid` as `stat -c %u:%g` prints it is what `mount` wants.
pub fn matches(mount: &MountPoint, ids: &Ids, have: &str) -> bool {
    let (u, g) = have.trim().split_once(':').unwrap_or(("", ""));
    let (want_u, want_g) = wanted(mount, ids);
    want_u.is_none_or(|w| u == w.to_string()) && want_g.is_none_or(|w| g == w.to_string())
}

/// The change a bind mount's owner needs, given its host directory's `uid:gid` as found (`None`:
/// not found); `None` when it is as the configuration asks or it asks for no owner.
pub fn change(mount: &MountPoint, ids: &Ids, have: Option<String>) -> Option<Change> {
    let want = chown_spec(mount, ids)?;
    if have.as_deref().is_some_and(|h| matches(mount, ids, h)) {
        return None;
    }
    Some(Change::new(
        format!("owner of {}", mount.host_path),
        have,
        Some(want),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_follow_the_containers_id_maps() {
        let www = IdMap {
            kind: 'g',
            container_id: 33,
            host_id: 33,
            size: 1,
        };
        let ids = Ids {
            unprivileged: true,
            maps: vec![www],
        };
        assert_eq!(ids.host('g', 33), 33, "mapped straight through");
        assert_eq!(ids.host('u', 33), idmap::BASE + 33, "only gid 33 is");
        assert_eq!(ids.host('g', 34), idmap::BASE + 34);
        let privileged = Ids {
            unprivileged: false,
            maps: Vec::new(),
        };
        assert_eq!(privileged.host('u', 33), 33);
    }
}

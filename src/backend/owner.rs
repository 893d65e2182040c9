//! Who owns a bind mount's host directory: the container's uid/gid, shifted into the host range
//! when the container is unprivileged (the default map starts at [`idmap::BASE`]).

use super::{idmap, Change};
use crate::config::lxc::MountPoint;

/// The host uid and gid `mount` should have; `None` where the configuration names none.
pub fn wanted(mount: &MountPoint, unprivileged: bool) -> (Option<u32>, Option<u32>) {
    let shift = |id: u32| if unprivileged { idmap::BASE + id } else { id };
    (mount.owner_uid.map(shift), mount.owner_gid.map(shift))
}

/// `uid:gid` for `chown` (either may be empty), or `None` when nothing is asked.
pub fn chown_spec(mount: &MountPoint, unprivileged: bool) -> Option<String> {
    match wanted(mount, unprivileged) {
        (None, None) => None,
        (uid, gid) => Some(format!(
            "{}:{}",
            uid.map(|u| u.to_string()).unwrap_or_default(),
            gid.map(|g| g.to_string()).unwrap_or_default()
        )),
    }
}

/// Whether `uid:gid` as `stat -c %u:%g` prints it is what `mount` wants.
pub fn matches(mount: &MountPoint, unprivileged: bool, have: &str) -> bool {
    let (u, g) = have.trim().split_once(':').unwrap_or(("", ""));
    let (want_u, want_g) = wanted(mount, unprivileged);
    want_u.is_none_or(|w| u == w.to_string()) && want_g.is_none_or(|w| g == w.to_string())
}

/// The change a bind mount's owner needs, given its host directory's `uid:gid` as found (`None`:
/// not found); `None` when it is as the configuration asks or it asks for no owner.
pub fn change(mount: &MountPoint, unprivileged: bool, have: Option<String>) -> Option<Change> {
    let want = chown_spec(mount, unprivileged)?;
    if have
        .as_deref()
        .is_some_and(|h| matches(mount, unprivileged, h))
    {
        return None;
    }
    Some(Change::new(
        format!("owner of {}", mount.host_path),
        have,
        Some(want),
    ))
}

//! LXC id maps for unprivileged containers, honouring `id_maps` entries that map single ids (or
//! ranges) straight through, e.g. gid 33 (www-data) to host gid 33. Upstream ignored the entries;
//! here the default range `0..65536 -> base..base+65536` is split around them.

use crate::config::lxc::IdMap;

/// The default shift of unprivileged containers (Proxmox's and LXC's convention).
pub const BASE: u32 = 100_000;
pub const SIZE: u32 = 65_536;

/// `lxc.idmap` lines for both kinds (`u` and `g`), in container-id order.
pub fn lines(maps: &[IdMap]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for kind in ['u', 'g'] {
        let mut special: Vec<&IdMap> = maps.iter().filter(|m| m.kind == kind).collect();
        special.sort_by_key(|m| m.container_id);
        for w in special.windows(2) {
            if w[0].container_id + w[0].size > w[1].container_id {
                return Err(format!(
                    "id maps overlap: {kind} {} and {kind} {}",
                    w[0].container_id, w[1].container_id
                ));
            }
        }
        let mut next = 0u32;
        for m in special {
            if m.container_id
                .checked_add(m.size)
                .is_none_or(|end| end > SIZE)
            {
                return Err(format!(
                    "id map {kind} {}+{} leaves the container's {SIZE} ids",
                    m.container_id, m.size
                ));
            }
            if m.container_id > next {
                out.push(format!(
                    "lxc.idmap = {kind} {next} {} {}",
                    BASE + next,
                    m.container_id - next
                ));
            }
            out.push(format!(
                "lxc.idmap = {kind} {} {} {}",
                m.container_id, m.host_id, m.size
            ));
            next = m.container_id + m.size;
        }
        if next < SIZE {
            out.push(format!(
                "lxc.idmap = {kind} {next} {} {}",
                BASE + next,
                SIZE - next
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_split_ranges() {
        assert_eq!(
            lines(&[]).unwrap(),
            [
                "lxc.idmap = u 0 100000 65536",
                "lxc.idmap = g 0 100000 65536"
            ]
        );
        let www = IdMap {
            kind: 'g',
            container_id: 33,
            host_id: 33,
            size: 1,
        };
        assert_eq!(
            lines(&[www]).unwrap(),
            [
                "lxc.idmap = u 0 100000 65536",
                "lxc.idmap = g 0 100000 33",
                "lxc.idmap = g 33 33 1",
                "lxc.idmap = g 34 100034 65502",
            ]
        );
        let first = IdMap {
            kind: 'u',
            container_id: 0,
            host_id: 1000,
            size: 1,
        };
        assert_eq!(lines(&[first]).unwrap()[0], "lxc.idmap = u 0 1000 1");
        let a = IdMap {
            kind: 'u',
            container_id: 10,
            host_id: 10,
            size: 5,
        };
        let b = IdMap {
            kind: 'u',
            container_id: 12,
            host_id: 12,
            size: 1,
        };
        assert!(lines(&[a, b]).is_err());
    }
}

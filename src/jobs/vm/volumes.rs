//! NFS `volumes`: each one mounted in the VM where the configuration says, by its own line of
//! `/etc/fstab` (`<server>:<path> <mount_point> nfs defaults,auto,nofail 0 0`, as upstream wrote
//! it), so that it is mounted again at every boot. A line of another source for the same mount
//! point is replaced, and what is mounted there is remounted from the configured source.

use super::{VmCx, VmJob};
use crate::config::vm::NfsVolume;
use crate::exec::Cmd;
use crate::jobs::{Attempt, Lifecycle, Row, StepError, Table};
use std::time::Duration;

/// `$1` the source, `$2` the mount point: the fstab line in place and the source mounted there.
const MOUNT: &str = r#"set -e
src=$1 mp=$2
mkdir -p "$mp"
tmp=$(mktemp)
awk -v mp="$mp" '$2 != mp' /etc/fstab > "$tmp"
printf '%s %s nfs defaults,auto,nofail 0 0\n' "$src" "$mp" >> "$tmp"
cat "$tmp" > /etc/fstab
rm -f "$tmp"
cur=$(findmnt -n -o SOURCE --mountpoint "$mp" || true)
if [ -n "$cur" ] && [ "$cur" != "$src" ]; then umount "$mp"; fi
[ -n "$(findmnt -n -o SOURCE --mountpoint "$mp" || true)" ] || mount "$mp"
[ "$(findmnt -n -o SOURCE --mountpoint "$mp")" = "$src" ]"#;

/// The line is in fstab and the source is mounted at the mount point.
const MOUNTED: &str = r#"src=$1 mp=$2
grep -qxF "$src $mp nfs defaults,auto,nofail 0 0" /etc/fstab &&
[ "$(findmnt -n -o SOURCE --mountpoint "$mp")" = "$src" ]"#;

pub fn steps(t: &mut Table<Lifecycle, VmCx>, cx: &VmCx) {
    for v in &cx.vm.volumes {
        if v.kind != "nfs" {
            t.warn(format!(
                "volume {} is of type {:?}; only nfs volumes are mounted",
                v.mount_point, v.kind
            ));
            continue;
        }
        if !VmJob::boots(&cx.vm) {
            t.warn(format!(
                "volume {} is not mounted: the template never runs",
                v.mount_point
            ));
            continue;
        }
        let row = Row::new(
            format!("volume:{}", v.mount_point),
            Lifecycle::Customizing,
            &("nfs", v),
        );
        let (probe_v, act_v) = (v.clone(), v.clone());
        t.push(row.probe_act(
            move |cx, _| mounted(cx, &probe_v),
            move |cx, at| mount(cx, at, &act_v),
        ));
    }
}

/// `script` with the source and the mount point as its arguments (never in its text).
fn argv(script: &str, source: &str, v: &NfsVolume) -> [String; 6] {
    ["/bin/sh", "-c", script, "sh", source, &v.mount_point].map(String::from)
}

fn mounted(cx: &VmCx, v: &NfsVolume) -> Result<bool, StepError> {
    let source = format!("{}:{}", v.server, v.path);
    let cmd = Cmd::probe(argv(MOUNTED, &source, v)).timeout(Duration::from_secs(30));
    Ok(cx.vms().vm_exec(cx.id(), &cmd)?.success())
}

fn mount(cx: &VmCx, _: &mut Attempt<'_>, v: &NfsVolume) -> Result<(), StepError> {
    let source = format!("{}:{}", v.server, v.path);
    let cmd = Cmd::act(argv(MOUNT, &source, v)).timeout(Duration::from_secs(120));
    let out = cx.vms().vm_exec(cx.id(), &cmd)?;
    if out.skipped || out.success() {
        return Ok(());
    }
    Err(StepError::new(
        format!(
            "could not mount {source} on {} in VM {}",
            v.mount_point,
            cx.id()
        ),
        format!(
            "{}\ncheck that {} exports {} to this VM",
            out.tail(10),
            v.server,
            v.path
        ),
    ))
}

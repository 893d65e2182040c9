//! Subnets for labs, allocated here rather than by hand: each lab holds an exclusive lock on
//! `/run/phoenix-labs/net-N.lock` for its 10.254.N.0/24 (and bridge `phxtN`) while it lives, so
//! tests in parallel, and test binaries side by side, never share one.

use std::fs::{File, OpenOptions};
use std::path::Path;

/// The subnets labs may use (10.254.10 is the demo's).
const NETS: std::ops::RangeInclusive<u8> = 20..=250;

/// A held subnet; released when dropped.
pub struct Net {
    pub n: u8,
    _lock: File,
}

pub fn allocate() -> Net {
    let dir = Path::new("/run/phoenix-labs");
    std::fs::create_dir_all(dir).expect("mkdir /run/phoenix-labs");
    for n in NETS {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("net-{n}.lock")))
            .expect("lock file");
        if file.try_lock().is_ok() {
            return Net { n, _lock: file };
        }
    }
    panic!("every lab subnet in 10.254.{NETS:?}.0/24 is in use");
}

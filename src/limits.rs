//! Limits on shared resources: at most N create/clone/snapshot operations at once per storage
//! pool. Proxmox takes storage and config locks for these, and parallel clones make them time out;
//! feature scripts, application scripts and checks are not limited.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

pub struct PoolLimits {
    per_pool: usize,
    busy: Mutex<HashMap<String, usize>>,
    freed: Condvar,
}

/// A held slot; released on drop.
pub struct PoolSlot<'a> {
    limits: &'a PoolLimits,
    pool: String,
}

impl PoolLimits {
    pub fn new(per_pool: usize) -> PoolLimits {
        PoolLimits {
            per_pool: per_pool.max(1),
            busy: Mutex::new(HashMap::new()),
            freed: Condvar::new(),
        }
    }

    /// Waits for a slot in `pool`.
    pub fn acquire(&self, pool: &str) -> PoolSlot<'_> {
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let n = busy.entry(pool.to_string()).or_insert(0);
            if *n < self.per_pool {
                *n += 1;
                return PoolSlot {
                    limits: self,
                    pool: pool.to_string(),
                };
            }
            busy = self.freed.wait(busy).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Drop for PoolSlot<'_> {
    fn drop(&mut self) {
        let mut busy = self.limits.busy.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = busy.get_mut(&self.pool) {
            *n = n.saturating_sub(1);
        }
        self.limits.freed.notify_all();
    }
}

/// Whether a backend error says a lock could not be taken in time (Proxmox's `can't lock file
/// ... got timeout`, LXC's own lock messages): worth retrying after a pause.
pub fn is_lock_timeout(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "can't lock file",
        "got timeout",
        "trying to acquire lock",
        "failed to acquire lock",
        "resource temporarily unavailable",
    ]
    .iter()
    .any(|p| m.contains(p))
}

/// The pause before retry `n` (1-based) of a lock timeout: 1 s, 2 s, 4 s, 8 s, then 15 s.
pub fn lock_backoff(n: u32) -> Duration {
    Duration::from_secs((1u64 << n.saturating_sub(1).min(4)).min(15))
}

/// The pause before re-running a step that failed in an earlier run (attempt 2 and up): it grows
/// with the attempts so a broken step does not hammer the host: 2 s, 4 s, ... up to 60 s.
pub fn retry_backoff(attempt: u32) -> Duration {
    if attempt <= 1 {
        return Duration::ZERO;
    }
    Duration::from_secs((1u64 << (attempt - 1).min(6)).min(60))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn never_more_than_the_limit_per_pool() {
        let limits = Arc::new(PoolLimits::new(2));
        let inside = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let other = Arc::new(AtomicUsize::new(0));
        std::thread::scope(|s| {
            for i in 0..12 {
                let (limits, inside, max, other) =
                    (limits.clone(), inside.clone(), max.clone(), other.clone());
                s.spawn(move || {
                    let pool = if i % 3 == 0 { "other" } else { "local" };
                    let _slot = limits.acquire(pool);
                    if pool == "local" {
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        max.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        inside.fetch_sub(1, Ordering::SeqCst);
                    } else {
                        other.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(max.load(Ordering::SeqCst), 2);
        assert_eq!(other.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn lock_timeouts_are_recognised() {
        assert!(is_lock_timeout(
            "can't lock file '/var/lock/qemu-server/lock-950.conf' - got timeout"
        ));
        assert!(is_lock_timeout(
            "trying to acquire lock...\nTASK ERROR: can't lock file"
        ));
        assert!(!is_lock_timeout("storage 'x' does not exist"));
        assert_eq!(lock_backoff(1), Duration::from_secs(1));
        assert_eq!(lock_backoff(9), Duration::from_secs(15));
        assert_eq!(retry_backoff(1), Duration::ZERO);
        assert_eq!(retry_backoff(2), Duration::from_secs(2));
        assert_eq!(retry_backoff(20), Duration::from_secs(60));
    }
}

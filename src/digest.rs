//! Stable digests (sha256, hex) of what a step depends on.

use sha2::{Digest, Sha256};

pub fn hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Digest of a value's JSON form.
pub fn of<T: serde::Serialize>(value: &T) -> String {
    // Serializing our plain config types to JSON cannot fail (no maps with non-string keys, no
    // custom serializers that error).
    hex(&serde_json::to_vec(value).unwrap_or_default())
}

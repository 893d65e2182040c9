//! What a step records before it acts, so that a redo after a crash knows what the interrupted
//! attempt had started: the operation it issued, whether it stopped a running guest, and the
//! guest script instance it started.

use serde::{Deserialize, Serialize};

/// A step's intent, saved through the engine before the step's side effects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// The step's operation (a create, clone or snapshot) was issued: a redo cleans up or adopts
    /// what it left instead of repeating it blindly.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub issued: bool,
    /// Whether the guest was running before the step stopped it: a redo starts it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub was_running: Option<bool>,
    /// The token of the guest script instance this step started and has not seen finish: a redo
    /// re-attaches to it, or takes its result, instead of starting a second one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// What told apart the snapshot of the step's name before its operation was issued (see
    /// `Hypervisor::snapshot_identity`): a redo that finds another, complete, adopts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_before: Option<String>,
    /// The node-side task the operation started (a Proxmox UPID): a redo waits for it and adopts
    /// what it made, or cleans up after it, instead of starting a second one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The step's change takes effect at the next boot: the boot it was made in (a redo finds
    /// another and goes on, or the same one and still waits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaiting_reboot: Option<String>,
}

impl Intent {
    pub fn encode(&self) -> Vec<u8> {
        // Two plain fields: serializing them to JSON cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a saved intent. Anything unreadable (an older Phoenix saved plain text such as
    /// `create issued`) still says that an earlier attempt issued its operation.
    pub fn decode(bytes: &[u8]) -> Intent {
        serde_json::from_slice(bytes).unwrap_or(Intent {
            issued: true,
            ..Intent::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_old_intents() {
        let i = Intent {
            issued: true,
            was_running: Some(true),
            token: Some("1733-950-feature:docker".into()),
            snapshot_before: Some("snap0".into()),
            task: Some("UPID:pve:00001234:0000ABCD:5F5E1000:vzcreate:950:root@pam:".into()),
            awaiting_reboot: Some("0b5c...-1234".into()),
        };
        assert_eq!(Intent::decode(&i.encode()), i);
        assert_eq!(Intent::default().encode(), b"{}");
        assert!(Intent::decode(b"snapshot final-form issued").issued);
    }
}

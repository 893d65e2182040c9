//! Which guests may start: a guest is ready once every prerequisite in the run (clone parent and
//! `dependencies`) has finished well; it is blocked as soon as one has not.

use crate::config::GuestId;
use crate::converge::Outcome;
use crate::graph::Graph;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Waiting,
    Running,
    Done(Outcome),
}

/// What the scheduler should do next with a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Start(GuestId),
    /// A prerequisite (named) did not finish well: the guest will not start.
    Blocked(GuestId, GuestId),
}

/// The guests of one run and where each stands.
pub struct ReadySet {
    order: Vec<GuestId>,
    prereqs: HashMap<GuestId, Vec<GuestId>>,
    slots: HashMap<GuestId, Slot>,
}

impl ReadySet {
    /// The guests of `order`, a build order (prerequisites first, as [`Graph::order`] gives it),
    /// so that blocking cascades within one pass of [`ReadySet::next`].
    pub fn new(order: &[GuestId], graph: &Graph) -> ReadySet {
        let slots: HashMap<GuestId, Slot> = order.iter().map(|id| (*id, Slot::Waiting)).collect();
        let prereqs = order
            .iter()
            .map(|id| {
                let p = graph
                    .prerequisites(*id)
                    .iter()
                    .map(|(p, _)| *p)
                    .filter(|p| slots.contains_key(p))
                    .collect();
                (*id, p)
            })
            .collect();
        ReadySet {
            order: order.to_vec(),
            prereqs,
            slots,
        }
    }

    /// In run order: every waiting guest that is now blocked, and up to `capacity` that may start
    /// (none when `starting` is false: cancelled, or `--fail-fast` after a failure). Started
    /// guests count as running from here on.
    pub fn next(&mut self, capacity: usize, starting: bool) -> Vec<Decision> {
        let mut out = Vec::new();
        let mut room = capacity;
        for &id in &self.order {
            if self.slots.get(&id) != Some(&Slot::Waiting) {
                continue;
            }
            let prereqs = self.prereqs.get(&id).map(Vec::as_slice).unwrap_or(&[]);
            let blocker = prereqs
                .iter()
                .copied()
                .find(|p| matches!(self.slots.get(p), Some(Slot::Done(o)) if !o.ok()));
            if let Some(p) = blocker {
                self.slots.insert(id, Slot::Done(Outcome::Blocked));
                out.push(Decision::Blocked(id, p));
                continue;
            }
            let ready = prereqs
                .iter()
                .all(|p| matches!(self.slots.get(p), Some(Slot::Done(_))));
            if ready && starting && room > 0 {
                self.slots.insert(id, Slot::Running);
                room -= 1;
                out.push(Decision::Start(id));
            }
        }
        out
    }

    /// Records how a guest finished (also one that never started: unsupported, say).
    pub fn finish(&mut self, id: GuestId, outcome: Outcome) {
        self.slots.insert(id, Slot::Done(outcome));
    }

    pub fn running(&self) -> usize {
        self.slots.values().filter(|s| **s == Slot::Running).count()
    }

    /// Guests that never started nor were blocked (the run was cancelled, or `--fail-fast`).
    pub fn never_started(&self) -> Vec<GuestId> {
        self.order
            .iter()
            .copied()
            .filter(|id| self.slots.get(id) == Some(&Slot::Waiting))
            .collect()
    }
}

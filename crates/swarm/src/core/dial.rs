//! One dial's state: its queue of ranked candidates, the attempts running, the failures so
//! far and its deadlines (the scheduling that drives it is in `dialing`).

use std::collections::VecDeque;
use std::time::Instant;

use lp2p_core::{DialOpts, Multiaddr, PeerId};

use super::messages::AttemptId;
use crate::DialAttempt;

#[derive(Debug)]
pub(super) struct Running {
    pub(super) attempt: AttemptId,
    pub(super) addr: Multiaddr,
    pub(super) deadline: Instant,
}

/// One dial in progress.
#[derive(Debug)]
pub(super) struct Dial {
    pub(super) peer: Option<PeerId>,
    pub(super) opts: DialOpts,
    pub(super) queue: VecDeque<Multiaddr>,
    pub(super) running: Vec<Running>,
    pub(super) failures: Vec<DialAttempt>,
    /// While attempts run, the next queued address starts no earlier than this.
    pub(super) next_start: Option<Instant>,
    pub(super) deadline: Instant,
    /// Nothing left to try, but an inbound connection that may be from the peer is finishing
    /// its upgrade: the dial waits for it, until this deadline at the latest.
    pub(super) waiting_inbound: Option<Instant>,
    /// The bootstrap address this dial serves, if any.
    pub(super) bootstrap: Option<Multiaddr>,
}

impl Dial {
    pub(super) fn next_timeout(&self) -> Instant {
        let mut next = self.deadline;
        if let Some(t) = self.waiting_inbound {
            next = next.min(t);
        }
        for r in &self.running {
            next = next.min(r.deadline);
        }
        if !self.queue.is_empty()
            && let Some(t) = self.next_start
        {
            next = next.min(t);
        }
        next
    }
}

//! Slots for inbound streams that are still negotiating their protocol: a node-wide pool and
//! a fair share of it per peer, so one peer (or its few connections) cannot hold every slot
//! with streams that never finish negotiating.
//!
//! The share binds only under contention: a peer may go past it while less than half of the
//! pool is in use, so an honest burst (hundreds of streams opened at once to an idle node) is
//! not reset, while a peer that stalls streams can never take more than half the pool, and
//! once half is in use, nobody gets more than their share.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use lp2p_core::PeerId;

/// Why a stream got no slot: which limit, its value, and the use at that moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The node-wide pool is full.
    Total { limit: usize, current: usize },
    /// The peer holds its whole share.
    Peer { limit: usize, current: usize },
}

/// The pool of negotiation slots.
#[derive(Debug)]
pub(crate) struct NegotiationSlots {
    max_total: usize,
    max_per_peer: usize,
    state: Mutex<SlotState>,
}

#[derive(Debug, Default)]
struct SlotState {
    total: usize,
    per_peer: HashMap<PeerId, usize>,
}

impl NegotiationSlots {
    pub(crate) fn new(max_total: usize, max_per_peer: usize) -> Arc<NegotiationSlots> {
        Arc::new(NegotiationSlots {
            max_total,
            max_per_peer,
            state: Mutex::new(SlotState::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a slot for a stream of `peer`; it is given back when the guard drops.
    pub(crate) fn try_take(self: &Arc<Self>, peer: PeerId) -> Result<NegotiationSlot, Refusal> {
        let mut state = self.lock();
        let held = state.per_peer.get(&peer).copied().unwrap_or(0);
        let contended = state.total >= self.max_total / 2;
        if held >= self.max_per_peer && contended {
            return Err(Refusal::Peer {
                limit: self.max_per_peer,
                current: held,
            });
        }
        if state.total >= self.max_total {
            return Err(Refusal::Total {
                limit: self.max_total,
                current: state.total,
            });
        }
        state.total = state.total.saturating_add(1);
        state.per_peer.insert(peer, held.saturating_add(1));
        Ok(NegotiationSlot {
            slots: self.clone(),
            peer,
        })
    }

    /// Streams negotiating right now.
    pub(crate) fn in_use(&self) -> usize {
        self.lock().total
    }

    fn give_back(&self, peer: &PeerId) {
        let mut state = self.lock();
        state.total = state.total.saturating_sub(1);
        if let Some(held) = state.per_peer.get_mut(peer) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                state.per_peer.remove(peer);
            }
        }
    }
}

/// One stream's slot; dropping it gives the slot back.
#[derive(Debug)]
pub(crate) struct NegotiationSlot {
    slots: Arc<NegotiationSlots>,
    peer: PeerId,
}

impl Drop for NegotiationSlot {
    fn drop(&mut self) {
        self.slots.give_back(&self.peer);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use lp2p_core::Keypair;

    fn peer() -> PeerId {
        Keypair::generate_ed25519().public().to_peer_id()
    }

    #[test]
    fn past_half_the_pool_a_peer_gets_its_share_and_no_more() {
        let slots = NegotiationSlots::new(10, 3);
        let (a, b, c) = (peer(), peer(), peer());
        // An idle pool lets a burst past the share, up to half the pool.
        let held: Vec<_> = (0..5).map(|_| slots.try_take(a).unwrap()).collect();
        assert_eq!(
            slots.try_take(a).unwrap_err(),
            Refusal::Peer {
                limit: 3,
                current: 5
            }
        );
        // Others still get their share each.
        let others: Vec<_> = (0..3).map(|_| slots.try_take(b).unwrap()).collect();
        assert!(matches!(slots.try_take(b), Err(Refusal::Peer { .. })));
        let last = (slots.try_take(c).unwrap(), slots.try_take(c).unwrap());
        assert_eq!(
            slots.try_take(c).unwrap_err(),
            Refusal::Total {
                limit: 10,
                current: 10
            }
        );
        drop((held, others, last));
        assert_eq!(slots.in_use(), 0);
        assert!(slots.lock().per_peer.is_empty());
        assert!(slots.try_take(a).is_ok());
    }

    #[test]
    fn the_pool_caps_all_peers_together() {
        let slots = NegotiationSlots::new(4, 3);
        let held: Vec<_> = (0..4).map(|_| slots.try_take(peer()).unwrap()).collect();
        assert_eq!(
            slots.try_take(peer()).unwrap_err(),
            Refusal::Total {
                limit: 4,
                current: 4
            }
        );
        drop(held);
        assert_eq!(slots.in_use(), 0);
    }
}

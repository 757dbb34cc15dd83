//! A protocol handler's running streams, with a fair share when they are all taken.
//!
//! Each handler runs at most `max_streams_per_protocol` inbound streams at once. A cap alone
//! lets many identities, each holding a stream or two that never ends (an idle ping or
//! pubsub stream), take every slot and lock a new peer out of that protocol. So when every
//! slot is taken, a stream from a peer that holds none of them takes the slot of the peer
//! holding the most (its oldest stream is aborted), as long as that peer keeps at least one.
//! A new peer is then refused only when every slot belongs to a different peer, which takes
//! as many connected peers as there are slots.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::{AbortHandle, AbortRegistration};
use lp2p_core::PeerId;

/// The running streams of one handler.
#[derive(Default)]
pub(crate) struct HandlerSlots {
    inner: Mutex<Running>,
}

#[derive(Default)]
struct Running {
    next: u64,
    /// Oldest first: ids grow.
    streams: BTreeMap<u64, (PeerId, AbortHandle)>,
    per_peer: HashMap<PeerId, usize>,
}

/// A slot taken: the guard that returns it, the registration that lets a later stream
/// abort this one, and the peer whose stream was aborted to make room, if any.
pub(crate) struct Taken {
    pub(crate) guard: SlotGuard,
    pub(crate) registration: AbortRegistration,
    pub(crate) evicted: Option<PeerId>,
}

impl HandlerSlots {
    fn lock(&self) -> MutexGuard<'_, Running> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Streams running now.
    #[cfg(test)]
    pub(crate) fn running(&self) -> usize {
        self.lock().streams.len()
    }

    /// Takes a slot for a stream of `peer` unless `max` are taken and no other peer can
    /// give one up (see the module docs).
    pub(crate) fn take(self: &Arc<Self>, peer: PeerId, max: usize) -> Option<Taken> {
        let mut running = self.lock();
        let mut evicted = None;
        if running.streams.len() >= max {
            if running.per_peer.contains_key(&peer) {
                return None;
            }
            let (victim, held) = running
                .per_peer
                .iter()
                .max_by_key(|(_, n)| **n)
                .map(|(p, n)| (*p, *n))?;
            if held < 2 {
                return None;
            }
            let oldest = running
                .streams
                .iter()
                .find(|(_, (p, _))| *p == victim)
                .map(|(id, _)| *id)?;
            if let Some((_, abort)) = running.remove(oldest) {
                abort.abort();
            }
            evicted = Some(victim);
        }
        let id = running.next;
        running.next = running.next.wrapping_add(1);
        let (abort, registration) = AbortHandle::new_pair();
        running.streams.insert(id, (peer, abort));
        *running.per_peer.entry(peer).or_insert(0) += 1;
        Some(Taken {
            guard: SlotGuard {
                slots: self.clone(),
                id,
            },
            registration,
            evicted,
        })
    }
}

impl Running {
    fn remove(&mut self, id: u64) -> Option<(PeerId, AbortHandle)> {
        let (peer, abort) = self.streams.remove(&id)?;
        if let Some(n) = self.per_peer.get_mut(&peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_peer.remove(&peer);
            }
        }
        Some((peer, abort))
    }
}

/// Returns its slot on drop (unless a later stream already took it).
pub(crate) struct SlotGuard {
    slots: Arc<HandlerSlots>,
    id: u64,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.slots.lock().remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_without_a_slot_takes_one_from_the_peer_holding_the_most() {
        let slots = Arc::new(HandlerSlots::default());
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let a1 = slots.take(a, 3).unwrap();
        let a2 = slots.take(a, 3).unwrap();
        let _b1 = slots.take(b, 3).unwrap();
        // Full: a peer that holds a slot is refused.
        assert!(slots.take(a, 3).is_none());
        assert!(slots.take(b, 3).is_none());
        // A new peer takes a's oldest stream's slot.
        let c1 = slots.take(c, 3).unwrap();
        assert_eq!(c1.evicted, Some(a));
        assert_eq!(slots.running(), 3);
        // a's first stream was aborted; its guard's drop later changes nothing.
        assert!(!a1.guard.slots.lock().streams.contains_key(&a1.guard.id));
        drop(a1);
        assert_eq!(slots.running(), 3);
        // Every peer now holds one: a fourth peer is refused.
        assert!(slots.take(PeerId::random(), 3).is_none());
        // A slot returned is free for anyone.
        drop(a2);
        assert_eq!(slots.running(), 2);
        assert!(slots.take(PeerId::random(), 3).unwrap().evicted.is_none());
    }

    #[test]
    fn the_evicted_stream_is_aborted() {
        let slots = Arc::new(HandlerSlots::default());
        let (a, b) = (PeerId::random(), PeerId::random());
        let first = slots.take(a, 2).unwrap();
        let _second = slots.take(a, 2).unwrap();
        let _taken = slots.take(b, 2).unwrap();
        let aborted = futures::executor::block_on(futures::future::Abortable::new(
            futures::future::pending::<()>(),
            first.registration,
        ));
        assert!(aborted.is_err());
    }
}

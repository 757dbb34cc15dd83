//! Counting semaphores without a runtime: [`Slots`] for waiting on a global limit
//! (back-pressure), [`PerPeer`] for refusing past a per-peer limit.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::channel::oneshot;
use lp2p_core::PeerId;

/// `n` slots; [`Slots::acquire`] waits (first come, first served) while all are taken.
#[derive(Debug)]
pub(crate) struct Slots {
    state: Mutex<SlotState>,
}

#[derive(Debug)]
struct SlotState {
    available: usize,
    waiters: VecDeque<oneshot::Sender<()>>,
}

/// A taken slot; dropping it gives the slot to the next waiter.
#[derive(Debug)]
pub(crate) struct Slot(Arc<Slots>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// A waiter that may be cancelled: a slot handed to it but never taken goes back.
struct Waiting {
    rx: Option<oneshot::Receiver<()>>,
    slots: Arc<Slots>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take()
            && let Ok(Some(())) = rx.try_recv()
        {
            self.slots.release();
        }
    }
}

impl Slots {
    pub(crate) fn new(n: usize) -> Arc<Slots> {
        Arc::new(Slots {
            state: Mutex::new(SlotState {
                available: n,
                waiters: VecDeque::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a slot, waiting for one if none is free.
    pub(crate) async fn acquire(self: &Arc<Self>) -> Slot {
        let rx = {
            let mut state = self.lock();
            if state.available > 0 {
                state.available -= 1;
                return Slot(self.clone());
            }
            let (tx, rx) = oneshot::channel();
            state.waiters.push_back(tx);
            rx
        };
        let mut waiting = Waiting {
            rx: Some(rx),
            slots: self.clone(),
        };
        if let Some(rx) = waiting.rx.as_mut() {
            // The sender lives in `waiters` until it is handed a slot, so this cannot fail
            // while `self` exists.
            let _ = rx.await;
        }
        waiting.rx = None;
        Slot(self.clone())
    }

    /// Slots free right now.
    #[cfg(test)]
    pub(crate) fn available(&self) -> usize {
        self.lock().available
    }

    fn release(&self) {
        let mut state = self.lock();
        while let Some(waiter) = state.waiters.pop_front() {
            if waiter.send(()).is_ok() {
                return;
            }
        }
        state.available = state.available.saturating_add(1);
    }
}

/// Counts held items per peer, refusing past a limit.
#[derive(Debug)]
pub(crate) struct PerPeer {
    counts: Mutex<HashMap<PeerId, usize>>,
    max: usize,
}

/// One held item of a peer; released on drop.
#[derive(Debug)]
pub(crate) struct PeerSlot {
    owner: Arc<PerPeer>,
    peer: PeerId,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut counts = self.owner.lock();
        if let Some(n) = counts.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.peer);
            }
        }
    }
}

impl PerPeer {
    pub(crate) fn new(max: usize) -> Arc<PerPeer> {
        Arc::new(PerPeer {
            counts: Mutex::new(HashMap::new()),
            max,
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<PeerId, usize>> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for `peer`, unless it holds `max` already.
    pub(crate) fn try_acquire(self: &Arc<Self>, peer: PeerId) -> Option<PeerSlot> {
        let mut counts = self.lock();
        let n = counts.entry(peer).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            owner: self.clone(),
            peer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn slots_wait_and_hand_over() {
        futures::executor::block_on(async {
            let slots = Slots::new(1);
            let first = slots.acquire().await;
            let mut second = Box::pin(slots.acquire());
            assert!((&mut second).now_or_never().is_none());
            drop(first);
            let second = second.await;
            assert_eq!(slots.available(), 0);
            drop(second);
            assert_eq!(slots.available(), 1);
        });
    }

    #[test]
    fn a_cancelled_waiter_returns_its_slot() {
        futures::executor::block_on(async {
            let slots = Slots::new(1);
            let first = slots.acquire().await;
            let mut waiter = Box::pin(slots.acquire());
            assert!((&mut waiter).now_or_never().is_none());
            drop(first); // handed to the waiter...
            drop(waiter); // ...which never took it
            assert_eq!(slots.available(), 1);
        });
    }

    #[test]
    fn per_peer_limit() {
        let limits = PerPeer::new(2);
        let (a, b) = (PeerId::random(), PeerId::random());
        let one = limits.try_acquire(a).unwrap();
        let _two = limits.try_acquire(a).unwrap();
        assert!(limits.try_acquire(a).is_none());
        assert!(limits.try_acquire(b).is_some());
        drop(one);
        assert!(limits.try_acquire(a).is_some());
    }
}

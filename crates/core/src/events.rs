//! A small bounded broadcast bus for events nobody's correctness depends on.
//!
//! Each subscriber gets its own queue; a subscriber that falls `capacity` events behind
//! misses further events (counted and logged), so a slow reader never stalls the sender or
//! grows memory. The swarm, the host and services (pubsub) publish their events on one.
//! Events that must not be missed (connection opens and closes) travel another way: see
//! `lp2p_swarm::ConnectionEvents`.
//!
//! ```
//! use futures::StreamExt;
//! use lp2p_core::events::EventBus;
//!
//! let bus = EventBus::new(2);
//! let mut sub = bus.subscribe();
//! bus.emit(&1);
//! bus.emit(&2);
//! bus.emit(&3); // the subscriber is full: dropped and counted
//! assert_eq!(bus.dropped(), 1);
//! bus.close();
//! let seen: Vec<i32> = futures::executor::block_on(sub.collect());
//! assert_eq!(seen, [1, 2]);
//! ```

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures::channel::mpsc;
use futures::stream::Stream;

/// A bounded broadcast bus: each subscriber gets its own queue of `capacity` events; when a
/// subscriber falls that far behind, further events to it are dropped and counted (a slow
/// reader must not stall the sender or grow memory).
#[derive(Debug)]
pub struct EventBus<T> {
    subscribers: Mutex<Vec<mpsc::Sender<T>>>,
    capacity: usize,
    dropped: AtomicU64,
}

impl<T: Clone> EventBus<T> {
    /// A bus whose subscribers each buffer `capacity` events.
    pub fn new(capacity: usize) -> Self {
        EventBus {
            subscribers: Mutex::new(Vec::new()),
            capacity: capacity.max(1),
            dropped: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<mpsc::Sender<T>>> {
        self.subscribers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new subscriber; it sees events emitted from now on.
    pub fn subscribe(&self) -> EventStream<T> {
        let (tx, rx) = mpsc::channel(self.capacity.saturating_sub(1));
        self.lock().push(tx);
        EventStream { rx }
    }

    /// Sends `event` to every subscriber; forgets subscribers that are gone.
    pub fn emit(&self, event: &T) {
        let mut subs = self.lock();
        subs.retain_mut(|tx| match tx.try_send(event.clone()) {
            Ok(()) => true,
            Err(e) if e.is_full() => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(
                    dropped_total = n,
                    "an event subscriber is not keeping up; event dropped"
                );
                true
            }
            Err(_) => false,
        });
    }

    /// Events dropped so far because a subscriber was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Ends every subscription (their streams end after the events already queued).
    pub fn close(&self) {
        self.lock().clear();
    }
}

/// A subscription to an [`EventBus`]: a `Stream` of events.
#[derive(Debug)]
pub struct EventStream<T> {
    rx: mpsc::Receiver<T>,
}

impl<T> Stream for EventStream<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        Pin::new(&mut self.rx).poll_next(cx)
    }
}

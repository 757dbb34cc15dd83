//! The swarm's events and a small bounded broadcast bus to deliver them.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures::channel::mpsc;
use futures::stream::Stream;
use lp2p_core::{Multiaddr, PeerId};

use crate::{CloseReason, Connection, ConnectionId, Direction, SwarmError};

/// Something that happened in the swarm.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SwarmEvent {
    /// A connection finished its upgrade and is in the connection table.
    ConnectionEstablished {
        /// The new connection.
        connection: Connection,
        /// Connections to this peer now, this one included.
        num_established: usize,
    },
    /// A connection left the connection table.
    ConnectionClosed {
        /// The remote peer.
        peer: PeerId,
        /// Which connection.
        id: ConnectionId,
        /// Whether we dialed it.
        direction: Direction,
        /// The remote address of the connection.
        remote_addr: Multiaddr,
        /// Why it closed.
        reason: CloseReason,
        /// Connections to this peer that remain.
        num_remaining: usize,
    },
    /// A listener is bound to this address.
    ListenAddrAdded(Multiaddr),
    /// A listener stopped.
    ListenAddrRemoved(Multiaddr),
    /// An inbound connection failed before it was established (handshake failure, limit).
    IncomingConnectionError {
        /// The remote address.
        remote_addr: Multiaddr,
        /// Why.
        error: Arc<SwarmError>,
    },
    /// A dial failed.
    DialFailed {
        /// The peer dialed, when known.
        peer: Option<PeerId>,
        /// Why (for a multi-address dial, every attempt).
        error: Arc<SwarmError>,
    },
}

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

//! Connection lifecycle events delivered without loss: what services (identify, pubsub, ping,
//! kad) build their per-peer state from.
//!
//! The general [`EventBus`](crate::EventBus) drops events for a subscriber that falls behind;
//! a service that missed `Established` would never identify that peer. A
//! [`ConnectionEvents`] subscription instead:
//! - starts with an `Established` event for every connection that exists when it is made
//!   (a snapshot), then follows every change, in order per connection;
//! - never drops an event: when a connection closes while its `Established` event is still
//!   queued (unread), both are removed, so the subscriber sees neither — it never learns of a
//!   connection that no longer exists, and every `Closed` it sees matches an `Established` it
//!   saw;
//! - is bounded by construction: at most one queued event per live connection plus one per
//!   connection whose `Established` was read and whose `Closed` is not, so at most twice the
//!   swarm's connection limits (`max_inbound + max_outbound`) events per subscriber.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};

use futures::stream::Stream;

use crate::{CloseReason, Connection, ConnectionId};

/// One change in the set of connections.
#[derive(Debug, Clone)]
pub enum ConnectionEvent {
    /// A connection is established (or existed when the subscription was made).
    Established(Connection),
    /// A connection whose `Established` event this subscriber saw has closed.
    Closed {
        /// The connection (no longer usable).
        connection: Connection,
        /// Why it closed.
        reason: CloseReason,
        /// Connections to the same peer that remain.
        num_remaining: usize,
    },
}

impl ConnectionEvent {
    /// The connection the event is about.
    pub fn connection(&self) -> &Connection {
        match self {
            ConnectionEvent::Established(c) | ConnectionEvent::Closed { connection: c, .. } => c,
        }
    }

    fn is_established(&self, id: ConnectionId) -> bool {
        matches!(self, ConnectionEvent::Established(c) if c.id() == id)
    }
}

#[derive(Debug, Default)]
struct Queue {
    events: VecDeque<ConnectionEvent>,
    waker: Option<Waker>,
    ended: bool,
}

#[derive(Debug, Default)]
struct Subscriber {
    queue: Mutex<Queue>,
}

impl Subscriber {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Delivers connection lifecycle events to every [`ConnectionEvents`] subscription.
///
/// The swarm calls it while holding its connection-table lock, so a snapshot taken by
/// [`subscribe`](LifecycleBus::subscribe) and the events that follow never overlap or miss.
#[derive(Debug, Default)]
pub(crate) struct LifecycleBus {
    subscribers: Mutex<Vec<Weak<Subscriber>>>,
}

impl LifecycleBus {
    fn lock(&self) -> MutexGuard<'_, Vec<Weak<Subscriber>>> {
        self.subscribers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A subscription that starts with `snapshot` (the live connections).
    pub(crate) fn subscribe(
        &self,
        snapshot: impl IntoIterator<Item = Connection>,
    ) -> ConnectionEvents {
        let sub = Arc::new(Subscriber::default());
        sub.lock()
            .events
            .extend(snapshot.into_iter().map(ConnectionEvent::Established));
        self.lock().push(Arc::downgrade(&sub));
        ConnectionEvents { sub }
    }

    fn each(&self, mut f: impl FnMut(&mut Queue)) {
        self.lock().retain(|weak| match weak.upgrade() {
            Some(sub) => {
                let mut q = sub.lock();
                f(&mut q);
                if let Some(w) = q.waker.take() {
                    w.wake();
                }
                true
            }
            None => false,
        });
    }

    pub(crate) fn established(&self, conn: &Connection) {
        self.each(|q| {
            q.events
                .push_back(ConnectionEvent::Established(conn.clone()));
        });
    }

    pub(crate) fn closed(&self, conn: &Connection, reason: &CloseReason, num_remaining: usize) {
        let id = conn.id();
        self.each(|q| {
            if let Some(pos) = q.events.iter().position(|e| e.is_established(id)) {
                // Never seen open: it need not be seen closed either.
                q.events.remove(pos);
            } else {
                q.events.push_back(ConnectionEvent::Closed {
                    connection: conn.clone(),
                    reason: reason.clone(),
                    num_remaining,
                });
            }
        });
    }

    /// Ends every subscription after the events already queued.
    pub(crate) fn close(&self) {
        self.each(|q| q.ended = true);
        self.lock().clear();
    }
}

/// A lossless subscription to connection lifecycle events (see the module docs): a `Stream`
/// of [`ConnectionEvent`]s that ends when the swarm closes.
#[derive(Debug)]
pub struct ConnectionEvents {
    sub: Arc<Subscriber>,
}

impl ConnectionEvents {
    /// Events queued and not read yet.
    pub fn queued(&self) -> usize {
        self.sub.lock().events.len()
    }
}

impl Stream for ConnectionEvents {
    type Item = ConnectionEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ConnectionEvent>> {
        let mut q = self.sub.lock();
        if let Some(event) = q.events.pop_front() {
            return Poll::Ready(Some(event));
        }
        if q.ended {
            return Poll::Ready(None);
        }
        q.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

//! What a subscriber holds: a stream of the topic's messages that unsubscribes on drop.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use futures::channel::mpsc;
use lp2p_core::PeerId;

use crate::types::{Message, MessageId, Topic};

/// A message delivered to a [`Subscription`], with how it reached us.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The message.
    pub message: Message,
    /// Its id (per the configured message-id function).
    pub message_id: MessageId,
    /// The peer that forwarded it to us (not necessarily its author).
    pub propagation_source: PeerId,
}

/// Who a dropped subscription tells: the pubsub service, which unsubscribes from the topic
/// once its last subscription is gone.
pub(super) trait Unsubscribe: Send + Sync {
    /// Subscription `id` to `topic` was dropped.
    fn unsubscribe(&self, topic: &Topic, id: u64);
}

/// Unsubscribes when the last subscription to a topic goes away.
pub(super) struct SubscriptionGuard {
    pub(super) service: Box<dyn Unsubscribe>,
    pub(super) topic: Topic,
    pub(super) id: u64,
}

impl Drop for SubscriptionGuard {
    fn drop(&mut self) {
        self.service.unsubscribe(&self.topic, self.id);
    }
}

/// A subscription to one topic: a [`Stream`] of the valid messages other peers publish to it
/// (our own publishes are not delivered back to us).
///
/// Dropping it unsubscribes from the topic when it was the last subscription to it. A
/// subscriber that does not keep up loses messages past
/// [`DEFAULT_SUBSCRIPTION_BUFFER`](super::DEFAULT_SUBSCRIPTION_BUFFER) (counted in
/// [`PubSub::dropped_deliveries`](super::PubSub::dropped_deliveries) and logged); the stream
/// ends when the pubsub service stops (the host closed).
pub struct Subscription {
    pub(super) rx: mpsc::Receiver<Delivery>,
    pub(super) guard: SubscriptionGuard,
}

impl Subscription {
    /// The topic.
    pub fn topic(&self) -> &Topic {
        &self.guard.topic
    }

    /// The same subscription as a stream of [`Delivery`] (message, id and forwarding peer).
    pub fn deliveries(self) -> Deliveries {
        Deliveries {
            rx: self.rx,
            guard: self.guard,
        }
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("topic", &self.guard.topic)
            .finish_non_exhaustive()
    }
}

impl Stream for Subscription {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        Pin::new(&mut self.rx)
            .poll_next(cx)
            .map(|delivery| delivery.map(|d| d.message))
    }
}

/// A [`Subscription`] yielding [`Delivery`] items; dropping it unsubscribes the same way.
pub struct Deliveries {
    rx: mpsc::Receiver<Delivery>,
    guard: SubscriptionGuard,
}

impl fmt::Debug for Deliveries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deliveries")
            .field("topic", &self.guard.topic)
            .finish_non_exhaustive()
    }
}

impl Stream for Deliveries {
    type Item = Delivery;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        Pin::new(&mut self.rx).poll_next(cx)
    }
}

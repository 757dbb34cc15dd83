//! The router trait and the two routers: floodsub and gossipsub.
//!
//! The [`PubSubCore`](crate::PubSubCore) does everything routers share (peers and their
//! subscriptions, RPC decoding, signatures, the seen cache, validation, send queues) and
//! calls its router at each decision point: who receives a message, what to do with control
//! messages, what to do on each heartbeat.

use std::time::Instant;

use lp2p_core::PeerId;

use crate::context::RouterContext;
use crate::proto;
use crate::types::{Acceptance, MessageId, RoutedMessage, Topic};

pub mod floodsub;
pub mod gossipsub;

/// A pubsub router: the routing policy plugged into [`PubSubCore`](crate::PubSubCore).
///
/// Every method gets a [`RouterContext`] through which it reads the shared state (peers,
/// subscriptions, the clock) and sends (messages, control, events).
pub trait Router {
    /// The protocol ids this router speaks, preferred first.
    fn protocols(&self) -> &'static [&'static str];

    /// Called once when the core is created.
    fn start(&mut self, ctx: &mut RouterContext<'_>);

    /// A peer connected (already in the context's peer table).
    fn add_peer(&mut self, ctx: &mut RouterContext<'_>, peer: PeerId);

    /// A peer disconnected (still in the context's peer table during the call).
    fn remove_peer(&mut self, ctx: &mut RouterContext<'_>, peer: PeerId);

    /// A peer subscribed to a topic.
    fn peer_subscribed(&mut self, ctx: &mut RouterContext<'_>, peer: PeerId, topic: &Topic);

    /// A peer unsubscribed from a topic.
    fn peer_unsubscribed(&mut self, ctx: &mut RouterContext<'_>, peer: PeerId, topic: &Topic);

    /// Whether to process an RPC from `peer` at all (false: graylisted, drop it unread).
    fn accept_from(&mut self, ctx: &mut RouterContext<'_>, peer: PeerId) -> bool;

    /// We subscribed to a topic.
    fn join(&mut self, ctx: &mut RouterContext<'_>, topic: &Topic);

    /// We unsubscribed from a topic.
    fn leave(&mut self, ctx: &mut RouterContext<'_>, topic: &Topic);

    /// Sends our own newly published message.
    fn publish(&mut self, ctx: &mut RouterContext<'_>, message: &RoutedMessage);

    /// The first copy of a message arrived from `peer` and passed the signature checks; it
    /// goes to validation next.
    fn message_received(
        &mut self,
        ctx: &mut RouterContext<'_>,
        peer: PeerId,
        message: &RoutedMessage,
    );

    /// Another copy of a message already seen arrived from `peer`.
    fn duplicate_received(
        &mut self,
        ctx: &mut RouterContext<'_>,
        peer: PeerId,
        id: &MessageId,
        topic: &Topic,
    );

    /// Validation finished for a received message (forward it on `Accept`).
    fn message_validated(
        &mut self,
        ctx: &mut RouterContext<'_>,
        message: &RoutedMessage,
        acceptance: Acceptance,
    );

    /// `peer` sent a message that failed the checks before validation (bad signature,
    /// policy violation). `topic` is known when the message named a valid one.
    fn invalid_message(&mut self, ctx: &mut RouterContext<'_>, peer: PeerId, topic: Option<&Topic>);

    /// Control messages from `peer`.
    fn handle_control(
        &mut self,
        ctx: &mut RouterContext<'_>,
        peer: PeerId,
        control: proto::ControlMessage,
    );

    /// Time passed: run whatever is due (heartbeat, score decay).
    fn handle_timeout(&mut self, ctx: &mut RouterContext<'_>);

    /// When [`handle_timeout`](Router::handle_timeout) next has work.
    fn poll_timeout(&self) -> Option<Instant>;

    /// The router's score for a peer, if it keeps scores.
    fn peer_score(&self, peer: &PeerId, now: Instant) -> Option<f64>;

    /// Sets the application-specific score (P₅) of a peer, if the router keeps scores.
    fn set_application_score(&mut self, peer: &PeerId, score: f64) -> bool;
}

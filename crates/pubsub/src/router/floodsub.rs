//! FloodSub (`/floodsub/1.0.0`): every valid new message goes to every peer subscribed to its
//! topic, except the one it came from and its author. No control messages, no scores.

use std::time::Instant;

use lp2p_core::PeerId;

use crate::context::RouterContext;
use crate::proto;
use crate::router::Router;
use crate::types::{Acceptance, MessageId, RoutedMessage, Topic};

pub use crate::protocol_ids::FLOODSUB_PROTOCOL;

/// The floodsub router.
#[derive(Debug, Default, Clone)]
pub struct FloodsubRouter {
    /// Reused list of recipients, so forwarding does not allocate per message.
    targets: Vec<PeerId>,
}

impl FloodsubRouter {
    /// A floodsub router.
    pub fn new() -> FloodsubRouter {
        FloodsubRouter::default()
    }

    fn flood(&mut self, ctx: &mut RouterContext<'_>, message: &RoutedMessage) {
        self.targets.clear();
        self.targets.extend(
            ctx.topic_peers(&message.topic)
                .filter(|p| Some(*p) != message.propagation_source && Some(*p) != message.author),
        );
        for peer in &self.targets {
            ctx.send_message(*peer, message);
        }
    }
}

impl Router for FloodsubRouter {
    fn protocols(&self) -> &'static [&'static str] {
        &[FLOODSUB_PROTOCOL]
    }

    fn start(&mut self, _ctx: &mut RouterContext<'_>) {}

    fn add_peer(&mut self, _ctx: &mut RouterContext<'_>, _peer: PeerId) {}

    fn remove_peer(&mut self, _ctx: &mut RouterContext<'_>, _peer: PeerId) {}

    fn peer_subscribed(&mut self, _ctx: &mut RouterContext<'_>, _peer: PeerId, _topic: &Topic) {}

    fn peer_unsubscribed(&mut self, _ctx: &mut RouterContext<'_>, _peer: PeerId, _topic: &Topic) {}

    fn accept_from(&mut self, _ctx: &mut RouterContext<'_>, _peer: PeerId) -> bool {
        true
    }

    fn join(&mut self, _ctx: &mut RouterContext<'_>, _topic: &Topic) {}

    fn leave(&mut self, _ctx: &mut RouterContext<'_>, _topic: &Topic) {}

    fn publish(&mut self, ctx: &mut RouterContext<'_>, message: &RoutedMessage) {
        self.flood(ctx, message);
    }

    fn message_received(
        &mut self,
        _ctx: &mut RouterContext<'_>,
        _peer: PeerId,
        _message: &RoutedMessage,
    ) {
    }

    fn duplicate_received(
        &mut self,
        _ctx: &mut RouterContext<'_>,
        _peer: PeerId,
        _id: &MessageId,
        _topic: &Topic,
    ) {
    }

    fn message_validated(
        &mut self,
        ctx: &mut RouterContext<'_>,
        message: &RoutedMessage,
        acceptance: Acceptance,
    ) {
        if acceptance == Acceptance::Accept {
            self.flood(ctx, message);
        }
    }

    fn invalid_message(
        &mut self,
        _ctx: &mut RouterContext<'_>,
        _peer: PeerId,
        _topic: Option<&Topic>,
    ) {
    }

    fn handle_control(
        &mut self,
        ctx: &mut RouterContext<'_>,
        _peer: PeerId,
        _control: proto::ControlMessage,
    ) {
        let counters = ctx.counters_mut();
        counters.control_ignored = counters.control_ignored.saturating_add(1);
    }

    fn handle_timeout(&mut self, _ctx: &mut RouterContext<'_>) {}

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn peer_score(&self, _peer: &PeerId, _now: Instant) -> Option<f64> {
        None
    }

    fn set_application_score(&mut self, _peer: &PeerId, _score: f64) -> bool {
        false
    }
}

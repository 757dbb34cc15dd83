//! The state the core shares with its router, and the context through which a router reads
//! it and sends.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::time::Instant;

use bytes::Bytes;
use lp2p_core::PeerId;
use rand::rngs::SmallRng;
use tracing::{debug, warn};

use crate::config::Config;
use crate::event::{Counters, Event};
use crate::outbox::{Limits, Outbox, Priority};
use crate::proto;
use crate::seen::SeenCache;
use crate::types::{Direction, MessageId, PeerKind, RoutedMessage, Topic};

/// One connected pubsub peer.
#[derive(Debug)]
pub(crate) struct PeerState {
    pub(crate) kind: PeerKind,
    pub(crate) direction: Direction,
    pub(crate) ip: Option<IpAddr>,
    pub(crate) topics: BTreeSet<Topic>,
    pub(crate) outbox: Outbox,
    /// Whether the peer is in the ready queue.
    pub(crate) ready: bool,
}

/// State shared by the core and its router. Peer- and topic-keyed maps are ordered maps so
/// that runs with the same seed and inputs are identical.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) local_peer_id: PeerId,
    pub(crate) peers: BTreeMap<PeerId, PeerState>,
    pub(crate) topic_peers: BTreeMap<Topic, BTreeSet<PeerId>>,
    pub(crate) subscriptions: BTreeSet<Topic>,
    pub(crate) seen: SeenCache,
    pub(crate) events: VecDeque<Event>,
    pub(crate) ready: VecDeque<PeerId>,
    pub(crate) rng: SmallRng,
    pub(crate) counters: Counters,
}

impl Shared {
    pub(crate) fn limits(&self) -> Limits {
        Limits {
            messages: self.config.max_send_queue_len,
            bytes: self.config.max_send_queue_bytes,
            control_ids: self.config.max_queued_control_ids,
        }
    }

    /// Puts `peer` in the ready queue if it is not there yet.
    pub(crate) fn mark_ready(&mut self, peer: PeerId) {
        if let Some(state) = self.peers.get_mut(&peer)
            && !state.ready
        {
            state.ready = true;
            self.ready.push_back(peer);
        }
    }
}

/// What a [`Router`](crate::Router) sees of the core: the peers, their subscriptions, our
/// subscriptions, the seen cache and the clock; and how it sends.
pub struct RouterContext<'a> {
    pub(crate) shared: &'a mut Shared,
    pub(crate) now: Instant,
}

impl RouterContext<'_> {
    /// The current time, as passed in by the caller.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Our own PeerId.
    pub fn local_peer_id(&self) -> PeerId {
        self.shared.local_peer_id
    }

    /// The shared configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Whether `peer` is a connected pubsub peer.
    pub fn is_connected(&self, peer: &PeerId) -> bool {
        self.shared.peers.contains_key(peer)
    }

    /// The protocol a connected peer speaks.
    pub fn peer_kind(&self, peer: &PeerId) -> Option<PeerKind> {
        self.shared.peers.get(peer).map(|p| p.kind)
    }

    /// Who opened the connection to a connected peer.
    pub fn peer_direction(&self, peer: &PeerId) -> Option<Direction> {
        self.shared.peers.get(peer).map(|p| p.direction)
    }

    /// A connected peer's remote IP address, when known.
    pub fn peer_ip(&self, peer: &PeerId) -> Option<IpAddr> {
        self.shared.peers.get(peer).and_then(|p| p.ip)
    }

    /// All connected pubsub peers, in PeerId order.
    pub fn peers(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.shared.peers.keys().copied()
    }

    /// The connected peers subscribed to `topic`, in PeerId order.
    pub fn topic_peers(&self, topic: &Topic) -> impl Iterator<Item = PeerId> + '_ {
        self.shared
            .topic_peers
            .get(topic)
            .into_iter()
            .flatten()
            .copied()
    }

    /// Whether a connected peer is subscribed to `topic`.
    pub fn is_peer_subscribed(&self, peer: &PeerId, topic: &Topic) -> bool {
        self.shared
            .topic_peers
            .get(topic)
            .is_some_and(|peers| peers.contains(peer))
    }

    /// Whether we are subscribed to `topic`.
    pub fn is_subscribed(&self, topic: &Topic) -> bool {
        self.shared.subscriptions.contains(topic)
    }

    /// Whether a message id is in the seen cache (including messages being validated).
    pub fn has_seen(&self, id: &MessageId) -> bool {
        self.shared.seen.contains(id, self.now)
    }

    /// Queues a message for `peer`: with publish priority when it is our own, else as a
    /// forward. Returns false when the peer's queue was full and it was dropped.
    pub fn send_message(&mut self, peer: PeerId, message: &RoutedMessage) -> bool {
        let priority = if message.is_local() {
            Priority::Publish
        } else {
            Priority::Forward
        };
        self.push_message(peer, message, priority)
    }

    fn push_message(&mut self, peer: PeerId, message: &RoutedMessage, priority: Priority) -> bool {
        let limits = self.shared.limits();
        let Some(state) = self.shared.peers.get_mut(&peer) else {
            return false;
        };
        let outcome = state
            .outbox
            .push_message(&message.id, &message.encoded, priority, limits);
        let queued = state.outbox.queued_messages();
        self.shared.mark_ready(peer);
        if outcome.dropped > 0 {
            let counters = &mut self.shared.counters;
            counters.send_queue_dropped = counters
                .send_queue_dropped
                .saturating_add(outcome.dropped as u64);
            if outcome.refused_for_memory {
                counters.send_queue_refused_for_memory =
                    counters.send_queue_refused_for_memory.saturating_add(1);
            }
            if outcome.new_overflow {
                warn!(%peer, dropped = outcome.dropped, queued, "pubsub send queue full: slow peer");
                self.shared.events.push_back(Event::SlowPeer {
                    peer,
                    dropped: outcome.dropped,
                    queued,
                });
            }
        }
        outcome.queued
    }

    /// Queues a message for `peer` as a forward (after our own publishes), whoever wrote it:
    /// for IWANT replies. Returns false when the peer's queue was full and it was dropped.
    pub fn send_forward(&mut self, peer: PeerId, message: &RoutedMessage) -> bool {
        self.push_message(peer, message, Priority::Forward)
    }

    /// Drops an unsent forward of `id` queued for `peer`.
    pub fn cancel_forward(&mut self, peer: PeerId, id: &MessageId) -> bool {
        self.shared
            .peers
            .get_mut(&peer)
            .is_some_and(|state| state.outbox.cancel_forward(id))
    }

    /// Queues a GRAFT for `topic` to `peer`.
    pub fn send_graft(&mut self, peer: PeerId, topic: &Topic) {
        if let Some(state) = self.shared.peers.get_mut(&peer) {
            state.outbox.push_graft(topic);
            self.shared.mark_ready(peer);
        }
    }

    /// Queues a PRUNE to `peer`.
    pub fn send_prune(&mut self, peer: PeerId, prune: proto::ControlPrune) {
        if let Some(state) = self.shared.peers.get_mut(&peer) {
            state.outbox.push_prune(prune);
            self.shared.mark_ready(peer);
        }
    }

    /// Queues an IHAVE to `peer`.
    pub fn send_ihave(&mut self, peer: PeerId, ihave: proto::ControlIHave) {
        let limits = self.shared.limits();
        if let Some(state) = self.shared.peers.get_mut(&peer) {
            let n = ihave.message_ids.len();
            if state.outbox.push_ihave(ihave, limits) {
                self.shared.mark_ready(peer);
            } else {
                self.count_control_dropped(peer, n);
            }
        }
    }

    /// Queues IWANT ids to `peer`.
    pub fn send_iwant(&mut self, peer: PeerId, ids: impl IntoIterator<Item = Bytes>) {
        let limits = self.shared.limits();
        if let Some(state) = self.shared.peers.get_mut(&peer) {
            let refused = state.outbox.push_iwant(ids, limits);
            self.shared.mark_ready(peer);
            self.count_control_dropped(peer, refused);
        }
    }

    /// Queues IDONTWANT ids to `peer`.
    pub fn send_idontwant(&mut self, peer: PeerId, ids: impl IntoIterator<Item = Bytes>) {
        let limits = self.shared.limits();
        if let Some(state) = self.shared.peers.get_mut(&peer) {
            let refused = state.outbox.push_idontwant(ids, limits);
            self.shared.mark_ready(peer);
            self.count_control_dropped(peer, refused);
        }
    }

    fn count_control_dropped(&mut self, peer: PeerId, n: usize) {
        if n > 0 {
            debug!(%peer, dropped = n, "pubsub control queue full");
            let counters = &mut self.shared.counters;
            counters.control_ids_dropped = counters.control_ids_dropped.saturating_add(n as u64);
        }
    }

    /// Raises an event for the core's owner.
    pub fn emit(&mut self, event: Event) {
        self.shared.events.push_back(event);
    }

    /// The core's random number generator (seeded, so simulations repeat).
    pub fn rng(&mut self) -> &mut SmallRng {
        &mut self.shared.rng
    }

    /// The core's counters, for the router to count what it drops.
    pub fn counters_mut(&mut self) -> &mut Counters {
        &mut self.shared.counters
    }
}

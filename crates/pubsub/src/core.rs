//! The sans-IO pubsub core: peers, subscriptions, RPC decoding, message checks, the seen
//! cache, validation and send queues, around a pluggable [`Router`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use lp2p_core::{Keypair, MemoryBudget, PeerId};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use tracing::{debug, trace};

use crate::codec::{self, DecodedRpc};
use crate::config::{Config, MEMORY_SERVICE};
use crate::context::{PeerState, RouterContext, Shared};
use crate::error::PubsubError;
use crate::event::{Counters, Event};
use crate::message::{self, Authenticity, InvalidMessage, KeyCache};
use crate::outbox::Outbox;
use crate::proto;
use crate::router::Router;
use crate::seen::SeenCache;
use crate::types::{Acceptance, Direction, Message, MessageId, PeerKind, RoutedMessage, Topic};
use crate::validation::{Pending, PendingValidations, SyncValidator, TopicValidation};

/// What the owner knows about a newly connected pubsub peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerConnection {
    /// The protocol negotiated on our outbound pubsub stream to the peer.
    pub kind: PeerKind,
    /// Who opened the underlying connection.
    pub direction: Direction,
    /// The peer's remote IP address (for the IP-colocation score, P₆), when known.
    pub ip: Option<IpAddr>,
}

/// The sans-IO pubsub core, generic over its [`Router`]: see the crate docs for the inputs and
/// outputs and how an async shell drives it.
pub struct PubSubCore<R: Router> {
    shared: Shared,
    router: R,
    keypair: Keypair,
    validators: BTreeMap<Topic, TopicValidation>,
    pending: PendingValidations,
    next_seqno: u64,
    keys: KeyCache,
    scratch_rpc: DecodedRpc,
    scratch_signed: Vec<u8>,
    memory: Option<Arc<dyn MemoryBudget>>,
}

impl<R: Router> PubSubCore<R> {
    /// A core for the local identity `keypair`, seeded from the system's randomness.
    pub fn new(
        keypair: Keypair,
        config: Config,
        router: R,
        now: Instant,
    ) -> Result<Self, PubsubError> {
        let seed = rand::random::<u64>();
        Self::with_seed(keypair, config, router, now, seed)
    }

    /// A core whose randomness (peer selection, the first sequence number) comes from `seed`:
    /// the same seed and inputs give the same outputs.
    pub fn with_seed(
        keypair: Keypair,
        config: Config,
        router: R,
        now: Instant,
        seed: u64,
    ) -> Result<Self, PubsubError> {
        config.validate()?;
        let mut rng = SmallRng::seed_from_u64(seed);
        // A random start keeps sequence numbers unique across restarts; the top bit stays
        // clear so the counter does not wrap in practice.
        let next_seqno = rng.random::<u64>() >> 1;
        let keys = KeyCache::new(config.public_key_cache_size);
        let shared = Shared {
            local_peer_id: keypair.public().to_peer_id(),
            seen: SeenCache::new(config.seen_ttl, config.max_seen_messages),
            config,
            peers: BTreeMap::new(),
            topic_peers: BTreeMap::new(),
            subscriptions: BTreeSet::new(),
            events: VecDeque::new(),
            ready: VecDeque::new(),
            rng,
            counters: Counters::default(),
        };
        let mut core = PubSubCore {
            shared,
            router,
            keypair,
            validators: BTreeMap::new(),
            pending: PendingValidations::default(),
            next_seqno,
            keys,
            scratch_rpc: DecodedRpc::default(),
            scratch_signed: Vec::new(),
            memory: None,
        };
        let mut ctx = RouterContext {
            shared: &mut core.shared,
            now,
        };
        core.router.start(&mut ctx);
        Ok(core)
    }

    /// Our PeerId.
    pub fn local_peer_id(&self) -> PeerId {
        self.shared.local_peer_id
    }

    /// The protocol ids to offer on pubsub streams, preferred first.
    pub fn protocols(&self) -> &'static [&'static str] {
        self.router.protocols()
    }

    /// The router.
    pub fn router(&self) -> &R {
        &self.router
    }

    /// The router, mutably (for router-specific settings such as peer records for PX).
    pub fn router_mut(&mut self) -> &mut R {
        &mut self.router
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// What was counted so far.
    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// The counters, for the shell to count what it refused before the core saw it.
    pub(crate) fn counters_mut(&mut self) -> &mut Counters {
        &mut self.shared.counters
    }

    /// The topics we are subscribed to.
    pub fn topics(&self) -> impl Iterator<Item = &Topic> + '_ {
        self.shared.subscriptions.iter()
    }

    /// The connected peers subscribed to `topic`.
    pub fn peers(&self, topic: &Topic) -> impl Iterator<Item = &PeerId> + '_ {
        self.shared.topic_peers.get(topic).into_iter().flatten()
    }

    /// All connected pubsub peers.
    pub fn connected_peers(&self) -> impl Iterator<Item = &PeerId> + '_ {
        self.shared.peers.keys()
    }

    /// The topics a connected peer is subscribed to.
    pub fn peer_topics(&self, peer: &PeerId) -> impl Iterator<Item = &Topic> + '_ {
        self.shared
            .peers
            .get(peer)
            .into_iter()
            .flat_map(|p| p.topics.iter())
    }

    /// A peer's score, if the router keeps scores.
    pub fn peer_score(&self, peer: &PeerId, now: Instant) -> Option<f64> {
        self.router.peer_score(peer, now)
    }

    /// Sets a peer's application-specific score (P₅). Returns false if the router keeps no
    /// scores.
    pub fn set_application_score(&mut self, peer: &PeerId, score: f64) -> bool {
        self.router.set_application_score(peer, score)
    }

    /// Reserves the bytes of every message queued for a peer from `budget` (a service account
    /// named [`MEMORY_SERVICE`] per peer) before queueing it; a refusal drops the message as a
    /// full queue does (counted in [`Counters::send_queue_refused_for_memory`]). Applies to
    /// peers added after the call. Without a budget only the queue caps of [`Config`] apply.
    pub fn set_memory_budget(&mut self, budget: Arc<dyn MemoryBudget>) {
        self.memory = Some(budget);
    }

    /// Bytes reserved from the memory budget for a peer's queue (always the bytes of its
    /// queued messages).
    pub fn reserved_memory(&self, peer: &PeerId) -> Option<usize> {
        self.shared
            .peers
            .get(peer)
            .map(|p| p.outbox.reserved_memory())
    }

    /// Messages and bytes queued for a peer.
    pub fn queued(&self, peer: &PeerId) -> Option<(usize, usize)> {
        self.shared
            .peers
            .get(peer)
            .map(|p| (p.outbox.queued_messages(), p.outbox.queued_bytes()))
    }

    /// Whether anything (subscriptions, control, messages) waits in the peer's send queue.
    pub fn has_pending_output(&self, peer: &PeerId) -> bool {
        self.shared
            .peers
            .get(peer)
            .is_some_and(|p| !p.outbox.is_empty())
    }

    /// Sets (or replaces) the synchronous validator of a topic.
    pub fn set_validator(
        &mut self,
        topic: impl Into<Topic>,
        validator: impl Fn(&PeerId, &Message) -> Acceptance + Send + Sync + 'static,
    ) {
        let boxed: SyncValidator = Box::new(validator);
        self.validators.entry(topic.into()).or_default().sync = Some(boxed);
    }

    /// Turns asynchronous validation on or off for a topic: when on, every message that the
    /// synchronous validator (if any) accepts is held and announced with
    /// [`Event::ValidationRequested`] until [`report_validation_result`] is called for it or
    /// the validation timeout passes.
    ///
    /// [`report_validation_result`]: PubSubCore::report_validation_result
    pub fn set_async_validation(&mut self, topic: impl Into<Topic>, enabled: bool) {
        self.validators
            .entry(topic.into())
            .or_default()
            .asynchronous = enabled;
    }

    /// Removes the validators of a topic.
    pub fn remove_validators(&mut self, topic: &Topic) {
        self.validators.remove(topic);
    }

    /// A pubsub peer connected: it will be sent our subscriptions. Returns false if it was
    /// connected already (or is ourselves).
    pub fn add_peer(&mut self, peer: PeerId, connection: PeerConnection, now: Instant) -> bool {
        if peer == self.shared.local_peer_id || self.shared.peers.contains_key(&peer) {
            return false;
        }
        let mut outbox = match &self.memory {
            Some(budget) => Outbox::with_memory(budget.service_account(MEMORY_SERVICE, &peer)),
            None => Outbox::default(),
        };
        for topic in &self.shared.subscriptions {
            outbox.push_subscription(topic, true);
        }
        self.shared.peers.insert(
            peer,
            PeerState {
                kind: connection.kind,
                direction: connection.direction,
                ip: connection.ip,
                topics: BTreeSet::new(),
                outbox,
                ready: false,
            },
        );
        if !self.shared.subscriptions.is_empty() {
            self.shared.mark_ready(peer);
        }
        debug!(%peer, kind = ?connection.kind, direction = ?connection.direction, "pubsub peer connected");
        let mut ctx = RouterContext {
            shared: &mut self.shared,
            now,
        };
        self.router.add_peer(&mut ctx, peer);
        true
    }

    /// Our outbound stream to `peer` was replaced by one on another connection (the one
    /// carrying it closed while another remains): queues our subscriptions again, as
    /// go-libp2p does on every new stream, so a peer that reset its state of us when its
    /// connection closed learns them again. Announcing a subscription twice is harmless.
    /// Returns false if the peer is not connected.
    pub fn resend_subscriptions(&mut self, peer: &PeerId) -> bool {
        let Some(state) = self.shared.peers.get_mut(peer) else {
            return false;
        };
        for topic in &self.shared.subscriptions {
            state.outbox.push_subscription(topic, true);
        }
        if !self.shared.subscriptions.is_empty() {
            self.shared.mark_ready(*peer);
        }
        true
    }

    /// A pubsub peer disconnected. Returns false if it was not connected.
    pub fn remove_peer(&mut self, peer: &PeerId, now: Instant) -> bool {
        if !self.shared.peers.contains_key(peer) {
            return false;
        }
        let mut ctx = RouterContext {
            shared: &mut self.shared,
            now,
        };
        self.router.remove_peer(&mut ctx, *peer);
        if let Some(state) = self.shared.peers.remove(peer) {
            for topic in state.topics {
                if let Some(peers) = self.shared.topic_peers.get_mut(&topic) {
                    peers.remove(peer);
                    if peers.is_empty() {
                        self.shared.topic_peers.remove(&topic);
                    }
                }
                self.shared
                    .events
                    .push_back(Event::Unsubscribed { peer: *peer, topic });
            }
        }
        debug!(%peer, "pubsub peer disconnected");
        true
    }

    /// Subscribes to a topic. Returns false if already subscribed.
    pub fn subscribe(&mut self, topic: impl Into<Topic>, now: Instant) -> bool {
        let topic = topic.into();
        if !self.shared.subscriptions.insert(topic.clone()) {
            return false;
        }
        let peers: Vec<PeerId> = self.shared.peers.keys().copied().collect();
        for peer in peers {
            if let Some(state) = self.shared.peers.get_mut(&peer) {
                state.outbox.push_subscription(&topic, true);
            }
            self.shared.mark_ready(peer);
        }
        let mut ctx = RouterContext {
            shared: &mut self.shared,
            now,
        };
        self.router.join(&mut ctx, &topic);
        true
    }

    /// Unsubscribes from a topic. Returns false if not subscribed.
    pub fn unsubscribe(&mut self, topic: &Topic, now: Instant) -> bool {
        if !self.shared.subscriptions.remove(topic) {
            return false;
        }
        let peers: Vec<PeerId> = self.shared.peers.keys().copied().collect();
        for peer in peers {
            if let Some(state) = self.shared.peers.get_mut(&peer) {
                state.outbox.push_subscription(topic, false);
            }
            self.shared.mark_ready(peer);
        }
        let mut ctx = RouterContext {
            shared: &mut self.shared,
            now,
        };
        self.router.leave(&mut ctx, topic);
        true
    }

    /// Publishes `data` to `topic`: signs it per the policy, runs the topic's synchronous
    /// validator, and queues it for the peers the router picks. Fails at once if the RPC
    /// carrying it would exceed the maximum transmit size.
    pub fn publish(
        &mut self,
        topic: impl Into<Topic>,
        data: impl Into<Bytes>,
        now: Instant,
    ) -> Result<MessageId, PubsubError> {
        let topic = topic.into();
        let data = data.into();
        let payload = data.len();
        let seqno = self.next_seqno;
        self.next_seqno = self.next_seqno.wrapping_add(1);
        let (message, encoded) = message::author_message(
            self.shared.config.authenticity,
            &self.keypair,
            &topic,
            data,
            seqno,
        )?;
        let size = codec::field_len(encoded.len());
        let max = self.shared.config.max_transmit_size;
        if size > max {
            return Err(PubsubError::MessageTooLarge {
                topic,
                size,
                max,
                payload,
            });
        }
        let id = (self.shared.config.message_id_fn)(&message);
        if self.shared.seen.contains(&id, now) {
            return Err(PubsubError::Duplicate);
        }
        if let Some(validator) = self.validators.get(&topic).and_then(|v| v.sync.as_ref())
            && validator(&self.shared.local_peer_id, &message) != Acceptance::Accept
        {
            return Err(PubsubError::PublishRejected(topic));
        }
        self.shared.seen.insert(id.clone(), now);
        self.shared.counters.messages_published =
            self.shared.counters.messages_published.saturating_add(1);
        let routed = RoutedMessage {
            id: id.clone(),
            topic,
            author: message.source,
            propagation_source: None,
            encoded,
        };
        let mut ctx = RouterContext {
            shared: &mut self.shared,
            now,
        };
        self.router.publish(&mut ctx, &routed);
        Ok(id)
    }

    /// An RPC body (one LP frame, prefix removed) from `peer`. Errors mean the RPC was dropped
    /// as a whole (too large, malformed, unknown peer); the owner may reset the stream.
    /// Messages inside that fail checks are dropped (and penalised) without an error.
    // `body` is taken by value: messages are zero-copy slices of it, kept past this call.
    #[allow(clippy::needless_pass_by_value)]
    pub fn handle_rpc(
        &mut self,
        peer: PeerId,
        body: Bytes,
        now: Instant,
    ) -> Result<(), PubsubError> {
        let counters = &mut self.shared.counters;
        counters.rpcs_received = counters.rpcs_received.saturating_add(1);
        let max = self.shared.config.max_transmit_size;
        if body.len() > max {
            counters.rpcs_too_large = counters.rpcs_too_large.saturating_add(1);
            debug!(%peer, size = body.len(), max, "pubsub RPC over the size limit");
            return Err(PubsubError::RpcTooLarge {
                peer,
                size: body.len(),
                max,
            });
        }
        if !self.shared.peers.contains_key(&peer) {
            return Err(PubsubError::UnknownPeer(peer));
        }
        let mut ctx = RouterContext {
            shared: &mut self.shared,
            now,
        };
        if !self.router.accept_from(&mut ctx, peer) {
            let counters = &mut self.shared.counters;
            counters.rpcs_graylisted = counters.rpcs_graylisted.saturating_add(1);
            trace!(%peer, "pubsub RPC from a graylisted peer dropped");
            return Ok(());
        }
        let mut rpc = std::mem::take(&mut self.scratch_rpc);
        if let Err(err) = codec::decode_rpc(&body, &mut rpc) {
            rpc.clear();
            self.scratch_rpc = rpc;
            let counters = &mut self.shared.counters;
            counters.rpcs_malformed = counters.rpcs_malformed.saturating_add(1);
            debug!(%peer, %err, "malformed pubsub RPC");
            return Err(PubsubError::MalformedRpc {
                peer,
                reason: err.to_string(),
            });
        }
        for sub in rpc.subscriptions.drain(..) {
            self.handle_subscription(peer, sub, now);
        }
        for (raw, message) in rpc.messages.drain(..) {
            self.handle_message(peer, raw, &message, body.len(), now);
        }
        if let Some(control) = rpc.control.take() {
            self.handle_control(peer, control, now);
        }
        self.scratch_rpc = rpc;
        Ok(())
    }

    fn handle_subscription(&mut self, peer: PeerId, sub: proto::rpc::SubOpts, now: Instant) {
        let Some(name) = sub.topic_id else {
            self.count_ignored_subscription();
            return;
        };
        let max_topics = self.shared.config.max_topics_per_peer;
        let max_topic_len = self.shared.config.max_topic_len;
        let Some(state) = self.shared.peers.get_mut(&peer) else {
            return;
        };
        if sub.subscribe.unwrap_or(false) {
            if state.topics.contains(name.as_str()) {
                return;
            }
            if state.topics.len() >= max_topics || name.len() > max_topic_len {
                debug!(%peer, topics = state.topics.len(), len = name.len(), "pubsub subscription ignored: over the per-peer topic limits");
                self.count_ignored_subscription();
                return;
            }
            // Share one allocation per topic name.
            let topic = self
                .shared
                .topic_peers
                .get_key_value(name.as_str())
                .map(|(t, _)| t.clone())
                .or_else(|| self.shared.subscriptions.get(name.as_str()).cloned())
                .unwrap_or_else(|| Topic::from(name));
            state.topics.insert(topic.clone());
            self.shared
                .topic_peers
                .entry(topic.clone())
                .or_default()
                .insert(peer);
            self.shared.events.push_back(Event::Subscribed {
                peer,
                topic: topic.clone(),
            });
            let mut ctx = RouterContext {
                shared: &mut self.shared,
                now,
            };
            self.router.peer_subscribed(&mut ctx, peer, &topic);
        } else {
            let Some(topic) = state.topics.take(name.as_str()) else {
                return;
            };
            if let Some(peers) = self.shared.topic_peers.get_mut(&topic) {
                peers.remove(&peer);
                if peers.is_empty() {
                    self.shared.topic_peers.remove(&topic);
                }
            }
            self.shared.events.push_back(Event::Unsubscribed {
                peer,
                topic: topic.clone(),
            });
            let mut ctx = RouterContext {
                shared: &mut self.shared,
                now,
            };
            self.router.peer_unsubscribed(&mut ctx, peer, &topic);
        }
    }

    fn count_ignored_subscription(&mut self) {
        let counters = &mut self.shared.counters;
        counters.subscriptions_ignored = counters.subscriptions_ignored.saturating_add(1);
    }

    /// `rpc_len`: the length of the RPC body `raw` (and the decoded fields) are slices of.
    fn handle_message(
        &mut self,
        peer: PeerId,
        raw: Bytes,
        decoded: &proto::Message,
        rpc_len: usize,
        now: Instant,
    ) {
        let counters = &mut self.shared.counters;
        counters.messages_received = counters.messages_received.saturating_add(1);
        let Some(Ok(name)) = decoded.topic.as_deref().map(std::str::from_utf8) else {
            self.invalid_message(peer, None, InvalidMessage::BadTopic, now);
            return;
        };
        let Some(topic) = self.shared.subscriptions.get(name).cloned() else {
            let counters = &mut self.shared.counters;
            counters.messages_unsubscribed_topic =
                counters.messages_unsubscribed_topic.saturating_add(1);
            trace!(%peer, topic = name, "pubsub message for a topic we do not subscribe to");
            return;
        };
        let authenticity = self.shared.config.authenticity;
        let (source, sequence_number) = match message::check_auth_fields(authenticity, decoded) {
            Ok(fields) => fields,
            Err(reason) => {
                self.invalid_message(peer, Some(&topic), reason, now);
                return;
            }
        };
        let message = Message {
            source,
            data: decoded.data.clone().unwrap_or_default(),
            sequence_number,
            topic: topic.clone(),
        };
        let id = (self.shared.config.message_id_fn)(&message);
        if self.shared.seen.contains(&id, now) {
            let counters = &mut self.shared.counters;
            counters.messages_duplicate = counters.messages_duplicate.saturating_add(1);
            let mut ctx = RouterContext {
                shared: &mut self.shared,
                now,
            };
            self.router.duplicate_received(&mut ctx, peer, &id, &topic);
            return;
        }
        if source == Some(self.shared.local_peer_id) {
            self.invalid_message(peer, Some(&topic), InvalidMessage::SelfOrigin, now);
            return;
        }
        if authenticity == Authenticity::StrictSign
            && let Some(author) = &source
            && let Err(reason) = message::verify_signature(
                &raw,
                decoded,
                author,
                &mut self.keys,
                &mut self.scratch_signed,
            )
        {
            self.invalid_message(peer, Some(&topic), reason, now);
            return;
        }
        self.shared.seen.insert(id.clone(), now);
        let (raw, message) = unpinned(raw, message, rpc_len);
        let routed = RoutedMessage {
            id,
            topic,
            author: source,
            propagation_source: Some(peer),
            encoded: raw,
        };
        let mut ctx = RouterContext {
            shared: &mut self.shared,
            now,
        };
        self.router.message_received(&mut ctx, peer, &routed);

        let validation = self.validators.get(&routed.topic);
        let acceptance = validation
            .and_then(|v| v.sync.as_ref())
            .map_or(Acceptance::Accept, |validate| validate(&peer, &message));
        if acceptance == Acceptance::Accept && validation.is_some_and(|v| v.asynchronous) {
            if self.pending.len() >= self.shared.config.max_pending_validations {
                let counters = &mut self.shared.counters;
                counters.validation_queue_full = counters.validation_queue_full.saturating_add(1);
                debug!(%peer, id = %routed.id, "pubsub validation queue full: message ignored");
                self.finish_validation(&routed, message, Acceptance::Ignore, now);
                return;
            }
            self.shared.events.push_back(Event::ValidationRequested {
                propagation_source: peer,
                message_id: routed.id.clone(),
                message: message.clone(),
            });
            let timeout = self.shared.config.validation_timeout;
            self.pending
                .insert(Pending { routed, message }, now, timeout);
            return;
        }
        self.finish_validation(&routed, message, acceptance, now);
    }

    fn invalid_message(
        &mut self,
        peer: PeerId,
        topic: Option<&Topic>,
        reason: InvalidMessage,
        now: Instant,
    ) {
        let counters = &mut self.shared.counters;
        counters.messages_invalid = counters.messages_invalid.saturating_add(1);
        debug!(%peer, %reason, "invalid pubsub message dropped");
        let mut ctx = RouterContext {
            shared: &mut self.shared,
            now,
        };
        self.router.invalid_message(&mut ctx, peer, topic);
    }

    fn finish_validation(
        &mut self,
        routed: &RoutedMessage,
        message: Message,
        acceptance: Acceptance,
        now: Instant,
    ) {
        let counters = &mut self.shared.counters;
        match acceptance {
            Acceptance::Accept => {
                counters.messages_accepted = counters.messages_accepted.saturating_add(1);
                if let Some(source) = routed.propagation_source
                    && self.shared.subscriptions.contains(&routed.topic)
                {
                    self.shared.events.push_back(Event::Message {
                        propagation_source: source,
                        message_id: routed.id.clone(),
                        message,
                    });
                }
            }
            Acceptance::Reject => {
                counters.messages_rejected = counters.messages_rejected.saturating_add(1);
                debug!(source = ?routed.propagation_source, id = %routed.id, "pubsub message rejected by validation");
            }
            Acceptance::Ignore => {
                counters.messages_ignored = counters.messages_ignored.saturating_add(1);
            }
        }
        let mut ctx = RouterContext {
            shared: &mut self.shared,
            now,
        };
        self.router.message_validated(&mut ctx, routed, acceptance);
    }

    /// The result of an asynchronous validation. Returns false if the message is not waiting
    /// (unknown id, already reported, or timed out).
    pub fn report_validation_result(
        &mut self,
        id: &MessageId,
        acceptance: Acceptance,
        now: Instant,
    ) -> bool {
        let Some(pending) = self.pending.remove(id) else {
            return false;
        };
        self.finish_validation(&pending.routed, pending.message, acceptance, now);
        true
    }

    fn handle_control(&mut self, peer: PeerId, control: proto::ControlMessage, now: Instant) {
        let gossip = self
            .shared
            .peers
            .get(&peer)
            .is_some_and(|p| p.kind.is_gossipsub());
        if !gossip {
            let counters = &mut self.shared.counters;
            counters.control_ignored = counters.control_ignored.saturating_add(1);
            return;
        }
        let mut ctx = RouterContext {
            shared: &mut self.shared,
            now,
        };
        self.router.handle_control(&mut ctx, peer, control);
    }

    /// Runs what is due at `now`: validation timeouts, cache expiry, the router's heartbeat.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(pending) = self.pending.pop_expired(now) {
            let counters = &mut self.shared.counters;
            counters.validation_timeouts = counters.validation_timeouts.saturating_add(1);
            debug!(id = %pending.routed.id, "pubsub validation timed out: message ignored");
            self.finish_validation(&pending.routed, pending.message, Acceptance::Ignore, now);
        }
        self.shared.seen.expire(now);
        let mut ctx = RouterContext {
            shared: &mut self.shared,
            now,
        };
        self.router.handle_timeout(&mut ctx);
    }

    /// When [`handle_timeout`](PubSubCore::handle_timeout) next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.pending.next_deadline(), self.router.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.shared.events.pop_front()
    }

    /// A peer that has output waiting: call [`poll_transmit`](PubSubCore::poll_transmit) for
    /// it. Each peer is reported once until more output is queued for it after this call.
    pub fn poll_ready_peer(&mut self) -> Option<PeerId> {
        while let Some(peer) = self.shared.ready.pop_front() {
            if let Some(state) = self.shared.peers.get_mut(&peer) {
                state.ready = false;
                if !state.outbox.is_empty() {
                    return Some(peer);
                }
            }
        }
        None
    }

    /// Appends the peer's pending output to `out` as LP-framed RPCs (control first, then our
    /// publishes, then forwards), coalescing up to about `Config::transmit_batch_bytes`.
    /// Returns false when there was nothing to send.
    pub fn poll_transmit(&mut self, peer: &PeerId, out: &mut Vec<u8>) -> bool {
        let max = self.shared.config.max_transmit_size;
        let budget = self.shared.config.transmit_batch_bytes;
        let Some(state) = self.shared.peers.get_mut(peer) else {
            return false;
        };
        let before = out.len();
        let dropped = state.outbox.write(max, budget, out);
        if dropped > 0 {
            let counters = &mut self.shared.counters;
            counters.oversized_dropped = counters.oversized_dropped.saturating_add(dropped as u64);
        }
        out.len() > before
    }
}

/// A message kept beyond its RPC (message cache, send queues, validation, the application)
/// holds slices of the RPC's body, and so the whole body. When the message is less than half
/// of that body (the RPC carried other messages, duplicates included, or large control
/// parts), it gets its own copy, so what it pins is its own size. A gossipsub node relaying
/// 63 KiB messages otherwise kept, through batched RPCs, more than twice its message cache in
/// memory.
fn unpinned(raw: Bytes, message: Message, rpc_len: usize) -> (Bytes, Message) {
    if raw.len().saturating_mul(2) >= rpc_len {
        return (raw, message);
    }
    let own = Bytes::copy_from_slice(&raw);
    // The data is a slice of `raw` (decoded from it); find it again in the copy.
    let start = (message.data.as_ptr() as usize).wrapping_sub(raw.as_ptr() as usize);
    let data = start
        .checked_add(message.data.len())
        .filter(|end| start <= raw.len() && *end <= raw.len())
        .map_or_else(
            || Bytes::copy_from_slice(&message.data),
            |end| own.slice(start..end),
        );
    (own, Message { data, ..message })
}

#[cfg(test)]
mod unpinned_tests {
    use super::*;

    fn message(data: Bytes) -> Message {
        Message {
            source: None,
            data,
            sequence_number: Some(1),
            topic: Topic::new("t"),
        }
    }

    #[test]
    fn a_message_that_is_most_of_its_rpc_keeps_the_rpc_buffer() {
        let rpc = Bytes::from(vec![1u8; 1000]);
        let raw = rpc.slice(10..990);
        let (kept, message) = unpinned(raw.clone(), message(raw.slice(20..900)), rpc.len());
        assert_eq!(kept.as_ptr(), raw.as_ptr());
        assert_eq!(message.data.as_ptr(), raw.slice(20..).as_ptr());
    }

    #[test]
    fn a_small_part_of_a_large_rpc_gets_its_own_copy_with_its_data_inside() {
        let rpc: Bytes = (0..100_000u32)
            .map(|i| i.to_le_bytes()[0])
            .collect::<Vec<_>>()
            .into();
        let raw = rpc.slice(50_000..60_000);
        let data = raw.slice(30..9_000);
        let (kept, message) = unpinned(raw.clone(), message(data.clone()), rpc.len());
        assert_eq!(kept, raw);
        assert_eq!(message.data, data);
        let range = rpc.as_ptr_range();
        assert!(!range.contains(&kept.as_ptr()));
        // The data is a slice of the copy, not a second one.
        assert_eq!(message.data.as_ptr(), kept.slice(30..).as_ptr());
    }
}

//! GossipSub (`/meshsub/1.2.0`, `/meshsub/1.1.0`, `/meshsub/1.0.0`): a mesh of `D` peers
//! per topic carries full messages, gossip (IHAVE/IWANT) repairs what the mesh misses, and
//! the v1.1 peer score and v1.2 IDONTWANT harden and slim it. Features are gated per peer on
//! the protocol version it negotiated.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use lp2p_core::PeerId;
use rand::seq::SliceRandom;
use tracing::{debug, warn};

use crate::context::RouterContext;
use crate::error::PubsubError;
use crate::event::Event;
use crate::proto;
use crate::router::Router;
use crate::score::{PeerScore, PeerScoreThresholds};
use crate::types::{Acceptance, MessageId, PeerKind, RoutedMessage, Topic};

mod config;
mod control;
mod heartbeat;
mod mcache;
mod px;
mod tracking;

pub use config::{DEFAULT_MAX_PX_ADDRESSES, GossipsubConfig};

use mcache::MessageCache;
use tracking::{Backoffs, DontSend, Promises};

pub use crate::protocol_ids::{
    GOSSIPSUB_1_0_PROTOCOL, GOSSIPSUB_1_1_PROTOCOL, GOSSIPSUB_1_2_PROTOCOL,
};

const PROTOCOLS_WITH_FLOODSUB: &[&str] = &[
    GOSSIPSUB_1_2_PROTOCOL,
    GOSSIPSUB_1_1_PROTOCOL,
    GOSSIPSUB_1_0_PROTOCOL,
    crate::protocol_ids::FLOODSUB_PROTOCOL,
];
const PROTOCOLS: &[&str] = &[
    GOSSIPSUB_1_2_PROTOCOL,
    GOSSIPSUB_1_1_PROTOCOL,
    GOSSIPSUB_1_0_PROTOCOL,
];

/// The gossipsub router.
pub struct GossipsubRouter {
    config: GossipsubConfig,
    thresholds: PeerScoreThresholds,
    score: Option<PeerScore>,
    mesh: BTreeMap<Topic, BTreeSet<PeerId>>,
    fanout: BTreeMap<Topic, BTreeSet<PeerId>>,
    fanout_last_pub: BTreeMap<Topic, Instant>,
    backoff: Backoffs,
    mcache: MessageCache,
    /// IHAVE entries received from each peer this heartbeat.
    peer_have: HashMap<PeerId, usize>,
    /// Message ids asked from each peer this heartbeat.
    iasked: HashMap<PeerId, usize>,
    /// IWANT ids answered for each peer this heartbeat.
    iwant_replied: HashMap<PeerId, usize>,
    promises: Promises,
    dont_send: HashMap<PeerId, DontSend>,
    /// Peers we raised a graylist event for (until they recover).
    graylisted: HashSet<PeerId>,
    /// Signed peer records to offer in peer exchange, from the owner's peer store.
    peer_records: HashMap<PeerId, Bytes>,
    heartbeat_ticks: u64,
    next_heartbeat: Option<Instant>,
    /// Reused list of recipients, so forwarding does not allocate per message.
    targets: Vec<PeerId>,
}

impl GossipsubRouter {
    /// A gossipsub router with this configuration (checked).
    pub fn new(config: GossipsubConfig) -> Result<GossipsubRouter, PubsubError> {
        config.validate()?;
        let (score, thresholds) = match &config.score {
            Some((params, thresholds)) => (
                Some(PeerScore::new(params.clone(), config.max_retained_scores)),
                thresholds.clone(),
            ),
            // Without scoring every score is 0, so every threshold is 0 too (PX is accepted,
            // opportunistic grafting never triggers).
            None => (
                None,
                PeerScoreThresholds {
                    gossip_threshold: 0.0,
                    publish_threshold: 0.0,
                    graylist_threshold: 0.0,
                    accept_px_threshold: 0.0,
                    opportunistic_graft_threshold: 0.0,
                },
            ),
        };
        Ok(GossipsubRouter {
            mcache: MessageCache::new(config.history_length, config.history_gossip),
            config,
            thresholds,
            score,
            mesh: BTreeMap::new(),
            fanout: BTreeMap::new(),
            fanout_last_pub: BTreeMap::new(),
            backoff: Backoffs::default(),
            peer_have: HashMap::new(),
            iasked: HashMap::new(),
            iwant_replied: HashMap::new(),
            promises: Promises::default(),
            dont_send: HashMap::new(),
            graylisted: HashSet::new(),
            peer_records: HashMap::new(),
            heartbeat_ticks: 0,
            next_heartbeat: None,
            targets: Vec::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &GossipsubConfig {
        &self.config
    }

    /// Our mesh peers for a topic.
    pub fn mesh_peers(&self, topic: &Topic) -> impl Iterator<Item = &PeerId> + '_ {
        self.mesh.get(topic).into_iter().flatten()
    }

    /// Our fanout peers for a topic we publish to without subscribing.
    pub fn fanout_peers(&self, topic: &Topic) -> impl Iterator<Item = &PeerId> + '_ {
        self.fanout.get(topic).into_iter().flatten()
    }

    /// The topics we have a mesh for.
    pub fn mesh_topics(&self) -> impl Iterator<Item = &Topic> + '_ {
        self.mesh.keys()
    }

    /// Heartbeats run so far.
    pub fn heartbeat_ticks(&self) -> u64 {
        self.heartbeat_ticks
    }

    /// The backoff expiry for a peer in a topic, if one is in place.
    pub fn backoff_expiry(&self, topic: &Topic, peer: &PeerId) -> Option<Instant> {
        self.backoff.expiry(topic, peer)
    }

    /// Messages in the message cache.
    pub fn cached_messages(&self) -> usize {
        self.mcache.len()
    }

    /// Stores a peer's signed peer record (an envelope), offered when we name it in peer
    /// exchange.
    pub fn set_peer_record(&mut self, peer: PeerId, envelope: Bytes) {
        self.peer_records.insert(peer, envelope);
    }

    fn score_of(&self, peer: &PeerId, now: Instant) -> f64 {
        self.score.as_ref().map_or(0.0, |s| s.score(peer, now))
    }

    fn is_explicit(&self, peer: &PeerId) -> bool {
        self.config.explicit_peers.contains(peer)
    }

    fn backoff_slack(&self) -> Duration {
        self.config
            .heartbeat_interval
            .saturating_mul(self.config.backoff_slack_heartbeats)
    }

    /// Whether `peer` may be grafted for `topic` now (ignoring the score).
    fn graftable(&self, ctx: &RouterContext<'_>, topic: &Topic, peer: &PeerId) -> bool {
        !self.is_explicit(peer)
            && ctx.peer_kind(peer).is_some_and(PeerKind::is_gossipsub)
            && !self
                .backoff
                .blocks_graft(topic, peer, ctx.now(), self.backoff_slack())
    }

    fn add_backoff(&mut self, topic: &Topic, peer: PeerId, now: Instant, duration: Duration) {
        let until = now.checked_add(duration).unwrap_or(now);
        self.backoff.add(topic, peer, until);
    }

    /// Records a new mesh member (the caller inserts it and sends the GRAFT if needed).
    fn on_grafted(&mut self, ctx: &mut RouterContext<'_>, topic: &Topic, peer: PeerId) {
        if let Some(score) = &mut self.score {
            score.graft(&peer, topic, ctx.now());
        }
        debug!(%peer, %topic, "gossipsub mesh: grafted");
        ctx.emit(Event::Grafted {
            peer,
            topic: topic.clone(),
        });
    }

    /// Records a mesh member leaving (the caller removes it).
    fn on_pruned(&mut self, ctx: &mut RouterContext<'_>, topic: &Topic, peer: PeerId) {
        if let Some(score) = &mut self.score {
            score.prune(&peer, topic, ctx.now());
        }
        debug!(%peer, %topic, "gossipsub mesh: pruned");
        ctx.emit(Event::Pruned {
            peer,
            topic: topic.clone(),
        });
    }

    /// A PRUNE for `peer`: backoff and PX only for peers that understand them (v1.1+).
    fn make_prune(
        &mut self,
        ctx: &mut RouterContext<'_>,
        peer: PeerId,
        topic: &Topic,
        do_px: bool,
        unsubscribe: bool,
    ) -> proto::ControlPrune {
        let mut prune = proto::ControlPrune {
            topic_id: Some(topic.as_str().to_string()),
            peers: Vec::new(),
            backoff: None,
        };
        if !ctx
            .peer_kind(&peer)
            .is_some_and(PeerKind::supports_px_and_backoff)
        {
            return prune;
        }
        let backoff = if unsubscribe {
            self.config.unsubscribe_backoff
        } else {
            self.config.prune_backoff
        };
        prune.backoff = Some(backoff.as_secs());
        if do_px && self.config.do_px {
            let now = ctx.now();
            let score = self.score.as_ref();
            let candidates = select_peers(ctx, topic, self.config.prune_peers, |_, p| {
                *p != peer && score.map_or(0.0, |s| s.score(p, now)) >= 0.0
            });
            prune.peers = candidates
                .into_iter()
                .map(|p| proto::PeerInfo {
                    peer_id: Some(Bytes::from(p.to_bytes())),
                    signed_peer_record: self.peer_records.get(&p).cloned(),
                })
                .collect();
        }
        prune
    }

    /// Sends a message we accepted on to the mesh (and floodsub and explicit peers).
    fn forward(&mut self, ctx: &mut RouterContext<'_>, message: &RoutedMessage) {
        let now = ctx.now();
        self.targets.clear();
        for peer in &self.config.explicit_peers {
            if ctx.is_peer_subscribed(peer, &message.topic) {
                self.targets.push(*peer);
            }
        }
        let publish_threshold = self.thresholds.publish_threshold;
        let score = self.score.as_ref();
        self.targets
            .extend(ctx.topic_peers(&message.topic).filter(|p| {
                ctx.peer_kind(p) == Some(PeerKind::Floodsub)
                    && score.map_or(0.0, |s| s.score(p, now)) >= publish_threshold
            }));
        if let Some(mesh) = self.mesh.get(&message.topic) {
            self.targets.extend(mesh.iter().copied());
        }
        // An explicit peer may also be a floodsub peer: send once.
        self.targets.sort_unstable();
        self.targets.dedup();
        for peer in &self.targets {
            if Some(*peer) == message.propagation_source || Some(*peer) == message.author {
                continue;
            }
            if self
                .dont_send
                .get(peer)
                .is_some_and(|d| d.ids.contains_key(&message.id))
            {
                continue;
            }
            ctx.send_message(*peer, message);
        }
    }

    /// Sends our own message: to every topic peer above the publish threshold with flood
    /// publishing, else to the mesh (or fanout) plus floodsub and explicit peers.
    fn publish_own(&mut self, ctx: &mut RouterContext<'_>, message: &RoutedMessage) {
        let now = ctx.now();
        let topic = &message.topic;
        let publish_threshold = self.thresholds.publish_threshold;
        self.targets.clear();
        if self.config.flood_publish {
            let score = self.score.as_ref();
            let explicit = &self.config.explicit_peers;
            self.targets.extend(ctx.topic_peers(topic).filter(|p| {
                explicit.contains(p) || score.map_or(0.0, |s| s.score(p, now)) >= publish_threshold
            }));
        } else {
            for peer in &self.config.explicit_peers {
                if ctx.is_peer_subscribed(peer, topic) {
                    self.targets.push(*peer);
                }
            }
            let score = self.score.as_ref();
            self.targets.extend(ctx.topic_peers(topic).filter(|p| {
                ctx.peer_kind(p) == Some(PeerKind::Floodsub)
                    && score.map_or(0.0, |s| s.score(p, now)) >= publish_threshold
            }));
            if let Some(mesh) = self.mesh.get(topic) {
                self.targets.extend(mesh.iter().copied());
            } else {
                let empty = self.fanout.get(topic).is_none_or(BTreeSet::is_empty);
                if empty {
                    let explicit = &self.config.explicit_peers;
                    let picked = select_peers(ctx, topic, self.config.mesh_n, |_, p| {
                        !explicit.contains(p)
                            && score.map_or(0.0, |s| s.score(p, now)) >= publish_threshold
                    });
                    if !picked.is_empty() {
                        self.fanout
                            .insert(topic.clone(), picked.into_iter().collect());
                    }
                }
                if let Some(fanout) = self.fanout.get(topic) {
                    self.targets.extend(fanout.iter().copied());
                }
                self.fanout_last_pub.insert(topic.clone(), now);
            }
        }
        self.targets.sort_unstable();
        self.targets.dedup();
        for peer in &self.targets {
            ctx.send_message(*peer, message);
        }
    }
}

/// Up to `count` random gossipsub peers of `topic` that pass `filter`.
fn select_peers(
    ctx: &mut RouterContext<'_>,
    topic: &Topic,
    count: usize,
    mut filter: impl FnMut(&RouterContext<'_>, &PeerId) -> bool,
) -> Vec<PeerId> {
    let view: &RouterContext<'_> = ctx;
    let mut peers: Vec<PeerId> = view
        .topic_peers(topic)
        .filter(|p| view.peer_kind(p).is_some_and(PeerKind::is_gossipsub) && filter(view, p))
        .collect();
    peers.shuffle(ctx.rng());
    peers.truncate(count);
    peers
}

impl Router for GossipsubRouter {
    fn protocols(&self) -> &'static [&'static str] {
        if self.config.support_floodsub {
            PROTOCOLS_WITH_FLOODSUB
        } else {
            PROTOCOLS
        }
    }

    fn start(&mut self, ctx: &mut RouterContext<'_>) {
        let now = ctx.now();
        self.next_heartbeat = now.checked_add(self.config.heartbeat_initial_delay);
        let (ttl, max) = (ctx.config().seen_ttl, ctx.config().max_seen_messages);
        if let Some(score) = &mut self.score {
            score.start(now);
            score.set_delivery_limits(ttl, max);
        }
    }

    fn add_peer(&mut self, ctx: &mut RouterContext<'_>, peer: PeerId) {
        let ip = ctx.peer_ip(&peer);
        if let Some(score) = &mut self.score {
            score.add_peer(peer, ip, ctx.now());
        }
    }

    fn remove_peer(&mut self, ctx: &mut RouterContext<'_>, peer: PeerId) {
        let topics: Vec<Topic> = self
            .mesh
            .iter()
            .filter(|(_, peers)| peers.contains(&peer))
            .map(|(topic, _)| topic.clone())
            .collect();
        for topic in topics {
            if let Some(peers) = self.mesh.get_mut(&topic) {
                peers.remove(&peer);
            }
            // The score applies the mesh-failure penalty itself when the peer goes.
            ctx.emit(Event::Pruned { peer, topic });
        }
        for peers in self.fanout.values_mut() {
            peers.remove(&peer);
        }
        if let Some(score) = &mut self.score {
            score.remove_peer(&peer, ctx.now());
        }
        self.peer_have.remove(&peer);
        self.iasked.remove(&peer);
        self.iwant_replied.remove(&peer);
        self.dont_send.remove(&peer);
        self.graylisted.remove(&peer);
    }

    fn peer_subscribed(&mut self, ctx: &mut RouterContext<'_>, peer: PeerId, topic: &Topic) {
        // Graft eagerly into a mesh that is short of peers instead of waiting a heartbeat.
        let Some(mesh) = self.mesh.get(topic) else {
            return;
        };
        if mesh.len() >= self.config.mesh_n_low
            || mesh.contains(&peer)
            || !self.graftable(ctx, topic, &peer)
            || self.score_of(&peer, ctx.now()) < 0.0
        {
            return;
        }
        if let Some(mesh) = self.mesh.get_mut(topic) {
            mesh.insert(peer);
        }
        self.on_grafted(ctx, topic, peer);
        ctx.send_graft(peer, topic);
    }

    fn peer_unsubscribed(&mut self, ctx: &mut RouterContext<'_>, peer: PeerId, topic: &Topic) {
        if self
            .mesh
            .get_mut(topic)
            .is_some_and(|mesh| mesh.remove(&peer))
        {
            self.on_pruned(ctx, topic, peer);
        }
        if let Some(fanout) = self.fanout.get_mut(topic) {
            fanout.remove(&peer);
        }
    }

    fn accept_from(&mut self, ctx: &mut RouterContext<'_>, peer: PeerId) -> bool {
        if self.is_explicit(&peer) {
            return true;
        }
        let score = self.score_of(&peer, ctx.now());
        if score < self.thresholds.graylist_threshold {
            if self.graylisted.insert(peer) {
                warn!(%peer, score, "gossipsub: peer graylisted, ignoring its RPCs");
                ctx.emit(Event::Graylisted { peer, score });
            }
            return false;
        }
        true
    }

    fn join(&mut self, ctx: &mut RouterContext<'_>, topic: &Topic) {
        if self.mesh.contains_key(topic) {
            return;
        }
        let now = ctx.now();
        let mut peers = self.fanout.remove(topic).unwrap_or_default();
        self.fanout_last_pub.remove(topic);
        let view: &RouterContext<'_> = ctx;
        peers.retain(|p| self.graftable(view, topic, p) && self.score_of(p, now) >= 0.0);
        if peers.len() < self.config.mesh_n {
            let need = self.config.mesh_n.saturating_sub(peers.len());
            let more = select_peers(ctx, topic, need, |view, p| {
                !peers.contains(p) && self.graftable(view, topic, p) && self.score_of(p, now) >= 0.0
            });
            peers.extend(more);
        }
        for peer in &peers {
            self.on_grafted(ctx, topic, *peer);
            ctx.send_graft(*peer, topic);
        }
        self.mesh.insert(topic.clone(), peers);
    }

    fn leave(&mut self, ctx: &mut RouterContext<'_>, topic: &Topic) {
        let Some(peers) = self.mesh.remove(topic) else {
            return;
        };
        let now = ctx.now();
        for peer in peers {
            self.on_pruned(ctx, topic, peer);
            let prune = self.make_prune(ctx, peer, topic, true, true);
            ctx.send_prune(peer, prune);
            self.add_backoff(topic, peer, now, self.config.unsubscribe_backoff);
        }
    }

    fn publish(&mut self, ctx: &mut RouterContext<'_>, message: &RoutedMessage) {
        self.mcache.put(message);
        self.publish_own(ctx, message);
    }

    fn message_received(
        &mut self,
        ctx: &mut RouterContext<'_>,
        peer: PeerId,
        message: &RoutedMessage,
    ) {
        if let Some(score) = &mut self.score {
            score.validate_message(&message.id, ctx.now());
        }
        self.promises.delivered(&message.id);
        // v1.2: tell the mesh we have it, at once, so they do not send it too.
        if message.encoded.len() < self.config.idontwant_message_size_threshold {
            return;
        }
        let Some(mesh) = self.mesh.get(&message.topic) else {
            return;
        };
        for mesh_peer in mesh {
            if *mesh_peer == peer || Some(*mesh_peer) == message.author {
                continue;
            }
            if ctx
                .peer_kind(mesh_peer)
                .is_some_and(PeerKind::supports_idontwant)
            {
                ctx.send_idontwant(*mesh_peer, [message.id.to_bytes()]);
            }
        }
    }

    fn duplicate_received(
        &mut self,
        ctx: &mut RouterContext<'_>,
        peer: PeerId,
        id: &MessageId,
        topic: &Topic,
    ) {
        if let Some(score) = &mut self.score {
            score.duplicate_message(&peer, id, topic, ctx.now());
        }
    }

    fn message_validated(
        &mut self,
        ctx: &mut RouterContext<'_>,
        message: &RoutedMessage,
        acceptance: Acceptance,
    ) {
        let now = ctx.now();
        match acceptance {
            Acceptance::Accept => {
                if let (Some(score), Some(source)) = (&mut self.score, message.propagation_source) {
                    score.deliver_message(&source, &message.id, &message.topic, now);
                }
                self.mcache.put(message);
                self.forward(ctx, message);
            }
            Acceptance::Reject => {
                if let (Some(score), Some(source)) = (&mut self.score, message.propagation_source) {
                    score.reject_message(&source, &message.id, &message.topic, now);
                }
            }
            Acceptance::Ignore => {
                if let Some(score) = &mut self.score {
                    score.ignore_message(&message.id, now);
                }
            }
        }
    }

    fn invalid_message(
        &mut self,
        _ctx: &mut RouterContext<'_>,
        peer: PeerId,
        topic: Option<&Topic>,
    ) {
        if let (Some(score), Some(topic)) = (&mut self.score, topic) {
            score.mark_invalid(&peer, topic);
        }
    }

    fn handle_control(
        &mut self,
        ctx: &mut RouterContext<'_>,
        peer: PeerId,
        control: proto::ControlMessage,
    ) {
        log_control(&peer, &control);
        self.handle_ihave(ctx, peer, &control.ihave);
        self.handle_iwant(ctx, peer, &control.iwant);
        self.handle_graft(ctx, peer, &control.graft);
        self.handle_prune(ctx, peer, control.prune);
        self.handle_idontwant(ctx, peer, &control.idontwant);
    }

    fn handle_timeout(&mut self, ctx: &mut RouterContext<'_>) {
        let now = ctx.now();
        if let Some(score) = &mut self.score {
            score.refresh(now);
        }
        let Some(due) = self.next_heartbeat else {
            return;
        };
        if now < due {
            return;
        }
        let interval = self.config.heartbeat_interval;
        let mut next = due.checked_add(interval).unwrap_or(now);
        if next <= now {
            // We fell behind (a long pause): skip the missed beats rather than burst.
            next = now.checked_add(interval).unwrap_or(now);
        }
        self.next_heartbeat = Some(next);
        self.heartbeat(ctx);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let decay = self.score.as_ref().and_then(PeerScore::next_decay);
        match (self.next_heartbeat, decay) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn peer_score(&self, peer: &PeerId, now: Instant) -> Option<f64> {
        self.score.as_ref().map(|s| s.score(peer, now))
    }

    fn set_application_score(&mut self, peer: &PeerId, score: f64) -> bool {
        self.score
            .as_mut()
            .is_some_and(|s| s.set_application_score(peer, score))
    }
}

/// Logs each received control message at debug level under the target
/// `lp2p_pubsub::control`, one line per entry, before any checks: which peer sent which kind
/// (and for PRUNE its backoff and how many PX peers, with how many signed records). The
/// mixed-implementation interop test reads these lines to see control traffic cross
/// implementation boundaries.
fn log_control(peer: &PeerId, control: &proto::ControlMessage) {
    const TARGET: &str = "lp2p_pubsub::control";
    if !tracing::enabled!(target: TARGET, tracing::Level::DEBUG) {
        return;
    }
    for ihave in &control.ihave {
        debug!(target: TARGET, %peer, kind = "ihave", ids = ihave.message_ids.len(), "gossipsub control received");
    }
    for iwant in &control.iwant {
        debug!(target: TARGET, %peer, kind = "iwant", ids = iwant.message_ids.len(), "gossipsub control received");
    }
    for _ in &control.graft {
        debug!(target: TARGET, %peer, kind = "graft", "gossipsub control received");
    }
    for prune in &control.prune {
        let records = prune
            .peers
            .iter()
            .filter(|p| p.signed_peer_record.as_ref().is_some_and(|r| !r.is_empty()))
            .count();
        debug!(target: TARGET, %peer, kind = "prune", backoff = prune.backoff.unwrap_or(0), px = prune.peers.len(), px_records = records, "gossipsub control received");
    }
    for idontwant in &control.idontwant {
        debug!(target: TARGET, %peer, kind = "idontwant", ids = idontwant.message_ids.len(), "gossipsub control received");
    }
}

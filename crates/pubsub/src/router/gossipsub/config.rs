//! Gossipsub parameters (v1.0 mesh and gossip, v1.1 security extensions, v1.2 IDONTWANT).

use std::collections::BTreeSet;
use std::time::Duration;

use lp2p_core::PeerId;

use crate::error::PubsubError;
use crate::score::{DEFAULT_MAX_RETAINED_SCORES, PeerScoreParams, PeerScoreThresholds};

/// Default cap on the addresses taken from one signed peer record offered in peer exchange:
/// real records carry a handful; a record is attacker-supplied.
pub const DEFAULT_MAX_PX_ADDRESSES: usize = 32;

/// Gossipsub configuration. Defaults follow go-libp2p-pubsub (which agrees with
/// rust-libp2p on all mesh parameters), except where noted.
#[derive(Debug, Clone)]
pub struct GossipsubConfig {
    /// `D`: the target mesh degree.
    pub mesh_n: usize,
    /// `D_lo`: below it the heartbeat grafts up to `D` (go and rust: 5; the spec says 4).
    pub mesh_n_low: usize,
    /// `D_hi`: above it the heartbeat prunes down to `D`.
    pub mesh_n_high: usize,
    /// `D_lazy`: the minimum number of peers gossip is emitted to.
    pub gossip_lazy: usize,
    /// `D_score`: peers kept by score when pruning an oversubscribed mesh.
    pub retain_scores: usize,
    /// `D_out`: outbound connections kept in each mesh (< `D_lo`, ≤ `D`/2).
    pub mesh_outbound_min: usize,
    /// `GossipFactor`: the fraction of eligible peers gossip is emitted to.
    pub gossip_factor: f64,
    /// Time between heartbeats.
    pub heartbeat_interval: Duration,
    /// Time from start to the first heartbeat.
    pub heartbeat_initial_delay: Duration,
    /// Fanout state of a topic we published to without subscribing is dropped after this.
    pub fanout_ttl: Duration,
    /// Heartbeats of message history kept for IWANT.
    pub history_length: usize,
    /// Heartbeats of history advertised in IHAVE (≤ `history_length`).
    pub history_gossip: usize,
    /// Publish our own messages to every topic peer above the publish threshold.
    pub flood_publish: bool,
    /// Backoff after a PRUNE, announced in the PRUNE to v1.1+ peers.
    pub prune_backoff: Duration,
    /// Backoff after leaving a topic.
    pub unsubscribe_backoff: Duration,
    /// Heartbeats of slack on top of a backoff before we graft again (the spec asks for
    /// some slack so that our GRAFT does not land just before the peer's backoff ends).
    pub backoff_slack_heartbeats: u32,
    /// A GRAFT this soon after a PRUNE earns a second behaviour penalty.
    pub graft_flood_threshold: Duration,
    /// Cap on a backoff a peer asks for in its PRUNE (longer values are cut to this).
    pub max_remote_backoff: Duration,
    /// Offer peer exchange when pruning, and act on peer exchange offered to us.
    pub do_px: bool,
    /// Peers offered in one PRUNE, and accepted from one.
    pub prune_peers: usize,
    /// Addresses taken from one signed peer record received in peer exchange.
    pub max_px_addresses: usize,
    /// Heartbeats between opportunistic grafting rounds.
    pub opportunistic_graft_ticks: u64,
    /// Peers grafted per opportunistic grafting round.
    pub opportunistic_graft_peers: usize,
    /// Times one message is sent to one peer in answer to IWANT.
    pub gossip_retransmission: u32,
    /// IHAVE entries accepted from one peer per heartbeat.
    pub max_ihave_messages: usize,
    /// Message ids asked for (IWANT) from one peer per heartbeat, and ids in one IHAVE.
    pub max_ihave_length: usize,
    /// IWANT ids answered for one peer per heartbeat (past it, IWANTs are ignored).
    pub max_iwant_replies: usize,
    /// Time to deliver a message promised by IHAVE before the broken promise is penalised.
    pub iwant_followup_time: Duration,
    /// Messages at least this large (encoded) trigger IDONTWANT to v1.2 mesh peers
    /// (go: 1024 bytes; smaller messages cost less to receive twice than to announce).
    pub idontwant_message_size_threshold: usize,
    /// IDONTWANT entries accepted from one peer per heartbeat (go: 1000).
    pub max_idontwant_messages: usize,
    /// Message ids accepted in IDONTWANT from one peer per heartbeat.
    pub max_idontwant_ids: usize,
    /// Heartbeats an IDONTWANT is remembered (go: 3).
    pub idontwant_retention_heartbeats: u64,
    /// Explicit peers: always forwarded to, never in the mesh, RPCs always accepted.
    pub explicit_peers: BTreeSet<PeerId>,
    /// Heartbeats between checks that explicit peers are connected.
    pub explicit_peer_ticks: u64,
    /// Also speak `/floodsub/1.0.0` to floodsub-only peers.
    pub support_floodsub: bool,
    /// Peer scoring; `None` turns scoring off (every score is 0).
    pub score: Option<(PeerScoreParams, PeerScoreThresholds)>,
    /// Cap on scores kept for disconnected peers.
    pub max_retained_scores: usize,
}

impl Default for GossipsubConfig {
    fn default() -> Self {
        GossipsubConfig {
            mesh_n: 6,
            mesh_n_low: 5,
            mesh_n_high: 12,
            gossip_lazy: 6,
            retain_scores: 4,
            mesh_outbound_min: 2,
            gossip_factor: 0.25,
            heartbeat_interval: Duration::from_secs(1),
            heartbeat_initial_delay: Duration::from_millis(100),
            fanout_ttl: Duration::from_secs(60),
            history_length: 5,
            history_gossip: 3,
            flood_publish: true,
            prune_backoff: Duration::from_secs(60),
            unsubscribe_backoff: Duration::from_secs(10),
            backoff_slack_heartbeats: 2,
            graft_flood_threshold: Duration::from_secs(10),
            max_remote_backoff: Duration::from_secs(3600),
            do_px: false,
            prune_peers: 16,
            max_px_addresses: DEFAULT_MAX_PX_ADDRESSES,
            opportunistic_graft_ticks: 60,
            opportunistic_graft_peers: 2,
            gossip_retransmission: 3,
            max_ihave_messages: 10,
            max_ihave_length: 5000,
            max_iwant_replies: 5000,
            iwant_followup_time: Duration::from_secs(3),
            idontwant_message_size_threshold: 1024,
            max_idontwant_messages: 1000,
            max_idontwant_ids: 5000,
            idontwant_retention_heartbeats: 3,
            explicit_peers: BTreeSet::new(),
            explicit_peer_ticks: 300,
            support_floodsub: true,
            score: None,
            max_retained_scores: DEFAULT_MAX_RETAINED_SCORES,
        }
    }
}

impl GossipsubConfig {
    /// Checks the constraints between the parameters (and of the score parameters).
    pub fn validate(&self) -> Result<(), PubsubError> {
        let bad = |what: &str| Err(PubsubError::InvalidConfig(what.to_string()));
        if !(self.mesh_n_low <= self.mesh_n && self.mesh_n <= self.mesh_n_high) {
            return bad("mesh degrees must satisfy D_lo <= D <= D_hi");
        }
        if self.mesh_outbound_min > 0
            && (self.mesh_outbound_min >= self.mesh_n_low
                || self.mesh_outbound_min > self.mesh_n / 2)
        {
            return bad("D_out must be below D_lo and at most D/2");
        }
        if self.retain_scores > self.mesh_n {
            return bad("D_score must be at most D");
        }
        if !(0.0..=1.0).contains(&self.gossip_factor) {
            return bad("gossip_factor must be in [0, 1]");
        }
        if self.heartbeat_interval.is_zero() {
            return bad("heartbeat_interval must be positive");
        }
        if self.history_gossip > self.history_length || self.history_length == 0 {
            return bad("history_gossip must be at most history_length, which must be positive");
        }
        if self.opportunistic_graft_ticks == 0 || self.explicit_peer_ticks == 0 {
            return bad("opportunistic_graft_ticks and explicit_peer_ticks must be positive");
        }
        if let Some((params, thresholds)) = &self.score {
            params.validate()?;
            thresholds.validate()?;
        }
        Ok(())
    }
}

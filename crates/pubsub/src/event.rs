//! What the core tells its owner, and the counters it keeps.

use lp2p_core::{Multiaddr, PeerId};

use crate::types::{Message, MessageId, Topic};

/// A peer offered by peer exchange, its addresses taken from a verified signed peer record
/// (empty when the record was absent: find the peer some other way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PxPeer {
    /// The peer.
    pub peer_id: PeerId,
    /// Its addresses from the signed peer record.
    pub addresses: Vec<Multiaddr>,
}

/// Something the owner of a [`PubSubCore`](crate::PubSubCore) must act on or may want to know.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A valid message for a topic we subscribe to: hand it to the local subscribers.
    Message {
        /// The peer it came from.
        propagation_source: PeerId,
        /// Its id.
        message_id: MessageId,
        /// The message.
        message: Message,
    },
    /// Asynchronous validation: decide on this message and report the result with
    /// [`PubSubCore::report_validation_result`](crate::PubSubCore::report_validation_result)
    /// before the validation timeout (after it, the message is ignored).
    ValidationRequested {
        /// The peer it came from.
        propagation_source: PeerId,
        /// Its id (the key to report the result with).
        message_id: MessageId,
        /// The message.
        message: Message,
    },
    /// A peer subscribed to a topic.
    Subscribed {
        /// The peer.
        peer: PeerId,
        /// The topic.
        topic: Topic,
    },
    /// A peer unsubscribed from a topic (or disconnected while subscribed).
    Unsubscribed {
        /// The peer.
        peer: PeerId,
        /// The topic.
        topic: Topic,
    },
    /// A peer joined our mesh for a topic (we grafted it, or accepted its GRAFT).
    Grafted {
        /// The peer.
        peer: PeerId,
        /// The topic.
        topic: Topic,
    },
    /// A peer left our mesh for a topic (we pruned it, it pruned us, or it went away).
    Pruned {
        /// The peer.
        peer: PeerId,
        /// The topic.
        topic: Topic,
    },
    /// A peer's send queue overflowed: it does not read fast enough. Raised once per
    /// overflow episode (until its queue drains again); messages are being dropped for it.
    SlowPeer {
        /// The peer.
        peer: PeerId,
        /// Messages dropped when the episode started.
        dropped: usize,
        /// Messages still queued for it.
        queued: usize,
    },
    /// A peer's score fell below the graylist threshold: its RPCs are now ignored.
    Graylisted {
        /// The peer.
        peer: PeerId,
        /// Its score.
        score: f64,
    },
    /// A peer pruned us and offered others to connect to (peer exchange): connect to them.
    PeerExchange {
        /// The peer that pruned us.
        from: PeerId,
        /// The topic.
        topic: Topic,
        /// The peers offered, records verified.
        peers: Vec<PxPeer>,
    },
    /// An explicit peer is not connected: (re)connect to it.
    ConnectExplicitPeer {
        /// The peer.
        peer: PeerId,
    },
}

/// What the core counted: inputs rejected, dropped or ignored, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// RPCs received.
    pub rpcs_received: u64,
    /// RPCs over the maximum size.
    pub rpcs_too_large: u64,
    /// RPCs that did not decode.
    pub rpcs_malformed: u64,
    /// RPCs dropped unread because the sender is graylisted.
    pub rpcs_graylisted: u64,
    /// RPCs not read because the memory budget (the resource manager's pubsub service scope,
    /// the peer's or the system's) refused to reserve their announced length; the inbound
    /// stream was reset.
    pub rpcs_refused_for_memory: u64,
    /// Subscriptions ignored: over the per-peer topic cap, or without a topic.
    pub subscriptions_ignored: u64,
    /// Messages received (all copies).
    pub messages_received: u64,
    /// Messages failing the checks before validation (signature, policy, topic).
    pub messages_invalid: u64,
    /// Copies of messages already seen.
    pub messages_duplicate: u64,
    /// Messages for topics we are not subscribed to.
    pub messages_unsubscribed_topic: u64,
    /// Messages accepted by validation.
    pub messages_accepted: u64,
    /// Messages rejected by validation.
    pub messages_rejected: u64,
    /// Messages ignored by validation.
    pub messages_ignored: u64,
    /// Messages dropped because the asynchronous validation queue was full.
    pub validation_queue_full: u64,
    /// Asynchronous validations that timed out.
    pub validation_timeouts: u64,
    /// Messages we published.
    pub messages_published: u64,
    /// Messages dropped from full per-peer send queues.
    pub send_queue_dropped: u64,
    /// Of `send_queue_dropped`, messages dropped because the memory budget (the resource
    /// manager's pubsub service scope, the peer's or the system's) refused to reserve them.
    pub send_queue_refused_for_memory: u64,
    /// Queued items that fit in no frame and were dropped.
    pub oversized_dropped: u64,
    /// Control message ids dropped because a peer's control queue was full.
    pub control_ids_dropped: u64,
    /// Control messages from peers that do not speak gossipsub, or of no known kind.
    pub control_ignored: u64,
    /// IHAVE entries ignored (over the per-heartbeat limits, low score).
    pub ihave_ignored: u64,
    /// IWANT ids ignored (over the per-heartbeat limit, retransmission limit, low score).
    pub iwant_ignored: u64,
    /// GRAFTs refused (backoff, score, full mesh, explicit peer).
    pub graft_refused: u64,
    /// GRAFTs for topics we do not know, ignored.
    pub graft_unknown_topic: u64,
    /// GRAFTs received while the sender was in backoff.
    pub graft_in_backoff: u64,
    /// IDONTWANT entries ignored over the per-heartbeat limit.
    pub idontwant_ignored: u64,
    /// IWANT promises that were broken.
    pub broken_promises: u64,
    /// Peer exchange offers ignored (low score) or records that failed verification.
    pub px_ignored: u64,
}

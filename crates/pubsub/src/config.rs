//! The configuration every router shares: sizes, signing, the seen cache, validation and the
//! per-peer send queues. Router-specific knobs live in the router's own config.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::PubsubError;
use crate::message::{Authenticity, MessageIdFn, default_message_id};

/// Default maximum RPC size: 1 MiB, go-libp2p-pubsub's limit and the size the spec suggests.
/// (rust-libp2p defaults to 64 KiB; a bigger message to such a peer is dropped there.)
pub const DEFAULT_MAX_TRANSMIT_SIZE: usize = 1024 * 1024;
/// Default seen-cache TTL: 2 minutes, the spec's and go's value; it must outlast the time a
/// message can still be circulating (mcache history plus gossip delays).
pub const DEFAULT_SEEN_TTL: Duration = Duration::from_secs(120);
/// Default cap on seen-cache entries: room for 2 000 messages/s over the 2-minute TTL; past
/// it the oldest ids are forgotten early instead of memory growing.
pub const DEFAULT_MAX_SEEN_MESSAGES: usize = 256 * 1024;
/// Default time an asynchronous validation may take before the message is ignored.
pub const DEFAULT_VALIDATION_TIMEOUT: Duration = Duration::from_secs(5);
/// Default cap on messages waiting for asynchronous validation; more are ignored (go keeps a
/// 32-deep queue per validator; this is for the whole router).
pub const DEFAULT_MAX_PENDING_VALIDATIONS: usize = 1024;
/// Default cap on the topics one peer may be subscribed to in our view: generous for real
/// applications (tens of topics), small enough that a peer subscribing to everything cannot
/// grow our tables without bound.
pub const DEFAULT_MAX_TOPICS_PER_PEER: usize = 1024;
/// The service name pubsub reserves memory under ([`lp2p_core::MemoryBudget::service_account`]):
/// per peer, the bytes of the messages queued for it and of the RPC being read from it.
pub const MEMORY_SERVICE: &str = "pubsub";
/// Default cap on messages queued for one peer: a few seconds of a busy topic; past it the
/// peer is slow, forwards are dropped and a slow-peer event is raised.
pub const DEFAULT_MAX_SEND_QUEUE_LEN: usize = 1024;
/// Default cap on the bytes queued for one peer (32 full-size messages).
pub const DEFAULT_MAX_SEND_QUEUE_BYTES: usize = 32 * 1024 * 1024;
/// Default cap on message ids queued in control messages (IWANT, IDONTWANT) for one peer.
pub const DEFAULT_MAX_QUEUED_CONTROL_IDS: usize = 10_000;
/// Default cap on the length of a topic name accepted from a peer, in bytes. Real topic names
/// are tens of bytes; the cap keeps a peer from parking megabyte-long names in our tables.
pub const DEFAULT_MAX_TOPIC_LEN: usize = 1024;
/// Default number of authors whose public keys are kept decoded for signature checks: the
/// active publishers of a busy network; past it the cache starts over.
pub const DEFAULT_PUBLIC_KEY_CACHE_SIZE: usize = 1024;
/// Default bytes one `poll_transmit` call produces for a peer (more when one frame alone is
/// bigger): large enough to coalesce many small RPCs into one write.
pub const DEFAULT_TRANSMIT_BATCH_BYTES: usize = 64 * 1024;

/// The configuration every router shares.
#[derive(Clone)]
pub struct Config {
    /// Maximum size of an RPC body, sent or received.
    pub max_transmit_size: usize,
    /// Signing policy for publishing and receiving.
    pub authenticity: Authenticity,
    /// The message-id function (default: go's raw `from || seqno`).
    pub message_id_fn: MessageIdFn,
    /// How long a message id is remembered.
    pub seen_ttl: Duration,
    /// Cap on remembered message ids.
    pub max_seen_messages: usize,
    /// How long an asynchronous validation may take.
    pub validation_timeout: Duration,
    /// Cap on messages waiting for asynchronous validation.
    pub max_pending_validations: usize,
    /// Cap on the topics one peer may be subscribed to in our view.
    pub max_topics_per_peer: usize,
    /// Cap on the length of a topic name a peer subscribes to.
    pub max_topic_len: usize,
    /// Cap on messages queued for one peer.
    pub max_send_queue_len: usize,
    /// Cap on bytes queued for one peer.
    pub max_send_queue_bytes: usize,
    /// Cap on message ids queued in IWANT/IDONTWANT control for one peer.
    pub max_queued_control_ids: usize,
    /// Bytes one `poll_transmit` call aims to produce.
    pub transmit_batch_bytes: usize,
    /// Authors whose decoded public keys are cached for signature checks.
    pub public_key_cache_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_transmit_size: DEFAULT_MAX_TRANSMIT_SIZE,
            authenticity: Authenticity::default(),
            message_id_fn: Arc::new(default_message_id),
            seen_ttl: DEFAULT_SEEN_TTL,
            max_seen_messages: DEFAULT_MAX_SEEN_MESSAGES,
            validation_timeout: DEFAULT_VALIDATION_TIMEOUT,
            max_pending_validations: DEFAULT_MAX_PENDING_VALIDATIONS,
            max_topics_per_peer: DEFAULT_MAX_TOPICS_PER_PEER,
            max_topic_len: DEFAULT_MAX_TOPIC_LEN,
            max_send_queue_len: DEFAULT_MAX_SEND_QUEUE_LEN,
            max_send_queue_bytes: DEFAULT_MAX_SEND_QUEUE_BYTES,
            max_queued_control_ids: DEFAULT_MAX_QUEUED_CONTROL_IDS,
            transmit_batch_bytes: DEFAULT_TRANSMIT_BATCH_BYTES,
            public_key_cache_size: DEFAULT_PUBLIC_KEY_CACHE_SIZE,
        }
    }
}

impl Config {
    /// Checks the values are usable.
    pub fn validate(&self) -> Result<(), PubsubError> {
        let bad = |what: &str| Err(PubsubError::InvalidConfig(what.to_string()));
        if self.max_transmit_size < 64 {
            return bad("max_transmit_size must be at least 64 bytes");
        }
        if self.seen_ttl.is_zero() {
            return bad("seen_ttl must be positive");
        }
        if self.max_seen_messages == 0 || self.max_send_queue_len == 0 {
            return bad("max_seen_messages and max_send_queue_len must be positive");
        }
        if self.max_send_queue_bytes < self.max_transmit_size {
            return bad("max_send_queue_bytes must hold at least one maximum-size RPC");
        }
        Ok(())
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("max_transmit_size", &self.max_transmit_size)
            .field("authenticity", &self.authenticity)
            .field("seen_ttl", &self.seen_ttl)
            .field("max_seen_messages", &self.max_seen_messages)
            .field("validation_timeout", &self.validation_timeout)
            .field("max_pending_validations", &self.max_pending_validations)
            .field("max_topics_per_peer", &self.max_topics_per_peer)
            .field("max_topic_len", &self.max_topic_len)
            .field("max_send_queue_len", &self.max_send_queue_len)
            .field("max_send_queue_bytes", &self.max_send_queue_bytes)
            .field("max_queued_control_ids", &self.max_queued_control_ids)
            .field("transmit_batch_bytes", &self.transmit_batch_bytes)
            .field("public_key_cache_size", &self.public_key_cache_size)
            .finish_non_exhaustive()
    }
}

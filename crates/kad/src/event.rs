//! What the core reports: query progress and results, routing-table changes, counters.

use std::fmt;
use std::time::{Duration, Instant};

use lp2p_core::PeerId;

use crate::record::Record;
use crate::wire::PeerInfo;

/// Identifies a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueryId(pub(crate) u64);

impl fmt::Display for QueryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "q{}", self.0)
    }
}

/// Identifies an outbound request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub(crate) u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// A partial result, streamed while the query runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A find-peer lookup learned the target's addresses.
    FoundPeer(PeerInfo),
    /// A valid record arrived.
    Record {
        /// The record.
        record: Record,
        /// From whom.
        from: PeerId,
    },
    /// Providers arrived (only ones not reported before).
    Providers {
        /// The new providers.
        providers: Vec<PeerInfo>,
        /// From whom.
        from: PeerId,
    },
    /// A peer stored our record or provider record.
    Stored {
        /// The peer.
        peer: PeerId,
    },
}

/// The outcome of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryResult {
    /// Find-peer: the target's addresses, if found.
    FindPeer(Option<PeerInfo>),
    /// The closest peers to a key (nearest first).
    ClosestPeers(Vec<PeerInfo>),
    /// The best valid record, if any.
    GetValue(Option<Record>),
    /// How many peers stored the record.
    PutValue {
        /// Peers that acknowledged.
        stored: usize,
    },
    /// How many peers took our provider record.
    StartProviding {
        /// Peers it was sent to.
        stored: usize,
    },
    /// Every provider found.
    GetProviders(Vec<PeerInfo>),
    /// The bootstrap's self-lookup ended.
    Bootstrap {
        /// Peers in the routing table now.
        routing_table: usize,
        /// Bucket refresh lookups started after it.
        refreshes: usize,
    },
}

/// How a query went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryStats {
    /// Requests started. One whose query ended before it reached its peer's stream is
    /// counted but not sent (the shell drops it, D69).
    pub requests: u32,
    /// Requests answered.
    pub successes: u32,
    /// Requests failed (error or timeout).
    pub failures: u32,
    /// Lookup rounds: for find-peer, the round whose answer named the target; otherwise the
    /// deepest round among the closest peers that answered.
    pub rounds: u32,
    /// When it started.
    pub started: Instant,
    /// When it ended.
    pub ended: Instant,
    /// Whether it ran out of time (the result is what it had by then).
    pub timed_out: bool,
}

impl QueryStats {
    /// How long it ran.
    pub fn duration(&self) -> Duration {
        self.ended.saturating_duration_since(self.started)
    }
}

/// Something the core reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A query made progress.
    Progress {
        /// Which.
        id: QueryId,
        /// What arrived.
        progress: Progress,
    },
    /// A query ended.
    Finished {
        /// Which.
        id: QueryId,
        /// Its outcome.
        result: QueryResult,
        /// Its statistics.
        stats: QueryStats,
    },
    /// A peer entered the routing table.
    RoutingAdded {
        /// The peer.
        peer: PeerId,
        /// Its bucket.
        bucket: usize,
    },
    /// A peer left the routing table.
    RoutingRemoved {
        /// The peer.
        peer: PeerId,
        /// The replacement that took its place.
        promoted: Option<PeerId>,
    },
}

/// What the core counted: traffic, refusals and everything dropped from bad input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Inbound requests served.
    pub inbound_requests: u64,
    /// Inbound requests refused (undecodable, invalid record, store full, bad key, foreign
    /// provider, client mode).
    pub inbound_refused: u64,
    /// Records refused by the validator (inbound PUT_VALUE and GET_VALUE answers).
    pub invalid_records: u64,
    /// Records refused because a better one was stored.
    pub outdated_records: u64,
    /// Entries refused because a store was full (records or providers, any limit).
    pub store_full: u64,
    /// Provider keys refused because they are not multihashes.
    pub bad_provider_keys: u64,
    /// ADD_PROVIDER entries naming another peer than the sender.
    pub foreign_providers: u64,
    /// Outbound requests sent.
    pub requests_sent: u64,
    /// Outbound requests that failed (error, timeout, undecodable answer).
    pub requests_failed: u64,
    /// Answers refused as undecodable or of the wrong type.
    pub bad_responses: u64,
    /// Peer entries dropped from messages (over the list limit or with bad ids).
    pub dropped_peers: u64,
    /// Addresses dropped from messages.
    pub dropped_addrs: u64,
    /// Frames (inbound requests, answers to our requests) refused because the host's
    /// resource manager denied their memory (see [`MEMORY_SERVICE`](crate::MEMORY_SERVICE));
    /// each stream was reset. Counted by the async shell ([`Kademlia::counters`]); the
    /// sans-IO core reads no stream and leaves it at 0.
    ///
    /// [`Kademlia::counters`]: crate::Kademlia::counters
    pub memory_refused: u64,
}

//! The Kademlia configuration: every limit a named constant with its reason, and a knob.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use lp2p_core::ProtocolId;

use crate::validator::{NamespacedValidator, Validator};
use crate::wire::{self, WireLimits};

/// The replication parameter `k`: peers per bucket, peers a lookup converges on, peers a
/// record or provider record is stored at (spec: 20).
pub const DEFAULT_K: usize = 20;

/// Requests a lookup keeps in flight (spec: 10; rust-libp2p uses 3).
pub const DEFAULT_ALPHA: usize = 10;

/// How long one request may take, from opening the stream to the answer (rust-libp2p's
/// substream timeout). A peer slower than this is treated as failed for that lookup.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a query may run before it ends with what it has (rust-libp2p: 60 s). Partial
/// results stream out before that.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(60);

/// Replacement-cache entries per bucket: as many as the bucket holds, so a bucket whose
/// peers all leave can be refilled at once.
pub const DEFAULT_REPLACEMENT_CACHE: usize = DEFAULT_K;

/// Failed requests in a row before a peer leaves the routing table. One lost packet on a
/// lossy link must not evict a good peer; two in a row (across lookups) is a dead peer far
/// more often than bad luck.
pub const DEFAULT_MAX_FAILURES: u32 = 2;

/// How often the bootstrap runs (self-lookup plus a lookup in each stale bucket): the spec's
/// 10 minutes.
pub const DEFAULT_BOOTSTRAP_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// Buckets refreshed by random lookups: a random key in bucket `i` takes about 2^(i+1)
/// hashes to find, and buckets past 16 are covered by the self-lookup anyway.
pub const DEFAULT_MAX_REFRESH_BUCKET: usize = 16;

/// Valid GET_VALUE answers a lookup waits for before it settles on the best record (rust
/// and go default to a quorum that ends at the first valid record for a single-writer key).
pub const DEFAULT_QUORUM: usize = 1;

/// How long a stored record lives without being republished (rust-libp2p: 48 h, the IPNS
/// record window).
pub const DEFAULT_RECORD_TTL: Duration = Duration::from_secs(48 * 60 * 60);

/// How often our own records are put again (rust-libp2p's publication interval, 22 h:
/// well inside the 48 h TTL).
pub const DEFAULT_REPUBLISH_INTERVAL: Duration = Duration::from_secs(22 * 60 * 60);

/// How long a provider record lives (spec: IPFS's 48 h expiration interval).
pub const DEFAULT_PROVIDER_TTL: Duration = Duration::from_secs(48 * 60 * 60);

/// How long a provider's addresses are handed out with its record (spec: the routing
/// table refresh interval, 30 min in kubo); after that only its peer id.
pub const DEFAULT_PROVIDER_ADDR_TTL: Duration = Duration::from_secs(30 * 60);

/// How often we announce the keys we provide again (spec: IPFS's 22 h republish interval).
pub const DEFAULT_REPROVIDE_INTERVAL: Duration = Duration::from_secs(22 * 60 * 60);

/// Records stored for others: with the byte cap below, a few thousand IPNS-sized records.
pub const DEFAULT_MAX_RECORDS: usize = 4096;

/// Bytes of records stored for others (keys, values and per-record overhead).
pub const DEFAULT_MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;

/// Largest record value accepted (rust-libp2p: 65 KiB; ours must fit in a message with its
/// key and the closer peers of a GET_VALUE answer).
pub const DEFAULT_MAX_VALUE_SIZE: usize = 48 * 1024;

/// Provider records stored for others, across all keys.
pub const DEFAULT_MAX_PROVIDER_RECORDS: usize = 65_536;

/// Providers kept per key (rust-libp2p: 20, `k`: a lookup returns at most that many anyway).
pub const DEFAULT_MAX_PROVIDERS_PER_KEY: usize = DEFAULT_K;

/// Provider records one peer may hold at our node: a peer providing more keys than this
/// from us alone is flooding.
pub const DEFAULT_MAX_PROVIDER_RECORDS_PER_PEER: usize = 1024;

/// Requests all our queries keep in flight together: 25 queries at full `alpha`.
pub const DEFAULT_MAX_OUTBOUND_REQUESTS: usize = 256;

/// Queries running at once; more are refused (`KadError::TooManyQueries`).
pub const DEFAULT_MAX_QUERIES: usize = 1024;

/// How often expired records and provider records are swept out.
pub const DEFAULT_CLEANUP_INTERVAL: Duration = Duration::from_secs(60);

/// Inbound kad streams one peer may have open at once (each carries its requests one after
/// another): past this further streams are reset and counted.
pub const DEFAULT_MAX_INBOUND_STREAMS_PER_PEER: usize = 16;

/// An inbound stream with no request for this long is closed (rust-libp2p's substream
/// timeout).
pub const DEFAULT_INBOUND_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the node answers the DHT protocol (spec "Client and server mode").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Advertises and answers `/ipfs/kad/1.0.0`; other nodes put it in their routing tables.
    #[default]
    Server,
    /// Only queries: neither advertises nor answers the protocol (behind a NAT, on a
    /// laptop).
    Client,
}

/// The Kademlia configuration.
#[derive(Clone)]
pub struct KadConfig {
    /// The protocol id (`/ipfs/kad/1.0.0`; private networks use their own).
    pub protocol: ProtocolId,
    /// Server or client.
    pub mode: Mode,
    /// See [`DEFAULT_K`].
    pub k: usize,
    /// See [`DEFAULT_ALPHA`].
    pub alpha: usize,
    /// Disjoint lookup paths (1: none; S/Kademlia suggests `k / 2` or fewer).
    pub disjoint_paths: usize,
    /// See [`DEFAULT_REQUEST_TIMEOUT`].
    pub request_timeout: Duration,
    /// See [`DEFAULT_QUERY_TIMEOUT`].
    pub query_timeout: Duration,
    /// See [`DEFAULT_REPLACEMENT_CACHE`].
    pub replacement_cache: usize,
    /// See [`DEFAULT_MAX_FAILURES`].
    pub max_failures: u32,
    /// See [`DEFAULT_BOOTSTRAP_INTERVAL`]; `None`: only when asked.
    pub bootstrap_interval: Option<Duration>,
    /// Bootstrap as soon as the routing table gets its first peer.
    pub auto_bootstrap: bool,
    /// See [`DEFAULT_MAX_REFRESH_BUCKET`].
    pub max_refresh_bucket: usize,
    /// See [`DEFAULT_QUORUM`].
    pub quorum: usize,
    /// Stop a provider lookup once this many providers are found (`None`: run it to the
    /// end; partial results stream out either way).
    pub providers_wanted: Option<usize>,
    /// See [`DEFAULT_RECORD_TTL`].
    pub record_ttl: Duration,
    /// See [`DEFAULT_REPUBLISH_INTERVAL`]; `None`: never.
    pub republish_interval: Option<Duration>,
    /// See [`DEFAULT_PROVIDER_TTL`].
    pub provider_ttl: Duration,
    /// See [`DEFAULT_PROVIDER_ADDR_TTL`].
    pub provider_addr_ttl: Duration,
    /// See [`DEFAULT_REPROVIDE_INTERVAL`]; `None`: never.
    pub reprovide_interval: Option<Duration>,
    /// See [`DEFAULT_MAX_RECORDS`].
    pub max_records: usize,
    /// See [`DEFAULT_MAX_RECORD_BYTES`].
    pub max_record_bytes: usize,
    /// See [`DEFAULT_MAX_VALUE_SIZE`].
    pub max_value_size: usize,
    /// See [`DEFAULT_MAX_PROVIDER_RECORDS`].
    pub max_provider_records: usize,
    /// See [`DEFAULT_MAX_PROVIDERS_PER_KEY`].
    pub max_providers_per_key: usize,
    /// See [`DEFAULT_MAX_PROVIDER_RECORDS_PER_PEER`].
    pub max_provider_records_per_peer: usize,
    /// Refuse ADD_PROVIDER / GET_PROVIDERS keys that are not multihashes (the spec's
    /// provider keys are multihashes).
    pub require_multihash_keys: bool,
    /// See [`DEFAULT_MAX_OUTBOUND_REQUESTS`].
    pub max_outbound_requests: usize,
    /// See [`DEFAULT_MAX_QUERIES`].
    pub max_queries: usize,
    /// See [`DEFAULT_CLEANUP_INTERVAL`].
    pub cleanup_interval: Duration,
    /// See [`DEFAULT_MAX_INBOUND_STREAMS_PER_PEER`] (the host shell).
    pub max_inbound_streams_per_peer: usize,
    /// See [`DEFAULT_INBOUND_IDLE_TIMEOUT`] (the host shell).
    pub inbound_idle_timeout: Duration,
    /// Use the listen addresses a peer announces in identify without a signed peer record
    /// (off: only addresses we dialed or that a signed record vouches for enter the
    /// routing table).
    pub trust_unsigned_addrs: bool,
    /// Message size and list limits.
    pub limits: WireLimits,
    /// Record validation per namespace.
    pub validator: Arc<dyn Validator>,
}

impl fmt::Debug for KadConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KadConfig")
            .field("protocol", &self.protocol)
            .field("mode", &self.mode)
            .field("k", &self.k)
            .field("alpha", &self.alpha)
            .field("disjoint_paths", &self.disjoint_paths)
            .field("request_timeout", &self.request_timeout)
            .field("query_timeout", &self.query_timeout)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Default for KadConfig {
    fn default() -> Self {
        KadConfig {
            protocol: ProtocolId::from(wire::PROTOCOL),
            mode: Mode::Server,
            k: DEFAULT_K,
            alpha: DEFAULT_ALPHA,
            disjoint_paths: 1,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            query_timeout: DEFAULT_QUERY_TIMEOUT,
            replacement_cache: DEFAULT_REPLACEMENT_CACHE,
            max_failures: DEFAULT_MAX_FAILURES,
            bootstrap_interval: Some(DEFAULT_BOOTSTRAP_INTERVAL),
            auto_bootstrap: true,
            max_refresh_bucket: DEFAULT_MAX_REFRESH_BUCKET,
            quorum: DEFAULT_QUORUM,
            providers_wanted: None,
            record_ttl: DEFAULT_RECORD_TTL,
            republish_interval: Some(DEFAULT_REPUBLISH_INTERVAL),
            provider_ttl: DEFAULT_PROVIDER_TTL,
            provider_addr_ttl: DEFAULT_PROVIDER_ADDR_TTL,
            reprovide_interval: Some(DEFAULT_REPROVIDE_INTERVAL),
            max_records: DEFAULT_MAX_RECORDS,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            max_value_size: DEFAULT_MAX_VALUE_SIZE,
            max_provider_records: DEFAULT_MAX_PROVIDER_RECORDS,
            max_providers_per_key: DEFAULT_MAX_PROVIDERS_PER_KEY,
            max_provider_records_per_peer: DEFAULT_MAX_PROVIDER_RECORDS_PER_PEER,
            require_multihash_keys: true,
            max_outbound_requests: DEFAULT_MAX_OUTBOUND_REQUESTS,
            max_queries: DEFAULT_MAX_QUERIES,
            cleanup_interval: DEFAULT_CLEANUP_INTERVAL,
            max_inbound_streams_per_peer: DEFAULT_MAX_INBOUND_STREAMS_PER_PEER,
            inbound_idle_timeout: DEFAULT_INBOUND_IDLE_TIMEOUT,
            trust_unsigned_addrs: false,
            limits: WireLimits::default(),
            validator: Arc::new(NamespacedValidator::default()),
        }
    }
}

impl KadConfig {
    /// Sets the mode.
    #[must_use]
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets the record validator.
    #[must_use]
    pub fn with_validator(mut self, validator: impl Validator) -> Self {
        self.validator = Arc::new(validator);
        self
    }
}

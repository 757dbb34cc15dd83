//! The host's own limits (the swarm's are in `lp2p_swarm::config`).

use std::time::Duration;

/// How long a stream may take to agree on a protocol, inbound or outbound. Negotiation is a
/// round trip or two; a peer that takes longer is stalling a slot.
pub const DEFAULT_NEGOTIATION_TIMEOUT: Duration = Duration::from_secs(10);

/// Inbound streams negotiating their protocol at once, across all peers. Each holds a task
/// and a small buffer; past this, new inbound streams are reset (counted and logged).
pub const DEFAULT_MAX_NEGOTIATING_STREAMS: usize = 512;

/// Inbound streams of one peer negotiating their protocol at once, once half of
/// [`DEFAULT_MAX_NEGOTIATING_STREAMS`] is in use: its fair share under contention (below half,
/// a burst may go past it, so no peer ever holds more than half the pool). An eighth of the
/// pool: besides the one peer that may hold half, at least four more are needed to fill it,
/// while an honest peer's usual streams (identify, ping, a kad query's requests and pubsub
/// opening together, each negotiated in a round trip) stay far below it.
pub const DEFAULT_MAX_NEGOTIATING_STREAMS_PER_PEER: usize = 64;

/// Inbound streams one protocol's handler runs at once. When a handler falls this far
/// behind, further streams for it are reset (counted and logged) instead of queuing without
/// bound, with one exception that keeps a share for every peer: a stream from a peer that
/// runs none of them takes the slot of the oldest stream of the peer running the most (if
/// that peer keeps one). Equal to the default inbound connection limit, so filling every
/// slot with one stream per peer takes as many peers as the node admits connections.
pub const DEFAULT_MAX_STREAMS_PER_PROTOCOL: usize = 1024;

/// How long [`Host::close`](crate::Host::close) lets services finish what they queued (pubsub
/// send queues, identify pushes: the hooks registered with
/// [`Host::on_close`](crate::Host::on_close)) before it closes the connections anyway. A healthy
/// flush takes a round trip or two; five seconds covers a slow, loaded link and still lets a
/// Ctrl-C feel prompt when a peer stopped reading.
pub const DEFAULT_CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The host's limits and timeouts.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// See [`DEFAULT_NEGOTIATION_TIMEOUT`].
    pub negotiation_timeout: Duration,
    /// See [`DEFAULT_MAX_NEGOTIATING_STREAMS`].
    pub max_negotiating_streams: usize,
    /// See [`DEFAULT_MAX_NEGOTIATING_STREAMS_PER_PEER`].
    pub max_negotiating_streams_per_peer: usize,
    /// See [`DEFAULT_MAX_STREAMS_PER_PROTOCOL`].
    pub max_streams_per_protocol: usize,
    /// See [`DEFAULT_CLOSE_GRACE`]. Zero skips the flush: close at once.
    pub close_grace: Duration,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            negotiation_timeout: DEFAULT_NEGOTIATION_TIMEOUT,
            max_negotiating_streams: DEFAULT_MAX_NEGOTIATING_STREAMS,
            max_negotiating_streams_per_peer: DEFAULT_MAX_NEGOTIATING_STREAMS_PER_PEER,
            max_streams_per_protocol: DEFAULT_MAX_STREAMS_PER_PROTOCOL,
            close_grace: DEFAULT_CLOSE_GRACE,
        }
    }
}

//! Ping's limits and defaults, each with the reason for its value.

use std::time::Duration;

/// The protocol id.
pub const PROTOCOL: &str = "/ipfs/ping/1.0.0";

/// The size of one ping: the spec fixes it at 32 bytes each way.
pub const PING_SIZE: usize = 32;

/// How long one ping (stream opening and negotiation included) may take. go-libp2p gives up
/// after 10 s; a healthy round trip is far below that, so a peer slower than this is, for a
/// liveness check, as good as gone.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Keep-alive: time between pings of one connection. rust-libp2p pings every 15 s; often
/// enough to keep NAT mappings (typically 30 s or more for TCP) alive, rare enough to cost
/// nothing.
pub const DEFAULT_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// Keep-alive: how long one keep-alive ping may take. rust-libp2p uses 20 s: more lenient
/// than an interactive ping, since a busy link is not a dead one.
pub const DEFAULT_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Keep-alive: failed pings in a row after which the connection is closed. One lost ping on
/// a loaded link is no proof of death; three in a row (about a minute) is.
pub const DEFAULT_MAX_FAILURES: u32 = 3;

/// Inbound ping streams one peer may have open at once. The spec says a listener should
/// accept at most two per peer (a peer keeps at most one outbound stream; two tolerate one
/// being replaced). Further streams are reset.
pub const MAX_INBOUND_STREAMS_PER_PEER: usize = 2;

/// The optional keep-alive service: ping every connection periodically and close it after
/// too many failures in a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepAliveConfig {
    /// See [`DEFAULT_KEEP_ALIVE_INTERVAL`].
    pub interval: Duration,
    /// See [`DEFAULT_KEEP_ALIVE_TIMEOUT`].
    pub timeout: Duration,
    /// See [`DEFAULT_MAX_FAILURES`]; at least 1 is used.
    pub max_failures: u32,
}

impl Default for KeepAliveConfig {
    fn default() -> Self {
        KeepAliveConfig {
            interval: DEFAULT_KEEP_ALIVE_INTERVAL,
            timeout: DEFAULT_KEEP_ALIVE_TIMEOUT,
            max_failures: DEFAULT_MAX_FAILURES,
        }
    }
}

/// Ping's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingConfig {
    /// See [`DEFAULT_TIMEOUT`]: the limit of [`Ping::ping`](crate::Ping::ping) and
    /// [`Ping::ping_on`](crate::Ping::ping_on).
    pub timeout: Duration,
    /// The keep-alive service; off (`None`) by default.
    pub keep_alive: Option<KeepAliveConfig>,
    /// See [`MAX_INBOUND_STREAMS_PER_PEER`].
    pub max_inbound_streams_per_peer: usize,
}

impl Default for PingConfig {
    fn default() -> Self {
        PingConfig {
            timeout: DEFAULT_TIMEOUT,
            keep_alive: None,
            max_inbound_streams_per_peer: MAX_INBOUND_STREAMS_PER_PEER,
        }
    }
}

impl PingConfig {
    /// This configuration with the keep-alive service on.
    #[must_use]
    pub fn with_keep_alive(mut self, keep_alive: KeepAliveConfig) -> Self {
        self.keep_alive = Some(keep_alive);
        self
    }
}

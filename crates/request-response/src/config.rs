//! Limits and timeouts of the service.

use std::time::Duration;

/// How long one exchange may take, from opening the stream to the end of the response (and,
/// on the answering side, from accepting the stream to writing the response): rust-libp2p's
/// default, so a request between the two stacks fails on the same side at the same time.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Our requests in flight at once, across all peers. Past this, `send_request` waits for a
/// slot (back-pressure on the caller) instead of opening streams without bound.
pub const DEFAULT_MAX_OUTBOUND_IN_FLIGHT: usize = 1024;

/// A peer's requests we hold at once (read, queued for the application, or awaiting its
/// response). rust-libp2p allows 100 concurrent streams per connection; past this further
/// streams from the peer are reset and counted, so one peer cannot hold all our memory.
pub const DEFAULT_MAX_INBOUND_PER_PEER: usize = 100;

/// Inbound requests queued for the application. When it falls behind, the reading tasks
/// wait (their streams stay unanswered and the remote's timeout runs): back-pressure, never
/// a silent drop.
pub const DEFAULT_INBOUND_QUEUE: usize = 256;

/// Whether a protocol is used for requests we send, requests we answer, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProtocolSupport {
    /// We answer requests (a stream handler is registered) but send none.
    Inbound,
    /// We send requests but answer none (no handler: the protocol is not advertised).
    Outbound,
    /// Both.
    #[default]
    Full,
}

impl ProtocolSupport {
    /// Whether we answer requests.
    pub fn inbound(self) -> bool {
        matches!(self, ProtocolSupport::Inbound | ProtocolSupport::Full)
    }

    /// Whether we send requests.
    pub fn outbound(self) -> bool {
        matches!(self, ProtocolSupport::Outbound | ProtocolSupport::Full)
    }
}

/// The service's limits.
#[derive(Debug, Clone)]
pub struct Config {
    /// See [`DEFAULT_REQUEST_TIMEOUT`].
    pub request_timeout: Duration,
    /// See [`DEFAULT_MAX_OUTBOUND_IN_FLIGHT`].
    pub max_outbound_in_flight: usize,
    /// See [`DEFAULT_MAX_INBOUND_PER_PEER`].
    pub max_inbound_per_peer: usize,
    /// See [`DEFAULT_INBOUND_QUEUE`].
    pub inbound_queue: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_outbound_in_flight: DEFAULT_MAX_OUTBOUND_IN_FLIGHT,
            max_inbound_per_peer: DEFAULT_MAX_INBOUND_PER_PEER,
            inbound_queue: DEFAULT_INBOUND_QUEUE,
        }
    }
}

impl Config {
    /// Sets the request timeout.
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
}

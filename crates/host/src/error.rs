use std::time::Duration;

use lp2p_core::{PeerId, ProtocolId};
use lp2p_multiselect::MultiselectError;
use lp2p_swarm::SwarmError;

/// Everything the host reports as failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// Connecting or listening failed (the swarm's error says where and why).
    #[error(transparent)]
    Swarm(#[from] SwarmError),
    /// The peer speaks none of the protocols offered.
    #[error(
        "peer {peer} supports none of the protocols offered: {}",
        list(offered)
    )]
    ProtocolNotSupported {
        /// The peer.
        peer: PeerId,
        /// What we offered, in order.
        offered: Vec<ProtocolId>,
    },
    /// Negotiating a stream's protocol failed for another reason (malformed messages, the
    /// stream closed).
    #[error("negotiating {} with {peer} failed: {source}", list(offered))]
    Negotiation {
        /// The peer.
        peer: PeerId,
        /// What we offered.
        offered: Vec<ProtocolId>,
        /// What went wrong.
        #[source]
        source: MultiselectError,
    },
    /// Negotiating a stream's protocol took too long.
    #[error("negotiating {} with {peer} timed out after {after:?}", list(offered))]
    NegotiationTimeout {
        /// The peer.
        peer: PeerId,
        /// What we offered.
        offered: Vec<ProtocolId>,
        /// The limit.
        after: Duration,
    },
    /// The only connection to the peer is limited (relayed) and the caller did not opt in
    /// to use it (see `Host::new_stream_allow_limited`).
    #[error(
        "the only connection to {peer} is limited (relayed); offered {}: use new_stream_allow_limited for protocols meant to run over relays",
        list(offered)
    )]
    LimitedConnection {
        /// The peer.
        peer: PeerId,
        /// The protocols the stream was for.
        offered: Vec<ProtocolId>,
    },
    /// The resource manager refused the stream: the denial names the scope (transient,
    /// peer, protocol or system), the resource, its limit and its usage.
    #[error("stream to {peer} refused by the resource manager: {denied}")]
    Resources {
        /// The peer.
        peer: PeerId,
        /// Which scope refused, and why.
        denied: lp2p_core::LimitDenied,
    },
    /// `new_stream` was called without any protocol.
    #[error("no protocol given to negotiate")]
    NoProtocols,
    /// The builder was missing something or listening failed.
    #[error("invalid host configuration: {0}")]
    InvalidConfig(String),
    /// The host is closed.
    #[error("the host is closed")]
    Closed,
}

fn list(protocols: &[ProtocolId]) -> String {
    protocols
        .iter()
        .map(ProtocolId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

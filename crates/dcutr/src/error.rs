//! The crate's error type.

use std::time::Duration;

use lp2p_core::PeerId;

/// What went wrong in a hole punch, and with which peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DcutrError {
    /// A message did not decode, or came out of turn. `peer` is `None` only straight out of
    /// the decoder.
    #[error("malformed DCUtR message{}: {what}", peer_suffix(.peer.as_ref()))]
    Malformed {
        /// The sender, once known.
        peer: Option<PeerId>,
        /// What was wrong.
        what: String,
    },
    /// Opening the DCUtR stream over the relayed connection failed.
    #[error("DCUtR with {peer}: {source}")]
    Host {
        /// The remote.
        peer: PeerId,
        /// The host's error.
        #[source]
        source: Box<lp2p_host::HostError>,
    },
    /// Reading or writing the stream failed (reset, closed, oversized frame).
    #[error("DCUtR stream with {peer} failed: {source}")]
    Stream {
        /// The remote.
        peer: PeerId,
        /// The I/O or framing error (boxed: keeps the error small).
        #[source]
        source: Box<lp2p_core::Error>,
    },
    /// The remote did not answer in time.
    #[error("DCUtR peer {peer} did not answer within {after:?}")]
    Timeout {
        /// The remote.
        peer: PeerId,
        /// How long we waited.
        after: Duration,
    },
    /// Neither side had an address worth dialing.
    #[error("DCUtR with {peer}: no address to dial (the remote sent none we can use)")]
    NoAddresses {
        /// The remote.
        peer: PeerId,
    },
    /// The direct dials failed (and no direct connection came in meanwhile).
    #[error("DCUtR with {peer}: the direct connection failed: {source}")]
    Dial {
        /// The remote.
        peer: PeerId,
        /// The swarm's error.
        #[source]
        source: Box<lp2p_swarm::SwarmError>,
    },
    /// No direct connection within the dial timeout.
    #[error("DCUtR with {peer}: no direct connection within {after:?}")]
    DialTimeout {
        /// The remote.
        peer: PeerId,
        /// How long we waited.
        after: Duration,
    },
    /// The service is gone (its host closed).
    #[error("the DCUtR service has stopped")]
    Stopped,
}

fn peer_suffix(peer: Option<&PeerId>) -> String {
    peer.map(|p| format!(" from {p}")).unwrap_or_default()
}

impl DcutrError {
    /// Fills in the peer of a [`Malformed`](DcutrError::Malformed) error from the decoder.
    pub(crate) fn with_peer(self, from: PeerId) -> DcutrError {
        match self {
            DcutrError::Malformed { peer: None, what } => DcutrError::Malformed {
                peer: Some(from),
                what,
            },
            other => other,
        }
    }
}

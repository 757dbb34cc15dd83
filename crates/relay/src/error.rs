//! The crate's error type.

use lp2p_core::{Multiaddr, PeerId};

use crate::message::{DecodeError, Status};
use crate::voucher::VoucherError;

/// What went wrong in the relay protocols, and with which peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// Connecting to the relay or opening a stream on it failed.
    #[error("relay {relay}: {source}")]
    Host {
        /// The relay (or target) peer.
        relay: PeerId,
        /// The host's error.
        #[source]
        source: Box<lp2p_host::HostError>,
    },
    /// The remote answered with a status other than OK.
    #[error("{peer} refused: {status}")]
    Refused {
        /// Who refused.
        peer: PeerId,
        /// Its status.
        status: Status,
    },
    /// A message from the remote did not decode.
    #[error("malformed message from {peer}: {source}")]
    Malformed {
        /// The sender.
        peer: PeerId,
        /// Why it did not decode.
        #[source]
        source: DecodeError,
    },
    /// The remote sent a message of the wrong type, or without a field it must carry.
    #[error("unexpected message from {peer}: {what}")]
    Unexpected {
        /// The sender.
        peer: PeerId,
        /// What was wrong.
        what: &'static str,
    },
    /// Reading or writing the stream failed (reset, closed, oversized frame).
    #[error("stream with {peer} failed: {source}")]
    Stream {
        /// The remote.
        peer: PeerId,
        /// The I/O or framing error (boxed: keeps the error small).
        #[source]
        source: Box<lp2p_core::Error>,
    },
    /// The remote did not answer in time.
    #[error("{peer} did not answer within {after:?}")]
    Timeout {
        /// The remote.
        peer: PeerId,
        /// How long we waited.
        after: std::time::Duration,
    },
    /// The address is not a relay circuit address we can use.
    #[error("invalid relay circuit address {addr}: {why}")]
    InvalidAddress {
        /// The address.
        addr: Multiaddr,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The client is not attached to a host (see `RelayClient::attach`), or the host closed.
    #[error("the relay client is not attached to a running host")]
    NotAttached,
    /// The relay's reservation voucher did not verify.
    #[error("voucher from relay {relay} rejected: {source}")]
    Voucher {
        /// The relay.
        relay: PeerId,
        /// Why (boxed: the envelope error is large and this variant is rare).
        #[source]
        source: Box<VoucherError>,
    },
    /// The only connection to the relay is itself relayed; relays are not chained.
    #[error("the connection to relay {relay} is relayed; relays are not chained")]
    RelayedRelay {
        /// The relay.
        relay: PeerId,
    },
    /// The relay granted a reservation that has already expired.
    #[error("relay {relay} granted a reservation that expired already (at {expire})")]
    Expired {
        /// The relay.
        relay: PeerId,
        /// The expiry it sent, in Unix seconds.
        expire: u64,
    },
}

impl RelayError {
    pub(crate) fn host(relay: PeerId, source: lp2p_host::HostError) -> RelayError {
        RelayError::Host {
            relay,
            source: Box::new(source),
        }
    }
}

//! The one error type of this crate.

use std::io;
use std::time::Duration;

use lp2p_core::PeerId;
use lp2p_core::identity::{DecodingError, ParseError};

use crate::PROTOCOL_ID;

/// Everything that can fail a `/plaintext/2.0.0` handshake.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlaintextError {
    /// Reading from or writing to the connection failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The remote closed the connection before its exchange message was complete.
    #[error(
        "the remote closed the connection during the handshake ({received} bytes of its exchange received)"
    )]
    ConnectionClosed {
        /// How many bytes of the remote's message (prefix included) had arrived.
        received: usize,
    },
    /// The exchange's length prefix was not a valid multiformats varint.
    #[error("invalid exchange length prefix: {0}")]
    InvalidLength(#[source] lp2p_core::Error),
    /// The exchange announced more bytes than the limit.
    #[error("exchange of {len} bytes exceeds the limit of {max} bytes")]
    ExchangeTooLarge {
        /// The announced length.
        len: u64,
        /// The limit in force.
        max: usize,
    },
    /// The exchange was not a valid protobuf `Exchange` message.
    #[error("the exchange is not a valid protobuf message: {0}")]
    Decode(#[from] prost::DecodeError),
    /// A field the handshake needs was absent.
    #[error("the exchange has no {0} field")]
    MissingField(&'static str),
    /// The `pubkey` field did not hold a public key we can decode.
    #[error("the exchange's public key is invalid: {0}")]
    InvalidPublicKey(#[source] DecodingError),
    /// The `id` field did not hold a valid peer id.
    #[error("the exchange's peer id is invalid: {0}")]
    InvalidPeerId(#[source] ParseError),
    /// The remote's key does not hash to the peer id it claims.
    #[error("the remote claims peer id {claimed} but its key belongs to {derived}")]
    IdMismatch {
        /// The id in the exchange (boxed to keep the error small).
        claimed: Box<PeerId>,
        /// The id derived from the key in the exchange.
        derived: Box<PeerId>,
    },
    /// We dialed one peer and another answered.
    #[error("expected peer {expected}, the remote is {actual}")]
    UnexpectedPeer {
        /// The peer we dialed.
        expected: Box<PeerId>,
        /// The peer that answered.
        actual: Box<PeerId>,
    },
    /// The handshake did not finish in time.
    #[error("the handshake timed out after {0:?}")]
    Timeout(Duration),
}

impl From<PlaintextError> for lp2p_core::Error {
    /// A timeout becomes [`lp2p_core::Error::Timeout`], a wrong remote
    /// [`lp2p_core::Error::PeerIdMismatch`], and everything else
    /// [`lp2p_core::Error::Security`] wrapping this error.
    fn from(err: PlaintextError) -> lp2p_core::Error {
        match err {
            PlaintextError::Timeout(after) => lp2p_core::Error::Timeout(after),
            PlaintextError::UnexpectedPeer { expected, actual } => {
                lp2p_core::Error::peer_id_mismatch(*expected, *actual)
            }
            other => lp2p_core::Error::Security {
                protocol: PROTOCOL_ID,
                source: Box::new(other),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_into_core_errors() {
        let a = lp2p_core::Keypair::generate_ed25519().public().to_peer_id();
        let b = lp2p_core::Keypair::generate_ed25519().public().to_peer_id();
        let err: lp2p_core::Error = PlaintextError::UnexpectedPeer {
            expected: Box::new(a),
            actual: Box::new(b),
        }
        .into();
        assert!(
            matches!(err, lp2p_core::Error::PeerIdMismatch { expected, actual } if *expected == a && *actual == b)
        );
        let err: lp2p_core::Error = PlaintextError::Timeout(Duration::from_secs(1)).into();
        assert!(matches!(err, lp2p_core::Error::Timeout(_)));
        let err: lp2p_core::Error = PlaintextError::MissingField("id").into();
        match err {
            lp2p_core::Error::Security { protocol, source } => {
                assert_eq!(protocol, "/plaintext/2.0.0");
                assert!(matches!(
                    source.downcast_ref::<PlaintextError>(),
                    Some(PlaintextError::MissingField("id"))
                ));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn mismatch_names_both_ids() {
        let a = lp2p_core::Keypair::generate_ed25519().public().to_peer_id();
        let b = lp2p_core::Keypair::generate_ed25519().public().to_peer_id();
        let text = PlaintextError::IdMismatch {
            claimed: Box::new(a),
            derived: Box::new(b),
        }
        .to_string();
        assert!(text.contains(&a.to_string()) && text.contains(&b.to_string()));
    }
}

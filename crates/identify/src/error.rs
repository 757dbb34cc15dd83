//! What can go wrong in identify, and with whom.

use std::time::Duration;

use lp2p_core::identity::DecodingError;
use lp2p_core::{MemoryDenied, PeerId};
use lp2p_host::HostError;
use lp2p_peerstore::record::RecordError;

/// Everything identify reports as failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentifyError {
    /// Opening or negotiating the identify stream failed (the peer may not support it).
    #[error("opening the identify stream to {peer} failed: {source}")]
    Stream {
        /// The peer.
        peer: Box<PeerId>,
        /// The host's error (boxed: it is large and returned rarely).
        #[source]
        source: Box<HostError>,
    },
    /// Reading or writing the stream failed.
    #[error("identify stream I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// The exchange did not finish within the timeout.
    #[error("identify exchange timed out after {0:?}")]
    Timeout(Duration),
    /// A message's length prefix is invalid (overlong varint).
    #[error("invalid length prefix: {0}")]
    InvalidLength(#[source] lp2p_core::Error),
    /// A message is larger than the receive limit.
    #[error("identify message of {len} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// The announced length.
        len: u64,
        /// The limit in force.
        max: usize,
    },
    /// The peer sent more messages on one stream than the limit.
    #[error("more than {max} identify messages on one stream")]
    TooManyMessages {
        /// The limit in force.
        max: usize,
    },
    /// The stream ended inside a message.
    #[error("the identify stream ended inside a message")]
    Truncated,
    /// The stream ended without any message (an answer must carry one).
    #[error("the identify stream ended without a message")]
    Empty,
    /// A message is not a valid `Identify` protobuf.
    #[error("malformed identify message: {0}")]
    Malformed(#[source] prost::DecodeError),
    /// The public key field does not decode.
    #[error("the identify public key does not decode: {0}")]
    InvalidPublicKey(#[source] DecodingError),
    /// The public key is not the key of the peer on the connection.
    #[error("peer {peer} sent the public key of {key_peer}")]
    PublicKeyMismatch {
        /// The peer on the connection.
        peer: Box<PeerId>,
        /// The peer the key belongs to.
        key_peer: Box<PeerId>,
    },
    /// No public key was sent and none is known for the peer.
    #[error("no public key known for {0}")]
    MissingPublicKey(Box<PeerId>),
    /// Our own signed peer record could not be made.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The host's resource manager refused memory for what the peer sent (see
    /// [`MEMORY_SERVICE`](crate::MEMORY_SERVICE)); the stream was reset.
    #[error("no memory to read identify data from {peer}: {denied}")]
    OutOfMemory {
        /// The peer whose data was being read.
        peer: Box<PeerId>,
        /// The scope that refused, with its numbers.
        #[source]
        denied: MemoryDenied,
    },
    /// The host is closed (or gone).
    #[error("the host is closed")]
    Closed,
}

impl From<IdentifyError> for lp2p_core::Error {
    /// A key mismatch becomes [`lp2p_core::Error::PeerIdMismatch`], a timeout
    /// [`lp2p_core::Error::Timeout`], a frame over the limit
    /// [`lp2p_core::Error::FrameTooLarge`], a memory refusal [`lp2p_core::Error::OutOfMemory`],
    /// I/O stays I/O; the rest become an `InvalidData` I/O error wrapping the identify error.
    fn from(err: IdentifyError) -> Self {
        match err {
            IdentifyError::PublicKeyMismatch { peer, key_peer } => {
                lp2p_core::Error::PeerIdMismatch {
                    expected: peer,
                    actual: key_peer,
                }
            }
            IdentifyError::Timeout(after) => lp2p_core::Error::Timeout(after),
            IdentifyError::MessageTooLarge { len, max } => {
                lp2p_core::Error::FrameTooLarge { len, max }
            }
            IdentifyError::InvalidLength(inner) => inner,
            IdentifyError::Io(io) => lp2p_core::Error::Io(io),
            IdentifyError::OutOfMemory { denied, .. } => lp2p_core::Error::OutOfMemory(denied),
            other => {
                lp2p_core::Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, other))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_into_core_errors() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let err = IdentifyError::PublicKeyMismatch {
            peer: Box::new(a),
            key_peer: Box::new(b),
        };
        assert!(err.to_string().contains(&b.to_string()));
        match lp2p_core::Error::from(err) {
            lp2p_core::Error::PeerIdMismatch { expected, actual } => {
                assert_eq!((*expected, *actual), (a, b));
            }
            other => panic!("unexpected {other:?}"),
        }
        let timeout = Duration::from_secs(5);
        assert!(matches!(
            lp2p_core::Error::from(IdentifyError::Timeout(timeout)),
            lp2p_core::Error::Timeout(t) if t == timeout
        ));
        assert!(matches!(
            lp2p_core::Error::from(IdentifyError::MessageTooLarge {
                len: 9000,
                max: 8192
            }),
            lp2p_core::Error::FrameTooLarge {
                len: 9000,
                max: 8192
            }
        ));
        let denied = lp2p_core::MemoryDenied {
            scope: "service identify".into(),
            used: 0,
            requested: 4096,
            limit: 64,
        };
        let err = IdentifyError::OutOfMemory {
            peer: Box::new(a),
            denied: denied.clone(),
        };
        let text = err.to_string();
        assert!(
            text.contains(&a.to_string()) && text.contains("service identify"),
            "{text}"
        );
        assert!(matches!(
            lp2p_core::Error::from(err),
            lp2p_core::Error::OutOfMemory(d) if d == denied
        ));
        match lp2p_core::Error::from(IdentifyError::TooManyMessages { max: 10 }) {
            lp2p_core::Error::Io(io) => {
                assert_eq!(io.kind(), std::io::ErrorKind::InvalidData);
                assert!(io.to_string().contains("more than 10"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

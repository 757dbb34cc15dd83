//! The peerstore's error type.

use lp2p_core::{Multiaddr, PeerId};

/// What the peerstore refused to store, and for which peer.
///
/// Every refusing operation is all or nothing: when it returns an error, nothing it was
/// given has been stored. Peer ids are boxed to keep the error small.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerstoreError {
    /// A public key was offered for a peer id it does not hash to.
    #[error("the public key belongs to peer {key_peer}, not to peer {peer}")]
    PublicKeyMismatch {
        /// The peer the key was offered for.
        peer: Box<PeerId>,
        /// The peer id the key actually hashes to.
        key_peer: Box<PeerId>,
    },
    /// An address ends in `/p2p/<id>` naming a peer other than the one it was given for.
    #[error("address {addr} names peer {addr_peer}, not peer {peer}")]
    AddrPeerMismatch {
        /// The peer the address was offered for.
        peer: Box<PeerId>,
        /// The address as given.
        addr: Multiaddr,
        /// The peer its trailing `/p2p/` names.
        addr_peer: Box<PeerId>,
    },
    /// An address has no transport part (it was empty, or only `/p2p/<peer>`).
    #[error("empty address for peer {peer}")]
    EmptyAddr {
        /// The peer the address was offered for.
        peer: Box<PeerId>,
    },
    /// An address is longer than the configured limit.
    #[error("address of {len} bytes for peer {peer} exceeds the limit of {max} bytes")]
    AddrTooLong {
        /// The peer the address was offered for.
        peer: Box<PeerId>,
        /// The address's length in bytes.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// Storing the protocols would give the peer more than the configured limit.
    #[error("peer {peer} would have more than {max} protocols")]
    TooManyProtocols {
        /// The peer.
        peer: Box<PeerId>,
        /// The limit in force.
        max: usize,
    },
    /// A protocol id is empty or longer than the configured limit.
    #[error("protocol id of {len} bytes for peer {peer} is empty or exceeds {max} bytes")]
    InvalidProtocol {
        /// The peer.
        peer: Box<PeerId>,
        /// The protocol id's length in bytes.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// A new metadata key would give the peer more than the configured number of entries.
    #[error("peer {peer} would have more than {max} metadata entries")]
    TooManyMetadataEntries {
        /// The peer.
        peer: Box<PeerId>,
        /// The limit in force.
        max: usize,
    },
    /// Storing the value would make the peer's metadata larger than the configured limit.
    #[error("metadata of peer {peer} would take {size} bytes, over the limit of {max} bytes")]
    MetadataTooLarge {
        /// The peer.
        peer: Box<PeerId>,
        /// The size it would have reached (keys and values summed), saturating.
        size: usize,
        /// The limit in force.
        max: usize,
    },
}

impl From<PeerstoreError> for lp2p_core::Error {
    /// Key and address mismatches become [`lp2p_core::Error::PeerIdMismatch`] (expected: the
    /// peer it was offered for; actual: the peer the key or address names); the refusals by a
    /// limit become an `InvalidInput` I/O error wrapping the peerstore error.
    fn from(err: PeerstoreError) -> Self {
        match err {
            PeerstoreError::PublicKeyMismatch {
                peer,
                key_peer: actual,
            }
            | PeerstoreError::AddrPeerMismatch {
                peer,
                addr_peer: actual,
                ..
            } => lp2p_core::Error::PeerIdMismatch {
                expected: peer,
                actual,
            },
            other => {
                lp2p_core::Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidInput, other))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatch_converts_to_core_peer_id_mismatch() {
        let a = PeerId::random();
        let b = PeerId::random();
        let err = PeerstoreError::PublicKeyMismatch {
            peer: Box::new(a),
            key_peer: Box::new(b),
        };
        let text = err.to_string();
        assert!(text.contains(&a.to_string()) && text.contains(&b.to_string()));
        match lp2p_core::Error::from(err) {
            lp2p_core::Error::PeerIdMismatch { expected, actual } => {
                assert_eq!(*expected, a);
                assert_eq!(*actual, b);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn limit_converts_to_invalid_input() {
        let err = PeerstoreError::TooManyProtocols {
            peer: Box::new(PeerId::random()),
            max: 3,
        };
        match lp2p_core::Error::from(err) {
            lp2p_core::Error::Io(io) => {
                assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
                assert!(io.to_string().contains("more than 3 protocols"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn error_is_smaller_than_a_peer_id() {
        // Boxing the peer ids keeps `Result<(), PeerstoreError>` cheap to return.
        let size = std::mem::size_of::<PeerstoreError>();
        assert!(size < std::mem::size_of::<PeerId>(), "{size} bytes");
    }
}

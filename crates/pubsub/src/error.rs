//! The crate's one error enum.

use lp2p_core::PeerId;

use crate::types::Topic;

/// Everything that can go wrong in lp2p-pubsub.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PubsubError {
    /// An RPC from a peer is larger than the configured maximum.
    #[error("RPC of {size} bytes from {peer} exceeds the maximum of {max} bytes")]
    RpcTooLarge {
        /// The sender.
        peer: PeerId,
        /// The RPC size.
        size: usize,
        /// The limit in force (`Config::max_transmit_size`).
        max: usize,
    },
    /// An RPC from a peer is not a valid protobuf RPC.
    #[error("malformed RPC from {peer}: {reason}")]
    MalformedRpc {
        /// The sender.
        peer: PeerId,
        /// What is wrong with it.
        reason: String,
    },
    /// An RPC came from a peer the core was not told about.
    #[error("RPC from {0}, which is not a connected pubsub peer")]
    UnknownPeer(PeerId),
    /// A local publish whose encoded RPC would exceed the maximum transmit size: no peer
    /// would accept it, so it fails here instead of being dropped silently downstream.
    #[error(
        "cannot publish to {topic}: the encoded RPC would be {size} bytes, over the maximum \
         transmit size of {max} bytes (the payload is {payload} bytes)"
    )]
    MessageTooLarge {
        /// The topic.
        topic: Topic,
        /// The size of the RPC that would carry the message.
        size: usize,
        /// The limit in force (`Config::max_transmit_size`).
        max: usize,
        /// The payload size.
        payload: usize,
    },
    /// A local publish was rejected by a local validator.
    #[error("the local validator for {0} rejected the message")]
    PublishRejected(Topic),
    /// A local publish produced a message id we have seen already (for example the same
    /// payload twice with a content-addressed message id).
    #[error("a message with the same id was already published or seen")]
    Duplicate,
    /// Signing a message with the local key failed.
    #[error("signing the message failed: {0}")]
    Signing(String),
    /// The configuration is inconsistent.
    #[error("invalid pubsub configuration: {0}")]
    InvalidConfig(String),
    /// The host the pubsub service runs on is closed (or gone).
    #[error("the host is closed: the pubsub service has stopped")]
    Closed,
}

impl From<PubsubError> for lp2p_core::Error {
    fn from(err: PubsubError) -> Self {
        // lp2p-core has no variant for a protocol-level error, so pubsub errors travel as
        // I/O errors whose source is the pubsub error (reach it with `downcast_ref`).
        let kind = match &err {
            PubsubError::RpcTooLarge { .. } | PubsubError::MalformedRpc { .. } => {
                std::io::ErrorKind::InvalidData
            }
            PubsubError::UnknownPeer(_) => std::io::ErrorKind::NotConnected,
            _ => std::io::ErrorKind::InvalidInput,
        };
        lp2p_core::Error::Io(std::io::Error::new(kind, err))
    }
}

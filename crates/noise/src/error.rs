//! The crate's one error type, and where each failure happened.

use std::fmt;
use std::time::Duration;

use lp2p_core::PeerId;
use lp2p_core::identity::{DecodingError, SigningError};

use crate::PROTOCOL_ID;

/// Which part of the Noise session a failure belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Handshake message 1, initiator to responder (`-> e`).
    Message1,
    /// Handshake message 2, responder to initiator (`<- e, ee, s, es`).
    Message2,
    /// Handshake message 3, initiator to responder (`-> s, se`).
    Message3,
    /// Transport messages after the handshake.
    Transport,
}

impl Stage {
    /// The stage of handshake message `index` (0, 1 or 2); `Transport` past the handshake.
    pub(crate) fn of_message(index: usize) -> Stage {
        match index {
            0 => Stage::Message1,
            1 => Stage::Message2,
            2 => Stage::Message3,
            _ => Stage::Transport,
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Message1 => "handshake message 1 (-> e)",
            Stage::Message2 => "handshake message 2 (<- e, ee, s, es)",
            Stage::Message3 => "handshake message 3 (-> s, se)",
            Stage::Transport => "transport",
        })
    }
}

/// Everything that can go wrong in a Noise session.
///
/// Handshake failures name the [`Stage`] they happened in. At the
/// [`SecurityUpgrader`](lp2p_core::SecurityUpgrader) boundary a `NoiseError` becomes
/// [`lp2p_core::Error::Security`] with protocol `/noise` (reach it with
/// [`std::error::Error::source`] and `downcast_ref`), except
/// [`NoiseError::PeerIdMismatch`], which becomes [`lp2p_core::Error::PeerIdMismatch`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NoiseError {
    /// A handshake message is shorter than its pattern requires.
    #[error("{stage}: message of {len} bytes is shorter than the {min} bytes it must carry")]
    MessageTooShort {
        /// The message.
        stage: Stage,
        /// Its length.
        len: usize,
        /// The least it must be.
        min: usize,
    },
    /// A handshake message (or the payload we would send) is larger than the limit.
    #[error("{stage}: message of {len} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// The message.
        stage: Stage,
        /// Its (announced) length.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The initiator's first message carries a payload. libp2p sends its handshake payload in
    /// messages 2 and 3 only, and message 1 is unencrypted and unauthenticated, so bytes there
    /// can only be a confused or hostile peer. (rust-libp2p 0.57 answers such a message: the
    /// hostile-peer suite's `noise-first-message-payload` case, docs/hostile-peers.md.)
    #[error("{stage}: carries a payload of {len} bytes; the first message must carry none")]
    UnexpectedPayload {
        /// The message (always message 1).
        stage: Stage,
        /// The payload's length.
        len: usize,
    },
    /// The remote's X25519 key is of low order: the Diffie-Hellman result is all zeros.
    #[error("{stage}: the remote's X25519 key is invalid (low order point)")]
    InvalidKey {
        /// The message that carried the key.
        stage: Stage,
    },
    /// A ciphertext's authentication tag did not verify.
    #[error("{stage}: decryption failed (the authentication tag does not verify)")]
    Decrypt {
        /// Where it happened.
        stage: Stage,
    },
    /// The handshake payload is not a valid `NoiseHandshakePayload` protobuf.
    #[error("{stage}: the handshake payload is not a valid protobuf: {source}")]
    PayloadDecode {
        /// The message that carried the payload.
        stage: Stage,
        /// The protobuf error.
        #[source]
        source: prost::DecodeError,
    },
    /// The handshake payload has no `identity_key`.
    #[error("{stage}: the handshake payload has no identity key")]
    MissingIdentityKey {
        /// The message that carried the payload.
        stage: Stage,
    },
    /// The handshake payload has no `identity_sig`.
    #[error("{stage}: the handshake payload has no identity signature")]
    MissingIdentitySignature {
        /// The message that carried the payload.
        stage: Stage,
    },
    /// The `identity_key` is not a valid (or supported) libp2p public key.
    #[error("{stage}: the identity key is invalid: {source}")]
    InvalidIdentityKey {
        /// The message that carried the payload.
        stage: Stage,
        /// Why the key was rejected.
        #[source]
        source: DecodingError,
    },
    /// The `identity_sig` does not verify against the identity key and the Noise static key.
    #[error("{stage}: the identity signature does not verify over the Noise static key")]
    BadSignature {
        /// The message that carried the payload.
        stage: Stage,
    },
    /// The remote proved another identity than the one we dialed.
    #[error("peer id mismatch: expected {expected}, the remote is {actual}")]
    PeerIdMismatch {
        /// The peer we meant to reach.
        expected: Box<PeerId>,
        /// The peer the remote proved to be.
        actual: Box<PeerId>,
    },
    /// Signing our own static key with the identity key failed.
    #[error("signing the Noise static key failed: {0}")]
    Signing(#[source] SigningError),
    /// A cipher's nonce reached 2^64 - 1, which Noise reserves: the session must end.
    #[error("{stage}: nonce exhausted, the session must be closed")]
    NonceExhausted {
        /// Where it happened.
        stage: Stage,
    },
    /// A transport frame is too short to hold the 16-byte authentication tag.
    #[error("transport frame of {len} bytes is shorter than the 16-byte authentication tag")]
    FrameTooShort {
        /// The frame's announced length.
        len: usize,
    },
    /// The connection ended in the middle of a frame.
    #[error("{stage}: the connection closed in the middle of a frame")]
    TruncatedFrame {
        /// Where it happened.
        stage: Stage,
    },
    /// The remote closed the connection before the handshake finished.
    #[error("{stage}: the remote closed the connection")]
    UnexpectedEof {
        /// The message we were waiting for.
        stage: Stage,
    },
    /// Reading or writing the underlying connection failed.
    #[error("{stage}: I/O error: {source}")]
    Io {
        /// Where it happened.
        stage: Stage,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The handshake did not finish within the configured timeout.
    #[error("the handshake did not finish within {0:?}")]
    Timeout(Duration),
    /// A handshake method was called out of turn (a bug in the caller, not the remote).
    #[error("handshake method called out of turn: {0}")]
    OutOfTurn(&'static str),
}

impl From<NoiseError> for lp2p_core::Error {
    fn from(err: NoiseError) -> Self {
        match err {
            NoiseError::PeerIdMismatch { expected, actual } => {
                lp2p_core::Error::peer_id_mismatch(*expected, *actual)
            }
            other => lp2p_core::Error::Security {
                protocol: PROTOCOL_ID,
                source: Box::new(other),
            },
        }
    }
}

impl From<NoiseError> for std::io::Error {
    fn from(err: NoiseError) -> Self {
        use std::io::ErrorKind;
        let kind = match &err {
            NoiseError::TruncatedFrame { .. } | NoiseError::UnexpectedEof { .. } => {
                ErrorKind::UnexpectedEof
            }
            NoiseError::Timeout(_) => ErrorKind::TimedOut,
            NoiseError::Io { source, .. } => source.kind(),
            NoiseError::NonceExhausted { .. } | NoiseError::OutOfTurn(_) => ErrorKind::Other,
            _ => ErrorKind::InvalidData,
        };
        std::io::Error::new(kind, err)
    }
}

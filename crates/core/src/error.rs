use std::time::Duration;

use libp2p_identity::PeerId;
use multiaddr::Multiaddr;

/// A boxed error from a component (a security channel or muxer's own error type).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in the core traits and helpers.
///
/// Component crates keep their own detailed error enums and convert into this one at the
/// trait boundary, wrapping themselves in [`Error::Security`] or [`Error::Muxer`] (reach the
/// detail with [`std::error::Error::source`] or `downcast_ref`). Failures that callers act on
/// — an unsupported address, a peer id mismatch, a closed connection, a timeout — have their
/// own variants so no downcasting is needed for them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error from the underlying socket or stream.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// No transport (or not this transport) can dial or listen on the address.
    #[error("unsupported address {0}")]
    UnsupportedAddress(Multiaddr),
    /// Dialing an address failed at the transport level.
    #[error("dialing {addr} failed: {source}")]
    Dial {
        /// The address dialed.
        addr: Multiaddr,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// Listening on an address failed.
    #[error("listening on {addr} failed: {source}")]
    Listen {
        /// The address asked for.
        addr: Multiaddr,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A string that is not an IP subnet in `ADDR/PREFIX` form (e.g. `10.0.0.0/8`).
    #[error("not an IP subnet (expected ADDR/PREFIX, e.g. 10.0.0.0/8): {0}")]
    InvalidSubnet(String),
    /// A varint ran past the 9 bytes the multiformats spec allows.
    #[error("varint longer than 9 bytes")]
    VarintOverflow,
    /// A varint had redundant trailing zero groups (not minimally encoded).
    #[error("varint is not minimally encoded")]
    VarintNotMinimal,
    /// A length prefix announced more bytes than the limit for this frame.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The announced length.
        len: u64,
        /// The limit in force.
        max: usize,
    },
    /// The stream ended in the middle of a varint or a frame.
    #[error("unexpected end of stream while reading {what}")]
    UnexpectedEof {
        /// What was being read (for example "frame length" or "frame body").
        what: &'static str,
    },
    /// The remote proved an identity other than the one we dialed.
    #[error("peer id mismatch: expected {expected}, the remote is {actual}")]
    PeerIdMismatch {
        /// The peer id we meant to reach (boxed to keep `Error` small).
        expected: Box<PeerId>,
        /// The peer id the remote proved.
        actual: Box<PeerId>,
    },
    /// multistream-select of the security protocol failed (no common protocol, or a
    /// malformed negotiation).
    #[error("negotiating the security protocol failed: {0}")]
    SecurityNegotiation(#[source] BoxError),
    /// multistream-select of the stream muxer failed.
    #[error("negotiating the stream muxer failed: {0}")]
    MuxerNegotiation(#[source] BoxError),
    /// Resolving a name in an address failed (`/dns*`, `/dnsaddr`).
    #[error("resolving {addr} failed: {source}")]
    Resolve {
        /// The address being resolved.
        addr: Multiaddr,
        /// The resolver's own error.
        #[source]
        source: BoxError,
    },
    /// The local node refused the connection (a limit or a gate) after it was
    /// authenticated; the source says which rule.
    #[error("connection refused locally: {0}")]
    Denied(#[source] BoxError),
    /// A security handshake failed.
    #[error("{protocol} handshake failed: {source}")]
    Security {
        /// The security protocol id.
        protocol: &'static str,
        /// The component's own error.
        #[source]
        source: BoxError,
    },
    /// A stream muxer failed.
    #[error("{protocol} error: {source}")]
    Muxer {
        /// The muxer protocol id.
        protocol: &'static str,
        /// The component's own error.
        #[source]
        source: BoxError,
    },
    /// A protocol above the muxer (identify, pubsub, ...) failed.
    #[error("{protocol}: {source}")]
    Protocol {
        /// The protocol id or name.
        protocol: &'static str,
        /// The component's own error.
        #[source]
        source: BoxError,
    },
    /// The connection was closed (locally or by the remote).
    #[error("connection closed")]
    ConnectionClosed,
    /// A memory reservation was refused (by a [`MemoryAccount`](crate::MemoryAccount)'s
    /// budget) before a buffer could grow; the denial names the scope, its limit and usage.
    #[error("{0}")]
    OutOfMemory(#[from] crate::MemoryDenied),
    /// An operation did not complete in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// A spawned task was aborted before it finished.
    #[error("task aborted")]
    TaskAborted,
    /// A spawned task panicked; the message is the panic payload when it was a string.
    #[error("task panicked: {0}")]
    TaskPanicked(String),
}

impl Error {
    /// An [`Error::PeerIdMismatch`] for these two peers.
    pub fn peer_id_mismatch(expected: PeerId, actual: PeerId) -> Error {
        Error::PeerIdMismatch {
            expected: Box::new(expected),
            actual: Box::new(actual),
        }
    }
}

impl From<Error> for std::io::Error {
    fn from(err: Error) -> Self {
        match err {
            Error::Io(io) => io,
            Error::UnexpectedEof { .. } => {
                std::io::Error::new(std::io::ErrorKind::UnexpectedEof, err)
            }
            Error::Timeout(_) => std::io::Error::new(std::io::ErrorKind::TimedOut, err),
            Error::ConnectionClosed => {
                std::io::Error::new(std::io::ErrorKind::ConnectionAborted, err)
            }
            Error::OutOfMemory(_) => std::io::Error::new(std::io::ErrorKind::OutOfMemory, err),
            other => std::io::Error::new(std::io::ErrorKind::InvalidData, other),
        }
    }
}

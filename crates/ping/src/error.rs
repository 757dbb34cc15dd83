//! What can go wrong with a ping, and with whom.

use std::time::Duration;

use lp2p_core::PeerId;
use lp2p_host::HostError;

/// Why a ping failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PingError {
    /// Connecting, opening the stream or negotiating `/ipfs/ping/1.0.0` failed (the peer may
    /// not support ping).
    #[error("opening a ping stream to {peer} failed: {source}")]
    Stream {
        /// The peer.
        peer: Box<PeerId>,
        /// The host's error (boxed: it is large and returned rarely).
        #[source]
        source: Box<HostError>,
    },
    /// Writing the ping or reading the echo failed (the stream was reset or closed early).
    #[error("ping of {peer} failed: {source}")]
    Io {
        /// The peer.
        peer: Box<PeerId>,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The peer echoed other bytes than the ones sent.
    #[error("peer {0} answered the ping with other bytes than were sent")]
    Mismatch(Box<PeerId>),
    /// No full echo within the timeout.
    #[error("ping of {peer} timed out after {after:?}")]
    Timeout {
        /// The peer.
        peer: Box<PeerId>,
        /// The limit in force.
        after: Duration,
    },
    /// The host is closed (or gone).
    #[error("the host is closed")]
    Closed,
}

//! What can go wrong with a request, told apart.

use std::time::Duration;

use lp2p_core::{PeerId, ProtocolId};

use crate::codec::CodecError;

/// Why a request (ours, or one we were answering) failed. Each variant names the peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// A message was over its size limit: ours before sending (nothing was sent), or the
    /// remote's while reading (the stream was reset).
    #[error("{what} for {peer} is too large: {size} bytes or more, the limit is {max}")]
    MessageTooLarge {
        /// The remote peer.
        peer: PeerId,
        /// `"request"` or `"response"`.
        what: &'static str,
        /// The size seen (at least this many bytes).
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The peer speaks none of our protocols (it answered `na` to each).
    #[error("{peer} supports none of the request protocols {}", list(protocols))]
    ProtocolNotSupported {
        /// The remote peer.
        peer: PeerId,
        /// What we offered.
        protocols: Vec<ProtocolId>,
    },
    /// The exchange did not finish within the request timeout.
    #[error("request to {peer} timed out after {after:?}")]
    Timeout {
        /// The remote peer.
        peer: PeerId,
        /// The limit.
        after: Duration,
    },
    /// The connection closed (or the stream broke with it) before the exchange finished.
    #[error("the connection to {peer} closed before the exchange finished: {cause}")]
    ConnectionClosed {
        /// The remote peer.
        peer: PeerId,
        /// What the stream reported.
        cause: String,
    },
    /// The remote reset the stream (it refused or abandoned the request).
    #[error("{peer} reset the request stream")]
    Reset {
        /// The remote peer.
        peer: PeerId,
    },
    /// The remote read the request and closed the stream without writing a response.
    #[error("{peer} closed the stream without answering")]
    RemoteClosedWithoutAnswer {
        /// The remote peer.
        peer: PeerId,
    },
    /// We could not connect to the peer.
    #[error("cannot reach {peer}: {source}")]
    Dial {
        /// The remote peer.
        peer: PeerId,
        /// The host's error.
        #[source]
        source: Box<lp2p_host::HostError>,
    },
    /// A message could not be encoded or decoded.
    #[error("{what} for {peer}: {source}")]
    Codec {
        /// The remote peer.
        peer: PeerId,
        /// `"request"` or `"response"`.
        what: &'static str,
        /// The codec's error.
        #[source]
        source: CodecError,
    },
    /// Another I/O error on the stream.
    #[error("I/O error with {peer}: {source}")]
    Io {
        /// The remote peer.
        peer: PeerId,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The protocol does not allow this direction (outbound requests with
    /// `ProtocolSupport::Inbound`).
    #[error("outbound requests are not enabled for these protocols")]
    OutboundDisabled,
    /// The host (or the service) is closed.
    #[error("the request-response service is closed")]
    Closed,
}

impl RequestError {
    /// Classifies an I/O error seen on a request stream.
    pub(crate) fn from_io(peer: PeerId, err: std::io::Error, connection_closed: bool) -> Self {
        use std::io::ErrorKind;
        if connection_closed {
            return RequestError::ConnectionClosed {
                peer,
                cause: err.to_string(),
            };
        }
        match err.kind() {
            ErrorKind::ConnectionReset => RequestError::Reset { peer },
            ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
            | ErrorKind::NotConnected
            | ErrorKind::UnexpectedEof => RequestError::ConnectionClosed {
                peer,
                cause: err.to_string(),
            },
            _ => RequestError::Io { peer, source: err },
        }
    }
}

fn list(protocols: &[ProtocolId]) -> String {
    protocols
        .iter()
        .map(ProtocolId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

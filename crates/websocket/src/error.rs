use std::io;
use std::time::Duration;

use lp2p_core::Multiaddr;

/// Everything that can go wrong on a WebSocket connection: the opening handshake, a frame
/// from the remote that breaks RFC 6455 or our limits, TLS, or the socket.
///
/// Errors that come from the remote's bytes name what was wrong with them; errors on a
/// connection are turned into [`std::io::Error`]s (kind `InvalidData` for protocol
/// violations) with this error as the source, so `downcast_ref::<WsError>()` recovers it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WsError {
    /// The address is not a WebSocket address this transport can dial or listen on.
    #[error("{0} is not a WebSocket address this transport handles")]
    UnsupportedAddress(Multiaddr),
    /// `/tls/ws` (or `/wss`) was asked for but no server certificate is configured.
    #[error("listening on {0} needs a TLS certificate and key (none configured)")]
    NoServerCertificate(Multiaddr),
    /// A certificate or key could not be loaded or generated.
    #[error("certificate or key: {0}")]
    Certificate(String),
    /// The opening handshake (HTTP/1.1 upgrade) was malformed or refused; the text says
    /// what was wrong.
    #[error("WebSocket handshake with {remote} failed: {reason}")]
    Handshake {
        /// The remote's address.
        remote: Multiaddr,
        /// What was wrong.
        reason: String,
    },
    /// The server answered the upgrade request with another status than 101.
    #[error("WebSocket handshake with {remote} refused with HTTP status {status}")]
    Refused {
        /// The remote's address.
        remote: Multiaddr,
        /// The HTTP status code.
        status: u16,
    },
    /// The handshake did not finish in time.
    #[error("WebSocket handshake with {remote} timed out after {after:?}")]
    HandshakeTimeout {
        /// The remote's address.
        remote: Multiaddr,
        /// The limit in force.
        after: Duration,
    },
    /// The TLS handshake failed.
    #[error("TLS with {remote} failed: {source}")]
    Tls {
        /// The remote's address.
        remote: Multiaddr,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A frame broke RFC 6455 framing rules; the text names the rule.
    #[error("WebSocket protocol violation: {0}")]
    Protocol(&'static str),
    /// A text frame arrived: libp2p carries its bytes in binary frames only.
    #[error("text frame received; libp2p over WebSocket carries binary frames only")]
    TextFrame,
    /// A frame announced a payload above the frame limit.
    #[error("WebSocket frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The announced payload length.
        len: u64,
        /// The limit in force.
        max: u64,
    },
    /// A fragmented message grew past the message limit.
    #[error("WebSocket message of at least {len} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// The message length so far.
        len: u64,
        /// The limit in force.
        max: u64,
    },
    /// The remote's close frame was malformed (bad length, status code or reason).
    #[error("malformed close frame: {0}")]
    BadClose(&'static str),
    /// Data was written after the connection was closed.
    #[error("the WebSocket connection is closed for writing")]
    Closed,
    /// The connection ended in the middle of a frame.
    #[error("the connection ended in the middle of a WebSocket frame")]
    TruncatedFrame,
    /// An I/O error on the socket.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

impl WsError {
    /// The close status code (RFC 6455 section 7.4.1) we send when this error ends the
    /// connection.
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::TextFrame => crate::close_code::UNSUPPORTED_DATA,
            WsError::FrameTooLarge { .. } | WsError::MessageTooLarge { .. } => {
                crate::close_code::TOO_BIG
            }
            _ => crate::close_code::PROTOCOL_ERROR,
        }
    }
}

impl From<WsError> for io::Error {
    fn from(err: WsError) -> io::Error {
        match err {
            WsError::Io(io) => io,
            WsError::TruncatedFrame => io::Error::new(io::ErrorKind::UnexpectedEof, err),
            WsError::Closed => io::Error::new(io::ErrorKind::BrokenPipe, err),
            WsError::HandshakeTimeout { .. } => io::Error::new(io::ErrorKind::TimedOut, err),
            WsError::Refused { .. } => io::Error::new(io::ErrorKind::ConnectionRefused, err),
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

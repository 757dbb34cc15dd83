//! The crate's one error type.

use std::net::SocketAddr;
use std::time::Duration;

use lp2p_core::{Multiaddr, PeerId};
use lp2p_tls::TlsError;

/// Everything that can go wrong in the QUIC transport.
///
/// Variants name the remote address (and peer, once known). At the
/// [`Transport`](lp2p_core::Transport) boundary a `QuicError` becomes the matching
/// `lp2p_core::Error`: `UnsupportedAddress`, `Dial` (the remote could not be reached,
/// refused, timed out, or the address is draft-29), `Listen`, `PeerIdMismatch`, `Timeout`,
/// `Denied`, or `Security { protocol: "/tls/1.0.0" }` for a failed TLS handshake.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuicError {
    /// The address is not a `/ip4|ip6/.../udp/PORT/quic-v1` address.
    #[error("not a QUIC address: {0}")]
    UnsupportedAddress(Multiaddr),
    /// The address is QUIC draft-29 (`/quic`), which this transport does not speak.
    #[error(
        "{0}: QUIC draft-29 (/quic) is not supported, only QUIC version 1 (/quic-v1, RFC 9000)"
    )]
    Draft29(Multiaddr),
    /// Binding or configuring the UDP socket failed.
    #[error("binding a UDP socket on {addr} failed: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// quinn-proto refused to start the connection (for example an unspecified address or
    /// port 0).
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The remote address.
        addr: SocketAddr,
        /// quinn-proto's reason.
        reason: String,
    },
    /// The TLS handshake failed: a certificate rule was broken (ours or the remote's
    /// verdict), or the peer is not the one we dialed.
    #[error("TLS handshake with {addr} failed: {source}")]
    Tls {
        /// The remote address.
        addr: SocketAddr,
        /// What failed.
        #[source]
        source: std::sync::Arc<TlsError>,
    },
    /// The handshake did not finish in time.
    #[error("the QUIC handshake with {addr} did not finish within {timeout:?}")]
    HandshakeTimeout {
        /// The remote address.
        addr: SocketAddr,
        /// The limit.
        timeout: Duration,
    },
    /// The connection failed or was closed (by either side) before or after the handshake.
    #[error("QUIC connection with {addr} lost: {reason}")]
    ConnectionLost {
        /// The remote address.
        addr: SocketAddr,
        /// quinn-proto's reason (a transport error, a close by the peer, a timeout, ...).
        reason: quinn_proto::ConnectionError,
    },
    /// The local node refused the authenticated peer (a limit or a gate).
    #[error("refused {peer} at {addr}: {reason}")]
    Denied {
        /// The remote address.
        addr: SocketAddr,
        /// The peer.
        peer: Box<PeerId>,
        /// Which rule.
        reason: String,
    },
    /// The endpoint's UDP socket failed and the endpoint is closed.
    #[error("the QUIC endpoint on {addr} is closed")]
    EndpointClosed {
        /// The endpoint's bound address.
        addr: SocketAddr,
    },
}

/// The protocol id reported as the muxer of QUIC connections (QUIC's native streams).
pub(crate) const MUXER_PROTOCOL: &str = "quic-v1";

impl QuicError {
    /// The `io::ErrorKind` closest to this failure.
    pub fn io_kind(&self) -> std::io::ErrorKind {
        use quinn_proto::ConnectionError as C;
        use std::io::ErrorKind;
        match self {
            QuicError::UnsupportedAddress(_) | QuicError::Draft29(_) => ErrorKind::Unsupported,
            QuicError::Bind { source, .. } => source.kind(),
            QuicError::HandshakeTimeout { .. } => ErrorKind::TimedOut,
            QuicError::ConnectionLost { reason, .. } => match reason {
                C::TimedOut => ErrorKind::TimedOut,
                C::ConnectionClosed(close)
                    if close.error_code == quinn_proto::TransportErrorCode::CONNECTION_REFUSED =>
                {
                    ErrorKind::ConnectionRefused
                }
                C::Reset => ErrorKind::ConnectionReset,
                _ => ErrorKind::ConnectionAborted,
            },
            QuicError::EndpointClosed { .. } => ErrorKind::NotConnected,
            QuicError::Denied { .. } => ErrorKind::PermissionDenied,
            QuicError::Connect { .. } | QuicError::Tls { .. } => ErrorKind::InvalidData,
        }
    }

    /// The error at the [`Transport`](lp2p_core::Transport) boundary when dialing `addr`:
    /// failures to reach the remote are [`lp2p_core::Error::Dial`], a failed handshake is a
    /// security error (or a peer id mismatch), a local refusal is `Denied`.
    pub(crate) fn into_dial_error(self, addr: &Multiaddr) -> lp2p_core::Error {
        match self {
            err @ (QuicError::Tls { .. }
            | QuicError::HandshakeTimeout { .. }
            | QuicError::Denied { .. }
            | QuicError::UnsupportedAddress(_)) => err.into(),
            other => lp2p_core::Error::Dial {
                addr: addr.clone(),
                source: std::io::Error::new(other.io_kind(), other),
            },
        }
    }
}

impl From<QuicError> for lp2p_core::Error {
    fn from(err: QuicError) -> Self {
        if let QuicError::Tls { source, .. } = &err
            && let TlsError::PeerIdMismatch { expected, actual } = &**source
        {
            return lp2p_core::Error::peer_id_mismatch(**expected, **actual);
        }
        match err {
            QuicError::UnsupportedAddress(addr) => lp2p_core::Error::UnsupportedAddress(addr),
            QuicError::HandshakeTimeout { timeout, .. } => lp2p_core::Error::Timeout(timeout),
            denied @ QuicError::Denied { .. } => lp2p_core::Error::Denied(Box::new(denied)),
            tls @ QuicError::Tls { .. } => lp2p_core::Error::Security {
                protocol: lp2p_tls::PROTOCOL_ID,
                source: Box::new(tls),
            },
            other => lp2p_core::Error::Io(std::io::Error::new(other.io_kind(), other)),
        }
    }
}

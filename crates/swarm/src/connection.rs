//! An established connection: its identity, its addresses, and the muxer to open streams on.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Instant;

use lp2p_core::{Multiaddr, MuxedConnection, PeerId, ProtocolId, Stream};

use crate::{Direction, SwarmError};

/// A connection's number, unique within one swarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub(crate) u64);

impl ConnectionId {
    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Why a connection closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// We closed it (`Connection::close`, `Swarm::disconnect`, `Swarm::close`).
    Local,
    /// It had no open stream for the idle timeout.
    Idle,
    /// The remote closed it, or it failed; the text says how.
    Remote(String),
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::Local => f.write_str("closed locally"),
            CloseReason::Idle => f.write_str("idle timeout"),
            CloseReason::Remote(why) => write!(f, "closed by the remote or failed: {why}"),
        }
    }
}

/// What is known about a connection once it is established.
pub(crate) struct ConnectionParts {
    pub(crate) id: ConnectionId,
    pub(crate) peer: PeerId,
    pub(crate) direction: Direction,
    pub(crate) local_addr: Multiaddr,
    pub(crate) remote_addr: Multiaddr,
    pub(crate) security: ProtocolId,
    pub(crate) muxer: ProtocolId,
    pub(crate) transport: &'static str,
    pub(crate) limited: bool,
    pub(crate) muxed: Arc<dyn MuxedConnection>,
    pub(crate) established_at: Instant,
}

const OPEN: u8 = 0;
const CLOSING_LOCAL: u8 = 1;
const CLOSING_IDLE: u8 = 2;

struct Inner {
    parts: ConnectionParts,
    /// Set when we asked the connection to close, so the close is reported with our reason.
    closing: AtomicU8,
    /// Streams ever opened on it, both directions (the idle policy counts a stream that
    /// opened and closed between two checks as activity).
    opened: AtomicU64,
}

/// An established, upgraded connection to a peer. Cheap to clone (a handle).
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

impl Connection {
    pub(crate) fn new(parts: ConnectionParts) -> Connection {
        Connection {
            inner: Arc::new(Inner {
                parts,
                closing: AtomicU8::new(OPEN),
                opened: AtomicU64::new(0),
            }),
        }
    }

    /// The connection's id within its swarm.
    pub fn id(&self) -> ConnectionId {
        self.inner.parts.id
    }

    /// The remote peer, proven by the security handshake.
    pub fn peer(&self) -> PeerId {
        self.inner.parts.peer
    }

    /// Whether we dialed it.
    pub fn direction(&self) -> Direction {
        self.inner.parts.direction
    }

    /// Our address on this connection.
    pub fn local_addr(&self) -> &Multiaddr {
        &self.inner.parts.local_addr
    }

    /// The remote's address on this connection (for inbound connections, the address the
    /// remote dialed from: the "observed address" identify reports back).
    pub fn remote_addr(&self) -> &Multiaddr {
        &self.inner.parts.remote_addr
    }

    /// The security protocol negotiated, e.g. `/noise` or `/tls/1.0.0`.
    pub fn security_protocol(&self) -> &str {
        self.inner.parts.security.as_str()
    }

    /// The stream muxer negotiated, e.g. `/yamux/1.0.0` (`quic-v1` for QUIC's own streams).
    pub fn muxer_protocol(&self) -> &str {
        self.inner.parts.muxer.as_str()
    }

    /// The name of the transport that made it, e.g. `"tcp"` or `"quic"`.
    pub fn transport(&self) -> &'static str {
        self.inner.parts.transport
    }

    /// Whether it is a limited connection (a relayed circuit with duration and data caps).
    pub fn is_limited(&self) -> bool {
        self.inner.parts.limited
    }

    /// When the connection was established (by the swarm's runtime clock).
    pub fn established_at(&self) -> Instant {
        self.inner.parts.established_at
    }

    /// Opens a raw stream (no protocol negotiated yet; the host runs multistream-select on it).
    pub async fn open_stream(&self) -> Result<Box<dyn Stream>, SwarmError> {
        self.count_stream();
        Ok(self.inner.parts.muxed.open_stream().await?)
    }

    /// Closes the connection gracefully; every stream on it fails afterwards. The swarm
    /// reports it with a `ConnectionClosed` event whose reason is `Local`.
    pub async fn close(&self) {
        self.mark_closing(&CloseReason::Local);
        self.inner.parts.muxed.close().await;
    }

    /// Whether the connection is closed.
    pub fn is_closed(&self) -> bool {
        self.inner.parts.muxed.is_closed()
    }

    /// Streams open on the connection right now.
    pub fn num_streams(&self) -> usize {
        self.inner.parts.muxed.num_streams()
    }

    pub(crate) fn muxed(&self) -> &Arc<dyn MuxedConnection> {
        &self.inner.parts.muxed
    }

    /// Streams ever opened on it (both directions).
    pub fn streams_opened(&self) -> u64 {
        self.inner.opened.load(Ordering::Relaxed)
    }

    pub(crate) fn count_stream(&self) {
        self.inner.opened.fetch_add(1, Ordering::Relaxed);
    }

    /// Why we closed it, if we did.
    pub(crate) fn local_close_reason(&self) -> Option<CloseReason> {
        match self.inner.closing.load(Ordering::Acquire) {
            CLOSING_LOCAL => Some(CloseReason::Local),
            CLOSING_IDLE => Some(CloseReason::Idle),
            _ => None,
        }
    }

    /// Records that we are closing it (the first reason given wins).
    pub(crate) fn mark_closing(&self, reason: &CloseReason) {
        let code = match reason {
            CloseReason::Idle => CLOSING_IDLE,
            _ => CLOSING_LOCAL,
        };
        let _ =
            self.inner
                .closing
                .compare_exchange(OPEN, code, Ordering::AcqRel, Ordering::Acquire);
    }
}

impl PartialEq for Connection {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for Connection {}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id())
            .field("peer", &self.peer())
            .field("direction", &self.direction())
            .field("remote_addr", self.remote_addr())
            .field("security", &self.security_protocol())
            .field("muxer", &self.muxer_protocol())
            .field("limited", &self.is_limited())
            .finish()
    }
}

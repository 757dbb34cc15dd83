//! An established connection: its identity, its addresses, and the muxer to open streams on.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use lp2p_core::{Multiaddr, MuxedConnection, PeerId, Role, Stream};

use crate::SwarmError;

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

/// Who opened a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The remote dialed us.
    Inbound,
    /// We dialed the remote.
    Outbound,
}

impl Direction {
    /// Our role on the connection: initiator when we dialed.
    pub fn role(self) -> Role {
        match self {
            Direction::Inbound => Role::Responder,
            Direction::Outbound => Role::Initiator,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Inbound => "in",
            Direction::Outbound => "out",
        })
    }
}

/// What is known about a connection once it is established.
pub(crate) struct ConnectionParts {
    pub(crate) id: ConnectionId,
    pub(crate) peer: PeerId,
    pub(crate) direction: Direction,
    pub(crate) local_addr: Multiaddr,
    pub(crate) remote_addr: Multiaddr,
    pub(crate) security: &'static str,
    pub(crate) muxer: &'static str,
    pub(crate) muxed: Arc<dyn MuxedConnection>,
}

struct Inner {
    parts: ConnectionParts,
    established_at: Instant,
    /// Set when we asked the connection to close, so the close is reported as local.
    closing: AtomicBool,
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
                established_at: Instant::now(),
                closing: AtomicBool::new(false),
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

    /// The security protocol negotiated, e.g. `/noise`.
    pub fn security_protocol(&self) -> &'static str {
        self.inner.parts.security
    }

    /// The stream muxer negotiated, e.g. `/yamux/1.0.0`.
    pub fn muxer_protocol(&self) -> &'static str {
        self.inner.parts.muxer
    }

    /// When the connection was established.
    pub fn established_at(&self) -> Instant {
        self.inner.established_at
    }

    /// Opens a raw stream (no protocol negotiated yet; the host runs multistream-select on it).
    pub async fn open_stream(&self) -> Result<Box<dyn Stream>, SwarmError> {
        Ok(self.inner.parts.muxed.open_stream().await?)
    }

    /// Closes the connection gracefully; every stream on it fails afterwards. The swarm
    /// reports it with a `ConnectionClosed` event whose reason is `Local`.
    pub async fn close(&self) {
        self.inner.closing.store(true, Ordering::Release);
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

    pub(crate) fn closed_locally(&self) -> bool {
        self.inner.closing.load(Ordering::Acquire)
    }

    pub(crate) fn mark_closing(&self) {
        self.inner.closing.store(true, Ordering::Release);
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
            .finish()
    }
}

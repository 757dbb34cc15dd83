//! The swarm's events (delivered on an [`EventBus`](lp2p_core::events::EventBus)).

use std::sync::Arc;

use lp2p_core::{Multiaddr, PeerId};

use crate::{CloseReason, Connection, ConnectionId, Direction, SwarmError};

/// Something that happened in the swarm.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SwarmEvent {
    /// A connection finished its upgrade and is in the connection table.
    ConnectionEstablished {
        /// The new connection.
        connection: Connection,
        /// Connections to this peer now, this one included.
        num_established: usize,
    },
    /// A connection left the connection table.
    ConnectionClosed {
        /// The remote peer.
        peer: PeerId,
        /// Which connection.
        id: ConnectionId,
        /// Whether we dialed it.
        direction: Direction,
        /// The remote address of the connection.
        remote_addr: Multiaddr,
        /// Why it closed.
        reason: CloseReason,
        /// Connections to this peer that remain.
        num_remaining: usize,
    },
    /// A listener is bound to this address.
    ListenAddrAdded(Multiaddr),
    /// A listener stopped.
    ListenAddrRemoved(Multiaddr),
    /// An inbound connection failed before it was established (handshake failure, limit).
    IncomingConnectionError {
        /// The remote address.
        remote_addr: Multiaddr,
        /// Why.
        error: Arc<SwarmError>,
    },
    /// A dial failed.
    DialFailed {
        /// The peer dialed, when known.
        peer: Option<PeerId>,
        /// Why (for a multi-address dial, every attempt).
        error: Arc<SwarmError>,
    },
}

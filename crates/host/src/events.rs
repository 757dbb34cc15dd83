//! What the host reports on its event stream.

use std::sync::Arc;

use lp2p_core::{Multiaddr, PeerId};
use lp2p_swarm::{CloseReason, Connection, ConnectionId, Direction, SwarmError, SwarmEvent};

/// Something that happened in or to the host.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum HostEvent {
    /// A connection to a peer is established.
    Connected {
        /// The peer.
        peer: PeerId,
        /// The connection (its direction, addresses, security and muxer).
        connection: Connection,
        /// Connections to this peer now.
        num_established: usize,
    },
    /// A connection to a peer closed.
    Disconnected {
        /// The peer.
        peer: PeerId,
        /// Which connection.
        connection_id: ConnectionId,
        /// Whether we had dialed it.
        direction: Direction,
        /// Why it closed.
        reason: CloseReason,
        /// Connections to this peer that remain.
        num_remaining: usize,
    },
    /// We listen on a new address.
    ListenAddrAdded(Multiaddr),
    /// We stopped listening on an address.
    ListenAddrRemoved(Multiaddr),
    /// An inbound connection failed before it was established.
    IncomingConnectionError {
        /// Its remote address.
        remote_addr: Multiaddr,
        /// Why.
        error: Arc<SwarmError>,
    },
    /// A dial failed.
    DialFailed {
        /// The peer, when known.
        peer: Option<PeerId>,
        /// Why, per address.
        error: Arc<SwarmError>,
    },
    /// The set of protocols we handle changed (a handler was added or removed).
    LocalProtocolsChanged,
    /// An external address of ours was confirmed (identify: enough peers observed it).
    /// What peers say about themselves is on identify's own stream
    /// (`lp2p_identify::subscribe`), not here.
    ExternalAddrConfirmed(Multiaddr),
}

impl HostEvent {
    pub(crate) fn from_swarm(event: SwarmEvent) -> Option<HostEvent> {
        Some(match event {
            SwarmEvent::ConnectionEstablished {
                connection,
                num_established,
            } => HostEvent::Connected {
                peer: connection.peer(),
                connection,
                num_established,
            },
            SwarmEvent::ConnectionClosed {
                peer,
                id,
                direction,
                reason,
                num_remaining,
                ..
            } => HostEvent::Disconnected {
                peer,
                connection_id: id,
                direction,
                reason,
                num_remaining,
            },
            SwarmEvent::ListenAddrAdded(a) => HostEvent::ListenAddrAdded(a),
            SwarmEvent::ListenAddrRemoved(a) => HostEvent::ListenAddrRemoved(a),
            SwarmEvent::IncomingConnectionError { remote_addr, error } => {
                HostEvent::IncomingConnectionError { remote_addr, error }
            }
            SwarmEvent::DialFailed { peer, error } => HostEvent::DialFailed { peer, error },
            _ => return None,
        })
    }
}

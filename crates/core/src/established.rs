//! The seam between transports and the swarm: every transport hands the swarm an
//! *established* connection (the remote's identity verified, streams ready to open).
//!
//! How a transport gets there is its own business. Byte-stream transports (TCP, WebSocket,
//! the memory transport, relay circuits) implement [`RawTransport`](crate::RawTransport) and
//! are wrapped by `lp2p_swarm::Upgraded`, which negotiates a security channel and a muxer on
//! each raw connection. Transports with their own security and streams (QUIC, later
//! WebTransport and WebRTC) implement [`Transport`] directly.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use libp2p_identity::{Keypair, PeerId, PublicKey};
use multiaddr::Multiaddr;

use crate::{
    DialOpts, Error, MemoryAccount, MemoryBudget, MuxedConnection, ProtocolId, Role, RuntimeHandle,
    UnlimitedMemory,
};

/// A connection ready for the swarm: the remote proved its identity and streams can be
/// opened and accepted on it.
#[derive(Clone)]
pub struct Established {
    /// The remote's peer id, proven by the handshake.
    pub peer: PeerId,
    /// The remote's identity key.
    pub remote_key: PublicKey,
    /// The multiplexed connection.
    pub muxer: Arc<dyn MuxedConnection>,
    /// Our address on this connection.
    pub local_addr: Multiaddr,
    /// The remote's address on this connection.
    pub remote_addr: Multiaddr,
    /// The security protocol that authenticated it (`/noise`, `/tls/1.0.0`, ...).
    pub security: ProtocolId,
    /// The stream muxer (`/yamux/1.0.0`, `/mplex/6.7.0`, or `quic-v1` for native streams).
    pub muxer_protocol: ProtocolId,
    /// A limited connection (a relayed circuit with duration and data caps): only stream
    /// handlers that opt in run over it, and the swarm prefers a direct connection.
    pub limited: bool,
}

impl fmt::Debug for Established {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Established")
            .field("peer", &self.peer)
            .field("local_addr", &self.local_addr)
            .field("remote_addr", &self.remote_addr)
            .field("security", &self.security)
            .field("muxer_protocol", &self.muxer_protocol)
            .field("limited", &self.limited)
            .finish_non_exhaustive()
    }
}

/// Called by a transport as soon as an inbound or outbound connection's security handshake
/// has proven the remote's identity, before any muxer work: the swarm refuses connections
/// over its per-peer limit (and, later, gated peers) here. Returning an error aborts the
/// upgrade with that error.
pub type SecuredCheck =
    Arc<dyn Fn(&PeerId, &Multiaddr, Role) -> Result<(), Error> + Send + Sync + 'static>;

/// What a transport needs from the swarm that runs it: the identity key (to authenticate
/// and sign), the runtime (to spawn connection tasks and time handshakes), and the check
/// to run once a remote is authenticated.
#[derive(Clone)]
pub struct TransportContext {
    /// The local identity key.
    pub local_key: Keypair,
    /// The runtime connection tasks are spawned on.
    pub runtime: RuntimeHandle,
    /// See [`SecuredCheck`]; `None` admits everyone.
    pub on_secured: Option<SecuredCheck>,
    /// Where muxed connections get their memory accounts; `None` gives each an
    /// [`UnlimitedMemory`] account (only the muxer's own per-connection caps apply).
    pub memory: Option<Arc<dyn MemoryBudget>>,
}

impl TransportContext {
    /// A context with this key and runtime that admits every authenticated remote.
    pub fn new(local_key: Keypair, runtime: RuntimeHandle) -> TransportContext {
        TransportContext {
            local_key,
            runtime,
            on_secured: None,
            memory: None,
        }
    }

    /// The local peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_key.public().to_peer_id()
    }

    /// The memory account for a new muxed connection with `peer` at `remote`: from
    /// [`memory`](TransportContext::memory) when set, unlimited otherwise.
    pub fn memory_account(
        &self,
        peer: &PeerId,
        remote: &Multiaddr,
        role: Role,
    ) -> Box<dyn MemoryAccount> {
        match &self.memory {
            Some(budget) => budget.connection_account(peer, remote, role),
            None => UnlimitedMemory::boxed(),
        }
    }

    /// Runs [`on_secured`](TransportContext::on_secured), if set.
    pub fn check_secured(
        &self,
        peer: &PeerId,
        remote: &Multiaddr,
        role: Role,
    ) -> Result<(), Error> {
        match &self.on_secured {
            Some(check) => check(peer, remote, role),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for TransportContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportContext")
            .field("local_peer_id", &self.local_peer_id())
            .field("runtime", &self.runtime)
            .field("on_secured", &self.on_secured.is_some())
            .field("memory", &self.memory.is_some())
            .finish_non_exhaustive()
    }
}

/// A way to reach peers that yields [`Established`] connections.
///
/// The swarm holds several and gives each address to the first whose
/// [`can_dial`](Transport::can_dial) accepts it. Implement it directly for a transport with
/// its own security and streams (QUIC); wrap a [`RawTransport`](crate::RawTransport) in
/// `lp2p_swarm::Upgraded` otherwise.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// A short name for logs, errors and metrics, e.g. `"tcp"` or `"quic"`.
    fn name(&self) -> &'static str;

    /// Whether [`dial`](Transport::dial) can handle this address. Cheap, no I/O. A trailing
    /// `/p2p/<peer id>` is part of a dialable address.
    fn can_dial(&self, addr: &Multiaddr) -> bool;

    /// Whether [`listen`](Transport::listen) can handle this address; by default the same as
    /// [`can_dial`](Transport::can_dial).
    fn can_listen(&self, addr: &Multiaddr) -> bool {
        self.can_dial(addr)
    }

    /// Whether each connection holds a file descriptor of its own (the default: a TCP or
    /// WebSocket socket), so the resource manager counts it against the descriptor limit.
    /// QUIC connections share their endpoint's socket, relayed ones the relay connection's.
    fn uses_fd_per_connection(&self) -> bool {
        true
    }

    /// Dials `addr` and runs the whole upgrade (authentication, streams) to an established
    /// connection. The swarm bounds the call with its own timeouts.
    ///
    /// Fails with [`Error::UnsupportedAddress`], [`Error::Dial`] (unreachable), a
    /// negotiation or security error naming the stage, or [`Error::PeerIdMismatch`].
    async fn dial(
        &self,
        ctx: &TransportContext,
        addr: &Multiaddr,
        opts: DialOpts,
    ) -> Result<Established, Error>;

    /// Starts listening on `addr`. A port of 0 asks for a free one; the listener's
    /// [`local_addrs`](Listener::local_addrs) report what was bound.
    async fn listen(
        &self,
        ctx: &TransportContext,
        addr: &Multiaddr,
    ) -> Result<Box<dyn Listener>, Error>;
}

/// A bound listener of a [`Transport`].
#[async_trait]
pub trait Listener: Send + 'static {
    /// Waits for the next inbound attempt, before any upgrade work: the swarm admits or
    /// refuses it by address (limits, gating) and only then drives
    /// [`Incoming::upgrade`] under its handshake timeout. Dropping the [`Incoming`] refuses
    /// the attempt.
    ///
    /// Transient failures are handled inside; an error returned here means the listener is
    /// finished.
    async fn accept(&mut self) -> Result<Incoming, Error>;

    /// The addresses actually bound (with the real port when port 0 was asked for).
    fn local_addrs(&self) -> Vec<Multiaddr>;
}

/// An inbound connection attempt: its addresses, and the upgrade still to run.
pub struct Incoming {
    /// Our address on it.
    pub local_addr: Multiaddr,
    /// The remote's address.
    pub remote_addr: Multiaddr,
    /// Authenticates the remote and starts the streams; dropping it refuses the attempt.
    pub upgrade: BoxFuture<'static, Result<Established, Error>>,
}

impl fmt::Debug for Incoming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming")
            .field("local_addr", &self.local_addr)
            .field("remote_addr", &self.remote_addr)
            .finish_non_exhaustive()
    }
}

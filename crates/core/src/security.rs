use std::fmt;

use async_trait::async_trait;
use libp2p_identity::{Keypair, PeerId, PublicKey};
use multiaddr::Multiaddr;

use crate::transport::forward_io;
use crate::{Connection, Error, ProtocolId, RuntimeHandle};

/// What a security upgrader needs from the host that runs it.
///
/// The host builds one and hands it to every handshake, so a security component
/// (`Noise::new()`, `Plaintext::new()`) needs no configuration of its own to be used.
#[derive(Clone)]
pub struct UpgradeContext {
    /// The local identity key: it signs (noise) or is shown (plaintext) in the handshake.
    pub local_key: Keypair,
    /// The local stream muxers in preference order; a channel that can agree on a muxer
    /// inside its handshake (noise's `stream_muxers` extension) offers these.
    pub muxers: Vec<ProtocolId>,
    /// The runtime, for handshake timeouts.
    pub runtime: RuntimeHandle,
}

impl UpgradeContext {
    /// A context with the given key, no muxers offered in the handshake, and the given runtime.
    pub fn new(local_key: Keypair, runtime: RuntimeHandle) -> Self {
        UpgradeContext {
            local_key,
            muxers: Vec::new(),
            runtime,
        }
    }

    /// Sets the muxers offered inside the handshake, in preference order.
    #[must_use]
    pub fn with_muxers(mut self, muxers: impl IntoIterator<Item = ProtocolId>) -> Self {
        self.muxers = muxers.into_iter().collect();
        self
    }

    /// The local peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_key.public().to_peer_id()
    }
}

impl fmt::Debug for UpgradeContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpgradeContext")
            .field("local_peer_id", &self.local_peer_id())
            .field("muxers", &self.muxers)
            .finish_non_exhaustive()
    }
}

/// A security channel: turns a raw connection into an authenticated (and, for everything but
/// plaintext, encrypted) one, proving the remote's [`PeerId`].
///
/// Implementations: `lp2p-noise` (`/noise`) and `lp2p-plaintext` (`/plaintext/2.0.0`).
#[async_trait]
pub trait SecurityUpgrader: Send + Sync + 'static {
    /// The protocol id negotiated with multistream-select, e.g. `/noise`.
    fn protocol_id(&self) -> &'static str;

    /// Runs the handshake as the responder (we accepted the connection).
    async fn secure_inbound(
        &self,
        conn: Box<dyn Connection>,
        ctx: &UpgradeContext,
    ) -> Result<SecureConnection, Error>;

    /// Runs the handshake as the initiator (we dialed). When `expected` is set, a remote that
    /// proves another identity fails the handshake with [`Error::PeerIdMismatch`].
    async fn secure_outbound(
        &self,
        conn: Box<dyn Connection>,
        ctx: &UpgradeContext,
        expected: Option<PeerId>,
    ) -> Result<SecureConnection, Error>;
}

/// An authenticated connection: the byte stream after the handshake and who is on the other
/// end.
///
/// It is itself a [`Connection`] (reads and writes go through the channel's encryption), so a
/// muxer takes it as it is.
pub struct SecureConnection {
    io: Box<dyn Connection>,
    remote_peer: PeerId,
    remote_key: PublicKey,
    protocol: &'static str,
    early_muxer: Option<ProtocolId>,
}

impl SecureConnection {
    /// Wraps a secured byte stream. `io` must already encrypt and decrypt.
    pub fn new(
        io: Box<dyn Connection>,
        remote_key: PublicKey,
        protocol: &'static str,
    ) -> SecureConnection {
        SecureConnection {
            io,
            remote_peer: remote_key.to_peer_id(),
            remote_key,
            protocol,
            early_muxer: None,
        }
    }

    /// Records the muxer both sides agreed on inside the handshake.
    #[must_use]
    pub fn with_early_muxer(mut self, muxer: Option<ProtocolId>) -> SecureConnection {
        self.early_muxer = muxer;
        self
    }

    /// The remote's peer id, proven by the handshake.
    pub fn remote_peer(&self) -> PeerId {
        self.remote_peer
    }

    /// The remote's identity public key.
    pub fn remote_key(&self) -> &PublicKey {
        &self.remote_key
    }

    /// The security protocol that secured this connection.
    pub fn protocol(&self) -> &'static str {
        self.protocol
    }

    /// The muxer agreed inside the handshake, if any; the upgrade then skips the
    /// multistream-select round for the muxer.
    pub fn early_muxer(&self) -> Option<&ProtocolId> {
        self.early_muxer.as_ref()
    }

    /// The secured byte stream.
    pub fn into_inner(self) -> Box<dyn Connection> {
        self.io
    }
}

impl fmt::Debug for SecureConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecureConnection")
            .field("remote_peer", &self.remote_peer)
            .field("protocol", &self.protocol)
            .field("remote_addr", &self.io.remote_addr())
            .field("early_muxer", &self.early_muxer)
            .finish_non_exhaustive()
    }
}

forward_io!(SecureConnection, io);

impl Connection for SecureConnection {
    fn local_addr(&self) -> Multiaddr {
        self.io.local_addr()
    }
    fn remote_addr(&self) -> Multiaddr {
        self.io.remote_addr()
    }
}

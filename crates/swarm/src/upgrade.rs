//! `Upgraded`: a byte-stream transport made into a [`Transport`] by negotiating a security
//! channel and a stream muxer on every connection.
//!
//! Per connection, in the dialer's role: multistream-select the security protocol (our
//! preference order), run its handshake (the remote proves its peer id; a different one than
//! expected fails), then take the muxer the handshake agreed on (noise's `stream_muxers`
//! extension, TLS's ALPN) or multistream-select one, and start it. The listener side is the
//! mirror image. The swarm's `on_secured` check runs as soon as the remote is known, before
//! any muxer work.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use lp2p_core::{
    Connection as RawConnection, DialOpts, Error, Established, Incoming, Listener, MemoryAccount,
    Multiaddr, MuxerUpgrader, PeerId, ProtocolId, RawListener, RawTransport, Role,
    SecureConnection, SecurityUpgrader, Transport, TransportContext, UpgradeContext,
};
use lp2p_multiselect::{
    MultiselectError, Version, dialer_select, listener_select, listener_select_deferred,
};

/// The security channels and muxers offered on every connection of an [`Upgraded`]
/// transport, in preference order.
#[derive(Clone, Default)]
pub struct UpgradeStack {
    security: Vec<Arc<dyn SecurityUpgrader>>,
    muxers: Vec<Arc<dyn MuxerUpgrader>>,
}

impl fmt::Debug for UpgradeStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpgradeStack")
            .field("security", &self.security_ids())
            .field("muxers", &self.muxer_ids())
            .finish()
    }
}

impl UpgradeStack {
    /// An empty stack; add at least one security channel and one muxer.
    pub fn new() -> UpgradeStack {
        UpgradeStack::default()
    }

    /// Adds a security channel (preference order).
    #[must_use]
    pub fn security(mut self, security: impl SecurityUpgrader) -> Self {
        self.security.push(Arc::new(security));
        self
    }

    /// Adds a shared security channel (preference order).
    #[must_use]
    pub fn security_arc(mut self, security: Arc<dyn SecurityUpgrader>) -> Self {
        self.security.push(security);
        self
    }

    /// Adds a muxer (preference order).
    #[must_use]
    pub fn muxer(mut self, muxer: impl MuxerUpgrader) -> Self {
        self.muxers.push(Arc::new(muxer));
        self
    }

    /// Adds a shared muxer (preference order).
    #[must_use]
    pub fn muxer_arc(mut self, muxer: Arc<dyn MuxerUpgrader>) -> Self {
        self.muxers.push(muxer);
        self
    }

    /// Whether it has at least one security channel and one muxer.
    pub fn is_complete(&self) -> bool {
        !self.security.is_empty() && !self.muxers.is_empty()
    }

    /// The security protocol ids, in preference order.
    pub fn security_ids(&self) -> Vec<ProtocolId> {
        self.security
            .iter()
            .map(|s| ProtocolId::from_static(s.protocol_id()))
            .collect()
    }

    /// The muxer protocol ids, in preference order.
    pub fn muxer_ids(&self) -> Vec<ProtocolId> {
        self.muxers
            .iter()
            .map(|m| ProtocolId::from_static(m.protocol_id()))
            .collect()
    }

    fn security_for(&self, id: &str) -> Result<&Arc<dyn SecurityUpgrader>, Error> {
        self.security
            .iter()
            .find(|s| s.protocol_id() == id)
            .ok_or_else(|| not_offered("security protocol", id))
    }

    fn muxer_for(&self, id: &str) -> Option<&Arc<dyn MuxerUpgrader>> {
        self.muxers.iter().find(|m| m.protocol_id() == id)
    }

    fn upgrade_context(&self, ctx: &TransportContext) -> UpgradeContext {
        UpgradeContext::new(ctx.local_key.clone(), ctx.runtime.clone())
            .with_muxers(self.muxer_ids())
    }

    /// Secures and multiplexes a raw connection in `role`. As the initiator with `expected`,
    /// a remote proving another identity fails with [`Error::PeerIdMismatch`].
    pub async fn upgrade(
        &self,
        raw: Box<dyn RawConnection>,
        ctx: &TransportContext,
        role: Role,
        expected: Option<PeerId>,
    ) -> Result<Established, Error> {
        let local_addr = raw.local_addr();
        let remote_addr = raw.remote_addr();
        let upgrade_ctx = self.upgrade_context(ctx);
        let ids = self.security_ids();
        let secure = match role {
            Role::Initiator => {
                // Lazily when we offer one security protocol (the usual case): its first
                // handshake message travels with the proposal, saving a round trip per
                // connection, as rust-libp2p's dialers do (decision D26).
                let (id, io) = dialer_select(raw, ids, Version::V1Lazy)
                    .await
                    .map_err(|e| Error::SecurityNegotiation(Box::new(e)))?;
                self.security_for(id.as_str())?
                    .secure_outbound(Box::new(io), &upgrade_ctx, expected)
                    .await
                    .map_err(refused_lazily)?
            }
            Role::Responder => {
                // Our answer waits for the handshake's first message, so that both leave in
                // one segment: the dialer wakes up once, not twice (same bytes on the wire).
                let (id, io) = listener_select_deferred(raw, ids.as_slice())
                    .await
                    .map_err(|e| Error::SecurityNegotiation(Box::new(e)))?;
                let secure = self
                    .security_for(id.as_str())?
                    .secure_inbound(Box::new(io), &upgrade_ctx)
                    .await?;
                // A simultaneous open dials as responder: the expectation still holds.
                if let Some(expected) = expected
                    && secure.remote_peer() != expected
                {
                    return Err(Error::peer_id_mismatch(expected, secure.remote_peer()));
                }
                secure
            }
        };
        ctx.check_secured(&secure.remote_peer(), &remote_addr, role)?;
        let memory = ctx.memory_account(&secure.remote_peer(), &remote_addr, role);
        self.finish(secure, role, &upgrade_ctx, memory, local_addr, remote_addr)
            .await
    }

    /// Agrees on a muxer (in the handshake, or with multistream-select) and starts it.
    async fn finish(
        &self,
        secure: SecureConnection,
        role: Role,
        upgrade_ctx: &UpgradeContext,
        memory: Box<dyn MemoryAccount>,
        local_addr: Multiaddr,
        remote_addr: Multiaddr,
    ) -> Result<Established, Error> {
        let peer = secure.remote_peer();
        let security_id = secure.protocol();
        let security = ProtocolId::from_static(security_id);
        let remote_key = secure.remote_key().clone();
        let early = secure
            .early_muxer()
            .and_then(|id| self.muxer_for(id.as_str()))
            .cloned();
        let (muxer, secure) = if let Some(muxer) = early {
            tracing::debug!(%peer, muxer = muxer.protocol_id(), "muxer agreed inside the security handshake");
            (muxer, secure)
        } else {
            let ids = self.muxer_ids();
            let negotiated = match role {
                Role::Initiator => dialer_select(secure, ids, Version::V1).await,
                Role::Responder => listener_select(secure, ids.as_slice()).await,
            };
            let (id, io) = negotiated.map_err(|e| Error::MuxerNegotiation(Box::new(e)))?;
            let muxer = self
                .muxer_for(id.as_str())
                .cloned()
                .ok_or_else(|| not_offered("stream muxer", id.as_str()))?;
            let secure = SecureConnection::new(Box::new(io), remote_key.clone(), security_id);
            (muxer, secure)
        };
        let muxed = muxer.upgrade(secure, role, &upgrade_ctx.runtime, memory);
        Ok(Established {
            peer,
            remote_key,
            muxer: muxed,
            local_addr,
            remote_addr,
            security,
            muxer_protocol: ProtocolId::from_static(muxer.protocol_id()),
            limited: false,
        })
    }
}

/// A lazily proposed security protocol that the listener refused surfaces inside the
/// handshake, as an I/O error wrapping multistream-select's refusal: report it as the
/// negotiation failure it is (the same error a `V1` negotiation gives), not as a handshake
/// failure.
fn refused_lazily(err: Error) -> Error {
    let offered = {
        let mut found = None;
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        while let Some(current) = source {
            let inner = current
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<MultiselectError>());
            if let Some(MultiselectError::NoCommonProtocol { offered }) = inner {
                found = Some(offered.clone());
                break;
            }
            source = current.source();
        }
        found
    };
    match offered {
        Some(offered) => {
            Error::SecurityNegotiation(Box::new(MultiselectError::NoCommonProtocol { offered }))
        }
        None => err,
    }
}

/// multistream-select agreed on an id we did not offer: impossible unless it is broken.
fn not_offered(what: &str, id: &str) -> Error {
    Error::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("negotiated a {what} we did not offer: {id}"),
    ))
}

/// A [`RawTransport`] whose connections are upgraded with an [`UpgradeStack`]: a
/// [`Transport`] for the swarm. `HostBuilder::transport` and `SwarmBuilder::transport` wrap
/// byte-stream transports in it with the builder's security channels and muxers.
///
/// ```
/// use lp2p_memory::MemoryTransport;
/// use lp2p_plaintext::Plaintext;
/// use lp2p_swarm::{UpgradeStack, Upgraded};
/// use lp2p_yamux::Yamux;
///
/// let stack = UpgradeStack::new().security(Plaintext::new()).muxer(Yamux::default());
/// let transport = Upgraded::new(MemoryTransport::default(), stack);
/// # let _ = transport;
/// ```
#[derive(Clone)]
pub struct Upgraded {
    raw: Arc<dyn RawTransport>,
    stack: Arc<UpgradeStack>,
}

impl fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgraded")
            .field("raw", &self.raw.name())
            .field("stack", &self.stack)
            .finish()
    }
}

impl Upgraded {
    /// Upgrades `raw`'s connections with `stack`.
    pub fn new(raw: impl RawTransport, stack: UpgradeStack) -> Upgraded {
        Upgraded::from_arc(Arc::new(raw), Arc::new(stack))
    }

    /// [`new`](Upgraded::new) with shared parts.
    pub fn from_arc(raw: Arc<dyn RawTransport>, stack: Arc<UpgradeStack>) -> Upgraded {
        Upgraded { raw, stack }
    }

    /// The raw transport underneath.
    pub fn raw(&self) -> &Arc<dyn RawTransport> {
        &self.raw
    }
}

#[async_trait]
impl Transport for Upgraded {
    fn name(&self) -> &'static str {
        self.raw.name()
    }

    fn can_dial(&self, addr: &Multiaddr) -> bool {
        self.raw.can_dial(addr)
    }

    fn can_listen(&self, addr: &Multiaddr) -> bool {
        self.raw.can_listen(addr)
    }

    fn uses_fd_per_connection(&self) -> bool {
        self.raw.uses_fd_per_connection()
    }

    async fn dial(
        &self,
        ctx: &TransportContext,
        addr: &Multiaddr,
        opts: DialOpts,
    ) -> Result<Established, Error> {
        let raw = self.raw.dial(addr, &opts).await?;
        self.stack
            .upgrade(raw, ctx, opts.role, opts.expected_peer)
            .await
    }

    async fn listen(
        &self,
        ctx: &TransportContext,
        addr: &Multiaddr,
    ) -> Result<Box<dyn Listener>, Error> {
        let raw = self.raw.listen(addr).await?;
        Ok(Box::new(UpgradedListener {
            raw,
            stack: self.stack.clone(),
            ctx: ctx.clone(),
        }))
    }
}

struct UpgradedListener {
    raw: Box<dyn RawListener>,
    stack: Arc<UpgradeStack>,
    ctx: TransportContext,
}

#[async_trait]
impl Listener for UpgradedListener {
    async fn accept(&mut self) -> Result<Incoming, Error> {
        let raw = self.raw.accept().await?;
        let local_addr = raw.local_addr();
        let remote_addr = raw.remote_addr();
        let stack = self.stack.clone();
        let ctx = self.ctx.clone();
        Ok(Incoming {
            local_addr,
            remote_addr,
            upgrade: Box::pin(async move { stack.upgrade(raw, &ctx, Role::Responder, None).await }),
        })
    }

    fn local_addrs(&self) -> Vec<Multiaddr> {
        vec![self.raw.local_addr()]
    }
}

//! The swarm handle and its builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use lp2p_core::{
    AddressResolver, ConnectionLimiter, Keypair, MemoryBudget, Multiaddr, MuxerUpgrader, PeerId,
    RuntimeHandle, SecurityUpgrader, Transport,
};
use lp2p_peerstore::Peerstore;

use crate::driver::timer_loop;
use crate::gate::ConnectionGate;
use crate::state::{InboundStreamHandler, Parts, Shared, SwarmStats};
use crate::transports::{IntoTransport, TransportKind};
use crate::{
    Connection, ConnectionEvents, ConnectionId, ConnectionTotals, DialDurations, EventStream,
    SwarmConfig, SwarmError, SwarmEvent, UpgradeStack, Upgraded, config,
};

/// Builds a [`Swarm`]: at least one transport; byte-stream transports also need at least one
/// security channel and one muxer.
#[derive(Default)]
pub struct SwarmBuilder {
    keypair: Option<Keypair>,
    transports: Vec<TransportKind>,
    stack: UpgradeStack,
    resolvers: Vec<Arc<dyn AddressResolver>>,
    gates: Vec<Arc<dyn ConnectionGate>>,
    memory: Option<Arc<dyn MemoryBudget>>,
    limiter: Option<Arc<dyn ConnectionLimiter>>,
    peerstore: Option<Peerstore>,
    config: SwarmConfig,
    runtime: Option<RuntimeHandle>,
    bootstrap: Vec<Multiaddr>,
    inbound_handler: Option<InboundStreamHandler>,
}

impl fmt::Debug for SwarmBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwarmBuilder")
            .field("transports", &self.transports)
            .field("stack", &self.stack)
            .field("resolvers", &self.resolvers.len())
            .field("config", &self.config)
            .field("bootstrap", &self.bootstrap)
            .finish_non_exhaustive()
    }
}

impl SwarmBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// The identity key (a fresh Ed25519 key when not set).
    #[must_use]
    pub fn keypair(mut self, keypair: Keypair) -> Self {
        self.keypair = Some(keypair);
        self
    }

    /// Adds a transport; addresses go to the first transport that can handle them. A
    /// byte-stream transport ([`RawTransport`](lp2p_core::RawTransport): TCP, memory,
    /// WebSocket) is wrapped in [`Upgraded`] with this builder's security channels and
    /// muxers; an established-connection [`Transport`] (QUIC) is used as it is.
    #[must_use]
    pub fn transport<M>(mut self, transport: impl IntoTransport<M>) -> Self {
        self.transports.push(transport.into_transport());
        self
    }

    /// Adds a security channel for byte-stream transports, in preference order.
    #[must_use]
    pub fn security(mut self, security: impl SecurityUpgrader) -> Self {
        self.stack = self.stack.security(security);
        self
    }

    /// Adds a stream muxer for byte-stream transports, in preference order.
    #[must_use]
    pub fn muxer(mut self, muxer: impl MuxerUpgrader) -> Self {
        self.stack = self.stack.muxer(muxer);
        self
    }

    /// Adds an address resolver (`lp2p-dns`): dial candidates it
    /// [`can_resolve`](AddressResolver::can_resolve) are resolved before the dial.
    #[must_use]
    pub fn resolver(mut self, resolver: impl AddressResolver) -> Self {
        self.resolvers.push(Arc::new(resolver));
        self
    }

    /// Adds a connection gate (see [`ConnectionGate`]): asked before every dial, on every
    /// inbound attempt, once a remote is authenticated and when a connection is ready. Gates
    /// are asked in the order added; the first refusal wins.
    #[must_use]
    pub fn gate(mut self, gate: impl ConnectionGate) -> Self {
        self.gates.push(Arc::new(gate));
        self
    }

    /// Where muxed connections reserve the memory their remotes can make them buffer (see
    /// `lp2p_core::memory`): `lp2p_rcmgr::ResourceManager` for node-wide, per-peer and
    /// per-connection limits. Without one, only each muxer's per-connection caps apply.
    #[must_use]
    pub fn memory_budget(mut self, budget: impl MemoryBudget) -> Self {
        self.memory = Some(Arc::new(budget));
        self
    }

    /// Where connections take their place in node-wide counts (see `lp2p_core::counts`):
    /// `lp2p_rcmgr::ResourceManager` for inbound and outbound connection and descriptor
    /// limits per scope (transient while the handshake runs, then the peer's). Each
    /// inbound attempt takes a place before its upgrade starts, each dial attempt before it
    /// connects; a refusal fails the attempt with [`SwarmError::Resources`]. Without one,
    /// only this swarm's own limits ([`SwarmConfig`]) apply.
    #[must_use]
    pub fn connection_limiter(mut self, limiter: impl ConnectionLimiter) -> Self {
        self.limiter = Some(Arc::new(limiter));
        self
    }

    /// Uses this peerstore (shared with whoever else holds a clone).
    #[must_use]
    pub fn peerstore(mut self, peerstore: Peerstore) -> Self {
        self.peerstore = Some(peerstore);
        self
    }

    /// Limits, timeouts and policies.
    #[must_use]
    pub fn config(mut self, config: SwarmConfig) -> Self {
        self.config = config;
        self
    }

    /// The runtime to spawn on and read the clock from (the default runtime of the enabled
    /// feature otherwise). The swarm counts its tasks in a scope of it.
    #[must_use]
    pub fn runtime(mut self, runtime: RuntimeHandle) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// An address to dial at start and to redial with backoff whenever the connection drops.
    /// It should end in `/p2p/<peer id>`.
    #[must_use]
    pub fn bootstrap(mut self, addr: Multiaddr) -> Self {
        self.bootstrap.push(addr);
        self
    }

    /// What to do with streams remotes open (without one, they are reset).
    #[must_use]
    pub fn inbound_stream_handler(mut self, handler: InboundStreamHandler) -> Self {
        self.inbound_handler = Some(handler);
        self
    }

    /// Builds the swarm and starts its timer task (bootstrap dials start at once). It does
    /// not listen until [`Swarm::listen_on`] is called.
    pub fn build(self) -> Result<Swarm, SwarmError> {
        let runtime = match self.runtime {
            Some(rt) => rt,
            None => RuntimeHandle::try_default().ok_or(SwarmError::InvalidConfig(
                "no runtime: enable lp2p-core's async-std or smol feature, or set one",
            ))?,
        };
        if self.transports.is_empty() {
            return Err(SwarmError::InvalidConfig("no transport configured"));
        }
        let has_raw = self
            .transports
            .iter()
            .any(|t| matches!(t, TransportKind::Raw(_)));
        if has_raw && self.stack.security_ids().is_empty() {
            return Err(SwarmError::InvalidConfig("no security protocol configured"));
        }
        if has_raw && self.stack.muxer_ids().is_empty() {
            return Err(SwarmError::InvalidConfig("no stream muxer configured"));
        }
        let stack = Arc::new(self.stack);
        let transports: Vec<Arc<dyn Transport>> = self
            .transports
            .into_iter()
            .map(|t| match t {
                TransportKind::Raw(raw) => {
                    Arc::new(Upgraded::from_arc(raw, stack.clone())) as Arc<dyn Transport>
                }
                TransportKind::Established(t) => t,
            })
            .collect();
        let shared = Shared::new(Parts {
            keypair: self.keypair.unwrap_or_else(Keypair::generate_ed25519),
            transports,
            resolvers: self.resolvers,
            gates: self.gates,
            memory: self.memory,
            limiter: self.limiter,
            peerstore: self
                .peerstore
                .unwrap_or_else(|| Peerstore::with_runtime(runtime.clone())),
            config: self.config,
            runtime,
            inbound_handler: self.inbound_handler,
        });
        let swarm = Swarm { shared };
        {
            let now = swarm.shared.now();
            let mut st = swarm.shared.lock();
            for addr in self.bootstrap {
                st.core.add_bootstrap(addr, now);
            }
        }
        swarm
            .shared
            .spawn_background(timer_loop(Arc::downgrade(&swarm.shared)));
        Ok(swarm)
    }
}

/// The swarm: transports, the connection table, limits, dialing and events. Cheap to clone
/// (a handle); every method takes `&self`.
///
/// Most users reach it through `lp2p-host`; it is public so other front ends can be built
/// on it. Its decisions are made by the sans-IO [`SwarmCore`](crate::core::SwarmCore).
#[derive(Clone)]
pub struct Swarm {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for Swarm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Swarm")
            .field("local_peer", &self.shared.local_peer)
            .field("listen_addrs", &self.listen_addrs())
            .field("connected_peers", &self.connected_peers().len())
            .finish_non_exhaustive()
    }
}

impl Swarm {
    /// A builder.
    pub fn builder() -> SwarmBuilder {
        SwarmBuilder::new()
    }

    /// Our peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.shared.local_peer
    }

    /// Our identity key.
    pub fn keypair(&self) -> &Keypair {
        &self.shared.keypair
    }

    /// The peerstore the swarm reads addresses from and records connections in.
    pub fn peerstore(&self) -> &Peerstore {
        &self.shared.peerstore
    }

    /// The swarm's runtime scope: every task the swarm spawns is counted here.
    pub fn runtime(&self) -> &RuntimeHandle {
        &self.shared.runtime
    }

    /// The configuration in force.
    pub fn config(&self) -> &SwarmConfig {
        &self.shared.config
    }

    /// The transports' names, in the order addresses are offered to them.
    pub fn transport_names(&self) -> Vec<&'static str> {
        self.shared.transports.iter().map(|t| t.name()).collect()
    }

    /// Whether one of the swarm's transports dials `addr` (its `/p2p/<id>` suffix ignored).
    /// Name resolution is not tried: a `/dns` address is dialable only through a resolver.
    pub fn can_dial(&self, addr: &Multiaddr) -> bool {
        let (transport_addr, _) = lp2p_core::addr::split_peer_id(addr);
        self.shared.transport_for(&transport_addr).is_some()
    }

    /// Connections refused so far, by gate stage and by limit.
    pub fn stats(&self) -> SwarmStats {
        let mut stats = self.shared.stats.snapshot();
        stats.evicted_idle_inbound = self.shared.lock().core.counts().evicted_idle_inbound;
        stats
    }

    /// Connections opened and closed since the swarm started, per direction and transport,
    /// with the lifetimes of the closed ones (every connection counts, however short).
    pub fn connection_totals(&self) -> Vec<ConnectionTotals> {
        self.shared.lock().totals.snapshot()
    }

    /// How long whole dials took (resolution, staggered attempts and all), by outcome.
    pub fn dial_durations(&self) -> DialDurations {
        self.shared.lock().dial_durations.clone()
    }

    /// Sets what to do with streams remotes open, replacing the previous handler.
    pub fn set_inbound_stream_handler(&self, handler: InboundStreamHandler) {
        self.shared.set_inbound_handler(handler);
    }

    /// A stream of everything that happens from now on. Bounded per subscriber
    /// ([`SwarmConfig::event_buffer`]): a subscriber that falls that far behind misses
    /// events (counted and logged). For connection opens and closes that must not be
    /// missed, use [`connection_events`](Swarm::connection_events).
    pub fn events(&self) -> EventStream<SwarmEvent> {
        self.shared.events.subscribe()
    }

    /// Every connection open and close, without loss: starts with the connections that
    /// exist now, then follows every change (see [`ConnectionEvents`]).
    pub fn connection_events(&self) -> ConnectionEvents {
        self.shared.connection_events()
    }

    /// Starts listening on `addr` and returns the address actually bound (with the real
    /// port when port 0 was asked for; the first one when the transport bound several).
    pub async fn listen_on(&self, addr: &Multiaddr) -> Result<Multiaddr, SwarmError> {
        self.shared.ensure_open()?;
        let transport = self
            .shared
            .transports
            .iter()
            .find(|t| t.can_listen(addr))
            .ok_or_else(|| SwarmError::UnsupportedAddress(addr.clone()))?
            .clone();
        let listener = transport.listen(&self.shared.ctx, addr).await?;
        let bound = listener.local_addrs();
        let first = bound
            .first()
            .cloned()
            .ok_or_else(|| SwarmError::UnsupportedAddress(addr.clone()))?;
        let task = self.shared.runtime.spawn(crate::listen::accept_loop(
            Arc::downgrade(&self.shared),
            listener,
            transport.name(),
            transport.uses_fd_per_connection(),
        ));
        self.shared
            .lock()
            .listeners
            .push((bound.clone(), task.abort_handle()));
        for a in bound {
            tracing::info!(local_peer = %self.shared.local_peer, addr = %a, "listening");
            self.shared.events.emit(&SwarmEvent::ListenAddrAdded(a));
        }
        Ok(first)
    }

    /// Stops the listener bound to `addr`; false when there is none.
    pub fn remove_listener(&self, addr: &Multiaddr) -> bool {
        let removed = {
            let mut st = self.shared.lock();
            match st.listeners.iter().position(|(a, _)| a.contains(addr)) {
                Some(i) => {
                    let (addrs, abort) = st.listeners.swap_remove(i);
                    abort.abort();
                    addrs
                }
                None => return false,
            }
        };
        for a in removed {
            self.shared.events.emit(&SwarmEvent::ListenAddrRemoved(a));
        }
        true
    }

    /// The addresses we listen on.
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.shared
            .lock()
            .listeners
            .iter()
            .flat_map(|(a, _)| a.iter().cloned())
            .collect()
    }

    /// The connection a new stream to `peer` would use: the newest one not closing, direct
    /// before limited.
    pub fn connection_to(&self, peer: &PeerId) -> Option<Connection> {
        let st = self.shared.lock();
        st.core
            .best_connection(peer)
            .and_then(|id| st.conns.get(&id).cloned())
    }

    /// Every live connection to `peer`, oldest first.
    pub fn connections(&self, peer: &PeerId) -> Vec<Connection> {
        let st = self.shared.lock();
        st.core
            .connections_of(peer)
            .iter()
            .filter_map(|id| st.conns.get(id).cloned())
            .collect()
    }

    /// Every live connection.
    pub fn all_connections(&self) -> Vec<Connection> {
        self.shared.lock().conns.values().cloned().collect()
    }

    /// Peers we have at least one connection to.
    pub fn connected_peers(&self) -> Vec<PeerId> {
        self.shared.lock().core.connected_peers().copied().collect()
    }

    /// Whether we have a connection to `peer`.
    pub fn is_connected(&self, peer: &PeerId) -> bool {
        !self.shared.lock().core.connections_of(peer).is_empty()
    }

    /// Established (inbound, outbound) connections and inbound connections still handshaking.
    pub fn connection_counts(&self) -> (usize, usize, usize) {
        let c = self.shared.lock().core.counts();
        (c.inbound, c.outbound, c.pending_inbound)
    }

    /// Closes every connection to `peer`.
    pub async fn disconnect(&self, peer: &PeerId) {
        for conn in self.connections(peer) {
            self.shared.lock().core.closing(conn.id());
            conn.close().await;
        }
    }

    /// Closes the connection with this id; false when there is none.
    pub async fn close_connection(&self, id: ConnectionId) -> bool {
        let conn = {
            let mut st = self.shared.lock();
            st.core.closing(id);
            st.conns.get(&id).cloned()
        };
        match conn {
            Some(conn) => {
                conn.close().await;
                true
            }
            None => false,
        }
    }

    /// Exempts connections to `peer` from the idle timeout (bootstrap peers are exempt
    /// automatically).
    pub fn protect_peer(&self, peer: PeerId) {
        self.shared.lock().core.protect(peer);
    }

    /// Undoes [`protect_peer`](Swarm::protect_peer).
    pub fn unprotect_peer(&self, peer: &PeerId) {
        self.shared.lock().core.unprotect(peer);
    }

    /// Whether connections to `peer` are exempt from the idle timeout.
    pub fn is_protected(&self, peer: &PeerId) -> bool {
        self.shared.lock().core.is_protected(peer)
    }

    /// Whether [`close`](Swarm::close) was called.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Stops listening, dialing and bootstrap redials, closes every connection and waits (up
    /// to [`CLOSE_GRACE`](crate::config::CLOSE_GRACE)) for every task the swarm spawned to
    /// end, aborting any that remain. Event subscriptions end afterwards.
    pub async fn close(&self) {
        let shared = &self.shared;
        if shared.mark_closed() {
            let now = shared.now();
            let (listeners, background) = {
                let mut st = shared.lock();
                st.core.close(now);
                (
                    std::mem::take(&mut st.listeners),
                    std::mem::take(&mut st.background),
                )
            };
            shared.drain();
            for (addrs, abort) in listeners {
                abort.abort();
                for a in addrs {
                    shared.events.emit(&SwarmEvent::ListenAddrRemoved(a));
                }
            }
            for abort in background {
                abort.abort();
            }
            let closes = self
                .all_connections()
                .into_iter()
                .map(|c| async move { c.close().await });
            let _ = shared
                .runtime
                .timeout(config::CLOSE_GRACE, futures::future::join_all(closes))
                .await;
        }
        let deadline = shared.now() + config::CLOSE_GRACE;
        while shared.runtime.live_tasks() > 0 && shared.now() < deadline {
            shared.runtime.sleep(Duration::from_millis(10)).await;
        }
        if shared.runtime.live_tasks() > 0 {
            tracing::warn!(
                tasks = shared.runtime.live_tasks(),
                "tasks still running after close"
            );
        }
        shared.close_lifecycle();
        shared.events.close();
    }
}

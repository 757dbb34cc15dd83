//! The host handle and its builder.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use futures::future::{AbortHandle, Abortable};
use futures::{FutureExt, StreamExt};
use lp2p_core::{
    AddressResolver, Keypair, LimitDenied, Multiaddr, MuxerUpgrader, PeerId, ProtocolId, Role,
    RuntimeHandle, SecurityUpgrader, Stream,
};
use lp2p_multiselect::{MultiselectError, Version, dialer_select, listener_select};
use lp2p_peerstore::Peerstore;
use lp2p_rcmgr::{CountLimits, ResourceManager};
use lp2p_swarm::{
    Connection, ConnectionEvents, ConnectionGate, EventBus, EventStream, IntoTransport, Swarm,
    SwarmBuilder, SwarmConfig,
};

use crate::close::CloseHooks;
use crate::handler::{HandlerOptions, Handlers, ProtocolPredicate};
use crate::negotiating::{NegotiationSlots, Refusal};
use crate::registry::Services;
use crate::traffic::{Opened, TrafficTable};
use crate::{HostConfig, HostError, HostEvent, HostStream, ProtocolTraffic, StreamHandler};

/// A function run once the host is built (how services such as identify and ping attach
/// themselves to a host built by a builder).
pub type StartHook = Box<dyn FnOnce(&Host) + Send>;

/// Builds a [`Host`]. Transports, security channels and muxers are tried in the order given.
#[derive(Default)]
pub struct HostBuilder {
    swarm: SwarmBuilder,
    config: HostConfig,
    listen: Vec<Multiaddr>,
    runtime: Option<RuntimeHandle>,
    on_start: Vec<StartHook>,
    event_buffer: Option<usize>,
    resources: Option<ResourceManager>,
    swarm_config: Option<SwarmConfig>,
    has_transport: bool,
    has_security: bool,
    has_muxer: bool,
}

impl fmt::Debug for HostBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostBuilder")
            .field("swarm", &self.swarm)
            .field("config", &self.config)
            .field("listen", &self.listen)
            .finish_non_exhaustive()
    }
}

impl HostBuilder {
    /// The identity key (a fresh Ed25519 key when not set).
    #[must_use]
    pub fn keypair(mut self, keypair: Keypair) -> Self {
        self.swarm = self.swarm.keypair(keypair);
        self
    }

    /// Adds a transport: a byte-stream one (TCP, WebSocket, memory), upgraded with this
    /// builder's security channels and muxers, or one that yields established connections
    /// itself (QUIC). Addresses go to the first transport that can handle them.
    #[must_use]
    pub fn transport<M>(mut self, transport: impl IntoTransport<M>) -> Self {
        self.swarm = self.swarm.transport(transport);
        self.has_transport = true;
        self
    }

    /// Adds a connection gate (allow/deny lists, or your own rules) asked at dial, accept,
    /// once the remote is authenticated, and when the connection is ready.
    #[must_use]
    pub fn gate(mut self, gate: impl ConnectionGate) -> Self {
        self.swarm = self.swarm.gate(gate);
        self
    }

    /// Adds an address resolver (`lp2p-dns`): `/dns*` and `/dnsaddr` dial candidates are
    /// resolved before dialing.
    #[must_use]
    pub fn resolver(mut self, resolver: impl AddressResolver) -> Self {
        self.swarm = self.swarm.resolver(resolver);
        self
    }

    /// Adds a security channel, in preference order.
    #[must_use]
    pub fn security(mut self, security: impl SecurityUpgrader) -> Self {
        self.swarm = self.swarm.security(security);
        self.has_security = true;
        self
    }

    /// Adds a stream muxer, in preference order.
    #[must_use]
    pub fn muxer(mut self, muxer: impl MuxerUpgrader) -> Self {
        self.swarm = self.swarm.muxer(muxer);
        self.has_muxer = true;
        self
    }

    /// An address to listen on once built (`/ip4/0.0.0.0/tcp/0`, `/memory/0`, ...).
    #[must_use]
    pub fn listen_on(mut self, addr: Multiaddr) -> Self {
        self.listen.push(addr);
        self
    }

    /// Connection limits, timeouts and the idle policy; its `event_buffer` also sizes the
    /// host's event stream subscriptions. Used as given. Without it, the host uses
    /// `SwarmConfig::default()` with the inbound and outbound connection limits lowered when
    /// this process's file-descriptor limit (`ulimit -n`) cannot hold them.
    #[must_use]
    pub fn swarm_config(mut self, config: SwarmConfig) -> Self {
        self.event_buffer = Some(config.event_buffer);
        self.swarm_config = Some(config);
        self
    }

    /// Stream negotiation limits and timeouts.
    #[must_use]
    pub fn config(mut self, config: HostConfig) -> Self {
        self.config = config;
        self
    }

    /// A peer (address ending in `/p2p/<id>`) dialed at start and redialed with backoff.
    #[must_use]
    pub fn bootstrap(mut self, addr: Multiaddr) -> Self {
        self.swarm = self.swarm.bootstrap(addr);
        self
    }

    /// The runtime (the default runtime of the enabled feature otherwise).
    #[must_use]
    pub fn runtime(mut self, runtime: RuntimeHandle) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// A peerstore to share (a new one otherwise).
    #[must_use]
    pub fn peerstore(mut self, peerstore: Peerstore) -> Self {
        self.swarm = self.swarm.peerstore(peerstore);
        self
    }

    /// Runs `hook` with the host once it is built, before it listens (services register
    /// their handlers here).
    #[must_use]
    pub fn on_start(mut self, hook: impl FnOnce(&Host) + Send + 'static) -> Self {
        self.on_start.push(Box::new(hook));
        self
    }

    /// Whether a transport, a security channel and a muxer have been added.
    pub fn is_complete(&self) -> (bool, bool, bool) {
        (self.has_transport, self.has_security, self.has_muxer)
    }

    /// The resource manager whose memory budgets every muxed connection reserves from, and
    /// whose counts every connection and stream takes a place in (default: memory limits
    /// scaled to the machine, count limits at their defaults or at twice the swarm's and
    /// the host's own limits where those are higher). Keep a clone to read its stats, or
    /// reach it with [`Host::resource_manager`]; build one with `dry_run(true)` to only log
    /// what it would refuse. A manager given here is used as given: set its count limits
    /// above any swarm limit you raise.
    #[must_use]
    pub fn resource_manager(mut self, manager: ResourceManager) -> Self {
        self.resources = Some(manager);
        self
    }

    /// Builds the host, runs the start hooks, and starts listening.
    pub async fn build(self) -> Result<Host, HostError> {
        let runtime = match self.runtime {
            Some(rt) => rt.scope(),
            None => default_runtime()?.scope(),
        };
        let swarm_config = self
            .swarm_config
            .unwrap_or_else(|| fitted_to_fds(SwarmConfig::default()));
        let resources = self
            .resources
            .unwrap_or_else(|| default_resources(&swarm_config, &self.config));
        let swarm = self
            .swarm
            .config(swarm_config)
            .memory_budget(resources.clone())
            .connection_limiter(resources.clone())
            .runtime(runtime.clone())
            .build()?;
        let event_buffer = self
            .event_buffer
            .unwrap_or(lp2p_swarm::config::DEFAULT_EVENT_BUFFER);
        let negotiating = NegotiationSlots::new(
            self.config.max_negotiating_streams,
            self.config.max_negotiating_streams_per_peer,
        );
        let inner = Arc::new(Inner {
            swarm,
            resources,
            runtime,
            config: self.config,
            handlers: Handlers::default(),
            events: EventBus::new(event_buffer),
            event_buffer,
            external_addrs: Mutex::new(Vec::new()),
            services: Mutex::new(Vec::new()),
            close_hooks: CloseHooks::default(),
            registry: Services::default(),
            negotiating,
            traffic: TrafficTable::default(),
            stats: Stats::default(),
            closed: AtomicBool::new(false),
        });
        let weak = Arc::downgrade(&inner);
        inner.swarm.set_inbound_stream_handler(Arc::new(
            move |conn: Connection, stream: Box<dyn Stream>| {
                if let Some(inner) = weak.upgrade() {
                    inner.accept_inbound(conn, stream);
                }
            },
        ));
        let host = Host { inner };
        let mut swarm_events = host.inner.swarm.events();
        let forward = Arc::downgrade(&host.inner);
        host.spawn(async move {
            while let Some(event) = swarm_events.next().await {
                let Some(inner) = forward.upgrade() else {
                    return;
                };
                if let Some(event) = HostEvent::from_swarm(event) {
                    inner.events.emit(&event);
                }
            }
        });
        for hook in self.on_start {
            hook(&host);
        }
        for addr in &self.listen {
            host.inner.swarm.listen_on(addr).await?;
        }
        Ok(host)
    }
}

/// The default connection limits, shrunk to fit this process's file-descriptor limit when
/// they do not (see `lp2p_rcmgr::connection_limits_for_fds`). Only for a host built without
/// an explicit `swarm_config`: an explicit configuration is used as given.
/// The resource manager a host gets when it is given none: memory limits scaled to the
/// machine, count limits at their defaults or, where the swarm's or the host's own limits
/// are set higher, at twice those, as the defaults are to the default limits (decision D39):
/// the finer limits, with their evictions and fair shares, must act first, and a node
/// configured for 65,536 connections from one peer (`lp2p-node hold`) must not meet a
/// count of 16.
fn default_resources(swarm: &SwarmConfig, host: &HostConfig) -> ResourceManager {
    let mut counts = CountLimits::for_this_process();
    let raise = |limit: &mut usize, to: usize| *limit = (*limit).max(to.saturating_mul(2));
    raise(
        &mut counts.system.inbound_connections,
        swarm.max_inbound.saturating_add(swarm.max_pending_inbound),
    );
    raise(&mut counts.system.outbound_connections, swarm.max_outbound);
    raise(
        &mut counts.transient.inbound_connections,
        swarm.max_pending_inbound,
    );
    raise(&mut counts.peer.inbound_connections, swarm.max_per_peer);
    raise(&mut counts.peer.outbound_connections, swarm.max_per_peer);
    raise(
        &mut counts.transient.inbound_streams,
        host.max_negotiating_streams,
    );
    raise(
        &mut counts.protocol.inbound_streams,
        host.max_streams_per_protocol.saturating_mul(2),
    );
    // Raising limits cannot make them zero; should it fail anyway, the plain defaults.
    ResourceManager::builder()
        .count_limits(counts)
        .build()
        .unwrap_or_default()
}

fn fitted_to_fds(config: SwarmConfig) -> SwarmConfig {
    let Some(fds) = lp2p_rcmgr::fd_limit() else {
        return config;
    };
    let (max_inbound, max_outbound) =
        lp2p_rcmgr::connection_limits_for_fds(fds, config.max_inbound, config.max_outbound);
    if (max_inbound, max_outbound) != (config.max_inbound, config.max_outbound) {
        tracing::info!(
            fds,
            max_inbound,
            max_outbound,
            "connection limits lowered to fit the file-descriptor limit (raise `ulimit -n` for more)"
        );
    }
    SwarmConfig {
        max_inbound,
        max_outbound,
        max_pending_inbound: config.max_pending_inbound.min(max_inbound),
        ..config
    }
}

fn default_runtime() -> Result<RuntimeHandle, HostError> {
    RuntimeHandle::try_default().ok_or_else(|| {
        HostError::InvalidConfig(
            "no runtime: enable lp2p-core's async-std or smol feature, or set one".to_owned(),
        )
    })
}

/// Counters of streams the host refused or lost.
#[derive(Debug, Default)]
struct Stats {
    refused_negotiating: AtomicU64,
    refused_negotiating_peer: AtomicU64,
    refused_busy: AtomicU64,
    evicted_for_share: AtomicU64,
    failed_negotiation: AtomicU64,
    handler_panics: AtomicU64,
    refused_by_resources: AtomicU64,
}

/// A snapshot of the host's stream counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Inbound streams reset because too many were negotiating at once (all peers together,
    /// [`HostConfig::max_negotiating_streams`]).
    pub refused_negotiating: u64,
    /// Inbound streams reset because their peer already had its share of negotiating
    /// streams ([`HostConfig::max_negotiating_streams_per_peer`]).
    pub refused_negotiating_peer: u64,
    /// Inbound streams negotiating their protocol right now.
    pub negotiating: usize,
    /// Inbound streams reset because their protocol's handler was at its limit
    /// ([`HostConfig::max_streams_per_protocol`]) and every slot belonged to a different
    /// peer, or to this one.
    pub refused_busy: u64,
    /// Running streams aborted to give a slot of their protocol's handler to a peer that
    /// had none, taken from the peer holding the most (see
    /// [`HostConfig::max_streams_per_protocol`]).
    pub evicted_for_share: u64,
    /// Inbound streams whose negotiation failed (no common protocol, malformed, timeout).
    pub failed_negotiation: u64,
    /// Handlers that panicked.
    pub handler_panics: u64,
    /// Inbound streams reset because the resource manager refused them a place (a
    /// transient, peer, protocol or system stream limit; see
    /// [`ResourceManager::open_stream`]).
    pub refused_by_resources: u64,
}

struct Inner {
    swarm: Swarm,
    resources: ResourceManager,
    runtime: RuntimeHandle,
    config: HostConfig,
    handlers: Handlers,
    events: EventBus<HostEvent>,
    /// The per-subscriber capacity of `events` (the swarm configuration's `event_buffer`).
    event_buffer: usize,
    external_addrs: Mutex<Vec<Multiaddr>>,
    services: Mutex<Vec<AbortHandle>>,
    close_hooks: CloseHooks,
    registry: Services,
    negotiating: Arc<NegotiationSlots>,
    traffic: TrafficTable,
    stats: Stats,
    closed: AtomicBool,
}

/// A libp2p node: register handlers for protocols, open streams to peers, and watch what
/// happens. Cheap to clone (a handle); every method takes `&self`.
#[derive(Clone)]
pub struct Host {
    inner: Arc<Inner>,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("peer_id", &self.local_peer_id())
            .field("listen_addrs", &self.listen_addrs())
            .field("protocols", &self.protocols())
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn accept_inbound(self: &Arc<Self>, conn: Connection, mut stream: Box<dyn Stream>) {
        let guard = match self.negotiating.try_take(conn.peer()) {
            Ok(slot) => slot,
            Err(refusal) => {
                let (counter, what, limit, current) = match refusal {
                    Refusal::Total { limit, current } => (
                        &self.stats.refused_negotiating,
                        "max_negotiating_streams (all peers)",
                        limit,
                        current,
                    ),
                    Refusal::Peer { limit, current } => (
                        &self.stats.refused_negotiating_peer,
                        "max_negotiating_streams_per_peer",
                        limit,
                        current,
                    ),
                };
                let n = counter.fetch_add(1, Ordering::Relaxed).saturating_add(1);
                tracing::warn!(peer = %conn.peer(), limit_name = what, limit, current, refused_total = n, "too many inbound streams negotiating; stream reset");
                stream.reset();
                return;
            }
        };
        let mut counted = match self.resources.open_stream(&conn.peer(), Role::Responder) {
            Ok(counted) => counted,
            Err(denied) => {
                self.refused_by_resources(&conn.peer(), &denied);
                stream.reset();
                return;
            }
        };
        let inner = self.clone();
        self.runtime.spawn_detached(async move {
            let peer = conn.peer();
            let negotiation = listener_select(stream, inner.handlers.for_connection(conn.is_limited()));
            let negotiated = inner.runtime.timeout(inner.config.negotiation_timeout, negotiation).await;
            drop(guard);
            let (protocol, io) = match negotiated {
                Ok(Ok(agreed)) => agreed,
                Ok(Err(err)) => {
                    inner.stats.failed_negotiation.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, %err, "inbound stream negotiation failed");
                    return;
                }
                Err(_) => {
                    inner.stats.failed_negotiation.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, "inbound stream negotiation timed out");
                    return;
                }
            };
            let Some(entry) = inner.handlers.get(protocol.as_str()) else {
                // Removed between negotiation and now.
                let mut io = io;
                io.reset();
                return;
            };
            // Under the handler's registration name, as traffic is: a predicate handler's
            // protocols are the remote's choice and must not grow the manager's table.
            if let Err(denied) = counted.set_protocol(entry.name.as_str()) {
                inner.refused_by_resources(&peer, &denied);
                let mut io = io;
                io.reset();
                return;
            }
            let traffic = inner.traffic.stream(&entry.name, Opened::Inbound);
            let mut stream = HostStream::new(io, protocol.clone(), conn, traffic, counted);
            let Some(slot) = entry.slots.take(peer, inner.config.max_streams_per_protocol) else {
                let n = inner.stats.refused_busy.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(%peer, %protocol, refused_total = n, "handler at its stream limit; stream reset");
                stream.reset();
                return;
            };
            if let Some(victim) = slot.evicted {
                let n = inner.stats.evicted_for_share.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::debug!(%peer, %victim, %protocol, evicted_total = n, "handler at its stream limit; the oldest stream of the peer holding the most slots gave its slot to this one");
            }
            let handling = AssertUnwindSafe(entry.handler.handle(stream)).catch_unwind();
            let handled = Abortable::new(handling, slot.registration).await;
            drop(slot.guard);
            if let Ok(Err(_)) = handled {
                let n = inner.stats.handler_panics.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::error!(%peer, %protocol, panics_total = n, "stream handler panicked; the stream is dropped");
            }
        });
    }

    /// Counts and logs an inbound stream the resource manager refused.
    fn refused_by_resources(&self, peer: &PeerId, denied: &LimitDenied) {
        let n = self
            .stats
            .refused_by_resources
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        // Every 1st, 2nd, 4th, ... refusal: a flood must not flood the log.
        if n.is_power_of_two() {
            tracing::warn!(%peer, %denied, refused_total = n, "inbound stream refused by the resource manager; stream reset");
        }
    }

    fn services(&self) -> MutexGuard<'_, Vec<AbortHandle>> {
        self.services
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Host {
    /// A builder.
    pub fn builder() -> HostBuilder {
        HostBuilder::default()
    }

    /// Our peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.inner.swarm.local_peer_id()
    }

    /// Our identity key.
    pub fn keypair(&self) -> &Keypair {
        self.inner.swarm.keypair()
    }

    /// The peerstore: addresses, keys, protocols and metadata of known peers.
    pub fn peerstore(&self) -> &Peerstore {
        self.inner.swarm.peerstore()
    }

    /// The resource manager the host's connections reserve memory from (usage, peaks and
    /// denials in its [`stats`](ResourceManager::stats)).
    pub fn resource_manager(&self) -> &ResourceManager {
        &self.inner.resources
    }

    /// The swarm underneath (connection table, limits, dial backoff).
    pub fn swarm(&self) -> &Swarm {
        &self.inner.swarm
    }

    /// The host's runtime scope: every task of the host, its swarm and its services counts
    /// here ([`RuntimeHandle::live_tasks`]).
    pub fn runtime(&self) -> &RuntimeHandle {
        &self.inner.runtime
    }

    /// Registers `handler` for streams that propose exactly `protocol`, replacing any
    /// handler registered for it.
    pub fn set_stream_handler(&self, protocol: impl Into<ProtocolId>, handler: impl StreamHandler) {
        self.set_stream_handler_with(protocol, HandlerOptions::default(), handler);
    }

    /// [`set_stream_handler`](Host::set_stream_handler) with options, e.g. to serve the
    /// protocol over limited (relayed) connections too:
    /// `host.set_stream_handler_with("/x/1", HandlerOptions::allow_limited(), handler)`.
    pub fn set_stream_handler_with(
        &self,
        protocol: impl Into<ProtocolId>,
        options: HandlerOptions,
        handler: impl StreamHandler,
    ) {
        self.inner
            .handlers
            .insert(protocol.into(), Arc::new(handler), options);
        self.inner.events.emit(&HostEvent::LocalProtocolsChanged);
    }

    /// Registers `handler` for every proposed protocol id `predicate` accepts (e.g. any
    /// `/app/1.x`). `protocol` names the registration (for removal and for identify).
    /// Exact registrations are matched first, then predicates in registration order.
    pub fn set_stream_handler_matching(
        &self,
        protocol: impl Into<ProtocolId>,
        predicate: impl Fn(&str) -> bool + Send + Sync + 'static,
        handler: impl StreamHandler,
    ) {
        let predicate: ProtocolPredicate = Arc::new(predicate);
        self.inner.handlers.insert_matching(
            protocol.into(),
            predicate,
            Arc::new(handler),
            HandlerOptions::default(),
        );
        self.inner.events.emit(&HostEvent::LocalProtocolsChanged);
    }

    /// Removes the handler registered under `protocol`; false when there was none.
    pub fn remove_stream_handler(&self, protocol: &str) -> bool {
        let removed = self.inner.handlers.remove(protocol);
        if removed {
            self.inner.events.emit(&HostEvent::LocalProtocolsChanged);
        }
        removed
    }

    /// The protocols we have handlers for.
    pub fn protocols(&self) -> Vec<ProtocolId> {
        self.inner.handlers.protocols()
    }

    /// Opens a stream to `peer` for the first of `protocols` (in preference order) the peer
    /// supports, connecting first if needed (with the peerstore's addresses).
    pub async fn new_stream<I>(&self, peer: &PeerId, protocols: I) -> Result<HostStream, HostError>
    where
        I: IntoIterator,
        I::Item: Into<ProtocolId>,
    {
        let protocols: Vec<ProtocolId> = protocols.into_iter().map(Into::into).collect();
        if protocols.is_empty() {
            return Err(HostError::NoProtocols);
        }
        self.ensure_open()?;
        let conn = self.inner.swarm.dial(*peer).await?;
        if conn.is_limited() {
            // Only a limited (relayed) connection: the caller must opt in to spend it.
            return Err(HostError::LimitedConnection {
                peer: *peer,
                offered: protocols,
            });
        }
        self.new_stream_on(&conn, protocols).await
    }

    /// [`new_stream`](Host::new_stream) that may also use a limited (relayed) connection
    /// when no direct one exists: for protocols made to run over relays (hole punching,
    /// small control exchanges) whose remote handler opted in with
    /// [`HandlerOptions::allow_limited`].
    pub async fn new_stream_allow_limited<I>(
        &self,
        peer: &PeerId,
        protocols: I,
    ) -> Result<HostStream, HostError>
    where
        I: IntoIterator,
        I::Item: Into<ProtocolId>,
    {
        let protocols: Vec<ProtocolId> = protocols.into_iter().map(Into::into).collect();
        if protocols.is_empty() {
            return Err(HostError::NoProtocols);
        }
        self.ensure_open()?;
        let conn = self.inner.swarm.dial(*peer).await?;
        self.new_stream_on(&conn, protocols).await
    }

    /// Opens a stream on a given connection for the first of `protocols` the peer supports.
    ///
    /// With one protocol that the peer announced (identify put it in the peerstore), the
    /// negotiation is lazy: this returns at once and the proposal travels with the first
    /// bytes written, saving a round trip; should the peer refuse after all, the first read
    /// or write fails with "no common protocol". Otherwise it waits for the peer's answer
    /// and an unsupported protocol is [`HostError::ProtocolNotSupported`].
    pub async fn new_stream_on<I>(
        &self,
        conn: &Connection,
        protocols: I,
    ) -> Result<HostStream, HostError>
    where
        I: IntoIterator,
        I::Item: Into<ProtocolId>,
    {
        let offered: Vec<ProtocolId> = protocols.into_iter().map(Into::into).collect();
        if offered.is_empty() {
            return Err(HostError::NoProtocols);
        }
        let version = self.select_version(&conn.peer(), &offered);
        self.open_negotiated(conn, offered, version).await
    }

    /// Opens a stream on `conn` for `protocol`, negotiating lazily even when the peer has
    /// not announced it: returns at once, and the proposal travels with the first bytes
    /// written. For a protocol whose first message must not wait a round trip, such as
    /// DCUtR's CONNECT, which goes out before identify has answered and whose round trip is
    /// measured. A peer that does not speak `protocol` answers "na": the first read then
    /// fails with an [`std::io::Error`] that says "no protocol in common" (not
    /// [`HostError::ProtocolNotSupported`]).
    pub async fn new_stream_on_lazily(
        &self,
        conn: &Connection,
        protocol: impl Into<ProtocolId>,
    ) -> Result<HostStream, HostError> {
        self.open_negotiated(conn, vec![protocol.into()], Version::V1Lazy)
            .await
    }

    /// Opens a stream on `conn` and negotiates one of `offered` with `version`.
    async fn open_negotiated(
        &self,
        conn: &Connection,
        offered: Vec<ProtocolId>,
        version: Version,
    ) -> Result<HostStream, HostError> {
        let peer = conn.peer();
        let mut counted = self
            .inner
            .resources
            .open_stream(&peer, Role::Initiator)
            .map_err(|denied| HostError::Resources { peer, denied })?;
        let raw = conn.open_stream().await?;
        let negotiation = dialer_select(raw, offered.clone(), version);
        let after = self.inner.config.negotiation_timeout;
        match self.inner.runtime.timeout(after, negotiation).await {
            Ok(Ok((protocol, mut io))) => {
                if let Err(denied) = counted.set_protocol(protocol.as_str()) {
                    io.reset();
                    return Err(HostError::Resources { peer, denied });
                }
                let traffic = self.inner.traffic.stream(&protocol, Opened::Outbound);
                Ok(HostStream::new(
                    io,
                    protocol,
                    conn.clone(),
                    traffic,
                    counted,
                ))
            }
            Ok(Err(MultiselectError::NoCommonProtocol { .. })) => {
                Err(HostError::ProtocolNotSupported { peer, offered })
            }
            Ok(Err(source)) => Err(HostError::Negotiation {
                peer,
                offered,
                source,
            }),
            Err(_) => Err(HostError::NegotiationTimeout {
                peer,
                offered,
                after,
            }),
        }
    }

    /// How to negotiate `offered` with `peer` (decision D25): lazily (the proposal and the
    /// first application bytes in one packet, no round trip) when we offer one protocol and
    /// the peer announced it (identify stored it in the peerstore), as go-libp2p does; with
    /// the full round trip otherwise, so an unsupported protocol is still reported as
    /// [`HostError::ProtocolNotSupported`] before any data is written.
    fn select_version(&self, peer: &PeerId, offered: &[ProtocolId]) -> Version {
        match offered {
            [only]
                if !self
                    .inner
                    .swarm
                    .peerstore()
                    .supports_protocols(peer, std::slice::from_ref(only))
                    .is_empty() =>
            {
                Version::V1Lazy
            }
            _ => Version::V1,
        }
    }

    /// Connects to `peer` (reusing a live connection), trying `addrs` first; they are also
    /// remembered in the peerstore for a while.
    pub async fn connect(
        &self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
    ) -> Result<Connection, HostError> {
        self.ensure_open()?;
        Ok(self.inner.swarm.dial_with_addrs(peer, addrs).await?)
    }

    /// Connects to an address; with a trailing `/p2p/<id>` the remote must prove that id.
    pub async fn connect_addr(&self, addr: Multiaddr) -> Result<Connection, HostError> {
        self.ensure_open()?;
        Ok(self.inner.swarm.dial_addr(addr).await?)
    }

    /// Closes every connection to `peer`.
    pub async fn disconnect(&self, peer: &PeerId) {
        self.inner.swarm.disconnect(peer).await;
    }

    /// Peers we are connected to.
    pub fn connected_peers(&self) -> Vec<PeerId> {
        self.inner.swarm.connected_peers()
    }

    /// Starts listening on another address; returns the address bound.
    pub async fn listen_on(&self, addr: &Multiaddr) -> Result<Multiaddr, HostError> {
        Ok(self.inner.swarm.listen_on(addr).await?)
    }

    /// The addresses we listen on.
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.inner.swarm.listen_addrs()
    }

    /// Records an address others can reach us at (identify does this when enough peers
    /// observed it). Returns false when it was known already.
    pub fn add_external_addr(&self, addr: Multiaddr) -> bool {
        let mut addrs = self
            .inner
            .external_addrs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if addrs.contains(&addr) {
            return false;
        }
        addrs.push(addr.clone());
        drop(addrs);
        self.inner
            .events
            .emit(&HostEvent::ExternalAddrConfirmed(addr));
        true
    }

    /// Confirmed external addresses.
    pub fn external_addrs(&self) -> Vec<Multiaddr> {
        self.inner
            .external_addrs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// A stream of host events from now on. Bounded per subscriber (`event_buffer` of the
    /// swarm configuration): a subscriber that falls that far behind misses events (counted
    /// and logged). Services that must see every connection open and close use
    /// [`connection_events`](Host::connection_events).
    pub fn events(&self) -> EventStream<HostEvent> {
        self.inner.events.subscribe()
    }

    /// How many events a subscriber of [`events`](Host::events) may fall behind before it
    /// misses some (`event_buffer` of the swarm configuration). Services that publish their
    /// own event streams (identify) size them the same way.
    pub fn event_buffer(&self) -> usize {
        self.inner.event_buffer
    }

    /// Every connection open and close, without loss and in order per connection: starts
    /// with the connections that exist now (see [`ConnectionEvents`]).
    pub fn connection_events(&self) -> ConnectionEvents {
        self.inner.swarm.connection_events()
    }

    /// The live connection a new stream to `peer` would use, if any.
    pub fn connection_to(&self, peer: &PeerId) -> Option<Connection> {
        self.inner.swarm.connection_to(peer)
    }

    /// Every live connection to `peer`.
    pub fn connections(&self, peer: &PeerId) -> Vec<Connection> {
        self.inner.swarm.connections(peer)
    }

    /// Every live connection.
    pub fn all_connections(&self) -> Vec<Connection> {
        self.inner.swarm.all_connections()
    }

    /// Whether we have a connection to `peer`.
    pub fn is_connected(&self, peer: &PeerId) -> bool {
        self.inner.swarm.is_connected(peer)
    }

    /// Runs a background task for the lifetime of the host: counted in the host's runtime
    /// scope and aborted by [`close`](Host::close).
    pub fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = self.inner.runtime.spawn(task);
        self.inner.services().push(handle.abort_handle());
    }

    /// Counters of streams refused or lost.
    pub fn stats(&self) -> HostStats {
        let s = &self.inner.stats;
        HostStats {
            refused_negotiating: s.refused_negotiating.load(Ordering::Relaxed),
            refused_negotiating_peer: s.refused_negotiating_peer.load(Ordering::Relaxed),
            refused_by_resources: s.refused_by_resources.load(Ordering::Relaxed),
            negotiating: self.inner.negotiating.in_use(),
            refused_busy: s.refused_busy.load(Ordering::Relaxed),
            evicted_for_share: s.evicted_for_share.load(Ordering::Relaxed),
            failed_negotiation: s.failed_negotiation.load(Ordering::Relaxed),
            handler_panics: s.handler_panics.load(Ordering::Relaxed),
        }
    }

    /// Streams and bytes per protocol since the host started (for monitoring; see
    /// [`ProtocolTraffic`] for how protocols are named and bounded).
    pub fn protocol_traffic(&self) -> Vec<ProtocolTraffic> {
        self.inner.traffic.snapshot()
    }

    /// Whether [`close`](Host::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// A weak handle that does not keep the host alive (for services' background tasks).
    pub fn downgrade(&self) -> WeakHost {
        WeakHost(Arc::downgrade(&self.inner))
    }

    /// Registers work a service must finish before the host closes its connections: flush
    /// what it queued (pubsub send queues, identify pushes, a half-written reply). When
    /// [`close`](Host::close) is called, every hook registered runs once, all at the same
    /// time, while the host still works (streams open, connections stay up); the connections
    /// close when all of them finished or [`HostConfig::close_grace`] ran out, whichever is
    /// first. Returns false, and drops `hook` without running it, once closing has begun.
    ///
    /// ```
    /// # use lp2p_host::Host;
    /// # lp2p_core::runtime::block_on(async {
    /// # let host = Host::builder().transport(lp2p_memory::MemoryTransport::default())
    /// #     .security(lp2p_noise::Noise::new()).muxer(lp2p_yamux::Yamux::default())
    /// #     .build().await?;
    /// let (done, flushed) = futures::channel::oneshot::channel();
    /// host.on_close(move || async move {
    ///     // e.g. wait until a queue was written out
    ///     let _ = done.send(());
    /// });
    /// host.close().await;
    /// assert!(flushed.await.is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn on_close<F, Fut>(&self, hook: F) -> bool
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.inner.close_hooks.register(hook)
    }

    /// Registers `service` as this host's service of type `T`, replacing (and returning) the
    /// one registered before. Services register their handle when they start (`Identify`,
    /// `Ping`, `PubSub` do), so code that did not start them can find them with
    /// [`service`](Host::service). The registry holds the handle until the host closes;
    /// handles keep only a weak reference to the host, so this makes no cycle.
    pub fn insert_service<T: Clone + Send + Sync + 'static>(&self, service: T) -> Option<T> {
        self.inner.registry.insert(service)
    }

    /// The service of type `T` running on this host, if one registered itself: e.g.
    /// `host.service::<Identify>()` for the identify service `with_defaults()` started.
    /// `None` once the host is closed.
    pub fn service<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.inner.registry.get()
    }

    /// Whether [`close`](Host::close) has begun (services flushing, or already closed):
    /// services should queue no new work from then on.
    pub fn is_closing(&self) -> bool {
        self.inner.close_hooks.is_closing() || self.is_closed()
    }

    /// Closes the host gracefully: first every hook registered with
    /// [`on_close`](Host::on_close) runs (services flush what they queued) for at most
    /// [`HostConfig::close_grace`]; then services, listeners and dials stop, every connection
    /// closes (bytes already written to streams are still sent: the muxers close after their
    /// queued frames; streams fail from then on), and this waits for every task of the host
    /// to end. Event streams end afterwards. Calling it again, or from several tasks, waits
    /// for the same close.
    pub async fn close(&self) {
        self.inner
            .close_hooks
            .run(&self.inner.runtime, self.inner.config.close_grace)
            .await;
        self.inner.closed.store(true, Ordering::Release);
        let services = std::mem::take(&mut *self.inner.services());
        for service in services {
            service.abort();
        }
        self.inner.swarm.close().await;
        self.inner.registry.clear();
        self.inner.events.close();
    }

    fn ensure_open(&self) -> Result<(), HostError> {
        if self.is_closed() {
            Err(HostError::Closed)
        } else {
            Ok(())
        }
    }
}

/// A [`Host`] handle that does not keep it alive.
#[derive(Clone, Debug)]
pub struct WeakHost(Weak<Inner>);

impl WeakHost {
    /// The host, if it still exists.
    pub fn upgrade(&self) -> Option<Host> {
        self.0.upgrade().map(|inner| Host { inner })
    }
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("peer_id", &self.swarm.local_peer_id())
            .finish_non_exhaustive()
    }
}

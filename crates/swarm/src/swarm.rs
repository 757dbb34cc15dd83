//! The swarm handle, its builder, the connection table and the connection tasks.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, Instant};

use futures::future::{AbortHandle, Either, select};
use lp2p_core::{
    Keypair, Multiaddr, MuxerUpgrader, PeerId, ProtocolId, RawTransport, RuntimeHandle,
    SecurityUpgrader, Stream, UpgradeContext,
};
use lp2p_peerstore::{CONNECTED_ADDR_TTL, Peerstore, RECENTLY_CONNECTED_ADDR_TTL};

use crate::connection::ConnectionParts;
use crate::dial::{Backoff, SharedDial};
use crate::upgrade::{Upgraded, Upgraders};
use crate::{
    CloseReason, Connection, ConnectionId, Direction, EventBus, EventStream, LimitKind,
    SwarmConfig, SwarmError, SwarmEvent, config,
};

/// Called for every stream a remote opens, with the connection it arrived on. It must not
/// block: the host spawns a task that negotiates the protocol and runs the handler.
pub type InboundStreamHandler = Arc<dyn Fn(Connection, Box<dyn Stream>) + Send + Sync>;

/// Builds a [`Swarm`]: at least one transport, one security channel and one muxer.
#[derive(Default)]
pub struct SwarmBuilder {
    keypair: Option<Keypair>,
    transports: Vec<Arc<dyn RawTransport>>,
    security: Vec<Arc<dyn SecurityUpgrader>>,
    muxers: Vec<Arc<dyn MuxerUpgrader>>,
    peerstore: Option<Peerstore>,
    config: SwarmConfig,
    runtime: Option<RuntimeHandle>,
    bootstrap: Vec<Multiaddr>,
    inbound_handler: Option<InboundStreamHandler>,
}

impl fmt::Debug for SwarmBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwarmBuilder")
            .field(
                "transports",
                &self.transports.iter().map(|t| t.name()).collect::<Vec<_>>(),
            )
            .field(
                "security",
                &self
                    .security
                    .iter()
                    .map(|s| s.protocol_id())
                    .collect::<Vec<_>>(),
            )
            .field(
                "muxers",
                &self
                    .muxers
                    .iter()
                    .map(|m| m.protocol_id())
                    .collect::<Vec<_>>(),
            )
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

    /// Adds a transport; addresses go to the first transport that can handle them.
    #[must_use]
    pub fn transport(mut self, transport: impl RawTransport) -> Self {
        self.transports.push(Arc::new(transport));
        self
    }

    /// Adds a security channel, in preference order.
    #[must_use]
    pub fn security(mut self, security: impl SecurityUpgrader) -> Self {
        self.security.push(Arc::new(security));
        self
    }

    /// Adds a stream muxer, in preference order.
    #[must_use]
    pub fn muxer(mut self, muxer: impl MuxerUpgrader) -> Self {
        self.muxers.push(Arc::new(muxer));
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

    /// The runtime to spawn on (the default runtime of the enabled feature otherwise). The
    /// swarm counts its tasks in its own scope of it.
    #[must_use]
    pub fn runtime(mut self, runtime: RuntimeHandle) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// A peer to dial at start and to redial with backoff whenever the connection drops.
    /// The address should end in `/p2p/<peer id>`.
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

    /// Builds the swarm and starts its background tasks (bootstrap dials, maintenance). It
    /// does not listen until [`Swarm::listen_on`] is called.
    pub fn build(self) -> Result<Swarm, SwarmError> {
        let runtime = match self.runtime {
            Some(rt) => rt,
            None => default_runtime()?,
        };
        if self.transports.is_empty() {
            return Err(SwarmError::InvalidConfig("no transport configured"));
        }
        if self.security.is_empty() {
            return Err(SwarmError::InvalidConfig("no security protocol configured"));
        }
        if self.muxers.is_empty() {
            return Err(SwarmError::InvalidConfig("no stream muxer configured"));
        }
        let keypair = self.keypair.unwrap_or_else(Keypair::generate_ed25519);
        let muxer_ids = self
            .muxers
            .iter()
            .map(|m| ProtocolId::from_static(m.protocol_id()));
        let ctx = UpgradeContext::new(keypair.clone(), runtime.clone()).with_muxers(muxer_ids);
        let inner = Arc::new(Inner {
            local_peer: keypair.public().to_peer_id(),
            keypair,
            upgraders: Upgraders {
                security: self.security,
                muxers: self.muxers,
                ctx,
            },
            transports: self.transports,
            peerstore: self
                .peerstore
                .unwrap_or_else(|| Peerstore::with_runtime(runtime.clone())),
            events: EventBus::new(self.config.event_buffer),
            config: self.config,
            runtime,
            inbound_handler: RwLock::new(self.inbound_handler),
            state: Mutex::new(State::default()),
            next_id: AtomicU64::new(1),
            closed: AtomicBool::new(false),
        });
        let swarm = Swarm { inner };
        swarm.spawn_background(crate::maintenance::run(Arc::downgrade(&swarm.inner)));
        for addr in self.bootstrap {
            swarm.spawn_background(crate::bootstrap::run(Arc::downgrade(&swarm.inner), addr));
        }
        Ok(swarm)
    }
}

fn default_runtime() -> Result<RuntimeHandle, SwarmError> {
    RuntimeHandle::try_default().ok_or(SwarmError::InvalidConfig(
        "no runtime: enable lp2p-core's async-std or smol feature, or set one",
    ))
}

/// The state behind every clone of a [`Swarm`].
pub(crate) struct Inner {
    pub(crate) local_peer: PeerId,
    pub(crate) keypair: Keypair,
    pub(crate) upgraders: Upgraders,
    pub(crate) transports: Vec<Arc<dyn RawTransport>>,
    pub(crate) peerstore: Peerstore,
    pub(crate) config: SwarmConfig,
    pub(crate) runtime: RuntimeHandle,
    pub(crate) events: EventBus<SwarmEvent>,
    inbound_handler: RwLock<Option<InboundStreamHandler>>,
    state: Mutex<State>,
    next_id: AtomicU64,
    closed: AtomicBool,
}

#[derive(Default)]
pub(crate) struct State {
    connections: HashMap<PeerId, Vec<Connection>>,
    inbound: usize,
    outbound: usize,
    pending_inbound: usize,
    listeners: Vec<(Multiaddr, AbortHandle)>,
    pub(crate) dials: HashMap<PeerId, SharedDial>,
    /// Peers whose connections the idle timeout never closes.
    protected: HashSet<PeerId>,
    pub(crate) backoff: HashMap<Multiaddr, Backoff>,
    background: Vec<AbortHandle>,
}

/// The swarm: transports, upgrades, the connection table, limits and events. Cheap to clone
/// (a handle); every method takes `&self`.
///
/// Most users reach it through `lp2p-host`; it is public so other front ends can be built
/// on it.
#[derive(Clone)]
pub struct Swarm {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Swarm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Swarm")
            .field("local_peer", &self.inner.local_peer)
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
        self.inner.local_peer
    }

    /// Our identity key.
    pub fn keypair(&self) -> &Keypair {
        &self.inner.keypair
    }

    /// The peerstore the swarm reads addresses from and records connections in.
    pub fn peerstore(&self) -> &Peerstore {
        &self.inner.peerstore
    }

    /// The swarm's runtime scope: every task the swarm spawns is counted here.
    pub fn runtime(&self) -> &RuntimeHandle {
        &self.inner.runtime
    }

    /// The configuration in force.
    pub fn config(&self) -> &SwarmConfig {
        &self.inner.config
    }

    /// Sets what to do with streams remotes open, replacing the previous handler.
    pub fn set_inbound_stream_handler(&self, handler: InboundStreamHandler) {
        *self
            .inner
            .inbound_handler
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(handler);
    }

    /// A stream of everything that happens from now on.
    pub fn events(&self) -> EventStream<SwarmEvent> {
        self.inner.events.subscribe()
    }

    /// Starts listening on `addr` and returns the address actually bound (with the real
    /// port when port 0 was asked for).
    pub async fn listen_on(&self, addr: &Multiaddr) -> Result<Multiaddr, SwarmError> {
        self.inner.ensure_open()?;
        let transport = self
            .inner
            .transports
            .iter()
            .find(|t| t.can_listen(addr))
            .ok_or_else(|| SwarmError::UnsupportedAddress(addr.clone()))?;
        let listener = transport.listen(addr).await?;
        let bound = listener.local_addr();
        let task = self.inner.runtime.spawn(crate::listen::accept_loop(
            Arc::downgrade(&self.inner),
            listener,
        ));
        self.inner
            .lock()
            .listeners
            .push((bound.clone(), task.abort_handle()));
        tracing::info!(local_peer = %self.inner.local_peer, addr = %bound, "listening");
        self.inner
            .events
            .emit(&SwarmEvent::ListenAddrAdded(bound.clone()));
        Ok(bound)
    }

    /// Stops the listener bound to `addr`; false when there is none.
    pub fn remove_listener(&self, addr: &Multiaddr) -> bool {
        let removed = {
            let mut st = self.inner.lock();
            let before = st.listeners.len();
            st.listeners.retain(|(a, abort)| {
                if a == addr {
                    abort.abort();
                    false
                } else {
                    true
                }
            });
            before != st.listeners.len()
        };
        if removed {
            self.inner
                .events
                .emit(&SwarmEvent::ListenAddrRemoved(addr.clone()));
        }
        removed
    }

    /// The addresses we listen on.
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.inner
            .lock()
            .listeners
            .iter()
            .map(|(a, _)| a.clone())
            .collect()
    }

    /// A live connection to `peer`, if there is one (the most recent).
    pub fn connection_to(&self, peer: &PeerId) -> Option<Connection> {
        self.inner.connection_to(peer)
    }

    /// Every live connection to `peer`.
    pub fn connections(&self, peer: &PeerId) -> Vec<Connection> {
        self.inner
            .lock()
            .connections
            .get(peer)
            .cloned()
            .unwrap_or_default()
    }

    /// Every live connection.
    pub fn all_connections(&self) -> Vec<Connection> {
        self.inner
            .lock()
            .connections
            .values()
            .flatten()
            .cloned()
            .collect()
    }

    /// Peers we have at least one connection to.
    pub fn connected_peers(&self) -> Vec<PeerId> {
        self.inner.lock().connections.keys().copied().collect()
    }

    /// Whether we have a connection to `peer`.
    pub fn is_connected(&self, peer: &PeerId) -> bool {
        self.inner.lock().connections.contains_key(peer)
    }

    /// Established (inbound, outbound) connections and inbound connections still handshaking.
    pub fn connection_counts(&self) -> (usize, usize, usize) {
        let st = self.inner.lock();
        (st.inbound, st.outbound, st.pending_inbound)
    }

    /// Closes every connection to `peer`.
    pub async fn disconnect(&self, peer: &PeerId) {
        for conn in self.connections(peer) {
            conn.close().await;
        }
    }

    /// Closes the connection with this id; false when there is none.
    pub async fn close_connection(&self, id: ConnectionId) -> bool {
        let conn = self.all_connections().into_iter().find(|c| c.id() == id);
        match conn {
            Some(conn) => {
                conn.close().await;
                true
            }
            None => false,
        }
    }

    /// Exempts connections to `peer` from the idle timeout (bootstrap peers are protected
    /// automatically).
    pub fn protect_peer(&self, peer: PeerId) {
        self.inner.lock().protected.insert(peer);
    }

    /// Undoes [`protect_peer`](Swarm::protect_peer).
    pub fn unprotect_peer(&self, peer: &PeerId) {
        self.inner.lock().protected.remove(peer);
    }

    /// Whether connections to `peer` are exempt from the idle timeout.
    pub fn is_protected(&self, peer: &PeerId) -> bool {
        self.inner.lock().protected.contains(peer)
    }

    /// Whether [`close`](Swarm::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Stops listening, stops bootstrap redials, closes every connection and waits (up to
    /// [`CLOSE_GRACE`](crate::config::CLOSE_GRACE)) for every task the swarm spawned to end,
    /// aborting any that remain. Event subscriptions end afterwards.
    pub async fn close(&self) {
        let first = !self.inner.closed.swap(true, Ordering::AcqRel);
        if first {
            let (listeners, background) = {
                let mut st = self.inner.lock();
                (
                    std::mem::take(&mut st.listeners),
                    std::mem::take(&mut st.background),
                )
            };
            for (addr, abort) in listeners {
                abort.abort();
                self.inner.events.emit(&SwarmEvent::ListenAddrRemoved(addr));
            }
            for abort in background {
                abort.abort();
            }
            let closes = self
                .all_connections()
                .into_iter()
                .map(|c| async move { c.close().await });
            let _ = self
                .inner
                .runtime
                .timeout(config::CLOSE_GRACE, futures::future::join_all(closes))
                .await;
        }
        let deadline = Instant::now() + config::CLOSE_GRACE;
        while self.inner.runtime.live_tasks() > 0 && Instant::now() < deadline {
            self.inner.runtime.sleep(Duration::from_millis(10)).await;
        }
        if self.inner.runtime.live_tasks() > 0 {
            tracing::warn!(
                tasks = self.inner.runtime.live_tasks(),
                "tasks still running after close"
            );
        }
        self.inner.events.close();
    }

    /// Spawns a task that `close()` aborts.
    pub(crate) fn spawn_background(
        &self,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let handle = self.inner.runtime.spawn(task);
        self.inner.lock().background.push(handle.abort_handle());
    }
}

/// Holds one pending-inbound slot until dropped.
pub(crate) struct PendingSlot(Weak<Inner>);

impl Drop for PendingSlot {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade() {
            let mut st = inner.lock();
            st.pending_inbound = st.pending_inbound.saturating_sub(1);
        }
    }
}

impl Inner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn ensure_open(&self) -> Result<(), SwarmError> {
        if self.closed.load(Ordering::Acquire) {
            Err(SwarmError::Closed)
        } else {
            Ok(())
        }
    }

    pub(crate) fn connection_to(&self, peer: &PeerId) -> Option<Connection> {
        self.lock()
            .connections
            .get(peer)
            .and_then(|c| c.iter().rev().find(|c| !c.is_closed()).cloned())
    }

    pub(crate) fn transport_for(&self, addr: &Multiaddr) -> Option<&Arc<dyn RawTransport>> {
        self.transports.iter().find(|t| t.can_dial(addr))
    }

    /// Takes a pending-inbound slot, or says which limit refuses a new inbound connection.
    pub(crate) fn reserve_inbound(self: &Arc<Self>) -> Result<PendingSlot, SwarmError> {
        let mut st = self.lock();
        if st.pending_inbound >= self.config.max_pending_inbound {
            return Err(SwarmError::Limit {
                kind: LimitKind::PendingInbound,
                limit: self.config.max_pending_inbound,
            });
        }
        if st.inbound + st.pending_inbound >= self.config.max_inbound {
            return Err(SwarmError::Limit {
                kind: LimitKind::Inbound,
                limit: self.config.max_inbound,
            });
        }
        st.pending_inbound += 1;
        Ok(PendingSlot(Arc::downgrade(self)))
    }

    /// Whether one more connection to `peer` is allowed.
    pub(crate) fn admit_peer(&self, peer: &PeerId) -> Result<(), SwarmError> {
        let st = self.lock();
        if st.connections.get(peer).map_or(0, Vec::len) >= self.config.max_per_peer {
            return Err(SwarmError::Limit {
                kind: LimitKind::PerPeer,
                limit: self.config.max_per_peer,
            });
        }
        Ok(())
    }

    /// Whether one more outbound connection is allowed.
    pub(crate) fn admit_outbound(&self) -> Result<(), SwarmError> {
        if self.lock().outbound >= self.config.max_outbound {
            return Err(SwarmError::Limit {
                kind: LimitKind::Outbound,
                limit: self.config.max_outbound,
            });
        }
        Ok(())
    }

    /// Puts an upgraded connection in the table (limits permitting), records it in the
    /// peerstore, starts its task and announces it.
    pub(crate) fn register(
        self: &Arc<Self>,
        upgraded: Upgraded,
        direction: Direction,
        local_addr: Multiaddr,
        remote_addr: Multiaddr,
    ) -> Result<Connection, SwarmError> {
        let peer = upgraded.peer;
        let remote_key = upgraded.remote_key.clone();
        let refuse = |muxed: Arc<dyn lp2p_core::MuxedConnection>, err: SwarmError| {
            self.runtime
                .spawn_detached(async move { muxed.close().await });
            Err(err)
        };
        if self.closed.load(Ordering::Acquire) {
            return refuse(upgraded.muxed, SwarmError::Closed);
        }
        let (conn, num_established) = {
            let mut st = self.lock();
            let per_peer = st.connections.get(&peer).map_or(0, Vec::len);
            if per_peer >= self.config.max_per_peer {
                drop(st);
                return refuse(
                    upgraded.muxed,
                    SwarmError::Limit {
                        kind: LimitKind::PerPeer,
                        limit: self.config.max_per_peer,
                    },
                );
            }
            let (count, max, kind) = match direction {
                Direction::Inbound => (st.inbound, self.config.max_inbound, LimitKind::Inbound),
                Direction::Outbound => (st.outbound, self.config.max_outbound, LimitKind::Outbound),
            };
            if count >= max {
                drop(st);
                return refuse(upgraded.muxed, SwarmError::Limit { kind, limit: max });
            }
            let id = ConnectionId(self.next_id.fetch_add(1, Ordering::Relaxed));
            let conn = Connection::new(ConnectionParts {
                id,
                peer,
                direction,
                local_addr,
                remote_addr,
                security: upgraded.security,
                muxer: upgraded.muxer,
                muxed: upgraded.muxed,
            });
            match direction {
                Direction::Inbound => st.inbound += 1,
                Direction::Outbound => st.outbound += 1,
            }
            let list = st.connections.entry(peer).or_default();
            list.push(conn.clone());
            (conn, list.len())
        };
        if let Err(err) = self.peerstore.add_public_key(&peer, remote_key) {
            tracing::debug!(%peer, %err, "peerstore refused the remote key");
        }
        if direction == Direction::Outbound {
            // Inbound remote addresses are ephemeral source ports: not worth dialing.
            let _ = self
                .peerstore
                .add_addr(&peer, conn.remote_addr().clone(), CONNECTED_ADDR_TTL);
        }
        tracing::info!(
            %peer,
            connection = %conn.id(),
            %direction,
            remote_addr = %conn.remote_addr(),
            security = conn.security_protocol(),
            muxer = conn.muxer_protocol(),
            "connection established"
        );
        self.runtime.spawn_detached(drive_connection(
            Arc::downgrade(self),
            conn.clone(),
            self.config.idle_timeout,
        ));
        self.events.emit(&SwarmEvent::ConnectionEstablished {
            connection: conn.clone(),
            num_established,
        });
        Ok(conn)
    }

    fn unregister(&self, conn: &Connection, reason: CloseReason) {
        let peer = conn.peer();
        let num_remaining = {
            let mut st = self.lock();
            let Some(list) = st.connections.get_mut(&peer) else {
                return;
            };
            let before = list.len();
            list.retain(|c| c != conn);
            if list.len() == before {
                return;
            }
            let remaining = list.len();
            if remaining == 0 {
                st.connections.remove(&peer);
            }
            match conn.direction() {
                Direction::Inbound => st.inbound = st.inbound.saturating_sub(1),
                Direction::Outbound => st.outbound = st.outbound.saturating_sub(1),
            }
            remaining
        };
        if num_remaining == 0 {
            self.peerstore
                .update_addrs(&peer, CONNECTED_ADDR_TTL, RECENTLY_CONNECTED_ADDR_TTL);
        }
        tracing::info!(%peer, connection = %conn.id(), %reason, "connection closed");
        self.events.emit(&SwarmEvent::ConnectionClosed {
            peer,
            id: conn.id(),
            direction: conn.direction(),
            remote_addr: conn.remote_addr().clone(),
            reason,
            num_remaining,
        });
    }

    fn dispatch_inbound_stream(&self, conn: Connection, mut stream: Box<dyn Stream>) {
        let handler = self
            .inbound_handler
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(handler) = handler {
            handler(conn, stream);
        } else {
            tracing::debug!(peer = %conn.peer(), "no inbound stream handler; resetting the stream");
            stream.reset();
        }
    }
}

/// The task of one connection: hands inbound streams to the handler, closes the connection
/// when it has been idle too long, and takes it out of the table when it ends.
async fn drive_connection(swarm: Weak<Inner>, conn: Connection, idle_timeout: Option<Duration>) {
    let Some(runtime) = swarm.upgrade().map(|i| i.runtime.clone()) else {
        return;
    };
    let muxed = conn.muxed().clone();
    let tick_every = idle_timeout
        .map(|idle| (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5)));
    let new_tick = || match tick_every {
        Some(every) => runtime.sleep(every),
        None => Box::pin(futures::future::pending()),
    };
    let mut accept = muxed.accept_stream();
    let mut tick = new_tick();
    let mut idle_since: Option<Instant> = None;
    let reason = loop {
        match select(accept, tick).await {
            Either::Left((Ok(stream), pending_tick)) => {
                tick = pending_tick;
                idle_since = None;
                match swarm.upgrade() {
                    Some(inner) => inner.dispatch_inbound_stream(conn.clone(), stream),
                    None => drop(stream),
                }
                accept = muxed.accept_stream();
            }
            Either::Left((Err(err), _)) => {
                break if conn.closed_locally() {
                    CloseReason::Local
                } else {
                    CloseReason::Remote(err.to_string())
                };
            }
            Either::Right(((), pending_accept)) => {
                accept = pending_accept;
                tick = new_tick();
                let Some(idle) = idle_timeout else { continue };
                let protected = swarm
                    .upgrade()
                    .is_some_and(|i| i.lock().protected.contains(&conn.peer()));
                if protected || conn.num_streams() > 0 {
                    idle_since = None;
                    continue;
                }
                let since = *idle_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= idle {
                    tracing::debug!(peer = %conn.peer(), connection = %conn.id(), "closing idle connection");
                    conn.mark_closing();
                    drop(accept);
                    muxed.close().await;
                    break CloseReason::Idle;
                }
            }
        }
    };
    if let Some(inner) = swarm.upgrade() {
        inner.unregister(&conn, reason);
    }
}

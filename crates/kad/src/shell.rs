//! The async shell: a [`Kademlia`] service on an `lp2p-host` [`Host`], driving a
//! [`KadCore`] with real streams and the runtime's clock.
//!
//! One driver task (spawned with [`Host::spawn`], so [`Host::close`] ends it) watches the
//! host's connections and identify's results ([`lp2p_identify::subscribe`]) and runs the
//! core's timers. Each outbound request runs in its own task: connect (reusing a
//! connection), open a stream, write one LP frame, read one back, close. Inbound streams are served frame by frame (several requests per
//! stream), at most `max_inbound_streams_per_peer` per peer. The core sits behind a mutex
//! that is never held across an await.
//!
//! Every frame read (an inbound request, the answer to our request) is reserved first, at
//! its announced length, from a [`MEMORY_SERVICE`] account for the remote peer taken from
//! the host's resource manager (one account per stream, dropped with it); the reservation is
//! returned once the core has handled the body. A refused reservation resets the stream and
//! is counted in [`Counters::memory_refused`].

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use futures::channel::{mpsc, oneshot};
use futures::{AsyncWriteExt, FutureExt, Stream, StreamExt};
use lp2p_core::{MemoryAccount, MemoryBudget, Multiaddr, PeerId, ProtocolId, RuntimeHandle};
use lp2p_host::{Direction, Host, HostEvent, HostStream, WeakHost};
use lp2p_identify::{IdentifyEvent, IdentifyInfo};
use lp2p_swarm::{EventBus, EventStream};
use tracing::{debug, trace, warn};

use crate::config::{KadConfig, Mode};
use crate::core::{KadCore, OutboundRequest, PeerReport, RequestFailure};
use crate::error::KadError;
use crate::event::{Counters, Event, Progress, QueryId, QueryResult, QueryStats};
use crate::record::Record;
use crate::wire::{self, PeerInfo};

/// Progress items buffered per query before further ones are dropped (counted): a query
/// yields at most a few dozen, so only a caller that stopped reading loses any.
pub const DEFAULT_PROGRESS_BUFFER: usize = 256;

/// Events buffered per [`Kademlia::events`] subscriber (then dropped and counted).
pub const DEFAULT_EVENT_BUFFER: usize = 1024;

/// The service name Kademlia reserves message memory under in the host's resource manager
/// (`stats().service_memory["kad"]`): every request it reads and every answer to its own
/// requests is reserved there, per remote peer, before it is read.
pub const MEMORY_SERVICE: &str = "kad";

/// How long addresses learned from a lookup stay in the peerstore (the peerstore's
/// "temporary" TTL: long enough to dial the peer found).
const FOUND_ADDR_TTL: std::time::Duration = lp2p_peerstore::TEMP_ADDR_TTL;

struct Sink {
    progress: mpsc::Sender<Progress>,
    done: Option<oneshot::Sender<(QueryResult, QueryStats)>>,
    /// Find-peer targets, to put their addresses in the peerstore.
    target: Option<PeerId>,
}

struct State {
    core: KadCore,
    sinks: HashMap<QueryId, Sink>,
    /// Remote addresses of the outbound connections we have (verified by dialing them).
    dialed: HashMap<PeerId, Multiaddr>,
    /// Inbound kad streams open per peer.
    inbound: HashMap<PeerId, usize>,
    armed: Option<Instant>,
    wake: mpsc::Sender<()>,
    /// Requests the core started whose task has not started yet (see [`HandOff`]).
    queued: VecDeque<OutboundRequest>,
    /// A request task has started and not yet handed off to the next.
    starting: bool,
    dropped_progress: u64,
    streams_refused: u64,
    oversized: u64,
    /// Frames (requests or answers) whose memory the resource manager refused.
    memory_refused: u64,
}

struct Inner {
    state: Mutex<State>,
    host: WeakHost,
    runtime: RuntimeHandle,
    protocol: ProtocolId,
    config: KadConfig,
    events: EventBus<Event>,
    /// The host's resource manager: each stream's [`MEMORY_SERVICE`] account comes from it.
    budget: Arc<dyn MemoryBudget>,
}

/// Starts the next queued request once this request's task first waits (or ends), and on
/// drop at the latest.
///
/// A lookup starts up to `alpha` (10) requests at once. Spawned together, their tasks all
/// ran before any connection task did, so the first request reached its socket only after
/// all ten were encoded. Started one after the other, each task runs until it waits (its
/// request is then in its connection's send buffer and the connection task is woken ahead
/// of the next request's task), so the first request leaves first and the closest peer's
/// answer can come back while the others are still going out. Every request is still in
/// flight at once; none waits for another's answer, dial or negotiation (D69).
struct HandOff(Option<Arc<Inner>>);

impl HandOff {
    fn pass(&mut self) {
        if let Some(inner) = self.0.take() {
            let mut state = inner.lock();
            state.starting = false;
            inner.start_next_request(&mut state);
        }
    }
}

impl Drop for HandOff {
    fn drop(&mut self) {
        self.pass();
    }
}

/// The Kademlia DHT on a [`Host`]. Cheap to clone (a handle).
///
/// In [`Mode::Server`] it registers `/ipfs/kad/1.0.0` (identify then advertises it) and
/// answers requests; in [`Mode::Client`] it only queries. Peers enter its routing table when
/// they prove to be servers: they answer one of our requests, or identify says they speak the
/// protocol; with an address we dialed or one from their signed peer record.
///
/// ```
/// use std::time::Duration;
/// use lp2p_host::Host;
/// use lp2p_identify::{Identify, IdentifyConfig};
/// use lp2p_kad::{KadConfig, Kademlia};
///
/// # lp2p_core::runtime::block_on(async {
/// async fn node() -> (Host, Kademlia) {
///     let host = Host::builder()
///         .transport(lp2p_memory::MemoryTransport::default())
///         .security(lp2p_noise::Noise::new())
///         .muxer(lp2p_yamux::Yamux::default())
///         .listen_on("/memory/0".parse().unwrap())
///         .build()
///         .await
///         .unwrap();
///     let kad = Kademlia::new(&host, KadConfig::default()).unwrap();
///     // Identify tells peers we are a DHT server, with a signed record of our addresses.
///     Identify::new(&host, IdentifyConfig::default());
///     (host, kad)
/// }
/// let ((a, kad_a), (b, kad_b), (c, kad_c)) = (node().await, node().await, node().await);
/// // b and c know a; b joins the DHT (a learns b's address from b's identify).
/// kad_b.add_address(a.local_peer_id(), a.listen_addrs());
/// kad_c.add_address(a.local_peer_id(), a.listen_addrs());
/// kad_b.bootstrap().await?;
/// while !kad_a.routing_table().iter().any(|p| p.peer == b.local_peer_id()) {
///     a.runtime().sleep(Duration::from_millis(10)).await;
/// }
/// // c finds b through a.
/// let (found, _stats) = kad_c.find_peer(b.local_peer_id()).await?;
/// assert_eq!(found.addrs, b.listen_addrs());
/// # for h in [&a, &b, &c] { h.close().await; }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Kademlia {
    inner: Arc<Inner>,
}

impl fmt::Debug for Kademlia {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kademlia")
            .field("protocol", &self.inner.protocol)
            .field("mode", &self.mode())
            .finish_non_exhaustive()
    }
}

/// A running query: its partial results as a [`Stream`], then its result with
/// [`QueryHandle::finish`]. Dropping it cancels the query.
pub struct QueryHandle {
    id: QueryId,
    progress: mpsc::Receiver<Progress>,
    done: oneshot::Receiver<(QueryResult, QueryStats)>,
    inner: Arc<Inner>,
    finished: bool,
}

impl fmt::Debug for QueryHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueryHandle")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl QueryHandle {
    /// The query's id.
    pub fn id(&self) -> QueryId {
        self.id
    }

    /// Waits for the result (progress not read yet is discarded).
    pub async fn finish(mut self) -> Result<(QueryResult, QueryStats), KadError> {
        let done = (&mut self.done).await;
        self.finished = true;
        done.map_err(|_| KadError::Closed)
    }
}

impl Stream for QueryHandle {
    type Item = Progress;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Progress>> {
        self.progress.poll_next_unpin(cx)
    }
}

impl Drop for QueryHandle {
    fn drop(&mut self) {
        if !self.finished {
            let mut state = self.inner.lock();
            if state.sinks.remove(&self.id).is_some() {
                state.core.cancel(self.id);
            }
        }
    }
}

/// What [`Kademlia::query`] runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Find a peer's addresses.
    FindPeer(PeerId),
    /// The closest peers to a key.
    ClosestPeers(Vec<u8>),
    /// The best record under a key.
    GetValue(Vec<u8>),
    /// Store a record.
    PutValue(Record),
    /// Announce ourselves as a provider of a key (a multihash).
    StartProviding(Vec<u8>),
    /// The providers of a key.
    GetProviders(Vec<u8>),
    /// Self-lookup, then bucket refreshes.
    Bootstrap,
}

impl Kademlia {
    /// Starts the DHT on `host`.
    pub fn new(host: &Host, config: KadConfig) -> Result<Kademlia, KadError> {
        if host.is_closed() {
            return Err(KadError::Closed);
        }
        let runtime = host.runtime().clone();
        let now = runtime.now();
        let mut core = KadCore::new(host.local_peer_id(), config.clone(), now);
        core.set_local_addrs(announce_addrs(host));
        let (wake, wake_rx) = mpsc::channel(1);
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                core,
                sinks: HashMap::new(),
                dialed: HashMap::new(),
                inbound: HashMap::new(),
                armed: None,
                queued: VecDeque::new(),
                starting: false,
                wake,
                dropped_progress: 0,
                streams_refused: 0,
                oversized: 0,
                memory_refused: 0,
            }),
            host: host.downgrade(),
            runtime,
            protocol: config.protocol.clone(),
            config,
            events: EventBus::new(DEFAULT_EVENT_BUFFER),
            budget: Arc::new(host.resource_manager().clone()),
        });
        // Subscribe before looking at existing peers, so nothing is missed.
        let host_events = host.events();
        // Identify may start after us: this subscription also hears a later service.
        let identify_events = lp2p_identify::subscribe(host);
        if inner.config.mode == Mode::Server {
            inner.register(host);
        }
        {
            let mut state = inner.lock();
            let now = inner.runtime.now();
            for peer in host.connected_peers() {
                state.core.on_connected(peer, None, now);
                let server = !host
                    .peerstore()
                    .supports_protocols(&peer, &[inner.protocol.as_str()])
                    .is_empty();
                if server {
                    let report = PeerReport {
                        server,
                        verified_addrs: Vec::new(),
                    };
                    state.core.on_peer_report(peer, report, now);
                }
            }
            inner.flush(&mut state);
        }
        host.spawn(drive(inner.clone(), host_events, identify_events, wake_rx));
        Ok(Kademlia { inner })
    }

    /// Our peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.inner.lock().core.local_peer_id()
    }

    /// Server or client.
    pub fn mode(&self) -> Mode {
        self.inner.lock().core.mode()
    }

    /// Switches mode: a server registers the protocol's handler (identify advertises it), a
    /// client removes it.
    pub fn set_mode(&self, mode: Mode) {
        let Some(host) = self.inner.host.upgrade() else {
            return;
        };
        self.inner.lock().core.set_mode(mode);
        match mode {
            Mode::Server => self.inner.register(&host),
            Mode::Client => {
                host.remove_stream_handler(self.inner.protocol.as_str());
            }
        }
    }

    /// Adds a peer known to be a DHT server at `addrs` (a bootstrap peer).
    pub fn add_address(&self, peer: PeerId, addrs: Vec<Multiaddr>) {
        let mut state = self.inner.lock();
        let now = self.inner.runtime.now();
        state.core.add_address(peer, addrs, now);
        self.inner.flush(&mut state);
    }

    /// Starts a query; its progress and result come through the handle.
    pub fn query(&self, op: Op) -> Result<QueryHandle, KadError> {
        let mut state = self.inner.lock();
        let now = self.inner.runtime.now();
        let target = match &op {
            Op::FindPeer(peer) => Some(*peer),
            _ => None,
        };
        let started = match op {
            Op::FindPeer(peer) => state.core.find_peer(peer, now),
            Op::ClosestPeers(key) => state.core.get_closest_peers(&key, now),
            Op::GetValue(key) => state.core.get_value(&key, now),
            Op::PutValue(record) => state.core.put_value(record, now),
            Op::StartProviding(key) => {
                let addrs = self.inner.host.upgrade().map(|h| announce_addrs(&h));
                if let Some(addrs) = addrs {
                    state.core.set_local_addrs(addrs);
                }
                state.core.start_providing(&key, now)
            }
            Op::GetProviders(key) => state.core.get_providers(&key, now),
            Op::Bootstrap => state.core.bootstrap(now),
        };
        let id = started?;
        let (progress_tx, progress) = mpsc::channel(DEFAULT_PROGRESS_BUFFER.saturating_sub(1));
        let (done_tx, done) = oneshot::channel();
        state.sinks.insert(
            id,
            Sink {
                progress: progress_tx,
                done: Some(done_tx),
                target,
            },
        );
        // The query may have ended at once (found locally); deliver that now.
        self.inner.flush(&mut state);
        Ok(QueryHandle {
            id,
            progress,
            done,
            inner: self.inner.clone(),
            finished: false,
        })
    }

    /// Finds `peer`'s addresses (also stored in the peerstore for a while).
    pub async fn find_peer(&self, peer: PeerId) -> Result<(PeerInfo, QueryStats), KadError> {
        match self.query(Op::FindPeer(peer))?.finish().await? {
            (QueryResult::FindPeer(Some(info)), stats) => Ok((info, stats)),
            (_, stats) if stats.timed_out => Err(KadError::Timeout),
            _ => Err(KadError::NotFound(format!("no peer knows {peer}"))),
        }
    }

    /// The `k` closest peers to `key` that answered, nearest first.
    pub async fn get_closest_peers(&self, key: Vec<u8>) -> Result<Vec<PeerInfo>, KadError> {
        match self.query(Op::ClosestPeers(key))?.finish().await? {
            (QueryResult::ClosestPeers(peers), _) => Ok(peers),
            (other, _) => Err(unexpected(&other)),
        }
    }

    /// The best valid record under `key`.
    pub async fn get_value(&self, key: Vec<u8>) -> Result<(Record, QueryStats), KadError> {
        match self.query(Op::GetValue(key))?.finish().await? {
            (QueryResult::GetValue(Some(record)), stats) => Ok((record, stats)),
            (_, stats) if stats.timed_out => Err(KadError::Timeout),
            _ => Err(KadError::NotFound("no record under the key".to_owned())),
        }
    }

    /// Stores `record` here and at the closest peers; returns how many peers stored it.
    pub async fn put_value(&self, record: Record) -> Result<(usize, QueryStats), KadError> {
        match self.query(Op::PutValue(record))?.finish().await? {
            (QueryResult::PutValue { stored }, stats) => Ok((stored, stats)),
            (other, _) => Err(unexpected(&other)),
        }
    }

    /// Announces us as a provider of `key` (a multihash); returns how many peers took the
    /// record.
    pub async fn start_providing(&self, key: Vec<u8>) -> Result<(usize, QueryStats), KadError> {
        match self.query(Op::StartProviding(key))?.finish().await? {
            (QueryResult::StartProviding { stored }, stats) => Ok((stored, stats)),
            (other, _) => Err(unexpected(&other)),
        }
    }

    /// Stops announcing `key`.
    pub fn stop_providing(&self, key: &[u8]) {
        self.inner.lock().core.stop_providing(key);
    }

    /// The providers of `key` (run [`Kademlia::query`] with [`Op::GetProviders`] to get them
    /// as they arrive).
    pub async fn get_providers(
        &self,
        key: Vec<u8>,
    ) -> Result<(Vec<PeerInfo>, QueryStats), KadError> {
        match self.query(Op::GetProviders(key))?.finish().await? {
            (QueryResult::GetProviders(providers), stats) => Ok((providers, stats)),
            (other, _) => Err(unexpected(&other)),
        }
    }

    /// Runs the bootstrap now (it also runs every `bootstrap_interval`, and once when the
    /// routing table gets its first peer); returns the routing table's size after the
    /// self-lookup.
    pub async fn bootstrap(&self) -> Result<usize, KadError> {
        match self.query(Op::Bootstrap)?.finish().await? {
            (QueryResult::Bootstrap { routing_table, .. }, _) => Ok(routing_table),
            (other, _) => Err(unexpected(&other)),
        }
    }

    /// The peers in the routing table with their addresses.
    pub fn routing_table(&self) -> Vec<PeerInfo> {
        self.inner
            .lock()
            .core
            .routing_table()
            .iter()
            .map(|e| PeerInfo::new(e.peer, e.addrs.clone()))
            .collect()
    }

    /// What was counted (the core's counters, plus what the shell saw: streams refused and
    /// oversized messages, inbound requests and answers alike, in `inbound_refused`, and
    /// frames refused for memory in `memory_refused`).
    pub fn counters(&self) -> Counters {
        let state = self.inner.lock();
        let mut c = state.core.counters().clone();
        c.inbound_refused = c
            .inbound_refused
            .saturating_add(state.streams_refused)
            .saturating_add(state.oversized);
        c.memory_refused = c.memory_refused.saturating_add(state.memory_refused);
        c
    }

    /// Finished queries per kind, with their durations.
    pub fn query_totals(&self) -> Vec<crate::QueryTotals> {
        self.inner.lock().core.query_totals()
    }

    /// Peers in the routing table now.
    pub fn routing_table_len(&self) -> usize {
        self.inner.lock().core.routing_table().len()
    }

    /// Records and provider records held.
    pub fn store_sizes(&self) -> (usize, usize) {
        let state = self.inner.lock();
        (state.core.records().len(), state.core.providers().len())
    }

    /// Routing-table changes and query events, from now on.
    pub fn events(&self) -> EventStream<Event> {
        self.inner.events.subscribe()
    }

    /// Lets the mode follow the node's reachability: server mode while the latest value of
    /// `publicly_reachable` is `true`, client mode while it is `false` (the spec's "Client
    /// and server mode": only publicly reachable nodes should answer the DHT, or others
    /// fill their routing tables with peers they cannot dial). Feed it a verdict such as
    /// AutoNAT's (`lp2p-node --kad auto --autonat` does); the mode configured at start
    /// holds until the first value. A switch is logged, and identify pushes the changed
    /// protocol list to connected peers. Runs until the stream or the host ends.
    pub fn follow_reachability<S>(&self, publicly_reachable: S)
    where
        S: Stream<Item = bool> + Send + 'static,
    {
        let Some(host) = self.inner.host.upgrade() else {
            return;
        };
        let weak = Arc::downgrade(&self.inner);
        host.spawn(async move {
            let mut publicly_reachable = std::pin::pin!(publicly_reachable);
            while let Some(public) = publicly_reachable.next().await {
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let kad = Kademlia { inner };
                let mode = if public { Mode::Server } else { Mode::Client };
                if kad.mode() != mode {
                    tracing::info!(?mode, "kad: mode follows the node's reachability");
                    kad.set_mode(mode);
                }
            }
        });
    }
}

fn unexpected(result: &QueryResult) -> KadError {
    KadError::NotFound(format!("unexpected query result {result:?}"))
}

/// The addresses we announce in provider records: confirmed external ones, else the
/// listen addresses that are not unspecified.
fn announce_addrs(host: &Host) -> Vec<Multiaddr> {
    let external = host.external_addrs();
    if !external.is_empty() {
        return external;
    }
    host.listen_addrs()
        .into_iter()
        .filter(|a| {
            !a.iter().any(|p| match p {
                lp2p_core::Protocol::Ip4(ip) => ip.is_unspecified(),
                lp2p_core::Protocol::Ip6(ip) => ip.is_unspecified(),
                _ => false,
            })
        })
        .collect()
}

/// The driver: host events in, the core's timers run on time.
async fn drive(
    inner: Arc<Inner>,
    host_events: EventStream<HostEvent>,
    identify_events: EventStream<IdentifyEvent>,
    wake_rx: mpsc::Receiver<()>,
) {
    let _stopping = Stopping(inner.clone());
    let mut host_events = host_events.fuse();
    let mut identify_events = identify_events.fuse();
    let mut wake_rx = wake_rx.fuse();
    loop {
        let deadline = {
            let mut state = inner.lock();
            let deadline = state.core.poll_timeout();
            state.armed = deadline;
            deadline
        };
        let mut sleep = match deadline {
            Some(at) => inner.runtime.sleep_until(at).fuse(),
            None => futures::future::pending().boxed().fuse(),
        };
        futures::select_biased! {
            event = host_events.next() => {
                let Some(event) = event else {
                    debug!("kad: host event stream ended; service stops");
                    return;
                };
                inner.on_host_event(event);
            }
            // Ends when the host closes (or never started identify); the host events end
            // then too, which is what stops the driver.
            event = identify_events.next() => {
                if let Some(IdentifyEvent::Identified { peer, info }) = event {
                    inner.on_identified(peer, &info);
                }
            }
            _ = wake_rx.next() => {}
            () = sleep => {
                let mut state = inner.lock();
                let now = inner.runtime.now();
                state.core.handle_timeout(now);
                inner.flush(&mut state);
            }
        }
    }
}

/// Ends every pending query when the driver stops (host closed).
struct Stopping(Arc<Inner>);

impl Drop for Stopping {
    fn drop(&mut self) {
        self.0.lock().sinks.clear();
        self.0.events.close();
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn register(self: &Arc<Self>, host: &Host) {
        let weak = Arc::downgrade(self);
        host.set_stream_handler(self.protocol.clone(), move |stream: HostStream| {
            let inner = weak.upgrade();
            async move {
                if let Some(inner) = inner {
                    inner.serve_inbound(stream).await;
                }
            }
        });
    }

    fn on_host_event(self: &Arc<Self>, event: HostEvent) {
        let mut state = self.lock();
        let now = self.runtime.now();
        match event {
            HostEvent::Connected {
                peer, connection, ..
            } => {
                let dialed = (connection.direction() == Direction::Outbound
                    && !connection.is_limited())
                .then(|| connection.remote_addr().clone());
                if let Some(addr) = &dialed {
                    state.dialed.insert(peer, addr.clone());
                }
                state.core.on_connected(peer, dialed, now);
            }
            HostEvent::Disconnected {
                peer,
                num_remaining: 0,
                ..
            } => {
                state.dialed.remove(&peer);
                state.core.on_disconnected(&peer);
            }
            HostEvent::ListenAddrAdded(_) | HostEvent::ExternalAddrConfirmed(_) => {
                if let Some(host) = self.host.upgrade() {
                    state.core.set_local_addrs(announce_addrs(&host));
                }
            }
            _ => {}
        }
        self.flush(&mut state);
    }

    /// What identify learned about `peer`: whether it serves our protocol, and the
    /// addresses we can trust (the one we dialed; its listen addresses when they came in a
    /// signed record, or when configured to trust unsigned ones).
    fn on_identified(self: &Arc<Self>, peer: PeerId, info: &IdentifyInfo) {
        // Identify's stream is not ordered with the host's: the `Connected` event of an
        // outbound connection may not have been handled yet, so ask the host too.
        let outbound: Vec<Multiaddr> = self
            .host
            .upgrade()
            .map(|host| {
                host.connections(&peer)
                    .iter()
                    // A relayed connection's address is the relay's circuit, not one we
                    // verified the peer at (and kad does not run over limited connections).
                    .filter(|c| c.direction() == Direction::Outbound && !c.is_limited())
                    .map(|c| c.remote_addr().clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut state = self.lock();
        let now = self.runtime.now();
        let server = info
            .protocols
            .iter()
            .any(|p| p.as_str() == self.protocol.as_str());
        let mut verified_addrs: Vec<Multiaddr> = match state.dialed.get(&peer) {
            Some(dialed) => vec![dialed.clone()],
            None => outbound,
        };
        if info.signed_record || self.config.trust_unsigned_addrs {
            verified_addrs.extend(info.listen_addrs.iter().cloned());
        }
        let report = PeerReport {
            server,
            verified_addrs,
        };
        state.core.on_peer_report(peer, report, now);
        self.flush(&mut state);
    }

    /// Drains the core's output: starts requests, routes events, re-arms the timer.
    fn flush(self: &Arc<Self>, state: &mut State) {
        while let Some(request) = state.core.poll_request() {
            state.queued.push_back(request);
        }
        self.start_next_request(state);
        while let Some(event) = state.core.poll_event() {
            self.dispatch(state, &event);
        }
        let next = state.core.poll_timeout();
        let earlier = match (next, state.armed) {
            (Some(next), Some(armed)) => next < armed,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if earlier {
            state.armed = next;
            let _ = state.wake.try_send(());
        }
    }

    fn dispatch(&self, state: &mut State, event: &Event) {
        match event {
            Event::Progress { id, progress } => {
                if let Some(sink) = state.sinks.get_mut(id)
                    && let Err(err) = sink.progress.try_send(progress.clone())
                    && err.is_full()
                {
                    state.dropped_progress = state.dropped_progress.saturating_add(1);
                    warn!(query = %id, dropped_total = state.dropped_progress, "kad: query progress not read; dropped");
                }
            }
            Event::Finished { id, result, stats } => {
                if let Some(mut sink) = state.sinks.remove(id) {
                    if let (Some(target), QueryResult::FindPeer(Some(info))) = (sink.target, result)
                        && let Some(host) = self.host.upgrade()
                        && !info.addrs.is_empty()
                    {
                        let _ =
                            host.peerstore()
                                .add_addrs(&target, info.addrs.clone(), FOUND_ADDR_TTL);
                    }
                    if let Some(done) = sink.done.take() {
                        let _ = done.send((result.clone(), *stats));
                    }
                }
            }
            Event::RoutingAdded { .. } | Event::RoutingRemoved { .. } => {}
        }
        self.events.emit(event);
    }

    /// Spawns the task of the next queued request, unless one started and has not handed
    /// off yet.
    fn start_next_request(self: &Arc<Self>, state: &mut State) {
        if state.starting {
            return;
        }
        // A request whose query ended while it waited here is not sent: its answer would
        // be ignored, and it would cost the peer and us the work for nothing.
        while let Some(request) = state.queued.pop_front() {
            if !state.core.is_wanted(request.id) {
                trace!(peer = %request.peer, "kad: request of an ended query not sent");
                continue;
            }
            state.starting = true;
            let inner = self.clone();
            self.runtime
                .spawn_detached(async move { inner.run_request(request).await });
            return;
        }
    }

    /// One outbound request: connect, open a stream, write, read the answer, close.
    async fn run_request(self: Arc<Self>, request: OutboundRequest) {
        let peer = request.peer;
        let id = request.id;
        let timeout = self.config.request_timeout;
        // Holds the answer's reservation until the core has handled it; opened only when
        // an answer is about to be read (not while connecting, nor for a request without
        // an answer), so a peer we merely try to reach is not counted by the manager.
        let mut account: Option<Box<dyn MemoryAccount>> = None;
        let outcome = {
            let mut exchange = std::pin::pin!(self.clone().exchange(request, &mut account));
            let mut hand_off = HandOff(Some(self.clone()));
            let exchange = futures::future::poll_fn(|cx| {
                let polled = exchange.as_mut().poll(cx);
                hand_off.pass();
                polled
            });
            match self.runtime.timeout(timeout, exchange).await {
                Ok(outcome) => outcome,
                Err(_) => Err(RequestFailure::Timeout),
            }
        };
        if let Err(failure) = &outcome {
            trace!(%peer, ?failure, "kad: request failed");
        }
        {
            let mut state = self.lock();
            let now = self.runtime.now();
            state.core.on_response_bytes(id, outcome, now);
            self.flush(&mut state);
        }
        // The answer is gone with the core's handling of it.
        drop(account);
    }

    /// Reads one frame of at most `max` bytes from `peer` on `stream`, reserved from
    /// `account` first; `Ok(None)` at a clean end of the stream. A refused reservation is
    /// counted and logged here (the caller resets the stream).
    async fn read_reserved(
        &self,
        stream: &mut HostStream,
        peer: &PeerId,
        max: usize,
        account: &mut dyn MemoryAccount,
    ) -> Result<Option<Vec<u8>>, lp2p_core::Error> {
        let read = lp2p_core::framing::read_frame_reserved(stream, max, account).await;
        if let Err(lp2p_core::Error::OutOfMemory(denied)) = &read {
            let n = {
                let mut state = self.lock();
                state.memory_refused = state.memory_refused.saturating_add(1);
                state.memory_refused
            };
            debug!(%peer, %denied, refused_total = n, "kad: no memory for the frame; stream reset");
        }
        read
    }

    async fn exchange(
        self: Arc<Self>,
        request: OutboundRequest,
        account: &mut Option<Box<dyn MemoryAccount>>,
    ) -> Result<(Option<Vec<u8>>, Option<Multiaddr>), RequestFailure> {
        let host = self.host.upgrade().ok_or(RequestFailure::Unreachable)?;
        let peer = request.peer;
        let connection = host
            .connect(peer, request.addrs.clone())
            .await
            .map_err(|err| {
                trace!(%peer, %err, "kad: cannot connect");
                RequestFailure::Unreachable
            })?;
        let dialed = (connection.direction() == Direction::Outbound)
            .then(|| connection.remote_addr().clone());
        let mut stream = host
            .new_stream_on(&connection, [self.protocol.clone()])
            .await
            .map_err(|err| {
                trace!(%peer, %err, "kad: no kad stream");
                RequestFailure::Unreachable
            })?;
        drop(host);
        let body = wire::encode_request(&request.request, self.runtime.now());
        // One request per stream: the write side closes with the request, so the end of the
        // stream travels with it and the server meets it right after its answer, instead
        // of a close of ours waking the server again once the answer is read.
        let written = async {
            lp2p_core::framing::write_frame(&mut stream, &body).await?;
            stream.close().await?;
            Ok::<(), lp2p_core::Error>(())
        };
        if written.await.is_err() {
            lp2p_core::Stream::reset(&mut stream);
            return Err(RequestFailure::Failed);
        }
        if !request.request.expects_response() {
            return Ok((None, dialed));
        }
        let max = self.config.limits.max_message_size;
        let account =
            account.get_or_insert_with(|| self.budget.service_account(MEMORY_SERVICE, &peer));
        let read = self
            .read_reserved(&mut stream, &peer, max, &mut **account)
            .await
            .and_then(|answer| {
                answer.ok_or(lp2p_core::Error::UnexpectedEof {
                    what: "frame length",
                })
            });
        match read {
            Ok(answer) => Ok((Some(answer), dialed)),
            Err(err) => {
                if !matches!(err, lp2p_core::Error::OutOfMemory(_)) {
                    debug!(%peer, %err, "kad: reading the answer failed");
                }
                if matches!(err, lp2p_core::Error::FrameTooLarge { .. }) {
                    self.lock().oversized += 1;
                }
                lp2p_core::Stream::reset(&mut stream);
                Err(RequestFailure::Failed)
            }
        }
    }

    /// Serves one inbound stream: requests one after another until the remote closes it,
    /// goes quiet for `inbound_idle_timeout`, or sends something bad.
    async fn serve_inbound(self: Arc<Self>, mut stream: HostStream) {
        let peer = stream.peer();
        {
            let mut state = self.lock();
            let open = state.inbound.entry(peer).or_insert(0);
            if *open >= self.config.max_inbound_streams_per_peer {
                state.streams_refused = state.streams_refused.saturating_add(1);
                let n = state.streams_refused;
                drop(state);
                warn!(%peer, refused_total = n, "kad: too many inbound streams from the peer; stream reset");
                lp2p_core::Stream::reset(&mut stream);
                return;
            }
            *open += 1;
        }
        let _slot = InboundSlot(self.clone(), peer);
        // Each request is reserved here before it is read; dropped with this task.
        let mut account = self.budget.service_account(MEMORY_SERVICE, &peer);
        let max = self.config.limits.max_message_size;
        loop {
            let read = self
                .runtime
                .timeout(
                    self.config.inbound_idle_timeout,
                    self.read_reserved(&mut stream, &peer, max, &mut *account),
                )
                .await;
            let body = match read {
                Err(_) | Ok(Ok(None)) => {
                    let _ = stream.close().await;
                    return;
                }
                Ok(Err(lp2p_core::Error::OutOfMemory(_))) => {
                    // Counted and logged by `read_reserved`.
                    lp2p_core::Stream::reset(&mut stream);
                    return;
                }
                Ok(Err(err)) => {
                    if matches!(err, lp2p_core::Error::FrameTooLarge { .. }) {
                        self.lock().oversized += 1;
                    }
                    debug!(%peer, %err, "kad: bad inbound frame; stream reset");
                    lp2p_core::Stream::reset(&mut stream);
                    return;
                }
                Ok(Ok(Some(body))) => body,
            };
            let answer = {
                let mut state = self.lock();
                let now = self.runtime.now();
                let answer = state.core.handle_request_bytes(peer, &body, now);
                self.flush(&mut state);
                answer
            };
            let handled = body.len();
            drop(body);
            account.shrink(handled);
            match answer {
                Ok(Some(response)) => {
                    let sent = async {
                        lp2p_core::framing::write_frame(&mut stream, &response).await?;
                        stream.flush().await?;
                        Ok::<(), lp2p_core::Error>(())
                    };
                    if sent.await.is_err() {
                        lp2p_core::Stream::reset(&mut stream);
                        return;
                    }
                }
                Ok(None) => {}
                Err(err) => {
                    debug!(%peer, %err, "kad: inbound request refused; stream reset");
                    lp2p_core::Stream::reset(&mut stream);
                    return;
                }
            }
        }
    }
}

/// One inbound stream of a peer; released on drop.
struct InboundSlot(Arc<Inner>, PeerId);

impl Drop for InboundSlot {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        if let Some(n) = state.inbound.get_mut(&self.1) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                state.inbound.remove(&self.1);
            }
        }
    }
}

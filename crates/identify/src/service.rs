//! The async shell: identify on every connection, answer, push, and apply what arrives.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use futures::channel::mpsc;
use futures::future::Either;
use futures::stream::FuturesUnordered;
use futures::{AsyncRead, AsyncReadExt, AsyncWriteExt, StreamExt};
use lp2p_core::{
    Keypair, MemoryAccount, MemoryBudget, Multiaddr, PeerId, Protocol, ProtocolId, RuntimeHandle,
    addr,
};
use lp2p_host::{
    Connection, ConnectionEvent, ConnectionEvents, EventStream, HandlerOptions, Host, HostEvent,
    HostStream, WeakHost,
};
use lp2p_peerstore::CONNECTED_ADDR_TTL;
use lp2p_peerstore::record::PeerRecord;

use crate::events::{Bus, BusCloser, IdentifyEvent, IdentifyInfo};
use crate::interfaces;
use crate::message::{IdentifyDecoder, LocalInfo, ReceivedIdentify, encode_messages};
use crate::observed::{Observation, ObservedAddrs, Observer};
use crate::pushes::PushTracker;
use crate::verify::{
    DEFAULT_VERIFIED_RECORDS, VerifiedIdentify, VerifiedRecords, verify_remembering,
};
use crate::{IdentifyConfig, IdentifyError};

/// The identify protocol id: the receiver of the stream answers.
pub const ID_PROTOCOL: &str = "/ipfs/id/1.0.0";

/// The identify push protocol id: the opener of the stream sends.
pub const PUSH_PROTOCOL: &str = "/ipfs/id/push/1.0.0";

/// The service name identify reserves memory under in the host's resource manager
/// (`stats().service_memory["identify"]`): the bytes of an answer or a push are reserved,
/// per remote peer, as they are read, and returned when the exchange ends.
pub const MEMORY_SERVICE: &str = "identify";

/// Bytes read from a stream at a time.
const READ_CHUNK: usize = 4096;

/// The identify service of one host. Cheap to clone (a handle).
///
/// See the crate documentation for what it does.
#[derive(Clone)]
pub struct Identify {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Identify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identify")
            .field("local_peer", &self.shared.local_peer)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Counters of what identify did, for tests and monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdentifyStats {
    /// Identify answers and pushes applied.
    pub applied: u64,
    /// Exchanges that failed or were refused (I/O, timeout, malformed, oversized, wrong key,
    /// no memory).
    pub failed: u64,
    /// Of the `failed` exchanges, those ended because the host's resource manager refused
    /// memory for what the peer sent ([`IdentifyError::OutOfMemory`]).
    pub out_of_memory: u64,
    /// Signed peer records that were sent but not used (bad signature, other peer, stale,
    /// malformed); the plain addresses were used instead.
    pub records_rejected: u64,
    /// Pushes we sent.
    pub pushes_sent: u64,
    /// Pushes we received and applied.
    pub pushes_received: u64,
}

#[derive(Default)]
struct Counters {
    applied: AtomicU64,
    failed: AtomicU64,
    out_of_memory: AtomicU64,
    records_rejected: AtomicU64,
    pushes_sent: AtomicU64,
    pushes_received: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

struct Shared {
    host: WeakHost,
    local_peer: PeerId,
    keypair: Keypair,
    runtime: RuntimeHandle,
    config: IdentifyConfig,
    state: Mutex<State>,
    /// Inbound pushes in flight per peer (entries removed at zero).
    inbound_pushes: Mutex<HashMap<PeerId, usize>>,
    /// Push requests and the pushes that served them (what closing the host waits for).
    pushes: PushTracker,
    /// Per connected peer, a fingerprint ([`view_of`]) of what it last got from us in an
    /// answer or a push; entries go when the peer's last connection closes. Closing the host
    /// pushes to the peers whose view is stale.
    views: Mutex<HashMap<PeerId, u64>>,
    counters: Counters,
    /// Signed peer records already verified (see [`VerifiedRecords`]).
    verified_records: VerifiedRecords,
    /// The host's resource manager: each exchange's [`MEMORY_SERVICE`] account comes from it.
    budget: Arc<dyn MemoryBudget>,
    /// Where `Identified` events go (the host's identify bus, see [`crate::subscribe`]).
    events: Bus,
}

struct State {
    /// What connected peers told us; an entry goes when the peer's last connection closes.
    peers: HashMap<PeerId, PeerState>,
    observed: ObservedAddrs,
    /// Our signed record, re-signed with a higher seq when our addresses change.
    local_record: Option<LocalRecord>,
}

struct PeerState {
    info: Arc<IdentifyInfo>,
    /// The seq of the last signed record accepted from the peer.
    record_seq: Option<u64>,
}

struct LocalRecord {
    addrs: Vec<Multiaddr>,
    seq: u64,
    envelope: Vec<u8>,
}

/// Whether what arrived is an answer to our question or a push (absent fields: unchanged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Answer,
    Push,
}

impl Identify {
    /// Registers `/ipfs/id/1.0.0` and `/ipfs/id/push/1.0.0` on `host` and starts the service
    /// (tasks of the host, stopped by `host.close()`): every connection established from now
    /// on is identified (and those already open), and changes of our protocols or addresses
    /// are pushed.
    ///
    /// Create one per host: a second replaces the first's handlers but both services would
    /// run. The service registers its handle on the host, so `host.service::<Identify>()`
    /// finds it (e.g. the one `lp2p::HostBuilderExt::with_defaults` started); the peerstore
    /// and [`events`](Identify::events) carry what it learns.
    pub fn new(host: &Host, config: IdentifyConfig) -> Identify {
        let shared = Arc::new(Shared {
            events: crate::events::bus(host),
            host: host.downgrade(),
            local_peer: host.local_peer_id(),
            keypair: host.keypair().clone(),
            runtime: host.runtime().clone(),
            state: Mutex::new(State {
                peers: HashMap::new(),
                observed: ObservedAddrs::new(
                    config.observed_addr_threshold,
                    config.observe_loopback,
                    config.max_observed_candidates,
                    config.max_external_addrs,
                ),
                local_record: None,
            }),
            config,
            inbound_pushes: Mutex::new(HashMap::new()),
            pushes: PushTracker::default(),
            views: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            verified_records: VerifiedRecords::new(DEFAULT_VERIFIED_RECORDS),
            budget: Arc::new(host.resource_manager().clone()),
        });
        let answer = shared.clone();
        // Answered over limited (relayed) connections too: the answer is a few KiB, and the
        // peer that received a relayed connection learns from it the addresses for DCUtR's
        // unilateral upgrade (go-libp2p identifies relayed connections as well).
        host.set_stream_handler_with(
            ID_PROTOCOL,
            HandlerOptions::allow_limited(),
            move |stream: HostStream| {
                let shared = answer.clone();
                async move { shared.answer(stream).await }
            },
        );
        let push = shared.clone();
        host.set_stream_handler(PUSH_PROTOCOL, move |stream: HostStream| {
            let shared = push.clone();
            async move { shared.receive_push(stream).await }
        });
        // Subscribe after registering (our own registrations need no push). The connection
        // subscription starts with every live connection and misses none afterwards.
        let events = host.events();
        let connections = host.connection_events();
        // One pending push request is enough: requests made while one waits coalesce.
        let (push_tx, push_rx) = mpsc::channel(1);
        // Moved into the task (dropped with it even if it never ran): the identify event
        // streams end when the host closes and aborts the task.
        let close_events = BusCloser(shared.events.0.clone());
        host.spawn(
            shared
                .clone()
                .run(connections, events, push_tx, close_events),
        );
        if shared.config.push {
            host.spawn(shared.clone().pusher(push_rx));
            // A change not yet pushed when the host closes is pushed before the connections
            // close (within the host's close grace), without the debounce.
            let flushing = Arc::downgrade(&shared);
            host.on_close(move || async move {
                if let Some(shared) = flushing.upgrade() {
                    shared.push_before_close().await;
                }
            });
        }
        let identify = Identify { shared };
        host.insert_service(identify.clone());
        identify
    }

    /// The identify events from now on (see [`crate::subscribe`], which this is, for the
    /// host this service runs on): bounded per subscriber as the host's events are, and
    /// ending when the host closes.
    pub fn events(&self) -> EventStream<IdentifyEvent> {
        match self.shared.host.upgrade() {
            Some(host) => crate::subscribe(&host),
            None => crate::events::ended(),
        }
    }

    /// The latest of what `peer` told us (its answer, updated by its pushes), while it is
    /// connected.
    pub fn info(&self, peer: &PeerId) -> Option<Arc<IdentifyInfo>> {
        self.shared.state().peers.get(peer).map(|p| p.info.clone())
    }

    /// Where the peers we are connected to directly see us, from their latest answers, each
    /// translated to our listening port ([`translate_to_listen_port`]), without duplicates
    /// and without relayed addresses, most reported first. Unconfirmed: the candidates
    /// AutoNAT tests and DCUtR offers.
    ///
    /// [`translate_to_listen_port`]: crate::observed::translate_to_listen_port
    pub fn observed_addrs(&self) -> Vec<Multiaddr> {
        let Some(host) = self.shared.host.upgrade() else {
            return Vec::new();
        };
        let listen = host.listen_addrs();
        let mut counted: Vec<(Multiaddr, usize)> = Vec::new();
        for conn in host.all_connections() {
            if conn.is_limited() {
                continue;
            }
            let Some(info) = self.info(&conn.peer()) else {
                continue;
            };
            let Some(observed) = &info.observed_addr else {
                continue;
            };
            if observed.iter().any(|p| matches!(p, Protocol::P2pCircuit)) {
                continue;
            }
            let Some(addr) =
                crate::observed::translate_to_listen_port(observed, conn.local_addr(), &listen)
            else {
                continue;
            };
            match counted.iter_mut().find(|(a, _)| *a == addr) {
                Some((_, n)) => *n += 1,
                None => counted.push((addr, 1)),
            }
        }
        counted.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        counted.into_iter().map(|(a, _)| a).collect()
    }

    /// Identifies the peer on `connection` now (it happens by itself on every new
    /// connection; this is for asking again). The result is applied as an automatic one is.
    pub async fn identify(
        &self,
        connection: &Connection,
    ) -> Result<Arc<IdentifyInfo>, IdentifyError> {
        let host = self.shared.host.upgrade().ok_or(IdentifyError::Closed)?;
        self.shared.identify_connection(&host, connection).await
    }

    /// Pushes our current information to every connected peer that supports push, now (it
    /// happens by itself after our protocols or addresses change).
    pub async fn push(&self) {
        self.shared.push_all().await;
    }

    /// What we would tell a peer about ourselves now (without an observed address).
    pub fn local_info(&self) -> Option<LocalInfo> {
        let host = self.shared.host.upgrade()?;
        Some(self.shared.local_info(&host, None))
    }

    /// Counters of what identify did.
    pub fn stats(&self) -> IdentifyStats {
        let c = &self.shared.counters;
        IdentifyStats {
            applied: c.applied.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            out_of_memory: c.out_of_memory.load(Ordering::Relaxed),
            records_rejected: c.records_rejected.load(Ordering::Relaxed),
            pushes_sent: c.pushes_sent.load(Ordering::Relaxed),
            pushes_received: c.pushes_received.load(Ordering::Relaxed),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &IdentifyConfig {
        &self.shared.config
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The service task: identifies new connections (all exchanges inside this one task, so
    /// closing the host stops them), forgets closed ones, asks for pushes on changes. Holds
    /// `_close_events`, which ends the identify event streams when the task ends.
    async fn run(
        self: Arc<Self>,
        connections: ConnectionEvents,
        events: EventStream<HostEvent>,
        mut push: mpsc::Sender<()>,
        _close_events: BusCloser,
    ) {
        enum Input {
            Connection(ConnectionEvent),
            Host(HostEvent),
        }
        let mut inputs =
            futures::stream::select(connections.map(Input::Connection), events.map(Input::Host));
        let mut exchanges = FuturesUnordered::new();
        loop {
            let next_input = inputs.next();
            let next_done = async {
                if exchanges.is_empty() {
                    futures::future::pending::<()>().await;
                } else {
                    exchanges.next().await;
                }
            };
            futures::pin_mut!(next_done);
            let input = match futures::future::select(next_input, next_done).await {
                Either::Left((Some(input), _)) => input,
                Either::Left((None, _)) => return,
                Either::Right(((), _)) => continue,
            };
            match input {
                Input::Connection(ConnectionEvent::Established(connection)) => {
                    exchanges.push(self.clone().identify_later(connection));
                }
                Input::Connection(ConnectionEvent::Closed {
                    connection,
                    num_remaining,
                    ..
                }) => {
                    let mut state = self.state();
                    state.observed.remove_connection(connection.id().get());
                    if num_remaining == 0 {
                        state.peers.remove(&connection.peer());
                        drop(state);
                        self.views().remove(&connection.peer());
                    }
                }
                Input::Host(
                    HostEvent::LocalProtocolsChanged
                    | HostEvent::ListenAddrAdded(_)
                    | HostEvent::ListenAddrRemoved(_)
                    | HostEvent::ExternalAddrConfirmed(_),
                ) => {
                    if self.config.push {
                        self.pushes.request();
                    }
                    // Full: a push is already pending and will carry this change too.
                    let _ = push.try_send(());
                }
                Input::Host(_) => {}
            }
        }
    }

    /// Identifies `connection` (failures are logged and counted inside).
    async fn identify_later(self: Arc<Self>, connection: Connection) {
        let Some(host) = self.host.upgrade() else {
            return;
        };
        let _ = self.identify_connection(&host, &connection).await;
    }

    /// Waits for push requests, lets a burst settle, then pushes once.
    async fn pusher(self: Arc<Self>, mut requests: mpsc::Receiver<()>) {
        while requests.next().await.is_some() {
            if let Some(closing) = self.pushes.debounce() {
                let settle = self.runtime.sleep(self.config.push_debounce);
                futures::future::select(settle, closing).await;
            }
            while requests.try_recv().is_ok() {}
            let mark = self.pushes.starting();
            self.push_all().await;
            self.pushes.covered(mark);
        }
    }

    fn views(&self) -> MutexGuard<'_, HashMap<PeerId, u64>> {
        self.views.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes what `peer` now knows of us, while it is connected (an entry for a peer that
    /// left meanwhile is pruned, so the map never outgrows the connected peers for long).
    fn record_view(&self, peer: PeerId, view: u64) {
        let Some(host) = self.host.upgrade() else {
            return;
        };
        let mut views = self.views();
        if host.is_connected(&peer) {
            views.insert(peer, view);
        }
        if views.len() > host.connected_peers().len() {
            views.retain(|p, _| host.is_connected(p));
        }
    }

    /// The close hook: the push in flight or waiting out its debounce goes out now; then
    /// every peer whose view of us is stale (a change whose event the service had not
    /// handled yet) gets a push too.
    async fn push_before_close(&self) {
        if let Some(pushed) = self.pushes.flush() {
            let _ = pushed.await;
        }
        let Some(host) = self.host.upgrade() else {
            return;
        };
        let current = view_of(&self.local_info(&host, None));
        let stale: Vec<PeerId> = self
            .views()
            .iter()
            .filter(|(_, view)| **view != current)
            .map(|(peer, _)| *peer)
            .collect();
        if !stale.is_empty() {
            tracing::debug!(peers = stale.len(), "pushing identify before close");
            self.push_to(&host, stale).await;
        }
    }

    async fn push_all(&self) {
        let Some(host) = self.host.upgrade() else {
            return;
        };
        self.push_to(&host, host.connected_peers()).await;
    }

    /// Pushes our current information to those of `peers` that support push.
    async fn push_to(&self, host: &Host, peers: Vec<PeerId>) {
        let peers: Vec<PeerId> = peers
            .into_iter()
            .filter(|peer| {
                !host
                    .peerstore()
                    .supports_protocols(peer, &[PUSH_PROTOCOL])
                    .is_empty()
            })
            .collect();
        if peers.is_empty() {
            return;
        }
        let info = self.local_info(host, None);
        let view = view_of(&info);
        let mut wire = Vec::new();
        let report = encode_messages(&info, self.config.max_send_message_len, &mut wire);
        tracing::debug!(peers = peers.len(), ?report, "pushing identify");
        let wire = &wire;
        futures::stream::iter(peers)
            .for_each_concurrent(
                self.config.max_concurrent_pushes.max(1),
                |peer| async move {
                    let sent = self
                        .runtime
                        .timeout(self.config.timeout, async {
                            let mut stream = host.new_stream(&peer, [PUSH_PROTOCOL]).await.ok()?;
                            stream.write_all(wire).await.ok()?;
                            stream.close().await.ok()
                        })
                        .await;
                    if let Ok(Some(())) = sent {
                        bump(&self.counters.pushes_sent);
                        self.record_view(peer, view);
                    } else {
                        tracing::debug!(%peer, "identify push failed");
                    }
                },
            )
            .await;
    }

    /// Asks the peer on `connection` and applies its answer.
    async fn identify_connection(
        &self,
        host: &Host,
        connection: &Connection,
    ) -> Result<Arc<IdentifyInfo>, IdentifyError> {
        let peer = connection.peer();
        let exchange = async {
            let mut stream = host
                .new_stream_on(connection, [ID_PROTOCOL])
                .await
                .map_err(|source| IdentifyError::Stream {
                    peer: Box::new(peer),
                    source: Box::new(source),
                })?;
            let received = self.read_from(&mut stream, peer).await;
            if received.is_err() {
                lp2p_core::Stream::reset(&mut stream);
            }
            received
        };
        let result = match self.runtime.timeout(self.config.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(IdentifyError::Timeout(self.config.timeout)),
        }
        .and_then(|received| self.apply(host, peer, Some(connection), received, Kind::Answer));
        if let Err(err) = &result {
            self.count_failure(err);
            tracing::debug!(%peer, connection = %connection.id(), error = %err, "identify failed");
        }
        result
    }

    /// Reads what `peer` sends on `stream`, reserving it from a [`MEMORY_SERVICE`] account
    /// for the peer that is dropped (everything returned) when the read ends.
    async fn read_from<R: AsyncRead + Unpin>(
        &self,
        stream: &mut R,
        peer: PeerId,
    ) -> Result<ReceivedIdentify, IdentifyError> {
        let mut account = self.budget.service_account(MEMORY_SERVICE, &peer);
        read_messages(stream, &self.config, peer, &mut *account).await
    }

    fn count_failure(&self, err: &IdentifyError) {
        bump(&self.counters.failed);
        if matches!(err, IdentifyError::OutOfMemory { .. }) {
            bump(&self.counters.out_of_memory);
        }
    }

    /// Answers an identify request: our information, then close.
    async fn answer(self: Arc<Self>, mut stream: HostStream) {
        let Some(host) = self.host.upgrade() else {
            return;
        };
        let observed = addr::split_peer_id(stream.connection().remote_addr()).0;
        let info = self.local_info(&host, Some(observed));
        drop(host);
        let view = view_of(&info);
        let mut wire = Vec::new();
        let report = encode_messages(&info, self.config.max_send_message_len, &mut wire);
        if report
            != (crate::EncodeReport {
                messages: 1,
                ..Default::default()
            })
        {
            tracing::debug!(?report, "identify answer split or trimmed to fit");
        }
        let peer = stream.peer();
        let sent = self
            .runtime
            .timeout(self.config.timeout, async {
                stream.write_all(&wire).await?;
                stream.close().await
            })
            .await;
        if matches!(sent, Ok(Ok(()))) {
            self.record_view(peer, view);
        } else {
            tracing::debug!(%peer, "sending an identify answer failed");
        }
    }

    /// Reads a push and applies it.
    async fn receive_push(self: Arc<Self>, mut stream: HostStream) {
        let peer = stream.peer();
        let Some(_slot) = PushSlot::take(&self, peer) else {
            tracing::debug!(%peer, "too many identify pushes in flight; resetting");
            lp2p_core::Stream::reset(&mut stream);
            bump(&self.counters.failed);
            return;
        };
        let received = match self
            .runtime
            .timeout(self.config.timeout, self.read_from(&mut stream, peer))
            .await
        {
            Ok(result) => result,
            Err(_) => Err(IdentifyError::Timeout(self.config.timeout)),
        };
        let Some(host) = self.host.upgrade() else {
            return;
        };
        let result = received.and_then(|r| self.apply(&host, peer, None, r, Kind::Push));
        if let Err(err) = result {
            lp2p_core::Stream::reset(&mut stream);
            self.count_failure(&err);
            tracing::debug!(%peer, error = %err, "identify push refused");
        }
    }

    /// Checks what `peer` said and, only if it checks out, writes it to the peerstore,
    /// records it, learns from the observed address, and emits `Identified`.
    fn apply(
        &self,
        host: &Host,
        peer: PeerId,
        connection: Option<&Connection>,
        received: ReceivedIdentify,
        kind: Kind,
    ) -> Result<Arc<IdentifyInfo>, IdentifyError> {
        let store = host.peerstore();
        let (previous, accepted_seq) = {
            let state = self.state();
            let entry = state.peers.get(&peer);
            (
                entry.map(|p| p.info.clone()),
                entry.and_then(|p| p.record_seq),
            )
        };
        let verified = verify_remembering(
            received,
            &peer,
            store.public_key(&peer),
            accepted_seq,
            &self.verified_records,
        )?;
        if let Some(err) = &verified.record_error {
            bump(&self.counters.records_rejected);
            tracing::debug!(%peer, error = %err, "signed peer record not used");
        }
        Self::write_peerstore(host, &peer, &verified, kind);
        let info = Arc::new(merge(verified_info(&verified), previous.as_deref(), kind));
        let record_seq = verified
            .record
            .as_ref()
            .map(|(r, _)| r.seq)
            .or(accepted_seq);

        let mut confirmed = None;
        {
            let mut state = self.state();
            if host.is_connected(&peer) {
                state.peers.insert(
                    peer,
                    PeerState {
                        info: info.clone(),
                        record_seq,
                    },
                );
            }
            // A closed connection's observation would never be removed (its `Disconnected`
            // may already have been handled), so only live ones count.
            if let (Some(conn), Some(observed), Kind::Answer) =
                (connection, &verified.observed_addr, kind)
                && !conn.is_closed()
                && !conn.is_limited()
            {
                let observer = Observer::for_remote(peer, conn.remote_addr());
                let listen = host.listen_addrs();
                let outcome = state.observed.observe(
                    conn.id().get(),
                    observer,
                    conn.local_addr(),
                    observed,
                    &listen,
                );
                tracing::trace!(%peer, %observed, ?outcome, "observed address");
                if let Observation::Confirmed(addr) = outcome {
                    confirmed = Some(addr);
                }
            }
        }
        if let Some(addr) = confirmed {
            tracing::info!(%addr, "external address confirmed by observers");
            host.add_external_addr(addr);
        }
        bump(&self.counters.applied);
        if kind == Kind::Push {
            bump(&self.counters.pushes_received);
        }
        self.events.0.emit(&IdentifyEvent::Identified {
            peer,
            info: info.clone(),
        });
        Ok(info)
    }

    /// Stores what checked out. Each write is all or nothing; one refused by the peerstore's
    /// limits is logged and the others still happen.
    fn write_peerstore(host: &Host, peer: &PeerId, v: &VerifiedIdentify, kind: Kind) {
        let store = host.peerstore();
        let mut refused = Vec::new();
        if v.key_sent
            && let Err(e) = store.add_public_key(peer, v.public_key.clone())
        {
            refused.push(("key", e));
        }
        // The peerstore refuses a list over its limits whole; keep what fits instead (a
        // peer with too many protocols or addresses still gets the first ones stored).
        let limits = store.config();
        let mut protocols: Vec<ProtocolId> = Vec::new();
        for p in &v.protocols {
            if protocols.len() >= limits.max_protocols_per_peer() {
                break;
            }
            if p.as_str().len() <= limits.max_protocol_len() && !protocols.contains(p) {
                protocols.push(p.clone());
            }
        }
        let addrs: Vec<Multiaddr> = v
            .listen_addrs
            .iter()
            .filter(|a| a.len() <= limits.max_addr_len())
            .take(limits.max_addrs_per_peer())
            .cloned()
            .collect();
        if protocols.len() < v.protocols.len() || addrs.len() < v.listen_addrs.len() {
            tracing::debug!(
                %peer,
                protocols = v.protocols.len(),
                kept_protocols = protocols.len(),
                addrs = v.listen_addrs.len(),
                kept_addrs = addrs.len(),
                "identify data trimmed to the peerstore's limits"
            );
        }
        if (kind == Kind::Answer || !protocols.is_empty())
            && let Err(e) = store.set_protocols(peer, protocols)
        {
            refused.push(("protocols", e));
        }
        if let Some(agent) = &v.agent_version
            && let Err(e) = store.set_agent_version(peer, agent.clone())
        {
            refused.push(("agent version", e));
        }
        if let Some(version) = &v.protocol_version
            && let Err(e) = store.set_protocol_version(peer, version.clone())
        {
            refused.push(("protocol version", e));
        }
        if !addrs.is_empty()
            && let Err(e) = store.add_addrs(peer, addrs, CONNECTED_ADDR_TTL)
        {
            refused.push(("addresses", e));
        }
        for (what, error) in refused {
            tracing::debug!(%peer, what, %error, "peerstore refused identify data");
        }
    }

    /// What we tell peers: our addresses (listen and confirmed external ones; a listener on
    /// an unspecified IP as one address per interface IP, never the unspecified IP itself),
    /// protocols, key, and our signed record.
    fn local_info(&self, host: &Host, observed_addr: Option<Multiaddr>) -> LocalInfo {
        let mut addrs: Vec<Multiaddr> = Vec::new();
        let mut listen = host.listen_addrs();
        if listen.iter().any(is_unspecified) {
            listen = interfaces::expand_unspecified(&listen, &interfaces::interface_ips());
        }
        for a in listen.into_iter().chain(host.external_addrs()) {
            let a = addr::split_peer_id(&a).0;
            if a.is_empty() || is_unspecified(&a) || addrs.contains(&a) {
                continue;
            }
            if addrs.len() >= self.config.max_advertised_addrs {
                break;
            }
            addrs.push(a);
        }
        let signed_peer_record = if self.config.signed_peer_record {
            self.local_record(&addrs)
        } else {
            None
        };
        LocalInfo {
            protocol_version: self.config.protocol_version.clone(),
            agent_version: self.config.agent_version.clone(),
            public_key: self.keypair.public(),
            listen_addrs: addrs,
            protocols: host.protocols(),
            observed_addr,
            signed_peer_record,
        }
    }

    /// Our signed record for `addrs`: the cached one, or a new one with a higher seq.
    fn local_record(&self, addrs: &[Multiaddr]) -> Option<Vec<u8>> {
        let mut state = self.state();
        if let Some(record) = &state.local_record
            && record.addrs == addrs
        {
            return Some(record.envelope.clone());
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let seq = match &state.local_record {
            Some(previous) => now.max(previous.seq.saturating_add(1)),
            None => now,
        };
        let record = PeerRecord {
            peer_id: self.local_peer,
            seq,
            addresses: addrs.to_vec(),
        };
        match record.seal_as(&self.keypair, self.config.record_format) {
            Ok(envelope) => {
                let envelope = envelope.encode();
                state.local_record = Some(LocalRecord {
                    addrs: addrs.to_vec(),
                    seq,
                    envelope: envelope.clone(),
                });
                Some(envelope)
            }
            Err(err) => {
                tracing::warn!(error = %err, "signing our peer record failed; sending none");
                None
            }
        }
    }
}

/// One of a peer's inbound push slots, released on drop.
struct PushSlot {
    shared: Arc<Shared>,
    peer: PeerId,
}

impl PushSlot {
    fn take(shared: &Arc<Shared>, peer: PeerId) -> Option<PushSlot> {
        let mut pushes = shared
            .inbound_pushes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let open = pushes.entry(peer).or_insert(0);
        if *open >= shared.config.max_inbound_pushes_per_peer {
            return None;
        }
        *open = open.saturating_add(1);
        Some(PushSlot {
            shared: shared.clone(),
            peer,
        })
    }
}

impl Drop for PushSlot {
    fn drop(&mut self) {
        let mut pushes = self
            .shared
            .inbound_pushes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(open) = pushes.get_mut(&self.peer) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                pushes.remove(&self.peer);
            }
        }
    }
}

/// A fingerprint of what a peer learns from us (protocols and addresses; the observed address
/// and the record's signature aside): equal fingerprints, nothing to push.
fn view_of(info: &LocalInfo) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    info.protocols.hash(&mut hasher);
    info.listen_addrs.hash(&mut hasher);
    hasher.finish()
}

fn is_unspecified(a: &Multiaddr) -> bool {
    match a.iter().next() {
        Some(Protocol::Ip4(ip)) => ip.is_unspecified(),
        Some(Protocol::Ip6(ip)) => ip.is_unspecified(),
        _ => false,
    }
}

/// Reads identify messages from `peer` until the remote closes its side. Each chunk read is
/// reserved from `account` before the decoder takes it (the decoder holds what it was given
/// until it finishes, so the reservation is every byte read); a refusal ends the read with
/// [`IdentifyError::OutOfMemory`]. The caller returns the reservation (drops the account).
async fn read_messages<R: AsyncRead + Unpin>(
    stream: &mut R,
    config: &IdentifyConfig,
    peer: PeerId,
    account: &mut dyn MemoryAccount,
) -> Result<ReceivedIdentify, IdentifyError> {
    let mut decoder = IdentifyDecoder::new(config.max_message_len, config.max_messages);
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        let n = stream.read(&mut chunk).await?;
        let Some(bytes) = chunk.get(..n).filter(|b| !b.is_empty()) else {
            return decoder.finish();
        };
        account
            .try_grow(bytes.len())
            .map_err(|denied| IdentifyError::OutOfMemory {
                peer: Box::new(peer),
                denied,
            })?;
        decoder.handle_input(bytes)?;
    }
}

fn verified_info(v: &VerifiedIdentify) -> IdentifyInfo {
    IdentifyInfo {
        public_key: v.public_key.clone(),
        protocol_version: v.protocol_version.clone().unwrap_or_default(),
        agent_version: v.agent_version.clone().unwrap_or_default(),
        listen_addrs: v.listen_addrs.clone(),
        protocols: v.protocols.clone(),
        observed_addr: v.observed_addr.clone(),
        signed_record: v.record.is_some(),
    }
}

/// A push leaves what it does not carry as it was.
fn merge(new: IdentifyInfo, previous: Option<&IdentifyInfo>, kind: Kind) -> IdentifyInfo {
    let (Kind::Push, Some(prev)) = (kind, previous) else {
        return new;
    };
    let keep_addrs = new.listen_addrs.is_empty();
    IdentifyInfo {
        public_key: new.public_key,
        protocol_version: if new.protocol_version.is_empty() {
            prev.protocol_version.clone()
        } else {
            new.protocol_version
        },
        agent_version: if new.agent_version.is_empty() {
            prev.agent_version.clone()
        } else {
            new.agent_version
        },
        listen_addrs: if keep_addrs {
            prev.listen_addrs.clone()
        } else {
            new.listen_addrs
        },
        protocols: if new.protocols.is_empty() {
            prev.protocols.clone()
        } else {
            new.protocols
        },
        observed_addr: new.observed_addr.or_else(|| prev.observed_addr.clone()),
        signed_record: if keep_addrs {
            prev.signed_record
        } else {
            new.signed_record
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lp2p_core::PublicKey;

    fn info(key: &PublicKey, agent: &str, addrs: &[&str], protocols: &[&str]) -> IdentifyInfo {
        IdentifyInfo {
            public_key: key.clone(),
            protocol_version: "ipfs/0.1.0".into(),
            agent_version: agent.into(),
            listen_addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
            protocols: protocols.iter().map(|p| p.to_string().into()).collect(),
            observed_addr: None,
            signed_record: true,
        }
    }

    #[test]
    fn a_push_keeps_what_it_does_not_carry() {
        let key = Keypair::generate_ed25519().public();
        let prev = info(&key, "a/1", &["/ip4/10.0.0.1/tcp/1"], &["/x"]);
        let mut push = info(&key, "", &[], &["/x", "/y"]);
        push.protocol_version = String::new();
        push.signed_record = false;
        let merged = merge(push.clone(), Some(&prev), Kind::Push);
        assert_eq!(merged.agent_version, "a/1");
        assert_eq!(merged.protocol_version, "ipfs/0.1.0");
        assert_eq!(merged.listen_addrs, prev.listen_addrs);
        assert!(merged.signed_record);
        assert_eq!(merged.protocols.len(), 2);
        // An answer replaces everything.
        assert_eq!(merge(push.clone(), Some(&prev), Kind::Answer), push);
    }

    #[test]
    fn unspecified_addresses_are_recognised() {
        assert!(is_unspecified(&"/ip4/0.0.0.0/tcp/1".parse().unwrap()));
        assert!(is_unspecified(&"/ip6/::/tcp/1".parse().unwrap()));
        assert!(!is_unspecified(&"/ip4/127.0.0.1/tcp/1".parse().unwrap()));
        assert!(!is_unspecified(&"/memory/5".parse().unwrap()));
    }
}

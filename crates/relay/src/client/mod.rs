//! The client side: a [`RelayTransport`] that dials and listens on `/p2p-circuit` addresses,
//! and the [`RelayClient`] that attaches it to a host (the stop protocol handler, reservation
//! keeping and events).
//!
//! Dialing `<relay>/p2p-circuit/p2p/<target>` connects to the relay (or reuses the
//! connection), asks it for a circuit on the hop protocol, and runs the usual upgrade
//! (security, muxer) over the circuit with the target. Listening on `<relay>/p2p-circuit`
//! reserves a slot on the relay, keeps it renewed (and re-made after the connection to the
//! relay drops), and yields an inbound connection per circuit the relay announces on the stop
//! protocol. Every connection of this transport is `limited`.

mod addr;
mod circuit;
mod follow;
pub mod schedule;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::channel::mpsc;
use futures::future::{AbortHandle, Abortable, Either, select};
use lp2p_core::{
    DialOpts, Error, Established, Incoming, Listener, Multiaddr, PeerId, Protocol, Role, Stream,
    Transport, TransportContext,
};
use lp2p_host::{Host, HostStream, WeakHost};
use lp2p_swarm::{ConnectionEvent, EventBus, EventStream, UpgradeStack};

pub use addr::CircuitAddr;
pub use circuit::Circuit;

use crate::RelayError;
use crate::io::{DEFAULT_STREAM_TIMEOUT, read_message, unix_now, write_message};
use crate::message::{HopMessage, Limit, PROTOCOL_HOP, PROTOCOL_STOP, Status, StopMessage};
use crate::voucher::Voucher;

/// Inbound circuits waiting for the swarm to accept them, per relay. Why 16: the relay's own
/// default caps circuits at 16; beyond that the swarm is not keeping up and new circuits are
/// refused with RESOURCE_LIMIT_EXCEEDED.
pub const DEFAULT_MAX_PENDING_CIRCUITS: usize = 16;
/// Client events buffered per subscriber. Why 64: reservation events are rare (one per
/// renewal); a subscriber that falls further behind loses the oldest.
pub const DEFAULT_EVENT_BUFFER: usize = 64;

/// Client settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// How long one hop or stop exchange may take (see [`DEFAULT_STREAM_TIMEOUT`]).
    pub stream_timeout: Duration,
    /// See [`DEFAULT_MAX_PENDING_CIRCUITS`].
    pub max_pending_circuits: usize,
    /// Require a valid voucher in every reservation (the spec makes it optional for relays;
    /// go and rust relays always send one).
    pub require_voucher: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            stream_timeout: DEFAULT_STREAM_TIMEOUT,
            max_pending_circuits: DEFAULT_MAX_PENDING_CIRCUITS,
            require_voucher: false,
        }
    }
}

/// A reservation we hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationInfo {
    /// The relay.
    pub relay: PeerId,
    /// When it expires, in Unix seconds.
    pub expire: u64,
    /// Our addresses through the relay (`<relay addr>/p2p-circuit`).
    pub addrs: Vec<Multiaddr>,
    /// The limits of circuits to us.
    pub limit: Option<Limit>,
}

/// What the relay client reports.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RelayClientEvent {
    /// A relay granted (or renewed) a reservation.
    ReservationAccepted {
        /// The reservation.
        reservation: ReservationInfo,
        /// Whether it renewed one held on the same connection.
        renewal: bool,
    },
    /// Making or renewing a reservation failed; it is retried with backoff.
    ReservationFailed {
        /// The relay.
        relay: PeerId,
        /// Why, in words.
        error: String,
    },
    /// We gave up our reservation on `relay` because the node is publicly reachable
    /// ([`RelayClient::reserve_while_unreachable`]).
    ReservationReleased {
        /// The relay.
        relay: PeerId,
    },
    /// A relay announced a circuit from `src` and we accepted it.
    InboundCircuit {
        /// The relay.
        relay: PeerId,
        /// The peer at the other end.
        src: PeerId,
    },
}

/// Counters of the client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Reservations granted (renewals included).
    pub reservations: u64,
    /// Reservation attempts that failed.
    pub reservation_failures: u64,
    /// Inbound circuits accepted.
    pub inbound_circuits: u64,
    /// Inbound circuits refused (no listener for that relay, queue full, malformed).
    pub inbound_refused: u64,
    /// Outbound circuits opened.
    pub outbound_circuits: u64,
}

#[derive(Default)]
struct Counters {
    reservations: AtomicU64,
    reservation_failures: AtomicU64,
    inbound_circuits: AtomicU64,
    inbound_refused: AtomicU64,
    outbound_circuits: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

struct ListenerSlot {
    id: u64,
    tx: mpsc::Sender<Incoming>,
    ctx: TransportContext,
    relay_addr: Multiaddr,
    /// Poked when the connection to the relay drops, to reserve again at once.
    reconnect: mpsc::Sender<()>,
    reservation: Arc<Mutex<Option<ReservationInfo>>>,
}

struct ClientShared {
    host: Mutex<Option<WeakHost>>,
    stack: Arc<UpgradeStack>,
    config: ClientConfig,
    listeners: Mutex<HashMap<PeerId, ListenerSlot>>,
    next_listener: AtomicU64,
    events: EventBus<RelayClientEvent>,
    counters: Counters,
}

impl ClientShared {
    fn host(&self) -> Result<Host, RelayError> {
        self.host
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .and_then(WeakHost::upgrade)
            .filter(|h| !h.is_closed())
            .ok_or(RelayError::NotAttached)
    }

    fn listeners(&self) -> MutexGuard<'_, HashMap<PeerId, ListenerSlot>> {
        self.listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The relay client: attach it to the host whose builder got the matching
/// [`RelayTransport`] (see [`new`]).
#[derive(Clone)]
pub struct RelayClient {
    shared: Arc<ClientShared>,
}

impl std::fmt::Debug for RelayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayClient")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// The transport half: `HostBuilder::transport(relay_transport)`.
#[derive(Clone)]
pub struct RelayTransport {
    shared: Arc<ClientShared>,
}

impl std::fmt::Debug for RelayTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayTransport").finish_non_exhaustive()
    }
}

/// A relay client transport and its client. `stack` is the security channels and muxers
/// run over circuits (usually the same as the host's).
///
/// ```
/// use lp2p_host::Host;
/// use lp2p_memory::MemoryTransport;
/// use lp2p_noise::Noise;
/// use lp2p_swarm::UpgradeStack;
/// use lp2p_yamux::Yamux;
///
/// # lp2p_core::runtime::block_on(async {
/// let stack = UpgradeStack::new().security(Noise::new()).muxer(Yamux::default());
/// let (transport, client) = lp2p_relay::client::new(stack, Default::default());
/// let host = Host::builder()
///     .transport(MemoryTransport::default())
///     .transport(transport)
///     .security(Noise::new())
///     .muxer(Yamux::default())
///     .on_start(client.hook())
///     .build()
///     .await?;
/// host.close().await;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub fn new(stack: UpgradeStack, config: ClientConfig) -> (RelayTransport, RelayClient) {
    let shared = Arc::new(ClientShared {
        host: Mutex::new(None),
        stack: Arc::new(stack),
        config,
        listeners: Mutex::new(HashMap::new()),
        next_listener: AtomicU64::new(0),
        events: EventBus::new(DEFAULT_EVENT_BUFFER),
        counters: Counters::default(),
    });
    (
        RelayTransport {
            shared: shared.clone(),
        },
        RelayClient { shared },
    )
}

impl RelayClient {
    /// Attaches the client to `host`: serves the stop protocol and watches the connections
    /// to relays we hold reservations on. The client registers itself on the host:
    /// `host.service::<RelayClient>()` finds it.
    pub fn attach(&self, host: &Host) {
        host.insert_service(self.clone());
        *self
            .shared
            .host
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(host.downgrade());
        let weak = Arc::downgrade(&self.shared);
        // Not over limited connections: circuits are not chained.
        host.set_stream_handler(PROTOCOL_STOP, move |stream: HostStream| {
            let shared = weak.upgrade();
            async move {
                if let Some(shared) = shared {
                    handle_stop(shared, stream).await;
                }
            }
        });
        let mut events = host.connection_events();
        let weak = Arc::downgrade(&self.shared);
        let host_weak = host.downgrade();
        host.spawn(async move {
            while let Some(event) = events.next().await {
                let Some(shared) = weak.upgrade() else { return };
                let ConnectionEvent::Closed { connection, .. } = event else {
                    continue;
                };
                let relay = connection.peer();
                let still_direct = host_weak
                    .upgrade()
                    .is_some_and(|h| h.connections(&relay).iter().any(|c| !c.is_limited()));
                if still_direct {
                    continue;
                }
                if let Some(slot) = shared.listeners().get_mut(&relay) {
                    tracing::debug!(%relay, "connection to the relay closed; reserving again");
                    let _ = slot.reconnect.try_send(());
                }
            }
        });
    }

    /// A start hook for `HostBuilder::on_start` that attaches this client.
    pub fn hook(&self) -> impl FnOnce(&Host) + Send + 'static {
        let client = self.clone();
        move |host: &Host| client.attach(host)
    }

    /// Reservation and circuit events from now on.
    pub fn events(&self) -> EventStream<RelayClientEvent> {
        self.shared.events.subscribe()
    }

    /// The reservations we hold now.
    pub fn reservations(&self) -> Vec<ReservationInfo> {
        self.shared
            .listeners()
            .values()
            .filter_map(|slot| {
                slot.reservation
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
            })
            .collect()
    }

    /// Counters.
    pub fn stats(&self) -> ClientStats {
        let c = &self.shared.counters;
        ClientStats {
            reservations: c.reservations.load(Ordering::Relaxed),
            reservation_failures: c.reservation_failures.load(Ordering::Relaxed),
            inbound_circuits: c.inbound_circuits.load(Ordering::Relaxed),
            inbound_refused: c.inbound_refused.load(Ordering::Relaxed),
            outbound_circuits: c.outbound_circuits.load(Ordering::Relaxed),
        }
    }

    /// Asks the relay at `relay_addr` (ending in `/p2p/<relay>`) for a reservation once,
    /// without listening. Mostly for tests and tools; [`RelayTransport`]'s listener keeps
    /// its reservation itself.
    pub async fn reserve(&self, relay_addr: &Multiaddr) -> Result<ReservationInfo, RelayError> {
        let Some(Protocol::P2p(relay)) = relay_addr.iter().last() else {
            return Err(RelayError::InvalidAddress {
                addr: relay_addr.clone(),
                why: "the relay address must end in /p2p/<relay>",
            });
        };
        reserve_once(&self.shared, relay, relay_addr).await
    }
}

/// Holds the connection to `relay` open while we keep a reservation on it: the swarm closes
/// idle connections, and the relay ends the reservation with the connection. Sets
/// `ours` when this call protected the peer (a peer protected by someone else is left
/// alone, and not unprotected by us later).
fn hold_relay_connection(shared: &ClientShared, relay: PeerId, ours: &AtomicBool) {
    if let Ok(host) = shared.host()
        && !host.swarm().is_protected(&relay)
    {
        host.swarm().protect_peer(relay);
        ours.store(true, Ordering::Relaxed);
    }
}

/// Connects to `relay` and opens a hop stream on a direct connection.
async fn hop_stream(
    shared: &ClientShared,
    relay: PeerId,
    relay_addr: &Multiaddr,
) -> Result<HostStream, RelayError> {
    let host = shared.host()?;
    let transport_part = lp2p_core::addr::split_peer_id(relay_addr).0;
    let addrs = if transport_part.is_empty() {
        Vec::new()
    } else {
        vec![transport_part]
    };
    let mut conn = host
        .connect(relay, addrs)
        .await
        .map_err(|e| RelayError::host(relay, e))?;
    if conn.is_limited() {
        if let Some(direct) = host
            .connections(&relay)
            .into_iter()
            .find(|c| !c.is_limited())
        {
            conn = direct;
        } else {
            return Err(RelayError::RelayedRelay { relay });
        }
    }
    host.new_stream_on(&conn, [PROTOCOL_HOP])
        .await
        .map_err(|e| RelayError::host(relay, e))
}

async fn read_hop(
    shared: &ClientShared,
    host: &Host,
    stream: &mut HostStream,
) -> Result<HopMessage, RelayError> {
    let peer = stream.peer();
    let body = read_message(host.runtime(), stream, shared.config.stream_timeout).await?;
    HopMessage::decode(&body).map_err(|source| RelayError::Malformed { peer, source })
}

/// One reservation exchange.
async fn reserve_once(
    shared: &ClientShared,
    relay: PeerId,
    relay_addr: &Multiaddr,
) -> Result<ReservationInfo, RelayError> {
    let host = shared.host()?;
    let mut stream = hop_stream(shared, relay, relay_addr).await?;
    write_message(&mut stream, &HopMessage::Reserve.encode(), relay).await?;
    let answer = read_hop(shared, &host, &mut stream).await?;
    let HopMessage::Status {
        status,
        reservation,
        limit,
    } = answer
    else {
        return Err(RelayError::Unexpected {
            peer: relay,
            what: "a request in answer to RESERVE",
        });
    };
    if status != Status::Ok {
        return Err(RelayError::Refused {
            peer: relay,
            status,
        });
    }
    let reservation = reservation.ok_or(RelayError::Unexpected {
        peer: relay,
        what: "OK without a reservation",
    })?;
    if reservation.expire <= unix_now() {
        return Err(RelayError::Expired {
            relay,
            expire: reservation.expire,
        });
    }
    let me = host.local_peer_id();
    match &reservation.voucher {
        Some(voucher) => {
            Voucher::verify(voucher, &relay, &me, reservation.expire).map_err(|source| {
                RelayError::Voucher {
                    relay,
                    source: Box::new(source),
                }
            })?;
        }
        None if shared.config.require_voucher => {
            return Err(RelayError::Unexpected {
                peer: relay,
                what: "a reservation without a voucher",
            });
        }
        None => {}
    }
    // Our addresses through the relay: the ones it lists that really are its (ending in its
    // peer id), else the address we reached it at.
    let mut addrs: Vec<Multiaddr> = reservation
        .addrs
        .iter()
        .filter(|a| lp2p_core::addr::peer_id(a) == Some(relay))
        .map(CircuitAddr::listen_addr)
        .collect();
    if addrs.is_empty() {
        addrs.push(CircuitAddr::listen_addr(relay_addr));
    }
    bump(&shared.counters.reservations);
    Ok(ReservationInfo {
        relay,
        expire: reservation.expire,
        addrs,
        limit,
    })
}

async fn handle_stop(shared: Arc<ClientShared>, mut stream: HostStream) {
    let relay = stream.peer();
    let Ok(host) = shared.host() else { return };
    let body = match read_message(host.runtime(), &mut stream, shared.config.stream_timeout).await {
        Ok(body) => body,
        Err(err) => {
            bump(&shared.counters.inbound_refused);
            tracing::debug!(%relay, %err, "stop request unreadable");
            stream.reset();
            return;
        }
    };
    let (src, _limit) = match StopMessage::decode(&body) {
        Ok(StopMessage::Connect { peer, limit }) => (peer, limit),
        Ok(StopMessage::Status { .. }) => {
            refuse_stop(&shared, &mut stream, Status::UnexpectedMessage).await;
            return;
        }
        Err(err) => {
            tracing::debug!(%relay, %err, "malformed stop request");
            refuse_stop(&shared, &mut stream, Status::MalformedMessage).await;
            return;
        }
    };
    let slot = shared
        .listeners()
        .get(&relay)
        .map(|s| (s.tx.clone(), s.ctx.clone(), s.relay_addr.clone()));
    let Some((mut tx, ctx, relay_addr)) = slot else {
        tracing::debug!(%relay, %src, "circuit through a relay we do not listen on");
        refuse_stop(&shared, &mut stream, Status::NoReservation).await;
        return;
    };
    if tx
        .poll_ready(&mut futures::task::Context::from_waker(
            futures::task::noop_waker_ref(),
        ))
        .is_pending()
    {
        tracing::debug!(%relay, %src, "too many inbound circuits waiting");
        refuse_stop(&shared, &mut stream, Status::ResourceLimitExceeded).await;
        return;
    }
    let ok = StopMessage::Status { status: Status::Ok };
    if let Err(err) = write_message(&mut stream, &ok.encode(), relay).await {
        tracing::debug!(%relay, %src, %err, "could not accept the circuit");
        return;
    }
    let local_addr = CircuitAddr::listen_addr(&relay_addr);
    let remote_addr = local_addr.clone();
    let circuit = Circuit::new(stream, local_addr.clone(), remote_addr.clone());
    let stack = shared.stack.clone();
    let upgrade = async move {
        let mut established = stack
            .upgrade(Box::new(circuit), &ctx, Role::Responder, None)
            .await?;
        if established.peer != src {
            return Err(Error::peer_id_mismatch(src, established.peer));
        }
        established.limited = true;
        Ok(established)
    };
    let incoming = Incoming {
        local_addr,
        remote_addr,
        upgrade: Box::pin(upgrade),
    };
    if tx.try_send(incoming).is_err() {
        bump(&shared.counters.inbound_refused);
        return;
    }
    bump(&shared.counters.inbound_circuits);
    shared
        .events
        .emit(&RelayClientEvent::InboundCircuit { relay, src });
}

async fn refuse_stop(shared: &ClientShared, stream: &mut HostStream, status: Status) {
    bump(&shared.counters.inbound_refused);
    let peer = stream.peer();
    let _ = write_message(stream, &StopMessage::Status { status }.encode(), peer).await;
}

fn to_dial_error(addr: &Multiaddr, err: RelayError) -> Error {
    Error::Dial {
        addr: addr.clone(),
        source: std::io::Error::other(err),
    }
}

#[async_trait]
impl Transport for RelayTransport {
    fn name(&self) -> &'static str {
        "relay"
    }

    /// A circuit is a stream on the relay connection, which holds the descriptor.
    fn uses_fd_per_connection(&self) -> bool {
        false
    }

    fn can_dial(&self, addr: &Multiaddr) -> bool {
        CircuitAddr::parse(addr).is_some()
    }

    fn can_listen(&self, addr: &Multiaddr) -> bool {
        CircuitAddr::parse(addr).is_some_and(|c| c.dst.is_none())
    }

    async fn dial(
        &self,
        ctx: &TransportContext,
        addr: &Multiaddr,
        opts: DialOpts,
    ) -> Result<Established, Error> {
        let circuit =
            CircuitAddr::parse(addr).ok_or_else(|| Error::UnsupportedAddress(addr.clone()))?;
        let Some(dst) = circuit.dst.or(opts.expected_peer) else {
            return Err(to_dial_error(
                addr,
                RelayError::InvalidAddress {
                    addr: addr.clone(),
                    why: "no target peer: end it in /p2p/<target>",
                },
            ));
        };
        let shared = &self.shared;
        let relay = circuit.relay;
        let host = shared.host().map_err(|e| to_dial_error(addr, e))?;
        let mut stream = hop_stream(shared, relay, &circuit.relay_addr)
            .await
            .map_err(|e| to_dial_error(addr, e))?;
        write_message(
            &mut stream,
            &HopMessage::Connect { peer: dst }.encode(),
            relay,
        )
        .await
        .map_err(|e| to_dial_error(addr, e))?;
        match read_hop(shared, &host, &mut stream).await {
            Ok(HopMessage::Status {
                status: Status::Ok, ..
            }) => {}
            Ok(HopMessage::Status { status, .. }) => {
                return Err(to_dial_error(
                    addr,
                    RelayError::Refused {
                        peer: relay,
                        status,
                    },
                ));
            }
            Ok(_) => {
                return Err(to_dial_error(
                    addr,
                    RelayError::Unexpected {
                        peer: relay,
                        what: "a request in answer to CONNECT",
                    },
                ));
            }
            Err(e) => return Err(to_dial_error(addr, e)),
        }
        let local_addr = CircuitAddr::listen_addr(&circuit.relay_addr);
        let remote_addr = local_addr.clone();
        let raw = Circuit::new(stream, local_addr, remote_addr);
        let mut established = shared
            .stack
            .upgrade(Box::new(raw), ctx, opts.role, Some(dst))
            .await?;
        established.limited = true;
        bump(&shared.counters.outbound_circuits);
        tracing::debug!(%relay, peer = %dst, "relayed connection established");
        Ok(established)
    }

    async fn listen(
        &self,
        ctx: &TransportContext,
        addr: &Multiaddr,
    ) -> Result<Box<dyn Listener>, Error> {
        let listen_err = |why: RelayError| Error::Listen {
            addr: addr.clone(),
            source: std::io::Error::other(why),
        };
        let circuit = CircuitAddr::parse(addr)
            .filter(|c| c.dst.is_none())
            .ok_or_else(|| Error::UnsupportedAddress(addr.clone()))?;
        let shared = self.shared.clone();
        let relay = circuit.relay;
        let id = shared.next_listener.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(shared.config.max_pending_circuits.max(1));
        let (reconnect_tx, reconnect_rx) = mpsc::channel(1);
        let reservation = Arc::new(Mutex::new(None));
        {
            let mut listeners = shared.listeners();
            if listeners.contains_key(&relay) {
                return Err(listen_err(RelayError::InvalidAddress {
                    addr: addr.clone(),
                    why: "already listening through this relay",
                }));
            }
            listeners.insert(
                relay,
                ListenerSlot {
                    id,
                    tx,
                    ctx: ctx.clone(),
                    relay_addr: circuit.relay_addr.clone(),
                    reconnect: reconnect_tx,
                    reservation: reservation.clone(),
                },
            );
        }
        let protected = Arc::new(AtomicBool::new(false));
        let mut guard = SlotGuard {
            shared: shared.clone(),
            relay,
            id,
            keeper: None,
            protected: protected.clone(),
        };
        let first = match reserve_once(&shared, relay, &circuit.relay_addr).await {
            Ok(first) => first,
            Err(err) => {
                bump(&shared.counters.reservation_failures);
                return Err(listen_err(err));
            }
        };
        hold_relay_connection(&shared, relay, &protected);
        let addrs = first.addrs.clone();
        *reservation.lock().unwrap_or_else(PoisonError::into_inner) = Some(first.clone());
        shared.events.emit(&RelayClientEvent::ReservationAccepted {
            reservation: first.clone(),
            renewal: false,
        });
        let (abort, registration) = AbortHandle::new_pair();
        let keeper = keep_reservation(
            Keeper {
                shared: shared.clone(),
                relay,
                relay_addr: circuit.relay_addr.clone(),
                reconnect: reconnect_rx,
                current: reservation,
                protected,
                runtime: ctx.runtime.clone(),
            },
            first.expire,
        );
        ctx.runtime.spawn_detached(async move {
            let _ = Abortable::new(keeper, registration).await;
        });
        guard.keeper = Some(abort);
        Ok(Box::new(CircuitListener {
            rx,
            addrs,
            _guard: guard,
        }))
    }
}

/// Removes the listener's slot and stops its reservation keeper when the listener goes.
struct SlotGuard {
    shared: Arc<ClientShared>,
    relay: PeerId,
    id: u64,
    keeper: Option<AbortHandle>,
    /// Whether we exempted the relay's connection from the idle timeout.
    protected: Arc<AtomicBool>,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if let Some(keeper) = self.keeper.take() {
            keeper.abort();
        }
        if self.protected.swap(false, Ordering::Relaxed)
            && let Ok(host) = self.shared.host()
        {
            host.swarm().unprotect_peer(&self.relay);
        }
        let mut listeners = self.shared.listeners();
        if listeners.get(&self.relay).is_some_and(|s| s.id == self.id) {
            listeners.remove(&self.relay);
        }
    }
}

/// What the reservation keeper of one listener works with.
struct Keeper {
    shared: Arc<ClientShared>,
    relay: PeerId,
    relay_addr: Multiaddr,
    /// Poked when the connection to the relay drops.
    reconnect: mpsc::Receiver<()>,
    /// The reservation held now, if any.
    current: Arc<Mutex<Option<ReservationInfo>>>,
    /// Whether we protected the relay's connection from the idle timeout.
    protected: Arc<AtomicBool>,
    runtime: lp2p_core::RuntimeHandle,
}

/// Renews the reservation before it expires, and makes it again (with backoff) when the
/// connection to the relay drops or a renewal fails.
async fn keep_reservation(keeper: Keeper, mut expire: u64) {
    let Keeper {
        shared,
        relay,
        relay_addr,
        mut reconnect,
        current,
        protected,
        runtime,
    } = keeper;
    let mut failures: u32 = 0;
    let mut wait = schedule::renew_delay(unix_now(), expire);
    loop {
        let poked = match select(runtime.sleep(wait), reconnect.next()).await {
            Either::Left(((), _)) => false,
            Either::Right((Some(()), _)) => true,
            Either::Right((None, _)) => return,
        };
        if poked {
            *current.lock().unwrap_or_else(PoisonError::into_inner) = None;
        }
        match reserve_once(&shared, relay, &relay_addr).await {
            Ok(info) => {
                let renewal = !poked && failures == 0;
                failures = 0;
                expire = info.expire;
                wait = schedule::renew_delay(unix_now(), expire);
                hold_relay_connection(&shared, relay, &protected);
                *current.lock().unwrap_or_else(PoisonError::into_inner) = Some(info.clone());
                tracing::debug!(%relay, expire, renewal, "reservation kept");
                shared.events.emit(&RelayClientEvent::ReservationAccepted {
                    reservation: info,
                    renewal,
                });
            }
            Err(err) => {
                bump(&shared.counters.reservation_failures);
                tracing::debug!(%relay, %err, attempt = failures, "reservation failed; retrying");
                shared.events.emit(&RelayClientEvent::ReservationFailed {
                    relay,
                    error: err.to_string(),
                });
                wait = schedule::retry_delay(failures);
                failures = failures.saturating_add(1);
                if matches!(err, RelayError::NotAttached) {
                    return;
                }
            }
        }
    }
}

/// Yields a connection per circuit the relay announces.
struct CircuitListener {
    rx: mpsc::Receiver<Incoming>,
    addrs: Vec<Multiaddr>,
    _guard: SlotGuard,
}

#[async_trait]
impl Listener for CircuitListener {
    async fn accept(&mut self) -> Result<Incoming, Error> {
        self.rx.next().await.ok_or(Error::ConnectionClosed)
    }

    fn local_addrs(&self) -> Vec<Multiaddr> {
        self.addrs.clone()
    }
}

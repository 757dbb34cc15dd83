//! The shell's shared state: what every clone of a [`Swarm`](crate::Swarm) holds, behind
//! one lock, and the small helpers around it. The driver (`driver.rs`) runs the core's
//! actions on it.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::Instant;

use futures::channel::oneshot;
use futures::future::AbortHandle;
use futures::task::AtomicWaker;
use lp2p_core::{
    AddressResolver, ConnectionLimiter, ConnectionSlot, Keypair, Multiaddr, PeerId, Role,
    RuntimeHandle, Stream, Transport, TransportContext,
};
use lp2p_peerstore::Peerstore;

use crate::core::{AttemptId, DialId, PendingId, SwarmCore};
use crate::gate::{ConnectionGate, Denied, GateStage};
use crate::lifecycle::LifecycleBus;
use crate::totals::{DialDurations, Totals};
use crate::{
    Connection, ConnectionEvents, ConnectionId, Direction, EventBus, Stage, SwarmConfig,
    SwarmError, SwarmEvent,
};

/// Called for every stream a remote opens, with the connection it arrived on. It must not
/// block: the host spawns a task that negotiates the protocol and runs the handler.
pub type InboundStreamHandler = Arc<dyn Fn(Connection, Box<dyn Stream>) + Send + Sync>;

/// A waiter of a dial.
pub(crate) type DialWaiter = oneshot::Sender<Result<Connection, SwarmError>>;

/// Everything behind the swarm's lock.
pub(crate) struct State {
    pub(crate) core: SwarmCore,
    pub(crate) conns: BTreeMap<ConnectionId, Connection>,
    /// Each live connection's place in the resource manager's counts (when a limiter is
    /// set); removed, and so returned, with the connection.
    pub(crate) slots: HashMap<ConnectionId, Box<dyn ConnectionSlot>>,
    pub(crate) attempts: HashMap<AttemptId, AbortHandle>,
    pub(crate) inbound: HashMap<PendingId, (AbortHandle, Multiaddr, SlotCell)>,
    pub(crate) waiters: HashMap<DialId, Vec<DialWaiter>>,
    pub(crate) listeners: Vec<(Vec<Multiaddr>, AbortHandle)>,
    pub(crate) background: Vec<AbortHandle>,
    pub(crate) totals: Totals,
    pub(crate) dial_durations: DialDurations,
}

/// A pending inbound attempt's place in the resource manager's counts, shared by its upgrade
/// task (which takes it when the upgrade ends) and the table of pending attempts (which
/// drops it at once when the core cancels or evicts the attempt, instead of when the
/// aborted task is next polled: a flood must not see places held by evicted attempts).
pub(crate) type SlotCell = Arc<Mutex<Option<Box<dyn ConnectionSlot>>>>;

/// Takes the place out of `cell` (once; `None` after).
pub(crate) fn take_slot(cell: &SlotCell) -> Option<Box<dyn ConnectionSlot>> {
    cell.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
}

/// Wakes the timer task when the core's next deadline may have moved.
#[derive(Default)]
pub(crate) struct Notify {
    flag: AtomicBool,
    waker: AtomicWaker,
}

impl Notify {
    pub(crate) fn notify(&self) {
        self.flag.store(true, Ordering::Release);
        self.waker.wake();
    }

    pub(crate) fn notified(&self) -> Notified<'_> {
        Notified(self)
    }
}

pub(crate) struct Notified<'a>(&'a Notify);

impl std::future::Future for Notified<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.waker.register(cx.waker());
        if self.0.flag.swap(false, Ordering::AcqRel) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// The state behind every clone of a [`Swarm`](crate::Swarm).
pub(crate) struct Shared {
    pub(crate) local_peer: PeerId,
    pub(crate) keypair: Keypair,
    pub(crate) ctx: TransportContext,
    pub(crate) transports: Vec<Arc<dyn Transport>>,
    pub(crate) resolvers: Vec<Arc<dyn AddressResolver>>,
    pub(crate) gates: Vec<Arc<dyn ConnectionGate>>,
    pub(crate) limiter: Option<Arc<dyn ConnectionLimiter>>,
    pub(crate) stats: Counters,
    pub(crate) peerstore: Peerstore,
    pub(crate) config: SwarmConfig,
    pub(crate) runtime: RuntimeHandle,
    pub(crate) events: EventBus<SwarmEvent>,
    pub(crate) lifecycle: LifecycleBus,
    pub(crate) inbound_handler: RwLock<Option<InboundStreamHandler>>,
    state: Mutex<State>,
    pub(crate) timer: Arc<Notify>,
    closed: AtomicBool,
}

/// What [`Shared::new`] needs.
pub(crate) struct Parts {
    pub(crate) keypair: Keypair,
    pub(crate) transports: Vec<Arc<dyn Transport>>,
    pub(crate) resolvers: Vec<Arc<dyn AddressResolver>>,
    pub(crate) gates: Vec<Arc<dyn ConnectionGate>>,
    pub(crate) memory: Option<Arc<dyn lp2p_core::MemoryBudget>>,
    pub(crate) limiter: Option<Arc<dyn ConnectionLimiter>>,
    pub(crate) peerstore: Peerstore,
    pub(crate) config: SwarmConfig,
    pub(crate) runtime: RuntimeHandle,
    pub(crate) inbound_handler: Option<InboundStreamHandler>,
}

/// Counters of refused connections (see [`SwarmStats`]).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    denied: [AtomicU64; 4],
    refused_inbound: AtomicU64,
    refused_outbound: AtomicU64,
}

impl Counters {
    pub(crate) fn denied(&self, stage: GateStage) {
        let i = match stage {
            GateStage::Dial => 0,
            GateStage::Accept => 1,
            GateStage::Secured => 2,
            GateStage::Upgraded => 3,
        };
        if let Some(c) = self.denied.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn refused(&self, direction: Direction) {
        match direction {
            Direction::Inbound => &self.refused_inbound,
            Direction::Outbound => &self.refused_outbound,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> SwarmStats {
        let get = |i: usize| self.denied.get(i).map_or(0, |c| c.load(Ordering::Relaxed));
        SwarmStats {
            denied_dial: get(0),
            denied_accept: get(1),
            denied_secured: get(2),
            denied_upgraded: get(3),
            refused_inbound: self.refused_inbound.load(Ordering::Relaxed),
            refused_outbound: self.refused_outbound.load(Ordering::Relaxed),
            evicted_idle_inbound: 0,
        }
    }
}

/// Connections the swarm refused, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwarmStats {
    /// Addresses a gate refused to dial.
    pub denied_dial: u64,
    /// Inbound attempts a gate refused by address.
    pub denied_accept: u64,
    /// Connections a gate refused once the remote was authenticated.
    pub denied_secured: u64,
    /// Connections a gate refused when they were ready.
    pub denied_upgraded: u64,
    /// Inbound attempts or connections a limit refused.
    pub refused_inbound: u64,
    /// Outbound connections a limit refused.
    pub refused_outbound: u64,
    /// Idle inbound connections closed to make room for a new inbound attempt at the
    /// inbound limit (see `SwarmConfig::inbound_idle_eviction_age`).
    pub evicted_idle_inbound: u64,
}

/// Maps a transport's error to the stage of the attempt that failed.
pub(crate) fn stage_of(err: &lp2p_core::Error) -> Stage {
    use lp2p_core::Error as E;
    match err {
        E::UnsupportedAddress(_) => Stage::UnsupportedAddress,
        E::SecurityNegotiation(_) => Stage::SecurityNegotiation,
        E::Security { .. } | E::PeerIdMismatch { .. } => Stage::Security,
        E::MuxerNegotiation(_) => Stage::MuxerNegotiation,
        E::Denied(source) => match source.downcast_ref::<SwarmError>() {
            Some(SwarmError::Denied { .. }) => Stage::Denied,
            _ => Stage::Limit,
        },
        E::Timeout(_) => Stage::Timeout,
        E::Resolve { .. } => Stage::Resolve,
        _ => Stage::Transport,
    }
}

/// The swarm error for a transport error (a refusal by the swarm's own check comes back as
/// the original error).
pub(crate) fn swarm_error(err: lp2p_core::Error) -> SwarmError {
    match err {
        lp2p_core::Error::PeerIdMismatch { expected, actual } => {
            SwarmError::PeerIdMismatch { expected, actual }
        }
        lp2p_core::Error::Denied(source) => match source.downcast::<SwarmError>() {
            Ok(own) => *own,
            Err(other) => SwarmError::Core(lp2p_core::Error::Denied(other)),
        },
        other => SwarmError::Core(other),
    }
}

impl Shared {
    pub(crate) fn new(parts: Parts) -> Arc<Shared> {
        let local_peer = parts.keypair.public().to_peer_id();
        let now = parts.runtime.now();
        Arc::new_cyclic(|weak: &Weak<Shared>| {
            let weak = weak.clone();
            let mut ctx = TransportContext::new(parts.keypair.clone(), parts.runtime.clone());
            ctx.memory.clone_from(&parts.memory);
            ctx.on_secured = Some(Arc::new(
                move |peer: &PeerId, remote: &Multiaddr, role: Role| {
                    let Some(shared) = weak.upgrade() else {
                        return Err(lp2p_core::Error::Denied(Box::new(SwarmError::Closed)));
                    };
                    let direction = match role {
                        Role::Responder => Direction::Inbound,
                        Role::Initiator => Direction::Outbound,
                    };
                    if let Err(reason) = shared.check_gates(GateStage::Secured, |g| {
                        g.allow_secured(peer, remote, direction)
                    }) {
                        return Err(lp2p_core::Error::Denied(Box::new(SwarmError::Denied {
                            stage: GateStage::Secured,
                            reason,
                        })));
                    }
                    let mut st = shared.lock();
                    let checked = match role {
                        Role::Responder => st.core.inbound_secured(remote, *peer),
                        Role::Initiator => st.core.admit_peer(peer),
                    };
                    checked.map_err(|e| lp2p_core::Error::Denied(Box::new(e)))
                },
            ));
            Shared {
                local_peer,
                keypair: parts.keypair,
                ctx,
                transports: parts.transports,
                resolvers: parts.resolvers,
                gates: parts.gates,
                limiter: parts.limiter,
                stats: Counters::default(),
                peerstore: parts.peerstore,
                events: EventBus::new(parts.config.event_buffer),
                lifecycle: LifecycleBus::default(),
                state: Mutex::new(State {
                    core: SwarmCore::new(parts.config.clone(), local_peer, now),
                    conns: BTreeMap::new(),
                    slots: HashMap::new(),
                    attempts: HashMap::new(),
                    inbound: HashMap::new(),
                    waiters: HashMap::new(),
                    listeners: Vec::new(),
                    background: Vec::new(),
                    totals: Totals::default(),
                    dial_durations: DialDurations::default(),
                }),
                config: parts.config,
                runtime: parts.runtime,
                inbound_handler: RwLock::new(parts.inbound_handler),
                timer: Arc::new(Notify::default()),
                closed: AtomicBool::new(false),
            }
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn now(&self) -> Instant {
        self.runtime.now()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Marks the swarm closed; true the first time.
    pub(crate) fn mark_closed(&self) -> bool {
        !self.closed.swap(true, Ordering::AcqRel)
    }

    pub(crate) fn ensure_open(&self) -> Result<(), SwarmError> {
        if self.is_closed() {
            Err(SwarmError::Closed)
        } else {
            Ok(())
        }
    }

    /// Asks every gate; the first refusal wins (counted and logged).
    pub(crate) fn check_gates(
        &self,
        stage: GateStage,
        check: impl Fn(&dyn ConnectionGate) -> Result<(), Denied>,
    ) -> Result<(), Denied> {
        for gate in &self.gates {
            if let Err(reason) = check(gate.as_ref()) {
                self.stats.denied(stage);
                tracing::debug!(%stage, %reason, "connection denied by a gate");
                return Err(reason);
            }
        }
        Ok(())
    }

    pub(crate) fn transport_for(&self, addr: &Multiaddr) -> Option<&Arc<dyn Transport>> {
        self.transports.iter().find(|t| t.can_dial(addr))
    }

    pub(crate) fn set_inbound_handler(&self, handler: InboundStreamHandler) {
        *self
            .inbound_handler
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(handler);
    }

    /// A lossless lifecycle subscription, starting with the live connections.
    pub(crate) fn connection_events(&self) -> ConnectionEvents {
        let st = self.lock();
        self.lifecycle.subscribe(st.conns.values().cloned())
    }

    pub(crate) fn close_lifecycle(&self) {
        let _st = self.lock();
        self.lifecycle.close();
    }

    /// Spawns a task that `close()` aborts.
    pub(crate) fn spawn_background(
        &self,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let handle = self.runtime.spawn(task);
        self.lock().background.push(handle.abort_handle());
    }
}

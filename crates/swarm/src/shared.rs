//! The shell's shared state and the executor of [`SwarmCore`]'s actions: attempt tasks,
//! connection tasks, the timer task, and the bookkeeping around them.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::Instant;

use futures::channel::oneshot;
use futures::future::{AbortHandle, Either, select};
use futures::task::AtomicWaker;
use lp2p_core::{
    AddressResolver, DialOpts, Established, Incoming, Keypair, Multiaddr, PeerId, Role,
    RuntimeHandle, Stream, Transport, TransportContext,
};
use lp2p_peerstore::{CONNECTED_ADDR_TTL, Peerstore, RECENTLY_CONNECTED_ADDR_TTL};

use crate::connection::ConnectionParts;
use crate::core::{Action, Admitted, AttemptId, DialId, PendingId, SwarmCore};
use crate::lifecycle::LifecycleBus;
use crate::{
    CloseReason, Connection, ConnectionEvents, ConnectionId, Direction, EventBus, Stage,
    SwarmConfig, SwarmError, SwarmEvent,
};

/// Called for every stream a remote opens, with the connection it arrived on. It must not
/// block: the host spawns a task that negotiates the protocol and runs the handler.
pub type InboundStreamHandler = Arc<dyn Fn(Connection, Box<dyn Stream>) + Send + Sync>;

/// A waiter of a dial.
pub(crate) type DialWaiter = oneshot::Sender<Result<Connection, SwarmError>>;

/// Everything behind the swarm's lock.
pub(crate) struct State {
    pub(crate) core: SwarmCore,
    pub(crate) conns: HashMap<ConnectionId, Connection>,
    attempts: HashMap<AttemptId, AbortHandle>,
    inbound: HashMap<PendingId, (AbortHandle, Multiaddr)>,
    pub(crate) waiters: HashMap<DialId, Vec<DialWaiter>>,
    pub(crate) listeners: Vec<(Vec<Multiaddr>, AbortHandle)>,
    pub(crate) background: Vec<AbortHandle>,
}

/// Wakes the timer task when the core's next deadline may have moved.
#[derive(Default)]
struct Notify {
    flag: AtomicBool,
    waker: AtomicWaker,
}

impl Notify {
    fn notify(&self) {
        self.flag.store(true, Ordering::Release);
        self.waker.wake();
    }

    fn notified(&self) -> Notified<'_> {
        Notified(self)
    }
}

struct Notified<'a>(&'a Notify);

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
    pub(crate) peerstore: Peerstore,
    pub(crate) config: SwarmConfig,
    pub(crate) runtime: RuntimeHandle,
    pub(crate) events: EventBus<SwarmEvent>,
    lifecycle: LifecycleBus,
    inbound_handler: RwLock<Option<InboundStreamHandler>>,
    state: Mutex<State>,
    timer: Arc<Notify>,
    closed: AtomicBool,
}

/// What [`Shared::new`] needs.
pub(crate) struct Parts {
    pub(crate) keypair: Keypair,
    pub(crate) transports: Vec<Arc<dyn Transport>>,
    pub(crate) resolvers: Vec<Arc<dyn AddressResolver>>,
    pub(crate) peerstore: Peerstore,
    pub(crate) config: SwarmConfig,
    pub(crate) runtime: RuntimeHandle,
    pub(crate) inbound_handler: Option<InboundStreamHandler>,
}

/// Maps a transport's error to the stage of the attempt that failed.
pub(crate) fn stage_of(err: &lp2p_core::Error) -> Stage {
    use lp2p_core::Error as E;
    match err {
        E::UnsupportedAddress(_) => Stage::UnsupportedAddress,
        E::SecurityNegotiation(_) => Stage::SecurityNegotiation,
        E::Security { .. } | E::PeerIdMismatch { .. } => Stage::Security,
        E::MuxerNegotiation(_) => Stage::MuxerNegotiation,
        E::Denied(_) => Stage::Limit,
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
            ctx.on_secured = Some(Arc::new(
                move |peer: &PeerId, remote: &Multiaddr, role: Role| {
                    let Some(shared) = weak.upgrade() else {
                        return Err(lp2p_core::Error::Denied(Box::new(SwarmError::Closed)));
                    };
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
                peerstore: parts.peerstore,
                events: EventBus::new(parts.config.event_buffer),
                lifecycle: LifecycleBus::default(),
                state: Mutex::new(State {
                    core: SwarmCore::new(parts.config.clone(), local_peer, now),
                    conns: HashMap::new(),
                    attempts: HashMap::new(),
                    inbound: HashMap::new(),
                    waiters: HashMap::new(),
                    listeners: Vec::new(),
                    background: Vec::new(),
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

    // ---- running the core's actions --------------------------------------------------

    /// Carries out every action the core has queued, then lets the timer task re-arm.
    pub(crate) fn drain(self: &Arc<Self>) {
        loop {
            let action = self.lock().core.poll_action();
            let Some(action) = action else { break };
            self.execute(action);
        }
        self.timer.notify();
    }

    fn execute(self: &Arc<Self>, action: Action) {
        match action {
            Action::StartAttempt {
                attempt,
                addr,
                peer,
                ..
            } => self.start_attempt(attempt, addr, peer),
            Action::CancelAttempt { attempt } => {
                if let Some(abort) = self.lock().attempts.remove(&attempt) {
                    abort.abort();
                }
            }
            Action::DialFinished { dial, outcome } => {
                let (waiters, result) = {
                    let mut st = self.lock();
                    let waiters = st.waiters.remove(&dial).unwrap_or_default();
                    let result = match outcome {
                        Ok(id) => st.conns.get(&id).cloned().ok_or(SwarmError::Closed),
                        Err(failure) => Err(failure.into_error()),
                    };
                    (waiters, result)
                };
                if let Err(SwarmError::DialFailed { peer, attempts }) = &result {
                    let error = Arc::new(SwarmError::DialFailed {
                        peer: *peer,
                        attempts: attempts.clone(),
                    });
                    tracing::debug!(%error, "dial failed");
                    self.events
                        .emit(&SwarmEvent::DialFailed { peer: *peer, error });
                }
                for waiter in waiters {
                    let _ = waiter.send(match &result {
                        Ok(conn) => Ok(conn.clone()),
                        Err(SwarmError::DialFailed { peer, attempts }) => {
                            Err(SwarmError::DialFailed {
                                peer: *peer,
                                attempts: attempts.clone(),
                            })
                        }
                        Err(SwarmError::NoAddresses(p)) => Err(SwarmError::NoAddresses(*p)),
                        Err(_) => Err(SwarmError::Closed),
                    });
                }
            }
            Action::CancelInbound { pending } => {
                let cancelled = self.lock().inbound.remove(&pending);
                if let Some((abort, remote_addr)) = cancelled {
                    abort.abort();
                    let error = SwarmError::Timeout {
                        what: "inbound connection upgrade",
                        after: self.config.upgrade_timeout,
                    };
                    tracing::debug!(%remote_addr, %error, "inbound upgrade cancelled");
                    self.events.emit(&SwarmEvent::IncomingConnectionError {
                        remote_addr,
                        error: Arc::new(error),
                    });
                }
            }
            Action::CheckIdle { conn } => {
                let now = self.now();
                let mut st = self.lock();
                let counts = st
                    .conns
                    .get(&conn)
                    .map(|c| (c.num_streams(), c.streams_opened()));
                if let Some((open, opened)) = counts {
                    st.core.idle_report(conn, open, opened, now);
                }
            }
            Action::Close { conn, reason } => {
                let target = {
                    let mut st = self.lock();
                    st.core.closing(conn);
                    st.conns.get(&conn).cloned()
                };
                if let Some(target) = target {
                    tracing::debug!(peer = %target.peer(), connection = %conn, %reason, "closing connection");
                    target.mark_closing(&reason);
                    let muxed = target.muxed().clone();
                    self.runtime
                        .spawn_detached(async move { muxed.close().await });
                }
            }
            Action::Redial { addr } => {
                let weak = Arc::downgrade(self);
                self.runtime
                    .spawn_detached(async move { crate::dial::redial(weak, addr).await });
            }
        }
    }

    fn start_attempt(self: &Arc<Self>, attempt: AttemptId, addr: Multiaddr, peer: Option<PeerId>) {
        let Some(transport) = self.transport_for(&addr).cloned() else {
            // Filtered before the dial started; a transport cannot vanish.
            let now = self.now();
            self.lock().core.attempt_failed(
                attempt,
                Stage::UnsupportedAddress,
                Arc::new(SwarmError::UnsupportedAddress(addr)),
                false,
                now,
            );
            return;
        };
        let weak = Arc::downgrade(self);
        let ctx = self.ctx.clone();
        let task = self.runtime.spawn(async move {
            let result = transport.dial(&ctx, &addr, DialOpts::to_peer(peer)).await;
            let Some(shared) = weak.upgrade() else {
                if let Ok(est) = result {
                    est.muxer.close().await;
                }
                return;
            };
            shared.attempt_done(attempt, &addr, transport.name(), result);
        });
        // The task cannot have reported yet: reporting needs the lock this caller does not
        // hold, and `drain` runs outside it. If it already finished, the abort is a no-op.
        self.lock().attempts.insert(attempt, task.abort_handle());
    }

    fn attempt_done(
        self: &Arc<Self>,
        attempt: AttemptId,
        addr: &Multiaddr,
        transport: &'static str,
        result: Result<Established, lp2p_core::Error>,
    ) {
        let now = self.now();
        match result {
            Ok(est) => {
                let registered = {
                    let mut st = self.lock();
                    st.attempts.remove(&attempt);
                    let admitted = st.core.attempt_succeeded(
                        attempt,
                        est.peer,
                        est.remote_addr.clone(),
                        est.limited,
                        now,
                    );
                    admitted
                        .map(|a| self.register(&mut st, a, &est, Direction::Outbound, transport))
                };
                self.drain();
                if let Some((conn, n)) = registered {
                    self.after_register(conn, n, &est);
                } else {
                    tracing::debug!(peer = %est.peer, %addr, "connection not admitted; closing it");
                    let muxed = est.muxer;
                    self.runtime
                        .spawn_detached(async move { muxed.close().await });
                }
            }
            Err(err) => {
                let stage = stage_of(&err);
                let err = swarm_error(err);
                tracing::debug!(%addr, %stage, %err, "dial attempt failed");
                // A mismatch proves the address works (for someone else); a limit says
                // nothing about the address: neither backs it off.
                let at_fault = !matches!(stage, Stage::UnsupportedAddress | Stage::Limit)
                    && !matches!(err, SwarmError::PeerIdMismatch { .. });
                {
                    let mut st = self.lock();
                    st.attempts.remove(&attempt);
                    st.core
                        .attempt_failed(attempt, stage, Arc::new(err), at_fault, now);
                }
                self.drain();
            }
        }
    }

    /// Puts an admitted connection in the table (under the lock, so lifecycle subscribers see
    /// it in order).
    fn register(
        &self,
        st: &mut State,
        admitted: Admitted,
        est: &Established,
        direction: Direction,
        transport: &'static str,
    ) -> (Connection, usize) {
        let conn = Connection::new(ConnectionParts {
            id: admitted.id,
            peer: est.peer,
            direction,
            local_addr: est.local_addr.clone(),
            remote_addr: est.remote_addr.clone(),
            security: est.security.clone(),
            muxer: est.muxer_protocol.clone(),
            transport,
            limited: est.limited,
            muxed: est.muxer.clone(),
            established_at: self.now(),
        });
        st.conns.insert(admitted.id, conn.clone());
        self.lifecycle.established(&conn);
        (conn, admitted.num_established)
    }

    /// After a connection entered the table: the peerstore, the event, the connection task.
    fn after_register(
        self: &Arc<Self>,
        conn: Connection,
        num_established: usize,
        est: &Established,
    ) {
        let peer = conn.peer();
        if let Err(err) = self.peerstore.add_public_key(&peer, est.remote_key.clone()) {
            tracing::debug!(%peer, %err, "peerstore refused the remote key");
        }
        if conn.direction() == Direction::Outbound && !conn.is_limited() {
            // Inbound remote addresses are ephemeral source ports: not worth dialing.
            let _ = self
                .peerstore
                .add_addr(&peer, conn.remote_addr().clone(), CONNECTED_ADDR_TTL);
        }
        tracing::info!(
            %peer,
            connection = %conn.id(),
            direction = %conn.direction(),
            remote_addr = %conn.remote_addr(),
            transport = conn.transport(),
            security = conn.security_protocol(),
            muxer = conn.muxer_protocol(),
            limited = conn.is_limited(),
            "connection established"
        );
        self.runtime
            .spawn_detached(drive_connection(Arc::downgrade(self), conn.clone()));
        self.events.emit(&SwarmEvent::ConnectionEstablished {
            connection: conn,
            num_established,
        });
    }

    // ---- inbound ---------------------------------------------------------------------

    /// An inbound attempt from a listener: admitted by address, then upgraded in its own
    /// task (which the core cancels when it runs out of time).
    pub(crate) fn inbound(self: &Arc<Self>, incoming: Incoming, transport: &'static str) {
        let now = self.now();
        let remote_addr = incoming.remote_addr.clone();
        let admitted = self.lock().core.inbound_attempt(remote_addr.clone(), now);
        let pending = match admitted {
            Ok(pending) => pending,
            Err(err) => {
                // Dropping the attempt refuses it: the dialer's upgrade fails.
                drop(incoming);
                tracing::debug!(%remote_addr, %err, "inbound connection refused");
                self.events.emit(&SwarmEvent::IncomingConnectionError {
                    remote_addr,
                    error: Arc::new(err),
                });
                return;
            }
        };
        let weak = Arc::downgrade(self);
        let task = self.runtime.spawn(async move {
            let result = incoming.upgrade.await;
            let Some(shared) = weak.upgrade() else {
                if let Ok(est) = result {
                    est.muxer.close().await;
                }
                return;
            };
            shared.inbound_done(pending, incoming.remote_addr, transport, result);
        });
        self.lock()
            .inbound
            .insert(pending, (task.abort_handle(), remote_addr));
        self.drain();
    }

    fn inbound_done(
        self: &Arc<Self>,
        pending: PendingId,
        remote_addr: Multiaddr,
        transport: &'static str,
        result: Result<Established, lp2p_core::Error>,
    ) {
        let now = self.now();
        let outcome = match result {
            Ok(est) => {
                let registered = {
                    let mut st = self.lock();
                    st.inbound.remove(&pending);
                    st.core
                        .inbound_established(
                            pending,
                            est.peer,
                            est.remote_addr.clone(),
                            est.limited,
                            now,
                        )
                        .map(|a| self.register(&mut st, a, &est, Direction::Inbound, transport))
                };
                match registered {
                    Ok((conn, n)) => {
                        self.drain();
                        self.after_register(conn, n, &est);
                        return;
                    }
                    Err(err) => {
                        let muxed = est.muxer;
                        self.runtime
                            .spawn_detached(async move { muxed.close().await });
                        err
                    }
                }
            }
            Err(err) => {
                let mut st = self.lock();
                st.inbound.remove(&pending);
                st.core.inbound_failed(pending, now);
                swarm_error(err)
            }
        };
        self.drain();
        tracing::debug!(%remote_addr, err = %outcome, "inbound connection failed");
        self.events.emit(&SwarmEvent::IncomingConnectionError {
            remote_addr,
            error: Arc::new(outcome),
        });
    }

    // ---- connections -----------------------------------------------------------------

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

    fn unregister(self: &Arc<Self>, conn: &Connection, reason: CloseReason) {
        let now = self.now();
        let removed = {
            let mut st = self.lock();
            st.conns.remove(&conn.id());
            let removed = st.core.connection_closed(conn.id(), now);
            if let Some(r) = &removed {
                self.lifecycle.closed(conn, &reason, r.num_remaining);
            }
            removed
        };
        self.drain();
        let Some(removed) = removed else { return };
        let peer = conn.peer();
        if removed.num_remaining == 0 {
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
            num_remaining: removed.num_remaining,
        });
    }
}

/// The task of one connection: hands inbound streams to the handler and takes the connection
/// out of the table when it ends.
async fn drive_connection(shared: Weak<Shared>, conn: Connection) {
    let muxed = conn.muxed().clone();
    let reason = loop {
        match muxed.accept_stream().await {
            Ok(stream) => {
                conn.count_stream();
                match shared.upgrade() {
                    Some(s) => s.dispatch_inbound_stream(conn.clone(), stream),
                    None => drop(stream),
                }
            }
            Err(err) => {
                break conn
                    .local_close_reason()
                    .unwrap_or_else(|| CloseReason::Remote(err.to_string()));
            }
        }
    };
    if let Some(shared) = shared.upgrade() {
        shared.unregister(&conn, reason);
    }
}

/// The timer task: runs the core's timeouts when they are due, and the peerstore's garbage
/// collection every `MAINTENANCE_INTERVAL`.
pub(crate) async fn timer_loop(shared: Weak<Shared>) {
    let (mut next_gc, notify) = match shared.upgrade() {
        Some(s) => (
            s.now() + crate::config::MAINTENANCE_INTERVAL,
            s.timer.clone(),
        ),
        None => return,
    };
    loop {
        let Some(s) = shared.upgrade() else { return };
        let now = s.now();
        if next_gc <= now {
            let stats = s.peerstore.gc();
            tracing::trace!(?stats, "peerstore maintenance done");
            next_gc = now + crate::config::MAINTENANCE_INTERVAL;
        }
        let due = s
            .lock()
            .core
            .poll_timeout()
            .map_or(next_gc, |t| t.min(next_gc));
        let sleep = s.runtime.sleep_until(due);
        // Wait without keeping the swarm alive.
        drop(s);
        let woken = matches!(select(sleep, notify.notified()).await, Either::Right(_));
        let Some(s) = shared.upgrade() else { return };
        if !woken || s.now() >= due {
            let now = s.now();
            s.lock().core.handle_timeout(now);
            s.drain();
        }
    }
}

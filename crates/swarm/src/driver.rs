//! The driver: carries out [`SwarmCore`](crate::core::SwarmCore)'s actions (attempt tasks,
//! connection tasks, closes, redials), registers connections, and runs the timer task.

use std::sync::{Arc, Weak};
use std::time::Instant;

use futures::future::{Either, select};
use lp2p_core::{ConnectionSlot, DialOpts, Established, Incoming, Multiaddr, Role, Stream, addr};
use lp2p_peerstore::{CONNECTED_ADDR_TTL, RECENTLY_CONNECTED_ADDR_TTL};

use crate::candidates::prepare;
use crate::connection::ConnectionParts;
use crate::core::{Action, Admitted, AttemptId, DialRequest, PendingId};
use crate::gate::GateStage;
use crate::state::{Shared, SlotCell, State, stage_of, swarm_error, take_slot};
use crate::{CloseReason, Connection, Direction, Stage, SwarmError, SwarmEvent};

impl Shared {
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
                opts,
                ..
            } => self.start_attempt(attempt, addr, opts),
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
                if let Some((abort, remote_addr, slot)) = cancelled {
                    abort.abort();
                    drop(take_slot(&slot));
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
            Action::EvictInbound { pending, age } => {
                let evicted = self.lock().inbound.remove(&pending);
                if let Some((abort, remote_addr, slot)) = evicted {
                    abort.abort();
                    drop(take_slot(&slot));
                    let error = SwarmError::Evicted {
                        age,
                        limit: self.config.max_pending_inbound,
                    };
                    tracing::debug!(%remote_addr, %error, "inbound upgrade evicted");
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
                    .spawn_detached(async move { redial(weak, addr).await });
            }
        }
    }

    fn start_attempt(self: &Arc<Self>, attempt: AttemptId, addr: Multiaddr, opts: DialOpts) {
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
        let slot = match self.open_slot(Role::Initiator, &addr, transport.uses_fd_per_connection())
        {
            Ok(slot) => slot,
            Err(err) => {
                tracing::debug!(%addr, %err, "dial attempt refused by the resource manager");
                let now = self.now();
                self.lock()
                    .core
                    .attempt_failed(attempt, Stage::Limit, Arc::new(err), false, now);
                return;
            }
        };
        let weak = Arc::downgrade(self);
        let ctx = self.ctx.clone();
        let started = self.now();
        let task = self.runtime.spawn(async move {
            let result = transport.dial(&ctx, &addr, opts).await;
            let Some(shared) = weak.upgrade() else {
                if let Ok(est) = result {
                    est.muxer.close().await;
                }
                return;
            };
            shared.attempt_done(attempt, &addr, (transport.name(), started), result, slot);
        });
        // The task cannot have reported yet: reporting needs the lock this caller does not
        // hold, and `drain` runs outside it. If it already finished, the abort is a no-op.
        self.lock().attempts.insert(attempt, task.abort_handle());
    }

    /// An outbound attempt (on `transport`, started at the instant given) ended.
    fn attempt_done(
        self: &Arc<Self>,
        attempt: AttemptId,
        addr: &Multiaddr,
        (transport, started): (&'static str, Instant),
        result: Result<Established, lp2p_core::Error>,
        mut slot: Option<Box<dyn ConnectionSlot>>,
    ) {
        let now = self.now();
        let took = now.saturating_duration_since(started);
        let result = result
            .and_then(|est| self.gate_upgraded(est, Direction::Outbound))
            .and_then(|est| self.attach_slot(slot.as_deref_mut(), est));
        match result {
            Ok(est) => {
                let registered = {
                    let mut st = self.lock();
                    st.attempts.remove(&attempt);
                    st.totals
                        .handshake(Direction::Outbound, transport, true, took);
                    let admitted = st.core.attempt_succeeded(
                        attempt,
                        est.peer,
                        est.remote_addr.clone(),
                        est.limited,
                        now,
                    );
                    admitted.map(|a| {
                        self.register(&mut st, a, &est, (Direction::Outbound, transport), slot)
                    })
                };
                self.drain();
                if let Some((conn, n)) = registered {
                    self.after_register(conn, n, &est);
                } else {
                    self.stats.refused(Direction::Outbound);
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
                let at_fault = !matches!(
                    stage,
                    Stage::UnsupportedAddress | Stage::Limit | Stage::Denied
                ) && !matches!(err, SwarmError::PeerIdMismatch { .. });
                {
                    let mut st = self.lock();
                    st.attempts.remove(&attempt);
                    st.totals
                        .handshake(Direction::Outbound, transport, false, took);
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
        (direction, transport): (Direction, &'static str),
        slot: Option<Box<dyn ConnectionSlot>>,
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
        if let Some(slot) = slot {
            st.slots.insert(admitted.id, slot);
        }
        st.totals.opened(direction, transport);
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
    pub(crate) fn inbound(
        self: &Arc<Self>,
        incoming: Incoming,
        transport: &'static str,
        uses_fd: bool,
    ) {
        let now = self.now();
        let remote_addr = incoming.remote_addr.clone();
        if let Err(reason) = self.check_gates(GateStage::Accept, |g| {
            g.allow_accept(&incoming.local_addr, &remote_addr)
        }) {
            drop(incoming);
            self.events.emit(&SwarmEvent::IncomingConnectionError {
                remote_addr,
                error: Arc::new(SwarmError::Denied {
                    stage: GateStage::Accept,
                    reason,
                }),
            });
            return;
        }
        let admitted = self.lock().core.inbound_attempt(remote_addr.clone(), now);
        let pending = match admitted {
            Ok(pending) => pending,
            Err(err) => {
                self.stats.refused(Direction::Inbound);
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
        // The core may have evicted an older attempt to admit this one: carry that out
        // first, so its place in the resource manager's counts is free before this one
        // asks for a place (the swarm's eviction comes before the manager's refusal).
        self.drain();
        let slot = match self.open_slot(Role::Responder, &remote_addr, uses_fd) {
            Ok(slot) => slot,
            Err(err) => {
                self.stats.refused(Direction::Inbound);
                drop(incoming);
                self.lock().core.inbound_failed(pending, now);
                self.drain();
                tracing::debug!(%remote_addr, %err, "inbound connection refused by the resource manager");
                self.events.emit(&SwarmEvent::IncomingConnectionError {
                    remote_addr,
                    error: Arc::new(err),
                });
                return;
            }
        };
        let weak = Arc::downgrade(self);
        let slot: SlotCell = Arc::new(std::sync::Mutex::new(slot));
        let task_slot = Arc::clone(&slot);
        let task = self.runtime.spawn(async move {
            let result = incoming.upgrade.await;
            let Some(shared) = weak.upgrade() else {
                if let Ok(est) = result {
                    est.muxer.close().await;
                }
                return;
            };
            let slot = take_slot(&task_slot);
            shared.inbound_done(
                pending,
                incoming.remote_addr,
                (transport, now),
                result,
                slot,
            );
        });
        self.lock()
            .inbound
            .insert(pending, (task.abort_handle(), remote_addr, slot));
        self.drain();
    }

    /// An inbound attempt (on `transport`, admitted at the instant given) ended.
    fn inbound_done(
        self: &Arc<Self>,
        pending: PendingId,
        remote_addr: Multiaddr,
        (transport, started): (&'static str, Instant),
        result: Result<Established, lp2p_core::Error>,
        mut slot: Option<Box<dyn ConnectionSlot>>,
    ) {
        let now = self.now();
        let took = now.saturating_duration_since(started);
        let result = result
            .and_then(|est| self.gate_upgraded(est, Direction::Inbound))
            .and_then(|est| self.attach_slot(slot.as_deref_mut(), est));
        let outcome = match result {
            Ok(est) => {
                let registered = {
                    let mut st = self.lock();
                    st.inbound.remove(&pending);
                    st.totals
                        .handshake(Direction::Inbound, transport, true, took);
                    st.core
                        .inbound_established(
                            pending,
                            est.peer,
                            est.remote_addr.clone(),
                            est.limited,
                            now,
                        )
                        .map(|a| {
                            self.register(&mut st, a, &est, (Direction::Inbound, transport), slot)
                        })
                };
                match registered {
                    Ok((conn, n)) => {
                        self.drain();
                        self.after_register(conn, n, &est);
                        return;
                    }
                    Err(err) => {
                        self.stats.refused(Direction::Inbound);
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
                st.totals
                    .handshake(Direction::Inbound, transport, false, took);
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

    /// The gates' last word on a ready connection: refused ones are closed here and come
    /// back as an error.
    fn gate_upgraded(
        self: &Arc<Self>,
        est: Established,
        direction: Direction,
    ) -> Result<Established, lp2p_core::Error> {
        let checked = self.check_gates(GateStage::Upgraded, |g| {
            g.allow_upgraded(
                &est.peer,
                &est.remote_addr,
                direction,
                est.muxer_protocol.as_str(),
                est.limited,
            )
        });
        match checked {
            Ok(()) => Ok(est),
            Err(reason) => {
                let muxed = est.muxer;
                self.runtime
                    .spawn_detached(async move { muxed.close().await });
                Err(lp2p_core::Error::Denied(Box::new(SwarmError::Denied {
                    stage: GateStage::Upgraded,
                    reason,
                })))
            }
        }
    }

    /// A place in the resource manager's counts for a new connection (none without a
    /// limiter).
    fn open_slot(
        &self,
        role: Role,
        remote: &Multiaddr,
        uses_fd: bool,
    ) -> Result<Option<Box<dyn ConnectionSlot>>, SwarmError> {
        let Some(limiter) = &self.limiter else {
            return Ok(None);
        };
        limiter
            .open_connection(role, remote, uses_fd)
            .map(Some)
            .map_err(|denied| SwarmError::Resources {
                peer: None,
                denied: Box::new(denied),
            })
    }

    /// Moves a ready connection's place to its peer's scope; refused, the connection is
    /// closed here and comes back as an error.
    fn attach_slot(
        &self,
        slot: Option<&mut dyn ConnectionSlot>,
        est: Established,
    ) -> Result<Established, lp2p_core::Error> {
        let Some(slot) = slot else { return Ok(est) };
        match slot.attach_peer(&est.peer) {
            Ok(()) => Ok(est),
            Err(denied) => {
                let muxed = est.muxer;
                self.runtime
                    .spawn_detached(async move { muxed.close().await });
                Err(lp2p_core::Error::Denied(Box::new(SwarmError::Resources {
                    peer: Some(Box::new(est.peer)),
                    denied: Box::new(denied),
                })))
            }
        }
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
            st.slots.remove(&conn.id());
            let removed = st.core.connection_closed(conn.id(), now);
            if let Some(r) = &removed {
                st.totals.closed(
                    conn.direction(),
                    conn.transport(),
                    &reason,
                    now.saturating_duration_since(conn.established_at()),
                );
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

/// Runs a bootstrap redial the core asked for.
pub(crate) async fn redial(shared: Weak<Shared>, target: Multiaddr) {
    let Some(shared) = shared.upgrade() else {
        return;
    };
    if shared.is_closed() {
        return;
    }
    let (transport_addr, peer) = addr::split_peer_id(&target);
    let (addrs, failures) = prepare(&shared, peer, vec![target.clone()]).await;
    let now = shared.now();
    let started = {
        let mut st = shared.lock();
        let started = st.core.dial(
            DialRequest {
                reuse: peer.is_some(),
                ..DialRequest::new(peer, addrs, failures)
            },
            now,
        );
        match &started {
            Ok(start) => st.core.bootstrap_dial_started(&target, *start, now),
            Err(_) => st.core.bootstrap_dial_failed(&target, now),
        }
        started
    };
    shared.drain();
    match started {
        Ok(_) => tracing::debug!(addr = %transport_addr, "bootstrap dial started"),
        Err(err) => tracing::debug!(addr = %target, %err, "bootstrap dial could not start"),
    }
}

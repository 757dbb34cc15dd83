//! The async shell of a quinn-proto endpoint: one UDP socket, one task that receives
//! datagrams and routes them to connections, and the queue of inbound attempts.
//!
//! Locking: the endpoint's state and each connection's state have their own mutex, and no
//! code holds both at once. Datagrams for connections are collected under the endpoint lock
//! and delivered after it is released; connections forward their endpoint events the same way
//! in the other direction.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io::IoSliceMut;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::BytesMut;
use futures::channel::oneshot;
use futures::task::AtomicWaker;
use lp2p_core::RuntimeHandle;
use quinn_proto::{
    AcceptError, ClientConfig, ConnectError, ConnectionEvent, ConnectionHandle, DatagramEvent,
    EndpointConfig, ServerConfig, Transmit,
};
use quinn_udp::RecvMeta;
use smallvec::SmallVec;

use crate::config::QuicConfig;
use crate::socket::UdpSocket;
use crate::stats::Counters;

/// Receive buffers per batch (each one GRO batch of up to 64 datagrams on Linux). Eight
/// keep the receive path at a few system calls per window of data while bounding the
/// endpoint's receive memory to 8 × 64 × 1472 bytes (about 750 KiB).
pub(crate) const RECV_BUFFERS: usize = 8;

/// Batches received per wake-up of the endpoint task before it yields to the executor, so a
/// datagram flood cannot monopolise a thread (connections still get to run and send).
pub(crate) const MAX_RECV_BATCHES_PER_POLL: usize = 16;

/// Where the endpoint delivers the events of one connection (implemented by the connection
/// shell; a trait so the endpoint module does not depend on the connection module).
pub(crate) trait EventSink: Send + Sync {
    /// Hands datagrams or endpoint-issued events to the connection, all under one lock
    /// and with one wake-up of its task. `local_ip` is the address the first of them
    /// arrived at (our address on the connection's path), when the socket reports it.
    fn deliver(
        &self,
        local_ip: Option<std::net::IpAddr>,
        events: &mut dyn Iterator<Item = ConnectionEvent>,
    );
}

/// The shared part of an endpoint.
pub(crate) struct Endpoint {
    socket: UdpSocket,
    state: Mutex<EndpointState>,
    runtime: RuntimeHandle,
    counters: Arc<Counters>,
    /// Live [`EndpointHandle`]s; the task ends (and the socket closes) when none is left.
    handles: AtomicUsize,
    driver: AtomicWaker,
}

pub(crate) struct EndpointState {
    proto: quinn_proto::Endpoint,
    connections: HashMap<ConnectionHandle, Arc<dyn EventSink>>,
    incoming: VecDeque<quinn_proto::Incoming>,
    max_pending: usize,
    accept_waker: Option<Waker>,
    /// The server configuration for attempts from a loopback address (its own MTU), if any.
    loopback_server: Option<Arc<ServerConfig>>,
    /// Hole punches waiting for an inbound attempt from one address (see `punch`).
    punch_waiters: HashMap<SocketAddr, oneshot::Sender<quinn_proto::Incoming>>,
    listening: bool,
    failed: bool,
    response: Vec<u8>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("local", &self.socket.local_addr())
            .field("handles", &self.handles.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A counted reference to an endpoint: listeners, the transport's dial table and every
/// connection hold one.
pub(crate) struct EndpointHandle(Arc<Endpoint>);

impl EndpointHandle {
    fn from_arc(endpoint: Arc<Endpoint>) -> EndpointHandle {
        endpoint.handles.fetch_add(1, Ordering::AcqRel);
        EndpointHandle(endpoint)
    }

    /// A weak reference (for tables that must not keep the endpoint running).
    pub(crate) fn downgrade(&self) -> std::sync::Weak<Endpoint> {
        Arc::downgrade(&self.0)
    }

    /// The endpoint itself, without counting as a handle: what a connection keeps for its
    /// addresses and runtime once its task (which holds a real handle) has ended.
    pub(crate) fn shared(&self) -> Arc<Endpoint> {
        self.0.clone()
    }

    /// Another counted handle to this endpoint.
    pub(crate) fn counted(endpoint: &Arc<Endpoint>) -> EndpointHandle {
        EndpointHandle::from_arc(endpoint.clone())
    }

    /// A handle from a weak reference, if the endpoint still runs.
    pub(crate) fn upgrade(weak: &std::sync::Weak<Endpoint>) -> Option<EndpointHandle> {
        let endpoint = weak.upgrade()?;
        if endpoint.handles.load(Ordering::Acquire) == 0 || endpoint.lock().failed {
            return None;
        }
        Some(EndpointHandle::from_arc(endpoint))
    }
}

impl Clone for EndpointHandle {
    fn clone(&self) -> Self {
        EndpointHandle::from_arc(self.0.clone())
    }
}

impl Drop for EndpointHandle {
    fn drop(&mut self) {
        if self.0.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.driver.wake();
        }
    }
}

impl std::ops::Deref for EndpointHandle {
    type Target = Endpoint;
    fn deref(&self) -> &Endpoint {
        &self.0
    }
}

impl std::fmt::Debug for EndpointHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Converts quinn-proto's ECN codepoint to quinn-udp's.
fn udp_ecn(ecn: quinn_proto::EcnCodepoint) -> quinn_udp::EcnCodepoint {
    match ecn {
        quinn_proto::EcnCodepoint::Ect0 => quinn_udp::EcnCodepoint::Ect0,
        quinn_proto::EcnCodepoint::Ect1 => quinn_udp::EcnCodepoint::Ect1,
        quinn_proto::EcnCodepoint::Ce => quinn_udp::EcnCodepoint::Ce,
    }
}

/// Converts quinn-udp's ECN codepoint to quinn-proto's.
fn proto_ecn(ecn: quinn_udp::EcnCodepoint) -> quinn_proto::EcnCodepoint {
    match ecn {
        quinn_udp::EcnCodepoint::Ect0 => quinn_proto::EcnCodepoint::Ect0,
        quinn_udp::EcnCodepoint::Ect1 => quinn_proto::EcnCodepoint::Ect1,
        quinn_udp::EcnCodepoint::Ce => quinn_proto::EcnCodepoint::Ce,
    }
}

/// The quinn-udp view of a quinn-proto transmit whose bytes are `contents`.
pub(crate) fn udp_transmit<'a>(t: &Transmit, contents: &'a [u8]) -> quinn_udp::Transmit<'a> {
    quinn_udp::Transmit {
        destination: t.destination,
        ecn: t.ecn.map(udp_ecn),
        contents,
        segment_size: t.segment_size,
        src_ip: t.src_ip,
    }
}

impl Endpoint {
    /// Starts an endpoint on `socket` (listening when `server` is set: the configuration for
    /// any remote, and the one for loopback remotes if they have their own) and its task.
    pub(crate) fn start(
        socket: UdpSocket,
        server: Option<(Arc<ServerConfig>, Option<Arc<ServerConfig>>)>,
        config: &QuicConfig,
        runtime: &RuntimeHandle,
        counters: Arc<Counters>,
    ) -> EndpointHandle {
        let (server, loopback_server) = match server {
            Some((any, loopback)) => (Some(any), loopback),
            None => (None, None),
        };
        let listening = server.is_some();
        let max_pending = config.get_max_pending_incoming();
        let allow_mtud = !socket.may_fragment();
        let mut endpoint_config = EndpointConfig::default();
        let max_payload = config.max_udp_payload_size();
        if let Err(err) = endpoint_config.max_udp_payload_size(max_payload) {
            tracing::debug!(max_payload, %err, "keeping the default max_udp_payload_size");
        }
        // One buffer holds a GRO batch of Ethernet-sized datagrams (the kernel coalesces at
        // most 64 KiB, and 64 of these are more) or one datagram of the largest size we take.
        let buffer_len = usize::try_from(
            EndpointConfig::default()
                .get_max_udp_payload_size()
                .min(64 * 1024),
        )
        .unwrap_or(1472)
        .saturating_mul(socket.max_receive_segments().max(1))
        .max(usize::from(max_payload));
        let proto = quinn_proto::Endpoint::new(Arc::new(endpoint_config), server, allow_mtud, None);
        let endpoint = Arc::new(Endpoint {
            socket,
            state: Mutex::new(EndpointState {
                proto,
                connections: HashMap::new(),
                incoming: VecDeque::new(),
                max_pending,
                accept_waker: None,
                loopback_server,
                punch_waiters: HashMap::new(),
                listening,
                failed: false,
                response: Vec::new(),
            }),
            runtime: runtime.clone(),
            counters,
            handles: AtomicUsize::new(0),
            driver: AtomicWaker::new(),
        });
        let handle = EndpointHandle::from_arc(endpoint.clone());
        tracing::debug!(local = %endpoint.socket.local_addr(), listening, "QUIC endpoint started");
        runtime.spawn_detached(EndpointDriver {
            endpoint,
            buffers: vec![0; buffer_len.saturating_mul(RECV_BUFFERS)],
            buffer_len,
            metas: [RecvMeta::default(); RECV_BUFFERS],
            deliveries: Vec::new(),
        });
        handle
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, EndpointState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The bound socket address.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.socket.local_addr()
    }

    pub(crate) fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    pub(crate) fn runtime(&self) -> &RuntimeHandle {
        &self.runtime
    }

    pub(crate) fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Whether this endpoint accepts inbound connections.
    pub(crate) fn is_listening(&self) -> bool {
        self.lock().listening
    }

    /// Sends a response quinn-proto produced outside any connection (a refusal, a version
    /// negotiation, a stateless reset). Dropped when the socket is full: the remote retries.
    fn respond(&self, transmit: &Transmit, contents: &[u8]) {
        let contents = contents.get(..transmit.size).unwrap_or(contents);
        let _ = self.socket.send(&udp_transmit(transmit, contents));
    }

    /// Waits for the next inbound attempt; `None` once the endpoint failed.
    pub(crate) fn poll_incoming(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<quinn_proto::Incoming>> {
        let mut state = self.lock();
        if let Some(incoming) = state.incoming.pop_front() {
            return Poll::Ready(Some(incoming));
        }
        if state.failed {
            return Poll::Ready(None);
        }
        state.accept_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Stops accepting: queued attempts are refused, later ones are dropped by quinn-proto
    /// as packets for no known connection.
    pub(crate) fn stop_listening(&self) {
        let mut state = self.lock();
        state.listening = false;
        state.proto.set_server_config(None);
        state.loopback_server = None;
        let queued: Vec<_> = state.incoming.drain(..).collect();
        for incoming in queued {
            self.refuse_locked(&mut state, incoming);
            Counters::bump(&self.counters.incoming_refused);
        }
    }

    fn refuse_locked(&self, state: &mut EndpointState, incoming: quinn_proto::Incoming) {
        let EndpointState {
            proto, response, ..
        } = state;
        response.clear();
        let transmit = proto.refuse(incoming, response);
        self.respond(&transmit, response);
    }

    /// Routes the next inbound attempt from `remote` to the returned receiver instead of the
    /// listener's queue (the passive side of a hole punch).
    pub(crate) fn register_punch(
        &self,
        remote: SocketAddr,
    ) -> oneshot::Receiver<quinn_proto::Incoming> {
        let (tx, rx) = oneshot::channel();
        self.lock().punch_waiters.insert(remote, tx);
        rx
    }

    /// Forgets a hole punch's registration.
    pub(crate) fn unregister_punch(&self, remote: SocketAddr) {
        let removed = self.lock().punch_waiters.remove(&remote);
        drop(removed);
    }

    /// Sends one raw datagram from this endpoint's socket (best effort).
    pub(crate) fn send_raw(&self, remote: SocketAddr, contents: &[u8]) {
        let _ = self.socket.send(&quinn_udp::Transmit {
            destination: remote,
            ecn: None,
            contents,
            segment_size: None,
            src_ip: None,
        });
    }

    /// Refuses an attempt handed out by [`poll_incoming`](Endpoint::poll_incoming).
    pub(crate) fn refuse(&self, incoming: quinn_proto::Incoming) {
        let mut state = self.lock();
        self.refuse_locked(&mut state, incoming);
    }

    /// Accepts an inbound attempt; `make` builds the connection's shell while the endpoint
    /// is locked, so no datagram for it can arrive before it is registered.
    pub(crate) fn accept<S: EventSink + 'static>(
        &self,
        incoming: quinn_proto::Incoming,
        now: Instant,
        make: impl FnOnce(ConnectionHandle, quinn_proto::Connection) -> Arc<S>,
    ) -> Result<Arc<S>, quinn_proto::ConnectionError> {
        let mut state = self.lock();
        let EndpointState {
            proto,
            response,
            connections,
            loopback_server,
            ..
        } = &mut *state;
        response.clear();
        // None: the endpoint's own server configuration.
        let server = loopback_server
            .as_ref()
            .filter(|_| incoming.remote_address().ip().is_loopback())
            .cloned();
        match proto.accept(incoming, now, response, server) {
            Ok((handle, conn)) => {
                let shell = make(handle, conn);
                connections.insert(handle, shell.clone());
                Ok(shell)
            }
            Err(AcceptError {
                cause,
                response: reply,
            }) => {
                if let Some(reply) = reply {
                    self.respond(&reply, response);
                }
                Err(cause)
            }
        }
    }

    /// Starts an outbound connection, registered like [`accept`](Endpoint::accept)'s.
    pub(crate) fn connect<S: EventSink + 'static>(
        &self,
        now: Instant,
        config: ClientConfig,
        remote: SocketAddr,
        make: impl FnOnce(ConnectionHandle, quinn_proto::Connection) -> Arc<S>,
    ) -> Result<Arc<S>, ConnectError> {
        let mut state = self.lock();
        // No SNI is sent (the TLS configuration turns it off); rustls still wants a name.
        let (handle, conn) = state.proto.connect(now, config, remote, "l")?;
        let shell = make(handle, conn);
        state.connections.insert(handle, shell.clone());
        Ok(shell)
    }

    /// Hands endpoint events of connection `handle` to quinn-proto; returns the events for the
    /// connection that result. `drained` removes the connection from the table.
    pub(crate) fn handle_events(
        &self,
        handle: ConnectionHandle,
        events: impl Iterator<Item = quinn_proto::EndpointEvent>,
        out: &mut Vec<ConnectionEvent>,
    ) {
        let mut removed = None;
        {
            let mut state = self.lock();
            for event in events {
                let drained = event.is_drained();
                if let Some(back) = state.proto.handle_event(handle, event) {
                    out.push(back);
                }
                if drained {
                    removed = state.connections.remove(&handle);
                }
            }
        }
        // Dropped outside the lock: it may be the last reference to the connection.
        drop(removed);
    }
}

/// The endpoint's task: receives datagrams, routes them, and ends when no handle is left.
struct EndpointDriver {
    endpoint: Arc<Endpoint>,
    buffers: Vec<u8>,
    buffer_len: usize,
    metas: [RecvMeta; RECV_BUFFERS],
    deliveries: Vec<(
        Arc<dyn EventSink>,
        Option<std::net::IpAddr>,
        ConnectionEvent,
    )>,
}

impl EndpointDriver {
    /// Routes `count` received buffers.
    fn route(&mut self, count: usize) {
        let endpoint = &*self.endpoint;
        let now = endpoint.runtime.now();
        let mut state = endpoint.lock();
        let state = &mut *state;
        for (index, meta) in self.metas.iter().enumerate().take(count) {
            let start = index.saturating_mul(self.buffer_len);
            let Some(received) = self
                .buffers
                .get(start..start.saturating_add(meta.len.min(self.buffer_len)))
            else {
                continue;
            };
            let mut data = BytesMut::from(received);
            let stride = meta.stride.max(1);
            while !data.is_empty() {
                let datagram = data.split_to(stride.min(data.len()));
                state.response.clear();
                let event = state.proto.handle(
                    now,
                    meta.addr,
                    meta.dst_ip,
                    meta.ecn.map(proto_ecn),
                    datagram,
                    &mut state.response,
                );
                match event {
                    Some(DatagramEvent::ConnectionEvent(handle, event)) => {
                        if let Some(conn) = state.connections.get(&handle) {
                            self.deliveries.push((conn.clone(), meta.dst_ip, event));
                        }
                    }
                    Some(DatagramEvent::NewConnection(incoming)) => {
                        let incoming = match state.punch_waiters.remove(&meta.addr) {
                            Some(waiter) => match waiter.send(incoming) {
                                Ok(()) => continue,
                                // The punch gave up: treat it as any other attempt.
                                Err(incoming) => incoming,
                            },
                            None => incoming,
                        };
                        if state.listening && state.incoming.len() < state.max_pending {
                            state.incoming.push_back(incoming);
                            if let Some(waker) = state.accept_waker.take() {
                                waker.wake();
                            }
                        } else {
                            tracing::debug!(
                                remote = %meta.addr,
                                pending = state.incoming.len(),
                                "refusing an inbound QUIC connection: too many pending"
                            );
                            endpoint.refuse_locked(state, incoming);
                            Counters::bump(&endpoint.counters.incoming_refused);
                        }
                    }
                    Some(DatagramEvent::Response(transmit)) => {
                        endpoint.respond(&transmit, &state.response);
                    }
                    None => {}
                }
            }
        }
    }

    /// Hands the routed events to their connections, one call per run of events for the
    /// same connection (usually the whole batch: one lock and one wake-up, not one per
    /// datagram).
    fn deliver(&mut self) {
        let mut events = self.deliveries.drain(..).peekable();
        while let Some((conn, local_ip, first)) = events.next() {
            let mut run = std::iter::once(first).chain(std::iter::from_fn(|| {
                events
                    .next_if(|(next, _, _)| Arc::ptr_eq(next, &conn))
                    .map(|(_, _, event)| event)
            }));
            conn.deliver(local_ip, &mut run);
        }
    }

    fn shut_down(&mut self) {
        let endpoint = &*self.endpoint;
        let mut state = endpoint.lock();
        let queued: Vec<_> = state.incoming.drain(..).collect();
        for incoming in queued {
            endpoint.refuse_locked(&mut state, incoming);
            Counters::bump(&endpoint.counters.incoming_refused);
        }
        if let Some(waker) = state.accept_waker.take() {
            waker.wake();
        }
        tracing::debug!(local = %endpoint.socket.local_addr(), "QUIC endpoint closed");
    }
}

impl Future for EndpointDriver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        this.endpoint.driver.register(cx.waker());
        for _ in 0..MAX_RECV_BATCHES_PER_POLL {
            if this.endpoint.handles.load(Ordering::Acquire) == 0 {
                this.shut_down();
                return Poll::Ready(());
            }
            let mut iovs: SmallVec<[IoSliceMut<'_>; RECV_BUFFERS]> = this
                .buffers
                .chunks_mut(this.buffer_len.max(1))
                .map(IoSliceMut::new)
                .collect();
            let received = this
                .endpoint
                .socket
                .poll_recv(cx, &mut iovs, &mut this.metas);
            drop(iovs);
            match received {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(count)) => {
                    this.route(count);
                    this.deliver();
                }
                Poll::Ready(Err(err)) => {
                    tracing::warn!(
                        local = %this.endpoint.socket.local_addr(),
                        %err,
                        "the QUIC endpoint's socket failed; closing the endpoint"
                    );
                    this.endpoint.lock().failed = true;
                    this.shut_down();
                    return Poll::Ready(());
                }
            }
        }
        // More may be waiting; let other tasks run first.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

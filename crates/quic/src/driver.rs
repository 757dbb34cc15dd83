//! One quinn-proto connection's state behind a mutex, the handles that keep it open, and the
//! task that drives it (timers, sending, events). [`QuicConnection`](crate::QuicConnection)
//! and [`QuicStream`](crate::QuicStream) are views on it.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use futures::future::BoxFuture;
use lp2p_core::RuntimeHandle;
use quinn_proto::{
    ConnectionError, ConnectionEvent, ConnectionHandle, Dir, Event, StreamEvent, StreamId,
    Transmit, VarInt,
};

use crate::credit::StreamCredit;
use crate::endpoint::{Endpoint, EndpointHandle, EventSink, udp_transmit};
use crate::stats::Counters;
use crate::window::{Growth, WindowGrowth};

/// Datagrams per send call (GSO batch), at most. quinn's value: larger batches gain little
/// and delay the acknowledgements and timers handled between sends.
pub(crate) const MAX_TRANSMIT_SEGMENTS: usize = 10;

/// Bytes of one GSO send, at most: the kernel takes the batch as one UDP datagram, whose
/// payload IPv4 caps at 65 507 bytes, and refuses a larger one (after which quinn-udp turns
/// GSO off for the socket). Binds when packets are large (loopback, see
/// [`DEFAULT_LOOPBACK_MTU`](crate::DEFAULT_LOOPBACK_MTU)).
pub(crate) const MAX_TRANSMIT_BYTES: usize = 65_000;

/// Datagrams sent per wake-up of a connection task before it yields, so one busy connection
/// cannot hold a thread: the others (and this one's receive path) get their turn.
pub(crate) const MAX_TRANSMIT_DATAGRAMS_PER_POLL: usize = 40;

/// The application close code of an orderly close (libp2p defines no other for QUIC
/// connections; a refused or failed upgrade closes with [`CLOSE_REFUSED`]).
pub const CLOSE_NORMAL: u32 = 0;

/// The application close code when the local node refuses an authenticated peer (the
/// swarm's limits or gates) or the upgrade fails after the handshake.
pub const CLOSE_REFUSED: u32 = 1;

/// The application error code of a stream reset (`RESET_STREAM` and `STOP_SENDING`).
pub const STREAM_RESET: u32 = 0;

/// The mutable part of a connection, behind [`ConnShared`]'s mutex.
pub(crate) struct ConnState {
    pub(crate) conn: quinn_proto::Connection,
    driver: Option<Waker>,
    pub(crate) blocked_readers: HashMap<StreamId, Waker>,
    pub(crate) blocked_writers: HashMap<StreamId, Waker>,
    accept_wakers: Vec<Waker>,
    open_wakers: Vec<Waker>,
    handshake_waker: Option<Waker>,
    close_wakers: Vec<Waker>,
    connected: bool,
    /// Why the connection ended, once it did.
    pub(crate) error: Option<ConnectionError>,
    /// The CONNECTION_CLOSE went out (or the connection is gone): `close()` may return.
    close_done: bool,
    /// Handles that keep the connection open: the `QuicConnection`, streams, the handshake.
    refs: usize,
    /// Live stream handles (`num_streams`).
    pub(crate) streams: usize,
    /// The receive window's growth and the memory reserved for it (returned on drop), from
    /// when the remote is authenticated.
    growth: Option<WindowGrowth>,
    /// A growth of the window was refused for memory at least once (counted once).
    growth_refused: bool,
    /// The remote's stream limit and how it grows, from when the remote is authenticated.
    stream_credit: Option<StreamCredit>,
}

impl ConnState {
    /// Wakes the connection task: there is something to send or a state change to act on.
    pub(crate) fn wake_driver(&mut self) {
        if let Some(waker) = self.driver.take() {
            waker.wake();
        }
    }

    /// From now on the receive window grows as `growth` decides (the remote is known).
    pub(crate) fn start_window_growth(&mut self, growth: WindowGrowth) {
        self.growth = Some(growth);
    }

    /// From now on the remote's stream limit grows with its use, up to `max` (credit.rs).
    pub(crate) fn start_stream_credit(&mut self, max: u32) {
        self.stream_credit = Some(StreamCredit::new(max));
        // The remote may have opened streams during the handshake already.
        if self.grow_stream_credit() {
            self.wake_driver();
        }
    }

    /// Raises the remote's stream limit when it holds half of it open (quinn-proto sends
    /// the `MAX_STREAMS` frame); true when it did.
    fn grow_stream_credit(&mut self) -> bool {
        let Some(credit) = self.stream_credit.as_mut() else {
            return false;
        };
        let open = self.conn.streams().remote_open_streams(Dir::Bi);
        let Some(limit) = credit.on_open_streams(open) else {
            return false;
        };
        tracing::trace!(remote = %self.conn.remote_address(), limit, "QUIC stream limit raised");
        self.conn
            .set_max_concurrent_streams(Dir::Bi, VarInt::from_u32(limit));
        true
    }

    /// The memory reserved for this connection's receive window growth.
    pub(crate) fn reserved_memory(&self) -> usize {
        self.growth.as_ref().map_or(0, WindowGrowth::reserved)
    }

    /// The connection receive window (the initial one until the remote is authenticated).
    pub(crate) fn receive_window(&self) -> Option<u32> {
        self.growth.as_ref().map(WindowGrowth::window)
    }

    /// Closes the connection with `code` (idempotent).
    fn close(&mut self, now: Instant, code: u32, reason: &'static [u8]) {
        if self.error.is_none() {
            self.conn
                .close(now, VarInt::from_u32(code), Bytes::from_static(reason));
            self.error = Some(ConnectionError::LocallyClosed);
            self.wake_all();
        }
        self.wake_driver();
    }

    fn wake_all(&mut self) {
        for (_, waker) in self.blocked_readers.drain() {
            waker.wake();
        }
        for (_, waker) in self.blocked_writers.drain() {
            waker.wake();
        }
        for waker in self.accept_wakers.drain(..) {
            waker.wake();
        }
        for waker in self.open_wakers.drain(..) {
            waker.wake();
        }
        if let Some(waker) = self.handshake_waker.take() {
            waker.wake();
        }
    }

    fn wake_close_waiters(&mut self) {
        self.close_done = true;
        for waker in self.close_wakers.drain(..) {
            waker.wake();
        }
    }
}

/// One connection, shared by its task, its handles and the endpoint.
pub(crate) struct ConnShared {
    state: Mutex<ConnState>,
    /// Not a counted handle: the connection's task holds one while it runs, so a drained
    /// connection that the application still references does not keep the socket open.
    endpoint: Arc<Endpoint>,
    handle: ConnectionHandle,
    remote: SocketAddr,
    /// Where the remote's datagrams arrive, from the first one (quinn-proto knows it only
    /// for inbound connections).
    local_ip: OnceLock<IpAddr>,
}

impl EventSink for ConnShared {
    fn deliver(&self, local_ip: Option<IpAddr>, events: &mut dyn Iterator<Item = ConnectionEvent>) {
        if let Some(ip) = local_ip
            && self.local_ip.get().is_none()
        {
            // Only the endpoint's task delivers, so nothing else sets it meanwhile.
            let _ = self.local_ip.set(ip);
        }
        let mut state = self.lock();
        for event in events {
            state.conn.handle_event(event);
        }
        state.wake_driver();
    }
}

impl ConnShared {
    pub(crate) fn new(
        endpoint: &EndpointHandle,
        handle: ConnectionHandle,
        conn: quinn_proto::Connection,
    ) -> Arc<ConnShared> {
        let remote = conn.remote_address();
        Arc::new(ConnShared {
            state: Mutex::new(ConnState {
                conn,
                driver: None,
                blocked_readers: HashMap::new(),
                blocked_writers: HashMap::new(),
                accept_wakers: Vec::new(),
                open_wakers: Vec::new(),
                handshake_waker: None,
                close_wakers: Vec::new(),
                connected: false,
                error: None,
                close_done: false,
                refs: 0,
                streams: 0,
                growth: None,
                growth_refused: false,
                stream_credit: None,
            }),
            endpoint: endpoint.shared(),
            handle,
            remote,
            local_ip: OnceLock::new(),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, ConnState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn runtime(&self) -> &RuntimeHandle {
        self.endpoint.runtime()
    }

    /// The remote's address.
    pub(crate) fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// Our address on this connection: the bound address, or when the socket is bound to an
    /// unspecified address, the address the remote's datagrams arrive at, or before any
    /// arrived, the one the system routes to the remote from.
    pub(crate) fn local(&self) -> SocketAddr {
        let bound = self.endpoint.local_addr();
        if !bound.ip().is_unspecified() {
            return bound;
        }
        let ip = self
            .lock()
            .conn
            .local_ip()
            .or_else(|| self.local_ip.get().copied())
            .or_else(|| route_source(bound, self.remote));
        ip.map_or(bound, |ip| SocketAddr::new(ip, bound.port()))
    }

    /// Spawns the connection's task and returns the first handle.
    pub(crate) fn start(self: &Arc<ConnShared>) -> ConnRef {
        let driver = Driver {
            endpoint: EndpointHandle::counted(&self.endpoint),
            shared: self.clone(),
            timer: None,
            queued: VecDeque::new(),
            spare: Vec::new(),
            writable: None,
            endpoint_events: Vec::new(),
            back: Vec::new(),
        };
        self.runtime().spawn_detached(driver);
        ConnRef::new(self.clone())
    }

    /// The remote's certificate chain once the handshake is done.
    pub(crate) fn peer_certificates(
        &self,
    ) -> Option<Vec<rustls::pki_types::CertificateDer<'static>>> {
        let identity = self.lock().conn.crypto_session().peer_identity()?;
        identity
            .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
            .ok()
            .map(|certs| *certs)
    }
}

/// The source address the system would use to reach `remote`: a connected (never used)
/// UDP socket's local address. No packet is sent.
fn route_source(bound: SocketAddr, remote: SocketAddr) -> Option<std::net::IpAddr> {
    let any = SocketAddr::new(bound.ip(), 0);
    let probe = std::net::UdpSocket::bind(any).ok()?;
    probe.connect(remote).ok()?;
    Some(probe.local_addr().ok()?.ip())
}

/// A handle that keeps the connection open; when the last one is dropped the connection
/// closes with [`CLOSE_NORMAL`] (dropping every handle is how quinn closes too).
pub(crate) struct ConnRef(Arc<ConnShared>);

impl ConnRef {
    fn new(shared: Arc<ConnShared>) -> ConnRef {
        {
            let mut state = shared.lock();
            state.refs = state.refs.saturating_add(1);
        }
        ConnRef(shared)
    }

    pub(crate) fn shared(&self) -> &Arc<ConnShared> {
        &self.0
    }

    /// Closes the connection now with `code`.
    pub(crate) fn close(&self, code: u32, reason: &'static [u8]) {
        let now = self.0.runtime().now();
        self.0.lock().close(now, code, reason);
    }

    /// Completes once the handshake is done, or fails with why it did not.
    pub(crate) fn poll_handshake(&self, cx: &mut Context<'_>) -> Poll<Result<(), ConnectionError>> {
        let mut state = self.0.lock();
        if state.connected {
            return Poll::Ready(Ok(()));
        }
        if let Some(err) = &state.error {
            return Poll::Ready(Err(err.clone()));
        }
        state.handshake_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Opens a bidirectional stream, waiting for the remote's stream credit.
    pub(crate) fn poll_open(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamId, ConnectionError>> {
        let mut state = self.0.lock();
        if let Some(err) = &state.error {
            return Poll::Ready(Err(err.clone()));
        }
        if let Some(id) = state.conn.streams().open(Dir::Bi) {
            state.streams = state.streams.saturating_add(1);
            Poll::Ready(Ok(id))
        } else {
            // The remote's stream limit is reached: QUIC flow control, wait for credit.
            state.open_wakers.push(cx.waker().clone());
            Poll::Pending
        }
    }

    /// Accepts the remote's next bidirectional stream.
    pub(crate) fn poll_accept(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamId, ConnectionError>> {
        let mut state = self.0.lock();
        if let Some(id) = state.conn.streams().accept(Dir::Bi) {
            state.streams = state.streams.saturating_add(1);
            // Accepting frees credit the remote may be waiting for.
            state.wake_driver();
            return Poll::Ready(Ok(id));
        }
        if let Some(err) = &state.error {
            return Poll::Ready(Err(err.clone()));
        }
        state.accept_wakers.push(cx.waker().clone());
        Poll::Pending
    }

    /// Completes once the CONNECTION_CLOSE went out (or the connection is gone).
    pub(crate) fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.0.lock();
        if state.close_done {
            return Poll::Ready(());
        }
        state.close_wakers.push(cx.waker().clone());
        Poll::Pending
    }

    /// Whether the connection ended.
    pub(crate) fn is_closed(&self) -> bool {
        let state = self.0.lock();
        state.error.is_some() || state.conn.is_closed()
    }
}

impl Clone for ConnRef {
    fn clone(&self) -> Self {
        ConnRef::new(self.0.clone())
    }
}

impl Drop for ConnRef {
    fn drop(&mut self) {
        let now = self.0.runtime().now();
        let mut state = self.0.lock();
        state.refs = state.refs.saturating_sub(1);
        if state.refs == 0 {
            state.close(now, CLOSE_NORMAL, b"");
        }
    }
}

/// The error of a stream or connection operation once the connection is gone.
pub(crate) fn connection_io_error(err: &ConnectionError) -> std::io::Error {
    let kind = match err {
        ConnectionError::LocallyClosed => std::io::ErrorKind::NotConnected,
        ConnectionError::TimedOut => std::io::ErrorKind::TimedOut,
        ConnectionError::Reset => std::io::ErrorKind::ConnectionReset,
        _ => std::io::ErrorKind::ConnectionAborted,
    };
    std::io::Error::new(kind, err.clone())
}

/// The task of one connection.
struct Driver {
    /// Keeps the endpoint (its socket) running while the connection runs.
    endpoint: EndpointHandle,
    shared: Arc<ConnShared>,
    timer: Option<(Instant, BoxFuture<'static, ()>)>,
    /// Transmits quinn-proto produced under the connection's lock, sent once it is released
    /// (a send is a system call that, on loopback, delivers the datagrams to the receiver
    /// before it returns: holding the lock meanwhile would block the stream handles and the
    /// endpoint's deliveries). In order; the front one may be waiting for the socket.
    queued: VecDeque<(Transmit, Vec<u8>)>,
    /// Buffers of sent transmits, for reuse.
    spare: Vec<Vec<u8>>,
    writable: Option<Pin<Box<async_io::WritableOwned<std::net::UdpSocket>>>>,
    endpoint_events: Vec<quinn_proto::EndpointEvent>,
    back: Vec<ConnectionEvent>,
}

impl Driver {
    /// Takes what quinn-proto has to send into the queue, up to
    /// [`MAX_TRANSMIT_DATAGRAMS_PER_POLL`] datagrams; true when it stopped at that cap with
    /// more to send.
    fn fill(&mut self, state: &mut ConnState, now: Instant) -> bool {
        let mtu = usize::from(state.conn.current_mtu());
        let max_segments = self
            .endpoint
            .socket()
            .max_transmit_segments()
            .clamp(1, MAX_TRANSMIT_SEGMENTS)
            .min(MAX_TRANSMIT_BYTES.checked_div(mtu).unwrap_or(1))
            .max(1);
        let mut taken = 0usize;
        while taken < MAX_TRANSMIT_DATAGRAMS_PER_POLL {
            let mut buf = self.spare.pop().unwrap_or_default();
            buf.clear();
            let Some(transmit) = state.conn.poll_transmit(now, max_segments, &mut buf) else {
                self.spare.push(buf);
                return false;
            };
            let datagrams = match transmit.segment_size {
                Some(size) if size > 0 => transmit.size.div_ceil(size),
                _ => 1,
            };
            taken = taken.saturating_add(datagrams);
            self.queued.push_back((transmit, buf));
        }
        true
    }

    /// Sends the queued transmits, without the connection's lock; false when the socket is
    /// full (the task is woken when it takes sends again).
    fn flush(&mut self, cx: &mut Context<'_>) -> bool {
        while let Some((transmit, buf)) = self.queued.front() {
            if let Some(writable) = &mut self.writable {
                if writable.as_mut().poll(cx).is_pending() {
                    return false;
                }
                self.writable = None;
            }
            let socket = self.endpoint.socket();
            let contents = buf.get(..transmit.size).unwrap_or(buf);
            if socket.send(&udp_transmit(transmit, contents)).is_err() {
                // Would block: wait for the socket, then retry this transmit.
                self.writable = Some(Box::pin(socket.writable()));
                continue;
            }
            if let Some((_, buf)) = self.queued.pop_front() {
                self.spare.push(buf);
            }
        }
        true
    }

    /// Grows the receive window when the traffic so far asks for it and the memory budget
    /// grants it (window.rs); quinn-proto then announces it with `MAX_DATA`.
    fn grow_window(&self, state: &mut ConnState, now: Instant) {
        if state.growth.as_ref().is_none_or(WindowGrowth::is_full) {
            return;
        }
        let stats = state.conn.stats();
        let Some(growth) = state.growth.as_mut() else {
            return;
        };
        match growth.on_progress(now, stats.udp_rx.bytes, stats.path.rtt) {
            Growth::Unchanged => {}
            Growth::Grown(window) => {
                tracing::trace!(remote = %self.shared.remote, window, "QUIC receive window grown");
                state.conn.set_receive_window(VarInt::from_u32(window));
            }
            Growth::Refused(denied) => {
                tracing::debug!(remote = %self.shared.remote, window = growth.window(), %denied, "QUIC receive window not grown: memory refused");
                if !state.growth_refused {
                    state.growth_refused = true;
                    Counters::bump(&self.endpoint.counters().window_growth_refused);
                }
            }
        }
    }

    /// Acts on quinn-proto's application events: wakes whoever waits for them.
    fn process_events(&self, state: &mut ConnState) {
        while let Some(event) = state.conn.poll() {
            match event {
                Event::Connected => {
                    state.connected = true;
                    if let Some(waker) = state.handshake_waker.take() {
                        waker.wake();
                    }
                }
                Event::ConnectionLost { reason } => {
                    let orderly = match &reason {
                        ConnectionError::ApplicationClosed(_) | ConnectionError::LocallyClosed => {
                            true
                        }
                        ConnectionError::ConnectionClosed(close) => {
                            close.error_code == quinn_proto::TransportErrorCode::NO_ERROR
                        }
                        _ => false,
                    };
                    if orderly {
                        tracing::debug!(remote = %self.shared.remote, %reason, "QUIC connection closed");
                    } else {
                        tracing::debug!(remote = %self.shared.remote, %reason, "QUIC connection failed");
                        if state.connected {
                            Counters::bump(&self.endpoint.counters().connections_failed);
                        }
                    }
                    if state.error.is_none() {
                        state.error = Some(reason);
                    }
                    state.wake_all();
                }
                Event::Stream(StreamEvent::Opened { dir: Dir::Bi }) => {
                    for waker in state.accept_wakers.drain(..) {
                        waker.wake();
                    }
                }
                Event::Stream(StreamEvent::Available { dir: Dir::Bi }) => {
                    for waker in state.open_wakers.drain(..) {
                        waker.wake();
                    }
                }
                Event::Stream(StreamEvent::Readable { id }) => {
                    if let Some(waker) = state.blocked_readers.remove(&id) {
                        waker.wake();
                    }
                }
                Event::Stream(StreamEvent::Writable { id } | StreamEvent::Stopped { id, .. }) => {
                    if let Some(waker) = state.blocked_writers.remove(&id) {
                        waker.wake();
                    }
                }
                Event::HandshakeDataReady
                | Event::Stream(_)
                | Event::DatagramReceived
                | Event::DatagramsUnblocked => {}
            }
        }
    }

    /// Hands the connection's pending endpoint events to the endpoint and its answers back
    /// to the connection. The connection's lock is released meanwhile (the endpoint's lock is
    /// never taken under it), so the guard comes back anew.
    fn settle_endpoint_events<'a>(
        &mut self,
        shared: &'a ConnShared,
        mut state: MutexGuard<'a, ConnState>,
    ) -> MutexGuard<'a, ConnState> {
        while let Some(event) = state.conn.poll_endpoint_events() {
            self.endpoint_events.push(event);
        }
        if self.endpoint_events.is_empty() {
            return state;
        }
        drop(state);
        self.endpoint.handle_events(
            shared.handle,
            self.endpoint_events.drain(..),
            &mut self.back,
        );
        let mut state = shared.lock();
        for event in self.back.drain(..) {
            state.conn.handle_event(event);
        }
        state
    }

    /// Arms the timer for quinn-proto's next deadline; true when it fired (the deadline
    /// passed, or an earlier timer fired and the deadline must be looked at again).
    ///
    /// A timer that is armed no later than the deadline is kept: quinn-proto moves its
    /// deadline with nearly every packet (the idle timeout, the loss timer, the ACK delay),
    /// and each new async-io timer interrupts the reactor thread with a system call
    /// (`Reactor::insert_timer` notifies the poller). An early timer costs one extra wake-up
    /// when it fires, which re-arms for the real deadline; see D60.
    fn poll_timer(&mut self, deadline: Option<Instant>, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = deadline else {
            // Dropping a timer posts its removal without interrupting the reactor.
            self.timer = None;
            return false;
        };
        match &self.timer {
            Some((at, _)) if *at <= deadline => {}
            _ => {
                self.timer = Some((deadline, self.shared.runtime().sleep_until(deadline)));
                Counters::bump(&self.endpoint.counters().timers_armed);
            }
        }
        let fired = match &mut self.timer {
            Some((_, sleep)) => sleep.as_mut().poll(cx).is_ready(),
            None => false,
        };
        if fired {
            self.timer = None;
        }
        fired
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let shared = this.shared.clone();
        loop {
            let blocked = !this.flush(cx);
            let now = shared.runtime().now();
            let mut state = shared.lock();
            match &state.driver {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => state.driver = Some(cx.waker().clone()),
            }
            if state.conn.poll_timeout().is_some_and(|t| t <= now) {
                state.conn.handle_timeout(now);
            }
            this.grow_window(&mut state, now);
            // The endpoint answers some events with frames to send: a handshake that just
            // completed asks for connection IDs (NEW_CONNECTION_ID), a retired one for a
            // replacement. Settled before the datagrams are built, those frames ride in the
            // same datagram as the handshake flight or the ACK that is due, often in its
            // padding, instead of a datagram of their own right after (D71).
            state = this.settle_endpoint_events(&shared, state);
            // While the socket is full, quinn-proto keeps what it has to send.
            let more_to_send = !blocked && this.fill(&mut state, now);
            this.process_events(&mut state);
            // A raised limit is a MAX_STREAMS frame to send: poll again.
            let more_to_send = state.grow_stream_credit() || more_to_send;
            while let Some(event) = state.conn.poll_endpoint_events() {
                this.endpoint_events.push(event);
            }
            let closed = state.conn.is_closed();
            let drained = state.conn.is_drained();
            let deadline = state.conn.poll_timeout();
            drop(state);

            let blocked = !this.flush(cx);
            if closed && !blocked && !more_to_send {
                // The CONNECTION_CLOSE went out.
                shared.lock().wake_close_waiters();
            }
            if !this.endpoint_events.is_empty() {
                // Raised while building datagrams (a drained connection, a CID to retire):
                // settled at the top of the next round, with the endpoint's answers sent.
                continue;
            }
            if drained {
                let mut state = shared.lock();
                if state.error.is_none() {
                    state.error = Some(ConnectionError::LocallyClosed);
                }
                state.wake_all();
                state.wake_close_waiters();
                tracing::trace!(remote = %shared.remote, "QUIC connection drained");
                return Poll::Ready(());
            }
            if this.poll_timer(deadline, cx) {
                continue;
            }
            if more_to_send {
                cx.waker().wake_by_ref();
            }
            return Poll::Pending;
        }
    }
}

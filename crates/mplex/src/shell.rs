//! The async shell: one task per connection moves bytes between the socket and the
//! [`Session`]; stream handles act on the session under a mutex and sleep on wakers.
//!
//! Writers append frames to the session's send buffer; the connection task swaps that
//! buffer out whole and writes it to the socket, so frames from many streams coalesce into
//! few socket writes, and the socket is written outside the lock (an encrypting connection
//! may take a while per write). Reads go the other way: the task reads up to
//! [`READ_BUFFER_SIZE`] bytes, feeds them to the session under the lock, and wakes the
//! readers the session names.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::io::{AsyncRead, AsyncWrite};
use lp2p_core::{MuxedConnection, MuxerUpgrader, Role, RuntimeHandle, SecureConnection};
use tracing::Instrument;

use crate::config::{MplexConfig, PROTOCOL_ID};
use crate::error::MplexError;
use crate::session::{Event, Session, StreamId};

/// Bytes read from the socket per read call: 64 KiB, a whole default frame, and what one
/// TCP read typically returns on a busy connection. Allocated once per connection.
pub const READ_BUFFER_SIZE: usize = 64 * 1024;

/// Steps the connection task takes per poll before it yields to the executor, so one busy
/// connection cannot starve other tasks on the same thread.
const IO_BUDGET: usize = 32;

/// The mplex stream muxer (`/mplex/6.7.0`): upgrades a secure connection into a
/// [`MuxedConnection`].
#[derive(Debug, Clone, Default)]
pub struct Mplex {
    config: MplexConfig,
}

impl Mplex {
    /// An upgrader with the given configuration.
    pub fn new(config: MplexConfig) -> Mplex {
        Mplex { config }
    }

    /// The configuration.
    pub fn config(&self) -> &MplexConfig {
        &self.config
    }
}

impl MuxerUpgrader for Mplex {
    fn protocol_id(&self) -> &'static str {
        PROTOCOL_ID
    }

    fn upgrade(
        &self,
        conn: SecureConnection,
        role: Role,
        runtime: &RuntimeHandle,
    ) -> Arc<dyn MuxedConnection> {
        let span = tracing::debug_span!("mplex", peer = %conn.remote_peer(), %role);
        Arc::new(MplexConnection::start(
            conn,
            role,
            self.config.clone(),
            runtime,
            span,
        ))
    }
}

#[derive(Debug, Default)]
struct StreamWakers {
    read: Option<Waker>,
    write: Option<Waker>,
    /// Listed in `Inner::blocked_writers`.
    write_blocked: bool,
    /// In `Inner::accept_queue`, not yet handed to the application.
    queued: bool,
}

/// Everything the connection task and the handles share.
#[derive(Debug)]
struct Inner {
    session: Session,
    /// Streams the application holds (or will get from `accept`).
    wakers: HashMap<StreamId, StreamWakers>,
    accept_queue: VecDeque<StreamId>,
    accept_wakers: Vec<Waker>,
    /// Streams whose writer waits for room in the send buffer.
    blocked_writers: Vec<StreamId>,
    io_waker: Option<Waker>,
    /// Live `MplexConnection` and `MplexStream` handles; the connection closes at zero.
    handles: usize,
    /// Closed locally (by `close` or by dropping every handle).
    close_requested: bool,
    task_finished: bool,
    close_wakers: Vec<Waker>,
}

impl Inner {
    fn wake_io(&self) {
        if let Some(waker) = &self.io_waker {
            waker.wake_by_ref();
        }
    }

    /// Collects the wakers of every stream, acceptor and closer: after the connection ends
    /// they all have an error (or EOF) to see.
    fn take_all_wakers(&mut self, out: &mut Vec<Waker>) {
        for wakers in self.wakers.values_mut() {
            out.extend(wakers.read.take());
            out.extend(wakers.write.take());
            wakers.write_blocked = false;
        }
        self.blocked_writers.clear();
        out.append(&mut self.accept_wakers);
    }

    /// Turns session events into wakers to wake.
    fn dispatch_events(&mut self, out: &mut Vec<Waker>) {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::StreamOpened(id) => {
                    self.wakers.insert(
                        id,
                        StreamWakers {
                            queued: true,
                            ..StreamWakers::default()
                        },
                    );
                    self.accept_queue.push_back(id);
                    out.append(&mut self.accept_wakers);
                }
                Event::Readable(id) => {
                    if let Some(wakers) = self.wakers.get_mut(&id) {
                        out.extend(wakers.read.take());
                    }
                }
                Event::StreamReset(id) => {
                    let Some(wakers) = self.wakers.get_mut(&id) else {
                        continue;
                    };
                    if wakers.queued {
                        // Reset before anyone accepted it: nobody will want it. Forgetting it
                        // here keeps a peer that opens and resets streams in a loop from
                        // growing the queue (reset streams no longer count toward the limit).
                        self.accept_queue.retain(|queued| *queued != id);
                        self.wakers.remove(&id);
                        self.session.release_stream(id);
                    } else {
                        out.extend(wakers.read.take());
                        out.extend(wakers.write.take());
                    }
                }
            }
        }
    }

    /// Room opened in the send buffer: wake every writer that waited for it.
    fn take_blocked_writers(&mut self, out: &mut Vec<Waker>) {
        for id in self.blocked_writers.drain(..) {
            if let Some(wakers) = self.wakers.get_mut(&id) {
                wakers.write_blocked = false;
                out.extend(wakers.write.take());
            }
        }
    }

    /// One handle fewer; at zero the connection closes.
    fn drop_handle(&mut self) {
        self.handles = self.handles.saturating_sub(1);
        if self.handles == 0 && !self.close_requested {
            tracing::debug!("last handle dropped; closing the connection");
            self.request_close();
        }
    }

    fn request_close(&mut self) {
        self.close_requested = true;
        self.session.close();
        self.wake_io();
    }
}

#[derive(Debug)]
struct Shared {
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the session consistent enough to close.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn wake_all(wakers: &mut Vec<Waker>) {
    for waker in wakers.drain(..) {
        waker.wake();
    }
}

/// A live mplex connection: open and accept streams. Cheap to share behind an `Arc`.
///
/// The connection closes when [`close`](MuxedConnection::close) is called, when the remote
/// closes it or breaks the protocol, or when this handle and every stream are dropped.
#[derive(Debug)]
pub struct MplexConnection {
    shared: Arc<Shared>,
}

impl MplexConnection {
    /// Runs mplex over any byte stream: spawns the connection task on `runtime`.
    /// `role` decides how streams are numbered (use [`Role::Initiator`] on the dialing side).
    pub fn new<C>(io: C, role: Role, config: MplexConfig, runtime: &RuntimeHandle) -> Self
    where
        C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let span = tracing::debug_span!("mplex", %role);
        Self::start(io, role, config, runtime, span)
    }

    fn start<C>(
        io: C,
        role: Role,
        config: MplexConfig,
        runtime: &RuntimeHandle,
        span: tracing::Span,
    ) -> Self
    where
        C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let close_timeout = config.close_timeout();
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                session: Session::new(role, config),
                wakers: HashMap::new(),
                accept_queue: VecDeque::new(),
                accept_wakers: Vec::new(),
                blocked_writers: Vec::new(),
                io_waker: None,
                handles: 1,
                close_requested: false,
                task_finished: false,
                close_wakers: Vec::new(),
            }),
        });
        let task = ConnectionTask {
            io,
            shared: shared.clone(),
            read_buf: vec![0u8; READ_BUFFER_SIZE].into_boxed_slice(),
            read_start: 0,
            read_end: 0,
            read_eof: false,
            write_buf: Vec::new(),
            write_pos: 0,
            needs_flush: false,
            to_wake: Vec::new(),
            close_deadline: None,
            close_timeout,
            stall_timer: None,
            runtime: runtime.clone(),
        };
        drop(runtime.spawn(task.instrument(span)));
        MplexConnection { shared }
    }

    /// Opens a stream (the typed form of [`MuxedConnection::open_stream`]).
    pub fn open(&self) -> Result<MplexStream, MplexError> {
        let mut inner = self.shared.lock();
        let had_output = inner.session.has_transmit();
        let id = inner.session.open_stream()?;
        inner.wakers.insert(id, StreamWakers::default());
        inner.handles = inner.handles.saturating_add(1);
        if !had_output {
            inner.wake_io();
        }
        Ok(MplexStream {
            shared: self.shared.clone(),
            id,
        })
    }

    /// Waits for the next stream the remote opens (the typed form of
    /// [`MuxedConnection::accept_stream`]).
    pub async fn accept(&self) -> Result<MplexStream, MplexError> {
        futures::future::poll_fn(|cx| self.poll_accept(cx)).await
    }

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<Result<MplexStream, MplexError>> {
        let mut inner = self.shared.lock();
        if inner.close_requested {
            return Poll::Ready(Err(MplexError::ConnectionClosed));
        }
        if let Some(id) = inner.accept_queue.pop_front() {
            if let Some(wakers) = inner.wakers.get_mut(&id) {
                wakers.queued = false;
            }
            inner.handles = inner.handles.saturating_add(1);
            return Poll::Ready(Ok(MplexStream {
                shared: self.shared.clone(),
                id,
            }));
        }
        if inner.session.is_closed() {
            return Poll::Ready(Err(MplexError::ConnectionClosed));
        }
        if !inner.accept_wakers.iter().any(|w| w.will_wake(cx.waker())) {
            inner.accept_wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Closes the connection and waits until its task has finished (queued frames are
    /// flushed first, for at most the configured close timeout).
    pub async fn shutdown(&self) {
        let mut woken = Vec::new();
        {
            let mut inner = self.shared.lock();
            if !inner.close_requested {
                inner.request_close();
                inner.take_all_wakers(&mut woken);
            }
        }
        wake_all(&mut woken);
        futures::future::poll_fn(|cx| {
            let mut inner = self.shared.lock();
            if inner.task_finished {
                return Poll::Ready(());
            }
            if !inner.close_wakers.iter().any(|w| w.will_wake(cx.waker())) {
                inner.close_wakers.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await;
    }

    /// Whether the connection is closed.
    pub fn closed(&self) -> bool {
        let inner = self.shared.lock();
        inner.close_requested || inner.session.is_closed()
    }

    /// Inbound streams waiting for [`accept`](MplexConnection::accept).
    pub fn pending_inbound(&self) -> usize {
        self.shared.lock().accept_queue.len()
    }

    /// Open streams in either direction.
    pub fn stream_count(&self) -> usize {
        self.shared.lock().session.num_streams()
    }

    /// What the session dropped or refused so far.
    pub fn stats(&self) -> crate::Stats {
        self.shared.lock().session.stats().clone()
    }
}

impl Drop for MplexConnection {
    fn drop(&mut self) {
        self.shared.lock().drop_handle();
    }
}

#[async_trait]
impl MuxedConnection for MplexConnection {
    async fn open_stream(&self) -> Result<Box<dyn lp2p_core::Stream>, lp2p_core::Error> {
        Ok(Box::new(self.open()?))
    }

    async fn accept_stream(&self) -> Result<Box<dyn lp2p_core::Stream>, lp2p_core::Error> {
        Ok(Box::new(self.accept().await?))
    }

    async fn close(&self) {
        self.shutdown().await;
    }

    fn is_closed(&self) -> bool {
        self.closed()
    }

    fn num_streams(&self) -> usize {
        self.stream_count()
    }
}

/// One mplex stream. Reads and writes go through the connection's session; `poll_close`
/// half-closes, [`reset`](lp2p_core::Stream::reset) aborts, and dropping it half-closes and
/// discards whatever the remote sends afterwards.
#[derive(Debug)]
pub struct MplexStream {
    shared: Arc<Shared>,
    id: StreamId,
}

impl MplexStream {
    /// The stream's id.
    pub fn id(&self) -> StreamId {
        self.id
    }
}

impl AsyncRead for MplexStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut inner = self.shared.lock();
        let wanted_input = inner.session.wants_input();
        match inner.session.read(self.id, buf) {
            Ok(Some(n)) => {
                if !wanted_input && inner.session.wants_input() {
                    // Reading freed receive memory the connection task was waiting for.
                    inner.wake_io();
                }
                Poll::Ready(Ok(n))
            }
            Ok(None) => {
                if let Some(wakers) = inner.wakers.get_mut(&self.id) {
                    match &mut wakers.read {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        slot => *slot = Some(cx.waker().clone()),
                    }
                }
                Poll::Pending
            }
            Err(err) => Poll::Ready(Err(err.into())),
        }
    }
}

impl AsyncWrite for MplexStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut inner = self.shared.lock();
        let had_output = inner.session.has_transmit();
        match inner.session.write(self.id, buf) {
            Ok(Some(n)) => {
                if !had_output && n > 0 {
                    inner.wake_io();
                }
                Poll::Ready(Ok(n))
            }
            Ok(None) => {
                let id = self.id;
                let inner = &mut *inner;
                if let Some(wakers) = inner.wakers.get_mut(&id) {
                    match &mut wakers.write {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        slot => *slot = Some(cx.waker().clone()),
                    }
                    if !wakers.write_blocked {
                        wakers.write_blocked = true;
                        inner.blocked_writers.push(id);
                    }
                }
                Poll::Pending
            }
            Err(err) => Poll::Ready(Err(err.into())),
        }
    }

    /// Data written is queued in the connection, which sends it without further prompting;
    /// flushing only reports a stream that can no longer deliver.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let inner = self.shared.lock();
        if inner.session.is_reset(self.id) {
            return Poll::Ready(Err(MplexError::StreamReset(self.id).into()));
        }
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut inner = self.shared.lock();
        let had_output = inner.session.has_transmit();
        let result = inner.session.close_stream(self.id);
        if !had_output && inner.session.has_transmit() {
            inner.wake_io();
        }
        Poll::Ready(result.map_err(Into::into))
    }
}

impl lp2p_core::Stream for MplexStream {
    fn reset(&mut self) {
        let mut inner = self.shared.lock();
        let had_output = inner.session.has_transmit();
        let _ = inner.session.reset_stream(self.id);
        if !had_output && inner.session.has_transmit() {
            inner.wake_io();
        }
    }
}

impl Drop for MplexStream {
    fn drop(&mut self) {
        let mut inner = self.shared.lock();
        let had_output = inner.session.has_transmit();
        inner.session.release_stream(self.id);
        inner.wakers.remove(&self.id);
        if !had_output && inner.session.has_transmit() {
            inner.wake_io();
        }
        inner.drop_handle();
    }
}

/// The connection task: owns the socket.
struct ConnectionTask<C> {
    io: C,
    shared: Arc<Shared>,
    read_buf: Box<[u8]>,
    /// `read_buf[read_start..read_end]` was read but not yet consumed (input paused).
    read_start: usize,
    read_end: usize,
    read_eof: bool,
    /// Frames taken from the session, being written; `write_buf[..write_pos]` is done.
    write_buf: Vec<u8>,
    write_pos: usize,
    needs_flush: bool,
    /// Wakers collected under the lock, woken after it is released (reused: no allocation).
    to_wake: Vec<Waker>,
    close_deadline: Option<BoxFuture<'static, ()>>,
    close_timeout: Duration,
    /// The session's pending timeout and the sleep that ends at it.
    stall_timer: Option<(Instant, BoxFuture<'static, ()>)>,
    runtime: RuntimeHandle,
}

enum Step {
    Progress,
    Idle,
    Done,
}

impl<C: AsyncRead + AsyncWrite + Unpin> ConnectionTask<C> {
    fn step(&mut self, cx: &mut Context<'_>) -> Step {
        let mut progress = false;

        // Under the lock: take frames to send and feed input that waited for room.
        let (closing, wants_read, timeout) = {
            let mut inner = self.shared.lock();
            match &inner.io_waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => inner.io_waker = Some(cx.waker().clone()),
            }
            if self.write_buf.is_empty() && inner.session.poll_transmit(&mut self.write_buf) {
                progress = true;
                inner.take_blocked_writers(&mut self.to_wake);
            }
            if self.read_start < self.read_end && inner.session.wants_input() {
                let pending = self.read_buf.get(self.read_start..self.read_end);
                match inner
                    .session
                    .handle_input(pending.unwrap_or_default(), Instant::now())
                {
                    Ok(used) => {
                        self.read_start = self.read_start.saturating_add(used);
                        if self.read_start >= self.read_end {
                            self.read_start = 0;
                            self.read_end = 0;
                        }
                        progress |= used > 0;
                        inner.dispatch_events(&mut self.to_wake);
                    }
                    Err(_) => return fail(inner, &mut self.to_wake),
                }
            }
            let closing = inner.close_requested || inner.session.is_closed();
            let wants_read =
                !closing && !self.read_eof && self.read_end == 0 && inner.session.wants_input();
            (closing, wants_read, inner.session.poll_timeout())
        };
        wake_all(&mut self.to_wake);

        // A pause waiting for a reader lasts until the session's timeout.
        if self.poll_stall_timer(timeout, cx) {
            progress = true;
        }

        // Write what was taken.
        while self.write_pos < self.write_buf.len() {
            let pending = self.write_buf.get(self.write_pos..).unwrap_or_default();
            match Pin::new(&mut self.io).poll_write(cx, pending) {
                Poll::Ready(Ok(0)) => {
                    tracing::debug!("connection refused further writes");
                    return self.fail();
                }
                Poll::Ready(Ok(n)) => {
                    self.write_pos = self.write_pos.saturating_add(n);
                    progress = true;
                }
                Poll::Ready(Err(err)) => {
                    tracing::debug!(error = %err, "writing to the connection failed");
                    return self.fail();
                }
                Poll::Pending => break,
            }
        }
        if !self.write_buf.is_empty() && self.write_pos >= self.write_buf.len() {
            self.write_buf.clear();
            self.write_pos = 0;
            self.needs_flush = true;
            progress = true;
        }
        if self.needs_flush && self.write_buf.is_empty() {
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.needs_flush = false,
                Poll::Ready(Err(err)) => {
                    tracing::debug!(error = %err, "flushing the connection failed");
                    return self.fail();
                }
                Poll::Pending => {}
            }
        }

        // Read more.
        if wants_read {
            match Pin::new(&mut self.io).poll_read(cx, &mut self.read_buf) {
                Poll::Ready(Ok(0)) => {
                    self.read_eof = true;
                    progress = true;
                    let mut inner = self.shared.lock();
                    match inner.session.handle_eof() {
                        Ok(()) => tracing::debug!("the remote closed the connection"),
                        Err(err) => tracing::debug!(error = %err, "connection ended mid-frame"),
                    }
                    inner.take_all_wakers(&mut self.to_wake);
                }
                Poll::Ready(Ok(n)) => {
                    progress = true;
                    let mut inner = self.shared.lock();
                    let input = self.read_buf.get(..n).unwrap_or_default();
                    match inner.session.handle_input(input, Instant::now()) {
                        Ok(used) if used < n => {
                            self.read_start = used;
                            self.read_end = n;
                        }
                        Ok(_) => {}
                        Err(_) => return fail(inner, &mut self.to_wake),
                    }
                    inner.dispatch_events(&mut self.to_wake);
                }
                Poll::Ready(Err(err)) => {
                    tracing::debug!(error = %err, "reading from the connection failed");
                    return self.fail();
                }
                Poll::Pending => {}
            }
            wake_all(&mut self.to_wake);
        }

        // Closing: once everything queued is written and flushed, close the socket.
        if closing {
            let (runtime, timeout) = (&self.runtime, self.close_timeout);
            let deadline = self
                .close_deadline
                .get_or_insert_with(|| runtime.sleep(timeout));
            if deadline.as_mut().poll(cx).is_ready() {
                tracing::debug!("close timed out with frames still queued; dropping");
                return Step::Done;
            }
            let drained = self.write_buf.is_empty()
                && !self.needs_flush
                && !self.shared.lock().session.has_transmit();
            if drained {
                return match Pin::new(&mut self.io).poll_close(cx) {
                    Poll::Ready(_) => Step::Done,
                    Poll::Pending => Step::Idle,
                };
            }
        }

        if progress { Step::Progress } else { Step::Idle }
    }

    /// Keeps a sleep running until `timeout`; when it ends, lets the session handle it.
    /// Returns whether it did.
    fn poll_stall_timer(&mut self, timeout: Option<Instant>, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = timeout else {
            self.stall_timer = None;
            return false;
        };
        let runtime = &self.runtime;
        let (_, sleep) = match &mut self.stall_timer {
            Some(timer) if timer.0 == deadline => timer,
            slot => slot.insert((
                deadline,
                runtime.sleep(deadline.saturating_duration_since(Instant::now())),
            )),
        };
        if sleep.as_mut().poll(cx).is_pending() {
            return false;
        }
        self.stall_timer = None;
        let mut inner = self.shared.lock();
        inner.session.handle_timeout(Instant::now());
        inner.dispatch_events(&mut self.to_wake);
        drop(inner);
        wake_all(&mut self.to_wake);
        true
    }

    fn fail(&mut self) -> Step {
        fail(self.shared.lock(), &mut self.to_wake)
    }

    fn finish(&mut self) {
        let mut inner = self.shared.lock();
        inner.session.close();
        inner.task_finished = true;
        inner.io_waker = None;
        inner.take_all_wakers(&mut self.to_wake);
        self.to_wake.append(&mut inner.close_wakers);
        drop(inner);
        wake_all(&mut self.to_wake);
    }
}

/// Ends the connection after a fatal error: every stream and acceptor wakes to an error.
fn fail(mut inner: MutexGuard<'_, Inner>, to_wake: &mut Vec<Waker>) -> Step {
    inner.session.close();
    inner.take_all_wakers(to_wake);
    drop(inner);
    wake_all(to_wake);
    Step::Done
}

impl<C: AsyncRead + AsyncWrite + Unpin> Future for ConnectionTask<C> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        for _ in 0..IO_BUDGET {
            match this.step(cx) {
                Step::Progress => {}
                Step::Idle => return Poll::Pending,
                Step::Done => {
                    this.finish();
                    return Poll::Ready(());
                }
            }
        }
        // Still busy: let other tasks run, then continue.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Flag, encode_frame};

    fn inner() -> Inner {
        Inner {
            session: Session::new(Role::Responder, MplexConfig::default()),
            wakers: HashMap::new(),
            accept_queue: VecDeque::new(),
            accept_wakers: Vec::new(),
            blocked_writers: Vec::new(),
            io_waker: None,
            handles: 1,
            close_requested: false,
            task_finished: false,
            close_wakers: Vec::new(),
        }
    }

    #[test]
    fn streams_reset_before_accept_leave_the_queue() {
        // A peer opens and resets 20,000 streams nobody accepts, then opens one that stays.
        let mut inner = inner();
        let mut flood = Vec::new();
        for n in 0..20_000u64 {
            encode_frame(n, Flag::NewStream, b"", &mut flood);
            encode_frame(n, Flag::ResetInitiator, b"", &mut flood);
        }
        encode_frame(99_999, Flag::NewStream, b"", &mut flood);
        let mut woken = Vec::new();
        for piece in flood.chunks(4096) {
            inner.session.handle_input(piece, Instant::now()).unwrap();
            inner.dispatch_events(&mut woken);
        }
        let kept = StreamId::new(99_999, false);
        assert_eq!(inner.accept_queue, [kept]);
        assert_eq!(inner.wakers.len(), 1);
        assert_eq!(inner.session.stream_ids().collect::<Vec<_>>(), [kept]);
        assert_eq!(inner.session.num_streams(), 1);
    }

    #[test]
    fn accepted_streams_are_woken_on_reset() {
        let mut inner = inner();
        let mut frames = Vec::new();
        encode_frame(1, Flag::NewStream, b"", &mut frames);
        inner.session.handle_input(&frames, Instant::now()).unwrap();
        let mut woken = Vec::new();
        inner.dispatch_events(&mut woken);
        let id = inner.accept_queue.pop_front().unwrap();
        inner.wakers.get_mut(&id).unwrap().queued = false;
        inner.wakers.get_mut(&id).unwrap().read = Some(futures::task::noop_waker());
        frames.clear();
        encode_frame(1, Flag::ResetInitiator, b"", &mut frames);
        inner.session.handle_input(&frames, Instant::now()).unwrap();
        inner.dispatch_events(&mut woken);
        assert_eq!(woken.len(), 1, "the reader is woken");
        assert!(
            inner.session.is_reset(id),
            "and kept until its handle is dropped"
        );
    }
}

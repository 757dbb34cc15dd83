//! The async shell: one task per connection moves bytes between the socket and the sans-IO
//! [`Connection`]; streams are handles that call into the shared core.
//!
//! The core sits in a `Mutex` together with the wakers of whoever waits on it. Every locked
//! section is short (one core call, plus draining its events into a small list of wakers that
//! are woken after the lock is released). Stream writes copy into the core's send buffer;
//! the connection task swaps that buffer out whole and writes it to the socket in as few
//! writes as the socket allows, so frames of all streams are coalesced.

mod driver;
mod stream;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use async_trait::async_trait;
use futures::io::{AsyncRead, AsyncWrite};
use lp2p_core::{MuxedConnection, Role, RuntimeHandle};
use smallvec::SmallVec;

use crate::config::YamuxConfig;
use crate::connection::{Connection, Event};
use crate::error::YamuxError;
use crate::frame::StreamId;
use crate::id_hash::IdMap;

pub use stream::YamuxStream;

/// Wakers collected under the lock and woken after it is released.
type Wakeups = SmallVec<[Waker; 8]>;

/// The core and everyone waiting on it.
pub(crate) struct Inner {
    pub(crate) core: Connection,
    read_wakers: IdMap<StreamId, Waker>,
    write_wakers: IdMap<StreamId, Waker>,
    accept_wakers: Vec<Waker>,
    open_wakers: Vec<Waker>,
    close_wakers: Vec<Waker>,
    /// The connection task, when it waits for something to send.
    driver: Option<Waker>,
    driver_done: bool,
}

fn register(slot: &mut Option<Waker>, waker: &Waker) {
    if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
        *slot = Some(waker.clone());
    }
}

fn register_in(list: &mut Vec<Waker>, waker: &Waker) {
    if !list.iter().any(|w| w.will_wake(waker)) {
        list.push(waker.clone());
    }
}

fn register_stream(map: &mut IdMap<StreamId, Waker>, id: StreamId, waker: &Waker) {
    match map.get_mut(&id) {
        Some(w) if w.will_wake(waker) => {}
        Some(w) => w.clone_from(waker),
        None => {
            map.insert(id, waker.clone());
        }
    }
}

impl Inner {
    /// Turns the core's events into wakers to wake.
    fn collect_events(&mut self, wake: &mut Wakeups) {
        while let Some(event) = self.core.poll_event() {
            match event {
                Event::Readable(id) => wake.extend(self.read_wakers.remove(&id)),
                Event::Writable(id) => wake.extend(self.write_wakers.remove(&id)),
                Event::InboundStream => wake.extend(self.accept_wakers.drain(..)),
                Event::OutboundAvailable => wake.extend(self.open_wakers.drain(..)),
                Event::Closed => {
                    wake.extend(self.read_wakers.drain().map(|(_, w)| w));
                    wake.extend(self.write_wakers.drain().map(|(_, w)| w));
                    wake.extend(self.accept_wakers.drain(..));
                    wake.extend(self.open_wakers.drain(..));
                }
            }
        }
    }

    /// Events, plus the connection task when the core has frames for it to send.
    fn collect(&mut self, wake: &mut Wakeups) {
        self.collect_events(wake);
        if self.core.has_transmit()
            && let Some(driver) = self.driver.take()
        {
            wake.push(driver);
        }
    }

    /// The connection task finished: nothing will ever move again.
    fn finish(&mut self, wake: &mut Wakeups) {
        self.driver_done = true;
        self.collect_events(wake);
        wake.extend(self.close_wakers.drain(..));
        wake.extend(self.read_wakers.drain().map(|(_, w)| w));
        wake.extend(self.write_wakers.drain().map(|(_, w)| w));
        wake.extend(self.accept_wakers.drain(..));
        wake.extend(self.open_wakers.drain(..));
    }
}

/// The state shared by a connection's handle, its streams and its task.
pub(crate) struct Shared {
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every core call leaves the core consistent before it can panic (and none should),
        // so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` under the lock, then wakes whoever `f`'s changes concern.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut wake = Wakeups::new();
        let result = {
            let mut inner = self.lock();
            let result = f(&mut inner);
            inner.collect(&mut wake);
            result
        };
        for w in wake {
            w.wake();
        }
        result
    }

    pub(crate) fn poll_read(
        &self,
        id: StreamId,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<Result<usize, YamuxError>> {
        self.with(|inner| match inner.core.read(id, buf, Instant::now()) {
            Ok(Some(n)) => Poll::Ready(Ok(n)),
            Ok(None) => {
                register_stream(&mut inner.read_wakers, id, cx.waker());
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e)),
        })
    }

    pub(crate) fn poll_write(
        &self,
        id: StreamId,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<Result<usize, YamuxError>> {
        self.with(|inner| match inner.core.write(id, buf) {
            Ok(Some(n)) => Poll::Ready(Ok(n)),
            Ok(None) => {
                register_stream(&mut inner.write_wakers, id, cx.waker());
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e)),
        })
    }
}

/// The `/yamux/1.0.0` muxer: turns a secured connection into many streams.
///
/// `Yamux::default()` uses [`YamuxConfig::default()`]; [`Yamux::new`] takes a configuration.
#[derive(Clone, Debug, Default)]
pub struct Yamux {
    config: YamuxConfig,
}

impl Yamux {
    /// A muxer with this configuration.
    pub fn new(config: YamuxConfig) -> Yamux {
        Yamux { config }
    }

    /// The configuration.
    pub fn config(&self) -> &YamuxConfig {
        &self.config
    }

    /// Starts yamux on any byte stream: spawns the connection task on `runtime` and returns
    /// the handle. [`Role::Initiator`] (the side that dialed) is the yamux client.
    ///
    /// [`MuxerUpgrader::upgrade`](lp2p_core::MuxerUpgrader::upgrade) calls this with the
    /// secured connection; it is public for byte streams that are not a
    /// [`SecureConnection`](lp2p_core::SecureConnection) (tests, benchmarks, tunnels).
    pub fn start<C>(&self, io: C, role: Role, runtime: &RuntimeHandle) -> Arc<YamuxConnection>
    where
        C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let core = Connection::new(role, self.config.clone(), Instant::now());
        let conn_id = core.id();
        tracing::debug!(conn = conn_id, %role, "yamux connection started");
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                core,
                read_wakers: IdMap::default(),
                write_wakers: IdMap::default(),
                accept_wakers: Vec::new(),
                open_wakers: Vec::new(),
                close_wakers: Vec::new(),
                driver: None,
                driver_done: false,
            }),
        });
        let driver = driver::Driver::new(io, shared.clone(), runtime.clone(), &self.config);
        // Detached: the task ends by itself once the connection is closed.
        drop(runtime.spawn(driver));
        Arc::new(YamuxConnection { shared, conn_id })
    }
}

impl lp2p_core::MuxerUpgrader for Yamux {
    fn protocol_id(&self) -> &'static str {
        crate::PROTOCOL_ID
    }

    fn upgrade(
        &self,
        conn: lp2p_core::SecureConnection,
        role: Role,
        runtime: &RuntimeHandle,
    ) -> Arc<dyn MuxedConnection> {
        self.start(conn, role, runtime)
    }
}

/// A live yamux connection. Streams are opened with
/// [`open_stream`](MuxedConnection::open_stream) and taken with
/// [`accept_stream`](MuxedConnection::accept_stream).
///
/// Dropping the last handle closes the connection as [`close`](MuxedConnection::close)
/// would (without waiting): GoAway is sent and every stream fails from then on.
pub struct YamuxConnection {
    shared: Arc<Shared>,
    conn_id: u64,
}

impl YamuxConnection {
    /// Opens a stream (see [`MuxedConnection::open_stream`]), typed.
    pub async fn open(&self) -> Result<YamuxStream, YamuxError> {
        let id = futures::future::poll_fn(|cx| {
            self.shared.with(|inner| match inner.core.open_stream() {
                Ok(Some(id)) => Poll::Ready(Ok(id)),
                Ok(None) => {
                    register_in(&mut inner.open_wakers, cx.waker());
                    Poll::Pending
                }
                Err(e) => Poll::Ready(Err(e)),
            })
        })
        .await?;
        Ok(YamuxStream::new(id, self.shared.clone()))
    }

    /// Waits for the next stream the remote opened (see
    /// [`MuxedConnection::accept_stream`]), typed.
    pub async fn accept(&self) -> Result<YamuxStream, YamuxError> {
        let id = futures::future::poll_fn(|cx| {
            self.shared.with(|inner| match inner.core.accept_stream() {
                Ok(Some(id)) => Poll::Ready(Ok(id)),
                Ok(None) => {
                    register_in(&mut inner.accept_wakers, cx.waker());
                    Poll::Pending
                }
                Err(e) => Poll::Ready(Err(e)),
            })
        })
        .await?;
        Ok(YamuxStream::new(id, self.shared.clone()))
    }

    /// The round-trip time measured by the last answered ping.
    pub fn rtt(&self) -> Option<std::time::Duration> {
        self.shared.lock().core.rtt()
    }

    /// Counters of remote misbehaviour that did not close the connection.
    pub fn stats(&self) -> crate::ConnectionStats {
        self.shared.lock().core.stats()
    }

    /// Why the connection closed, once it has.
    pub fn close_reason(&self) -> Option<YamuxError> {
        self.shared.lock().core.close_reason().cloned()
    }

    /// The GoAway code the remote sent, if it sent one (0 is a normal close).
    pub fn remote_go_away(&self) -> Option<u32> {
        self.shared.lock().core.remote_go_away()
    }

    /// A number identifying this connection in logs (the `conn` field).
    pub fn id(&self) -> u64 {
        self.conn_id
    }

    /// Closes the connection (GoAway normal) and waits until its task has flushed and
    /// closed the socket, or given up after the close timeout.
    pub async fn close_gracefully(&self) {
        self.shared.with(|inner| inner.core.close());
        futures::future::poll_fn(|cx| {
            let mut inner = self.shared.lock();
            if inner.driver_done {
                Poll::Ready(())
            } else {
                register_in(&mut inner.close_wakers, cx.waker());
                Poll::Pending
            }
        })
        .await;
    }
}

impl std::fmt::Debug for YamuxConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YamuxConnection")
            .field("id", &self.conn_id)
            .finish_non_exhaustive()
    }
}

impl Drop for YamuxConnection {
    fn drop(&mut self) {
        self.shared.with(|inner| inner.core.close());
    }
}

#[async_trait]
impl MuxedConnection for YamuxConnection {
    async fn open_stream(&self) -> Result<Box<dyn lp2p_core::Stream>, lp2p_core::Error> {
        Ok(Box::new(self.open().await?))
    }

    async fn accept_stream(&self) -> Result<Box<dyn lp2p_core::Stream>, lp2p_core::Error> {
        Ok(Box::new(self.accept().await?))
    }

    async fn close(&self) {
        self.close_gracefully().await;
    }

    fn is_closed(&self) -> bool {
        self.shared.lock().core.is_closed()
    }

    fn num_streams(&self) -> usize {
        self.shared.lock().core.num_streams()
    }
}

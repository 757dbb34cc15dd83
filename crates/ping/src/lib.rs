//! The `/ipfs/ping/1.0.0` protocol for lp2p, with an optional keep-alive service.
//!
//! [`Ping::new`] registers the echo handler on a [`Host`]: it reads 32-byte blocks and writes
//! each back until the remote closes (at most [`MAX_INBOUND_STREAMS_PER_PEER`] streams per
//! peer at once, each closed after [`INBOUND_IDLE_TIMEOUT`] without a ping). [`Ping::ping`]
//! (connecting first if needed) and [`Ping::ping_on`] (on a given connection) send 32
//! random bytes, wait for the echo and return the round-trip time; other bytes back are a
//! [`PingError::Mismatch`], no full answer within [`PingConfig::timeout`] a
//! [`PingError::Timeout`].
//!
//! With [`PingConfig::keep_alive`] set, every connection is pinged every
//! [`KeepAliveConfig::interval`], and closed after [`KeepAliveConfig::max_failures`]
//! failures in a row. It is off by default.
//!
//! The service holds only a weak handle to the host: closing the host stops it.
//!
//! # Example
//!
//! ```
//! use lp2p_host::Host;
//! use lp2p_memory::MemoryTransport;
//! use lp2p_ping::{Ping, PingConfig};
//! use lp2p_plaintext::Plaintext;
//! use lp2p_yamux::Yamux;
//!
//! # lp2p_core::runtime::block_on(async {
//! let builder = || {
//!     Host::builder()
//!         .transport(MemoryTransport::default())
//!         .security(Plaintext::new())
//!         .muxer(Yamux::default())
//! };
//! let server = builder().listen_on("/memory/0".parse()?).build().await?;
//! let _server_ping = Ping::new(&server, PingConfig::default());
//! let client = builder().build().await?;
//! let ping = Ping::new(&client, PingConfig::default());
//!
//! client.connect(server.local_peer_id(), server.listen_addrs()).await?;
//! let rtt = ping.ping(&server.local_peer_id()).await?;
//! println!("round trip: {rtt:?}");
//!
//! client.close().await;
//! server.close().await;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod config;
mod error;
mod stats;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::future::{AbortHandle, Abortable, Either};
use futures::stream::FuturesUnordered;
use futures::{AsyncRead, AsyncReadExt, AsyncWriteExt, StreamExt};
use lp2p_core::{PeerId, RuntimeHandle, Stream};
use lp2p_host::{
    Connection, ConnectionEvent, ConnectionEvents, ConnectionId, Host, HostStream, WeakHost,
};

pub use config::{
    DEFAULT_KEEP_ALIVE_INTERVAL, DEFAULT_KEEP_ALIVE_TIMEOUT, DEFAULT_MAX_FAILURES, DEFAULT_TIMEOUT,
    KeepAliveConfig, MAX_INBOUND_STREAMS_PER_PEER, PING_SIZE, PROTOCOL, PingConfig,
};
pub use error::PingError;
pub use stats::{PingStats, RTT_BUCKETS};

/// An inbound ping stream with no ping for this long is closed. rust-libp2p pings every 15 s
/// on one long-lived stream, so a minute never cuts a live pinger off, while a stream opened
/// and left idle does not hold its task (and one of the peer's two slots) forever.
pub const INBOUND_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The ping service of one host. Cheap to clone (a handle).
#[derive(Clone)]
pub struct Ping {
    shared: Arc<Shared>,
}

struct Shared {
    host: WeakHost,
    runtime: RuntimeHandle,
    config: PingConfig,
    /// Inbound streams open per peer (entries removed at zero).
    inbound: Mutex<HashMap<PeerId, usize>>,
    /// One outbound ping per peer at a time (the spec: a dialer keeps at most one outbound
    /// ping stream per peer); entries removed when nobody holds or waits for them.
    outbound: Mutex<HashMap<PeerId, Arc<futures::lock::Mutex<()>>>>,
    stats: Mutex<PingStats>,
}

impl std::fmt::Debug for Ping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ping")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl Ping {
    /// Registers the `/ipfs/ping/1.0.0` echo handler on `host` and, when configured, starts
    /// the keep-alive service (a task of the host, stopped by `host.close()`).
    ///
    /// The handle registers itself on the host: `host.service::<Ping>()` finds it (e.g. the
    /// one `lp2p::HostBuilderExt::with_defaults` started, to call `ping()` on). Several
    /// `Ping`s on one host work (the last one created serves inbound pings and is the one
    /// registered); another created later with keep-alive is fine.
    pub fn new(host: &Host, config: PingConfig) -> Ping {
        let shared = Arc::new(Shared {
            host: host.downgrade(),
            runtime: host.runtime().clone(),
            config,
            inbound: Mutex::new(HashMap::new()),
            outbound: Mutex::new(HashMap::new()),
            stats: Mutex::new(PingStats::default()),
        });
        let handler_shared = shared.clone();
        host.set_stream_handler(PROTOCOL, move |stream: HostStream| {
            let shared = handler_shared.clone();
            async move { shared.serve(stream).await }
        });
        if let Some(keep_alive) = shared.config.keep_alive.clone() {
            // Every connection: the live ones first, none missed afterwards.
            let events = host.connection_events();
            host.spawn(keep_alive_service(shared.clone(), events, keep_alive));
        }
        let ping = Ping { shared };
        host.insert_service(ping.clone());
        ping
    }

    /// Pings `peer` (connecting first if needed) and returns the round-trip time, measured
    /// from writing the 32 bytes to reading the full echo. Pings of one peer run one at a
    /// time (a second waits for the first, within its own timeout).
    pub async fn ping(&self, peer: &PeerId) -> Result<Duration, PingError> {
        let host = self.shared.host.upgrade().ok_or(PingError::Closed)?;
        let open = host.new_stream(peer, [PROTOCOL]);
        self.shared
            .ping_with(*peer, self.shared.config.timeout, open)
            .await
    }

    /// Pings the peer on `connection` (a fresh stream on that connection).
    pub async fn ping_on(&self, connection: &Connection) -> Result<Duration, PingError> {
        let host = self.shared.host.upgrade().ok_or(PingError::Closed)?;
        let open = host.new_stream_on(connection, [PROTOCOL]);
        self.shared
            .ping_with(connection.peer(), self.shared.config.timeout, open)
            .await
    }

    /// The configuration in force.
    pub fn config(&self) -> &PingConfig {
        &self.shared.config
    }

    /// What the outbound pings of this service measured so far.
    pub fn stats(&self) -> PingStats {
        self.shared
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Shared {
    /// Waits for `peer`'s outbound slot, opens the stream with `open` and pings, all within
    /// `after`.
    async fn ping_with(
        self: &Arc<Self>,
        peer: PeerId,
        after: Duration,
        open: impl Future<Output = Result<HostStream, lp2p_host::HostError>>,
    ) -> Result<Duration, PingError> {
        let attempt = async {
            let _slot = self.outbound_slot(peer).await;
            let stream = open.await.map_err(|e| stream_error(peer, e))?;
            ping_stream(stream, &self.runtime).await
        };
        let result = match self.runtime.timeout(after, attempt).await {
            Ok(result) => result,
            Err(_) => Err(PingError::Timeout {
                peer: Box::new(peer),
                after,
            }),
        };
        let mut stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        match &result {
            Ok(rtt) => {
                stats.ok = stats.ok.saturating_add(1);
                stats.rtt.observe(rtt.as_secs_f64());
            }
            Err(_) => stats.failed = stats.failed.saturating_add(1),
        }
        result
    }

    async fn outbound_slot(self: &Arc<Self>, peer: PeerId) -> OutboundSlot {
        let lock = self
            .outbound
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(peer)
            .or_default()
            .clone();
        OutboundSlot {
            guard: Some(lock.lock_owned().await),
            shared: self.clone(),
            peer,
        }
    }

    fn inbound(&self) -> MutexGuard<'_, HashMap<PeerId, usize>> {
        self.inbound.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes one of `peer`'s inbound slots, or `None` when all are in use.
    fn admit(self: &Arc<Self>, peer: PeerId) -> Option<InboundSlot> {
        let mut inbound = self.inbound();
        let open = inbound.entry(peer).or_insert(0);
        if *open >= self.config.max_inbound_streams_per_peer {
            return None;
        }
        *open = open.saturating_add(1);
        Some(InboundSlot {
            shared: self.clone(),
            peer,
        })
    }

    /// Echoes 32-byte blocks until the remote closes its side, then closes ours.
    async fn serve(self: Arc<Self>, mut stream: HostStream) {
        let peer = stream.peer();
        let Some(_slot) = self.admit(peer) else {
            tracing::debug!(%peer, "too many inbound ping streams; resetting");
            stream.reset();
            return;
        };
        let mut block = [0u8; PING_SIZE];
        loop {
            let read = self
                .runtime
                .timeout(INBOUND_IDLE_TIMEOUT, read_block(&mut stream, &mut block))
                .await;
            match read {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => break,
                Ok(Err(err)) => {
                    tracing::debug!(%peer, error = %err, "inbound ping stream failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "inbound ping stream idle; resetting");
                    stream.reset();
                    return;
                }
            }
            if let Err(err) = async {
                stream.write_all(&block).await?;
                stream.flush().await
            }
            .await
            {
                tracing::debug!(%peer, error = %err, "writing a ping echo failed");
                return;
            }
        }
        let _ = stream.close().await;
    }
}

/// The right to ping a peer, released on drop.
struct OutboundSlot {
    guard: Option<futures::lock::OwnedMutexGuard<()>>,
    shared: Arc<Shared>,
    peer: PeerId,
}

impl Drop for OutboundSlot {
    fn drop(&mut self) {
        let mut outbound = self
            .shared
            .outbound
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        drop(self.guard.take());
        // Nobody else holds or waits for the lock (waiters hold a clone): forget it. New
        // waiters clone it only under the map's lock, which we hold.
        if outbound
            .get(&self.peer)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            outbound.remove(&self.peer);
        }
    }
}

/// One of a peer's inbound ping slots, released on drop.
struct InboundSlot {
    shared: Arc<Shared>,
    peer: PeerId,
}

impl Drop for InboundSlot {
    fn drop(&mut self) {
        let mut inbound = self.shared.inbound();
        if let Some(open) = inbound.get_mut(&self.peer) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                inbound.remove(&self.peer);
            }
        }
    }
}

/// Reads exactly one block. `Ok(false)`: the stream ended cleanly before the block began.
async fn read_block<R: AsyncRead + Unpin>(
    reader: &mut R,
    block: &mut [u8; PING_SIZE],
) -> std::io::Result<bool> {
    let mut filled = 0usize;
    while let Some(rest) = block.get_mut(filled..).filter(|rest| !rest.is_empty()) {
        let n = reader.read(rest).await?;
        if n == 0 {
            if filled == 0 {
                return Ok(false);
            }
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        filled = filled.saturating_add(n);
    }
    Ok(true)
}

/// One ping on an open stream: 32 random bytes out, the same 32 back, timed on the
/// runtime's clock.
async fn ping_stream(
    mut stream: HostStream,
    runtime: &RuntimeHandle,
) -> Result<Duration, PingError> {
    let peer = stream.peer();
    let io_error = |source| PingError::Io {
        peer: Box::new(peer),
        source,
    };
    let payload: [u8; PING_SIZE] = rand::random();
    let started = runtime.now();
    stream.write_all(&payload).await.map_err(io_error)?;
    stream.flush().await.map_err(io_error)?;
    let mut echo = [0u8; PING_SIZE];
    stream.read_exact(&mut echo).await.map_err(io_error)?;
    let rtt = runtime.now().saturating_duration_since(started);
    if echo != payload {
        stream.reset();
        return Err(PingError::Mismatch(Box::new(peer)));
    }
    // Done: half-close so the remote's handler ends; its own close is not waited for.
    let _ = stream.close().await;
    Ok(rtt)
}

fn stream_error(peer: PeerId, err: lp2p_host::HostError) -> PingError {
    match err {
        lp2p_host::HostError::Closed => PingError::Closed,
        other => PingError::Stream {
            peer: Box::new(peer),
            source: Box::new(other),
        },
    }
}

/// The keep-alive service: one pinger per connection, all inside this one task (so closing
/// the host, which aborts the task, stops them all).
async fn keep_alive_service(
    shared: Arc<Shared>,
    mut events: ConnectionEvents,
    config: KeepAliveConfig,
) {
    let mut pingers = FuturesUnordered::new();
    let mut aborts: HashMap<ConnectionId, AbortHandle> = HashMap::new();
    loop {
        let next_event = events.next();
        let next_done = async {
            if pingers.is_empty() {
                futures::future::pending::<()>().await;
            } else {
                pingers.next().await;
            }
        };
        futures::pin_mut!(next_done);
        let event = match futures::future::select(next_event, next_done).await {
            Either::Left((Some(event), _)) => event,
            Either::Left((None, _)) => return,
            Either::Right(((), _)) => {
                aborts.retain(|_, abort| !abort.is_aborted());
                continue;
            }
        };
        match event {
            ConnectionEvent::Established(connection) => {
                let (abort, registration) = AbortHandle::new_pair();
                aborts.insert(connection.id(), abort);
                let pinger = keep_alive(shared.clone(), connection, config.clone());
                pingers.push(Abortable::new(pinger, registration));
            }
            ConnectionEvent::Closed { connection, .. } => {
                if let Some(abort) = aborts.remove(&connection.id()) {
                    abort.abort();
                }
            }
        }
    }
}

async fn keep_alive(shared: Arc<Shared>, connection: Connection, config: KeepAliveConfig) {
    let peer = connection.peer();
    let max_failures = config.max_failures.max(1);
    let mut failures = 0u32;
    loop {
        shared.runtime.sleep(config.interval).await;
        if connection.is_closed() {
            return;
        }
        let Some(host) = shared.host.upgrade() else {
            return;
        };
        let open = host.new_stream_on(&connection, [PROTOCOL]);
        let result = shared.ping_with(peer, config.timeout, open).await;
        drop(host);
        match result {
            Ok(rtt) => {
                tracing::trace!(%peer, connection = %connection.id(), ?rtt, "keep-alive ping");
                failures = 0;
            }
            Err(PingError::Closed) => return,
            Err(err) => {
                failures = failures.saturating_add(1);
                tracing::debug!(
                    %peer, connection = %connection.id(), error = %err, failures,
                    "keep-alive ping failed"
                );
                if failures >= max_failures {
                    tracing::info!(
                        %peer, connection = %connection.id(), failures,
                        "closing the connection: keep-alive pings failed"
                    );
                    connection.close().await;
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that yields its bytes in the given pieces.
    struct Pieces(Vec<Vec<u8>>);

    impl AsyncRead for Pieces {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            if self.0.is_empty() {
                return std::task::Poll::Ready(Ok(0));
            }
            let piece = self.0.remove(0);
            let n = piece.len().min(buf.len());
            buf[..n].copy_from_slice(&piece[..n]);
            if n < piece.len() {
                self.0.insert(0, piece[n..].to_vec());
            }
            std::task::Poll::Ready(Ok(n))
        }
    }

    #[test]
    fn read_block_assembles_pieces_and_sees_clean_and_unclean_ends() {
        futures::executor::block_on(async {
            let mut block = [0u8; PING_SIZE];
            let mut r = Pieces(vec![vec![1; 5], vec![2; 27], vec![3; 32]]);
            assert!(read_block(&mut r, &mut block).await.unwrap());
            assert_eq!(&block[..5], &[1; 5]);
            assert_eq!(&block[5..], &[2; 27]);
            assert!(read_block(&mut r, &mut block).await.unwrap());
            assert_eq!(block, [3; 32]);
            // Clean end between blocks.
            assert!(!read_block(&mut r, &mut block).await.unwrap());
            // End inside a block.
            let mut r = Pieces(vec![vec![1; 31]]);
            let err = read_block(&mut r, &mut block).await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        });
    }

    #[test]
    fn defaults() {
        let config = PingConfig::default();
        assert_eq!(config.timeout, DEFAULT_TIMEOUT);
        assert!(config.keep_alive.is_none());
        let on = config.with_keep_alive(KeepAliveConfig::default());
        assert_eq!(
            on.keep_alive,
            Some(KeepAliveConfig {
                interval: DEFAULT_KEEP_ALIVE_INTERVAL,
                timeout: DEFAULT_KEEP_ALIVE_TIMEOUT,
                max_failures: DEFAULT_MAX_FAILURES,
            })
        );
    }
}

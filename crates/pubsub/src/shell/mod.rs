//! The async shell: a [`PubSub`] service on an `lp2p-host` [`Host`], driving a
//! [`PubSubCore`](crate::PubSubCore) with real streams and the real clock.
//!
//! One driver task (spawned with [`Host::spawn`], so [`Host::close`] ends it) watches the
//! host's connections and runs the core's timers. Per peer, one outbound stream carries our
//! RPCs (its writer task pulls from the core's bounded send queue only when the stream took
//! the previous write) and the peer's most recent inbound stream is read frame by frame into
//! the core. The core sits behind a mutex that is never held across an await.

mod subscription;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use futures::channel::{mpsc, oneshot};
use futures::future::{AbortHandle, Abortable, BoxFuture};
use futures::{FutureExt, StreamExt};
use lp2p_core::events::{EventBus, EventStream};
use lp2p_core::{Histogram, MemoryBudget, Multiaddr, PeerId, Protocol, RuntimeHandle};
use lp2p_host::{Connection, ConnectionEvent, ConnectionEvents, Host, HostStream, WeakHost};
use tracing::{debug, warn};

pub use subscription::{Deliveries, Delivery, Subscription};
use subscription::{SubscriptionGuard, Unsubscribe};

use crate::config::{Config, MEMORY_SERVICE};
use crate::error::PubsubError;
use crate::event::{Counters, Event};
use crate::router::floodsub::FloodsubRouter;
use crate::router::gossipsub::{GossipsubConfig, GossipsubRouter};
use crate::types::{Acceptance, Direction, Message, MessageId, PeerKind, Topic};
use crate::{FloodsubCore, GossipsubCore, PeerConnection};

/// Messages buffered per [`Subscription`] before further messages for it are dropped: a few
/// seconds of a busy topic. A subscriber that stops reading must not grow memory or stall
/// routing for everyone else, so past this its messages are dropped, counted and logged.
pub const DEFAULT_SUBSCRIPTION_BUFFER: usize = 1024;

/// Events buffered per [`PubSub::events`] stream before further events to it are dropped
/// (counted and logged by the event bus): the same trade-off as for subscriptions.
pub const DEFAULT_EVENT_BUFFER: usize = 1024;

/// Dials started by peer exchange and explicit peers that may be in flight at once. PX offers
/// at most `prune_peers` (16) peers per PRUNE; this caps the total when many PRUNEs arrive
/// together, so a peer cannot make us open connections without bound.
pub const DEFAULT_MAX_PENDING_DIALS: usize = 32;

/// Inbound streams read at once for one peer; a newer one past this aborts the oldest.
/// Gossipsub peers keep one long-lived stream (a new one replaces the old), but
/// rust-libp2p's floodsub opens a fresh stream for every RPC, up to 8 negotiating at once, so
/// a few must be read side by side; the cap keeps a peer from holding many reader tasks.
pub const DEFAULT_MAX_INBOUND_STREAMS_PER_PEER: usize = 16;

/// A write buffer grown past this by one large batch is released after it, so one big
/// message does not pin a megabyte per peer for the life of the connection.
const WRITE_BUFFER_KEEP: usize = 256 * 1024;

/// An asynchronous validator: gets the forwarding peer and the message, answers later.
type AsyncValidatorFn =
    Arc<dyn Fn(PeerId, Message) -> BoxFuture<'static, Acceptance> + Send + Sync>;

/// Either core, so one shell serves both routers.
enum AnyCore {
    Floodsub(Box<FloodsubCore>),
    Gossipsub(Box<GossipsubCore>),
}

/// Runs `$body` with `$core` bound to the concrete core.
macro_rules! with_core {
    ($any:expr, $core:ident => $body:expr) => {
        match $any {
            AnyCore::Floodsub($core) => $body,
            AnyCore::Gossipsub($core) => $body,
        }
    };
}

// After the macro, which it uses.
mod writer;

/// Where a peer's pubsub link is.
enum Link {
    /// Our outbound stream is being negotiated; readers of its inbound stream wait here.
    Connecting { waiters: Vec<oneshot::Sender<()>> },
    /// The connection carrying our stream closed while another to the peer remains: the
    /// peer stays in the core (its subscriptions and mesh state carry over, as rust- and
    /// go-libp2p keep theirs across connections and do not announce them again) while our
    /// stream is re-opened on the remaining connection. Its inbound streams are read.
    Moving,
    /// The peer is in the core; its writer is woken through `writer`.
    Ready {
        writer: mpsc::Sender<()>,
        /// The connection our stream runs on.
        connection: Connection,
    },
    /// The peer's last connection closed, but what it delivered may still sit unread in its
    /// inbound streams: the peer stays in the core (its RPCs are still accepted) until its
    /// readers finished; the last one removes it. Nothing is written to it any more.
    Draining,
}

struct PeerEntry {
    /// Distinguishes this link from earlier ones to the same peer (stale tasks check it).
    generation: u64,
    link: Link,
    /// The readers of the peer's most recent inbound streams, oldest first.
    readers: VecDeque<(u64, AbortHandle)>,
    /// Whether the writer holds output it took from the queue and has not yet handed to the
    /// stream (written and flushed).
    writing: bool,
    /// [`PubSub::flush`] callers waiting for the queue to drain. Answered when the writer
    /// finds the queue empty with nothing unwritten; dropped (the caller sees the link go)
    /// when the link ends first.
    drain_waiters: Vec<oneshot::Sender<()>>,
    /// Set when the host closes: once the queue is drained, the writer half-closes its
    /// stream and waits for the peer to close its end, then answers `finish_waiters`.
    finishing: bool,
    finish_waiters: Vec<oneshot::Sender<()>>,
}

impl PeerEntry {
    fn new(generation: u64) -> PeerEntry {
        PeerEntry {
            generation,
            link: Link::Connecting {
                waiters: Vec::new(),
            },
            readers: VecDeque::new(),
            writing: false,
            drain_waiters: Vec::new(),
            finishing: false,
            finish_waiters: Vec::new(),
        }
    }
}

/// What [`PubSub::flush`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flushed {
    /// Peers whose queued output was all handed to their stream.
    pub peers: usize,
    /// Peers whose link went down before their queued output was written (they did not get
    /// it).
    pub lost: Vec<PeerId>,
}

struct SubscriberSlot {
    id: u64,
    tx: mpsc::Sender<Delivery>,
}

struct State {
    core: AnyCore,
    subscribers: HashMap<Topic, Vec<SubscriberSlot>>,
    async_validators: HashMap<Topic, AsyncValidatorFn>,
    peers: HashMap<PeerId, PeerEntry>,
    next_id: u64,
    /// The deadline the driver sleeps until (`None`: no timer armed).
    armed: Option<Instant>,
    /// Wakes the driver to re-arm its timer (capacity one: a pending wake-up is enough).
    wake: mpsc::Sender<()>,
}

impl State {
    fn next_id(&mut self) -> u64 {
        self.next_id = self.next_id.wrapping_add(1);
        self.next_id
    }
}

pub(crate) struct Inner {
    state: Mutex<State>,
    host: WeakHost,
    runtime: RuntimeHandle,
    local_peer_id: PeerId,
    protocols: &'static [&'static str],
    max_frame: usize,
    events: EventBus<Event>,
    pending_dials: AtomicUsize,
    dropped_deliveries: AtomicU64,
    /// The host's resource manager: inbound RPCs reserve their length from it per peer.
    memory: Arc<dyn MemoryBudget>,
}

/// Upper bounds of [`PubSub::score_histogram`]'s buckets: the default graylist (-80),
/// publish (-50) and gossip (-10) thresholds, zero (negative peers are pruned from the mesh),
/// the default accept-PX (10) and opportunistic-graft (20) thresholds, and -1000 / 100 to
/// tell far-off scores apart. A dashboard then shows how many peers each of the router's
/// decisions applies to (with the default thresholds).
pub const SCORE_BUCKETS: &[f64] = &[-1000.0, -80.0, -50.0, -10.0, 0.0, 10.0, 20.0, 100.0];

/// A pubsub service on a [`Host`]: floodsub or gossipsub. Cheap to clone (a handle).
///
/// Built with [`PubSub::gossipsub`] or [`PubSub::floodsub`], it registers stream handlers for
/// its protocols, opens one outbound stream to every connected peer that speaks one of them
/// (and to every peer that connects later), and runs until the host is closed, whether or
/// not a handle is kept: dropping every `PubSub` handle loses nothing, and `host.close()`
/// still delivers what was queued (see [`PubSub::flush`]). The service registers its handle
/// on the host: `host.service::<PubSub>()` finds it.
///
/// ```
/// use futures::StreamExt;
/// use lp2p_host::Host;
/// use lp2p_pubsub::{Config, PubSub};
///
/// # lp2p_core::runtime::block_on(async {
/// async fn host() -> Host {
///     Host::builder()
///         .transport(lp2p_memory::MemoryTransport::default())
///         .security(lp2p_noise::Noise::new())
///         .muxer(lp2p_yamux::Yamux::default())
///         .listen_on("/memory/0".parse().unwrap())
///         .build()
///         .await
///         .unwrap()
/// }
/// let (alice, bob) = (host().await, host().await);
/// let alice_pubsub = PubSub::gossipsub(&alice, Config::default())?;
/// let bob_pubsub = PubSub::gossipsub(&bob, Config::default())?;
/// let mut news = bob_pubsub.subscribe("news")?;
/// alice_pubsub.subscribe("news")?; // keeps alice's mesh for "news"
/// alice.connect(bob.local_peer_id(), bob.listen_addrs()).await?;
///
/// // Publish once bob's subscription reached alice.
/// while !alice_pubsub.peers("news").contains(&bob.local_peer_id()) {
///     alice.runtime().sleep(std::time::Duration::from_millis(10)).await;
/// }
/// alice_pubsub.publish("news", &b"hello"[..]).await?;
/// let message = news.next().await.unwrap();
/// assert_eq!(&message.data[..], b"hello");
/// assert_eq!(message.source, Some(alice.local_peer_id()));
///
/// alice.close().await;
/// bob.close().await;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct PubSub {
    inner: Arc<Inner>,
}

impl fmt::Debug for PubSub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PubSub")
            .field("local_peer_id", &self.inner.local_peer_id)
            .field("protocols", &self.inner.protocols)
            .finish_non_exhaustive()
    }
}

impl PubSub {
    /// Gossipsub with the default [`GossipsubConfig`] (mesh parameters of the spec, scoring
    /// off) and the given shared `config`, signing with the host's key.
    pub fn gossipsub(host: &Host, config: Config) -> Result<PubSub, PubsubError> {
        Self::gossipsub_with(host, config, GossipsubConfig::default())
    }

    /// Gossipsub with its own router configuration (mesh degrees, heartbeat, peer scoring,
    /// explicit peers, ...) besides the shared `config`.
    pub fn gossipsub_with(
        host: &Host,
        config: Config,
        gossipsub: GossipsubConfig,
    ) -> Result<PubSub, PubsubError> {
        let router = GossipsubRouter::new(gossipsub)?;
        let core =
            GossipsubCore::new(host.keypair().clone(), config, router, host.runtime().now())?;
        Self::start(host, AnyCore::Gossipsub(Box::new(core)))
    }

    /// Floodsub (`/floodsub/1.0.0`) with the given shared `config`, signing with the host's key.
    pub fn floodsub(host: &Host, config: Config) -> Result<PubSub, PubsubError> {
        let core = FloodsubCore::new(
            host.keypair().clone(),
            config,
            FloodsubRouter::new(),
            host.runtime().now(),
        )?;
        Self::start(host, AnyCore::Floodsub(Box::new(core)))
    }

    fn start(host: &Host, mut core: AnyCore) -> Result<PubSub, PubsubError> {
        if host.is_closed() {
            return Err(PubsubError::Closed);
        }
        // Queues and inbound RPCs reserve from the host's resource manager.
        let memory: Arc<dyn MemoryBudget> = Arc::new(host.resource_manager().clone());
        with_core!(&mut core, c => c.set_memory_budget(memory.clone()));
        let (protocols, max_frame) =
            with_core!(&core, c => (c.protocols(), c.config().max_transmit_size));
        let (wake, wake_rx) = mpsc::channel(0);
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                core,
                subscribers: HashMap::new(),
                async_validators: HashMap::new(),
                peers: HashMap::new(),
                next_id: 0,
                armed: None,
                wake,
            }),
            host: host.downgrade(),
            runtime: host.runtime().clone(),
            local_peer_id: host.local_peer_id(),
            protocols,
            max_frame,
            events: EventBus::new(DEFAULT_EVENT_BUFFER),
            pending_dials: AtomicUsize::new(0),
            dropped_deliveries: AtomicU64::new(0),
            memory,
        });
        // Every connection, the live ones first, none missed afterwards.
        let connections = host.connection_events();
        for protocol in protocols {
            let handler_inner = inner.clone();
            host.set_stream_handler(*protocol, move |stream: HostStream| {
                let inner = handler_inner.clone();
                async move { inner.read_inbound(stream).await }
            });
        }
        host.spawn(drive(inner.clone(), connections, wake_rx));
        // On close, what is queued goes out before the connections close (within the host's
        // close grace), whether or not a `PubSub` handle is still around.
        let flushing = Arc::downgrade(&inner);
        host.on_close(move || async move {
            if let Some(inner) = flushing.upgrade() {
                let finished = inner.finish_links().await;
                debug!(
                    peers = finished.peers,
                    lost = finished.lost.len(),
                    "pubsub: links finished on close"
                );
            }
        });
        let pubsub = PubSub { inner };
        host.insert_service(pubsub.clone());
        Ok(pubsub)
    }

    /// Our peer id (the host's).
    pub fn local_peer_id(&self) -> PeerId {
        self.inner.local_peer_id
    }

    /// The protocol ids this service speaks, preferred first.
    pub fn protocols(&self) -> &'static [&'static str] {
        self.inner.protocols
    }

    /// Subscribes to `topic`. Every subscription gets every message; dropping the last one
    /// for a topic unsubscribes from it.
    pub fn subscribe(&self, topic: &str) -> Result<Subscription, PubsubError> {
        if self.inner.host.upgrade().is_none_or(|h| h.is_closed()) {
            return Err(PubsubError::Closed);
        }
        let topic = Topic::new(topic);
        let (tx, rx) = mpsc::channel(DEFAULT_SUBSCRIPTION_BUFFER.saturating_sub(1));
        let mut state = self.inner.lock();
        let id = state.next_id();
        state
            .subscribers
            .entry(topic.clone())
            .or_default()
            .push(SubscriberSlot { id, tx });
        with_core!(&mut state.core, c => c.subscribe(topic.clone(), self.inner.runtime.now()));
        self.inner.flush(&mut state);
        drop(state);
        Ok(Subscription {
            rx,
            guard: SubscriptionGuard {
                service: Box::new(self.inner.clone()),
                topic,
                id,
            },
        })
    }

    /// Publishes `data` to `topic` (signed per the configured policy). The message is
    /// queued for the peers when this is called; the returned future is already complete:
    /// `.await` it for the message id or the error, or take the result without awaiting
    /// with [`Ready::into_inner`](std::future::Ready::into_inner). Fails at once with
    /// [`PubsubError::MessageTooLarge`] when the RPC carrying it would exceed
    /// `Config::max_transmit_size`, and with [`PubsubError::PublishRejected`] when the
    /// topic's synchronous validator refuses it. Subscribing is not needed to publish.
    pub fn publish(
        &self,
        topic: &str,
        data: impl Into<Bytes>,
    ) -> std::future::Ready<Result<MessageId, PubsubError>> {
        let mut state = self.inner.lock();
        let published =
            with_core!(&mut state.core, c => c.publish(topic, data, self.inner.runtime.now()));
        if published.is_ok() {
            self.inner.flush(&mut state);
        }
        std::future::ready(published)
    }

    /// Waits until everything queued so far for every pubsub peer (our publishes, forwards,
    /// subscriptions, control) has been handed to that peer's stream: written to the muxer,
    /// which sends it even if the connection is closed right after. Output queued after this
    /// call is not waited for.
    ///
    /// Publishing only queues; a program that publishes and then exits calls this in
    /// between (or relies on [`Host::close`], which runs the same flush within the host's
    /// close grace). A peer that stops reading holds this up, so wrap it in a timeout when
    /// that matters:
    ///
    /// ```no_run
    /// # async fn demo(host: lp2p_host::Host, pubsub: lp2p_pubsub::PubSub) -> Result<(), Box<dyn std::error::Error>> {
    /// pubsub.publish("news", &b"bye"[..]).await?;
    /// let flushed = host.runtime().timeout(std::time::Duration::from_secs(5), pubsub.flush()).await?;
    /// assert!(flushed.lost.is_empty());
    /// host.close().await;
    /// # Ok(()) }
    /// ```
    pub async fn flush(&self) -> Flushed {
        self.inner.flush_queues().await
    }

    /// The connected peers subscribed to `topic`.
    pub fn peers(&self, topic: &str) -> Vec<PeerId> {
        let topic = Topic::new(topic);
        let state = self.inner.lock();
        with_core!(&state.core, c => c.peers(&topic).copied().collect())
    }

    /// Our gossipsub mesh for `topic` (empty for floodsub, and for topics we do not join).
    pub fn mesh_peers(&self, topic: &str) -> Vec<PeerId> {
        let topic = Topic::new(topic);
        let state = self.inner.lock();
        match &state.core {
            AnyCore::Gossipsub(c) => c.router().mesh_peers(&topic).copied().collect(),
            AnyCore::Floodsub(_) => Vec::new(),
        }
    }

    /// All connected pubsub peers.
    pub fn connected_peers(&self) -> Vec<PeerId> {
        let state = self.inner.lock();
        with_core!(&state.core, c => c.connected_peers().copied().collect())
    }

    /// The topics we are subscribed to.
    pub fn topics(&self) -> Vec<String> {
        let state = self.inner.lock();
        with_core!(&state.core, c => c.topics().map(|t| t.as_str().to_owned()).collect())
    }

    /// The core's events other than messages and validation requests (peers subscribing,
    /// grafts and prunes, slow peers, graylisting, peer exchange, ...), from now on.
    pub fn events(&self) -> EventStream<Event> {
        self.inner.events.subscribe()
    }

    /// Sets (or replaces) the synchronous validator of `topic`: it runs inline on every
    /// message for the topic, and on our own publishes.
    pub fn set_validator(
        &self,
        topic: &str,
        validator: impl Fn(&PeerId, &Message) -> Acceptance + Send + Sync + 'static,
    ) {
        let mut state = self.inner.lock();
        with_core!(&mut state.core, c => c.set_validator(topic, validator));
    }

    /// Sets (or replaces) the asynchronous validator of `topic`: every message the
    /// synchronous validator (if any) accepted is held until the returned future answers, or
    /// ignored after `Config::validation_timeout`. Our own publishes skip it.
    pub fn set_async_validator<F, Fut>(&self, topic: &str, validator: F)
    where
        F: Fn(PeerId, Message) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Acceptance> + Send + 'static,
    {
        let validator: AsyncValidatorFn =
            Arc::new(move |peer, message| validator(peer, message).boxed());
        let topic = Topic::new(topic);
        let mut state = self.inner.lock();
        state.async_validators.insert(topic.clone(), validator);
        with_core!(&mut state.core, c => c.set_async_validation(topic, true));
    }

    /// Removes both validators of `topic`.
    pub fn remove_validators(&self, topic: &str) {
        let topic = Topic::new(topic);
        let mut state = self.inner.lock();
        state.async_validators.remove(&topic);
        with_core!(&mut state.core, c => c.remove_validators(&topic));
    }

    /// A peer's score (gossipsub with scoring on), `None` otherwise.
    pub fn peer_score(&self, peer: &PeerId) -> Option<f64> {
        let state = self.inner.lock();
        with_core!(&state.core, c => c.peer_score(peer, self.inner.runtime.now()))
    }

    /// The scores of every connected pubsub peer as a histogram over [`SCORE_BUCKETS`];
    /// `None` when scoring is off (gossipsub without scoring, or floodsub). For metrics:
    /// how many peers sit under each of the router's thresholds, with no peer id exposed.
    pub fn score_histogram(&self) -> Option<Histogram> {
        let state = self.inner.lock();
        let now = self.inner.runtime.now();
        with_core!(&state.core, c => {
            // A router that keeps scores scores any peer id, ours included.
            c.peer_score(&self.inner.local_peer_id, now)?;
            let mut histogram = Histogram::new(SCORE_BUCKETS);
            for peer in c.connected_peers() {
                histogram.observe(c.peer_score(peer, now)?);
            }
            Some(histogram)
        })
    }

    /// Sets a peer's application-specific score (P₅); false when scoring is off.
    pub fn set_application_score(&self, peer: &PeerId, score: f64) -> bool {
        let mut state = self.inner.lock();
        with_core!(&mut state.core, c => c.set_application_score(peer, score))
    }

    /// Stores a peer's signed peer record (an envelope) to offer when gossipsub names the
    /// peer in peer exchange. No effect with floodsub.
    pub fn set_peer_record(&self, peer: PeerId, envelope: Bytes) {
        let mut state = self.inner.lock();
        if let AnyCore::Gossipsub(c) = &mut state.core {
            c.router_mut().set_peer_record(peer, envelope);
        }
    }

    /// What the core counted (RPCs, messages, rejections, drops).
    pub fn counters(&self) -> Counters {
        let state = self.inner.lock();
        with_core!(&state.core, c => c.counters().clone())
    }

    /// Messages dropped because a [`Subscription`] was full.
    pub fn dropped_deliveries(&self) -> u64 {
        self.inner.dropped_deliveries.load(Ordering::Relaxed)
    }
}

/// The driver: host connection events in, the core's timers run on time.
async fn drive(inner: Arc<Inner>, connections: ConnectionEvents, wake_rx: mpsc::Receiver<()>) {
    let _stopping = Stopping(inner.clone());
    let mut connections = connections.fuse();
    let mut wake_rx = wake_rx.fuse();
    loop {
        let deadline = {
            let mut state = inner.lock();
            let deadline = with_core!(&state.core, c => c.poll_timeout());
            state.armed = deadline;
            deadline
        };
        let mut sleep = match deadline {
            Some(at) => inner.runtime.sleep_until(at).fuse(),
            None => futures::future::pending().boxed().fuse(),
        };
        futures::select_biased! {
            event = connections.next() => {
                let Some(event) = event else {
                    debug!("pubsub: connection event stream ended; service stops");
                    return;
                };
                inner.on_connection_event(event);
            }
            _ = wake_rx.next() => {}
            () = sleep => {
                let mut state = inner.lock();
                with_core!(&mut state.core, c => c.handle_timeout(inner.runtime.now()));
                inner.flush(&mut state);
            }
        }
    }
}

/// Runs when the driver ends (the host closed and aborted it): drops every link and ends
/// every subscription stream, so nothing waits on a service that is gone.
struct Stopping(Arc<Inner>);

impl Drop for Stopping {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.subscribers.clear();
        state.async_validators.clear();
        let peers: Vec<PeerId> = state.peers.keys().copied().collect();
        for peer in peers {
            self.0.remove_peer(&mut state, &peer);
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Drains the core's output after an input: wakes writers, delivers messages, starts
    /// validations and dials, forwards events, and re-arms the driver's timer if needed.
    fn flush(self: &Arc<Self>, state: &mut State) {
        while let Some(peer) = with_core!(&mut state.core, c => c.poll_ready_peer()) {
            if let Some(PeerEntry {
                link: Link::Ready { writer, .. },
                ..
            }) = state.peers.get_mut(&peer)
            {
                // A full channel means a wake-up is pending already.
                let _ = writer.try_send(());
            }
        }
        while let Some(event) = with_core!(&mut state.core, c => c.poll_event()) {
            self.dispatch(state, event);
        }
        let next = with_core!(&state.core, c => c.poll_timeout());
        let earlier = match (next, state.armed) {
            (Some(next), Some(armed)) => next < armed,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if earlier {
            state.armed = next;
            let _ = state.wake.try_send(());
        }
    }

    fn dispatch(self: &Arc<Self>, state: &mut State, event: Event) {
        match event {
            Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let Some(slots) = state.subscribers.get_mut(&message.topic) else {
                    return;
                };
                let delivery = Delivery {
                    message,
                    message_id,
                    propagation_source,
                };
                for slot in slots.iter_mut() {
                    if let Err(err) = slot.tx.try_send(delivery.clone())
                        && err.is_full()
                    {
                        let n = self.dropped_deliveries.fetch_add(1, Ordering::Relaxed) + 1;
                        warn!(topic = %delivery.message.topic, dropped_total = n, "pubsub subscriber not keeping up; message dropped for it");
                    }
                }
            }
            Event::ValidationRequested {
                propagation_source,
                message_id,
                message,
            } => {
                let Some(validator) = state.async_validators.get(&message.topic).cloned() else {
                    // Validation was turned on without a validator: nothing will answer.
                    with_core!(&mut state.core, c => c.report_validation_result(&message_id, Acceptance::Ignore, self.runtime.now()));
                    return;
                };
                let inner = self.clone();
                self.runtime.spawn_detached(async move {
                    let acceptance = validator(propagation_source, message).await;
                    let mut state = inner.lock();
                    with_core!(&mut state.core, c => c.report_validation_result(&message_id, acceptance, inner.runtime.now()));
                    inner.flush(&mut state);
                });
            }
            Event::PeerExchange { from, topic, peers } => {
                for px in &peers {
                    self.dial(px.peer_id, px.addresses.clone());
                }
                self.events
                    .emit(&Event::PeerExchange { from, topic, peers });
            }
            Event::ConnectExplicitPeer { peer } => {
                self.dial(peer, Vec::new());
                self.events.emit(&Event::ConnectExplicitPeer { peer });
            }
            other => self.events.emit(&other),
        }
    }

    /// Connects to a peer offered by PX or configured as explicit, within
    /// [`DEFAULT_MAX_PENDING_DIALS`].
    fn dial(self: &Arc<Self>, peer: PeerId, addrs: Vec<Multiaddr>) {
        let Some(host) = self.host.upgrade() else {
            return;
        };
        if peer == self.local_peer_id || host.is_connected(&peer) {
            return;
        }
        if self
            .pending_dials
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < DEFAULT_MAX_PENDING_DIALS).then_some(n + 1)
            })
            .is_err()
        {
            debug!(%peer, "pubsub: too many dials in flight; peer not dialed");
            return;
        }
        let inner = self.clone();
        self.runtime.spawn_detached(async move {
            if let Err(err) = host.connect(peer, addrs).await {
                debug!(%peer, %err, "pubsub: dialing a PX or explicit peer failed");
            }
            inner.pending_dials.fetch_sub(1, Ordering::AcqRel);
        });
    }

    fn on_connection_event(self: &Arc<Self>, event: ConnectionEvent) {
        match event {
            ConnectionEvent::Established(connection) => self.ensure_link(connection),
            ConnectionEvent::Closed {
                connection: closed, ..
            } => {
                let peer = closed.peer();
                let connection_id = closed.id();
                // What is connected now, not the event's `num_remaining`: events arrive
                // late, and a connection that came up meanwhile may already carry the peer's
                // new streams (retiring the peer would abort their readers and lose what
                // they carry). Looked up under our lock: a reader of a stream on a newer
                // connection joins the peer's entry only after that connection is in the
                // swarm's table, so either we see it here or the reader comes after us and
                // finds the peer draining (and starts a new link).
                // (The host handle outlives the guard: its last drop must not run under it.)
                let host = self.host.upgrade();
                let mut state = self.lock();
                let remaining = host.as_ref().and_then(|h| {
                    h.connections(&peer)
                        .into_iter()
                        .find(|c| c.id() != connection_id && !c.is_closed())
                });
                let carried = matches!(
                    state.peers.get(&peer),
                    Some(PeerEntry { link: Link::Ready { connection, .. }, .. }) if connection.id() == connection_id
                );
                match remaining {
                    None => self.retire_peer(&mut state, &peer),
                    // Our stream went down with that connection; another one remains.
                    Some(connection) if carried => self.move_link(state, connection),
                    Some(_) => {}
                }
            }
        }
    }

    /// Re-opens our outbound stream to a linked peer on `connection` after the one carrying
    /// it closed, keeping the peer in the core (see [`Link::Moving`]). Readers of inbound
    /// streams on other connections keep reading: removing the peer here would drop
    /// subscriptions it already sent on its new stream, and it never sends them again.
    fn move_link(self: &Arc<Self>, mut state: MutexGuard<'_, State>, connection: Connection) {
        let peer = connection.peer();
        let generation = state.next_id();
        let Some(entry) = state.peers.get_mut(&peer) else {
            return;
        };
        // Dropping the old writer's wake-up sender ends it; what it had taken but not
        // written went down with its connection.
        entry.generation = generation;
        entry.link = Link::Moving;
        entry.writing = false;
        with_core!(&mut state.core, c => c.resend_subscriptions(&peer));
        drop(state);
        debug!(%peer, connection = %connection.id(), "pubsub: link moves to another connection");
        let inner = self.clone();
        self.runtime
            .spawn_detached(async move { inner.open_outbound(connection, generation).await });
    }

    /// Starts opening our outbound stream to the connection's peer unless a link exists.
    fn ensure_link(self: &Arc<Self>, connection: Connection) {
        let peer = connection.peer();
        if peer == self.local_peer_id {
            return;
        }
        let mut state = self.lock();
        match state.peers.get(&peer).map(|e| &e.link) {
            // A new connection from a peer whose old one is still being drained: the old
            // link ends now.
            Some(Link::Draining) => self.remove_peer(&mut state, &peer),
            Some(_) => return,
            None => {}
        }
        let generation = state.next_id();
        state.peers.insert(peer, PeerEntry::new(generation));
        drop(state);
        let inner = self.clone();
        self.runtime
            .spawn_detached(async move { inner.open_outbound(connection, generation).await });
    }

    async fn open_outbound(self: Arc<Self>, connection: Connection, generation: u64) {
        let peer = connection.peer();
        let Some(host) = self.host.upgrade() else {
            return;
        };
        let opened = host
            .new_stream_on(&connection, self.protocols.iter().copied())
            .await;
        drop(host);
        if let Some((stream, notified)) = self.link_up(&connection, generation, opened) {
            if stream.protocol().as_str() == crate::FLOODSUB_PROTOCOL {
                self.write_floodsub(connection, generation, stream, notified)
                    .await;
            } else {
                self.write_outbound(peer, generation, stream, notified)
                    .await;
            }
        }
    }

    /// Puts a peer whose outbound stream negotiation finished into the core (or forgets it
    /// when the negotiation failed); returns what its writer needs.
    fn link_up(
        self: &Arc<Self>,
        connection: &Connection,
        generation: u64,
        opened: Result<HostStream, lp2p_host::HostError>,
    ) -> Option<(HostStream, mpsc::Receiver<()>)> {
        let peer = connection.peer();
        let mut state = self.lock();
        let current = state
            .peers
            .get(&peer)
            .is_some_and(|e| e.generation == generation);
        if !current {
            return None;
        }
        let stream = match opened {
            Ok(stream) => stream,
            Err(err) => {
                debug!(%peer, %err, "pubsub: no pubsub stream to peer");
                self.remove_peer(&mut state, &peer);
                return None;
            }
        };
        let Some(kind) = PeerKind::from_protocol(stream.protocol().as_str()) else {
            self.remove_peer(&mut state, &peer);
            return None;
        };
        let (writer, notified) = mpsc::channel(0);
        let (waiters, in_core) = match state.peers.get_mut(&peer) {
            Some(entry) => match std::mem::replace(
                &mut entry.link,
                Link::Ready {
                    writer,
                    connection: connection.clone(),
                },
            ) {
                Link::Connecting { waiters } => (waiters, false),
                Link::Moving | Link::Ready { .. } | Link::Draining => (Vec::new(), true),
            },
            None => return None,
        };
        if in_core {
            // A moved link: the new writer's first look takes what queued meanwhile.
            drop(state);
            debug!(%peer, "pubsub: peer link moved");
            return Some((stream, notified));
        }
        let link = PeerConnection {
            kind,
            direction: match connection.direction() {
                lp2p_host::Direction::Outbound => Direction::Outbound,
                lp2p_host::Direction::Inbound => Direction::Inbound,
            },
            ip: ip_of(connection.remote_addr()),
        };
        with_core!(&mut state.core, c => c.add_peer(peer, link, self.runtime.now()));
        for waiter in waiters {
            let _ = waiter.send(());
        }
        self.flush(&mut state);
        drop(state);
        debug!(%peer, ?kind, "pubsub: peer link up");
        Some((stream, notified))
    }

    /// The writer of the link `generation` failed. When its connection went down and
    /// another to the peer remains, the link moves there (the writer often learns of the
    /// close before the lifecycle event arrives); otherwise the peer leaves.
    fn link_failed(self: &Arc<Self>, peer: &PeerId, generation: u64) {
        // Live connections only (the swarm may not have dropped the failed one yet), looked
        // up under our lock as in the close event's handling.
        let host = self.host.upgrade();
        let mut state = self.lock();
        let live: Vec<Connection> = host
            .as_ref()
            .map(|h| h.connections(peer))
            .unwrap_or_default()
            .into_iter()
            .filter(|c| !c.is_closed())
            .collect();
        // A draining link's writer failing is expected: its connection is gone.
        let carried_by = match state.peers.get(peer) {
            Some(e) if e.generation == generation => match &e.link {
                Link::Ready { connection, .. } => Some(connection.clone()),
                Link::Draining => return,
                Link::Connecting { .. } | Link::Moving => None,
            },
            _ => return,
        };
        // Only when the link's own connection is gone: a peer that resets our stream on a
        // live connection is not asked again on another one.
        let next = carried_by
            .filter(Connection::is_closed)
            .and_then(|carried| live.into_iter().find(|c| c.id() != carried.id()));
        match next {
            Some(connection) => self.move_link(state, connection),
            None => self.remove_peer(&mut state, peer),
        }
    }

    /// The peer's last connection closed: it leaves at once when nothing of it is left to
    /// read, otherwise once its readers drained what the connection delivered (see
    /// [`Link::Draining`]).
    fn retire_peer(self: &Arc<Self>, state: &mut State, peer: &PeerId) {
        match state.peers.get_mut(peer) {
            Some(entry)
                if matches!(entry.link, Link::Ready { .. } | Link::Moving)
                    && !entry.readers.is_empty() =>
            {
                // Dropping the writer's wake-up sender ends the writer; flush callers
                // waiting on this peer learn it is lost.
                entry.link = Link::Draining;
                entry.drain_waiters.clear();
                entry.writing = false;
                debug!(%peer, readers = entry.readers.len(), "pubsub: peer disconnected; draining its inbound streams");
            }
            _ => self.remove_peer(state, peer),
        }
    }

    fn remove_peer(self: &Arc<Self>, state: &mut State, peer: &PeerId) {
        let Some(entry) = state.peers.remove(peer) else {
            return;
        };
        for (_, reader) in entry.readers {
            reader.abort();
        }
        if matches!(
            entry.link,
            Link::Ready { .. } | Link::Moving | Link::Draining
        ) {
            with_core!(&mut state.core, c => c.remove_peer(peer, self.runtime.now()));
            self.flush(state);
            debug!(%peer, "pubsub: peer link down");
        }
    }

    /// Serves an inbound pubsub stream: waits until our outbound link to the peer is up, then
    /// reads its RPCs into the core until it ends, fails, or newer streams push it out.
    async fn read_inbound(self: Arc<Self>, stream: HostStream) {
        let peer = stream.peer();
        let connection = stream.connection().clone();
        let (abort, registration) = AbortHandle::new_pair();
        let (reader_id, wait) = {
            let mut state = self.lock();
            let reader_id = state.next_id();
            // A stream of a draining peer that arrived on its closed connection joins the
            // drain; on a new connection, it starts a new link.
            let linked = state
                .peers
                .get(&peer)
                .is_some_and(|e| !matches!(e.link, Link::Draining) || connection.is_closed());
            if !linked {
                drop(state);
                self.ensure_link(connection);
                state = self.lock();
            }
            let Some(entry) = state.peers.get_mut(&peer) else {
                return;
            };
            entry.readers.push_back((reader_id, abort));
            while entry.readers.len() > DEFAULT_MAX_INBOUND_STREAMS_PER_PEER {
                // Only the most recent inbound streams are read.
                if let Some((_, oldest)) = entry.readers.pop_front() {
                    oldest.abort();
                }
            }
            let wait = match &mut entry.link {
                Link::Connecting { waiters } => {
                    let (tx, rx) = oneshot::channel();
                    waiters.push(tx);
                    Some(rx)
                }
                Link::Moving | Link::Ready { .. } | Link::Draining => None,
            };
            (reader_id, wait)
        };
        let reading = Abortable::new(self.clone().read_frames(peer, stream, wait), registration);
        let _ = reading.await;
        let mut state = self.lock();
        if let Some(entry) = state.peers.get_mut(&peer) {
            entry.readers.retain(|(id, _)| *id != reader_id);
            if entry.readers.is_empty() && matches!(entry.link, Link::Draining) {
                self.remove_peer(&mut state, &peer);
            }
        }
    }

    async fn read_frames(
        self: Arc<Self>,
        peer: PeerId,
        mut stream: HostStream,
        wait: Option<oneshot::Receiver<()>>,
    ) {
        if let Some(ready) = wait
            && ready.await.is_err()
        {
            // Our outbound link failed: the peer is not a pubsub peer for us.
            return;
        }
        // Each RPC's announced length is reserved before it is read, and returned once the
        // core has handled it. Messages the core keeps from it are reserved again by the
        // send queues they wait in; its caches and validation queue have their own caps.
        let mut memory = self.memory.service_account(MEMORY_SERVICE, &peer);
        loop {
            let read =
                lp2p_core::framing::read_frame_reserved(&mut stream, self.max_frame, &mut *memory)
                    .await;
            match read {
                Ok(Some(body)) => {
                    let len = body.len();
                    let mut state = self.lock();
                    let handled = with_core!(&mut state.core, c => c.handle_rpc(peer, Bytes::from(body), self.runtime.now()));
                    self.flush(&mut state);
                    drop(state);
                    memory.shrink(len);
                    if let Err(err) = handled {
                        debug!(%peer, %err, "pubsub: bad RPC; inbound stream reset");
                        lp2p_core::Stream::reset(&mut stream);
                        return;
                    }
                }
                Ok(None) => {
                    debug!(%peer, "pubsub: inbound stream closed by peer");
                    return;
                }
                Err(lp2p_core::Error::OutOfMemory(denied)) => {
                    let mut state = self.lock();
                    let counters = with_core!(&mut state.core, c => c.counters_mut());
                    counters.rpcs_refused_for_memory =
                        counters.rpcs_refused_for_memory.saturating_add(1);
                    drop(state);
                    debug!(%peer, %denied, "pubsub: no memory for an inbound RPC; stream reset");
                    lp2p_core::Stream::reset(&mut stream);
                    return;
                }
                Err(err) => {
                    debug!(%peer, %err, "pubsub: reading inbound stream failed");
                    lp2p_core::Stream::reset(&mut stream);
                    return;
                }
            }
        }
    }

    fn drop_subscription(self: &Arc<Self>, topic: &Topic, id: u64) {
        let mut state = self.lock();
        let Some(slots) = state.subscribers.get_mut(topic) else {
            return;
        };
        slots.retain(|slot| slot.id != id);
        if !slots.is_empty() {
            return;
        }
        state.subscribers.remove(topic);
        with_core!(&mut state.core, c => c.unsubscribe(topic, self.runtime.now()));
        self.flush(&mut state);
    }
}

impl Unsubscribe for Arc<Inner> {
    fn unsubscribe(&self, topic: &Topic, id: u64) {
        self.drop_subscription(topic, id);
    }
}

/// The IP address of a connection's remote address, for the colocation score (P₆).
fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

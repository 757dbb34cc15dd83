//! The async shell: one task per host that owns the [`Core`], the per-interface sockets and
//! the timers, and hands discoveries to the peerstore and to [`Mdns::events`] subscribers.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;
use std::time::Instant;

use async_io::Async;
use futures::channel::oneshot;
use futures::stream::{AbortHandle, BoxStream, SelectAll};
use futures::{FutureExt, StreamExt};
use lp2p_core::events::EventBus;
use lp2p_core::{Multiaddr, PeerId, RuntimeHandle};
use lp2p_host::{EventStream, Host, HostEvent, WeakHost};

use crate::config::{MdnsConfig, RECV_BUFFER_SIZE};
use crate::core::{Core, Destination, Event, Transmit};
use crate::iface::IfaceKey;
use crate::{MdnsError, MdnsStats, sys};

/// What mDNS reports to [`Mdns::events`] subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MdnsEvent {
    /// A peer we did not know announced itself (or came back after expiring). Its
    /// addresses are in the peerstore now, valid for the TTL it announced.
    Discovered {
        /// The peer.
        peer: PeerId,
        /// Its addresses (without `/p2p`).
        addrs: Vec<Multiaddr>,
    },
    /// A known peer announced more addresses; `addrs` is the full current set.
    Updated {
        /// The peer.
        peer: PeerId,
        /// All its current addresses (without `/p2p`).
        addrs: Vec<Multiaddr>,
    },
    /// A peer's addresses all expired, or it said goodbye.
    Expired {
        /// The peer.
        peer: PeerId,
    },
}

/// The mDNS discovery service of one host. Cheap to clone (a handle).
///
/// It runs as a task of the host until [`Mdns::stop`] or `host.close()`: it finds the
/// multicast-capable interfaces (again every
/// [`interface_poll_interval`](MdnsConfig::interface_poll_interval)), opens one socket per
/// interface and IP version, queries for peers and answers their queries with the host's
/// listen addresses that are reachable on each interface.
#[derive(Clone)]
pub struct Mdns {
    shared: Arc<Shared>,
}

struct Shared {
    local: PeerId,
    peer_name: String,
    bus: EventBus<MdnsEvent>,
    state: Mutex<Snapshot>,
    stop: Mutex<Option<oneshot::Sender<oneshot::Sender<()>>>>,
}

#[derive(Default)]
struct Snapshot {
    peers: HashMap<PeerId, Vec<Multiaddr>>,
    stats: MdnsStats,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, Snapshot> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for Mdns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mdns")
            .field("local", &self.shared.local)
            .field("peer_name", &self.shared.peer_name)
            .finish_non_exhaustive()
    }
}

impl Mdns {
    /// Starts mDNS discovery on `host` (a task of the host). Fails only on a bad
    /// configuration (an invalid service name) or a closed host; interface and socket
    /// problems are logged, counted in [`Mdns::stats`] and retried.
    pub fn new(host: &Host, config: MdnsConfig) -> Result<Mdns, MdnsError> {
        if host.is_closed() {
            return Err(MdnsError::HostClosed);
        }
        let event_capacity = config.event_capacity;
        let core = Core::new(config, host.local_peer_id(), rand::random())?;
        let (stop_tx, stop_rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            local: host.local_peer_id(),
            peer_name: core.peer_name().to_owned(),
            bus: EventBus::new(event_capacity),
            state: Mutex::new(Snapshot::default()),
            stop: Mutex::new(Some(stop_tx)),
        });
        // Subscribe before the task starts, so no listen-address change is missed.
        let host_events = host.events();
        let task = Task {
            host: host.downgrade(),
            runtime: host.runtime().clone(),
            core,
            shared: shared.clone(),
            sockets: HashMap::new(),
            readers: SelectAll::new(),
            reader_aborts: HashMap::new(),
        };
        host.spawn(task.run(host_events, stop_rx));
        tracing::debug!(peer = %shared.local, peer_name = %shared.peer_name, "mDNS started");
        Ok(Mdns { shared })
    }

    /// Discoveries and expiries from now on. Subscribe, then read [`Mdns::peers`] for the
    /// ones before.
    pub fn events(&self) -> EventStream<MdnsEvent> {
        self.shared.bus.subscribe()
    }

    /// The peers known now, with their addresses (without `/p2p`).
    pub fn peers(&self) -> Vec<(PeerId, Vec<Multiaddr>)> {
        self.shared
            .state()
            .peers
            .iter()
            .map(|(p, a)| (*p, a.clone()))
            .collect()
    }

    /// Counters: packets, malformed input, drops at each limit.
    pub fn stats(&self) -> MdnsStats {
        self.shared.state().stats.clone()
    }

    /// Our random mDNS peer name (the label we answer under).
    pub fn peer_name(&self) -> &str {
        &self.shared.peer_name
    }

    /// Says goodbye on every interface (our records with TTL 0, so peers forget us now
    /// rather than when our TTL runs out) and stops the service. Returns once it stopped;
    /// at once if it was stopped already.
    pub async fn stop(&self) {
        let sender = self
            .shared
            .stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(sender) = sender {
            let (done_tx, done_rx) = oneshot::channel();
            if sender.send(done_tx).is_ok() {
                let _ = done_rx.await;
            }
        }
    }
}

type Datagram = (IfaceKey, io::Result<(Vec<u8>, SocketAddr)>);

/// What woke the task.
enum Wake {
    Datagram(Datagram),
    HostEvent(Option<HostEvent>),
    Stop(Option<oneshot::Sender<()>>),
    Timer,
}

struct Task {
    host: WeakHost,
    runtime: RuntimeHandle,
    core: Core,
    shared: Arc<Shared>,
    sockets: HashMap<IfaceKey, Arc<Async<UdpSocket>>>,
    readers: SelectAll<BoxStream<'static, Datagram>>,
    reader_aborts: HashMap<IfaceKey, AbortHandle>,
}

impl Task {
    async fn run(
        mut self,
        mut host_events: EventStream<HostEvent>,
        mut stop: oneshot::Receiver<oneshot::Sender<()>>,
    ) {
        let poll_interval = self.core.config().interface_poll_interval;
        let mut next_poll = self.runtime.now();
        if let Some(host) = self.host.upgrade() {
            self.core.set_listen_addrs(host.listen_addrs(), next_poll);
        }
        let done = loop {
            let now = self.runtime.now();
            if now >= next_poll {
                self.refresh_interfaces(now);
                next_poll = now.checked_add(poll_interval).unwrap_or(now);
            }
            self.core.handle_timeout(now);
            self.flush().await;

            let deadline = self
                .core
                .poll_timeout()
                .map_or(next_poll, |t| t.min(next_poll));
            let mut sleep = self.runtime.sleep_until(deadline);
            let readers = &mut self.readers;
            let wake = futures::future::poll_fn(|cx| {
                if let Poll::Ready(reply) = stop.poll_unpin(cx) {
                    return Poll::Ready(Wake::Stop(reply.ok()));
                }
                if !readers.is_empty()
                    && let Poll::Ready(Some(datagram)) = readers.poll_next_unpin(cx)
                {
                    return Poll::Ready(Wake::Datagram(datagram));
                }
                if let Poll::Ready(event) = host_events.poll_next_unpin(cx) {
                    return Poll::Ready(Wake::HostEvent(event));
                }
                if sleep.poll_unpin(cx).is_ready() {
                    return Poll::Ready(Wake::Timer);
                }
                Poll::Pending
            })
            .await;
            match wake {
                Wake::Datagram((key, Ok((bytes, from)))) => {
                    let now = self.runtime.now();
                    if let Err(err) = self.core.handle_packet(key, from, &bytes, now) {
                        tracing::debug!(%err, "mDNS packet dropped");
                    }
                }
                Wake::Datagram((key, Err(err))) => {
                    tracing::warn!(%err, ?key, "mDNS socket failed; reopened at the next interface check");
                    self.core.stats_mut().socket_errors =
                        self.core.stats_mut().socket_errors.saturating_add(1);
                    self.close_socket(key);
                    self.core.remove_interface(key);
                }
                Wake::HostEvent(None) => break None,
                Wake::HostEvent(Some(
                    HostEvent::ListenAddrAdded(_) | HostEvent::ListenAddrRemoved(_),
                )) => {
                    if let Some(host) = self.host.upgrade() {
                        let now = self.runtime.now();
                        self.core.set_listen_addrs(host.listen_addrs(), now);
                    }
                }
                Wake::HostEvent(Some(_)) | Wake::Timer => {}
                Wake::Stop(reply) => break reply,
            }
        };
        // Goodbye only on an explicit stop: when the host closes, the sockets may be gone.
        if let Some(reply) = done {
            for transmit in self.core.goodbye() {
                self.send(&transmit).await;
            }
            self.publish_stats();
            self.shared.bus.close();
            let _ = reply.send(());
        } else {
            self.shared.bus.close();
        }
        tracing::debug!(peer = %self.shared.local, "mDNS stopped");
    }

    /// Reads the interface list, opens sockets for new interfaces, closes the others.
    fn refresh_interfaces(&mut self, now: Instant) {
        let (list, subnets) = match sys::list_interfaces() {
            Ok(found) => found,
            Err(err) => {
                tracing::warn!(%err, "mDNS cannot list interfaces");
                return;
            }
        };
        self.core.set_subnets(subnets);
        let changes = self.core.set_interfaces(list, now);
        for key in changes.removed {
            tracing::debug!(?key, "mDNS interface gone");
            self.close_socket(key);
        }
        for key in changes.added {
            let Some(iface) = self.core.interface(key).cloned() else {
                continue;
            };
            match sys::open_socket(key, &iface) {
                Ok(socket) => {
                    tracing::debug!(interface = %iface.name, family = key.family.as_str(), "mDNS socket open");
                    let socket = Arc::new(socket);
                    self.sockets.insert(key, socket.clone());
                    let (reader, abort) = futures::stream::abortable(datagrams(key, socket));
                    self.reader_aborts.insert(key, abort);
                    self.readers.push(reader.boxed());
                }
                Err(err) => {
                    tracing::warn!(%err, "mDNS cannot use an interface; retried later");
                    self.core.stats_mut().socket_errors =
                        self.core.stats_mut().socket_errors.saturating_add(1);
                    self.core.remove_interface(key);
                }
            }
        }
    }

    fn close_socket(&mut self, key: IfaceKey) {
        self.sockets.remove(&key);
        if let Some(abort) = self.reader_aborts.remove(&key) {
            abort.abort();
        }
    }

    /// Sends what the core queued and hands its events on.
    async fn flush(&mut self) {
        while let Some(transmit) = self.core.poll_transmit() {
            self.send(&transmit).await;
        }
        let host = self.host.upgrade();
        while let Some(event) = self.core.poll_event() {
            self.deliver(host.as_ref(), event);
        }
        self.publish_stats();
    }

    /// Sends from the interface's socket, so the packet leaves from port 5353 as RFC 6762
    /// asks of multicast and unicast answers alike (§6, §6.7, §11). A unicast one is routed
    /// by the system's table to the querier, which the core checked is on that interface's
    /// link.
    async fn send(&mut self, transmit: &Transmit) {
        let key = transmit.iface;
        let Some(socket) = self.sockets.get(&key).cloned() else {
            return;
        };
        let to = match transmit.to {
            Destination::Multicast => sys::group_addr(key),
            Destination::Unicast(addr) => addr,
        };
        if let Err(err) = socket.send_to(&transmit.payload, to).await {
            tracing::debug!(%err, ?key, %to, "mDNS send failed");
            let stats = self.core.stats_mut();
            stats.send_errors = stats.send_errors.saturating_add(1);
        }
    }

    fn deliver(&self, host: Option<&Host>, event: Event) {
        let public = match event {
            Event::Discovered { peer, addrs, ttl } => {
                self.remember(host, peer, &addrs, ttl);
                tracing::debug!(%peer, addrs = addrs.len(), "mDNS discovered a peer");
                Some(MdnsEvent::Discovered { peer, addrs })
            }
            Event::Updated { peer, addrs, ttl } => {
                self.remember(host, peer, &addrs, ttl);
                Some(MdnsEvent::Updated { peer, addrs })
            }
            Event::Refreshed { peer, addrs, ttl } => {
                if let Some(host) = host {
                    let _ = host.peerstore().add_addrs(&peer, addrs, ttl);
                }
                None
            }
            Event::Expired { peer } => {
                self.shared.state().peers.remove(&peer);
                tracing::debug!(%peer, "mDNS peer expired");
                Some(MdnsEvent::Expired { peer })
            }
        };
        if let Some(event) = public {
            self.shared.bus.emit(&event);
        }
    }

    fn remember(
        &self,
        host: Option<&Host>,
        peer: PeerId,
        addrs: &[Multiaddr],
        ttl: std::time::Duration,
    ) {
        self.shared.state().peers.insert(peer, addrs.to_vec());
        if let Some(host) = host
            && let Err(err) = host.peerstore().add_addrs(&peer, addrs.to_vec(), ttl)
        {
            tracing::debug!(%peer, %err, "peerstore refused mDNS addresses");
        }
    }

    fn publish_stats(&self) {
        let mut stats = self.core.stats().clone();
        stats.events_dropped = self.shared.bus.dropped();
        self.shared.state().stats = stats;
    }
}

/// The datagrams arriving on one socket; ends after the first error.
fn datagrams(
    key: IfaceKey,
    socket: Arc<Async<UdpSocket>>,
) -> impl futures::Stream<Item = Datagram> {
    let buf = vec![0u8; RECV_BUFFER_SIZE];
    futures::stream::unfold(Some((socket, buf)), move |state| async move {
        let (socket, mut buf) = state?;
        match socket.recv_from(&mut buf).await {
            Ok((len, from)) => {
                let bytes = buf.get(..len).unwrap_or_default().to_vec();
                Some(((key, Ok((bytes, from))), Some((socket, buf))))
            }
            Err(err) => Some(((key, Err(err)), None)),
        }
    })
}

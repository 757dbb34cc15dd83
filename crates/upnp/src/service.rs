//! The host service: a task that keeps one [`Mapping`] per mappable listen port, runs
//! their actions through the [`Client`], publishes [`PortMappingEvent`]s, hands mapped
//! addresses to AutoNAT as candidates, and removes the mappings when the host closes.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::channel::oneshot;
use futures::{FutureExt, StreamExt};
use lp2p_autonat::AutonatClient;
use lp2p_core::events::EventBus;
use lp2p_core::multiaddr::Protocol as Ma;
use lp2p_core::{Multiaddr, RuntimeHandle};
use lp2p_host::{EventStream, Host, HostEvent, WeakHost};

use crate::client::GatewayClient;
use crate::{Mapping, MappingEvent, Method, PortMapperConfig, Protocol, UpnpError};

/// What the port mapper reports to [`PortMapper::events`] subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PortMappingEvent {
    /// The gateway forwards `external` to our `internal_port` now (a new mapping, or one
    /// the gateway moved). The address was offered to AutoNAT as a candidate.
    Mapped {
        /// TCP or UDP.
        protocol: Protocol,
        /// Our listening port.
        internal_port: u16,
        /// How it was made.
        method: Method,
        /// The external address, in the shape of our listen address
        /// (`/ip4/X/tcp/P`, `/ip4/X/udp/P/quic-v1`).
        external: Multiaddr,
        /// How long it lasts; zero for a permanent lease.
        lifetime: Duration,
    },
    /// A renewal succeeded.
    Renewed {
        /// TCP or UDP.
        protocol: Protocol,
        /// Our listening port.
        internal_port: u16,
        /// How it was made.
        method: Method,
        /// The external address.
        external: Multiaddr,
        /// The new lifetime.
        lifetime: Duration,
    },
    /// Every method failed; they are tried again after `retry_in`.
    Failed {
        /// TCP or UDP.
        protocol: Protocol,
        /// Our listening port.
        internal_port: u16,
        /// Each method's reason, in the order tried (`"pcp: ..."`).
        reasons: Vec<String>,
        /// When the next round starts.
        retry_in: Duration,
    },
    /// A mapping lapsed (renewals failed until it expired); methods are tried again.
    Expired {
        /// TCP or UDP.
        protocol: Protocol,
        /// Our listening port.
        internal_port: u16,
        /// How it had been made.
        method: Method,
        /// The address it had.
        external: Multiaddr,
    },
    /// A mapping was removed (the listen address went away, or the service stopped).
    Removed {
        /// TCP or UDP.
        protocol: Protocol,
        /// Our listening port.
        internal_port: u16,
        /// How it had been made.
        method: Method,
        /// The address it had.
        external: Multiaddr,
        /// Set when the gateway did not confirm the removal.
        error: Option<String>,
    },
}

/// A mapping held now (see [`PortMapper::mappings`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveMapping {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// Our listening port.
    pub internal_port: u16,
    /// How it was made.
    pub method: Method,
    /// The external address.
    pub external: Multiaddr,
}

/// Port mapping for one host. Cheap to clone (a handle).
///
/// It maps the host's IPv4 TCP and QUIC listen ports (on `0.0.0.0` or a private address)
/// with the first method that works ([`MappingConfig::methods`](crate::MappingConfig)),
/// renews them, offers each mapped address to the host's
/// [`AutonatClient`](lp2p_autonat::AutonatClient) (if one is registered) as a candidate
/// for testing, and removes the mappings when [`stop`](PortMapper::stop) is called or the
/// host closes. It never declares an address external itself: AutoNAT confirms it.
#[derive(Clone)]
pub struct PortMapper {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PortMapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortMapper")
            .field("mappings", &self.mappings())
            .finish_non_exhaustive()
    }
}

struct Shared {
    bus: EventBus<PortMappingEvent>,
    active: Mutex<Vec<ActiveMapping>>,
    stop: Mutex<Option<oneshot::Sender<oneshot::Sender<()>>>>,
}

impl Shared {
    fn active(&self) -> MutexGuard<'_, Vec<ActiveMapping>> {
        self.active.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl PortMapper {
    /// Starts mapping `host`'s listen ports (a task of the host). Registers itself as the
    /// host's `PortMapper` service and a close hook that removes the mappings while the
    /// host closes. Fails only when the host is closed.
    pub fn new(host: &Host, config: PortMapperConfig) -> Result<PortMapper, UpnpError> {
        if host.is_closing() {
            return Err(UpnpError::HostClosed);
        }
        let (stop_tx, stop_rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            bus: EventBus::new(config.event_capacity.max(1)),
            active: Mutex::new(Vec::new()),
            stop: Mutex::new(Some(stop_tx)),
        });
        let mapper = PortMapper { shared };
        let host_events = host.events();
        let task = Task {
            host: host.downgrade(),
            runtime: host.runtime().clone(),
            client: GatewayClient::new(host.runtime().clone(), config.clone()),
            config,
            mappings: BTreeMap::new(),
            shared: mapper.shared.clone(),
            seed: rand::random(),
        };
        host.spawn(task.run(host_events, stop_rx));
        let on_close = mapper.clone();
        host.on_close(move || async move { on_close.stop().await });
        host.insert_service(mapper.clone());
        Ok(mapper)
    }

    /// Events from now on. Subscribe, then read [`mappings`](PortMapper::mappings) for the
    /// ones before.
    pub fn events(&self) -> EventStream<PortMappingEvent> {
        self.shared.bus.subscribe()
    }

    /// The mappings held now.
    pub fn mappings(&self) -> Vec<ActiveMapping> {
        self.shared.active().clone()
    }

    /// Removes every mapping (one request per mapping, within the usual timeouts) and stops
    /// the service. Returns when that is done; at once if it was stopped already. The host's
    /// close hook calls it.
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

/// A listen address we can map: its protocol, port and the address itself (the template
/// for the external address).
fn mappable(addr: &Multiaddr) -> Option<(Protocol, u16)> {
    let mut it = addr.iter();
    let Some(Ma::Ip4(ip)) = it.next() else {
        return None;
    };
    // Loopback cannot be forwarded to; a public address needs no mapping.
    if ip.is_loopback() || (!ip.is_unspecified() && lp2p_core::addr::is_public_ip(IpAddr::V4(ip))) {
        return None;
    }
    let key = match (it.next(), it.next()) {
        (Some(Ma::Tcp(p)), _) => (Protocol::Tcp, p),
        (Some(Ma::Udp(p)), Some(Ma::QuicV1)) => (Protocol::Udp, p),
        _ => return None,
    };
    if it.any(|p| matches!(p, Ma::P2pCircuit)) || key.1 == 0 {
        return None;
    }
    Some(key)
}

/// `template` with its IP and port replaced by `external`'s.
fn external_addr(template: &Multiaddr, external: SocketAddr) -> Multiaddr {
    template
        .iter()
        .enumerate()
        .map(|(i, p)| match (i, p) {
            (0, _) => match external.ip() {
                IpAddr::V4(v4) => Ma::Ip4(v4),
                IpAddr::V6(v6) => Ma::Ip6(v6),
            },
            (1, Ma::Tcp(_)) => Ma::Tcp(external.port()),
            (1, Ma::Udp(_)) => Ma::Udp(external.port()),
            (_, p) => p,
        })
        .collect()
}

struct Entry {
    mapping: Mapping,
    template: Multiaddr,
}

struct Task {
    host: WeakHost,
    runtime: RuntimeHandle,
    client: GatewayClient,
    config: PortMapperConfig,
    mappings: BTreeMap<(Protocol, u16), Entry>,
    shared: Arc<Shared>,
    seed: u64,
}

enum Wake {
    Host(Option<HostEvent>),
    Stop(Option<oneshot::Sender<()>>),
    Timer,
}

impl Task {
    async fn run(
        mut self,
        mut host_events: EventStream<HostEvent>,
        mut stop: oneshot::Receiver<oneshot::Sender<()>>,
    ) {
        if let Some(host) = self.host.upgrade() {
            for addr in host.listen_addrs() {
                self.add_listen_addr(&addr);
            }
        }
        let mut host_gone = false;
        loop {
            // Run every due action, one at a time, watching for a stop.
            let now = self.runtime.now();
            let due = self
                .mappings
                .iter_mut()
                .find_map(|(key, e)| e.mapping.poll_action(now).map(|a| (*key, a)));
            if let Some((key, action)) = due {
                let outcome = {
                    let work = self.client.execute(key.0, key.1, action).fuse();
                    futures::pin_mut!(work);
                    futures::select! {
                        r = work => Ok(r),
                        done = stop => Err(done.ok()),
                    }
                };
                match outcome {
                    Ok(result) => {
                        if let Some(e) = self.mappings.get_mut(&key) {
                            e.mapping.handle_result(self.runtime.now(), result);
                        }
                    }
                    Err(done) => {
                        // The request in flight is abandoned; what is held is removed.
                        self.shutdown(done).await;
                        return;
                    }
                }
                if self.client.take_restarted() {
                    let now = self.runtime.now();
                    for e in self.mappings.values_mut() {
                        e.mapping.gateway_restarted(now);
                    }
                }
                self.drain_events();
                continue;
            }
            self.drain_events();
            let next = self
                .mappings
                .values()
                .filter_map(|e| e.mapping.poll_timeout())
                .min();
            let sleep = match next {
                Some(at) => self.runtime.sleep_until(at),
                None => self.runtime.sleep(Duration::from_secs(3600)),
            };
            let wake = {
                let mut sleep = sleep.fuse();
                let mut host_next = if host_gone {
                    futures::future::pending().boxed().fuse()
                } else {
                    host_events.next().boxed().fuse()
                };
                futures::select! {
                    () = sleep => Wake::Timer,
                    ev = host_next => Wake::Host(ev),
                    done = stop => Wake::Stop(done.ok()),
                }
            };
            match wake {
                Wake::Timer => {
                    let now = self.runtime.now();
                    for e in self.mappings.values_mut() {
                        e.mapping.handle_timeout(now);
                    }
                }
                Wake::Host(Some(HostEvent::ListenAddrAdded(addr))) => self.add_listen_addr(&addr),
                Wake::Host(Some(HostEvent::ListenAddrRemoved(addr))) => {
                    if let Some(key) = mappable(&addr)
                        && let Some(e) = self.mappings.get_mut(&key)
                    {
                        e.mapping.shutdown();
                    }
                }
                Wake::Host(Some(_)) => {}
                Wake::Host(None) => host_gone = true,
                Wake::Stop(done) => {
                    self.shutdown(done).await;
                    return;
                }
            }
            self.mappings.retain(|_, e| !e.mapping.is_done());
        }
    }

    fn add_listen_addr(&mut self, addr: &Multiaddr) {
        let Some(key) = mappable(addr) else {
            return;
        };
        let wanted = match key.0 {
            Protocol::Tcp => self.config.map_tcp,
            Protocol::Udp => self.config.map_udp,
        };
        if !wanted || self.mappings.contains_key(&key) {
            return;
        }
        if self.mappings.len() >= self.config.max_mappings {
            tracing::warn!(%addr, limit = self.config.max_mappings, "too many ports to map; not mapping this one");
            return;
        }
        self.seed = self.seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mapping = Mapping::new(
            key.0,
            key.1,
            self.config.mapping.clone(),
            self.runtime.now(),
            self.seed,
        );
        tracing::debug!(%addr, protocol = %key.0, port = key.1, "mapping listen port");
        self.mappings.insert(
            key,
            Entry {
                mapping,
                template: addr.clone(),
            },
        );
    }

    /// Removes every mapping held (within [`PortMapperConfig::removal_budget`]), then
    /// acknowledges the stop.
    async fn shutdown(&mut self, done: Option<oneshot::Sender<()>>) {
        for e in self.mappings.values_mut() {
            e.mapping.shutdown();
        }
        let budget = self.config.removal_budget;
        let deadline = self.runtime.now() + budget;
        let keys: Vec<(Protocol, u16)> = self.mappings.keys().copied().collect();
        for key in keys {
            let now = self.runtime.now();
            let action = self
                .mappings
                .get_mut(&key)
                .and_then(|e| e.mapping.poll_action(now));
            if let Some(action) = action {
                let left = deadline.saturating_duration_since(now);
                let result = match self
                    .runtime
                    .timeout(left, self.client.execute(key.0, key.1, action))
                    .await
                {
                    Ok(r) => r,
                    Err(_) => Err(crate::Failure::Unavailable(format!(
                        "not removed within the {budget:?} removal budget"
                    ))),
                };
                if let Some(e) = self.mappings.get_mut(&key) {
                    e.mapping.handle_result(self.runtime.now(), result);
                }
            }
        }
        self.drain_events();
        self.mappings.clear();
        self.shared.active().clear();
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    fn drain_events(&mut self) {
        let mut out = Vec::new();
        for (&(protocol, internal_port), e) in &mut self.mappings {
            while let Some(ev) = e.mapping.poll_event() {
                let ext = |s: SocketAddr| external_addr(&e.template, s);
                out.push(match ev {
                    MappingEvent::Mapped {
                        method,
                        external,
                        lifetime,
                    } => PortMappingEvent::Mapped {
                        protocol,
                        internal_port,
                        method,
                        external: ext(external),
                        lifetime,
                    },
                    MappingEvent::Renewed {
                        method,
                        external,
                        lifetime,
                    } => PortMappingEvent::Renewed {
                        protocol,
                        internal_port,
                        method,
                        external: ext(external),
                        lifetime,
                    },
                    MappingEvent::Failed { reasons, retry_in } => PortMappingEvent::Failed {
                        protocol,
                        internal_port,
                        reasons,
                        retry_in,
                    },
                    MappingEvent::Expired { method, external } => PortMappingEvent::Expired {
                        protocol,
                        internal_port,
                        method,
                        external: ext(external),
                    },
                    MappingEvent::Removed {
                        method,
                        external,
                        error,
                    } => PortMappingEvent::Removed {
                        protocol,
                        internal_port,
                        method,
                        external: ext(external),
                        error,
                    },
                });
            }
        }
        if out.is_empty() {
            return;
        }
        // The snapshot of what is held.
        let active: Vec<ActiveMapping> = self
            .mappings
            .iter()
            .filter_map(|(&(protocol, internal_port), e)| {
                e.mapping.current().map(|(method, s)| ActiveMapping {
                    protocol,
                    internal_port,
                    method,
                    external: external_addr(&e.template, s),
                })
            })
            .collect();
        *self.shared.active() = active;
        let autonat = self
            .host
            .upgrade()
            .and_then(|h| h.service::<AutonatClient>());
        for ev in out {
            match &ev {
                PortMappingEvent::Mapped {
                    external, method, ..
                } => {
                    tracing::info!(%external, %method, "port mapped");
                    if let Some(client) = &autonat {
                        client.add_candidate(external);
                    }
                }
                PortMappingEvent::Failed { reasons, .. } => {
                    tracing::info!(?reasons, "port mapping failed");
                }
                _ => tracing::debug!(?ev, "port mapping event"),
            }
            self.shared.bus.emit(&ev);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_listen_addresses_are_mapped() {
        let key = |s: &str| mappable(&s.parse().unwrap());
        assert_eq!(key("/ip4/0.0.0.0/tcp/4001"), Some((Protocol::Tcp, 4001)));
        assert_eq!(
            key("/ip4/192.168.1.5/udp/4001/quic-v1"),
            Some((Protocol::Udp, 4001))
        );
        assert_eq!(
            key("/ip4/10.0.0.2/tcp/4002/ws"),
            Some((Protocol::Tcp, 4002))
        );
        assert_eq!(key("/ip4/127.0.0.1/tcp/4001"), None);
        assert_eq!(key("/ip4/8.8.8.8/tcp/4001"), None);
        assert_eq!(key("/ip6/::/tcp/4001"), None);
        assert_eq!(key("/ip4/0.0.0.0/udp/4001"), None);
        assert_eq!(key("/ip4/0.0.0.0/tcp/0"), None);
    }

    #[test]
    fn external_addresses_keep_the_listen_address_shape() {
        let ext: SocketAddr = "11.77.0.1:5000".parse().unwrap();
        let t: Multiaddr = "/ip4/0.0.0.0/udp/4001/quic-v1".parse().unwrap();
        assert_eq!(
            external_addr(&t, ext).to_string(),
            "/ip4/11.77.0.1/udp/5000/quic-v1"
        );
        let t: Multiaddr = "/ip4/192.168.1.2/tcp/4001/ws".parse().unwrap();
        assert_eq!(
            external_addr(&t, ext).to_string(),
            "/ip4/11.77.0.1/tcp/5000/ws"
        );
    }
}

//! The hop service's async shell: serves `/libp2p/circuit/relay/0.2.0/hop` on a host, asks
//! [`HopCore`] for every decision, opens the stop stream to the target and splices the two
//! streams under the circuit's limits.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use futures::future::{Either, select};
use lp2p_core::{Keypair, Multiaddr, PeerId, Protocol, Stream};
use lp2p_host::{HandlerOptions, Host, HostStream, WeakHost};
use lp2p_swarm::ConnectionEvent;

use crate::RelayError;
use crate::hop::core::{CircuitBudget, CircuitId, HopConfig, HopCore, HopStats};
use crate::io::{DEFAULT_STREAM_TIMEOUT, read_message, unix_now, write_message};
use crate::message::{
    HopMessage, Limit, PROTOCOL_HOP, PROTOCOL_STOP, Reservation, Status, StopMessage,
};
use crate::splice::{Splice, SpliceEnd};
use crate::voucher::Voucher;

/// How often the service looks for reservations that expired without renewal, to let the
/// idle timeout close their connections again. Why 60 s: the swarm's default idle timeout;
/// an expired reservation keeps its connection at most about this much longer.
pub const RESERVATION_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

struct ServiceInner {
    core: Mutex<HopCore>,
    host: WeakHost,
    key: Keypair,
    timeout: Duration,
    /// Peers whose connections we exempted from the idle timeout for their reservation (and
    /// only those: a peer protected by someone else is left alone).
    protected: Mutex<HashSet<PeerId>>,
}

impl ServiceInner {
    fn core(&self) -> MutexGuard<'_, HopCore> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn protected(&self) -> MutexGuard<'_, HashSet<PeerId>> {
        self.protected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A reservation holds the reserving peer's connection open: idle connections are
    /// closed by the swarm, and closing it would end the reservation.
    fn protect(&self, host: &Host, peer: PeerId) {
        if !host.swarm().is_protected(&peer) {
            host.swarm().protect_peer(peer);
            self.protected().insert(peer);
        }
    }

    /// Lifts the protection of peers whose reservations ended (expired or disconnected).
    fn sweep(&self, host: &Host) {
        let now = host.runtime().now();
        let ended: Vec<PeerId> = {
            let mut core = self.core();
            core.expire(now);
            self.protected()
                .iter()
                .filter(|p| !core.has_reservation(p, now))
                .copied()
                .collect()
        };
        for peer in ended {
            self.protected().remove(&peer);
            host.swarm().unprotect_peer(&peer);
            tracing::debug!(%peer, "reservation ended; connection no longer held open");
        }
    }
}

/// A running circuit relay v2 hop service (see the crate docs). Cheap to clone.
#[derive(Clone)]
pub struct RelayService {
    inner: Arc<ServiceInner>,
}

impl std::fmt::Debug for RelayService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayService")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl RelayService {
    /// Starts serving the hop protocol on `host` with `config`. The service registers
    /// itself on the host: `host.service::<RelayService>()` finds it (e.g. for its stats when
    /// it was started by [`hook`](Self::hook)).
    ///
    /// The handler also accepts streams over limited (relayed) connections, so that requests
    /// arriving that way are answered `PERMISSION_DENIED` and counted rather than silently
    /// not negotiated.
    pub fn new(host: &Host, config: HopConfig) -> RelayService {
        let inner = Arc::new(ServiceInner {
            core: Mutex::new(HopCore::new(config)),
            host: host.downgrade(),
            key: host.keypair().clone(),
            timeout: DEFAULT_STREAM_TIMEOUT,
            protected: Mutex::new(HashSet::new()),
        });
        // The handler owns the service state (it lives as long as the host serves the
        // protocol, whether or not anyone keeps the returned handle); the state only holds a
        // weak reference to the host, so there is no cycle.
        let owned = inner.clone();
        host.set_stream_handler_with(
            PROTOCOL_HOP,
            HandlerOptions::allow_limited(),
            move |stream: HostStream| handle_hop(owned.clone(), stream),
        );
        // A reservation lives as long as the reserving peer's connection to us.
        let mut events = host.connection_events();
        let watched = inner.clone();
        host.spawn(async move {
            while let Some(event) = events.next().await {
                let inner = &watched;
                if let ConnectionEvent::Closed {
                    connection,
                    num_remaining: 0,
                    ..
                } = event
                {
                    let peer = connection.peer();
                    if inner.core().peer_disconnected(&peer) {
                        tracing::debug!(%peer, "reservation dropped with its connection");
                    }
                    if let Some(host) = inner.host.upgrade() {
                        inner.sweep(&host);
                    }
                }
            }
        });
        let swept = inner.clone();
        let runtime = host.runtime().clone();
        host.spawn(async move {
            loop {
                runtime.sleep(RESERVATION_SWEEP_INTERVAL).await;
                let Some(host) = swept.host.upgrade() else {
                    return;
                };
                swept.sweep(&host);
            }
        });
        let service = RelayService { inner };
        host.insert_service(service.clone());
        service
    }

    /// A start hook for `HostBuilder::on_start` that runs the service with `config`.
    pub fn hook(config: HopConfig) -> impl FnOnce(&Host) + Send + 'static {
        move |host: &Host| {
            let _service = RelayService::new(host, config);
        }
    }

    /// What the relay granted and refused so far.
    pub fn stats(&self) -> HopStats {
        self.inner.core().stats()
    }

    /// Live reservations.
    pub fn num_reservations(&self) -> usize {
        let now = self.inner.host.upgrade().map(|h| h.runtime().now());
        let mut core = self.inner.core();
        if let Some(now) = now {
            core.expire(now);
        }
        core.num_reservations()
    }

    /// Open circuits.
    pub fn num_circuits(&self) -> usize {
        self.inner.core().num_circuits()
    }
}

fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    match addr.iter().next() {
        Some(Protocol::Ip4(ip)) => Some(IpAddr::V4(ip)),
        Some(Protocol::Ip6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    }
}

fn is_relayed(stream: &HostStream) -> bool {
    stream.connection().is_limited()
        || stream
            .connection()
            .remote_addr()
            .iter()
            .any(|p| p == Protocol::P2pCircuit)
}

async fn answer(stream: &mut HostStream, status: Status) {
    let peer = stream.peer();
    let msg = HopMessage::Status {
        status,
        reservation: None,
        limit: None,
    };
    if let Err(err) = write_message(stream, &msg.encode(), peer).await {
        tracing::debug!(%peer, %err, "could not send the hop status");
    }
}

async fn handle_hop(inner: Arc<ServiceInner>, mut stream: HostStream) {
    let Some(host) = inner.host.upgrade() else {
        return;
    };
    let peer = stream.peer();
    let body = match read_message(host.runtime(), &mut stream, inner.timeout).await {
        Ok(body) => body,
        Err(err) => {
            inner.core().count_malformed();
            tracing::debug!(%peer, %err, "hop request unreadable");
            stream.reset();
            return;
        }
    };
    match HopMessage::decode(&body) {
        Ok(HopMessage::Reserve) => handle_reserve(&inner, &host, stream).await,
        Ok(HopMessage::Connect { peer: dst }) => handle_connect(&inner, &host, stream, dst).await,
        Ok(HopMessage::Status { .. }) => {
            inner.core().count_malformed();
            answer(&mut stream, Status::UnexpectedMessage).await;
        }
        Err(err) => {
            inner.core().count_malformed();
            tracing::debug!(%peer, %err, "malformed hop request");
            answer(&mut stream, Status::MalformedMessage).await;
        }
    }
}

/// The addresses we tell a reserving peer to advertise: our confirmed external addresses, or
/// (none confirmed yet: a LAN, a test) our specific listen addresses; each with `/p2p/<us>`.
fn relay_addrs(host: &Host) -> Vec<Multiaddr> {
    let mut addrs = host.external_addrs();
    if addrs.is_empty() {
        addrs = host
            .listen_addrs()
            .into_iter()
            .filter(|a| {
                !a.iter().any(|p| {
                    p == Protocol::P2pCircuit
                        || matches!(p, Protocol::Ip4(ip) if ip.is_unspecified())
                        || matches!(p, Protocol::Ip6(ip) if ip.is_unspecified())
                })
            })
            .collect();
    }
    let me = host.local_peer_id();
    addrs
        .into_iter()
        .map(|a| lp2p_core::addr::with_peer_id(&a, me))
        .take(crate::message::MAX_ADDRS_PER_MESSAGE)
        .collect()
}

async fn handle_reserve(inner: &ServiceInner, host: &Host, mut stream: HostStream) {
    let peer = stream.peer();
    let ip = ip_of(stream.connection().remote_addr());
    let now = host.runtime().now();
    let unix = unix_now();
    let granted = inner
        .core()
        .reserve(peer, ip, is_relayed(&stream), now, unix);
    let grant = match granted {
        Ok(grant) => grant,
        Err(status) => {
            tracing::debug!(%peer, %status, "reservation refused");
            answer(&mut stream, status).await;
            return;
        }
    };
    let voucher = Voucher {
        relay: host.local_peer_id(),
        peer,
        expiration: grant.expire_unix,
    }
    .seal(&inner.key);
    let voucher = match voucher {
        Ok(v) => Some(v),
        Err(err) => {
            tracing::warn!(%peer, %err, "could not sign the reservation voucher");
            None
        }
    };
    let msg = HopMessage::Status {
        status: Status::Ok,
        reservation: Some(Reservation {
            expire: grant.expire_unix,
            addrs: relay_addrs(host),
            voucher,
        }),
        limit: (!grant.limit.is_unlimited()).then_some(grant.limit),
    };
    match write_message(&mut stream, &msg.encode(), peer).await {
        Ok(()) => {
            inner.protect(host, peer);
            tracing::debug!(%peer, expire = grant.expire_unix, renewal = grant.renewal, "reservation granted");
        }
        Err(err) => {
            tracing::debug!(%peer, %err, "could not send the reservation");
            inner.core().peer_disconnected(&peer);
        }
    }
}

/// Frees the circuit's slot however the circuit ends.
struct CircuitGuard<'a> {
    inner: &'a ServiceInner,
    id: CircuitId,
}

impl Drop for CircuitGuard<'_> {
    fn drop(&mut self) {
        self.inner.core().circuit_closed(self.id);
    }
}

async fn handle_connect(inner: &ServiceInner, host: &Host, mut src: HostStream, dst: PeerId) {
    let src_peer = src.peer();
    let ip = ip_of(src.connection().remote_addr());
    let now = host.runtime().now();
    let admitted = inner
        .core()
        .connect(src_peer, ip, dst, is_relayed(&src), now);
    let (id, limit) = match admitted {
        Ok(ok) => ok,
        Err(status) => {
            tracing::debug!(src = %src_peer, %dst, %status, "circuit refused");
            answer(&mut src, status).await;
            return;
        }
    };
    let _guard = CircuitGuard { inner, id };
    let dst_stream = match open_stop(inner, host, src_peer, dst, limit).await {
        Ok(stream) => stream,
        Err(err) => {
            tracing::debug!(src = %src_peer, %dst, %err, "circuit to the target failed");
            // Whatever went wrong on the target's side, the source learns the circuit failed.
            answer(&mut src, Status::ConnectionFailed).await;
            return;
        }
    };
    let ok = HopMessage::Status {
        status: Status::Ok,
        reservation: None,
        limit: (!limit.is_unlimited()).then_some(limit),
    };
    if let Err(err) = write_message(&mut src, &ok.encode(), src_peer).await {
        tracing::debug!(src = %src_peer, %dst, %err, "source went away before the circuit opened");
        let mut dst_stream = dst_stream;
        dst_stream.reset();
        return;
    }
    tracing::debug!(src = %src_peer, %dst, "circuit open");
    let budget = CircuitBudget::new(limit, host.runtime().now());
    let deadline = budget.deadline();
    let mut splice = Splice::new(src, dst_stream, budget);
    let ended = match deadline {
        Some(deadline) => {
            let timer = host.runtime().sleep_until(deadline);
            match select(&mut splice, timer).await {
                Either::Left((ended, _)) => ended.map(Some),
                Either::Right(((), _)) => {
                    splice.reset();
                    Ok(None)
                }
            }
        }
        None => (&mut splice).await.map(Some),
    };
    match ended {
        Ok(Some(SpliceEnd::Closed)) => tracing::debug!(src = %src_peer, %dst, "circuit closed"),
        Ok(Some(SpliceEnd::DataLimit)) => {
            inner.core().count_over_limit();
            tracing::debug!(src = %src_peer, %dst, "circuit reset at its data limit");
        }
        Ok(None) => {
            inner.core().count_over_limit();
            tracing::debug!(src = %src_peer, %dst, "circuit reset at its duration limit");
        }
        Err(err) => tracing::debug!(src = %src_peer, %dst, %err, "circuit failed"),
    }
}

/// Opens the stop stream to `dst` over its (direct) connection to us and announces the
/// circuit; returns the stream once the target accepted.
async fn open_stop(
    inner: &ServiceInner,
    host: &Host,
    src: PeerId,
    dst: PeerId,
    limit: Limit,
) -> Result<HostStream, RelayError> {
    let conn = host
        .connections(&dst)
        .into_iter()
        .find(|c| !c.is_limited())
        .ok_or(RelayError::Refused {
            peer: dst,
            status: Status::NoReservation,
        })?;
    let mut stream = host
        .new_stream_on(&conn, [PROTOCOL_STOP])
        .await
        .map_err(|e| RelayError::host(dst, e))?;
    let connect = StopMessage::Connect {
        peer: src,
        limit: (!limit.is_unlimited()).then_some(limit),
    };
    write_message(&mut stream, &connect.encode(), dst).await?;
    let body = read_message(host.runtime(), &mut stream, inner.timeout).await?;
    match StopMessage::decode(&body) {
        Ok(StopMessage::Status { status: Status::Ok }) => Ok(stream),
        Ok(StopMessage::Status { status }) => Err(RelayError::Refused { peer: dst, status }),
        Ok(StopMessage::Connect { .. }) => Err(RelayError::Unexpected {
            peer: dst,
            what: "CONNECT in answer to CONNECT",
        }),
        Err(source) => Err(RelayError::Malformed { peer: dst, source }),
    }
}

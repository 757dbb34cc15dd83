//! Dialing: address ranking, Happy-Eyeballs-style staggered parallel attempts, merging of
//! concurrent dials to one peer, and per-address backoff.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, FusedFuture, FutureExt, Shared};
use futures::stream::{FuturesUnordered, StreamExt};
use lp2p_core::{Multiaddr, PeerId, Protocol, addr};
use lp2p_peerstore::TEMP_ADDR_TTL;

use crate::swarm::Inner;
use crate::upgrade::Upgraded;
use crate::{Connection, DialAttempt, Direction, Stage, Swarm, SwarmError, SwarmEvent, config};

/// The outcome every waiter of a merged dial gets.
pub(crate) type DialOutcome = Result<Connection, (Option<PeerId>, Vec<DialAttempt>)>;
pub(crate) type SharedDial = Shared<BoxFuture<'static, DialOutcome>>;

/// An address in dial backoff: not dialed again before `until`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    pub(crate) until: Instant,
    failures: u32,
}

impl Swarm {
    /// A connection to `peer`: an existing live one, or a new one dialed with the
    /// addresses the peerstore holds. Concurrent calls for one peer share one dial.
    pub async fn dial(&self, peer: PeerId) -> Result<Connection, SwarmError> {
        self.dial_with_addrs(peer, Vec::new()).await
    }

    /// [`dial`](Swarm::dial), trying `addrs` first (they are also added to the peerstore
    /// with a temporary TTL). Addresses may end in `/p2p/<peer>`; one naming another peer is
    /// an error.
    pub async fn dial_with_addrs(
        &self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
    ) -> Result<Connection, SwarmError> {
        let inner = &self.inner;
        inner.ensure_open()?;
        if peer == inner.local_peer {
            return Err(SwarmError::DialSelf);
        }
        if let Some(conn) = inner.connection_to(&peer) {
            return Ok(conn);
        }
        let mut explicit = Vec::with_capacity(addrs.len());
        for a in addrs {
            let (transport_addr, named) = addr::split_peer_id(&a);
            if let Some(named) = named.filter(|n| *n != peer) {
                return Err(SwarmError::PeerIdMismatch {
                    expected: Box::new(peer),
                    actual: Box::new(named),
                });
            }
            explicit.push(transport_addr);
        }
        if !explicit.is_empty() {
            let _ = inner
                .peerstore
                .add_addrs(&peer, explicit.clone(), TEMP_ADDR_TTL);
        }
        let dial = {
            let mut st = inner.lock();
            if let Some(existing) = st.dials.get(&peer) {
                existing.clone()
            } else {
                drop(st);
                inner.admit_outbound()?;
                let mut candidates = explicit;
                for a in inner.peerstore.addrs(&peer) {
                    if !candidates.contains(&a) {
                        candidates.push(a);
                    }
                }
                if candidates.is_empty() {
                    return Err(SwarmError::NoAddresses(peer));
                }
                let task = inner.runtime.spawn(dial_addrs(
                    Arc::downgrade(inner),
                    Some(peer),
                    candidates,
                    true,
                ));
                let shared = async move {
                    task.await.unwrap_or_else(|err| {
                        Err((
                            Some(peer),
                            vec![DialAttempt {
                                addr: Multiaddr::empty(),
                                stage: Stage::Timeout,
                                error: Arc::new(SwarmError::Core(err)),
                            }],
                        ))
                    })
                }
                .boxed()
                .shared();
                st = inner.lock();
                st.dials.entry(peer).or_insert(shared).clone()
            }
        };
        dial.await
            .map_err(|(peer, attempts)| SwarmError::DialFailed { peer, attempts })
    }

    /// Dials an address. With a trailing `/p2p/<peer>` this is
    /// [`dial_with_addrs`](Swarm::dial_with_addrs) (an existing connection is reused and
    /// the remote must prove that identity); without one, a new connection is made to
    /// whoever answers.
    pub async fn dial_addr(&self, addr: Multiaddr) -> Result<Connection, SwarmError> {
        if let Some(peer) = addr::peer_id(&addr) {
            return self.dial_with_addrs(peer, vec![addr]).await;
        }
        self.inner.ensure_open()?;
        self.inner.admit_outbound()?;
        dial_addrs(Arc::downgrade(&self.inner), None, vec![addr], false)
            .await
            .map_err(|(peer, attempts)| SwarmError::DialFailed { peer, attempts })
    }

    /// Always makes a new connection to `addr`, even when one to that peer exists (no
    /// reuse, no merging with other dials; the per-peer limit still applies). With a
    /// trailing `/p2p/<peer>` the remote must prove that identity. For benchmarks and tools
    /// that measure connection setup.
    pub async fn dial_new(&self, addr: Multiaddr) -> Result<Connection, SwarmError> {
        self.inner.ensure_open()?;
        let (transport_addr, peer) = addr::split_peer_id(&addr);
        if peer == Some(self.inner.local_peer) {
            return Err(SwarmError::DialSelf);
        }
        self.inner.admit_outbound()?;
        if let Some(peer) = peer {
            self.inner.admit_peer(&peer)?;
        }
        dial_addrs(
            Arc::downgrade(&self.inner),
            peer,
            vec![transport_addr],
            false,
        )
        .await
        .map_err(|(peer, attempts)| SwarmError::DialFailed { peer, attempts })
    }

    /// How long `addr` stays in dial backoff, if it is in backoff.
    pub fn dial_backoff(&self, addr: &Multiaddr) -> Option<Duration> {
        let now = Instant::now();
        let st = self.inner.lock();
        st.backoff
            .get(&addr::split_peer_id(addr).0)
            .and_then(|b| b.until.checked_duration_since(now))
    }

    /// Takes `addr` out of dial backoff, or every address when `None`.
    pub fn clear_dial_backoff(&self, addr: Option<&Multiaddr>) {
        let mut st = self.inner.lock();
        match addr {
            Some(a) => {
                st.backoff.remove(&addr::split_peer_id(a).0);
            }
            None => st.backoff.clear(),
        }
    }
}

/// Orders candidate addresses: direct before relayed; otherwise as given (explicit
/// addresses first, then the peerstore's, oldest first).
fn rank(addrs: &mut [Multiaddr]) {
    addrs.sort_by_key(|a| a.iter().any(|p| matches!(p, Protocol::P2pCircuit)));
}

impl Inner {
    fn backoff_remaining(&self, addr: &Multiaddr, now: Instant) -> Option<Duration> {
        self.lock()
            .backoff
            .get(addr)
            .and_then(|b| b.until.checked_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    fn record_failure(&self, addr: &Multiaddr) {
        let base = self.config.dial_backoff;
        if base.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut st = self.lock();
        let entry = st.backoff.entry(addr.clone()).or_insert(Backoff {
            until: now,
            failures: 0,
        });
        entry.failures = entry.failures.saturating_add(1);
        let factor = 1u32 << entry.failures.saturating_sub(1).min(16);
        entry.until = now + base.saturating_mul(factor).min(config::MAX_DIAL_BACKOFF);
    }

    fn record_success(&self, addr: &Multiaddr) {
        self.lock().backoff.remove(addr);
    }
}

/// One address, dialed and upgraded.
async fn attempt(
    inner: Arc<Inner>,
    addr: Multiaddr,
    expected: Option<PeerId>,
) -> (
    Multiaddr,
    Result<(Upgraded, Multiaddr, Multiaddr), (Stage, SwarmError)>,
) {
    let result = async {
        let transport = inner
            .transport_for(&addr)
            .ok_or_else(|| {
                (
                    Stage::UnsupportedAddress,
                    SwarmError::UnsupportedAddress(addr.clone()),
                )
            })?
            .clone();
        let raw = match inner
            .runtime
            .timeout(
                inner.config.transport_timeout,
                transport.dial(&addr, &lp2p_core::DialOpts::to_peer(expected)),
            )
            .await
        {
            Ok(Ok(raw)) => raw,
            Ok(Err(err)) => return Err((Stage::Transport, SwarmError::Core(err))),
            Err(_) => {
                return Err((
                    Stage::Timeout,
                    SwarmError::Timeout {
                        what: "transport dial",
                        after: inner.config.transport_timeout,
                    },
                ));
            }
        };
        let local = raw.local_addr();
        let remote = raw.remote_addr();
        let upgrade = inner.upgraders.outbound(raw, expected, &inner.runtime);
        match inner
            .runtime
            .timeout(inner.config.upgrade_timeout, upgrade)
            .await
        {
            Ok(Ok(upgraded)) => Ok((upgraded, local, remote)),
            Ok(Err(failure)) => Err(failure),
            Err(_) => Err((
                Stage::Timeout,
                SwarmError::Timeout {
                    what: "connection upgrade",
                    after: inner.config.upgrade_timeout,
                },
            )),
        }
    }
    .await;
    (addr, result)
}

/// Dials `addrs` (the peer's candidates) Happy-Eyeballs style: the first right away, the
/// next after the stagger delay or as soon as one fails, at most `dial_concurrency` at
/// once; the first success wins and the rest are cancelled.
///
/// `merged` says whether this is the shared dial of `peer` in the dial table (which it then
/// removes when done).
pub(crate) async fn dial_addrs(
    swarm: Weak<Inner>,
    peer: Option<PeerId>,
    mut addrs: Vec<Multiaddr>,
    merged: bool,
) -> DialOutcome {
    let Some(inner) = swarm.upgrade() else {
        return Err((peer, Vec::new()));
    };
    let outcome = run_dial(&inner, peer, &mut addrs).await;
    if let Some(peer) = peer.filter(|_| merged) {
        inner.lock().dials.remove(&peer);
    }
    if let Err((peer, attempts)) = &outcome {
        let error = Arc::new(SwarmError::DialFailed {
            peer: *peer,
            attempts: attempts.clone(),
        });
        tracing::debug!(%error, "dial failed");
        inner
            .events
            .emit(&SwarmEvent::DialFailed { peer: *peer, error });
    }
    outcome
}

async fn run_dial(
    inner: &Arc<Inner>,
    peer: Option<PeerId>,
    addrs: &mut Vec<Multiaddr>,
) -> DialOutcome {
    rank(addrs);
    let now = Instant::now();
    let mut failures = Vec::new();
    let mut queue = VecDeque::new();
    for addr in addrs.drain(..) {
        match inner.backoff_remaining(&addr, now) {
            Some(left) => failures.push(DialAttempt {
                error: Arc::new(SwarmError::Timeout {
                    what: "dial backoff (retry later)",
                    after: left,
                }),
                addr,
                stage: Stage::Backoff,
            }),
            None => queue.push_back(addr),
        }
    }
    let concurrency = inner.config.dial_concurrency.max(1);
    let mut running = FuturesUnordered::new();
    let mut in_flight: Vec<Multiaddr> = Vec::new();
    let mut deadline = inner.runtime.sleep(inner.config.dial_timeout).fuse();
    let mut stagger = futures::future::Fuse::terminated();

    loop {
        let slot_free =
            running.len() < concurrency && (running.is_empty() || stagger.is_terminated());
        if slot_free && let Some(addr) = queue.pop_front() {
            in_flight.push(addr.clone());
            running.push(attempt(inner.clone(), addr, peer));
            stagger = inner.runtime.sleep(inner.config.dial_stagger).fuse();
        }
        if running.is_empty() {
            return Err((peer, failures));
        }
        futures::select! {
            done = running.select_next_some() => {
                let (addr, result) = done;
                in_flight.retain(|a| a != &addr);
                match result {
                    Ok((upgraded, local, remote)) => {
                        inner.record_success(&addr);
                        match inner.register(upgraded, Direction::Outbound, local, remote) {
                            Ok(conn) => return Ok(conn),
                            Err(err) => failures.push(DialAttempt { addr, stage: Stage::Limit, error: Arc::new(err) }),
                        }
                    }
                    Err((stage, err)) => {
                        tracing::debug!(?peer, %addr, %stage, %err, "dial attempt failed");
                        // A peer id mismatch proves the address works (for someone else):
                        // backing it off would only block a dial with the right expectation.
                        let address_failed = !matches!(stage, Stage::UnsupportedAddress | Stage::Limit)
                            && !matches!(err, SwarmError::PeerIdMismatch { .. });
                        if address_failed {
                            inner.record_failure(&addr);
                        }
                        failures.push(DialAttempt { addr, stage, error: Arc::new(err) });
                        // A failure frees a slot: try the next address without waiting.
                        stagger = futures::future::Fuse::terminated();
                    }
                }
            }
            () = stagger => {}
            () = deadline => {
                for addr in in_flight.drain(..) {
                    failures.push(DialAttempt {
                        addr,
                        stage: Stage::Timeout,
                        error: Arc::new(SwarmError::Timeout { what: "dial", after: inner.config.dial_timeout }),
                    });
                }
                return Err((peer, failures));
            }
        }
    }
}

//! Dialing, the shell's side: candidate addresses are resolved (`/dns*`, `/dnsaddr`) and
//! filtered to what some transport can dial, then handed to the core, which ranks, staggers,
//! times and backs them off.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::channel::oneshot;
use lp2p_core::{Multiaddr, PeerId, addr};
use lp2p_peerstore::TEMP_ADDR_TTL;

use crate::core::{DialRequest, DialStart};
use crate::shared::Shared;
use crate::{Connection, DialAttempt, Stage, Swarm, SwarmError};

/// Rounds of resolution one candidate may go through (a `/dnsaddr` resolving to `/dns4`
/// names that resolve to IPs is two). The resolver bounds its own recursion (`/dnsaddr`
/// chains); this bounds the swarm's re-resolution of what it returns.
pub const MAX_RESOLVE_ROUNDS: usize = 4;

/// Addresses one dial keeps after resolution: plenty for a peer with many transports and
/// interfaces, and a cap on what a hostile DNS answer can make us dial.
pub const MAX_RESOLVED_ADDRS: usize = 64;

impl Swarm {
    /// A connection to `peer`: an existing live one, or a new one dialed with the
    /// addresses the peerstore holds. Concurrent calls for one peer share one dial; when an
    /// inbound connection from the peer is finishing its handshake, the dial waits for it.
    pub async fn dial(&self, peer: PeerId) -> Result<Connection, SwarmError> {
        self.dial_with_addrs(peer, Vec::new()).await
    }

    /// [`dial`](Swarm::dial), with `addrs` as extra candidates (they are also added to the
    /// peerstore with a temporary TTL). Addresses may end in `/p2p/<peer>`; one naming another
    /// peer is an error.
    pub async fn dial_with_addrs(
        &self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
    ) -> Result<Connection, SwarmError> {
        let shared = &self.shared;
        shared.ensure_open()?;
        if peer == shared.local_peer {
            return Err(SwarmError::DialSelf);
        }
        if let Some(conn) = self.connection_to(&peer) {
            return Ok(conn);
        }
        let mut candidates = Vec::with_capacity(addrs.len());
        for a in addrs {
            let (transport_addr, named) = addr::split_peer_id(&a);
            if let Some(named) = named.filter(|n| *n != peer) {
                return Err(SwarmError::PeerIdMismatch {
                    expected: Box::new(peer),
                    actual: Box::new(named),
                });
            }
            candidates.push(transport_addr);
        }
        if !candidates.is_empty() {
            let _ = shared
                .peerstore
                .add_addrs(&peer, candidates.clone(), TEMP_ADDR_TTL);
        }
        for a in shared.peerstore.addrs(&peer) {
            if !candidates.contains(&a) {
                candidates.push(a);
            }
        }
        let (addrs, failures) = prepare(shared, Some(peer), candidates).await;
        run(
            shared,
            DialRequest {
                peer: Some(peer),
                addrs,
                failures,
                reuse: true,
            },
        )
        .await
    }

    /// Dials an address. With a trailing `/p2p/<peer>` this is
    /// [`dial_with_addrs`](Swarm::dial_with_addrs) (an existing connection is reused and
    /// the remote must prove that identity); without one, a new connection is made to
    /// whoever answers.
    pub async fn dial_addr(&self, addr: Multiaddr) -> Result<Connection, SwarmError> {
        if let Some(peer) = addr::peer_id(&addr) {
            return self.dial_with_addrs(peer, vec![addr]).await;
        }
        self.shared.ensure_open()?;
        let (addrs, failures) = prepare(&self.shared, None, vec![addr]).await;
        run(
            &self.shared,
            DialRequest {
                peer: None,
                addrs,
                failures,
                reuse: false,
            },
        )
        .await
    }

    /// Always makes a new connection to `addr`, even when one to that peer exists (no
    /// reuse, no merging with other dials; the per-peer limit still applies). With a
    /// trailing `/p2p/<peer>` the remote must prove that identity. For benchmarks and tools
    /// that measure connection setup.
    pub async fn dial_new(&self, addr: Multiaddr) -> Result<Connection, SwarmError> {
        self.shared.ensure_open()?;
        let (transport_addr, peer) = addr::split_peer_id(&addr);
        let (addrs, failures) = prepare(&self.shared, peer, vec![transport_addr]).await;
        run(
            &self.shared,
            DialRequest {
                peer,
                addrs,
                failures,
                reuse: false,
            },
        )
        .await
    }

    /// How long `addr` stays in dial backoff, if it is in backoff.
    pub fn dial_backoff(&self, addr: &Multiaddr) -> Option<Duration> {
        let now = self.shared.now();
        self.shared
            .lock()
            .core
            .backoff_remaining(&addr::split_peer_id(addr).0, now)
    }

    /// Takes `addr` out of dial backoff, or every address when `None`.
    pub fn clear_dial_backoff(&self, addr: Option<&Multiaddr>) {
        let addr = addr.map(|a| addr::split_peer_id(a).0);
        self.shared.lock().core.clear_backoff(addr.as_ref());
    }
}

/// Hands a prepared request to the core and waits for its outcome.
async fn run(shared: &Arc<Shared>, req: DialRequest) -> Result<Connection, SwarmError> {
    let now = shared.now();
    let rx = {
        let mut st = shared.lock();
        match st.core.dial(req, now)? {
            DialStart::Connected(id) => {
                return st.conns.get(&id).cloned().ok_or(SwarmError::Closed);
            }
            DialStart::Dialing(dial) => {
                let (tx, rx) = oneshot::channel();
                st.waiters.entry(dial).or_default().push(tx);
                rx
            }
        }
    };
    shared.drain();
    rx.await.unwrap_or(Err(SwarmError::Closed))
}

/// Resolves names in `candidates` and keeps what some transport can dial; everything else
/// becomes a failure entry. Results naming another peer than `peer` are dropped.
pub(crate) async fn prepare(
    shared: &Arc<Shared>,
    peer: Option<PeerId>,
    candidates: Vec<Multiaddr>,
) -> (Vec<Multiaddr>, Vec<DialAttempt>) {
    let mut out: Vec<Multiaddr> = Vec::new();
    let mut failures = Vec::new();
    let mut work: VecDeque<(Multiaddr, usize)> = candidates.into_iter().map(|a| (a, 0)).collect();
    while let Some((a, round)) = work.pop_front() {
        if out.len() >= MAX_RESOLVED_ADDRS {
            break;
        }
        let Some(resolver) = shared.resolvers.iter().find(|r| r.can_resolve(&a)) else {
            let (transport_addr, named) = addr::split_peer_id(&a);
            if named.is_some_and(|n| Some(n) != peer) && peer.is_some() {
                continue;
            }
            if shared.transport_for(&transport_addr).is_some() {
                if !out.contains(&transport_addr) {
                    out.push(transport_addr);
                }
            } else {
                failures.push(DialAttempt {
                    error: Arc::new(SwarmError::UnsupportedAddress(transport_addr.clone())),
                    addr: transport_addr,
                    stage: Stage::UnsupportedAddress,
                });
            }
            continue;
        };
        if round >= MAX_RESOLVE_ROUNDS {
            failures.push(DialAttempt {
                error: Arc::new(SwarmError::Core(lp2p_core::Error::Resolve {
                    addr: a.clone(),
                    source: format!("still a name after {MAX_RESOLVE_ROUNDS} rounds of resolution")
                        .into(),
                })),
                addr: a,
                stage: Stage::Resolve,
            });
            continue;
        }
        // The resolver filters by the peer id (`/dnsaddr` records name their peer).
        let query = match peer {
            Some(p) => addr::with_peer_id(&a, p),
            None => a.clone(),
        };
        let resolved = shared
            .runtime
            .timeout(shared.config.transport_timeout, resolver.resolve(&query))
            .await;
        match resolved {
            Ok(Ok(list)) => {
                tracing::debug!(addr = %a, resolved = list.len(), "address resolved");
                work.extend(list.into_iter().map(|r| (r, round + 1)));
            }
            Ok(Err(err)) => failures.push(DialAttempt {
                stage: Stage::Resolve,
                error: Arc::new(SwarmError::Core(err)),
                addr: a,
            }),
            Err(_) => failures.push(DialAttempt {
                stage: Stage::Resolve,
                error: Arc::new(SwarmError::Timeout {
                    what: "address resolution",
                    after: shared.config.transport_timeout,
                }),
                addr: a,
            }),
        }
    }
    (out, failures)
}

/// Runs a bootstrap redial the core asked for.
pub(crate) async fn redial(shared: Weak<Shared>, target: Multiaddr) {
    let Some(shared) = shared.upgrade() else {
        return;
    };
    if shared.is_closed() {
        return;
    }
    let (transport_addr, peer) = addr::split_peer_id(&target);
    let (addrs, failures) = prepare(&shared, peer, vec![target.clone()]).await;
    let now = shared.now();
    let started = {
        let mut st = shared.lock();
        let started = st.core.dial(
            DialRequest {
                peer,
                addrs,
                failures,
                reuse: peer.is_some(),
            },
            now,
        );
        match &started {
            Ok(start) => st.core.bootstrap_dial_started(&target, *start, now),
            Err(_) => st.core.bootstrap_dial_failed(&target, now),
        }
        started
    };
    shared.drain();
    match started {
        Ok(_) => tracing::debug!(addr = %transport_addr, "bootstrap dial started"),
        Err(err) => tracing::debug!(addr = %target, %err, "bootstrap dial could not start"),
    }
}

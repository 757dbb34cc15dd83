//! Dial candidates: names resolved (`/dns*`, `/dnsaddr`) through the swarm's resolvers and
//! addresses filtered to what some transport can dial.

use std::collections::VecDeque;
use std::sync::Arc;

use lp2p_core::{Multiaddr, PeerId, addr};

use crate::gate::GateStage;
use crate::state::Shared;
use crate::{DialAttempt, Stage, SwarmError};

/// Rounds of resolution one candidate may go through (a `/dnsaddr` resolving to `/dns4`
/// names that resolve to IPs is two). The resolver bounds its own recursion (`/dnsaddr`
/// chains); this bounds the swarm's re-resolution of what it returns.
pub const MAX_RESOLVE_ROUNDS: usize = 4;

/// Addresses one dial keeps after resolution: plenty for a peer with many transports and
/// interfaces, and a cap on what a hostile DNS answer can make us dial.
pub const MAX_RESOLVED_ADDRS: usize = 64;

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
                if let Err(reason) = shared.check_gates(GateStage::Dial, |g| {
                    g.allow_dial(peer.as_ref(), &transport_addr)
                }) {
                    failures.push(DialAttempt {
                        error: Arc::new(SwarmError::Denied {
                            stage: GateStage::Dial,
                            reason,
                        }),
                        addr: transport_addr,
                        stage: Stage::Denied,
                    });
                } else if !out.contains(&transport_addr) {
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

//! Dialing, the shell's side: candidate addresses are prepared (resolved, filtered to what
//! some transport can dial), then handed to the core, which ranks, staggers, times and backs
//! them off.

use std::sync::Arc;
use std::time::Duration;

use futures::channel::oneshot;
use lp2p_core::{Multiaddr, PeerId, addr};
use lp2p_peerstore::TEMP_ADDR_TTL;

use crate::candidates::prepare;
use crate::core::{DialId, DialRequest, DialStart};
use crate::state::Shared;
use crate::{Connection, Swarm, SwarmError};

impl Swarm {
    /// A connection to `peer`: an existing live one, or a new one dialed with the
    /// addresses the peerstore holds. Concurrent calls for one peer share one dial; when an
    /// inbound connection from the peer is finishing its handshake, the dial waits for it.
    ///
    /// Dropping the future stops waiting. When no caller waits for a dial any more, it is
    /// cancelled: its attempts stop and their sockets close (this holds for every `dial*`
    /// method; a bootstrap redial goes on).
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
        let started = shared.now();
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
                reuse: true,
                ..DialRequest::new(Some(peer), addrs, failures)
            },
            started,
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
        let started = self.shared.now();
        let (addrs, failures) = prepare(&self.shared, None, vec![addr]).await;
        run(
            &self.shared,
            DialRequest {
                reuse: false,
                ..DialRequest::new(None, addrs, failures)
            },
            started,
        )
        .await
    }

    /// Always makes a new connection to `addr`, even when one to that peer exists (no
    /// reuse, no merging with other dials; the per-peer limit still applies). With a
    /// trailing `/p2p/<peer>` the remote must prove that identity. For benchmarks and tools
    /// that measure connection setup.
    pub async fn dial_new(&self, addr: Multiaddr) -> Result<Connection, SwarmError> {
        self.shared.ensure_open()?;
        let started = self.shared.now();
        let (transport_addr, peer) = addr::split_peer_id(&addr);
        let (addrs, failures) = prepare(&self.shared, peer, vec![transport_addr]).await;
        run(
            &self.shared,
            DialRequest {
                reuse: false,
                ..DialRequest::new(peer, addrs, failures)
            },
            started,
        )
        .await
    }

    /// Makes a new connection (never reusing or merging) to one of `addrs`, with `opts`:
    /// what hole punching needs. `opts.expected_peer` is the peer the remote must prove;
    /// `opts.port_reuse` dials from the listening port; `opts.role` is the role taken in
    /// the upgrade ([`Role::Responder`](lp2p_core::Role::Responder) on one side of a TCP
    /// simultaneous open). The addresses are ranked and staggered like any dial's.
    pub async fn dial_new_with_opts(
        &self,
        addrs: Vec<Multiaddr>,
        opts: lp2p_core::DialOpts,
    ) -> Result<Connection, SwarmError> {
        self.shared.ensure_open()?;
        let started = self.shared.now();
        let (addrs, failures) = prepare(&self.shared, opts.expected_peer, addrs).await;
        run(
            &self.shared,
            DialRequest {
                reuse: false,
                port_reuse: opts.port_reuse,
                role: opts.role,
                ..DialRequest::new(opts.expected_peer, addrs, failures)
            },
            started,
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

/// Hands a prepared request to the core and waits for its outcome; a dial (not a reused
/// connection) is timed from `started` into the swarm's dial durations. Dropping the
/// returned future stops waiting; when no caller waits any more, the dial is cancelled.
async fn run(
    shared: &Arc<Shared>,
    req: DialRequest,
    started: std::time::Instant,
) -> Result<Connection, SwarmError> {
    let now = shared.now();
    let mut waiting = {
        let mut st = shared.lock();
        match st.core.dial(req, now) {
            Ok(DialStart::Connected(id)) => {
                return st.conns.get(&id).cloned().ok_or(SwarmError::Closed);
            }
            Ok(DialStart::Dialing(dial)) => {
                let (tx, rx) = oneshot::channel();
                st.waiters.entry(dial).or_default().push(tx);
                Waiting { shared, dial, rx }
            }
            Err(err) => {
                st.dial_durations
                    .observe(false, now.saturating_duration_since(started));
                return Err(err);
            }
        }
    };
    shared.drain();
    let outcome = (&mut waiting.rx).await.unwrap_or(Err(SwarmError::Closed));
    let took = shared.now().saturating_duration_since(started);
    shared.lock().dial_durations.observe(outcome.is_ok(), took);
    outcome
}

/// One caller waiting for a dial. Dropped before the outcome arrives (the caller's future
/// was dropped: a timeout, a lost race), it leaves the dial; the last one to leave cancels
/// it, so its attempts' sockets close now rather than at the attempt timeout (D51).
struct Waiting<'a> {
    shared: &'a Arc<Shared>,
    dial: DialId,
    rx: oneshot::Receiver<Result<Connection, SwarmError>>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.rx.close();
        let now = self.shared.now();
        let cancelled = {
            let mut st = self.shared.lock();
            // No entry: the dial finished and its outcome was sent.
            let Some(waiters) = st.waiters.get_mut(&self.dial) else {
                return;
            };
            waiters.retain(|tx| !tx.is_canceled());
            if !waiters.is_empty() {
                return;
            }
            st.waiters.remove(&self.dial);
            st.core.cancel_dial(self.dial, now)
        };
        if cancelled {
            tracing::debug!(dial = ?self.dial, "dial cancelled: no caller waits for it");
            self.shared.drain();
        }
    }
}

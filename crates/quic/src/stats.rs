//! Counters of what the transport refused or lost, for logs, tests and metrics.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters shared by a transport's endpoints and connections.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) incoming_refused: AtomicU64,
    pub(crate) incoming_dropped: AtomicU64,
    pub(crate) bad_certificates: AtomicU64,
    pub(crate) handshakes_failed: AtomicU64,
    pub(crate) connections_inbound: AtomicU64,
    pub(crate) connections_outbound: AtomicU64,
    pub(crate) connections_denied: AtomicU64,
    pub(crate) connections_failed: AtomicU64,
    pub(crate) window_growth_refused: AtomicU64,
    pub(crate) timers_armed: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> QuicStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        QuicStats {
            incoming_refused: get(&self.incoming_refused),
            incoming_dropped: get(&self.incoming_dropped),
            bad_certificates: get(&self.bad_certificates),
            handshakes_failed: get(&self.handshakes_failed),
            connections_inbound: get(&self.connections_inbound),
            connections_outbound: get(&self.connections_outbound),
            connections_denied: get(&self.connections_denied),
            connections_failed: get(&self.connections_failed),
            window_growth_refused: get(&self.window_growth_refused),
            timers_armed: get(&self.timers_armed),
        }
    }
}

/// A snapshot of a [`QuicTransport`](crate::QuicTransport)'s counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QuicStats {
    /// Inbound attempts refused with `CONNECTION_REFUSED` before any handshake work: the
    /// pending queue was full, or the endpoint was not listening any more.
    pub incoming_refused: u64,
    /// Inbound attempts the listener handed out and the swarm then dropped (refused by its
    /// own limits or gates).
    pub incoming_dropped: u64,
    /// Remote certificates that broke a rule of the libp2p TLS spec (no extension, a foreign
    /// key, a bad signature, expired, ...).
    pub bad_certificates: u64,
    /// Handshakes that failed for any reason (bad certificates included), both directions.
    pub handshakes_failed: u64,
    /// Inbound connections established.
    pub connections_inbound: u64,
    /// Outbound connections established.
    pub connections_outbound: u64,
    /// Authenticated connections refused by the swarm's check (limits, gating).
    pub connections_denied: u64,
    /// Established connections that ended with an error (a protocol violation by the remote,
    /// an idle timeout, a stateless reset) rather than a close by either side.
    pub connections_failed: u64,
    /// Connections whose receive window should have grown and did not, at least once,
    /// because the host's memory budget refused the growth.
    pub window_growth_refused: u64,
    /// Runtime timers the connection tasks armed for quinn-proto's deadlines. Each one
    /// interrupts the runtime's reactor once, so this grows with the connections and their
    /// quiet periods, not with every packet (D60).
    pub timers_armed: u64,
}

//! Connections opened and closed since the swarm started, per direction and transport, with
//! how long the closed ones lived: counted where connections enter and leave the table, so
//! every connection counts, however short (for monitoring, e.g. lp2p-metrics).

use std::collections::BTreeMap;
use std::time::Duration;

use lp2p_core::Histogram;

use crate::{CloseReason, Direction};

/// Upper bounds, in seconds, of the lifetime buckets: 0.1 s (a refused or failed upgrade, a
/// one-shot dial) to 1.8 h (a long-lived peer), each four times the one before; longer lives
/// fall in a last, unbounded bucket.
pub static LIFETIME_BUCKETS: [f64; 9] = [0.1, 0.4, 1.6, 6.4, 25.6, 102.4, 409.6, 1638.4, 6553.6];

/// Upper bounds, in seconds, of the handshake-duration buckets: 1 ms (loopback) to 10 s
/// (a slow path near the upgrade timeout).
pub static HANDSHAKE_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Upper bounds, in seconds, of the whole-dial buckets: 1 ms (an address on loopback) to 30 s
/// (the default dial timeout, `SwarmConfig::dial_timeout`).
pub static DIAL_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How long whole dials took, in seconds over [`DIAL_BUCKETS`]: from the call (`Swarm::dial`,
/// `dial_addr`, ...) through address resolution, ranking, staggered attempts and backoff, to a
/// connection or the final error. A call answered by an existing connection is not a dial and
/// is not counted; concurrent calls that share one dial count once each (each waited that
/// long).
#[derive(Debug, Clone, PartialEq)]
pub struct DialDurations {
    /// Dials that gave a connection.
    pub ok: Histogram,
    /// Dials that failed.
    pub failed: Histogram,
}

impl Default for DialDurations {
    fn default() -> Self {
        DialDurations {
            ok: Histogram::new(&DIAL_BUCKETS),
            failed: Histogram::new(&DIAL_BUCKETS),
        }
    }
}

impl DialDurations {
    pub(crate) fn observe(&mut self, succeeded: bool, took: Duration) {
        let histogram = if succeeded {
            &mut self.ok
        } else {
            &mut self.failed
        };
        histogram.observe(took.as_secs_f64());
    }
}

/// The totals of one direction and transport.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionTotals {
    /// Who dialed.
    pub direction: Direction,
    /// The transport's name (`tcp`, `quic`, ...).
    pub transport: &'static str,
    /// Connections that entered the table.
    pub opened: u64,
    /// Closed by us.
    pub closed_local: u64,
    /// Closed for having no stream for the idle timeout.
    pub closed_idle: u64,
    /// Closed by the remote, or failed.
    pub closed_remote: u64,
    /// The lifetimes of the closed connections, in seconds, over [`LIFETIME_BUCKETS`].
    pub lifetimes: Histogram,
    /// How long attempts that became connections took, in seconds, over
    /// [`HANDSHAKE_BUCKETS`]: outbound from the start of the dial of one address (transport
    /// connect, security and muxer), inbound from the attempt's admission.
    pub handshakes_ok: Histogram,
    /// The same for attempts that failed (cancelled ones, e.g. the losers of a parallel dial,
    /// are not counted).
    pub handshakes_failed: Histogram,
}

impl ConnectionTotals {
    fn new(direction: Direction, transport: &'static str) -> ConnectionTotals {
        ConnectionTotals {
            direction,
            transport,
            opened: 0,
            closed_local: 0,
            closed_idle: 0,
            closed_remote: 0,
            lifetimes: Histogram::new(&LIFETIME_BUCKETS),
            handshakes_ok: Histogram::new(&HANDSHAKE_BUCKETS),
            handshakes_failed: Histogram::new(&HANDSHAKE_BUCKETS),
        }
    }
}

/// The table of totals (at most two directions times the swarm's transports).
#[derive(Debug, Default)]
pub(crate) struct Totals {
    map: BTreeMap<(bool, &'static str), ConnectionTotals>,
}

impl Totals {
    fn entry(&mut self, direction: Direction, transport: &'static str) -> &mut ConnectionTotals {
        self.map
            .entry((direction == Direction::Inbound, transport))
            .or_insert_with(|| ConnectionTotals::new(direction, transport))
    }

    pub(crate) fn opened(&mut self, direction: Direction, transport: &'static str) {
        let t = self.entry(direction, transport);
        t.opened = t.opened.saturating_add(1);
    }

    pub(crate) fn closed(
        &mut self,
        direction: Direction,
        transport: &'static str,
        reason: &CloseReason,
        lived: Duration,
    ) {
        let t = self.entry(direction, transport);
        let counter = match reason {
            CloseReason::Local => &mut t.closed_local,
            CloseReason::Idle => &mut t.closed_idle,
            CloseReason::Remote(_) => &mut t.closed_remote,
        };
        *counter = counter.saturating_add(1);
        t.lifetimes.observe(lived.as_secs_f64());
    }

    pub(crate) fn handshake(
        &mut self,
        direction: Direction,
        transport: &'static str,
        succeeded: bool,
        took: Duration,
    ) {
        let t = self.entry(direction, transport);
        let histogram = if succeeded {
            &mut t.handshakes_ok
        } else {
            &mut t.handshakes_failed
        };
        histogram.observe(took.as_secs_f64());
    }

    pub(crate) fn snapshot(&self) -> Vec<ConnectionTotals> {
        self.map.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_closes_and_lifetimes_are_counted_per_direction_and_transport() {
        let mut totals = Totals::default();
        totals.opened(Direction::Outbound, "tcp");
        totals.opened(Direction::Outbound, "tcp");
        totals.opened(Direction::Inbound, "quic");
        totals.closed(
            Direction::Outbound,
            "tcp",
            &CloseReason::Local,
            Duration::from_millis(50),
        );
        totals.closed(
            Direction::Outbound,
            "tcp",
            &CloseReason::Remote("reset".into()),
            Duration::from_secs(100_000),
        );
        let snapshot = totals.snapshot();
        assert_eq!(snapshot.len(), 2);
        let tcp = snapshot
            .iter()
            .find(|t| t.transport == "tcp")
            .expect("tcp totals");
        assert_eq!(
            (
                tcp.opened,
                tcp.closed_local,
                tcp.closed_idle,
                tcp.closed_remote
            ),
            (2, 1, 0, 1)
        );
        let counts = tcp.lifetimes.counts();
        assert_eq!((counts[0], counts[LIFETIME_BUCKETS.len()]), (1, 1));
        assert_eq!(tcp.lifetimes.count(), 2);
        assert!((tcp.lifetimes.sum() - 100_000.05).abs() < 1e-6);
        totals.handshake(Direction::Inbound, "quic", true, Duration::from_millis(2));
        totals.handshake(Direction::Inbound, "quic", false, Duration::from_secs(30));
        let quic = totals
            .snapshot()
            .into_iter()
            .find(|t| t.transport == "quic")
            .expect("quic totals");
        assert_eq!(quic.handshakes_ok.counts()[1], 1);
        assert_eq!(quic.handshakes_failed.counts()[HANDSHAKE_BUCKETS.len()], 1);
    }
}

//! What the outbound pings measured, for monitoring (lp2p-metrics reads it).

use lp2p_core::Histogram;

/// Upper bounds, in seconds, of the round-trip buckets: 1 ms (a LAN or loopback) to 5 s
/// (a congested path near the ping timeout), about doubling.
pub static RTT_BUCKETS: [f64; 11] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Outbound pings since the service started (`ping`, `ping_on` and keep-alive pings).
#[derive(Debug, Clone, PartialEq)]
pub struct PingStats {
    /// Pings answered.
    pub ok: u64,
    /// Pings that failed or timed out.
    pub failed: u64,
    /// Round-trip times of the answered pings, in seconds, over [`RTT_BUCKETS`].
    pub rtt: Histogram,
}

impl Default for PingStats {
    fn default() -> Self {
        PingStats {
            ok: 0,
            failed: 0,
            rtt: Histogram::new(&RTT_BUCKETS),
        }
    }
}

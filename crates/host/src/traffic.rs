//! Streams and bytes per protocol, counted where every transport's streams pass (the
//! [`HostStream`](crate::HostStream)), for monitoring. Labels are bounded: inbound streams
//! count under the name their handler was registered with, outbound ones under the protocol
//! our own code offered, and past [`MAX_TRAFFIC_PROTOCOLS`] names everything new counts under
//! [`OTHER_PROTOCOLS`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lp2p_core::ProtocolId;

/// Distinct protocol names counted separately, at most. Far above what a node registers or
/// offers (a few dozen), and low enough that a program offering generated protocol ids cannot
/// grow the table (or a metrics scrape) without bound.
pub const MAX_TRAFFIC_PROTOCOLS: usize = 256;

/// The name traffic counts under once [`MAX_TRAFFIC_PROTOCOLS`] names are taken.
pub const OTHER_PROTOCOLS: &str = "other";

/// The counters of one protocol name.
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    inbound_streams: AtomicU64,
    outbound_streams: AtomicU64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
}

impl Traffic {
    pub(crate) fn read(&self, n: usize) {
        self.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn written(&self, n: usize) {
        self.bytes_written.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// A snapshot of one protocol's counters (monotonic while the host lives).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolTraffic {
    /// The protocol (for inbound streams, the name its handler was registered with), or
    /// [`OTHER_PROTOCOLS`].
    pub protocol: ProtocolId,
    /// Inbound streams that agreed on it.
    pub inbound_streams: u64,
    /// Outbound streams that agreed on it.
    pub outbound_streams: u64,
    /// Bytes read from its streams (payload after negotiation).
    pub bytes_read: u64,
    /// Bytes written to its streams.
    pub bytes_written: u64,
}

/// Whether a stream was opened by the remote or by us.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Opened {
    Inbound,
    Outbound,
}

/// Every protocol's counters.
#[derive(Debug, Default)]
pub(crate) struct TrafficTable {
    map: Mutex<HashMap<ProtocolId, Arc<Traffic>>>,
}

impl TrafficTable {
    /// The counters of `protocol` with one more stream counted.
    pub(crate) fn stream(&self, protocol: &ProtocolId, opened: Opened) -> Arc<Traffic> {
        let traffic = {
            let mut map = self
                .map
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match map.get(protocol) {
                Some(t) => t.clone(),
                None if map.len() < MAX_TRAFFIC_PROTOCOLS => {
                    map.entry(protocol.clone()).or_default().clone()
                }
                None => map
                    .entry(ProtocolId::from(OTHER_PROTOCOLS))
                    .or_default()
                    .clone(),
            }
        };
        match opened {
            Opened::Inbound => traffic.inbound_streams.fetch_add(1, Ordering::Relaxed),
            Opened::Outbound => traffic.outbound_streams.fetch_add(1, Ordering::Relaxed),
        };
        traffic
    }

    /// Every protocol's counters, sorted by protocol.
    pub(crate) fn snapshot(&self) -> Vec<ProtocolTraffic> {
        let map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut all: Vec<ProtocolTraffic> = map
            .iter()
            .map(|(protocol, t)| ProtocolTraffic {
                protocol: protocol.clone(),
                inbound_streams: t.inbound_streams.load(Ordering::Relaxed),
                outbound_streams: t.outbound_streams.load(Ordering::Relaxed),
                bytes_read: t.bytes_read.load(Ordering::Relaxed),
                bytes_written: t.bytes_written.load(Ordering::Relaxed),
            })
            .collect();
        all.sort_by(|a, b| a.protocol.cmp(&b.protocol));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_past_the_cap_count_as_other() {
        let table = TrafficTable::default();
        for i in 0..MAX_TRAFFIC_PROTOCOLS + 10 {
            let t = table.stream(&ProtocolId::from(format!("/p/{i}")), Opened::Outbound);
            t.written(1);
        }
        let snapshot = table.snapshot();
        assert_eq!(snapshot.len(), MAX_TRAFFIC_PROTOCOLS + 1);
        let other = snapshot
            .iter()
            .find(|p| p.protocol == OTHER_PROTOCOLS)
            .map(|p| (p.outbound_streams, p.bytes_written));
        assert_eq!(other, Some((10, 10)));
    }
}

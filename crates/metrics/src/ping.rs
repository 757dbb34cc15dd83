//! The ping service's outcomes and round-trip times, read when scraped.

use lp2p_ping::Ping;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;

use crate::labels::{Labels, counters, histogram};

/// Reads a [`Ping`] service at each scrape.
pub(crate) struct PingCollector {
    ping: Ping,
}

impl std::fmt::Debug for PingCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PingCollector").finish_non_exhaustive()
    }
}

impl PingCollector {
    pub(crate) fn new(ping: &Ping) -> PingCollector {
        PingCollector { ping: ping.clone() }
    }
}

impl Collector for PingCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let stats = self.ping.stats();
        let outcomes: Vec<(Labels, u64)> = vec![
            (vec![("outcome", "ok".to_owned())], stats.ok),
            (vec![("outcome", "failed".to_owned())], stats.failed),
        ];
        counters(
            &mut encoder,
            "pings",
            "Outbound pings (ping, ping_on and keep-alive), by outcome",
            &outcomes,
        )?;
        let metric = encoder.encode_descriptor(
            "ping_rtt_seconds",
            "Round-trip times of answered outbound pings",
            None,
            MetricType::Histogram,
        )?;
        histogram(metric, &stats.rtt)
    }
}

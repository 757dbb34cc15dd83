//! Kademlia's queries, requests, refusals and table size, read when scraped.

use lp2p_kad::Kademlia;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;

use crate::labels::{Labels, counters, gauge_value, gauges, histogram};

/// Reads a [`Kademlia`] service at each scrape.
pub(crate) struct KadCollector {
    kad: Kademlia,
}

impl std::fmt::Debug for KadCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KadCollector").finish_non_exhaustive()
    }
}

impl KadCollector {
    pub(crate) fn new(kad: &Kademlia) -> KadCollector {
        KadCollector { kad: kad.clone() }
    }
}

fn outcome(pairs: &[(&str, u64)]) -> Vec<(Labels, u64)> {
    pairs
        .iter()
        .map(|(what, n)| (vec![("outcome", (*what).to_owned())], *n))
        .collect()
}

impl Collector for KadCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let totals = self.kad.query_totals();
        let mut finished = Vec::with_capacity(totals.len() * 2);
        for t in &totals {
            let label = |how: &str| -> Labels {
                vec![("kind", t.kind.to_owned()), ("outcome", how.to_owned())]
            };
            finished.push((label("completed"), t.finished.saturating_sub(t.timed_out)));
            finished.push((label("timed_out"), t.timed_out));
        }
        counters(
            &mut encoder,
            "kad_queries",
            "Kademlia queries finished (the node's own refreshes included), by kind and outcome",
            &finished,
        )?;
        let mut metric = encoder.encode_descriptor(
            "kad_query_seconds",
            "How long Kademlia queries ran, by kind",
            None,
            MetricType::Histogram,
        )?;
        for t in &totals {
            let labels: Labels = vec![("kind", t.kind.to_owned())];
            histogram(metric.encode_family(&labels)?, &t.durations)?;
        }
        let c = self.kad.counters();
        counters(
            &mut encoder,
            "kad_outbound_requests",
            "Kademlia requests sent, and those that failed or got a bad answer",
            &outcome(&[
                ("sent", c.requests_sent),
                ("failed", c.requests_failed),
                ("bad_response", c.bad_responses),
            ]),
        )?;
        counters(
            &mut encoder,
            "kad_inbound_requests",
            "Kademlia requests from peers, served or refused",
            &outcome(&[
                ("served", c.inbound_requests),
                ("refused", c.inbound_refused),
            ]),
        )?;
        counters(
            &mut encoder,
            "kad_refused",
            "Records, provider entries, peers and addresses refused or dropped, and frames refused for memory, by why",
            &outcome(&[
                ("invalid_record", c.invalid_records),
                ("outdated_record", c.outdated_records),
                ("store_full", c.store_full),
                ("bad_provider_key", c.bad_provider_keys),
                ("foreign_provider", c.foreign_providers),
                ("dropped_peer", c.dropped_peers),
                ("dropped_addr", c.dropped_addrs),
                ("memory_refused", c.memory_refused),
            ]),
        )?;
        let (records, providers) = self.kad.store_sizes();
        gauges(
            &mut encoder,
            "kad_store_entries",
            "Records and provider records held",
            &[
                (vec![("store", "records".to_owned())], gauge_value(records)),
                (
                    vec![("store", "providers".to_owned())],
                    gauge_value(providers),
                ),
            ],
        )?;
        gauges(
            &mut encoder,
            "kad_routing_table_peers",
            "Peers in the Kademlia routing table",
            &[(Vec::new(), gauge_value(self.kad.routing_table_len()))],
        )
    }
}

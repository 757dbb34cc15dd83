//! Pubsub's counters and per-topic peer counts, read when scraped.

use lp2p_pubsub::PubSub;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;

use crate::labels::{Labels, counter, counters, gauge_value, gauges, histogram};

/// Reads a [`PubSub`] at each scrape.
pub(crate) struct PubsubCollector {
    pubsub: PubSub,
}

impl std::fmt::Debug for PubsubCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PubsubCollector").finish_non_exhaustive()
    }
}

impl PubsubCollector {
    pub(crate) fn new(pubsub: &PubSub) -> PubsubCollector {
        PubsubCollector {
            pubsub: pubsub.clone(),
        }
    }
}

impl Collector for PubsubCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let c = self.pubsub.counters();
        let outcome = |pairs: &[(&str, u64)]| -> Vec<(Labels, u64)> {
            pairs
                .iter()
                .map(|(what, n)| (vec![("outcome", (*what).to_owned())], *n))
                .collect()
        };
        counters(
            &mut encoder,
            "pubsub_messages",
            "Messages received, by what became of them",
            &outcome(&[
                ("accepted", c.messages_accepted),
                ("rejected", c.messages_rejected),
                ("ignored", c.messages_ignored),
                ("invalid", c.messages_invalid),
                ("duplicate", c.messages_duplicate),
                ("unsubscribed_topic", c.messages_unsubscribed_topic),
                ("validation_queue_full", c.validation_queue_full),
                ("validation_timeout", c.validation_timeouts),
            ]),
        )?;
        counters(
            &mut encoder,
            "pubsub_rpcs",
            "RPCs received, and those refused by why",
            &outcome(&[
                ("received", c.rpcs_received),
                ("too_large", c.rpcs_too_large),
                ("malformed", c.rpcs_malformed),
                ("graylisted", c.rpcs_graylisted),
                ("memory_refused", c.rpcs_refused_for_memory),
            ]),
        )?;
        counters(
            &mut encoder,
            "pubsub_dropped",
            "Outgoing messages and control entries dropped, by why",
            &outcome(&[
                (
                    "send_queue_full",
                    c.send_queue_dropped
                        .saturating_sub(c.send_queue_refused_for_memory),
                ),
                ("memory_refused", c.send_queue_refused_for_memory),
                ("oversized", c.oversized_dropped),
                ("control_queue_full", c.control_ids_dropped),
            ]),
        )?;
        counters(
            &mut encoder,
            "pubsub_control_ignored",
            "Control entries ignored or refused, by kind",
            &outcome(&[
                ("unknown_or_not_gossipsub", c.control_ignored),
                ("ihave", c.ihave_ignored),
                ("iwant", c.iwant_ignored),
                ("graft_refused", c.graft_refused),
                ("graft_unknown_topic", c.graft_unknown_topic),
                ("graft_in_backoff", c.graft_in_backoff),
                ("idontwant", c.idontwant_ignored),
                ("px", c.px_ignored),
                ("subscription", c.subscriptions_ignored),
            ]),
        )?;
        counter(
            &mut encoder,
            "pubsub_messages_published",
            "Messages this node published",
            c.messages_published,
        )?;
        counter(
            &mut encoder,
            "pubsub_broken_promises",
            "IWANT promises peers broke",
            c.broken_promises,
        )?;
        // Topics this node subscribed to: bounded by our own choices, not by peers.
        let mut mesh = Vec::new();
        let mut peers = Vec::new();
        for topic in self.pubsub.topics() {
            let labels: Labels = vec![("topic", topic.clone())];
            mesh.push((
                labels.clone(),
                gauge_value(self.pubsub.mesh_peers(&topic).len()),
            ));
            peers.push((labels, gauge_value(self.pubsub.peers(&topic).len())));
        }
        gauges(
            &mut encoder,
            "pubsub_mesh_peers",
            "Peers in the gossipsub mesh of each subscribed topic",
            &mesh,
        )?;
        gauges(
            &mut encoder,
            "pubsub_topic_peers",
            "Connected peers subscribed to each topic this node subscribed to",
            &peers,
        )?;
        // Only with scoring on; the buckets are lp2p_pubsub::SCORE_BUCKETS.
        if let Some(scores) = self.pubsub.score_histogram() {
            let metric = encoder.encode_descriptor(
                "pubsub_peer_scores",
                "Scores of the connected pubsub peers (buckets at the default thresholds)",
                None,
                MetricType::Histogram,
            )?;
            histogram(metric, &scores)?;
        }
        Ok(())
    }
}

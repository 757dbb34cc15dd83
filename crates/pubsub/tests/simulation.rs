//! 100 gossipsub cores on a random sparse network in virtual time, carrying the encoded RPC
//! bytes: exactly-once delivery to every subscriber, mesh degrees within [D_lo, D_hi] after
//! each heartbeat once warmed up, and a node publishing invalid messages graylisted by its
//! neighbours.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use bytes::Bytes;
use lp2p_pubsub::{Acceptance, Event, GossipsubConfig};
use support::harness::scored;
use support::sim::{Sim, SimConfig};

const T: &str = "sim";
const NODES: usize = 100;

#[test]
fn hundred_nodes_deliver_exactly_once_and_keep_mesh_degrees() {
    let mut cfg = SimConfig::new(NODES, 10, 1);
    // A tenth of the nodes speak only v1.1: IDONTWANT is gated per link.
    cfg.v11_fraction = 0.1;
    let mut sim = Sim::new(&cfg);
    sim.subscribe_all(T);
    let warm_up = Duration::from_secs(10);
    sim.run_for(warm_up);
    let warmed = sim.now;

    let mut published = Vec::new();
    for n in 0..30usize {
        let publisher = (n * 37) % NODES;
        // Some messages over the IDONTWANT threshold.
        let size = if n % 3 == 0 { 2000 } else { 100 };
        let mut data = vec![0u8; size];
        data[..8].copy_from_slice(&(n as u64).to_be_bytes());
        let id = sim.publish(publisher, T, Bytes::from(data)).unwrap();
        published.push((publisher, id));
        sim.run_for(Duration::from_millis(200));
    }
    sim.run_for(Duration::from_secs(10));

    for (publisher, id) in &published {
        for node in 0..NODES {
            let count = sim.deliveries[node].get(id).copied().unwrap_or(0);
            let expected = u32::from(node != *publisher);
            assert_eq!(
                count, expected,
                "node {node} got message {id} {count} times (publisher {publisher})"
            );
        }
    }

    let after: Vec<usize> = sim
        .mesh_sizes
        .iter()
        .filter(|(t, _, _)| *t >= warmed)
        .map(|(_, _, size)| *size)
        .collect();
    assert!(after.len() >= NODES * 10, "{} samples", after.len());
    let (min, max) = (
        after.iter().min().copied().unwrap(),
        after.iter().max().copied().unwrap(),
    );
    assert!(
        (5..=12).contains(&min) && (5..=12).contains(&max),
        "mesh degrees after heartbeats ranged {min}..={max}"
    );
    // Nobody was flagged or fell behind.
    for events in &sim.events {
        assert!(
            events
                .iter()
                .all(|e| !matches!(e, Event::Graylisted { .. } | Event::SlowPeer { .. }))
        );
    }
    let p50 = sim.latency_quantile(0.5);
    let p99 = sim.latency_quantile(0.99);
    assert!(p50 <= p99);
}

#[test]
fn a_node_publishing_invalid_messages_is_graylisted_by_its_neighbours() {
    let mut cfg = SimConfig::new(NODES, 10, 2);
    cfg.gossipsub = GossipsubConfig { ..scored(T) };
    let mut sim = Sim::new(&cfg);
    let attacker = 17;
    for (node, core) in sim.nodes.iter_mut().enumerate() {
        if node != attacker {
            core.set_validator(T, |_, m: &lp2p_pubsub::Message| {
                if m.data.starts_with(b"bad") {
                    Acceptance::Reject
                } else {
                    Acceptance::Accept
                }
            });
        }
    }
    sim.subscribe_all(T);
    sim.run_for(Duration::from_secs(5));

    for n in 0..5u8 {
        sim.publish(attacker, T, Bytes::from(vec![b'b', b'a', b'd', n]))
            .unwrap();
        sim.run_for(Duration::from_millis(100));
    }

    let neighbours = sim.neighbours(attacker);
    assert!(neighbours.len() >= 10);
    let attacker_id = sim.ids[attacker];
    for node in &neighbours {
        let score = sim.nodes[*node].peer_score(&attacker_id, sim.now).unwrap();
        assert!(score < -80.0, "node {node} scores the attacker {score}");
        assert!(
            sim.events[*node]
                .iter()
                .any(|e| matches!(e, Event::Graylisted { peer, .. } if *peer == attacker_id)),
            "node {node} raised no graylist event"
        );
        // Nobody delivered the invalid messages.
        assert!(sim.deliveries[*node].is_empty());
    }
    // Once graylisted, its RPCs were dropped unread.
    let dropped: u64 = neighbours
        .iter()
        .map(|n| sim.nodes[*n].counters().rpcs_graylisted)
        .sum();
    assert!(dropped > 0);

    // The rest of the network still works: an honest message reaches every honest node.
    let honest = (attacker + 1) % NODES;
    let id = sim.publish(honest, T, Bytes::from_static(b"good")).unwrap();
    sim.run_for(Duration::from_secs(5));
    for node in (0..NODES).filter(|n| *n != honest && *n != attacker) {
        assert_eq!(
            sim.deliveries[node].get(&id).copied(),
            Some(1),
            "node {node}"
        );
    }
}

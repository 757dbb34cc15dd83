//! Messages per second through a 20-node gossipsub network of sans-IO cores in virtual
//! time (every RPC encoded, framed, carried and decoded; every message signed and verified),
//! and the p50/p99 publish-to-delivery latency in virtual network time.
//!
//! Run: `cargo bench -p lp2p-pubsub --bench mesh`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::cast_precision_loss
)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lp2p_pubsub::Authenticity;
use support::sim::{Sim, SimConfig};

const NODES: usize = 20;
const BATCH: usize = 100;
const T: &str = "bench";

fn warmed_sim(authenticity: Authenticity) -> Sim {
    // Each node dials 4 others (plus a ring): 8-10 links per node, a sparse mesh.
    let mut cfg = SimConfig::new(NODES, 4, 42);
    cfg.config.authenticity = authenticity;
    let mut sim = Sim::new(&cfg);
    sim.subscribe_all(T);
    sim.run_for(Duration::from_secs(5));
    sim.latencies.clear();
    sim.bytes_sent = 0;
    sim.frames_sent = 0;
    sim
}

/// Publishes `BATCH` messages from rotating nodes, 2 ms of virtual time apart, and runs the
/// network until they are all delivered.
fn publish_batch(sim: &mut Sim, payload: usize, round: &mut u64) {
    let before: usize = sim.latencies.len();
    for n in 0..BATCH {
        *round += 1;
        let mut data = vec![0u8; payload];
        data[..8].copy_from_slice(&round.to_be_bytes());
        sim.publish(n % NODES, T, Bytes::from(data)).unwrap();
        sim.run_for(Duration::from_millis(2));
    }
    sim.run_for(Duration::from_millis(500));
    assert_eq!(sim.latencies.len() - before, BATCH * (NODES - 1));
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("gossipsub_20_nodes");
    group.sample_size(20);
    let cases = [
        ("signed", Authenticity::StrictSign, 256usize),
        ("signed", Authenticity::StrictSign, 16 * 1024),
        // Without signatures: what the routing itself costs.
        ("unsigned", Authenticity::StrictNoSign, 256),
    ];
    for (label, authenticity, payload) in cases {
        let mut sim = warmed_sim(authenticity);
        let mut round = 0u64;
        let name = format!("publish_{label}_{payload}B");
        group.throughput(Throughput::Elements(BATCH as u64));
        group.bench_function(&name, |b| {
            b.iter(|| publish_batch(&mut sim, payload, &mut round));
        });
        eprintln!(
            "gossipsub_20_nodes/{name}: {} deliveries, virtual latency p50 {:?} p99 {:?}, \
             {:.1} frames and {:.1} KiB on the wire per published message",
            sim.latencies.len(),
            sim.latency_quantile(0.5),
            sim.latency_quantile(0.99),
            sim.frames_sent as f64 / round as f64,
            sim.bytes_sent as f64 / round as f64 / 1024.0,
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Kademlia benchmarks:
//!
//! - find-peer lookups per second through a 1,000-node network of sans-IO cores in virtual
//!   time (every request and answer encoded, carried and decoded), with the lookups'
//!   virtual latency p50/p99 and rounds printed;
//! - heap memory per 10,000 stored records and per full routing table (measured with a
//!   counting allocator), printed once;
//! - the hot paths alone: a FIND_NODE answered from a full table, a closest-peers query of
//!   the table, a 20-peer answer decoded.
//!
//! Run: `cargo bench -p lp2p-kad --bench kad`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::alloc::System;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use lp2p_core::{Multiaddr, PeerId};
use lp2p_kad::key::Key;
use lp2p_kad::routing::RoutingTable;
use lp2p_kad::store::RecordStore;
use lp2p_kad::wire::{self, MessageKind, PeerInfo, Request, Response, WireLimits};
use lp2p_kad::{KadConfig, KadCore, QueryResult, Record};
use rand::RngExt;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use support::sim::{Sim, SimConfig};

/// Counts heap bytes, to measure what a structure holds.
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Net heap bytes allocated while `f` ran and still held by what it returned.
///
/// stats_alloc already folds every `realloc` into `bytes_allocated` (growth) or
/// `bytes_deallocated` (shrink); `bytes_reallocated` is the same change counted a second
/// time. Adding it (as this bench once did) counted the growth of every temporary buffer
/// that was later freed: building the table hashes millions of throw-away peer ids, and the
/// figure read 160 MiB for 640 entries.
fn heap_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let region = Region::new(GLOBAL);
    let value = f();
    let s = region.change();
    let net = s.bytes_allocated.saturating_sub(s.bytes_deallocated);
    (value, net)
}

fn addr(i: usize) -> Multiaddr {
    format!(
        "/ip4/10.{}.{}.{}/tcp/4001",
        i >> 16 & 255,
        i >> 8 & 255,
        i & 255
    )
    .parse()
    .unwrap()
}

/// A routing table with buckets 0..16 full (k entries and k replacements each): as full as a
/// table gets in a network of ~2^20 peers.
fn full_table(local: PeerId) -> RoutingTable {
    let mut table = RoutingTable::new(Key::from_peer(&local), 20, 20, 2);
    let now = Instant::now();
    let mut i = 0;
    for bucket in 0..16 {
        let mut placed = 0;
        while placed < 40 {
            let peer = PeerId::random();
            if table.bucket_index(&Key::from_peer(&peer)) == Some(bucket) {
                table.insert(peer, vec![addr(i), addr(i + 1)], now);
                placed += 1;
                i += 2;
            }
        }
    }
    table
}

fn memory() {
    let (store, records) = heap_of(|| {
        let mut store = RecordStore::new(20_000, 1 << 30, 64 * 1024);
        for i in 0..10_000u32 {
            let mut key = b"/app/".to_vec();
            key.extend(i.to_be_bytes());
            store.put(Record::new(key, vec![7u8; 100])).unwrap();
        }
        store
    });
    let local = PeerId::random();
    let (table, table_bytes) = heap_of(|| full_table(local));
    eprintln!(
        "memory: 10,000 records (8-byte keys under /app/, 100-byte values): {:.2} MiB heap ({} B per record, {} B accounted by the store); \
         full routing table (16 full buckets: {} entries + {} replacements, 2 addresses each): {:.1} KiB heap ({} B per peer)",
        records as f64 / (1024.0 * 1024.0),
        records / 10_000,
        store.bytes() / 10_000,
        table.len(),
        table
            .bucket_sizes()
            .iter()
            .map(|(_, _, r)| r)
            .sum::<usize>(),
        table_bytes as f64 / 1024.0,
        table_bytes / 640,
    );
    drop((store, table));
}

fn lookups(c: &mut Criterion) {
    memory();
    let mut cfg = SimConfig::new(1000, 3);
    cfg.loss = 0.01;
    cfg.config.max_refresh_bucket = 0;
    let mut sim = Sim::new(cfg);
    sim.join_all(Duration::from_secs(20));
    let servers = sim.online_servers();
    let mut latencies = Vec::new();
    let mut rounds = Vec::new();
    c.bench_function(
        "kad: find-peer lookup in a 1,000-node simulated network",
        |b| {
            b.iter_custom(|iters| {
                let started = Instant::now();
                for _ in 0..iters {
                    let from = servers[sim.rng().random_range(0..servers.len())];
                    let to = servers[sim.rng().random_range(0..servers.len())];
                    let (now, target) = (sim.now, sim.nodes[to].id);
                    let id = sim.nodes[from].core.find_peer(target, now).unwrap();
                    sim.flush(from);
                    let (result, stats) = sim.wait(from, id, Duration::from_secs(120));
                    assert!(matches!(result, QueryResult::FindPeer(Some(_))) || from == to);
                    latencies.push(stats.duration().as_secs_f64() * 1000.0);
                    rounds.push(f64::from(stats.rounds));
                }
                started.elapsed()
            });
        },
    );
    latencies.sort_by(f64::total_cmp);
    rounds.sort_by(f64::total_cmp);
    let q = |v: &[f64], p: f64| v[((v.len() - 1) as f64 * p) as usize];
    eprintln!(
        "find-peer in the simulated network: {} lookups, virtual latency ms p50 {:.0} p99 {:.0} (links 10-100 ms one way), rounds p50 {} p99 {}",
        latencies.len(),
        q(&latencies, 0.5),
        q(&latencies, 0.99),
        q(&rounds, 0.5),
        q(&rounds, 0.99),
    );
}

fn hot_paths(c: &mut Criterion) {
    let me = PeerId::random();
    let now = Instant::now();
    let mut core = KadCore::new(me, KadConfig::default(), now);
    let table = full_table(me);
    for entry in table.iter() {
        core.add_address(entry.peer, entry.addrs.clone(), now);
    }
    let asker = PeerId::random();
    let request = wire::encode_request(
        &Request::FindNode {
            key: PeerId::random().to_bytes(),
        },
        now,
    );
    c.bench_function(
        "kad: serve FIND_NODE from a full table (decode, 20 closest, encode)",
        |b| {
            b.iter(|| core.handle_request_bytes(asker, &request, now).unwrap());
        },
    );
    let target = Key::new(b"target");
    c.bench_function("kad: 20 closest of a full routing table", |b| {
        b.iter(|| table.closest(&target, 20, None).len());
    });
    let closer: Vec<PeerInfo> = table
        .iter()
        .take(20)
        .map(|e| PeerInfo::new(e.peer, e.addrs.clone()))
        .collect();
    let answer = wire::encode_response(&Response::FindNode { closer }, now);
    let limits = WireLimits::default();
    c.bench_function("kad: decode a 20-peer FIND_NODE answer", |b| {
        b.iter(|| wire::decode_response(&answer, MessageKind::FindNode, &limits, now).unwrap());
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(10));
    targets = lookups, hot_paths
}
criterion_main!(benches);

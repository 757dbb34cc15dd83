//! Peerstore hot paths: refreshing an address, reading addresses, protocol lookups, and
//! inserting a new peer into a full store (the eviction path), plus `gc` over a full store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use lp2p_core::{Multiaddr, PeerId, RuntimeHandle};
use lp2p_peerstore::{
    CONNECTED_ADDR_TTL, MAX_PEERS, Peerstore, RECENTLY_CONNECTED_ADDR_TTL, TEMP_ADDR_TTL,
};

fn addr(n: u16) -> Multiaddr {
    format!("/ip4/10.0.0.1/tcp/{n}").parse().unwrap()
}

/// A store at its default peer cap, every peer with 4 addresses and 8 protocols.
fn full_store() -> (Peerstore, Vec<PeerId>) {
    let store = Peerstore::with_runtime(RuntimeHandle::default());
    let protocols: Vec<String> = (0..8).map(|i| format!("/proto/{i}/1.0.0")).collect();
    let peers: Vec<PeerId> = (0..MAX_PEERS).map(|_| PeerId::random()).collect();
    for peer in &peers {
        store
            .add_addrs(peer, (0..4).map(addr), RECENTLY_CONNECTED_ADDR_TTL)
            .unwrap();
        store
            .set_protocols(peer, protocols.iter().cloned())
            .unwrap();
    }
    (store, peers)
}

fn bench(c: &mut Criterion) {
    let (store, peers) = full_store();
    let peer = peers[MAX_PEERS / 2];

    let known = addr(1);
    c.bench_function("add_addr (refresh an existing entry)", |b| {
        b.iter(|| {
            store
                .add_addr(black_box(&peer), known.clone(), CONNECTED_ADDR_TTL)
                .unwrap();
        });
    });

    c.bench_function("addrs (4 addresses)", |b| {
        b.iter(|| black_box(store.addrs(black_box(&peer))));
    });

    c.bench_function("first_supported_protocol (8 protocols)", |b| {
        let wanted = ["/other/1.0.0", "/proto/7/1.0.0"];
        b.iter(|| black_box(store.first_supported_protocol(black_box(&peer), &wanted)));
    });

    c.bench_function("add_addr new peer into a full store (evicts one)", |b| {
        b.iter_batched(
            PeerId::random,
            |fresh| {
                store
                    .add_addr(&fresh, known.clone(), TEMP_ADDR_TTL)
                    .unwrap();
            },
            BatchSize::SmallInput,
        );
    });

    c.bench_function("gc over a full store (nothing expired)", |b| {
        b.iter(|| black_box(store.gc()));
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Property tests: whatever the sequence of operations, every bound and internal invariant
//! holds, and a connected peer (or one with a permanent address) is never evicted while
//! another could be.

use std::collections::HashMap;
use std::time::Duration;

use lp2p_core::{Keypair, Multiaddr, PeerId, Protocol, PublicKey};
use lp2p_testkit::Sim;
use proptest::prelude::*;

use crate::{
    CONNECTED_ADDR_TTL, PERMANENT_ADDR_TTL, Peerstore, PeerstoreConfig,
    RECENTLY_CONNECTED_ADDR_TTL, TEMP_ADDR_TTL,
};

const PEERS: usize = 6;
const ADDRS: u16 = 8;

#[derive(Clone, Debug)]
enum Op {
    AddAddrs {
        peer: usize,
        addrs: Vec<u16>,
        ttl: usize,
        suffix: Suffix,
    },
    SetAddrs {
        peer: usize,
        addrs: Vec<u16>,
        ttl: usize,
    },
    UpdateAddrs {
        peer: usize,
        old: usize,
        new: usize,
    },
    ClearAddrs(usize),
    AddKey {
        peer: usize,
        key_of: usize,
    },
    SetProtocols {
        peer: usize,
        protocols: Vec<u8>,
    },
    AddProtocols {
        peer: usize,
        protocols: Vec<u8>,
    },
    RemoveProtocols {
        peer: usize,
        protocols: Vec<u8>,
    },
    PutMetadata {
        peer: usize,
        key: u8,
        len: usize,
    },
    RemoveMetadata {
        peer: usize,
        key: u8,
    },
    Read(usize),
    RemovePeer(usize),
    Advance(u64),
    Gc,
}

#[derive(Clone, Copy, Debug)]
enum Suffix {
    None,
    Own,
    Other,
}

/// The TTLs an op can pick from (zero included).
const TTLS: [Duration; 6] = [
    Duration::ZERO,
    TEMP_ADDR_TTL,
    RECENTLY_CONNECTED_ADDR_TTL,
    CONNECTED_ADDR_TTL,
    PERMANENT_ADDR_TTL,
    Duration::from_secs(30),
];

fn op() -> impl Strategy<Value = Op> {
    let peer = 0..PEERS;
    let addrs = prop::collection::vec(0..ADDRS, 0..6);
    let ttl = 0..TTLS.len();
    let protocols = prop::collection::vec(0u8..10, 0..6);
    let suffix = prop_oneof![Just(Suffix::None), Just(Suffix::Own), Just(Suffix::Other)];
    prop_oneof![
        4 => (peer.clone(), addrs.clone(), ttl.clone(), suffix).prop_map(|(peer, addrs, ttl, suffix)| Op::AddAddrs { peer, addrs, ttl, suffix }),
        1 => (peer.clone(), addrs, ttl.clone()).prop_map(|(peer, addrs, ttl)| Op::SetAddrs { peer, addrs, ttl }),
        2 => (peer.clone(), ttl.clone(), ttl).prop_map(|(peer, old, new)| Op::UpdateAddrs { peer, old, new }),
        1 => peer.clone().prop_map(Op::ClearAddrs),
        1 => (peer.clone(), 0..PEERS).prop_map(|(peer, key_of)| Op::AddKey { peer, key_of }),
        1 => (peer.clone(), protocols.clone()).prop_map(|(peer, protocols)| Op::SetProtocols { peer, protocols }),
        2 => (peer.clone(), protocols.clone()).prop_map(|(peer, protocols)| Op::AddProtocols { peer, protocols }),
        1 => (peer.clone(), protocols).prop_map(|(peer, protocols)| Op::RemoveProtocols { peer, protocols }),
        2 => (peer.clone(), 0u8..5, 0usize..40).prop_map(|(peer, key, len)| Op::PutMetadata { peer, key, len }),
        1 => (peer.clone(), 0u8..5).prop_map(|(peer, key)| Op::RemoveMetadata { peer, key }),
        2 => peer.clone().prop_map(Op::Read),
        1 => peer.prop_map(Op::RemovePeer),
        2 => (0u64..400).prop_map(Op::Advance),
        1 => Just(Op::Gc),
    ]
}

fn addr(n: u16) -> Multiaddr {
    format!("/ip4/10.0.0.1/tcp/{n}").parse().unwrap()
}

struct World {
    store: Peerstore,
    /// The virtual clock the store reads; `Op::Advance` moves it.
    sim: Sim,
    keys: Vec<PublicKey>,
    peers: Vec<PeerId>,
}

impl World {
    fn new() -> Self {
        let sim = Sim::new();
        let config = PeerstoreConfig::default()
            .with_max_peers(4)
            .with_max_addrs_per_peer(3)
            .with_max_protocols_per_peer(4)
            .with_max_metadata_entries_per_peer(3)
            .with_max_metadata_bytes_per_peer(48);
        let keys: Vec<PublicKey> = (0..PEERS)
            .map(|_| Keypair::generate_ed25519().public())
            .collect();
        let peers = keys.iter().map(PublicKey::to_peer_id).collect();
        World {
            store: Peerstore::new(config, sim.runtime()),
            sim,
            keys,
            peers,
        }
    }

    /// Which peers are stored, and whether each is protected from early eviction.
    fn snapshot(&self) -> HashMap<PeerId, bool> {
        self.store
            .peers()
            .into_iter()
            .map(|p| (p, self.store.is_protected(&p)))
            .collect()
    }

    fn apply(&self, op: &Op) {
        let ps = &self.store;
        match op {
            Op::AddAddrs {
                peer,
                addrs,
                ttl,
                suffix,
            } => {
                let p = self.peers[*peer];
                let other = self.peers[(*peer + 1) % PEERS];
                let list: Vec<Multiaddr> = addrs
                    .iter()
                    .map(|n| match suffix {
                        Suffix::None => addr(*n),
                        Suffix::Own => addr(*n).with(Protocol::P2p(p)),
                        Suffix::Other => addr(*n).with(Protocol::P2p(other)),
                    })
                    .collect();
                let result = ps.add_addrs(&p, list, TTLS[*ttl]);
                let refused = matches!(suffix, Suffix::Other) && !addrs.is_empty();
                assert_eq!(result.is_err(), refused, "{result:?}");
            }
            Op::SetAddrs { peer, addrs, ttl } => {
                let p = self.peers[*peer];
                ps.set_addrs(&p, addrs.iter().map(|n| addr(*n)), TTLS[*ttl])
                    .unwrap();
            }
            Op::UpdateAddrs { peer, old, new } => {
                ps.update_addrs(&self.peers[*peer], TTLS[*old], TTLS[*new]);
            }
            Op::ClearAddrs(peer) => ps.clear_addrs(&self.peers[*peer]),
            Op::AddKey { peer, key_of } => {
                let result = ps.add_public_key(&self.peers[*peer], self.keys[*key_of].clone());
                assert_eq!(result.is_ok(), peer == key_of);
            }
            Op::SetProtocols { peer, protocols } => {
                let _ = ps.set_protocols(
                    &self.peers[*peer],
                    protocols.iter().map(|n| format!("/p/{n}")),
                );
            }
            Op::AddProtocols { peer, protocols } => {
                let _ = ps.add_protocols(
                    &self.peers[*peer],
                    protocols.iter().map(|n| format!("/p/{n}")),
                );
            }
            Op::RemoveProtocols { peer, protocols } => {
                let list: Vec<String> = protocols.iter().map(|n| format!("/p/{n}")).collect();
                ps.remove_protocols(&self.peers[*peer], &list);
            }
            Op::PutMetadata { peer, key, len } => {
                let _ = ps.put_metadata(&self.peers[*peer], &format!("k{key}"), vec![0; *len]);
            }
            Op::RemoveMetadata { peer, key } => {
                let _ = ps.remove_metadata(&self.peers[*peer], &format!("k{key}"));
            }
            Op::Read(peer) => {
                let p = self.peers[*peer];
                let now_listed = ps.addrs(&p);
                assert!(now_listed.len() <= 3);
                let info = ps.peer_info(&p);
                assert_eq!(info.addrs, now_listed);
                assert_eq!(ps.public_key(&p), Some(self.keys[*peer].clone()));
            }
            Op::RemovePeer(peer) => {
                ps.remove_peer(&self.peers[*peer]);
            }
            Op::Advance(secs) => {
                self.sim.advance(Duration::from_secs(*secs));
            }
            Op::Gc => {
                ps.gc();
            }
        }
    }
}

/// The peer an op writes to or removes, if any (so its disappearance is not an eviction).
fn target(op: &Op) -> Option<usize> {
    match op {
        Op::AddAddrs { peer, .. }
        | Op::SetAddrs { peer, .. }
        | Op::UpdateAddrs { peer, .. }
        | Op::AddKey { peer, .. }
        | Op::SetProtocols { peer, .. }
        | Op::AddProtocols { peer, .. }
        | Op::RemoveProtocols { peer, .. }
        | Op::PutMetadata { peer, .. }
        | Op::RemoveMetadata { peer, .. }
        | Op::ClearAddrs(peer)
        | Op::Read(peer)
        | Op::RemovePeer(peer) => Some(*peer),
        Op::Advance(_) | Op::Gc => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn bounds_always_hold(ops in prop::collection::vec(op(), 1..80)) {
        let world = World::new();
        for op in &ops {
            let before = world.snapshot();
            world.apply(op);
            world.store.check_invariants();
            let after = world.snapshot();
            let targeted = target(op).map(|i| world.peers[i]);
            let evicted: Vec<(PeerId, bool)> = before
                .iter()
                .filter(|(p, _)| !after.contains_key(p) && Some(**p) != targeted)
                .map(|(p, c)| (*p, *c))
                .collect();
            if matches!(op, Op::Gc | Op::Advance(_)) {
                // gc drops only peers nothing is left of; that is not an eviction.
                continue;
            }
            prop_assert!(evicted.len() <= 1, "one write evicts at most one peer: {evicted:?}");
            if let Some((_, true)) = evicted.first() {
                prop_assert!(
                    before.values().all(|protected| *protected),
                    "a protected peer was evicted while an unprotected one remained"
                );
            }
        }
    }

    #[test]
    fn expired_addresses_are_never_listed(
        ttls in prop::collection::vec(1u64..600, 1..6),
        waits in prop::collection::vec(0u64..300, 1..6),
    ) {
        let world = World::new();
        let p = world.peers[0];
        let mut expiries = Vec::new();
        for (i, ttl) in ttls.iter().enumerate() {
            let n = u16::try_from(i).unwrap();
            world.store.add_addr(&p, addr(n), Duration::from_secs(*ttl)).unwrap();
            expiries.push((addr(n), *ttl));
        }
        let mut elapsed = 0u64;
        for wait in waits {
            elapsed += wait;
            world.apply(&Op::Advance(wait));
            let listed = world.store.addrs(&p);
            for a in &listed {
                let ttl = expiries.iter().find(|(x, _)| x == a).unwrap().1;
                prop_assert!(elapsed < ttl, "{a} listed at {elapsed}s with ttl {ttl}s");
            }
            world.store.check_invariants();
        }
    }
}

#[test]
fn concurrent_writers_keep_the_invariants() {
    let world = World::new();
    let ps = world.store.clone();
    let peers = world.peers.clone();
    std::thread::scope(|s| {
        for t in 0..4usize {
            let ps = ps.clone();
            let peers = &peers;
            s.spawn(move || {
                for i in 0..400usize {
                    let p = &peers[(t + i) % PEERS];
                    let n = u16::try_from(i % 7).unwrap();
                    let ttl = if i % 3 == 0 {
                        CONNECTED_ADDR_TTL
                    } else {
                        TEMP_ADDR_TTL
                    };
                    ps.add_addr(p, addr(n), ttl).unwrap();
                    let _ = ps.add_protocols(p, [format!("/p/{}", i % 6)]);
                    let _ = ps.put_metadata(p, &format!("k{}", i % 4), vec![0; i % 20]);
                    if i % 5 == 0 {
                        ps.update_addrs(p, CONNECTED_ADDR_TTL, RECENTLY_CONNECTED_ADDR_TTL);
                    }
                    if i % 37 == 0 {
                        ps.remove_peer(p);
                        ps.gc();
                    }
                }
            });
        }
    });
    ps.check_invariants();
    assert!(ps.len() <= 4);
}

//! The peerstore's public behaviour: TTLs, keys, protocols, metadata, bounds, gc, threads.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use lp2p_core::multiaddr::multihash::Multihash;
use lp2p_core::{Keypair, Multiaddr, PeerId, Protocol, ProtocolId};
use lp2p_peerstore::{
    CONNECTED_ADDR_TTL, GcStats, PERMANENT_ADDR_TTL, PeerInfo, Peerstore, PeerstoreConfig,
    PeerstoreError, RECENTLY_CONNECTED_ADDR_TTL, TEMP_ADDR_TTL,
};
use lp2p_testkit::Sim;

/// A peerstore on a virtual clock, and the simulation whose clock it reads: the tests move
/// time with `sim.advance(..)`, never sleeping.
fn store_with(config: PeerstoreConfig) -> (Peerstore, Sim) {
    let sim = Sim::new();
    (Peerstore::new(config, sim.runtime()), sim)
}

fn store() -> (Peerstore, Sim) {
    store_with(PeerstoreConfig::default())
}

fn addr(n: u16) -> Multiaddr {
    format!("/ip4/127.0.0.1/tcp/{n}").parse().unwrap()
}

const SEC: Duration = Duration::from_secs(1);
const MIN: Duration = Duration::from_secs(60);

// ---- address book: TTLs ----

#[test]
fn temporary_address_expires_after_its_ttl() {
    let (ps, sim) = store();
    let p = PeerId::random();
    ps.add_addr(&p, addr(1), TEMP_ADDR_TTL).unwrap();
    sim.advance(TEMP_ADDR_TTL.checked_sub(SEC).unwrap());
    assert_eq!(ps.addrs(&p), vec![addr(1)]);
    sim.advance(SEC);
    assert!(ps.addrs(&p).is_empty());
    // Collected lazily on that access: nothing else was stored, so the peer is gone.
    assert!(!ps.contains(&p));
}

#[test]
fn permanent_and_connected_addresses_do_not_expire() {
    let (ps, sim) = store();
    let p = PeerId::random();
    ps.add_addr(&p, addr(1), PERMANENT_ADDR_TTL).unwrap();
    ps.add_addr(&p, addr(2), CONNECTED_ADDR_TTL).unwrap();
    sim.advance(Duration::from_secs(100 * 365 * 24 * 3600));
    assert_eq!(ps.addrs(&p), vec![addr(1), addr(2)]);
    assert_eq!(ps.gc(), GcStats::default());
}

#[test]
fn add_extends_but_never_shortens() {
    let (ps, sim) = store();
    let p = PeerId::random();
    ps.add_addr(&p, addr(1), RECENTLY_CONNECTED_ADDR_TTL)
        .unwrap();
    ps.add_addr(&p, addr(1), TEMP_ADDR_TTL).unwrap();
    sim.advance(5 * MIN);
    assert_eq!(
        ps.addrs(&p),
        vec![addr(1)],
        "the temp TTL did not shorten it"
    );

    let q = PeerId::random();
    ps.add_addr(&q, addr(2), TEMP_ADDR_TTL).unwrap();
    sim.advance(MIN);
    ps.add_addr(&q, addr(2), TEMP_ADDR_TTL).unwrap();
    sim.advance(MIN + 30 * SEC);
    assert_eq!(ps.addrs(&q), vec![addr(2)], "the second add extended it");
    sim.advance(MIN);
    assert!(ps.addrs(&q).is_empty());
}

#[test]
fn add_with_zero_ttl_stores_nothing() {
    let (ps, _) = store();
    let p = PeerId::random();
    ps.add_addr(&p, addr(1), Duration::ZERO).unwrap();
    assert!(!ps.contains(&p));
    ps.add_addrs(&p, Vec::new(), TEMP_ADDR_TTL).unwrap();
    assert!(ps.is_empty());
}

#[test]
fn set_replaces_the_ttl_and_zero_removes() {
    let (ps, sim) = store();
    let p = PeerId::random();
    ps.add_addrs(&p, [addr(1), addr(2)], PERMANENT_ADDR_TTL)
        .unwrap();
    // Shortening is allowed with set; the other address is untouched.
    ps.set_addr(&p, addr(1), TEMP_ADDR_TTL).unwrap();
    sim.advance(TEMP_ADDR_TTL);
    assert_eq!(ps.addrs(&p), vec![addr(2)]);
    ps.set_addrs(&p, [addr(2)], Duration::ZERO).unwrap();
    assert!(ps.addrs(&p).is_empty());
    // set on a new address stores it.
    ps.set_addr(&p, addr(3), TEMP_ADDR_TTL).unwrap();
    assert_eq!(ps.addrs(&p), vec![addr(3)]);
}

#[test]
fn update_downgrades_connected_on_disconnect() {
    let (ps, sim) = store();
    let p = PeerId::random();
    ps.add_addr(&p, addr(1), CONNECTED_ADDR_TTL).unwrap();
    ps.add_addr(&p, addr(2), PERMANENT_ADDR_TTL).unwrap();
    ps.add_addr(&p, addr(3), TEMP_ADDR_TTL).unwrap();
    assert!(ps.is_connected(&p));
    ps.update_addrs(&p, CONNECTED_ADDR_TTL, RECENTLY_CONNECTED_ADDR_TTL);
    assert!(!ps.is_connected(&p));
    sim.advance(RECENTLY_CONNECTED_ADDR_TTL.checked_sub(SEC).unwrap());
    assert_eq!(ps.addrs(&p), vec![addr(1), addr(2)]);
    sim.advance(SEC);
    assert_eq!(ps.addrs(&p), vec![addr(2)], "permanent is untouched");
    // A zero new TTL removes the matching addresses.
    ps.update_addrs(&p, PERMANENT_ADDR_TTL, Duration::ZERO);
    assert!(ps.addrs(&p).is_empty());
    // Unknown peers are not created.
    let q = PeerId::random();
    ps.update_addrs(&q, TEMP_ADDR_TTL, PERMANENT_ADDR_TTL);
    assert!(!ps.contains(&q));
}

#[test]
fn clear_removes_addresses_only() {
    let (ps, _) = store();
    let key = Keypair::generate_ed25519().public();
    let p = key.to_peer_id();
    let q = PeerId::random();
    ps.add_addrs(&p, [addr(1), addr(2)], PERMANENT_ADDR_TTL)
        .unwrap();
    ps.add_public_key(&p, key).unwrap();
    ps.add_addr(&q, addr(3), PERMANENT_ADDR_TTL).unwrap();
    ps.clear_addrs(&p);
    ps.clear_addrs(&q);
    assert!(ps.addrs(&p).is_empty());
    assert!(ps.contains(&p), "the key is still stored");
    assert!(!ps.contains(&q), "nothing was left of q");
    ps.clear_addrs(&PeerId::random());
}

// ---- address book: /p2p suffix and bad addresses ----

#[test]
fn own_p2p_suffix_is_stripped() {
    let (ps, _) = store();
    let p = PeerId::random();
    let full = addr(1).with(Protocol::P2p(p));
    ps.add_addr(&p, full.clone(), TEMP_ADDR_TTL).unwrap();
    ps.add_addr(&p, addr(1), TEMP_ADDR_TTL).unwrap();
    assert_eq!(ps.addrs(&p), vec![addr(1)], "one entry, without the suffix");
}

#[test]
fn address_naming_another_peer_is_refused_and_nothing_is_stored() {
    let (ps, _) = store();
    let p = PeerId::random();
    let other = PeerId::random();
    let foreign = addr(2).with(Protocol::P2p(other));
    let err = ps
        .add_addrs(&p, [addr(1), foreign.clone()], TEMP_ADDR_TTL)
        .unwrap_err();
    match &err {
        PeerstoreError::AddrPeerMismatch {
            peer,
            addr,
            addr_peer,
        } => {
            assert_eq!(**peer, p);
            assert_eq!(*addr, foreign);
            assert_eq!(**addr_peer, other);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains(&other.to_string()));
    assert!(!ps.contains(&p), "all or nothing");
    assert!(ps.set_addr(&p, foreign, TEMP_ADDR_TTL).is_err());
    assert!(!ps.contains(&p));
}

#[test]
fn empty_and_oversized_addresses_are_refused() {
    let (ps, _) = store_with(PeerstoreConfig::default().with_max_addr_len(16));
    let p = PeerId::random();
    assert!(matches!(
        ps.add_addr(&p, Multiaddr::empty(), TEMP_ADDR_TTL),
        Err(PeerstoreError::EmptyAddr { .. })
    ));
    assert!(matches!(
        ps.add_addr(&p, Multiaddr::empty().with(Protocol::P2p(p)), TEMP_ADDR_TTL),
        Err(PeerstoreError::EmptyAddr { .. })
    ));
    let long: Multiaddr = "/dns/a-rather-long-name.example.com/tcp/1".parse().unwrap();
    assert!(matches!(
        ps.add_addr(&p, long, TEMP_ADDR_TTL),
        Err(PeerstoreError::AddrTooLong { max: 16, .. })
    ));
    assert!(ps.is_empty());
}

// ---- key book ----

#[test]
fn matching_key_is_stored() {
    let (ps, _) = store();
    let key = Keypair::generate_ed25519().public();
    let p = key.to_peer_id();
    ps.add_public_key(&p, key.clone()).unwrap();
    assert!(ps.contains(&p));
    assert_eq!(ps.public_key(&p), Some(key));
}

#[test]
fn key_of_another_peer_is_refused_naming_both() {
    let (ps, _) = store();
    let p = PeerId::random();
    let key = Keypair::generate_ed25519().public();
    let key_peer = key.to_peer_id();
    let err = ps.add_public_key(&p, key).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&p.to_string()), "{text}");
    assert!(text.contains(&key_peer.to_string()), "{text}");
    match err {
        PeerstoreError::PublicKeyMismatch {
            peer,
            key_peer: named,
        } => {
            assert_eq!(*peer, p);
            assert_eq!(*named, key_peer);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!ps.contains(&p));
    // And at the trait boundary it is core's peer id mismatch.
    let other = Keypair::generate_ed25519().public();
    let core: lp2p_core::Error = ps.add_public_key(&p, other).unwrap_err().into();
    assert!(matches!(core, lp2p_core::Error::PeerIdMismatch { .. }));
}

#[test]
fn key_is_extracted_from_an_identity_peer_id() {
    let (ps, _) = store();
    let key = Keypair::generate_ed25519().public();
    let p = key.to_peer_id();
    // Nothing stored, yet the key is known: Ed25519 peer ids inline it.
    assert_eq!(ps.public_key(&p), Some(key.clone()));
    assert!(!ps.contains(&p));
    assert_eq!(ps.peer_info(&p).public_key, Some(key));
    // An identity peer id whose digest is not a key, and a SHA-256 peer id: no key.
    assert_eq!(ps.public_key(&PeerId::random()), None);
    let hashed = PeerId::from_multihash(Multihash::wrap(0x12, &[7u8; 32]).unwrap()).unwrap();
    assert_eq!(ps.public_key(&hashed), None);
}

// ---- protocol book ----

#[test]
fn protocols_set_add_remove_and_query() {
    let (ps, _) = store();
    let p = PeerId::random();
    ps.set_protocols(&p, ["/a/1", "/b/1"]).unwrap();
    ps.add_protocols(&p, [String::from("/c/1"), String::from("/a/1")])
        .unwrap();
    assert_eq!(ps.protocols(&p), ["/a/1", "/b/1", "/c/1"]);
    assert_eq!(
        ps.supports_protocols(&p, &["/c/1", "/x/1", "/a/1"]),
        ["/c/1", "/a/1"]
    );
    let wanted = [ProtocolId::from("/x/1"), ProtocolId::from("/b/1")];
    assert_eq!(ps.first_supported_protocol(&p, &wanted).unwrap(), "/b/1");
    assert_eq!(ps.first_supported_protocol(&p, &["/x/1"]), None);
    ps.remove_protocols(&p, &["/b/1"]);
    assert_eq!(ps.protocols(&p), ["/a/1", "/c/1"]);
    ps.set_protocols(&p, ["/d/1"]).unwrap();
    assert_eq!(ps.protocols(&p), ["/d/1"]);
    // Removing the last protocol of a peer with nothing else drops it.
    ps.remove_protocols(&p, &["/d/1"]);
    assert!(!ps.contains(&p));
    assert!(ps.protocols(&p).is_empty());
    assert!(ps.supports_protocols(&p, &["/d/1"]).is_empty());
}

#[test]
fn protocol_cap_and_bad_ids_are_refused_all_or_nothing() {
    let (ps, _) = store_with(
        PeerstoreConfig::default()
            .with_max_protocols_per_peer(2)
            .with_max_protocol_len(8),
    );
    let p = PeerId::random();
    ps.set_protocols(&p, ["/a", "/b"]).unwrap();
    assert!(matches!(
        ps.add_protocols(&p, ["/c"]),
        Err(PeerstoreError::TooManyProtocols { max: 2, .. })
    ));
    assert!(matches!(
        ps.set_protocols(&p, ["/x", "/y", "/z"]),
        Err(PeerstoreError::TooManyProtocols { .. })
    ));
    assert!(matches!(
        ps.set_protocols(&p, ["/toolong/1"]),
        Err(PeerstoreError::InvalidProtocol {
            len: 10,
            max: 8,
            ..
        })
    ));
    assert!(matches!(
        ps.add_protocols(&p, [""]),
        Err(PeerstoreError::InvalidProtocol { len: 0, .. })
    ));
    assert_eq!(ps.protocols(&p), ["/a", "/b"]);
    // Re-adding known ones fits.
    ps.add_protocols(&p, ["/b", "/a"]).unwrap();
}

// ---- metadata ----

#[test]
fn metadata_and_versions() {
    let (ps, _) = store();
    let p = PeerId::random();
    ps.put_metadata(&p, "latency", vec![1, 2, 3]).unwrap();
    assert_eq!(ps.metadata(&p, "latency"), Some(vec![1, 2, 3]));
    assert_eq!(ps.metadata(&p, "missing"), None);
    ps.set_agent_version(&p, "go-libp2p/0.40").unwrap();
    ps.set_protocol_version(&p, "ipfs/0.1.0").unwrap();
    assert_eq!(ps.agent_version(&p).as_deref(), Some("go-libp2p/0.40"));
    assert_eq!(ps.protocol_version(&p).as_deref(), Some("ipfs/0.1.0"));
    // The versions are ordinary entries under go-libp2p's keys.
    assert_eq!(
        ps.metadata(&p, "AgentVersion").as_deref(),
        Some(&b"go-libp2p/0.40"[..])
    );
    assert_eq!(ps.remove_metadata(&p, "latency"), Some(vec![1, 2, 3]));
    assert_eq!(ps.remove_metadata(&p, "latency"), None);
    assert_eq!(ps.agent_version(&PeerId::random()), None);
}

#[test]
fn metadata_bounds_are_enforced() {
    let (ps, _) = store_with(
        PeerstoreConfig::default()
            .with_max_metadata_entries_per_peer(2)
            .with_max_metadata_bytes_per_peer(32),
    );
    let p = PeerId::random();
    ps.put_metadata(&p, "a", vec![0; 10]).unwrap();
    ps.put_metadata(&p, "b", vec![0; 10]).unwrap();
    assert!(matches!(
        ps.put_metadata(&p, "c", vec![]),
        Err(PeerstoreError::TooManyMetadataEntries { max: 2, .. })
    ));
    assert!(matches!(
        ps.put_metadata(&p, "b", vec![0; 21]),
        Err(PeerstoreError::MetadataTooLarge {
            size: 33,
            max: 32,
            ..
        })
    ));
    assert_eq!(ps.metadata(&p, "b"), Some(vec![0; 10]));
    ps.put_metadata(&p, "b", vec![0; 20]).unwrap();
}

// ---- bounds ----

#[test]
fn address_cap_per_peer() {
    let (ps, _) = store_with(PeerstoreConfig::default().with_max_addrs_per_peer(4));
    let p = PeerId::random();
    ps.add_addrs(&p, (1..=10).map(addr), TEMP_ADDR_TTL).unwrap();
    assert_eq!(ps.addrs(&p).len(), 4);
    // A longer-lived address replaces one closest to expiry.
    ps.add_addr(&p, addr(99), CONNECTED_ADDR_TTL).unwrap();
    let addrs = ps.addrs(&p);
    assert_eq!(addrs.len(), 4);
    assert!(addrs.contains(&addr(99)));
}

#[test]
fn least_recently_seen_peer_is_evicted() {
    let (ps, _) = store_with(PeerstoreConfig::default().with_max_peers(3));
    let peers: Vec<PeerId> = (0..4).map(|_| PeerId::random()).collect();
    for (i, p) in peers.iter().take(3).enumerate() {
        ps.add_addr(p, addr(u16::try_from(i).unwrap()), TEMP_ADDR_TTL)
            .unwrap();
    }
    // Writing about peer 0 makes it recently seen; reading peer 1 does not.
    ps.set_protocols(&peers[0], ["/x"]).unwrap();
    let _ = ps.addrs(&peers[1]);
    ps.add_addr(&peers[3], addr(3), TEMP_ADDR_TTL).unwrap();
    assert_eq!(ps.len(), 3);
    assert!(!ps.contains(&peers[1]), "least recently seen is evicted");
    for p in [peers[0], peers[2], peers[3]] {
        assert!(ps.contains(&p));
    }
}

#[test]
fn connected_peers_are_evicted_last() {
    let (ps, _) = store_with(PeerstoreConfig::default().with_max_peers(3));
    let peers: Vec<PeerId> = (0..5).map(|_| PeerId::random()).collect();
    // Peer 0 is the oldest but connected.
    ps.add_addr(&peers[0], addr(0), CONNECTED_ADDR_TTL).unwrap();
    ps.add_addr(&peers[1], addr(1), RECENTLY_CONNECTED_ADDR_TTL)
        .unwrap();
    ps.add_addr(&peers[2], addr(2), TEMP_ADDR_TTL).unwrap();
    ps.add_addr(&peers[3], addr(3), TEMP_ADDR_TTL).unwrap();
    assert!(ps.contains(&peers[0]), "connected peer spared");
    assert!(!ps.contains(&peers[1]), "oldest unconnected evicted");
    // Once disconnected, it is an ordinary peer again (and recently seen).
    ps.update_addrs(&peers[0], CONNECTED_ADDR_TTL, RECENTLY_CONNECTED_ADDR_TTL);
    ps.add_addr(&peers[4], addr(4), TEMP_ADDR_TTL).unwrap();
    assert!(!ps.contains(&peers[2]));
    assert!(ps.contains(&peers[0]));
}

#[test]
fn peers_with_permanent_addresses_are_evicted_last() {
    let (ps, _) = store_with(PeerstoreConfig::default().with_max_peers(2));
    let bootstrap = PeerId::random();
    ps.add_addr(&bootstrap, addr(0), PERMANENT_ADDR_TTL)
        .unwrap();
    assert!(!ps.is_connected(&bootstrap));
    // A flood of fresh peers never pushes the configured peer out.
    for i in 1..20 {
        ps.set_protocols(&PeerId::random(), ["/x"]).unwrap();
        assert!(ps.contains(&bootstrap), "evicted after {i} peers");
    }
    assert_eq!(ps.len(), 2);
}

#[test]
fn when_everyone_is_connected_the_least_recently_seen_goes() {
    let (ps, _) = store_with(PeerstoreConfig::default().with_max_peers(2));
    let peers: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
    for (i, p) in peers.iter().enumerate() {
        ps.add_addr(p, addr(u16::try_from(i).unwrap()), CONNECTED_ADDR_TTL)
            .unwrap();
    }
    assert_eq!(ps.len(), 2);
    assert!(!ps.contains(&peers[0]));
}

#[test]
fn refused_writes_do_not_evict_or_insert() {
    let (ps, _) = store_with(
        PeerstoreConfig::default()
            .with_max_peers(1)
            .with_max_protocols_per_peer(1),
    );
    let p = PeerId::random();
    let q = PeerId::random();
    ps.add_addr(&p, addr(1), TEMP_ADDR_TTL).unwrap();
    assert!(ps.add_protocols(&q, ["/a", "/b"]).is_err());
    assert!(
        ps.add_public_key(&q, Keypair::generate_ed25519().public())
            .is_err()
    );
    ps.add_addr(&q, addr(1), Duration::ZERO).unwrap();
    assert_eq!(ps.peers(), vec![p]);
}

// ---- gc and peers ----

#[test]
fn gc_collects_expired_addresses_and_empty_peers() {
    let (ps, sim) = store();
    let key = Keypair::generate_ed25519().public();
    let keyed = key.to_peer_id();
    let bare = PeerId::random();
    let lasting = PeerId::random();
    ps.add_addrs(&keyed, [addr(1), addr(2)], TEMP_ADDR_TTL)
        .unwrap();
    ps.add_public_key(&keyed, key).unwrap();
    ps.add_addr(&bare, addr(3), TEMP_ADDR_TTL).unwrap();
    ps.add_addr(&lasting, addr(4), RECENTLY_CONNECTED_ADDR_TTL)
        .unwrap();
    assert_eq!(ps.gc(), GcStats::default());
    sim.advance(TEMP_ADDR_TTL);
    // Expired entries are no longer listed even before gc.
    let mut with_addrs = ps.peers_with_addrs();
    with_addrs.sort();
    assert_eq!(with_addrs, vec![lasting]);
    assert_eq!(
        ps.gc(),
        GcStats {
            expired_addrs: 3,
            removed_peers: 1
        }
    );
    assert!(ps.contains(&keyed), "its key remains");
    assert!(!ps.contains(&bare));
    assert_eq!(ps.len(), 2);
    assert_eq!(ps.gc(), GcStats::default());
}

#[test]
fn peers_remove_and_info() {
    let (ps, _) = store();
    assert!(ps.is_empty());
    let p = PeerId::random();
    let q = PeerId::random();
    ps.add_addr(&p, addr(1), TEMP_ADDR_TTL).unwrap();
    ps.set_protocols(&p, ["/echo/1.0.0"]).unwrap();
    ps.set_agent_version(&p, "lp2p/0.1.0").unwrap();
    ps.set_protocol_version(&p, "ipfs/0.1.0").unwrap();
    ps.set_protocols(&q, ["/x"]).unwrap();

    let mut peers = ps.peers();
    peers.sort();
    let mut expected = vec![p, q];
    expected.sort();
    assert_eq!(peers, expected);
    assert_eq!(ps.peers_with_addrs(), vec![p]);

    let info: PeerInfo = ps.peer_info(&p);
    assert_eq!(info.id, p);
    assert_eq!(info.addrs, vec![addr(1)]);
    assert_eq!(info.protocols, vec![ProtocolId::from("/echo/1.0.0")]);
    assert_eq!(info.agent_version.as_deref(), Some("lp2p/0.1.0"));
    assert_eq!(info.protocol_version.as_deref(), Some("ipfs/0.1.0"));
    assert_eq!(info.public_key, None);

    assert!(ps.remove_peer(&p));
    assert!(!ps.remove_peer(&p));
    let info = ps.peer_info(&p);
    assert!(info.addrs.is_empty() && info.protocols.is_empty());
    assert_eq!(info.agent_version, None);
    assert_eq!(ps.len(), 1);
}

#[test]
fn clones_share_one_store() {
    let (ps, _) = store();
    let other = ps.clone();
    let p = PeerId::random();
    other.add_addr(&p, addr(1), TEMP_ADDR_TTL).unwrap();
    assert_eq!(ps.addrs(&p), vec![addr(1)]);
    assert!(format!("{ps:?}").contains("peers: 1"));
}

#[test]
fn concurrent_use_from_several_threads() {
    // Frozen virtual time: no temporary address expires halfway through.
    let (ps, _sim) = store_with(
        PeerstoreConfig::default()
            .with_max_peers(64)
            .with_max_addrs_per_peer(8),
    );
    let shared: Vec<PeerId> = (0..8).map(|_| PeerId::random()).collect();
    let threads = 8u16;
    let own: Vec<PeerId> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let ps = ps.clone();
                let shared = &shared;
                s.spawn(move || {
                    let mine = PeerId::random();
                    for i in 0..500u16 {
                        let p = &shared[usize::from(i) % shared.len()];
                        ps.add_addr(p, addr(t * 1000 + i % 16), TEMP_ADDR_TTL)
                            .unwrap();
                        let _ = ps.add_protocols(p, [format!("/t{t}/{}", i % 4)]);
                        ps.put_metadata(p, &format!("k{t}"), vec![0; 8]).unwrap();
                        assert!(ps.addrs(p).len() <= 8);
                        let _ = ps.supports_protocols(p, &["/t0/0"]);
                        if i % 50 == 0 {
                            ps.gc();
                            let _ = ps.peers_with_addrs();
                        }
                        ps.add_addr(&mine, addr(i % 8), CONNECTED_ADDR_TTL).unwrap();
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(ps.len() <= 64);
    for p in &shared {
        assert!(ps.addrs(p).len() <= 8);
        assert!(ps.protocols(p).len() <= lp2p_peerstore::MAX_PROTOCOLS_PER_PEER);
    }
    for p in &own {
        assert_eq!(
            ps.addrs(p).len(),
            8,
            "each thread's own peer holds its addresses"
        );
        assert!(ps.is_connected(p));
    }
}

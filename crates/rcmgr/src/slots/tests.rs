use proptest::prelude::*;

use super::*;
use crate::{CountLimits, Counts, RcmgrError, Scope};

fn addr(s: &str) -> Multiaddr {
    s.parse().unwrap()
}

/// Small limits: system 4 connections and 3 descriptors, transient 2, peer 1 connection
/// and 3 streams, protocol 2 streams (inbound and outbound alike), system streams 5,
/// transient streams 4.
fn small() -> CountLimits {
    let each = |connections: usize, streams: usize, fds: usize| Counts {
        inbound_connections: connections,
        outbound_connections: connections,
        inbound_streams: streams,
        outbound_streams: streams,
        fds,
    };
    CountLimits {
        system: each(4, 5, 3),
        transient: each(2, 4, usize::MAX),
        peer: each(1, 3, usize::MAX),
        protocol: each(usize::MAX, 2, usize::MAX),
    }
}

fn manager(limits: CountLimits) -> ResourceManager {
    ResourceManager::builder()
        .count_limits(limits)
        .build()
        .unwrap()
}

#[test]
fn connections_are_held_transient_until_their_peer_is_known_then_in_the_peer_scope() {
    let m = manager(small());
    let here = addr("/ip4/192.0.2.1/tcp/1");
    let mut first = m.open_connection(Role::Responder, &here, true).unwrap();
    let second = m.open_connection(Role::Responder, &here, true).unwrap();

    // The transient scope is full: two handshakes in progress.
    let denied = m.open_connection(Role::Responder, &here, true).unwrap_err();
    assert_eq!(denied.scope, "transient");
    assert_eq!(denied.resource, Resource::InboundConnections);
    assert_eq!((denied.used, denied.limit), (2, 2));
    assert_eq!(
        denied.to_string(),
        "limit of 2 inbound connections in the transient scope reached (2 in use)"
    );
    // Outbound has its own count.
    let dial = m.open_connection(Role::Initiator, &here, true).unwrap();

    // Attached, the first leaves the transient scope for its peer's.
    let a = PeerId::random();
    first.attach_peer(&a).unwrap();
    assert_eq!(first.peer(), Some(a));
    assert_eq!(m.peer_counts(&a).inbound_connections, 1);
    assert_eq!(m.peer_counts(&a).fds, 1);
    let stats = m.stats();
    assert_eq!(stats.transient_counts.inbound_connections, 1);
    assert_eq!(stats.system_counts.inbound_connections, 2);
    assert_eq!(stats.system_counts.fds, 3);

    // A second connection of the same peer is over the peer's limit of one.
    let mut third = m.open_connection(Role::Responder, &here, false).unwrap();
    let denied = third.attach_peer(&a).unwrap_err();
    assert_eq!(denied.scope, format!("peer ({a})"));
    assert_eq!((denied.used, denied.limit), (1, 1));
    let stats = m.stats();
    assert_eq!(
        stats.count_denied(Scope::Peer, Resource::InboundConnections),
        1
    );
    assert_eq!(
        stats.count_denied(Scope::Transient, Resource::InboundConnections),
        1
    );
    assert_eq!(stats.denied(Scope::Peer), 0, "memory denials are apart");

    // Dropping returns everything and forgets the peer.
    drop((first, third, dial));
    assert_eq!(m.peer_counts(&a), Counts::default());
    drop(second);
    let stats = m.stats();
    assert_eq!(stats.system_counts, Counts::default());
    assert_eq!(stats.transient_counts, Counts::default());
}

#[test]
fn the_descriptor_limit_refuses_socket_connections_but_not_shared_socket_ones() {
    let mut limits = small();
    limits.transient = Counts::UNLIMITED;
    let m = manager(limits);
    let here = addr("/ip4/192.0.2.1/tcp/1");
    let held: Vec<_> = (0..3)
        .map(|_| m.open_connection(Role::Initiator, &here, true).unwrap())
        .collect();
    let denied = m.open_connection(Role::Initiator, &here, true).unwrap_err();
    assert_eq!(
        (
            denied.scope.as_str(),
            denied.resource,
            denied.used,
            denied.limit
        ),
        ("system", Resource::FileDescriptors, 3, 3)
    );
    // A QUIC connection shares its endpoint's socket.
    let quic = m.open_connection(Role::Initiator, &here, false).unwrap();
    // Then the system's four connections are reached.
    let denied = m
        .open_connection(Role::Initiator, &here, false)
        .unwrap_err();
    assert_eq!(denied.resource, Resource::OutboundConnections);
    drop(held);
    assert_eq!(m.stats().system_counts.fds, 0);
    drop(quic);
    assert_eq!(m.stats().system_counts, Counts::default());
}

#[test]
fn streams_are_transient_while_negotiating_then_held_by_their_protocol() {
    let m = manager(small());
    let a = PeerId::random();
    let b = PeerId::random();
    let mut s1 = m.open_stream(&a, Role::Responder).unwrap();
    let mut s2 = m.open_stream(&a, Role::Responder).unwrap();
    s1.set_protocol("/echo/1.0.0").unwrap();
    s2.set_protocol("/echo/1.0.0").unwrap();
    assert_eq!(s1.protocol(), Some("/echo/1.0.0"));
    assert_eq!(m.stats().protocol_counts["/echo/1.0.0"].inbound_streams, 2);

    // The protocol holds two: a third echo stream is refused, and stays transient.
    let mut s3 = m.open_stream(&a, Role::Responder).unwrap();
    let denied = s3.set_protocol("/echo/1.0.0").unwrap_err();
    assert_eq!(denied.scope, "protocol /echo/1.0.0");
    assert_eq!(s3.protocol(), None);
    assert_eq!(m.stats().transient_counts.inbound_streams, 1);

    // The peer holds three streams now: its fourth is refused, another peer's is not.
    let denied = m.open_stream(&a, Role::Responder).unwrap_err();
    assert_eq!(denied.scope, format!("peer ({a})"));
    assert_eq!(denied.resource, Resource::InboundStreams);
    let mut s4 = m.open_stream(&b, Role::Responder).unwrap();
    s4.set_protocol("/ipfs/ping/1.0.0").unwrap();
    let _s5 = m.open_stream(&b, Role::Responder).unwrap();
    // Five streams in the system scope: the limit.
    let denied = m.open_stream(&b, Role::Responder).unwrap_err();
    assert_eq!(denied.scope, "system");
    // Outbound streams are counted apart.
    let out = m.open_stream(&b, Role::Initiator).unwrap();
    assert_eq!(m.peer_counts(&b).outbound_streams, 1);

    drop((s1, s2, s3, s4, out));
    let stats = m.stats();
    assert!(!stats.protocol_counts.contains_key("/echo/1.0.0"));
    assert_eq!(stats.system_counts.inbound_streams, 1);
    assert_eq!(m.peer_counts(&a), Counts::default());
}

#[test]
fn a_protocol_can_have_limits_of_its_own() {
    let m = ResourceManager::builder()
        .count_limits(small())
        .protocol_counts(
            "/expensive/1.0.0",
            Counts {
                inbound_streams: 1,
                ..Counts::UNLIMITED
            },
        )
        .build()
        .unwrap();
    assert_eq!(
        m.protocol_count_limits("/expensive/1.0.0").inbound_streams,
        1
    );
    assert_eq!(m.protocol_count_limits("/other/1.0.0").inbound_streams, 2);
    let (a, b) = (PeerId::random(), PeerId::random());
    let mut first = m.open_stream(&a, Role::Responder).unwrap();
    first.set_protocol("/expensive/1.0.0").unwrap();
    let mut second = m.open_stream(&b, Role::Responder).unwrap();
    let denied = second.set_protocol("/expensive/1.0.0").unwrap_err();
    assert_eq!((denied.used, denied.limit), (1, 1));
    second.set_protocol("/other/1.0.0").unwrap();
}

#[test]
fn allowlisted_addresses_and_peers_are_counted_apart() {
    let friend = PeerId::random();
    let m = ResourceManager::builder()
        .count_limits(small())
        .allow_peer(friend)
        .allow_subnet("10.0.0.0/8".parse().unwrap())
        .build()
        .unwrap();
    let stranger = addr("/ip4/192.0.2.1/tcp/1");
    let inside = addr("/ip4/10.1.2.3/tcp/1");
    // Fill the transient scope with strangers' handshakes.
    let _t1 = m.open_connection(Role::Responder, &stranger, true).unwrap();
    let t2 = m.open_connection(Role::Responder, &stranger, true).unwrap();
    assert!(m.open_connection(Role::Responder, &stranger, true).is_err());
    // The allowlisted subnet still gets in.
    let from_inside = m.open_connection(Role::Responder, &inside, true).unwrap();
    assert_eq!(m.stats().allowlisted_counts.inbound_connections, 1);
    // An allowlisted peer found after the handshake moves to the allowlisted scope, past
    // the peer limit of one.
    drop(t2);
    let mut first = m.open_connection(Role::Responder, &stranger, true).unwrap();
    first.attach_peer(&friend).unwrap();
    let mut second = m.open_connection(Role::Responder, &stranger, true).unwrap();
    second.attach_peer(&friend).unwrap();
    assert_eq!(m.stats().allowlisted_counts.inbound_connections, 3);
    assert_eq!(m.stats().system_counts.inbound_connections, 1);
    // Its streams too, past the peer's three.
    let streams: Vec<_> = (0..4)
        .map(|_| m.open_stream(&friend, Role::Responder).unwrap())
        .collect();
    assert_eq!(m.stats().allowlisted_counts.inbound_streams, 4);
    drop((from_inside, first, second, streams));
    assert_eq!(m.stats().allowlisted_counts, Counts::default());
}

#[test]
fn dry_run_grants_and_counts_what_it_would_refuse() {
    let m = ResourceManager::builder()
        .count_limits(small())
        .dry_run(true)
        .build()
        .unwrap();
    let here = addr("/ip4/192.0.2.1/tcp/1");
    let held: Vec<_> = (0..3)
        .map(|_| m.open_connection(Role::Responder, &here, false).unwrap())
        .collect();
    assert_eq!(m.stats().transient_counts.inbound_connections, 3);
    assert_eq!(
        m.stats()
            .count_denied(Scope::Transient, Resource::InboundConnections),
        1
    );
    drop(held);
    assert_eq!(m.stats().system_counts, Counts::default());
}

#[test]
fn a_zero_connection_limit_is_refused_at_build() {
    let mut limits = small();
    limits.peer.outbound_connections = 0;
    let err = ResourceManager::builder()
        .count_limits(limits)
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        RcmgrError::ZeroCount {
            scope: Scope::Peer,
            resource: Resource::OutboundConnections
        }
    );
}

#[test]
fn defaults_fit_the_descriptor_limit() {
    let limits = CountLimits::for_fds(Some(1024));
    assert_eq!(limits.system.fds, 1024 - 128);
    assert_eq!(CountLimits::for_fds(None).system.fds, usize::MAX);
    assert_eq!(CountLimits::for_fds(Some(10)).system.fds, 1);
    assert!(
        limits.peer.inbound_connections > 8,
        "above the swarm's own per-peer limit"
    );
}

proptest! {
    /// Any sequence of opens, attaches and drops of connections and streams keeps every
    /// enforced count within its limit, and the counts equal what the live slots hold;
    /// all dropped, everything is back to zero.
    #[test]
    fn counts_always_match_the_live_slots(
        ops in proptest::collection::vec((0usize..8, 0u8..3, 0usize..3), 0..200)
    ) {
        let m = manager(small());
        let here = addr("/ip4/192.0.2.1/tcp/1");
        let peers: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
        let protocols = ["/a", "/b", "/c"];
        let mut conns: Vec<Option<CountedConnection>> = (0..4).map(|_| None).collect();
        let mut streams: Vec<Option<CountedStream>> = (0..4).map(|_| None).collect();
        for (slot, op, which) in ops {
            if slot < 4 {
                match (op, conns[slot].as_mut()) {
                    (0, None) => {
                        let role = if which == 0 { Role::Initiator } else { Role::Responder };
                        conns[slot] = m.open_connection(role, &here, which != 2).ok();
                    }
                    (1, Some(conn)) => {
                        let _ = conn.attach_peer(&peers[which]);
                    }
                    (_, _) => conns[slot] = None,
                }
            } else {
                let slot = slot - 4;
                match (op, streams[slot].as_mut()) {
                    (0, None) => {
                        streams[slot] = m.open_stream(&peers[which], Role::Responder).ok();
                    }
                    (1, Some(stream)) => {
                        let _ = stream.set_protocol(protocols[which]);
                    }
                    (_, _) => streams[slot] = None,
                }
            }
            let stats = m.stats();
            let live_conns = conns.iter().flatten().count();
            let live_streams = streams.iter().flatten().count();
            prop_assert_eq!(
                stats.system_counts.inbound_connections + stats.system_counts.outbound_connections,
                live_conns
            );
            prop_assert_eq!(stats.system_counts.inbound_streams, live_streams);
            prop_assert!(stats.system_counts.fds <= 3);
            prop_assert!(stats.transient_counts.inbound_connections <= 2);
            prop_assert!(stats.transient_counts.inbound_streams <= 4);
            for peer in &peers {
                let held = m.peer_counts(peer);
                prop_assert!(held.inbound_connections <= 1 && held.outbound_connections <= 1);
                prop_assert!(held.inbound_streams <= 3);
                let of_peer = streams.iter().flatten().filter(|s| s.peer() == *peer).count();
                prop_assert_eq!(held.inbound_streams, of_peer);
            }
            for counts in stats.protocol_counts.values() {
                prop_assert!(counts.inbound_streams <= 2);
            }
        }
        drop((conns, streams));
        let stats = m.stats();
        prop_assert_eq!(stats.system_counts, Counts::default());
        prop_assert_eq!(stats.transient_counts, Counts::default());
        prop_assert!(stats.protocol_counts.is_empty());
    }
}

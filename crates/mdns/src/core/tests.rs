//! The core in virtual time: several cores on one simulated link, every packet delivered to
//! every core (the sender included, as multicast loopback does).

#![allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use super::*;
use crate::iface::Family;
use crate::wire::{
    CLASS_IN, FLAG_RECURSION_DESIRED, FLAG_RESPONSE, MessageWriter, Question, RData, Record,
    Section, TYPE_A, TYPE_PTR, TYPE_TXT,
};

const SEC: Duration = Duration::from_secs(1);

struct Node {
    core: Core,
    iface: Interface,
    peer: PeerId,
    events: Vec<Event>,
    /// Packets this node sent, with when.
    sent: Vec<(Instant, Vec<u8>)>,
    /// Deliver nothing to or from this node (it left the link).
    offline: bool,
}

fn key(index: u32) -> IfaceKey {
    IfaceKey {
        index,
        family: Family::V4,
    }
}

fn eth(ip: Ipv4Addr) -> Interface {
    Interface {
        index: 2,
        name: "eth0".into(),
        loopback: false,
        mtu: Some(1500),
        ipv4: vec![ip],
        ipv6: vec![],
    }
}

fn node(i: u8, config: MdnsConfig, now: Instant) -> Node {
    let peer = PeerId::random();
    let mut core = Core::new(config, peer, u64::from(i)).unwrap();
    let ip = Ipv4Addr::new(10, 0, 0, i);
    let iface = eth(ip);
    let changes = core.set_interfaces(vec![iface.clone()], now);
    assert_eq!(changes.added, vec![key(2)]);
    core.set_subnets(vec![Subnet {
        index: 2,
        addr: IpAddr::V4(ip),
        prefix_len: 24,
    }]);
    core.set_listen_addrs(
        vec![
            format!("/ip4/0.0.0.0/tcp/{}", 4000 + u16::from(i))
                .parse()
                .unwrap(),
        ],
        now,
    );
    Node {
        core,
        iface,
        peer,
        events: Vec::new(),
        sent: Vec::new(),
        offline: false,
    }
}

fn config() -> MdnsConfig {
    MdnsConfig {
        ipv6: false,
        ..MdnsConfig::default()
    }
}

/// Runs the link until `until`: timeouts, then every packet to every online node.
fn run(nodes: &mut [Node], now: &mut Instant, until: Instant) {
    loop {
        for i in 0..nodes.len() {
            nodes[i].core.handle_timeout(*now);
            deliver(nodes, i, *now);
        }
        for n in nodes.iter_mut() {
            while let Some(e) = n.core.poll_event() {
                n.events.push(e);
            }
        }
        let next = nodes.iter().filter_map(|n| n.core.poll_timeout()).min();
        match next {
            Some(t) if t <= until => *now = t.max(*now),
            _ => {
                *now = until;
                return;
            }
        }
    }
}

fn deliver(nodes: &mut [Node], from: usize, now: Instant) {
    while let Some(t) = nodes[from].core.poll_transmit() {
        assert!(t.payload.len() <= 1472, "{} bytes", t.payload.len());
        nodes[from].sent.push((now, t.payload.clone()));
        if nodes[from].offline {
            continue;
        }
        let src = SocketAddr::from((nodes[from].iface.ipv4[0], 5353));
        for n in nodes.iter_mut().filter(|n| !n.offline) {
            let reaches = match t.to {
                Destination::Multicast => true,
                Destination::Unicast(to) => to.ip() == IpAddr::V4(n.iface.ipv4[0]),
            };
            if reaches {
                n.core.handle_packet(t.iface, src, &t.payload, now).unwrap();
            }
        }
    }
}

fn discovered(n: &Node) -> Vec<(PeerId, Vec<Multiaddr>)> {
    n.events
        .iter()
        .filter_map(|e| match e {
            Event::Discovered { peer, addrs, .. } => Some((*peer, addrs.clone())),
            _ => None,
        })
        .collect()
}

fn queries(n: &Node) -> Vec<Instant> {
    n.sent
        .iter()
        .filter(|(_, p)| !Message::parse(p, 256).unwrap().header.is_response())
        .map(|(t, _)| *t)
        .collect()
}

#[test]
fn two_peers_discover_each_other_with_their_interface_addresses() {
    let mut now = Instant::now();
    let mut nodes = vec![node(1, config(), now), node(2, config(), now)];
    let end = now + 3 * SEC;
    run(&mut nodes, &mut now, end);
    let a = nodes[0].peer;
    let b = nodes[1].peer;
    assert_eq!(
        discovered(&nodes[0]),
        vec![(b, vec!["/ip4/10.0.0.2/tcp/4002".parse().unwrap()])]
    );
    assert_eq!(
        discovered(&nodes[1]),
        vec![(a, vec!["/ip4/10.0.0.1/tcp/4001".parse().unwrap()])]
    );
    // Nobody discovers itself.
    assert!(
        nodes
            .iter()
            .all(|n| n.core.peers().all(|(p, _)| p != n.peer))
    );
    assert_eq!(nodes[0].core.stats().peers_discovered, 1);
    assert_eq!(nodes[0].core.stats().malformed_packets, 0);
}

#[test]
fn start_up_queries_double_up_to_the_interval() {
    let mut now = Instant::now();
    let start = now;
    let mut nodes = vec![node(1, config(), now)];
    let end = now + 20 * 60 * SEC;
    run(&mut nodes, &mut now, end);
    let gaps: Vec<u64> = queries(&nodes[0])
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs())
        .collect();
    assert_eq!(queries(&nodes[0])[0], start);
    assert_eq!(&gaps[..9], &[1, 2, 4, 8, 16, 32, 64, 128, 256]);
    assert!(gaps[9..].iter().all(|g| *g == 300), "{gaps:?}");
}

#[test]
fn a_query_flood_gets_one_answer_per_second() {
    let mut now = Instant::now();
    let mut n = node(1, config(), now);
    n.core.handle_timeout(now);
    while n.core.poll_transmit().is_some() {}
    let q = proto::query(&Name::new("_p2p._udp.local").unwrap()).unwrap();
    let from: SocketAddr = "10.0.0.9:5353".parse().unwrap();
    let mut answers = 0;
    // 1000 queries over 10 s.
    for _ in 0..1000 {
        n.core.handle_packet(key(2), from, &q, now).unwrap();
        n.core.handle_timeout(now);
        while let Some(t) = n.core.poll_transmit() {
            if Message::parse(&t.payload, 256)
                .unwrap()
                .header
                .is_response()
            {
                answers += 1;
            }
        }
        now += Duration::from_millis(10);
    }
    assert!((9..=11).contains(&answers), "{answers} answers");
    assert_eq!(n.core.stats().queries_received, 1000);
}

#[test]
fn answers_wait_20_to_120_ms() {
    let now = Instant::now();
    let mut n = node(1, config(), now);
    n.core.handle_timeout(now + 10 * SEC);
    while n.core.poll_transmit().is_some() {}
    // Past the one-second gap after our last answer.
    let later = now + 12 * SEC;
    let q = proto::query(&Name::new("_p2p._udp.local").unwrap()).unwrap();
    n.core
        .handle_packet(key(2), "10.0.0.9:5353".parse().unwrap(), &q, later)
        .unwrap();
    let (due, wants) = n.core.ifaces[&key(2)].pending.unwrap();
    assert!(wants.peers);
    assert!(due >= later + RESPONSE_DELAY_MIN && due <= later + RESPONSE_DELAY_MAX);
    let is_answer = |t: Transmit| {
        Message::parse(&t.payload, 256)
            .unwrap()
            .header
            .is_response()
    };
    n.core
        .handle_timeout(due.checked_sub(Duration::from_millis(1)).unwrap());
    assert!(!std::iter::from_fn(|| n.core.poll_transmit()).any(is_answer));
    n.core.handle_timeout(due);
    assert!(std::iter::from_fn(|| n.core.poll_transmit()).any(is_answer));
}

#[test]
fn peers_expire_after_their_ttl_and_are_queried_for_before() {
    let mut now = Instant::now();
    let short = MdnsConfig {
        ttl: Duration::from_secs(100),
        ..config()
    };
    let mut nodes = vec![node(1, short.clone(), now), node(2, short, now)];
    let t = now + 5 * SEC;
    run(&mut nodes, &mut now, t);
    assert_eq!(discovered(&nodes[0]).len(), 1);
    // Node 2 leaves without a word.
    nodes[1].offline = true;
    let before = queries(&nodes[0]).len();
    let left = now;
    let t = now + 200 * SEC;
    run(&mut nodes, &mut now, t);
    let b = nodes[1].peer;
    assert!(nodes[0].events.contains(&Event::Expired { peer: b }));
    assert_eq!(nodes[0].core.peers().count(), 0);
    // A refresh query went out at 80 % of the TTL, beside the start-up schedule.
    let refresh_at = queries(&nodes[0])
        .into_iter()
        .skip(before)
        .any(|q| q >= left + Duration::from_secs(70) && q <= left + Duration::from_secs(82));
    assert!(refresh_at);
    assert_eq!(nodes[0].core.stats().peers_expired, 1);
}

#[test]
fn a_live_peer_never_expires() {
    let mut now = Instant::now();
    let short = MdnsConfig {
        ttl: Duration::from_secs(60),
        query_interval: Duration::from_secs(300),
        ..config()
    };
    let mut nodes = vec![node(1, short.clone(), now), node(2, short, now)];
    let t = now + 3600 * SEC;
    run(&mut nodes, &mut now, t);
    assert!(
        !nodes[0]
            .events
            .iter()
            .any(|e| matches!(e, Event::Expired { .. })),
        "the 80 % refresh keeps the peer"
    );
}

#[test]
fn goodbye_removes_a_peer_after_one_second() {
    let mut now = Instant::now();
    let mut nodes = vec![node(1, config(), now), node(2, config(), now)];
    let t = now + 3 * SEC;
    run(&mut nodes, &mut now, t);
    let bye = nodes[1].core.goodbye();
    assert!(!bye.is_empty());
    let src: SocketAddr = "10.0.0.2:5353".parse().unwrap();
    for t in &bye {
        nodes[0]
            .core
            .handle_packet(t.iface, src, &t.payload, now)
            .unwrap();
    }
    nodes[1].offline = true;
    let b = nodes[1].peer;
    nodes[0]
        .core
        .handle_timeout(now + Duration::from_millis(999));
    assert!(nodes[0].core.peers().any(|(p, _)| p == b));
    nodes[0].core.handle_timeout(now + SEC);
    assert!(!nodes[0].core.peers().any(|(p, _)| p == b));
    assert_eq!(nodes[0].core.poll_event(), Some(Event::Expired { peer: b }));
}

/// A response from `peer` announcing `addrs` with `ttl`, under instance `name`.
fn announce(name: &str, peer: PeerId, addrs: &[&str], ttl: u32) -> Vec<u8> {
    let service = Name::new("_p2p._udp.local").unwrap();
    let instance = service.prepend(name).unwrap();
    let mut w = MessageWriter::new(0, FLAG_RESPONSE, 9000);
    w.record(
        Section::Answer,
        &Record {
            name: service,
            class: CLASS_IN,
            cache_flush: false,
            ttl,
            data: RData::Ptr(instance.clone()),
        },
    )
    .unwrap();
    w.record(
        Section::Additional,
        &Record {
            name: instance,
            class: CLASS_IN,
            cache_flush: false,
            ttl,
            data: RData::Txt(
                addrs
                    .iter()
                    .map(|a| format!("dnsaddr={a}/p2p/{peer}").into_bytes())
                    .collect(),
            ),
        },
    )
    .unwrap();
    w.finish()
}

#[test]
fn the_peer_table_is_bounded() {
    let now = Instant::now();
    let cfg = MdnsConfig {
        max_peers: 10,
        max_addrs_per_peer: 3,
        ..config()
    };
    let mut n = node(1, cfg, now);
    let from: SocketAddr = "10.0.0.66:5353".parse().unwrap();
    for i in 0..1000 {
        let p = announce(
            &format!("flood{i}"),
            PeerId::random(),
            &["/ip4/10.0.0.66/tcp/1"],
            120,
        );
        n.core.handle_packet(key(2), from, &p, now).unwrap();
    }
    assert_eq!(n.core.peers().count(), 10);
    assert_eq!(n.core.stats().peers_dropped, 990);
    let known = n.core.peers().next().unwrap().0;
    let many: Vec<String> = (0..50).map(|i| format!("/ip4/10.0.1.{i}/tcp/1")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let name = n
        .core
        .instances
        .iter()
        .find(|(_, p)| **p == known)
        .map(|(i, _)| String::from_utf8(i.first_label().unwrap().to_vec()).unwrap())
        .unwrap();
    n.core
        .handle_packet(key(2), from, &announce(&name, known, &many, 120), now)
        .unwrap();
    let addrs = n.core.peers().find(|(p, _)| *p == known).unwrap().1;
    assert_eq!(addrs.len(), 3);
    assert_eq!(n.core.stats().addrs_dropped, 48);
}

#[test]
fn remote_ttls_are_capped() {
    let now = Instant::now();
    let mut n = node(1, config(), now);
    let peer = PeerId::random();
    let p = announce("long", peer, &["/ip4/10.0.0.5/tcp/1"], u32::MAX);
    n.core
        .handle_packet(key(2), "10.0.0.5:5353".parse().unwrap(), &p, now)
        .unwrap();
    match n.core.poll_event() {
        Some(Event::Discovered { ttl, .. }) => assert_eq!(ttl, crate::config::DEFAULT_MAX_TTL),
        other => panic!("{other:?}"),
    }
    n.core.handle_timeout(now + crate::config::DEFAULT_MAX_TTL);
    assert_eq!(n.core.peers().count(), 0);
}

#[test]
fn loopback_addresses_are_kept_only_from_a_loopback_interface() {
    let now = Instant::now();
    let mut n = node(1, config(), now);
    let peer = PeerId::random();
    let p = announce(
        "lo",
        peer,
        &[
            "/ip4/127.0.0.1/tcp/1",
            "/ip6/::1/tcp/1",
            "/ip4/0.0.0.0/tcp/1",
        ],
        120,
    );
    n.core
        .handle_packet(key(2), "10.0.0.5:5353".parse().unwrap(), &p, now)
        .unwrap();
    assert_eq!(n.core.peers().count(), 0);
    assert_eq!(n.core.stats().addrs_unusable, 3);

    // A loopback-only test setup.
    let mut core = Core::new(
        MdnsConfig {
            loopback: true,
            ..config()
        },
        PeerId::random(),
        1,
    )
    .unwrap();
    let lo = Interface {
        index: 1,
        name: "lo".into(),
        loopback: true,
        mtu: Some(65536),
        ipv4: vec![Ipv4Addr::LOCALHOST],
        ipv6: vec![],
    };
    assert_eq!(core.set_interfaces(vec![lo], now).added, vec![key(1)]);
    core.handle_packet(key(1), "127.0.0.1:5353".parse().unwrap(), &p, now)
        .unwrap();
    let (_, addrs) = core.peers().next().unwrap();
    let expected: Vec<Multiaddr> = vec![
        "/ip4/127.0.0.1/tcp/1".parse().unwrap(),
        "/ip6/::1/tcp/1".parse().unwrap(),
    ];
    assert_eq!(addrs, expected);
}

#[test]
fn loopback_interfaces_are_skipped_unless_asked_for() {
    let now = Instant::now();
    let mut core = Core::new(config(), PeerId::random(), 1).unwrap();
    let lo = Interface {
        index: 1,
        name: "lo".into(),
        loopback: true,
        mtu: Some(65536),
        ipv4: vec![Ipv4Addr::LOCALHOST],
        ipv6: vec!["::1".parse().unwrap()],
    };
    let changes = core.set_interfaces(vec![lo, eth(Ipv4Addr::new(10, 0, 0, 1))], now);
    assert_eq!(changes.added, vec![key(2)]);
}

#[test]
fn malformed_packets_are_counted_and_change_nothing() {
    let now = Instant::now();
    let mut n = node(1, config(), now);
    let from: SocketAddr = "10.0.0.5:5353".parse().unwrap();
    let bad: Vec<Vec<u8>> = vec![
        vec![],
        vec![0; 5],
        vec![0xff; 100],
        // A header announcing 65535 answers over 20 bytes.
        [
            &[0, 0, 0x84, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0][..],
            &[0u8; 20][..],
        ]
        .concat(),
    ];
    for b in &bad {
        assert!(n.core.handle_packet(key(2), from, b, now).is_err());
    }
    assert_eq!(n.core.stats().malformed_packets, 4);
    assert_eq!(n.core.peers().count(), 0);
    assert!(n.core.poll_event().is_none());
}

#[test]
fn a_huge_answer_is_bounded() {
    // A 9000-byte packet full of TXT strings for one peer, most of them junk.
    let now = Instant::now();
    let mut n = node(1, config(), now);
    let peer = PeerId::random();
    let mut strings: Vec<String> = (0..20).map(|i| format!("/ip4/10.0.2.{i}/tcp/1")).collect();
    strings.extend((0..30).map(|i| format!("/junk{i}")));
    let refs: Vec<&str> = strings.iter().map(String::as_str).collect();
    let p = announce("big", peer, &refs, 120);
    n.core
        .handle_packet(key(2), "10.0.0.5:5353".parse().unwrap(), &p, now)
        .unwrap();
    let (_, addrs) = n.core.peers().next().unwrap();
    assert_eq!(addrs.len(), 20);
    assert_eq!(n.core.stats().txt_rejected, 30);
}

#[test]
fn a_bare_ptr_goodbye_is_matched_by_instance_name() {
    let now = Instant::now();
    let mut n = node(1, config(), now);
    let peer = PeerId::random();
    let from: SocketAddr = "10.0.0.5:5353".parse().unwrap();
    n.core
        .handle_packet(
            key(2),
            from,
            &announce("named", peer, &["/ip4/10.0.0.5/tcp/1"], 120),
            now,
        )
        .unwrap();
    let service = Name::new("_p2p._udp.local").unwrap();
    let mut w = MessageWriter::new(0, FLAG_RESPONSE, 512);
    w.record(
        Section::Answer,
        &Record {
            name: service.clone(),
            class: CLASS_IN,
            cache_flush: false,
            ttl: 0,
            data: RData::Ptr(service.prepend("NAMED").unwrap()),
        },
    )
    .unwrap();
    n.core
        .handle_packet(key(2), from, &w.finish(), now)
        .unwrap();
    n.core.handle_timeout(now + GOODBYE_DELAY);
    assert_eq!(n.core.peers().count(), 0);
}

#[test]
fn new_addresses_update_and_repeats_refresh() {
    let now = Instant::now();
    let mut n = node(1, config(), now);
    let peer = PeerId::random();
    let from: SocketAddr = "10.0.0.5:5353".parse().unwrap();
    let one = announce("p", peer, &["/ip4/10.0.0.5/tcp/1"], 120);
    let two = announce(
        "p",
        peer,
        &["/ip4/10.0.0.5/tcp/1", "/ip4/10.0.0.5/tcp/2"],
        120,
    );
    n.core.handle_packet(key(2), from, &one, now).unwrap();
    n.core.handle_packet(key(2), from, &two, now).unwrap();
    n.core.handle_packet(key(2), from, &two, now).unwrap();
    let events: Vec<Event> = std::iter::from_fn(|| n.core.poll_event()).collect();
    assert!(matches!(&events[0], Event::Discovered { addrs, .. } if addrs.len() == 1));
    assert!(matches!(&events[1], Event::Updated { addrs, .. } if addrs.len() == 2));
    assert!(matches!(&events[2], Event::Refreshed { .. }));
    assert_eq!(events.len(), 3);
}

#[test]
fn interface_changes_open_close_and_requery() {
    let now = Instant::now();
    let mut core = Core::new(config(), PeerId::random(), 3).unwrap();
    core.set_listen_addrs(vec!["/ip4/0.0.0.0/tcp/1".parse().unwrap()], now);
    let a = eth(Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(
        core.set_interfaces(vec![a.clone()], now).added,
        vec![key(2)]
    );
    // The same list again: nothing to do.
    assert_eq!(
        core.set_interfaces(vec![a.clone()], now),
        InterfaceChanges::default()
    );
    core.handle_timeout(now + SEC);
    while core.poll_transmit().is_some() {}
    // New address: query again soon, and announce the new address.
    let later = now + 100 * SEC;
    let b = eth(Ipv4Addr::new(10, 0, 0, 7));
    assert_eq!(
        core.set_interfaces(vec![b.clone()], later),
        InterfaceChanges::default()
    );
    core.handle_timeout(later + Duration::from_millis(200));
    let sent: Vec<Message> = std::iter::from_fn(|| core.poll_transmit())
        .map(|t| Message::parse(&t.payload, 256).unwrap())
        .collect();
    assert!(sent.iter().any(|m| !m.header.is_response()));
    let announced = sent
        .iter()
        .filter(|m| m.header.is_response())
        .flat_map(|m| proto::announcements(m, &Name::new("_p2p._udp.local").unwrap()))
        .flat_map(|a| a.addrs)
        .collect::<Vec<_>>();
    assert_eq!(
        announced,
        vec!["/ip4/10.0.0.7/tcp/1".parse::<Multiaddr>().unwrap()]
    );
    // Gone.
    assert_eq!(core.set_interfaces(vec![], later).removed, vec![key(2)]);
    assert_eq!(core.interface_keys().count(), 0);
}

#[test]
fn new_listen_addresses_are_announced_unasked() {
    let mut now = Instant::now();
    let mut nodes = vec![node(1, config(), now), node(2, config(), now)];
    let t = now + 10 * SEC;
    run(&mut nodes, &mut now, t);
    nodes[1].events.clear();
    nodes[0].core.set_listen_addrs(
        vec![
            "/ip4/0.0.0.0/tcp/4001".parse().unwrap(),
            "/ip4/10.0.0.1/udp/9/quic-v1".parse().unwrap(),
        ],
        now,
    );
    let t = now + 2 * SEC;
    run(&mut nodes, &mut now, t);
    assert!(
        nodes[1]
            .events
            .iter()
            .any(|e| matches!(e, Event::Updated { addrs, .. } if addrs.len() == 2))
    );
}

#[test]
fn ipv6_interfaces_get_their_own_socket_and_smaller_packets() {
    let now = Instant::now();
    let mut core = Core::new(MdnsConfig::default(), PeerId::random(), 5).unwrap();
    let iface = Interface {
        index: 3,
        name: "eth1".into(),
        loopback: false,
        mtu: Some(1280),
        ipv4: vec![Ipv4Addr::new(10, 0, 0, 1)],
        ipv6: vec!["fe80::1".parse().unwrap(), "fd00::1".parse().unwrap()],
    };
    let listen: Vec<Multiaddr> = (0..60)
        .map(|i| format!("/ip6/::/tcp/{}", 1000 + i).parse().unwrap())
        .collect();
    core.set_listen_addrs(listen, now);
    let added = core.set_interfaces(vec![iface], now).added;
    assert_eq!(added.len(), 2);
    core.handle_timeout(now + SEC);
    let v6: Vec<Transmit> = std::iter::from_fn(|| core.poll_transmit())
        .filter(|t| t.iface.family == Family::V6)
        .collect();
    assert!(v6.len() > 3);
    assert!(v6.iter().all(|t| t.payload.len() <= 1280 - 48));
}

#[test]
fn an_invalid_service_name_is_refused() {
    let cfg = MdnsConfig {
        service_name: "bad..name".into(),
        ..MdnsConfig::default()
    };
    assert!(matches!(
        Core::new(cfg, PeerId::random(), 0),
        Err(MdnsError::InvalidName { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// Unicast answers (RFC 6762 §5.4, §6.7).

/// A query with this id and flags, asking each `(name, type, QU bit)`.
fn query_with(id: u16, flags: u16, questions: &[(&Name, u16, bool)]) -> Vec<u8> {
    let mut w = MessageWriter::new(id, flags, 512);
    for (name, qtype, unicast_response) in questions {
        w.question(&Question {
            name: (*name).clone(),
            qtype: *qtype,
            qclass: CLASS_IN,
            unicast_response: *unicast_response,
        })
        .unwrap();
    }
    w.finish()
}

fn service() -> Name {
    Name::new("_p2p._udp.local").unwrap()
}

/// A node that multicast its start-up announcement (at 20-120 ms) and nothing since.
fn announced_node(now: Instant) -> Node {
    let mut n = node(1, config(), now);
    n.core.handle_timeout(now + RESPONSE_DELAY_MAX);
    let sent: Vec<Transmit> = std::iter::from_fn(|| n.core.poll_transmit()).collect();
    assert!(
        sent.iter()
            .any(|t| t.to == Destination::Multicast && is_response(t))
    );
    n
}

fn is_response(t: &Transmit) -> bool {
    Message::parse(&t.payload, 256)
        .unwrap()
        .header
        .is_response()
}

/// The answers `n` sends once the response delay after `at` is over (queries left out).
fn answers_after(n: &mut Node, at: Instant) -> Vec<Transmit> {
    n.core.handle_timeout(at + RESPONSE_DELAY_MAX);
    std::iter::from_fn(|| n.core.poll_transmit())
        .filter(is_response)
        .collect()
}

/// The addresses a packet announces for us.
fn announced(t: &Transmit) -> Vec<Multiaddr> {
    let m = Message::parse(&t.payload, 256).unwrap();
    proto::announcements(&m, &service())
        .into_iter()
        .flat_map(|a| a.addrs)
        .collect()
}

#[test]
fn an_all_qu_query_is_answered_by_unicast_only_when_recently_multicast() {
    let start = Instant::now();
    let mut n = announced_node(start);
    let querier: SocketAddr = "10.0.0.9:5353".parse().unwrap();
    let qu = query_with(0, 0, &[(&service(), TYPE_PTR, true)]);
    let ours: Vec<Multiaddr> = vec!["/ip4/10.0.0.1/tcp/4001".parse().unwrap()];

    // 10 s after our announcement: well within a quarter of the 360 s TTL.
    let t1 = start + 10 * SEC;
    n.core.handle_packet(key(2), querier, &qu, t1).unwrap();
    let sent = answers_after(&mut n, t1);
    assert!(!sent.is_empty());
    assert!(
        sent.iter().all(|t| t.to == Destination::Unicast(querier)),
        "{sent:?}"
    );
    // An mDNS answer (not a legacy one): ID 0, no question, the full TTL.
    let m = Message::parse(&sent[0].payload, 256).unwrap();
    assert_eq!(m.header.id, 0);
    assert!(m.questions.is_empty());
    assert!(m.answers_and_additionals().all(|r| r.ttl == 360));
    assert_eq!(announced(&sent[0]), ours);

    // 100 s after it: more than a quarter of the TTL, so multicast instead, for every cache.
    let t2 = start + 100 * SEC;
    n.core.handle_timeout(t2);
    while n.core.poll_transmit().is_some() {}
    n.core.handle_packet(key(2), querier, &qu, t2).unwrap();
    let sent = answers_after(&mut n, t2);
    assert!(!sent.is_empty());
    assert!(
        sent.iter().all(|t| t.to == Destination::Multicast),
        "{sent:?}"
    );
    assert_eq!(announced(&sent[0]), ours);

    // That multicast was recent enough for the next QU query.
    let t3 = t2 + 2 * SEC;
    n.core.handle_packet(key(2), querier, &qu, t3).unwrap();
    let sent = answers_after(&mut n, t3);
    assert!(!sent.is_empty());
    assert!(sent.iter().all(|t| t.to == Destination::Unicast(querier)));

    assert_eq!(n.core.stats().unicast_responses_sent, 2);
    assert_eq!(n.core.stats().responses_sent, 4);
    assert_eq!(n.core.stats().unicast_refused, 0);
}

#[test]
fn a_mixed_qu_and_qm_query_is_answered_by_multicast() {
    let start = Instant::now();
    let mut n = announced_node(start);
    let querier: SocketAddr = "10.0.0.9:5353".parse().unwrap();
    let host = n.core.names.host.clone();
    let elsewhere = Name::new("printer.local").unwrap();

    // QU for the peers, QM for our A record: multicast, as the QM question asks.
    let now = start + 5 * SEC;
    let mixed = query_with(
        0,
        0,
        &[(&service(), TYPE_PTR, true), (&host, TYPE_A, false)],
    );
    n.core.handle_packet(key(2), querier, &mixed, now).unwrap();
    let sent = answers_after(&mut n, now);
    assert!(!sent.is_empty());
    assert!(
        sent.iter().all(|t| t.to == Destination::Multicast),
        "{sent:?}"
    );

    // A QM question that is not about us does not count: the ones we answer are all QU.
    // (The A record was multicast just now, the peers at start-up: both recent.)
    let now = now + 2 * SEC;
    let qu_for_us = query_with(
        0,
        0,
        &[
            (&elsewhere, TYPE_A, false),
            (&service(), TYPE_PTR, true),
            (&host, TYPE_A, true),
        ],
    );
    n.core
        .handle_packet(key(2), querier, &qu_for_us, now)
        .unwrap();
    let sent = answers_after(&mut n, now);
    assert!(!sent.is_empty());
    assert!(
        sent.iter().all(|t| t.to == Destination::Unicast(querier)),
        "{sent:?}"
    );

    // And a QU question we do not answer does not make a QM one unicast.
    let now = now + 2 * SEC;
    let qm_for_us = query_with(
        0,
        0,
        &[(&elsewhere, TYPE_A, true), (&service(), TYPE_PTR, false)],
    );
    n.core
        .handle_packet(key(2), querier, &qm_for_us, now)
        .unwrap();
    let sent = answers_after(&mut n, now);
    assert!(!sent.is_empty());
    assert!(sent.iter().all(|t| t.to == Destination::Multicast));
}

#[test]
fn a_legacy_query_gets_a_unicast_answer_with_its_id_question_and_short_ttls() {
    let start = Instant::now();
    let mut n = announced_node(start);
    // `dig -p 5353 @224.0.0.251 _p2p._udp.local PTR`: an ephemeral port, an id, RD.
    let resolver: SocketAddr = "10.0.0.9:40123".parse().unwrap();
    let legacy = query_with(
        0xBEEF,
        FLAG_RECURSION_DESIRED,
        &[(&service(), TYPE_PTR, false)],
    );
    let now = start + 30 * SEC;
    n.core
        .handle_packet(key(2), resolver, &legacy, now)
        .unwrap();
    let sent = answers_after(&mut n, now);
    let (unicast, multicast): (Vec<&Transmit>, Vec<&Transmit>) = sent
        .iter()
        .partition(|t| t.to == Destination::Unicast(resolver));
    assert_eq!(unicast.len(), 1, "{sent:?}");
    let ours: Vec<Multiaddr> = vec!["/ip4/10.0.0.1/tcp/4001".parse().unwrap()];

    // The unicast one: a conventional DNS answer.
    let q = Message::parse(&legacy, 256).unwrap();
    let m = Message::parse(&unicast[0].payload, 256).unwrap();
    assert!(m.header.is_response());
    assert_eq!(m.header.id, 0xBEEF);
    assert_ne!(m.header.flags & FLAG_RECURSION_DESIRED, 0);
    assert_eq!(m.questions, q.questions);
    assert!(!m.answers.is_empty());
    assert!(
        m.answers_and_additionals()
            .all(|r| r.ttl <= 10 && r.ttl > 0 && !r.cache_flush),
        "{m:?}"
    );
    assert_eq!(announced(unicast[0]), ours);
    // hickory (a conventional resolver's decoder) reads it the same way.
    let h = hickory_proto::op::Message::from_vec(&unicast[0].payload).unwrap();
    assert_eq!(h.metadata.id, 0xBEEF);
    assert_eq!(h.queries.len(), 1);
    assert_eq!(h.queries[0].name.to_utf8(), "_p2p._udp.local.");
    assert!(h.answers.iter().all(|r| r.ttl <= 10));

    // The multicast one as before (rust-libp2p queries from an ephemeral port too and reads
    // only port 5353): ID 0, no question, the full TTL.
    assert!(!multicast.is_empty());
    assert!(multicast.iter().all(|t| t.to == Destination::Multicast));
    let m = Message::parse(&multicast[0].payload, 256).unwrap();
    assert_eq!(m.header.id, 0);
    assert!(m.questions.is_empty());
    assert!(m.answers_and_additionals().all(|r| r.ttl == 360));
    assert_eq!(announced(multicast[0]), ours);
    assert_eq!(n.core.stats().unicast_responses_sent, 1);
}

#[test]
fn a_legacy_answer_split_into_packets_repeats_the_question_in_each() {
    let now = Instant::now();
    let mut n = node(1, config(), now);
    let listen: Vec<Multiaddr> = (0..60)
        .map(|i| format!("/ip4/0.0.0.0/tcp/{}", 1000 + i).parse().unwrap())
        .collect();
    n.core.set_listen_addrs(listen, now);
    let resolver: SocketAddr = "10.0.0.9:40000".parse().unwrap();
    let instance = n.core.names.instance.clone();
    let legacy = query_with(7, 0, &[(&instance, TYPE_TXT, false)]);
    n.core
        .handle_packet(key(2), resolver, &legacy, now)
        .unwrap();
    let unicast: Vec<Transmit> = answers_after(&mut n, now + SEC)
        .into_iter()
        .filter(|t| t.to == Destination::Unicast(resolver))
        .collect();
    assert!(unicast.len() > 1, "{} packets", unicast.len());
    let q = Message::parse(&legacy, 256).unwrap();
    let mut strings = 0;
    for t in &unicast {
        assert!(t.payload.len() <= 1472);
        let m = Message::parse(&t.payload, 256).unwrap();
        assert_eq!(m.header.id, 7);
        assert_eq!(m.questions, q.questions);
        for r in m.answers_and_additionals() {
            assert!(r.ttl <= 10);
            if let RData::Txt(s) = &r.data {
                strings += s.len();
            }
        }
    }
    assert_eq!(strings, 60);
}

#[test]
fn unicast_goes_only_to_the_link_and_is_bounded() {
    let start = Instant::now();
    let mut n = announced_node(start);
    let qu = query_with(0, 0, &[(&service(), TYPE_PTR, true)]);
    let legacy = query_with(1, 0, &[(&service(), TYPE_PTR, false)]);

    // From off the link (a forged source, or routed to our unicast address): no unicast.
    let now = start + 5 * SEC;
    let far: SocketAddr = "192.168.7.7:40000".parse().unwrap();
    n.core.handle_packet(key(2), far, &legacy, now).unwrap();
    let far_qu: SocketAddr = "192.168.7.7:5353".parse().unwrap();
    n.core.handle_packet(key(2), far_qu, &qu, now).unwrap();
    let sent = answers_after(&mut n, now);
    assert!(!sent.is_empty());
    assert!(sent.iter().all(|t| t.to == Destination::Multicast));
    assert_eq!(n.core.stats().unicast_refused, 2);

    // A flood of legacy queries from 200 ports of the link within one second: at most
    // MAX_UNICAST_ANSWERS unicast answers; the multicast answer goes out as always.
    let now = now + 5 * SEC;
    for port in 0..200u16 {
        let from = SocketAddr::from((Ipv4Addr::new(10, 0, 0, 9), 30000 + port));
        let at = now + Duration::from_millis(u64::from(port) * 4);
        n.core.handle_packet(key(2), from, &legacy, at).unwrap();
        n.core.handle_timeout(at);
    }
    // (What was sent during the loop is still queued.)
    let sent = answers_after(&mut n, now + Duration::from_millis(800));
    let unicast = sent
        .iter()
        .filter(|t| matches!(t.to, Destination::Unicast(_)))
        .count();
    assert_eq!(unicast, MAX_UNICAST_ANSWERS);
    assert!(sent.iter().any(|t| t.to == Destination::Multicast));
    assert_eq!(n.core.stats().unicast_responses_sent, 16);
    assert_eq!(n.core.stats().unicast_refused, 2 + 200 - 16);
    // Within a window, the same resolver sending its query again gets one answer.
    let later = now + 10 * SEC;
    let from: SocketAddr = "10.0.0.9:41000".parse().unwrap();
    for _ in 0..3 {
        n.core.handle_packet(key(2), from, &legacy, later).unwrap();
    }
    let sent = answers_after(&mut n, later);
    assert_eq!(
        sent.iter()
            .filter(|t| t.to == Destination::Unicast(from))
            .count(),
        1
    );
}

#[test]
fn an_ipv6_link_local_querier_gets_a_scoped_unicast_answer() {
    let now = Instant::now();
    let mut core = Core::new(MdnsConfig::default(), PeerId::random(), 5).unwrap();
    let iface = Interface {
        index: 3,
        name: "eth1".into(),
        loopback: false,
        mtu: Some(1500),
        ipv4: vec![],
        ipv6: vec!["fe80::1".parse().unwrap(), "fd00::1".parse().unwrap()],
    };
    core.set_listen_addrs(vec!["/ip6/::/tcp/4001".parse().unwrap()], now);
    core.set_interfaces(vec![iface], now);
    let v6 = IfaceKey {
        index: 3,
        family: Family::V6,
    };
    // No subnets known: a link-local querier is on the link all the same.
    let from = SocketAddr::from((Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 9), 40000));
    let legacy = query_with(9, 0, &[(&service(), TYPE_PTR, false)]);
    core.handle_packet(v6, from, &legacy, now).unwrap();
    // A ULA querier needs the subnet.
    let ula: SocketAddr = "[fd00::9]:40000".parse().unwrap();
    core.handle_packet(v6, ula, &legacy, now).unwrap();
    core.set_subnets(vec![Subnet {
        index: 3,
        addr: "fd00::1".parse().unwrap(),
        prefix_len: 64,
    }]);
    let ula2: SocketAddr = "[fd00::10]:40000".parse().unwrap();
    core.handle_packet(v6, ula2, &legacy, now).unwrap();
    core.handle_timeout(now + SEC);
    let to: Vec<Destination> = std::iter::from_fn(|| core.poll_transmit())
        .filter(is_response)
        .map(|t| t.to)
        .filter(|d| *d != Destination::Multicast)
        .collect();
    let scoped: SocketAddr = "[fe80::9%3]:40000".parse().unwrap();
    assert_eq!(
        to,
        vec![Destination::Unicast(scoped), Destination::Unicast(ula2)]
    );
    assert_eq!(core.stats().unicast_refused, 1);
}

// Known-answer suppression (RFC 6762 §7.1).

/// Lets `n` run until it sends its next query; returns that query and when it went out.
fn next_query(n: &mut Node, now: &mut Instant) -> (Instant, Message) {
    loop {
        n.core.handle_timeout(*now);
        while let Some(t) = n.core.poll_transmit() {
            let m = Message::parse(&t.payload, 256).unwrap();
            if !m.header.is_response() {
                assert!(t.payload.len() <= 1472, "{} bytes", t.payload.len());
                return (*now, m);
            }
        }
        *now = n.core.poll_timeout().unwrap().max(*now);
    }
}

/// The known answers a query lists: (PTR target, TTL).
fn listed(m: &Message) -> Vec<(Name, u32)> {
    m.answers
        .iter()
        .map(|r| match &r.data {
            RData::Ptr(target) => {
                assert_eq!(r.name, service());
                (target.clone(), r.ttl)
            }
            other => panic!("not a PTR: {other:?}"),
        })
        .collect()
}

#[test]
fn queries_list_known_peers_while_more_than_half_their_ttl_is_left() {
    let start = Instant::now();
    let mut now = start;
    let mut n = node(1, config(), now);
    let from: SocketAddr = "10.0.0.7:5353".parse().unwrap();
    let (px, py, pz) = (PeerId::random(), PeerId::random(), PeerId::random());
    let x_name = service().prepend("peerx").unwrap();
    let z_name = service().prepend("peerz").unwrap();
    for (name, peer, ip) in [("peerx", px, 7), ("peerz", pz, 9)] {
        let addr = format!("/ip4/10.0.0.{ip}/tcp/1");
        n.core
            .handle_packet(key(2), from, &announce(name, peer, &[&addr], 120), now)
            .unwrap();
    }
    // A peer announced by TXT records alone (no PTR): nothing to list for it.
    let mut w = MessageWriter::new(0, FLAG_RESPONSE, 1000);
    w.record(
        Section::Answer,
        &Record {
            name: service().prepend("peery").unwrap(),
            class: CLASS_IN,
            cache_flush: false,
            ttl: 120,
            data: RData::Txt(vec![
                format!("dnsaddr=/ip4/10.0.0.8/tcp/1/p2p/{py}").into_bytes(),
            ]),
        },
    )
    .unwrap();
    n.core
        .handle_packet(key(2), from, &w.finish(), now)
        .unwrap();
    assert_eq!(n.core.peers().count(), 3);

    // The first query lists x and z with their full TTL.
    let (at, q) = next_query(&mut n, &mut now);
    assert_eq!(at, start);
    assert_eq!(listed(&q), vec![(x_name.clone(), 120), (z_name, 120)]);
    // z says goodbye: not listed any more.
    now += Duration::from_millis(500);
    let goodbye = announce("peerz", pz, &["/ip4/10.0.0.9/tcp/1"], 0);
    n.core.handle_packet(key(2), from, &goodbye, now).unwrap();

    // Queries at 1, 3, 7, 15, 31 s list x with its remaining TTL; at 63 s less than half of
    // 120 is left, so it is not listed and x answers.
    let mut seen = Vec::new();
    loop {
        let (at, q) = next_query(&mut n, &mut now);
        let elapsed = (at - start).as_secs();
        if elapsed > 70 {
            break;
        }
        seen.push((elapsed, listed(&q)));
        now += Duration::from_millis(1);
    }
    let expected: Vec<(u64, Vec<(Name, u32)>)> =
        [(1, 119), (3, 117), (7, 113), (15, 105), (31, 89)]
            .into_iter()
            .map(|(t, ttl)| (t, vec![(x_name.clone(), ttl)]))
            .chain(std::iter::once((63, vec![])))
            .collect();
    assert_eq!(seen, expected);
    assert_eq!(n.core.stats().known_answers_sent, 7);
    assert_eq!(n.core.stats().known_answers_omitted, 0);
}

#[test]
fn known_answers_are_per_interface() {
    let now = Instant::now();
    let mut n = node(1, config(), now);
    // A second interface, eth1.
    let mut eth1 = eth(Ipv4Addr::new(10, 1, 0, 1));
    eth1.index = 3;
    eth1.name = "eth1".into();
    n.core.set_interfaces(vec![n.iface.clone(), eth1], now);
    let from: SocketAddr = "10.0.0.7:5353".parse().unwrap();
    let packet = announce("peerx", PeerId::random(), &["/ip4/10.0.0.7/tcp/1"], 120);
    n.core.handle_packet(key(2), from, &packet, now).unwrap();
    n.core.handle_timeout(now);
    let mut lists: BTreeMap<u32, usize> = BTreeMap::new();
    while let Some(t) = n.core.poll_transmit() {
        let m = Message::parse(&t.payload, 256).unwrap();
        if !m.header.is_response() {
            lists.insert(t.iface.index, m.answers.len());
        }
    }
    // Heard on eth0: listed there only; eth1's peers never answered it.
    assert_eq!(lists, BTreeMap::from([(2, 1), (3, 0)]));
}

#[test]
fn a_long_known_answer_list_is_capped_most_remaining_ttl_first() {
    let start = Instant::now();
    let mut now = start;
    let mut n = node(1, config(), now);
    let from: SocketAddr = "10.0.0.7:5353".parse().unwrap();
    // 100 peers with 63-character names: 18 of their PTRs fit in 1472 bytes.
    for i in 0..100u32 {
        let name = format!("{i:0>63}");
        // One a second: the first ones have less TTL left.
        let packet = announce(&name, PeerId::random(), &["/ip4/10.0.0.7/tcp/1"], 300);
        n.core
            .handle_packet(key(2), from, &packet, start + i * SEC)
            .unwrap();
    }
    now += 100 * SEC;
    let (_, q) = next_query(&mut n, &mut now);
    let list = listed(&q);
    assert_eq!(list.len(), 18);
    // The 18 heard last.
    let mut got: Vec<String> = list.iter().map(|(name, _)| name.to_string()).collect();
    got.sort();
    let want: Vec<String> = (82..100u32)
        .map(|i| format!("{i:0>63}._p2p._udp.local"))
        .collect();
    assert_eq!(got, want);
    assert_eq!(n.core.stats().known_answers_sent, 18);
    assert_eq!(n.core.stats().known_answers_omitted, 82);

    // On a 9000-byte link (and config) the count cap applies.
    let mut config = config();
    config.max_packet_size = 9000;
    let mut n = node(1, config, start);
    let mut jumbo = n.iface.clone();
    jumbo.mtu = Some(9000);
    n.core.set_interfaces(vec![jumbo], start);
    for i in 0..100u32 {
        let packet = announce(
            &format!("{i:0>63}"),
            PeerId::random(),
            &["/ip4/10.0.0.7/tcp/1"],
            300,
        );
        n.core.handle_packet(key(2), from, &packet, start).unwrap();
    }
    n.core.handle_timeout(start);
    let q = std::iter::from_fn(|| n.core.poll_transmit())
        .map(|t| Message::parse(&t.payload, 256).unwrap())
        .find(|m| !m.header.is_response())
        .unwrap();
    assert_eq!(q.answers.len(), MAX_KNOWN_ANSWERS);
}

/// A query for `_p2p._udp.local PTR` (more questions in `extra`) listing `known` answers.
fn query_knowing(known: &[Record], extra: &[Question]) -> Vec<u8> {
    let mut w = MessageWriter::new(0, 0, 9000);
    w.question(&Question {
        name: service(),
        qtype: TYPE_PTR,
        qclass: CLASS_IN,
        unicast_response: false,
    })
    .unwrap();
    for q in extra {
        w.question(q).unwrap();
    }
    for r in known {
        w.record(Section::Answer, r).unwrap();
    }
    w.finish()
}

fn our_ptr(n: &Node, ttl: u32) -> Record {
    Record {
        name: service(),
        class: CLASS_IN,
        cache_flush: false,
        ttl,
        data: RData::Ptr(service().prepend(n.core.peer_name()).unwrap()),
    }
}

#[test]
fn a_query_that_knows_our_ptr_is_not_answered() {
    let start = Instant::now();
    let mut n = announced_node(start);
    let querier: SocketAddr = "10.0.0.9:5353".parse().unwrap();
    let legacy: SocketAddr = "10.0.0.9:40000".parse().unwrap();
    let mut t = start + 10 * SEC;
    // Our PTR with half our TTL (180 of 360) or more: no answer, multicast or unicast.
    for (from, ttl) in [(querier, 180), (querier, 360), (legacy, 300)] {
        n.core
            .handle_packet(key(2), from, &query_knowing(&[our_ptr(&n, ttl)], &[]), t)
            .unwrap();
        assert!(answers_after(&mut n, t).is_empty(), "{from} {ttl}");
        t += 2 * SEC;
    }
    assert_eq!(n.core.stats().answers_suppressed, 3);
    assert_eq!(n.core.stats().queries_received, 3);
    // With less than half left, or another peer's PTR listed, we answer.
    let other = Record {
        data: RData::Ptr(service().prepend("someoneelse").unwrap()),
        ..our_ptr(&n, 360)
    };
    for known in [our_ptr(&n, 179), other] {
        n.core
            .handle_packet(key(2), querier, &query_knowing(&[known], &[]), t)
            .unwrap();
        let sent = answers_after(&mut n, t);
        assert_eq!(
            announced(&sent[0]),
            vec!["/ip4/10.0.0.1/tcp/4001".parse::<Multiaddr>().unwrap()]
        );
        t += 2 * SEC;
    }
    assert_eq!(n.core.stats().answers_suppressed, 3);
}

#[test]
fn a_known_ptr_leaves_the_other_questions_answered() {
    let start = Instant::now();
    let mut n = announced_node(start);
    let querier: SocketAddr = "10.0.0.9:5353".parse().unwrap();
    let t = start + 10 * SEC;
    let txt = Question {
        name: service().prepend(n.core.peer_name()).unwrap(),
        qtype: TYPE_TXT,
        qclass: CLASS_IN,
        unicast_response: false,
    };
    let q = query_knowing(&[our_ptr(&n, 360)], &[txt]);
    n.core.handle_packet(key(2), querier, &q, t).unwrap();
    let sent = answers_after(&mut n, t);
    assert_eq!(sent.len(), 1);
    let m = Message::parse(&sent[0].payload, 256).unwrap();
    // The TXT answer, without the PTR the querier knows.
    assert!(
        m.answers.iter().all(|r| matches!(r.data, RData::Txt(_))),
        "{m:?}"
    );
    assert!(!m.answers.is_empty());
    assert_eq!(n.core.stats().answers_suppressed, 1);
}

#[test]
fn two_cores_suppress_each_others_repeat_answers() {
    let mut now = Instant::now();
    let start = now;
    let mut nodes = vec![node(1, config(), now), node(2, config(), now)];
    let end = now + 20 * 60 * SEC;
    run(&mut nodes, &mut now, end);
    for n in &nodes {
        // Still known to each other after 20 minutes (TTL 6 min): nobody expired.
        assert_eq!(n.core.peers().count(), 1);
        assert_eq!(n.core.stats().peers_expired, 0);
        assert!(n.core.stats().known_answers_sent > 0);
        assert!(n.core.stats().answers_suppressed > 0);
    }
    // The start-up queries after the first answer list the other peer; none of them is
    // answered by it, so each node sent fewer answers than it received queries.
    let answers = |n: &Node| {
        n.sent
            .iter()
            .filter(|(t, p)| {
                *t > start + 2 * SEC && Message::parse(p, 256).unwrap().header.is_response()
            })
            .count()
    };
    for n in &nodes {
        assert!(
            (answers(n) as u64) < n.core.stats().queries_received,
            "{} answers, {} queries",
            answers(n),
            n.core.stats().queries_received
        );
    }
}

#[test]
fn malformed_known_answer_sections_are_dropped_or_ignored() {
    let start = Instant::now();
    let mut n = announced_node(start);
    let querier: SocketAddr = "10.0.0.9:5353".parse().unwrap();
    let good = query_knowing(&[our_ptr(&n, 360)], &[]);
    let question_end = 12 + service().wire_len() + 4;

    let mut bad: Vec<Vec<u8>> = Vec::new();
    // The header announces one answer more than the packet holds.
    let mut more = good.clone();
    more[7] += 1;
    bad.push(more);
    // The known answer is cut short.
    bad.push(good[..good.len() - 3].to_vec());
    // The PTR data length overruns the packet.
    let mut overrun = good.clone();
    let rdlen_at = question_end + 2 + 8;
    overrun[rdlen_at] = 0x7f;
    bad.push(overrun);
    // The PTR target is a compression pointer to itself.
    let mut looped = good[..question_end].to_vec();
    looped[7] = 1;
    let rdata_at = question_end + 12;
    looped.extend_from_slice(&[0xC0, 0x0C, 0, 12, 0, 1, 0, 0, 1, 0x68, 0, 2]);
    looped.extend_from_slice(&(0xC000 | u16::try_from(rdata_at).unwrap()).to_be_bytes());
    bad.push(looped);
    // 300 entries: over the per-packet limit (256), dropped before any is read.
    let mut many = good[..question_end].to_vec();
    many[6..8].copy_from_slice(&300u16.to_be_bytes());
    for _ in 0..300 {
        many.extend_from_slice(&[0xC0, 0x0C, 0, 12, 0, 1, 0, 0, 1, 0x68, 0, 2, 0xC0, 0x0C]);
    }
    bad.push(many);
    let mut t = start + 10 * SEC;
    for (i, b) in bad.iter().enumerate() {
        assert!(
            n.core.handle_packet(key(2), querier, b, t).is_err(),
            "case {i}"
        );
        assert!(answers_after(&mut n, t).is_empty(), "case {i}");
        t += 2 * SEC;
    }
    assert_eq!(n.core.stats().malformed_packets, bad.len() as u64);
    assert_eq!(n.core.stats().queries_received, 0);

    // Well-formed but useless known answers are ignored and the query answered: junk types,
    // other classes, the PTR in another section, 250 PTRs to other names, a TTL of 2^32-1
    // to another name, an empty-name PTR.
    let junk = |data: RData, class: u16, ttl: u32| Record {
        name: service(),
        class,
        cache_flush: true,
        ttl,
        data,
    };
    let mut known = vec![
        junk(
            RData::Other {
                rtype: 99,
                data: vec![0xff; 40],
            },
            CLASS_IN,
            360,
        ),
        junk(RData::Txt(vec![b"dnsaddr=junk".to_vec()]), CLASS_IN, 360),
        junk(
            RData::Ptr(service().prepend(n.core.peer_name()).unwrap()),
            3,
            360,
        ),
        junk(RData::Ptr(Name::root()), CLASS_IN, u32::MAX),
    ];
    for i in 0..246 {
        known.push(junk(
            RData::Ptr(service().prepend(&format!("other{i}")).unwrap()),
            CLASS_IN,
            u32::MAX,
        ));
    }
    let q = query_knowing(&known, &[]);
    n.core.handle_packet(key(2), querier, &q, t).unwrap();
    let sent = answers_after(&mut n, t);
    assert_eq!(sent.len(), 1);
    assert_eq!(n.core.stats().answers_suppressed, 0);
    // The same PTR as an additional record, not an answer: not a known answer.
    t += 2 * SEC;
    let mut w = MessageWriter::new(0, 0, 9000);
    w.question(&Question {
        name: service(),
        qtype: TYPE_PTR,
        qclass: CLASS_IN,
        unicast_response: false,
    })
    .unwrap();
    w.record(Section::Additional, &our_ptr(&n, 360)).unwrap();
    n.core
        .handle_packet(key(2), querier, &w.finish(), t)
        .unwrap();
    assert_eq!(answers_after(&mut n, t).len(), 1);
    assert_eq!(n.core.stats().answers_suppressed, 0);
}

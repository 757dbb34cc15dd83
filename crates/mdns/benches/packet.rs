//! mDNS packet costs: parsing a typical peer answer, building our answer (split to the
//! MTU), and the core handling an answer end to end (parse, announcement, table update).
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use lp2p_core::{Multiaddr, PeerId};
use lp2p_mdns::core::Core;
use lp2p_mdns::iface::{Family, IfaceKey, Interface};
use lp2p_mdns::proto::{self, Advert, LocalNames, Wants};
use lp2p_mdns::wire::Message;
use lp2p_mdns::{DEFAULT_SERVICE_NAME, MdnsConfig};

fn addrs(peer: PeerId, n: usize) -> Vec<Multiaddr> {
    (0..n)
        .map(|i| {
            format!("/ip4/10.0.0.{}/tcp/{}/p2p/{peer}", i % 250 + 1, 4000 + i)
                .parse()
                .unwrap()
        })
        .collect()
}

/// Our answer for these addresses (the TXT strings are formatted here, as on every answer).
fn answer(names: &LocalNames, addrs: &[Multiaddr], limit: usize) -> Vec<Vec<u8>> {
    let (advert, _) = Advert::new(addrs, vec!["10.0.0.1".parse().unwrap()], vec![]);
    let wants = Wants {
        peers: true,
        ..Wants::default()
    };
    proto::responses(names, wants, &advert, 360, limit).unwrap()
}

fn bench(c: &mut Criterion) {
    let peer = PeerId::random();
    let names = LocalNames::new(DEFAULT_SERVICE_NAME, &"k".repeat(40)).unwrap();
    let four = addrs(peer, 4);
    let hundred = addrs(peer, 100);
    let packet = answer(&names, &four, 1472).remove(0);
    c.bench_function("parse a 4-address answer", |b| {
        b.iter(|| Message::parse(black_box(&packet), 256).unwrap());
    });
    let service = lp2p_mdns::wire::Name::new(DEFAULT_SERVICE_NAME).unwrap();
    c.bench_function("parse + read announcements (4 addresses)", |b| {
        b.iter(|| {
            let m = Message::parse(black_box(&packet), 256).unwrap();
            proto::announcements(&m, &service)
        });
    });
    c.bench_function("build the answer (4 addresses)", |b| {
        b.iter(|| answer(&names, black_box(&four), 1472));
    });
    c.bench_function(
        "build the answer (100 addresses, split to 1472 bytes)",
        |b| b.iter(|| answer(&names, black_box(&hundred), 1472)),
    );

    let now = Instant::now();
    let mut core = Core::new(MdnsConfig::default(), PeerId::random(), 1).unwrap();
    let iface = Interface {
        index: 2,
        name: "eth0".into(),
        loopback: false,
        mtu: Some(1500),
        ipv4: vec!["10.0.0.2".parse().unwrap()],
        ipv6: vec![],
    };
    core.set_interfaces(vec![iface], now);
    let key = IfaceKey {
        index: 2,
        family: Family::V4,
    };
    let from = "10.0.0.1:5353".parse().unwrap();
    c.bench_function("core: handle a known peer's answer", |b| {
        b.iter(|| {
            core.handle_packet(key, from, black_box(&packet), now)
                .unwrap();
            while core.poll_event().is_some() {}
        });
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

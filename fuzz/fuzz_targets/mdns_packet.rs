//! The mDNS packet parser never panics, whatever a datagram holds; what it accepts re-encodes
//! to a packet that parses to the same message, and the core takes any datagram (query or
//! answer) without a panic and without its peer table passing its bound.
#![no_main]

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use lp2p_core::PeerId;
use lp2p_mdns::core::Core;
use lp2p_mdns::iface::{Family, IfaceKey, Interface};
use lp2p_mdns::proto;
use lp2p_mdns::wire::{Message, MessageWriter, Name, Section};
use lp2p_mdns::{DEFAULT_SERVICE_NAME, MdnsConfig, RECV_BUFFER_SIZE};

const MAX_PEERS: usize = 16;

thread_local! {
    static CORE: RefCell<(Core, Instant)> = RefCell::new(new_core());
}

fn new_core() -> (Core, Instant) {
    let config = MdnsConfig {
        max_peers: MAX_PEERS,
        ipv6: false,
        ..MdnsConfig::default()
    };
    let mut core = Core::new(config, PeerId::random(), 7).expect("valid config");
    let now = Instant::now();
    core.set_interfaces(
        vec![Interface {
            index: 2,
            name: "eth0".into(),
            loopback: false,
            mtu: Some(1500),
            ipv4: vec!["10.0.0.1".parse().expect("ip")],
            ipv6: vec![],
        }],
        now,
    );
    core.set_listen_addrs(vec!["/ip4/0.0.0.0/tcp/4001".parse().expect("addr")], now);
    (core, now)
}

fuzz_target!(|data: &[u8]| {
    let data = &data[..data.len().min(RECV_BUFFER_SIZE)];
    if let Ok(message) = Message::parse(data, 256) {
        // Re-encode and parse again: the same questions and records.
        let mut w = MessageWriter::new(message.header.id, message.header.flags, 70_000);
        let mut ok = true;
        for q in &message.questions {
            ok &= w.question(q).is_ok();
        }
        for (section, records) in [
            (Section::Answer, &message.answers),
            (Section::Authority, &message.authorities),
            (Section::Additional, &message.additionals),
        ] {
            for r in records {
                ok &= w.record(section, r).is_ok();
            }
        }
        if ok {
            let again = Message::parse(&w.finish(), 256).expect("our encoding parses");
            assert_eq!(again.questions, message.questions);
            assert_eq!(again.answers, message.answers);
            assert_eq!(again.authorities, message.authorities);
            assert_eq!(again.additionals, message.additionals);
        }
        let service = Name::new(DEFAULT_SERVICE_NAME).expect("valid name");
        for a in proto::announcements(&message, &service) {
            assert!(a.addrs.len() <= message.answers.len() + message.additionals.len() + 255 * 40);
        }
    }
    CORE.with(|cell| {
        let (core, now) = &mut *cell.borrow_mut();
        let key = IfaceKey {
            index: 2,
            family: Family::V4,
        };
        let from: SocketAddr = "10.0.0.9:5353".parse().expect("addr");
        let _ = core.handle_packet(key, from, data, *now);
        *now += Duration::from_millis(50);
        core.handle_timeout(*now);
        while let Some(t) = core.poll_transmit() {
            assert!(t.payload.len() <= 1472);
        }
        while core.poll_event().is_some() {}
        assert!(core.peers().count() <= MAX_PEERS);
    });
});

//! Kademlia messages from the network: the first byte picks what the rest is fed to (an
//! inbound request served by a core, an answer to each request type, an answer fed to a
//! core's running lookup, an IPNS record). Nothing panics; whatever is accepted respects the
//! wire limits, and an accepted request re-encodes to an equal message.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, Instant, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use lp2p_core::PeerId;
use lp2p_kad::ipns::IpnsRecord;
use lp2p_kad::wire::{self, MessageKind, Response, WireLimits};
use lp2p_kad::{KadConfig, KadCore};

fn fixed() -> &'static (PeerId, PeerId, Instant) {
    static FIXED: OnceLock<(PeerId, PeerId, Instant)> = OnceLock::new();
    FIXED.get_or_init(|| (PeerId::random(), PeerId::random(), Instant::now()))
}

const KINDS: [MessageKind; 6] = [
    MessageKind::FindNode,
    MessageKind::GetValue,
    MessageKind::PutValue,
    MessageKind::GetProviders,
    MessageKind::AddProvider,
    MessageKind::Ping,
];

fn check_limits(response: &Response, limits: &WireLimits) {
    let lists: Vec<&Vec<wire::PeerInfo>> = match response {
        Response::FindNode { closer } | Response::GetValue { closer, .. } => vec![closer],
        Response::GetProviders { closer, providers } => vec![closer, providers],
        Response::PutValue { .. } | Response::Ping => vec![],
    };
    for list in lists {
        assert!(list.len() <= limits.max_peers_per_list);
        for p in list {
            assert!(p.addrs.len() <= limits.max_addrs_per_peer);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&select, body)) = data.split_first() else {
        return;
    };
    let (me, other, now) = *fixed();
    let limits = WireLimits::default();
    match select % 4 {
        0 => {
            // Served by a core: an answer, or an error (the stream would be reset).
            let mut core = KadCore::new(me, KadConfig::default(), now);
            core.add_address(other, vec!["/ip4/10.0.0.1/tcp/1".parse().unwrap()], now);
            if let Ok(Some(answer)) = core.handle_request_bytes(other, body, now) {
                assert!(answer.len() <= limits.max_message_size);
            }
            if let Ok(decoded) = wire::decode_request(body, &limits, now) {
                let again = wire::encode_request(&decoded.message, now);
                let twice = wire::decode_request(&again, &limits, now).unwrap();
                assert_eq!(twice.message, decoded.message);
            }
        }
        1 => {
            let kind = KINDS[usize::from(select / 4) % KINDS.len()];
            if let Ok(decoded) = wire::decode_response(body, kind, &limits, now) {
                check_limits(&decoded.message, &limits);
            }
        }
        2 => {
            // An answer to a running lookup.
            let mut core = KadCore::new(me, KadConfig::default(), now);
            core.add_address(other, vec!["/ip4/10.0.0.1/tcp/1".parse().unwrap()], now);
            let kind = usize::from(select / 4) % 3;
            let started = match kind {
                0 => core.find_peer(PeerId::random(), now),
                1 => core.get_value(b"/pk/x", now),
                _ => core.get_providers(&[0x00, 0x01, 0x07], now),
            };
            if started.is_err() {
                return;
            }
            while let Some(request) = core.poll_request() {
                core.on_response_bytes(request.id, Ok((Some(body.to_vec()), None)), now);
            }
            core.handle_timeout(now + Duration::from_secs(3600));
            while core.poll_event().is_some() {}
        }
        _ => {
            let _ = IpnsRecord::verify(&other, body, UNIX_EPOCH + Duration::from_secs(1 << 31));
        }
    }
});

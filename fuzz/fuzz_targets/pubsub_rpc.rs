//! Arbitrary bytes as RPCs from peers into a gossipsub core (scoring on, subscribed, with a
//! mesh): it never panics, and whatever it queues in answer is well-framed and within the
//! maximum RPC size.
//!
//! Input: a sequence of chunks `[peer: u8][len: u16 BE][len bytes]`; the peer byte also
//! advances the clock now and then, so heartbeats, decay and timeouts run in between.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use lp2p_core::Keypair;
use lp2p_core::framing::FrameDecoder;
use lp2p_pubsub::{
    Config, Direction, GossipsubConfig, GossipsubCore, GossipsubRouter, PeerConnection, PeerKind,
    PeerScoreParams, PeerScoreThresholds, Topic, TopicScoreParams,
};

const PEERS: u8 = 4;

/// Fixed identities, derived once: `PEERS` remote peers and the core's own.
fn keypair(n: u8) -> Keypair {
    static KEYS: OnceLock<Vec<Keypair>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        (0..=PEERS)
            .map(|i| Keypair::ed25519_from_bytes([i + 1; 32]).expect("32-byte seed"))
            .collect()
    });
    keys[usize::from(n.min(PEERS))].clone()
}

fn core(now: Instant) -> GossipsubCore {
    let mut params = PeerScoreParams::default();
    params
        .topics
        .insert(Topic::new("t"), TopicScoreParams::default());
    let gossipsub = GossipsubConfig {
        do_px: true,
        score: Some((params, PeerScoreThresholds::default())),
        ..GossipsubConfig::default()
    };
    let config = Config {
        max_transmit_size: 64 * 1024,
        ..Config::default()
    };
    let router = GossipsubRouter::new(gossipsub).expect("valid config");
    let mut core =
        GossipsubCore::with_seed(keypair(PEERS), config, router, now, 1).expect("valid config");
    let kinds = [
        PeerKind::Gossipsub12,
        PeerKind::Gossipsub11,
        PeerKind::Gossipsub10,
        PeerKind::Floodsub,
    ];
    for n in 0..PEERS {
        let direction = if n % 2 == 0 {
            Direction::Outbound
        } else {
            Direction::Inbound
        };
        core.add_peer(
            keypair(n).public().to_peer_id(),
            PeerConnection {
                kind: kinds[usize::from(n)],
                direction,
                ip: None,
            },
            now,
        );
    }
    core.subscribe("t", now);
    core
}

fuzz_target!(|data: &[u8]| {
    let mut now = Instant::now();
    let mut core = core(now);
    let peers: Vec<_> = (0..PEERS)
        .map(|n| keypair(n).public().to_peer_id())
        .collect();
    let max = core.config().max_transmit_size;
    let mut rest = data;
    while let [peer, hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (body, next) = tail.split_at(len);
        rest = next;
        let from = peers[usize::from(peer % PEERS)];
        let _ = core.handle_rpc(from, Bytes::copy_from_slice(body), now);
        if peer & 0x80 != 0 {
            now += Duration::from_millis(u64::from(peer & 0x7f) * 50);
            core.handle_timeout(now);
        }
        while let Some(event) = core.poll_event() {
            if let lp2p_pubsub::Event::ValidationRequested { message_id, .. } = event {
                core.report_validation_result(&message_id, lp2p_pubsub::Acceptance::Accept, now);
            }
        }
    }
    // Everything queued comes out as well-formed frames within the size limit.
    while let Some(peer) = core.poll_ready_peer() {
        let mut wire = Vec::new();
        while core.poll_transmit(&peer, &mut wire) {}
        let mut decoder = FrameDecoder::new(max);
        let mut buf = BytesMut::from(&wire[..]);
        while let Some(frame) = decoder.decode(&mut buf).expect("our own frames decode") {
            assert!(frame.len() <= max);
        }
        assert!(buf.is_empty());
    }
});

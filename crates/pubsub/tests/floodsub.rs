//! Floodsub: flooding to subscribed peers, and floodsub and gossipsub cores side by side.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use lp2p_core::framing::FrameDecoder;
use lp2p_core::{Keypair, PeerId};
use lp2p_pubsub::proto;
use lp2p_pubsub::{
    Config, Direction, Event, FloodsubCore, FloodsubRouter, GossipsubConfig, GossipsubCore,
    GossipsubRouter, PeerConnection, PeerKind, PubSubCore, Router,
};
use prost::Message as _;
use support::harness::{decode_frames, sign_message};

const T: &str = "t";

fn floodsub(now: Instant) -> FloodsubCore {
    FloodsubCore::new(
        Keypair::generate_ed25519(),
        Config::default(),
        FloodsubRouter::new(),
        now,
    )
    .unwrap()
}

fn link(kind: PeerKind) -> PeerConnection {
    PeerConnection {
        kind,
        direction: Direction::Outbound,
        ip: None,
    }
}

fn subscribe_rpc(topic: &str) -> Bytes {
    Bytes::from(
        proto::Rpc {
            subscriptions: vec![proto::rpc::SubOpts {
                subscribe: Some(true),
                topic_id: Some(topic.into()),
            }],
            ..Default::default()
        }
        .encode_to_vec(),
    )
}

fn drain<R: Router>(core: &mut PubSubCore<R>) -> Vec<(PeerId, Vec<proto::Rpc>)> {
    let mut out = Vec::new();
    while let Some(peer) = core.poll_ready_peer() {
        let mut wire = Vec::new();
        while core.poll_transmit(&peer, &mut wire) {}
        out.push((peer, decode_frames(&wire, core.config().max_transmit_size)));
    }
    out
}

/// Carries everything `from` queued for `to`'s peer id into `to`.
fn pump<A: Router, B: Router>(from: &mut PubSubCore<A>, to: &mut PubSubCore<B>, now: Instant) {
    let target = to.local_peer_id();
    let sender = from.local_peer_id();
    while let Some(peer) = from.poll_ready_peer() {
        let mut wire = Vec::new();
        while from.poll_transmit(&peer, &mut wire) {}
        if peer != target {
            continue;
        }
        let mut decoder = FrameDecoder::new(from.config().max_transmit_size);
        let mut buf = BytesMut::from(&wire[..]);
        while let Some(frame) = decoder.decode(&mut buf).unwrap() {
            to.handle_rpc(sender, frame, now).unwrap();
        }
    }
}

fn delivered<R: Router>(core: &mut PubSubCore<R>) -> Vec<Bytes> {
    std::iter::from_fn(|| core.poll_event())
        .filter_map(|e| match e {
            Event::Message { message, .. } => Some(message.data),
            _ => None,
        })
        .collect()
}

#[test]
fn floods_to_every_subscribed_peer_but_the_source_and_the_author() {
    let now = Instant::now();
    let mut core = floodsub(now);
    assert_eq!(core.protocols(), &["/floodsub/1.0.0"]);
    core.subscribe(T, now);
    let keys: Vec<Keypair> = (0..5).map(|_| Keypair::generate_ed25519()).collect();
    let peers: Vec<PeerId> = keys.iter().map(|k| k.public().to_peer_id()).collect();
    for peer in &peers {
        core.add_peer(*peer, link(PeerKind::Floodsub), now);
    }
    // Four of five subscribe.
    for peer in &peers[..4] {
        core.handle_rpc(*peer, subscribe_rpc(T), now).unwrap();
    }
    drain(&mut core);
    // peers[1] relays a message authored by peers[2].
    let message = sign_message(&keys[2], T, b"flood", 1);
    let rpc = Bytes::from(
        proto::Rpc {
            publish: vec![message],
            ..Default::default()
        }
        .encode_to_vec(),
    );
    core.handle_rpc(peers[1], rpc.clone(), now).unwrap();
    core.handle_rpc(peers[3], rpc, now).unwrap();
    assert_eq!(delivered(&mut core), vec![Bytes::from_static(b"flood")]);
    let out = drain(&mut core);
    let receivers: Vec<PeerId> = out
        .iter()
        .filter(|(_, rpcs)| rpcs.iter().any(|r| !r.publish.is_empty()))
        .map(|(p, _)| *p)
        .collect();
    assert_eq!(receivers.len(), 2);
    assert!(receivers.contains(&peers[0]) && receivers.contains(&peers[3]));
    assert_eq!(core.counters().messages_duplicate, 1);

    // Our own publish goes to every subscribed peer; never any control.
    core.publish(T, Bytes::from_static(b"mine"), now).unwrap();
    let out = drain(&mut core);
    assert_eq!(out.len(), 4);
    assert!(
        out.iter()
            .all(|(_, rpcs)| rpcs.iter().all(|r| r.control.is_none()))
    );

    // Control sent to a floodsub router is ignored.
    let control = Bytes::from(
        proto::Rpc {
            control: Some(proto::ControlMessage {
                graft: vec![proto::ControlGraft {
                    topic_id: Some(T.into()),
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec(),
    );
    core.handle_rpc(peers[0], control, now).unwrap();
    assert_eq!(core.counters().control_ignored, 1);
    assert!(drain(&mut core).is_empty());
}

#[test]
fn floodsub_and_gossipsub_cores_talk() {
    let now = Instant::now();
    let mut flood = floodsub(now);
    let mut gossip = GossipsubCore::new(
        Keypair::generate_ed25519(),
        Config::default(),
        GossipsubRouter::new(GossipsubConfig::default()).unwrap(),
        now,
    )
    .unwrap();
    let (f, g) = (flood.local_peer_id(), gossip.local_peer_id());
    // The gossipsub side offered /meshsub/* and /floodsub/1.0.0; floodsub was picked.
    flood.add_peer(g, link(PeerKind::Floodsub), now);
    gossip.add_peer(f, link(PeerKind::Floodsub), now);
    flood.subscribe(T, now);
    gossip.subscribe(T, now);
    pump(&mut flood, &mut gossip, now);
    pump(&mut gossip, &mut flood, now);
    assert_eq!(gossip.peers(&T.into()).count(), 1);
    assert_eq!(gossip.router().mesh_peers(&T.into()).count(), 0);

    flood
        .publish(T, Bytes::from_static(b"from floodsub"), now)
        .unwrap();
    pump(&mut flood, &mut gossip, now);
    assert_eq!(
        delivered(&mut gossip),
        vec![Bytes::from_static(b"from floodsub")]
    );

    gossip
        .publish(T, Bytes::from_static(b"from gossipsub"), now)
        .unwrap();
    pump(&mut gossip, &mut flood, now);
    assert_eq!(
        delivered(&mut flood),
        vec![Bytes::from_static(b"from gossipsub")]
    );
    // The gossipsub side never sends control to the floodsub peer, even across heartbeats.
    gossip.handle_timeout(now + std::time::Duration::from_secs(2));
    pump(&mut gossip, &mut flood, now);
    assert_eq!(flood.counters().control_ignored, 0);
}

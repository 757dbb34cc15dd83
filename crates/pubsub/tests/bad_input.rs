//! Hostile and broken input: every case is refused, counted, and leaves the core bounded
//! and working.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use bytes::Bytes;
use lp2p_core::{Keypair, PeerId};
use lp2p_pubsub::proto;
use lp2p_pubsub::{Authenticity, Config, Event, GossipsubConfig, PubsubError, Topic};
use proptest::prelude::*;
use prost::Message as _;
use support::harness::{Harness, messages, scored, sign_message};

const T: &str = "t";

fn publish_rpc(message: proto::Message) -> proto::Rpc {
    proto::Rpc {
        publish: vec![message],
        ..Default::default()
    }
}

fn delivered(h: &mut Harness) -> usize {
    h.events()
        .iter()
        .filter(|e| matches!(e, Event::Message { .. }))
        .count()
}

fn setup(config: Config) -> (Harness, Vec<PeerId>) {
    let mut h = Harness::new(config, scored(T));
    let peers = h.connect_subscribed(3, T);
    h.core.subscribe(T, h.now);
    h.drain();
    h.events();
    (h, peers)
}

#[test]
fn rpcs_over_the_cap_are_refused_before_decoding() {
    let config = Config {
        max_transmit_size: 1000,
        max_send_queue_bytes: 4000,
        ..Config::default()
    };
    let (mut h, peers) = setup(config);
    let err = h
        .core
        .handle_rpc(peers[0], Bytes::from(vec![0u8; 1001]), h.now)
        .unwrap_err();
    assert!(matches!(
        err,
        PubsubError::RpcTooLarge {
            size: 1001,
            max: 1000,
            ..
        }
    ));
    assert_eq!(h.core.counters().rpcs_too_large, 1);
    // The error converts into lp2p-core's error at the trait boundary.
    let core_err: lp2p_core::Error = err.into();
    assert!(core_err.to_string().contains("exceeds the maximum"));
}

#[test]
fn malformed_rpcs_are_refused_whole() {
    let (mut h, peers) = setup(Config::default());
    for bytes in [
        &[0x12, 0x05, 1][..],
        &[0x0a, 0x02, 0x08],
        &[0x1a, 0x03, 0x0a, 0x10, 0x00],
        &[0x0b, 0x00],
    ] {
        let err = h
            .core
            .handle_rpc(peers[0], Bytes::copy_from_slice(bytes), h.now)
            .unwrap_err();
        assert!(matches!(err, PubsubError::MalformedRpc { .. }), "{err}");
    }
    assert_eq!(h.core.counters().rpcs_malformed, 4);
    // A malformed RPC carrying a valid message: nothing of it is processed.
    let good = h.message_from(peers[0], T, b"good");
    let mut body = proto::Rpc {
        publish: vec![good],
        ..Default::default()
    }
    .encode_to_vec();
    body.extend_from_slice(&[0x1a, 0x05, 0x01]);
    assert!(
        h.core
            .handle_rpc(peers[0], Bytes::from(body), h.now)
            .is_err()
    );
    assert_eq!(delivered(&mut h), 0);
}

#[test]
fn rpcs_from_unknown_peers_are_refused() {
    let (mut h, _) = setup(Config::default());
    let stranger = PeerId::random();
    assert!(matches!(
        h.core.handle_rpc(stranger, Bytes::new(), h.now),
        Err(PubsubError::UnknownPeer(p)) if p == stranger
    ));
}

#[test]
fn invalid_signatures_are_dropped_counted_and_penalised() {
    let (mut h, peers) = setup(Config::default());
    let mut message = h.message_from(peers[0], T, b"forged");
    message.data = Some(Bytes::from_static(b"changed after signing"));
    h.send(peers[0], &publish_rpc(message)).unwrap();
    assert_eq!(delivered(&mut h), 0);
    assert_eq!(h.core.counters().messages_invalid, 1);
    assert!(h.drain().values().all(|r| messages(r).is_empty()));
    assert!(h.score(&peers[0]) < 0.0);

    // Missing signature under StrictSign.
    let mut message = h.message_from(peers[1], T, b"unsigned");
    message.signature = None;
    h.send(peers[1], &publish_rpc(message)).unwrap();
    assert_eq!(h.core.counters().messages_invalid, 2);
}

#[test]
fn wrong_from_and_key_pairs_are_rejected() {
    // Scoring off, so that the relay is not graylisted half-way (see the graylist tests).
    let mut h = Harness::new(Config::default(), GossipsubConfig::default());
    let relay = h.connect_subscribed(1, T)[0];
    h.core.subscribe(T, h.now);
    h.events();
    // `from` names one peer, `key` is another's (which signed it).
    let claimed = Keypair::generate_ed25519();
    let signer = Keypair::generate_ed25519();
    let mut message = sign_message(&signer, T, b"who am i", 1);
    message.from = Some(Bytes::from(claimed.public().to_peer_id().to_bytes()));
    message.key = Some(Bytes::from(signer.public().encode_protobuf()));
    h.send(relay, &publish_rpc(message)).unwrap();
    // `from` is a sha256 PeerId and no key comes with it.
    let mut message = sign_message(&signer, T, b"no key", 2);
    let sha_peer = PeerId::from_bytes(&[
        0x12, 0x20, 0x9d, 0xff, 0x3b, 0x17, 0xd7, 0x4c, 0xf4, 0xd3, 0x8a, 0x50, 0xd8, 0xb6, 0x38,
        0x3e, 0x92, 0xd1, 0x81, 0xa1, 0x03, 0x95, 0xa5, 0xe7, 0x3a, 0x72, 0x6d, 0xcc, 0xcb, 0xd2,
        0x1b, 0xf6, 0xf0, 0xb9,
    ])
    .unwrap();
    message.from = Some(Bytes::from(sha_peer.to_bytes()));
    h.send(relay, &publish_rpc(message)).unwrap();
    // A `from` that is not a PeerId at all.
    let mut message = sign_message(&signer, T, b"bad from", 3);
    message.from = Some(Bytes::from_static(b"\x00\x05hello"));
    h.send(relay, &publish_rpc(message)).unwrap();
    // A sequence number that is not 8 bytes.
    let mut message = sign_message(&signer, T, b"bad seqno", 4);
    message.seqno = Some(Bytes::from_static(&[1, 2, 3]));
    h.send(relay, &publish_rpc(message)).unwrap();
    assert_eq!(delivered(&mut h), 0, "{:?}", h.core.counters());
    assert_eq!(
        h.core.counters().messages_invalid,
        4,
        "{:?}",
        h.core.counters()
    );
}

#[test]
fn duplicate_floods_are_delivered_and_forwarded_once() {
    let (mut h, peers) = setup(Config::default());
    let author = Keypair::generate_ed25519();
    let message = sign_message(&author, T, b"once", 9);
    for _ in 0..50 {
        for peer in &peers {
            h.send(*peer, &publish_rpc(message.clone())).unwrap();
        }
    }
    assert_eq!(delivered(&mut h), 1);
    assert_eq!(h.core.counters().messages_duplicate, 149);
    let forwarded: usize = h.drain().values().map(|r| messages(r).len()).sum();
    // To the mesh (all three) minus the first source.
    assert_eq!(forwarded, 2);
}

#[test]
fn messages_claiming_to_be_ours_are_rejected() {
    let (mut h, peers) = setup(Config::default());
    let forged = sign_message(&h.local.clone(), T, b"not from me", 12345);
    h.send(peers[0], &publish_rpc(forged)).unwrap();
    assert_eq!(delivered(&mut h), 0);
    assert_eq!(h.core.counters().messages_invalid, 1);
    // Our own message echoed back is a plain duplicate, not penalised.
    let id = h
        .core
        .publish(T, Bytes::from_static(b"mine"), h.now)
        .unwrap();
    let out = h.drain();
    let echoed = messages(out.get(&peers[0]).unwrap())[0].clone();
    h.send(peers[1], &publish_rpc(echoed)).unwrap();
    assert_eq!(h.core.counters().messages_invalid, 1);
    assert_eq!(h.core.counters().messages_duplicate, 1);
    assert!(!id.as_bytes().is_empty());
}

#[test]
fn messages_without_a_valid_topic_or_for_other_topics_are_dropped() {
    let (mut h, peers) = setup(Config::default());
    let mut message = h.message_from(peers[0], T, b"no topic");
    message.topic = None;
    h.send(peers[0], &publish_rpc(message)).unwrap();
    let mut message = h.message_from(peers[0], T, b"bad topic");
    message.topic = Some(Bytes::from_static(&[0xff, 0xfe]));
    h.send(peers[0], &publish_rpc(message)).unwrap();
    assert_eq!(h.core.counters().messages_invalid, 2);
    // A topic we are not subscribed to: dropped without penalty.
    let score = h.score(&peers[1]);
    h.publish_from(peers[1], "elsewhere", b"not for us");
    assert_eq!(h.core.counters().messages_unsubscribed_topic, 1);
    assert!((h.score(&peers[1]) - score).abs() < 1e-9);
    assert_eq!(delivered(&mut h), 0);
}

#[test]
fn unknown_fields_and_control_messages_are_skipped() {
    let (mut h, peers) = setup(Config::default());
    let message = h.message_from(peers[0], T, b"with extras");
    let mut body = publish_rpc(message).encode_to_vec();
    // RPC.partial (10), an experimental extension field, and a control message with
    // v1.3 extensions (6) and an unknown control field (99).
    body.extend_from_slice(&[0x52, 0x02, 0x08, 0x01]);
    prost::encoding::encode_key(6_492_434, prost::encoding::WireType::Varint, &mut body);
    body.push(1);
    let mut control = Vec::new();
    control.extend_from_slice(&[0x32, 0x02, 0x08, 0x01]);
    prost::encoding::encode_key(99, prost::encoding::WireType::LengthDelimited, &mut control);
    control.extend_from_slice(&[0x01, 0x00]);
    prost::encoding::encode_key(3, prost::encoding::WireType::LengthDelimited, &mut body);
    prost::encoding::encode_varint(control.len() as u64, &mut body);
    body.extend_from_slice(&control);
    h.core
        .handle_rpc(peers[0], Bytes::from(body), h.now)
        .unwrap();
    assert_eq!(delivered(&mut h), 1);
}

#[test]
fn thousands_of_topics_stay_bounded() {
    let (mut h, peers) = setup(Config::default());
    let spammer = peers[0];
    let subscriptions: Vec<proto::rpc::SubOpts> = (0..5000)
        .map(|n| proto::rpc::SubOpts {
            subscribe: Some(true),
            topic_id: Some(format!("topic-{n}")),
        })
        .collect();
    h.send(
        spammer,
        &proto::Rpc {
            subscriptions,
            ..Default::default()
        },
    )
    .unwrap();
    // Already subscribed to `t`, so 1023 more fit under the default cap of 1024.
    assert_eq!(h.core.peer_topics(&spammer).count(), 1024);
    assert_eq!(h.core.counters().subscriptions_ignored, 5000 - 1023);
    // An over-long topic name is refused even under the cap.
    let other = peers[1];
    h.subscribe_remote(other, &"x".repeat(2000));
    assert_eq!(h.core.peer_topics(&other).count(), 1);
    // Unsubscribing frees the room.
    h.send(
        spammer,
        &proto::Rpc {
            subscriptions: vec![proto::rpc::SubOpts {
                subscribe: Some(false),
                topic_id: Some("topic-0".into()),
            }],
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(h.core.peer_topics(&spammer).count(), 1023);
    // Disconnecting forgets them all.
    h.core.remove_peer(&spammer, h.now);
    assert_eq!(h.core.peers(&Topic::new("topic-5")).count(), 0);
}

#[test]
fn signing_policies_refuse_what_they_must() {
    // StrictNoSign refuses signed messages and accepts unsigned ones with an author.
    let config = Config {
        authenticity: Authenticity::StrictNoSign,
        ..Config::default()
    };
    let mut h = Harness::new(config, GossipsubConfig::default());
    let peer = h.connect_subscribed(1, T)[0];
    h.core.subscribe(T, h.now);
    h.events();
    let signed = h.message_from(peer, T, b"signed");
    h.send(peer, &publish_rpc(signed.clone())).unwrap();
    assert_eq!(h.core.counters().messages_invalid, 1);
    let unsigned = proto::Message {
        signature: None,
        data: Some(Bytes::from_static(b"unsigned")),
        ..signed
    };
    h.send(peer, &publish_rpc(unsigned.clone())).unwrap();
    assert_eq!(delivered(&mut h), 1);

    // Anonymous refuses any author information.
    let config = Config {
        authenticity: Authenticity::Anonymous,
        ..Config::default()
    };
    let mut h = Harness::new(config, GossipsubConfig::default());
    let peer = h.connect_subscribed(1, T)[0];
    h.core.subscribe(T, h.now);
    h.events();
    h.send(peer, &publish_rpc(unsigned)).unwrap();
    assert_eq!(h.core.counters().messages_invalid, 1);
    let bare = proto::Message {
        data: Some(Bytes::from_static(b"anonymous")),
        topic: Some(Bytes::from_static(T.as_bytes())),
        ..Default::default()
    };
    h.send(peer, &publish_rpc(bare.clone())).unwrap();
    assert_eq!(delivered(&mut h), 1);
    // The content-addressed id makes a resend a duplicate.
    h.send(peer, &publish_rpc(bare)).unwrap();
    assert_eq!(h.core.counters().messages_duplicate, 1);
    // Publishing the same payload twice is refused as a duplicate.
    h.core
        .publish(T, Bytes::from_static(b"same"), h.now)
        .unwrap();
    assert!(matches!(
        h.core.publish(T, Bytes::from_static(b"same"), h.now),
        Err(PubsubError::Duplicate)
    ));
}

#[test]
fn control_queues_and_seen_cache_stay_bounded() {
    let config = Config {
        max_seen_messages: 100,
        max_queued_control_ids: 50,
        ..Config::default()
    };
    let mut h = Harness::new(config, GossipsubConfig::default());
    let peers = h.connect_subscribed(2, T);
    h.core.subscribe(T, h.now);
    h.drain();
    // 300 distinct messages: the seen cache keeps only 100 ids.
    for n in 0..300u32 {
        h.publish_from(peers[0], T, &n.to_be_bytes());
    }
    // IHAVE with 500 unseen ids: the IWANT queue for the peer holds at most 50.
    h.send_control(
        peers[1],
        proto::ControlMessage {
            ihave: vec![proto::ControlIHave {
                topic_id: Some(T.into()),
                message_ids: (0..500u32)
                    .map(|n| Bytes::from(format!("id-{n}")))
                    .collect(),
            }],
            ..Default::default()
        },
    );
    assert_eq!(h.core.counters().control_ids_dropped, 450);
    let out = h.drain();
    let asked: usize = support::harness::control(out.get(&peers[1]).unwrap())
        .iwant
        .iter()
        .map(|w| w.message_ids.len())
        .sum();
    assert_eq!(asked, 50);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_break_the_core(
        frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..512), 1..8)
    ) {
        let (mut h, peers) = setup(Config::default());
        for frame in frames {
            let _ = h.core.handle_rpc(peers[0], Bytes::from(frame), h.now);
        }
        h.heartbeats(2);
        h.drain();
        // Still works for everyone else.
        h.publish_from(peers[1], T, b"still alive");
        prop_assert_eq!(delivered(&mut h), 1);
    }

    #[test]
    fn arbitrary_control_messages_never_break_the_core(
        topics in proptest::collection::vec("[a-z]{0,3}", 0..4),
        ids in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..12), 0..16),
        backoff in proptest::option::of(any::<u64>()),
    ) {
        let (mut h, peers) = setup(Config::default());
        let ids: Vec<Bytes> = ids.into_iter().map(Bytes::from).collect();
        let control = proto::ControlMessage {
            ihave: topics.iter().map(|t| proto::ControlIHave { topic_id: Some(t.clone()), message_ids: ids.clone() }).collect(),
            iwant: vec![proto::ControlIWant { message_ids: ids.clone() }],
            graft: topics.iter().map(|t| proto::ControlGraft { topic_id: Some(t.clone()) }).collect(),
            prune: topics.iter().map(|t| proto::ControlPrune { topic_id: Some(t.clone()), peers: vec![proto::PeerInfo { peer_id: ids.first().cloned(), signed_peer_record: ids.last().cloned() }], backoff }).collect(),
            idontwant: vec![proto::ControlIDontWant { message_ids: ids }],
        };
        h.send_control(peers[0], control.clone());
        h.send_control(peers[1], control);
        h.heartbeats(3);
        h.drain();
        prop_assert!(h.mesh(T).len() <= 12);
    }
}

//! Gossipsub router behaviour against scripted peers: mesh maintenance, gossip, backoff,
//! peer exchange, IDONTWANT, version gating, flood publishing, fanout, explicit peers,
//! opportunistic grafting, validation, and the score as the router applies it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use lp2p_core::{Keypair, Multiaddr, PeerId};
use lp2p_pubsub::proto;
use lp2p_pubsub::{Acceptance, Config, Direction, Event, GossipsubConfig, PeerKind, Topic};
use support::harness::{Harness, control, graft, messages, prune, scored, sign_message};

const T: &str = "t";

fn id_of(message: &proto::Message) -> Vec<u8> {
    // The default message id: from || seqno.
    let mut id = message.from.clone().unwrap().to_vec();
    id.extend_from_slice(message.seqno.as_ref().unwrap());
    id
}

// ---------------------------------------------------------------------------------------
// Mesh maintenance
// ---------------------------------------------------------------------------------------

#[test]
fn join_grafts_d_peers() {
    let mut h = Harness::gossipsub(GossipsubConfig::default());
    let peers = h.connect_subscribed(10, T);
    h.core.subscribe(T, h.now);
    let mesh = h.mesh(T);
    assert_eq!(mesh.len(), 6);
    let out = h.drain();
    for peer in &peers {
        let rpcs = out.get(peer).unwrap();
        // Every peer hears of the subscription.
        assert!(
            rpcs.iter()
                .any(|r| r.subscriptions.iter().any(|s| s.subscribe == Some(true)))
        );
        let grafted = !control(rpcs).graft.is_empty();
        assert_eq!(grafted, mesh.contains(peer));
    }
    let grafted_events = h
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::Grafted { .. }))
        .count();
    assert_eq!(grafted_events, 6);
}

#[test]
fn heartbeat_tops_up_a_thin_mesh_but_not_from_backed_off_peers() {
    let mut h = Harness::gossipsub(GossipsubConfig::default());
    // Outbound peers only: with a mix, a random top-up may leave fewer than D_out outbound
    // peers in the mesh, and the heartbeat then rightly grafts one more (7, not 6).
    for _ in 0..10 {
        let peer = h.connect(PeerKind::Gossipsub12, Direction::Outbound);
        h.subscribe_remote(peer, T);
    }
    h.core.subscribe(T, h.now);
    h.drain();
    let pruners: Vec<PeerId> = h.mesh(T).into_iter().take(3).collect();
    for peer in &pruners {
        h.send_control(*peer, prune(T, Some(60), vec![]));
    }
    assert_eq!(h.mesh(T).len(), 3);
    h.heartbeats(1);
    let mesh = h.mesh(T);
    assert_eq!(mesh.len(), 6);
    assert!(pruners.iter().all(|p| !mesh.contains(p)));
}

#[test]
fn oversubscribed_mesh_is_pruned_to_d_keeping_outbound_peers() {
    let mut h = Harness::gossipsub(GossipsubConfig::default());
    h.core.subscribe(T, h.now);
    let outbound: Vec<PeerId> = (0..2)
        .map(|_| h.connect(PeerKind::Gossipsub12, Direction::Outbound))
        .collect();
    let inbound: Vec<PeerId> = (0..18)
        .map(|_| h.connect(PeerKind::Gossipsub12, Direction::Inbound))
        .collect();
    for peer in inbound.iter().chain(&outbound) {
        h.subscribe_remote(*peer, T);
    }
    // Everyone grafts us; the inbound ones only until the mesh reaches D_hi.
    for peer in inbound.iter().chain(&outbound) {
        h.send_control(*peer, graft(T));
    }
    let mesh = h.mesh(T);
    assert!(mesh.len() >= 12, "mesh {}", mesh.len());
    assert!(outbound.iter().all(|p| mesh.contains(p)));
    h.drain();
    h.heartbeats(1);
    let mesh = h.mesh(T);
    assert_eq!(mesh.len(), 6);
    // At least D_out outbound peers survive the cut, whatever their luck.
    assert!(outbound.iter().all(|p| mesh.contains(p)));
    let out = h.drain();
    let pruned: Vec<&PeerId> = out
        .iter()
        .filter(|(_, rpcs)| !control(rpcs).prune.is_empty())
        .map(|(p, _)| p)
        .collect();
    assert!(pruned.len() >= 6);
    for peer in pruned {
        assert!(!mesh.contains(peer));
        let prune = &control(out.get(peer).unwrap()).prune[0];
        assert_eq!(prune.backoff, Some(60));
        assert!(
            h.core
                .router()
                .backoff_expiry(&Topic::new(T), peer)
                .is_some()
        );
    }
}

#[test]
fn full_mesh_takes_grafts_only_from_outbound_peers() {
    let mut h = Harness::gossipsub(GossipsubConfig::default());
    h.core.subscribe(T, h.now);
    let inbound: Vec<PeerId> = (0..13)
        .map(|_| h.connect(PeerKind::Gossipsub12, Direction::Inbound))
        .collect();
    for peer in &inbound {
        h.subscribe_remote(*peer, T);
        h.send_control(*peer, graft(T));
    }
    assert_eq!(h.mesh(T).len(), 12);
    let refused = inbound[12];
    assert!(!h.mesh(T).contains(&refused));
    let out = h.drain();
    assert_eq!(control(out.get(&refused).unwrap()).prune.len(), 1);

    let outbound = h.connect(PeerKind::Gossipsub12, Direction::Outbound);
    h.subscribe_remote(outbound, T);
    h.send_control(outbound, graft(T));
    assert!(h.mesh(T).contains(&outbound));
    assert!(h.core.counters().graft_refused >= 1);
}

#[test]
fn graft_for_an_unknown_topic_is_ignored_without_reply() {
    let mut h = Harness::gossipsub(GossipsubConfig::default());
    let peer = h.connect(PeerKind::Gossipsub12, Direction::Inbound);
    h.drain();
    h.send_control(peer, graft("unknown"));
    assert!(h.drain().is_empty());
    assert_eq!(h.core.counters().graft_unknown_topic, 1);
}

#[test]
fn negative_score_peers_are_pruned_without_px() {
    let mut config = scored(T);
    config.do_px = true;
    let mut h = Harness::gossipsub(config);
    let peers = h.connect_subscribed(8, T);
    h.core.subscribe(T, h.now);
    h.drain();
    let bad = h.mesh(T)[0];
    // An invalid signature: P₄.
    let mut message = h.message_from(bad, T, b"x");
    message.signature = Some(Bytes::from_static(&[0; 64]));
    h.send(
        bad,
        &proto::Rpc {
            publish: vec![message],
            ..Default::default()
        },
    )
    .unwrap();
    assert!(h.score(&bad) < 0.0);
    h.heartbeats(1);
    assert!(!h.mesh(T).contains(&bad));
    let out = h.drain();
    let prunes = control(out.get(&bad).unwrap()).prune;
    assert_eq!(prunes.len(), 1);
    assert!(prunes[0].peers.is_empty(), "no PX to a negative-score peer");
    assert_eq!(peers.len(), 8);
}

#[test]
fn leave_prunes_the_mesh_with_the_unsubscribe_backoff() {
    let mut h = Harness::gossipsub(GossipsubConfig::default());
    h.connect_subscribed(8, T);
    h.core.subscribe(T, h.now);
    let mesh = h.mesh(T);
    h.drain();
    assert!(h.core.unsubscribe(&Topic::new(T), h.now));
    let out = h.drain();
    for (peer, rpcs) in &out {
        assert!(
            rpcs.iter()
                .any(|r| r.subscriptions.iter().any(|s| s.subscribe == Some(false)))
        );
        let prunes = control(rpcs).prune;
        if mesh.contains(peer) {
            assert_eq!(prunes.len(), 1);
            assert_eq!(prunes[0].backoff, Some(10));
        } else {
            assert!(prunes.is_empty());
        }
    }
    assert!(h.mesh(T).is_empty());
}

// ---------------------------------------------------------------------------------------
// Backoff
// ---------------------------------------------------------------------------------------

#[test]
fn a_peer_that_pruned_us_is_not_regrafted_until_its_backoff_and_slack_pass() {
    let mut h = Harness::gossipsub(GossipsubConfig::default());
    let peers = h.connect_subscribed(1, T);
    let peer = peers[0];
    h.core.subscribe(T, h.now);
    assert_eq!(h.mesh(T), vec![peer]);
    h.drain();
    h.send_control(peer, prune(T, Some(5), vec![]));
    assert!(h.mesh(T).is_empty());
    let pruned_at = h.now;
    // Heartbeats during the backoff and its slack (2 heartbeats) do not graft it.
    while h.now < pruned_at + Duration::from_secs(7) {
        h.heartbeats(1);
        if h.now < pruned_at + Duration::from_secs(7) {
            assert!(h.mesh(T).is_empty(), "regrafted at {:?}", h.now - pruned_at);
        }
    }
    h.heartbeats(2);
    assert_eq!(h.mesh(T), vec![peer]);
    assert_eq!(control(h.drain().get(&peer).unwrap()).graft.len(), 1);
}

#[test]
fn an_absurd_remote_backoff_is_capped() {
    let mut h = Harness::gossipsub(GossipsubConfig::default());
    let peer = h.connect_subscribed(1, T)[0];
    h.core.subscribe(T, h.now);
    h.send_control(peer, prune(T, Some(u64::MAX), vec![]));
    let expiry = h
        .core
        .router()
        .backoff_expiry(&Topic::new(T), &peer)
        .unwrap();
    assert_eq!(expiry - h.now, Duration::from_secs(3600));
}

#[test]
fn graft_spam_during_backoff_is_refused_penalised_and_graylisted() {
    let mut h = Harness::gossipsub(scored(T));
    let peer = h.connect_subscribed(1, T)[0];
    h.core.subscribe(T, h.now);
    h.drain();
    // The peer prunes us: a backoff is in force both ways.
    h.send_control(peer, prune(T, Some(60), vec![]));
    // It grafts right away: refused with PRUNE, P₇ counted twice (within the flood threshold).
    h.send_control(peer, graft(T));
    assert!(!h.mesh(T).contains(&peer));
    assert_eq!(control(h.drain().get(&peer).unwrap()).prune.len(), 1);
    assert_eq!(h.core.counters().graft_in_backoff, 1);
    // behaviour penalty 2, weight -10: -40.
    assert!((h.score(&peer) + 40.0).abs() < 1e-9, "{}", h.score(&peer));
    // Again: penalty 4 → -160, below the graylist threshold (-80).
    h.send_control(peer, graft(T));
    assert!(h.score(&peer) < -80.0);
    // Now its RPCs are dropped unread.
    let before = h.core.counters().rpcs_graylisted;
    h.send_control(peer, graft(T));
    assert_eq!(h.core.counters().rpcs_graylisted, before + 1);
    assert_eq!(h.core.counters().graft_in_backoff, 2);
    assert!(
        h.events()
            .iter()
            .any(|e| matches!(e, Event::Graylisted { peer: p, .. } if *p == peer))
    );
}

// ---------------------------------------------------------------------------------------
// Peer exchange and version gating
// ---------------------------------------------------------------------------------------

fn signed_record(keypair: &Keypair, addrs: &[Multiaddr]) -> Bytes {
    // RFC 0003 record in an RFC 0002 envelope, built here independently.
    let mut record = Vec::new();
    prost::encoding::bytes::encode(1, &keypair.public().to_peer_id().to_bytes(), &mut record);
    prost::encoding::uint64::encode(2, &1u64, &mut record);
    for addr in addrs {
        let mut info = Vec::new();
        prost::encoding::bytes::encode(1, &addr.to_vec(), &mut info);
        prost::encoding::bytes::encode(3, &info, &mut record);
    }
    let mut buffer = Vec::new();
    for part in [&b"libp2p-peer-record"[..], &[3, 1], &record] {
        prost::encoding::encode_varint(part.len() as u64, &mut buffer);
        buffer.extend_from_slice(part);
    }
    let signature = keypair.sign(&buffer).unwrap();
    let mut envelope = Vec::new();
    prost::encoding::bytes::encode(1, &keypair.public().encode_protobuf(), &mut envelope);
    prost::encoding::bytes::encode(2, &vec![3u8, 1], &mut envelope);
    prost::encoding::bytes::encode(3, &record, &mut envelope);
    prost::encoding::bytes::encode(5, &signature, &mut envelope);
    Bytes::from(envelope)
}

#[test]
fn pruning_for_oversubscription_offers_px_with_records() {
    let config = GossipsubConfig {
        do_px: true,
        ..Default::default()
    };
    let mut h = Harness::gossipsub(config);
    h.core.subscribe(T, h.now);
    let mut keys = Vec::new();
    for _ in 0..14 {
        let keypair = Keypair::generate_ed25519();
        keys.push(keypair.clone());
        h.connect_keypair(keypair, PeerKind::Gossipsub12, Direction::Outbound, None);
    }
    let peers: Vec<PeerId> = keys.iter().map(|k| k.public().to_peer_id()).collect();
    let addr: Multiaddr = "/ip4/10.1.2.3/tcp/4001".parse().unwrap();
    for keypair in &keys {
        let peer = keypair.public().to_peer_id();
        h.core
            .router_mut()
            .set_peer_record(peer, signed_record(keypair, std::slice::from_ref(&addr)));
        h.subscribe_remote(peer, T);
        h.send_control(peer, graft(T));
    }
    assert_eq!(h.mesh(T).len(), 14);
    h.drain();
    h.heartbeats(1);
    let out = h.drain();
    let mut offered = 0;
    for (peer, rpcs) in &out {
        for prune in control(rpcs).prune {
            assert_eq!(prune.backoff, Some(60));
            assert!(!prune.peers.is_empty());
            for info in &prune.peers {
                let offered_peer = PeerId::from_bytes(info.peer_id.as_ref().unwrap()).unwrap();
                assert_ne!(offered_peer, *peer);
                assert!(peers.contains(&offered_peer));
                assert!(info.signed_peer_record.is_some());
                offered += 1;
            }
        }
    }
    assert!(offered > 0);
}

#[test]
fn px_is_acted_on_from_good_peers_only() {
    let config = GossipsubConfig {
        do_px: true,
        ..Default::default()
    };
    let mut h = Harness::gossipsub(config);
    let peer = h.connect_subscribed(1, T)[0];
    h.core.subscribe(T, h.now);
    h.drain();
    h.events();
    let offered = Keypair::generate_ed25519();
    let forged = Keypair::generate_ed25519();
    let addr: Multiaddr = "/ip4/10.9.9.9/tcp/1234".parse().unwrap();
    let bare = PeerId::random();
    let infos = vec![
        proto::PeerInfo {
            peer_id: Some(Bytes::from(offered.public().to_peer_id().to_bytes())),
            signed_peer_record: Some(signed_record(&offered, std::slice::from_ref(&addr))),
        },
        // A record signed by someone else than the peer it names.
        proto::PeerInfo {
            peer_id: Some(Bytes::from(forged.public().to_peer_id().to_bytes())),
            signed_peer_record: Some(signed_record(&offered, std::slice::from_ref(&addr))),
        },
        // No record: the peer id alone.
        proto::PeerInfo {
            peer_id: Some(Bytes::from(bare.to_bytes())),
            signed_peer_record: None,
        },
        // Garbage id.
        proto::PeerInfo {
            peer_id: Some(Bytes::from_static(b"nope")),
            signed_peer_record: None,
        },
    ];
    h.send_control(peer, prune(T, Some(60), infos.clone()));
    let exchange = h
        .events()
        .into_iter()
        .find_map(|e| match e {
            Event::PeerExchange { from, peers, .. } => Some((from, peers)),
            _ => None,
        })
        .unwrap();
    assert_eq!(exchange.0, peer);
    let mut got: Vec<(PeerId, Vec<Multiaddr>)> = exchange
        .1
        .into_iter()
        .map(|p| (p.peer_id, p.addresses))
        .collect();
    got.sort();
    let mut want = vec![
        (offered.public().to_peer_id(), vec![addr.clone()]),
        (bare, vec![]),
    ];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(h.core.counters().px_ignored, 2);

    // With scoring, a peer below the accept-PX threshold (10) is not listened to.
    let mut h = Harness::gossipsub(GossipsubConfig {
        do_px: true,
        ..scored(T)
    });
    let peer = h.connect_subscribed(1, T)[0];
    h.core.subscribe(T, h.now);
    h.events();
    h.send_control(peer, prune(T, Some(60), infos));
    assert!(
        !h.events()
            .iter()
            .any(|e| matches!(e, Event::PeerExchange { .. }))
    );
    assert_eq!(h.core.counters().px_ignored, 1);
}

#[test]
fn prune_backoff_and_px_fields_go_only_to_v11_and_later() {
    let mut h = Harness::gossipsub(GossipsubConfig {
        do_px: true,
        ..Default::default()
    });
    let v10 = h.connect(PeerKind::Gossipsub10, Direction::Outbound);
    let v11 = h.connect(PeerKind::Gossipsub11, Direction::Outbound);
    let others: Vec<PeerId> = (0..3)
        .map(|_| h.connect(PeerKind::Gossipsub12, Direction::Outbound))
        .collect();
    for peer in [v10, v11].iter().chain(&others) {
        h.subscribe_remote(*peer, T);
    }
    h.core.subscribe(T, h.now);
    h.drain();
    h.core.unsubscribe(&Topic::new(T), h.now);
    let out = h.drain();
    let p10 = &control(out.get(&v10).unwrap()).prune[0];
    assert_eq!(p10.backoff, None);
    assert!(p10.peers.is_empty());
    let p11 = &control(out.get(&v11).unwrap()).prune[0];
    assert_eq!(p11.backoff, Some(10));
    assert!(!p11.peers.is_empty());
}

// ---------------------------------------------------------------------------------------
// Gossip: IHAVE / IWANT
// ---------------------------------------------------------------------------------------

#[test]
fn heartbeat_gossips_ihave_to_non_mesh_peers() {
    let mut h = Harness::gossipsub(GossipsubConfig::default());
    let peers = h.connect_subscribed(20, T);
    h.core.subscribe(T, h.now);
    let mesh = h.mesh(T);
    let author = mesh[0];
    let message = h.publish_from(author, T, b"gossip me");
    h.drain();
    h.heartbeats(1);
    let out = h.drain();
    let mut gossiped = 0;
    for peer in &peers {
        let ihaves = out.get(peer).map(|r| control(r).ihave).unwrap_or_default();
        if mesh.contains(peer) {
            assert!(ihaves.is_empty());
        } else if !ihaves.is_empty() {
            gossiped += 1;
            assert_eq!(ihaves[0].topic_id.as_deref(), Some(T));
            assert_eq!(ihaves[0].message_ids, vec![Bytes::from(id_of(&message))]);
        }
    }
    // max(D_lazy = 6, 0.25 × 14) peers.
    assert_eq!(gossiped, 6);
}

#[test]
fn ihave_is_answered_with_iwant_and_a_broken_promise_is_penalised() {
    let mut h = Harness::gossipsub(scored(T));
    let peer = h.connect_subscribed(1, T)[0];
    h.core.subscribe(T, h.now);
    h.drain();
    let seen = h.publish_from(peer, T, b"seen");
    h.drain();
    let ihave = proto::ControlMessage {
        ihave: vec![
            proto::ControlIHave {
                topic_id: Some(T.into()),
                message_ids: vec![
                    Bytes::from_static(b"new-1"),
                    Bytes::from(id_of(&seen)),
                    Bytes::from_static(b"new-2"),
                    Bytes::from_static(b"new-1"),
                ],
            },
            // A topic we are not in: ignored.
            proto::ControlIHave {
                topic_id: Some("other".into()),
                message_ids: vec![Bytes::from_static(b"other")],
            },
        ],
        ..Default::default()
    };
    h.send_control(peer, ihave);
    let out = h.drain();
    let iwant = control(out.get(&peer).unwrap()).iwant;
    let asked: BTreeSet<Bytes> = iwant.iter().flat_map(|w| w.message_ids.clone()).collect();
    assert_eq!(
        asked,
        BTreeSet::from([Bytes::from_static(b"new-1"), Bytes::from_static(b"new-2")])
    );
    let before = h.score(&peer);
    // Nothing arrives within the follow-up time: one broken promise, P₇.
    h.advance(Duration::from_secs(4));
    assert_eq!(h.core.counters().broken_promises, 1);
    assert!(
        h.score(&peer) < before - 5.0,
        "{} -> {}",
        before,
        h.score(&peer)
    );
}

#[test]
fn kept_promises_are_not_penalised() {
    let mut h = Harness::gossipsub(scored(T));
    let peers = h.connect_subscribed(2, T);
    h.core.subscribe(T, h.now);
    let message = h.message_from(peers[1], T, b"promised");
    h.send_control(
        peers[0],
        proto::ControlMessage {
            ihave: vec![proto::ControlIHave {
                topic_id: Some(T.into()),
                message_ids: vec![Bytes::from(id_of(&message))],
            }],
            ..Default::default()
        },
    );
    // Delivered by someone else in time.
    h.send(
        peers[1],
        &proto::Rpc {
            publish: vec![message],
            ..Default::default()
        },
    )
    .unwrap();
    h.advance(Duration::from_secs(5));
    assert_eq!(h.core.counters().broken_promises, 0);
}

#[test]
fn iwant_is_answered_at_most_gossip_retransmission_times() {
    let mut h = Harness::gossipsub(GossipsubConfig::default());
    let peer = h.connect_subscribed(1, T)[0];
    h.core.subscribe(T, h.now);
    let id = h
        .core
        .publish(T, Bytes::from_static(b"cached"), h.now)
        .unwrap();
    h.drain();
    let iwant = proto::ControlMessage {
        iwant: vec![proto::ControlIWant {
            message_ids: vec![id.to_bytes()],
        }],
        ..Default::default()
    };
    let mut answered = 0;
    for _ in 0..5 {
        h.send_control(peer, iwant.clone());
        answered += h.drain().get(&peer).map_or(0, |r| messages(r).len());
    }
    assert_eq!(answered, 3);
    // Unknown ids are not answered.
    h.send_control(
        peer,
        proto::ControlMessage {
            iwant: vec![proto::ControlIWant {
                message_ids: vec![Bytes::from_static(b"unknown")],
            }],
            ..Default::default()
        },
    );
    assert!(h.drain().is_empty());
}

#[test]
fn iwant_floods_are_capped_per_heartbeat() {
    let mut h = Harness::gossipsub(GossipsubConfig {
        max_iwant_replies: 10,
        ..Default::default()
    });
    let peer = h.connect_subscribed(1, T)[0];
    h.core.subscribe(T, h.now);
    h.send_control(
        peer,
        proto::ControlMessage {
            iwant: vec![proto::ControlIWant {
                message_ids: (0..100u32)
                    .map(|n| Bytes::from(n.to_be_bytes().to_vec()))
                    .collect(),
            }],
            ..Default::default()
        },
    );
    assert_eq!(h.core.counters().iwant_ignored, 90);
    // The next heartbeat resets the allowance.
    h.heartbeats(1);
    h.send_control(
        peer,
        proto::ControlMessage {
            iwant: vec![proto::ControlIWant {
                message_ids: vec![Bytes::from_static(b"x")],
            }],
            ..Default::default()
        },
    );
    assert_eq!(h.core.counters().iwant_ignored, 90);
}

#[test]
fn ihave_floods_are_capped_per_heartbeat() {
    let mut h = Harness::gossipsub(GossipsubConfig {
        max_ihave_messages: 10,
        max_ihave_length: 50,
        ..Default::default()
    });
    let peer = h.connect_subscribed(1, T)[0];
    h.core.subscribe(T, h.now);
    h.drain();
    let entries: Vec<proto::ControlIHave> = (0..15u32)
        .map(|n| proto::ControlIHave {
            topic_id: Some(T.into()),
            message_ids: (0..20u32)
                .map(|i| Bytes::from([n.to_be_bytes(), i.to_be_bytes()].concat()))
                .collect(),
        })
        .collect();
    h.send_control(
        peer,
        proto::ControlMessage {
            ihave: entries,
            ..Default::default()
        },
    );
    assert_eq!(h.core.counters().ihave_ignored, 5);
    let asked: usize = control(h.drain().get(&peer).unwrap())
        .iwant
        .iter()
        .map(|w| w.message_ids.len())
        .sum();
    assert_eq!(asked, 50);
    // Nothing more is asked of this peer this heartbeat.
    h.send_control(
        peer,
        proto::ControlMessage {
            ihave: vec![proto::ControlIHave {
                topic_id: Some(T.into()),
                message_ids: vec![Bytes::from_static(b"late")],
            }],
            ..Default::default()
        },
    );
    assert!(h.drain().is_empty());
}

// ---------------------------------------------------------------------------------------
// IDONTWANT (v1.2)
// ---------------------------------------------------------------------------------------

#[test]
fn idontwant_goes_to_v12_mesh_peers_for_large_messages_only() {
    let mut h = Harness::gossipsub(GossipsubConfig::default());
    let v12: Vec<PeerId> = (0..3)
        .map(|_| h.connect(PeerKind::Gossipsub12, Direction::Outbound))
        .collect();
    let v11: Vec<PeerId> = (0..3)
        .map(|_| h.connect(PeerKind::Gossipsub11, Direction::Outbound))
        .collect();
    for peer in v12.iter().chain(&v11) {
        h.subscribe_remote(*peer, T);
    }
    h.core.subscribe(T, h.now);
    assert_eq!(h.mesh(T).len(), 6);
    h.drain();
    let source = v12[0];
    let big = h.publish_from(source, T, &[7u8; 2000]);
    let out = h.drain();
    for peer in &v12[1..] {
        let idontwant = control(out.get(peer).unwrap()).idontwant;
        assert_eq!(idontwant[0].message_ids, vec![Bytes::from(id_of(&big))]);
    }
    for peer in v11.iter().chain([&source]) {
        let idontwant = out
            .get(peer)
            .map(|r| control(r).idontwant)
            .unwrap_or_default();
        assert!(idontwant.is_empty());
    }
    // A small message: no IDONTWANT.
    h.publish_from(source, T, b"small");
    let out = h.drain();
    assert!(out.values().all(|rpcs| control(rpcs).idontwant.is_empty()));
}

#[test]
fn idontwant_is_honoured_and_cancels_queued_forwards() {
    let mut h = Harness::gossipsub(GossipsubConfig::default());
    let peers = h.connect_subscribed(4, T);
    h.core.subscribe(T, h.now);
    h.drain();
    let (source, declined, cancelled) = (peers[0], peers[1], peers[2]);
    let message = h.message_from(source, T, b"not wanted by some");
    // `declined` says it does not want it before it arrives.
    h.send_control(
        declined,
        proto::ControlMessage {
            idontwant: vec![proto::ControlIDontWant {
                message_ids: vec![Bytes::from(id_of(&message))],
            }],
            ..Default::default()
        },
    );
    h.send(
        source,
        &proto::Rpc {
            publish: vec![message.clone()],
            ..Default::default()
        },
    )
    .unwrap();
    // `cancelled` says so while the forward is still queued for it.
    h.send_control(
        cancelled,
        proto::ControlMessage {
            idontwant: vec![proto::ControlIDontWant {
                message_ids: vec![Bytes::from(id_of(&message))],
            }],
            ..Default::default()
        },
    );
    let out = h.drain();
    let got = |peer: &PeerId| out.get(peer).map_or(0, |r| messages(r).len());
    assert_eq!(got(&declined), 0);
    assert_eq!(got(&cancelled), 0);
    assert_eq!(got(&source), 0);
    assert_eq!(got(&peers[3]), 1);
}

#[test]
fn idontwant_floods_are_capped() {
    let mut h = Harness::gossipsub(GossipsubConfig {
        max_idontwant_messages: 2,
        max_idontwant_ids: 5,
        ..Default::default()
    });
    let peer = h.connect_subscribed(1, T)[0];
    let entry = |n: u8| proto::ControlIDontWant {
        message_ids: (0..3).map(|i| Bytes::from(vec![n, i])).collect(),
    };
    h.send_control(
        peer,
        proto::ControlMessage {
            idontwant: vec![entry(1), entry(2), entry(3)],
            ..Default::default()
        },
    );
    // Third entry over the message cap, and the second one cut at 5 ids.
    assert_eq!(h.core.counters().idontwant_ignored, 2);
}

// ---------------------------------------------------------------------------------------
// Publishing
// ---------------------------------------------------------------------------------------

#[test]
fn own_messages_are_flood_published_forwards_use_the_mesh() {
    let mut h = Harness::gossipsub(GossipsubConfig::default());
    let peers = h.connect_subscribed(20, T);
    h.core.subscribe(T, h.now);
    let mesh = h.mesh(T);
    h.drain();
    h.core
        .publish(T, Bytes::from_static(b"mine"), h.now)
        .unwrap();
    let out = h.drain();
    assert!(
        peers
            .iter()
            .all(|p| messages(out.get(p).unwrap()).len() == 1)
    );
    // A forward: the mesh minus the source.
    let source = mesh[0];
    h.publish_from(source, T, b"theirs");
    let out = h.drain();
    let receivers: BTreeSet<PeerId> = out
        .iter()
        .filter(|(_, r)| !messages(r).is_empty())
        .map(|(p, _)| *p)
        .collect();
    let expected: BTreeSet<PeerId> = mesh.iter().copied().filter(|p| *p != source).collect();
    assert_eq!(receivers, expected);
}

#[test]
fn without_flood_publishing_a_fanout_is_used_and_expires() {
    let mut h = Harness::gossipsub(GossipsubConfig {
        flood_publish: false,
        ..Default::default()
    });
    h.connect_subscribed(20, T);
    // Not subscribed: publish goes to a fanout of D peers.
    h.core
        .publish(T, Bytes::from_static(b"fan"), h.now)
        .unwrap();
    let out = h.drain();
    let receivers = out.values().filter(|r| !messages(r).is_empty()).count();
    assert_eq!(receivers, 6);
    assert_eq!(h.core.router().fanout_peers(&Topic::new(T)).count(), 6);
    // The same fanout is reused.
    let fanout: BTreeSet<PeerId> = h
        .core
        .router()
        .fanout_peers(&Topic::new(T))
        .copied()
        .collect();
    h.core
        .publish(T, Bytes::from_static(b"fan 2"), h.now)
        .unwrap();
    let receivers: BTreeSet<PeerId> = h
        .drain()
        .into_iter()
        .filter(|(_, r)| !messages(r).is_empty())
        .map(|(p, _)| p)
        .collect();
    assert_eq!(receivers, fanout);
    // Joining moves the fanout into the mesh.
    h.core.subscribe(T, h.now);
    let mesh: BTreeSet<PeerId> = h.mesh(T).into_iter().collect();
    assert_eq!(mesh, fanout);
    h.core.unsubscribe(&Topic::new(T), h.now);
    h.core
        .publish(T, Bytes::from_static(b"fan 3"), h.now)
        .unwrap();
    assert_eq!(h.core.router().fanout_peers(&Topic::new(T)).count(), 6);
    h.advance(Duration::from_secs(62));
    assert_eq!(h.core.router().fanout_peers(&Topic::new(T)).count(), 0);
}

#[test]
fn a_publish_over_the_max_transmit_size_fails_at_once() {
    let config = Config {
        max_transmit_size: 1000,
        max_send_queue_bytes: 4000,
        ..Config::default()
    };
    let mut h = Harness::new(config, GossipsubConfig::default());
    h.connect_subscribed(3, T);
    let err = h
        .core
        .publish(T, Bytes::from(vec![0u8; 2000]), h.now)
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("maximum transmit size of 1000 bytes"),
        "{text}"
    );
    assert!(matches!(
        err,
        lp2p_pubsub::PubsubError::MessageTooLarge {
            max: 1000,
            payload: 2000,
            ..
        }
    ));
    assert!(h.drain().is_empty());
    // Just under the limit (the signature, author and topic take their share) works.
    h.core
        .publish(T, Bytes::from(vec![0u8; 800]), h.now)
        .unwrap();
}

#[test]
fn a_slow_peer_overflows_raises_an_event_and_own_publishes_go_first() {
    let config = Config {
        max_send_queue_len: 4,
        ..Config::default()
    };
    let mut h = Harness::new(config, GossipsubConfig::default());
    let peers = h.connect_subscribed(2, T);
    h.core.subscribe(T, h.now);
    h.drain();
    let (source, slow) = (peers[0], peers[1]);
    for n in 0..10u8 {
        h.publish_from(source, T, &[n]);
    }
    let slow_events: Vec<Event> = h
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::SlowPeer { .. }))
        .collect();
    assert_eq!(slow_events.len(), 1, "one event per overflow episode");
    assert!(matches!(slow_events[0], Event::SlowPeer { peer, queued: 4, .. } if peer == slow));
    assert_eq!(h.core.counters().send_queue_dropped, 6);
    // Our own message evicts a forward and goes out first.
    h.core
        .publish(T, Bytes::from_static(b"own"), h.now)
        .unwrap();
    let out = h.drain();
    let sent = messages(out.get(&slow).unwrap());
    assert_eq!(sent.len(), 4);
    assert_eq!(sent[0].data.as_deref(), Some(&b"own"[..]));
    assert_eq!(h.core.queued(&slow), Some((0, 0)));
}

// ---------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------

#[test]
fn async_validation_accept_reject_timeout_and_queue_limit() {
    let config = Config {
        max_pending_validations: 2,
        validation_timeout: Duration::from_secs(2),
        ..Config::default()
    };
    let mut h = Harness::new(config, scored(T));
    let peers = h.connect_subscribed(3, T);
    h.core.subscribe(T, h.now);
    h.core.set_async_validation(T, true);
    h.drain();
    h.events();
    let source = peers[0];

    let accepted = h.publish_from(source, T, b"accept me");
    let rejected = h.publish_from(source, T, b"reject me");
    let overflow = h.publish_from(source, T, b"no room");
    let requests: Vec<Vec<u8>> = h
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::ValidationRequested { message_id, .. } => Some(message_id.as_bytes().to_vec()),
            _ => None,
        })
        .collect();
    assert_eq!(requests, vec![id_of(&accepted), id_of(&rejected)]);
    assert_eq!(h.core.counters().validation_queue_full, 1);
    assert!(h.drain().is_empty(), "nothing forwarded before validation");
    let _ = overflow;

    let id = lp2p_pubsub::MessageId::new(id_of(&accepted));
    assert!(
        h.core
            .report_validation_result(&id, Acceptance::Accept, h.now)
    );
    assert!(
        !h.core
            .report_validation_result(&id, Acceptance::Accept, h.now)
    );
    assert!(h.events().iter().any(
        |e| matches!(e, Event::Message { message, .. } if message.data.as_ref() == b"accept me")
    ));
    let forwarded = h.drain();
    assert_eq!(
        forwarded.values().map(|r| messages(r).len()).sum::<usize>(),
        2
    );

    let id = lp2p_pubsub::MessageId::new(id_of(&rejected));
    h.core
        .report_validation_result(&id, Acceptance::Reject, h.now);
    assert!(h.score(&source) < 0.0, "P₄ for a rejected message");
    assert!(h.drain().is_empty());

    let late = h.publish_from(source, T, b"too slow");
    h.advance(Duration::from_secs(3));
    assert_eq!(h.core.counters().validation_timeouts, 1);
    let id = lp2p_pubsub::MessageId::new(id_of(&late));
    assert!(
        !h.core
            .report_validation_result(&id, Acceptance::Accept, h.now)
    );
}

#[test]
fn sync_validators_run_on_receipt_and_on_publish() {
    let mut h = Harness::gossipsub(GossipsubConfig::default());
    let peers = h.connect_subscribed(2, T);
    h.core.subscribe(T, h.now);
    h.core
        .set_validator(T, |_, message: &lp2p_pubsub::Message| {
            if message.data.starts_with(b"bad") {
                Acceptance::Reject
            } else if message.data.starts_with(b"meh") {
                Acceptance::Ignore
            } else {
                Acceptance::Accept
            }
        });
    h.drain();
    h.events();
    h.publish_from(peers[0], T, b"bad one");
    h.publish_from(peers[0], T, b"meh one");
    h.publish_from(peers[0], T, b"good one");
    let delivered: Vec<Bytes> = h
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Message { message, .. } => Some(message.data),
            _ => None,
        })
        .collect();
    assert_eq!(delivered, vec![Bytes::from_static(b"good one")]);
    assert_eq!(h.core.counters().messages_rejected, 1);
    assert_eq!(h.core.counters().messages_ignored, 1);
    assert!(matches!(
        h.core.publish(T, Bytes::from_static(b"bad mine"), h.now),
        Err(lp2p_pubsub::PubsubError::PublishRejected(_))
    ));
}

// ---------------------------------------------------------------------------------------
// Score as the router applies it
// ---------------------------------------------------------------------------------------

#[test]
fn invalid_messages_get_a_peer_graylisted() {
    let mut h = Harness::gossipsub(scored(T));
    let peers = h.connect_subscribed(2, T);
    h.core.subscribe(T, h.now);
    h.core.set_validator(T, |_, m: &lp2p_pubsub::Message| {
        if m.data.starts_with(b"bad") {
            Acceptance::Reject
        } else {
            Acceptance::Accept
        }
    });
    let bad = peers[0];
    for _ in 0..3 {
        h.publish_from(bad, T, b"bad");
    }
    // P₄ = 3² × -10 = -90, below the graylist threshold.
    assert!(h.score(&bad) < -80.0);
    h.publish_from(bad, T, b"good but ignored");
    assert_eq!(h.core.counters().rpcs_graylisted, 1);
    assert!(
        h.events()
            .iter()
            .any(|e| matches!(e, Event::Graylisted { peer, .. } if *peer == bad))
    );
    // The other peer is unaffected.
    h.publish_from(peers[1], T, b"fine");
    assert_eq!(h.core.counters().messages_accepted, 1);
}

#[test]
fn first_deliveries_raise_the_score_and_ip_colocation_lowers_it() {
    let mut h = Harness::gossipsub(scored(T));
    let peer = h.connect_subscribed(1, T)[0];
    h.core.subscribe(T, h.now);
    h.publish_from(peer, T, b"one");
    h.publish_from(peer, T, b"two");
    assert!((h.score(&peer) - 2.0).abs() < 1e-9);

    let ip: std::net::IpAddr = "192.0.2.1".parse().unwrap();
    let crowd: Vec<PeerId> = (0..12)
        .map(|_| h.connect_with_ip(PeerKind::Gossipsub12, Direction::Inbound, Some(ip)))
        .collect();
    // 12 peers on one IP, threshold 10, weight -5: -5 × 2².
    assert!(
        (h.score(&crowd[0]) + 20.0).abs() < 1e-9,
        "{}",
        h.score(&crowd[0])
    );
    // P₅ through the core.
    assert!(h.core.set_application_score(&crowd[0], 3.0));
    assert!((h.score(&crowd[0]) - 10.0).abs() < 1e-9);
}

/// The thresholds between them: a peer scored below the gossip threshold (-10) but at or
/// above the publish threshold (-50) still gets our own messages, but no gossip goes to it
/// and its gossip is ignored; below the publish threshold it gets no published message
/// either.
#[test]
fn a_score_between_the_gossip_and_publish_thresholds_stops_gossip_but_not_publishing() {
    let mut h = Harness::gossipsub(scored(T));
    let peers = h.connect_subscribed(4, T);
    let (mesh_peer, lazy, between, below) = (peers[0], peers[1], peers[2], peers[3]);
    // P₅ weight 10: -5 (above the gossip threshold), -30 (between), -60 (below publish).
    assert!(h.core.set_application_score(&lazy, -0.5));
    assert!(h.core.set_application_score(&between, -3.0));
    assert!(h.core.set_application_score(&below, -6.0));
    assert!((h.score(&lazy) + 5.0).abs() < 1e-9, "{}", h.score(&lazy));
    assert!(
        (h.score(&between) + 30.0).abs() < 1e-9,
        "{}",
        h.score(&between)
    );
    assert!((h.score(&below) + 60.0).abs() < 1e-9, "{}", h.score(&below));
    h.core.subscribe(T, h.now);
    // Only the non-negative peer is grafted.
    assert_eq!(h.mesh(T), vec![mesh_peer]);
    h.drain();

    // Publishing: every peer at or above the publish threshold gets our message.
    let id = h
        .core
        .publish(T, Bytes::from_static(b"mine"), h.now)
        .unwrap();
    let out = h.drain();
    let got = |p: &PeerId| out.get(p).map_or(0, |r| messages(r).len());
    assert_eq!(
        [got(&mesh_peer), got(&lazy), got(&between), got(&below)],
        [1, 1, 1, 0]
    );

    // Our gossip: IHAVE goes to the non-mesh peer above the gossip threshold only.
    h.heartbeats(1);
    let out = h.drain();
    let ihave_ids = |p: &PeerId| -> Vec<Bytes> {
        out.get(p)
            .map(|r| control(r).ihave)
            .unwrap_or_default()
            .into_iter()
            .flat_map(|i| i.message_ids)
            .collect()
    };
    assert_eq!(ihave_ids(&lazy), vec![id.to_bytes()]);
    assert!(ihave_ids(&between).is_empty());
    assert!(ihave_ids(&below).is_empty());

    // Their gossip: an IHAVE from the peer between the thresholds gets no IWANT; the same
    // IHAVE from the peer above them does.
    let ihave = proto::ControlMessage {
        ihave: vec![proto::ControlIHave {
            topic_id: Some(T.into()),
            message_ids: vec![Bytes::from_static(b"unseen")],
        }],
        ..Default::default()
    };
    h.send_control(between, ihave.clone());
    assert!(
        h.drain()
            .get(&between)
            .is_none_or(|r| control(r).iwant.is_empty())
    );
    h.send_control(lazy, ihave);
    assert_eq!(control(h.drain().get(&lazy).unwrap()).iwant.len(), 1);

    // An IWANT for a cached message: ignored from the peer between the thresholds,
    // answered for the one above them.
    let iwant = proto::ControlMessage {
        iwant: vec![proto::ControlIWant {
            message_ids: vec![id.to_bytes()],
        }],
        ..Default::default()
    };
    h.send_control(between, iwant.clone());
    assert!(
        h.drain()
            .get(&between)
            .is_none_or(|r| messages(r).is_empty())
    );
    h.send_control(lazy, iwant);
    assert_eq!(messages(h.drain().get(&lazy).unwrap()).len(), 1);
}

#[test]
fn opportunistic_grafting_brings_in_better_peers() {
    let mut config = scored(T);
    config.opportunistic_graft_ticks = 1;
    let mut h = Harness::gossipsub(config);
    // All outbound, so that the outbound quota grafts nobody.
    let peers: Vec<PeerId> = (0..12)
        .map(|_| h.connect(PeerKind::Gossipsub12, Direction::Outbound))
        .collect();
    for peer in &peers {
        h.subscribe_remote(*peer, T);
    }
    h.core.subscribe(T, h.now);
    let mesh = h.mesh(T);
    let good: Vec<PeerId> = peers
        .iter()
        .copied()
        .filter(|p| !mesh.contains(p))
        .take(3)
        .collect();
    for peer in &good {
        h.core.set_application_score(peer, 5.0);
    }
    h.heartbeats(1);
    let new_mesh = h.mesh(T);
    let grafted = good.iter().filter(|p| new_mesh.contains(p)).count();
    assert_eq!(grafted, 2);
    assert_eq!(new_mesh.len(), 8);
}

// ---------------------------------------------------------------------------------------
// Explicit peers and floodsub peers
// ---------------------------------------------------------------------------------------

#[test]
fn explicit_peers_get_everything_never_join_the_mesh_and_are_reconnected() {
    let explicit_key = Keypair::generate_ed25519();
    let explicit = explicit_key.public().to_peer_id();
    let absent = PeerId::random();
    let config = GossipsubConfig {
        explicit_peers: BTreeSet::from([explicit, absent]),
        ..Default::default()
    };
    let mut h = Harness::gossipsub(config);
    h.connect_keypair(
        explicit_key,
        PeerKind::Gossipsub12,
        Direction::Outbound,
        None,
    );
    h.subscribe_remote(explicit, T);
    let peers = h.connect_subscribed(8, T);
    h.core.subscribe(T, h.now);
    assert!(!h.mesh(T).contains(&explicit));
    h.drain();
    let source = h.mesh(T)[0];
    h.publish_from(source, T, b"for everyone explicit");
    let out = h.drain();
    assert_eq!(messages(out.get(&explicit).unwrap()).len(), 1);
    // Its GRAFT is refused with a PRUNE.
    h.send_control(explicit, graft(T));
    assert!(!h.mesh(T).contains(&explicit));
    assert_eq!(control(h.drain().get(&explicit).unwrap()).prune.len(), 1);
    // Its RPCs are accepted whatever its score: the first heartbeat asks to connect the
    // absent one.
    h.events();
    h.heartbeats(1);
    let connect: Vec<PeerId> = h
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::ConnectExplicitPeer { peer } => Some(peer),
            _ => None,
        })
        .collect();
    assert_eq!(connect, vec![absent]);
    assert_eq!(peers.len(), 8);
}

#[test]
fn floodsub_peers_get_forwards_but_no_control() {
    let mut h = Harness::gossipsub(GossipsubConfig::default());
    let flood = h.connect(PeerKind::Floodsub, Direction::Outbound);
    h.subscribe_remote(flood, T);
    let peers = h.connect_subscribed(3, T);
    h.core.subscribe(T, h.now);
    assert!(!h.mesh(T).contains(&flood));
    let source = peers[0];
    h.publish_from(source, T, b"to floodsub too");
    h.heartbeats(2);
    let out = h.drain();
    let rpcs = out.get(&flood).unwrap();
    assert_eq!(messages(rpcs).len(), 1);
    assert!(rpcs.iter().all(|r| r.control.is_none()));
    // Control from a floodsub peer is ignored.
    h.send_control(flood, graft(T));
    assert_eq!(h.core.counters().control_ignored, 1);
    assert!(!h.mesh(T).contains(&flood));
}

#[test]
fn a_floodsub_only_gossipsub_config_stays_off_floodsub() {
    use lp2p_pubsub::Router as _;
    let router = lp2p_pubsub::GossipsubRouter::new(GossipsubConfig {
        support_floodsub: false,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        router.protocols(),
        &["/meshsub/1.2.0", "/meshsub/1.1.0", "/meshsub/1.0.0"]
    );
    let router = lp2p_pubsub::GossipsubRouter::new(GossipsubConfig::default()).unwrap();
    assert_eq!(router.protocols().last(), Some(&"/floodsub/1.0.0"));
    assert!(
        lp2p_pubsub::GossipsubRouter::new(GossipsubConfig {
            mesh_n_low: 7,
            ..Default::default()
        })
        .is_err()
    );
}

#[test]
fn messages_signed_by_a_remote_are_delivered_with_their_author() {
    let mut h = Harness::gossipsub(GossipsubConfig::default());
    let peers = h.connect_subscribed(2, T);
    h.core.subscribe(T, h.now);
    h.events();
    // Authored by a peer we are not connected to, relayed by peers[0].
    let author = Keypair::generate_ed25519();
    let message = sign_message(&author, T, b"relayed", 42);
    h.send(
        peers[0],
        &proto::Rpc {
            publish: vec![message],
            ..Default::default()
        },
    )
    .unwrap();
    let delivered = h
        .events()
        .into_iter()
        .find_map(|e| match e {
            Event::Message {
                message,
                propagation_source,
                ..
            } => Some((message, propagation_source)),
            _ => None,
        })
        .unwrap();
    assert_eq!(delivered.0.source, Some(author.public().to_peer_id()));
    assert_eq!(delivered.0.sequence_number, Some(42));
    assert_eq!(delivered.1, peers[0]);
}

#[test]
fn an_explicit_floodsub_peer_gets_each_message_once() {
    let key = Keypair::generate_ed25519();
    let explicit = key.public().to_peer_id();
    let mut h = Harness::gossipsub(GossipsubConfig {
        explicit_peers: BTreeSet::from([explicit]),
        flood_publish: false,
        ..Default::default()
    });
    h.connect_keypair(key, PeerKind::Floodsub, Direction::Outbound, None);
    h.subscribe_remote(explicit, T);
    let peers = h.connect_subscribed(3, T);
    h.core.subscribe(T, h.now);
    h.drain();
    h.publish_from(peers[0], T, b"forwarded");
    h.core
        .publish(T, Bytes::from_static(b"published"), h.now)
        .unwrap();
    let out = h.drain();
    assert_eq!(messages(out.get(&explicit).unwrap()).len(), 2);
}

/// With a memory budget, each message queued for a peer is reserved first: a budget of about
/// three messages drops the rest for the slow peer (counted apart from full queues), the
/// reservation always equals the queued bytes, and sending returns it.
#[test]
fn queued_messages_reserve_memory_and_a_refusal_drops_them() {
    let budget = lp2p_core::SharedLimit::new(3 * 1024 + 512);
    let mut h = Harness::new(Config::default(), GossipsubConfig::default());
    h.core
        .set_memory_budget(std::sync::Arc::new(budget.clone()));
    let peers = h.connect_subscribed(2, T);
    h.core.subscribe(T, h.now);
    h.drain();
    let (source, slow) = (peers[0], peers[1]);
    for n in 0..10u8 {
        h.publish_from(source, T, &[n; 1000]);
    }
    let counters = h.core.counters().clone();
    assert_eq!(counters.send_queue_refused_for_memory, 7, "{counters:?}");
    assert_eq!(counters.send_queue_dropped, 7);
    let (_, queued_bytes) = h.core.queued(&slow).unwrap();
    assert_eq!(h.core.reserved_memory(&slow), Some(queued_bytes));
    assert_eq!(budget.used(), queued_bytes);
    let out = h.drain();
    assert_eq!(messages(out.get(&slow).unwrap()).len(), 3);
    assert_eq!(budget.used(), 0, "sent messages return their reservation");
}

//! Hostile input over real streams: oversized and malformed messages, a peer answering with
//! 10,000 closer peers, records over the size limit, provider floods, malformed multihash
//! keys, foreign provider entries, too many streams, requests and answers the resource
//! manager has no memory for. Each is an error, a reset or a drop, counted; never a panic, a
//! hang or unbounded memory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p_core::framing::{read_frame, write_frame};
use lp2p_core::runtime::block_on;
use lp2p_core::{PeerId, varint};
use lp2p_host::{Host, HostStream};
use lp2p_kad::proto;
use lp2p_kad::wire::{self, PeerInfo, Request};
use lp2p_kad::{KadConfig, KadError, Kademlia, MEMORY_SERVICE, PROTOCOL, Record};
use lp2p_rcmgr::{ResourceManager, Scope};
use prost::Message;

mod support;

use support::hosts::memory_host;

const LONG: Duration = Duration::from_secs(60);

/// A host whose resource manager gives each service 64 bytes (other limits ample).
async fn starved_host() -> Host {
    let manager = ResourceManager::builder()
        .system_memory(64 << 20)
        .peer_memory(16 << 20)
        .connection_memory(16 << 20)
        .service_memory(64)
        .build()
        .unwrap();
    Host::builder()
        .transport(lp2p_memory::MemoryTransport::default())
        .security(lp2p_noise::Noise::new())
        .muxer(lp2p_yamux::Yamux::default())
        .resource_manager(manager)
        .listen_on("/memory/0".parse().unwrap())
        .build()
        .await
        .unwrap()
}

/// Bytes Kademlia holds in `host`'s resource manager now.
fn kad_memory(host: &Host) -> usize {
    let stats = host.resource_manager().stats();
    stats
        .service_memory
        .get(MEMORY_SERVICE)
        .copied()
        .unwrap_or(0)
}

async fn server(config: KadConfig) -> (Host, Kademlia) {
    let h = memory_host().await;
    let kad = Kademlia::new(&h, config).unwrap();
    (h, kad)
}

async fn stream_to(from: &Host, to: &Host) -> HostStream {
    from.connect(to.local_peer_id(), to.listen_addrs())
        .await
        .unwrap();
    from.new_stream(&to.local_peer_id(), [PROTOCOL])
        .await
        .unwrap()
}

/// Sends `body` as one frame and reports whether an answer came back (vs. a reset/EOF).
async fn send_raw(stream: &mut HostStream, body: &[u8]) -> Option<Vec<u8>> {
    write_frame(stream, body).await.ok()?;
    stream.flush().await.ok()?;
    read_frame(stream, 1 << 20).await.ok()
}

async fn wait_for(host: &Host, what: &str, mut check: impl FnMut() -> bool) {
    let rt = host.runtime().clone();
    rt.timeout(LONG, async {
        while !check() {
            rt.sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} did not happen"));
}

fn multihash(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    let mut out = vec![0x12, 0x20];
    out.extend(sha2::Sha256::digest(data));
    out
}

#[test]
fn oversized_and_malformed_requests_reset_the_stream() {
    block_on(async {
        let (server_host, kad) = server(KadConfig::default()).await;
        let client = memory_host().await;
        // Announcing 1 MiB: refused from the length prefix alone.
        let mut s = stream_to(&client, &server_host).await;
        let mut prefix = Vec::new();
        varint::encode_into(1 << 20, &mut prefix);
        s.write_all(&prefix).await.unwrap();
        s.flush().await.unwrap();
        let mut rest = Vec::new();
        assert!(s.read_to_end(&mut rest).await.is_err() || rest.is_empty());
        // Junk that is not a protobuf.
        let mut s = stream_to(&client, &server_host).await;
        assert_eq!(send_raw(&mut s, &[0x0a, 0xff, 0xff]).await, None);
        // An unknown message type.
        let mut s = stream_to(&client, &server_host).await;
        assert_eq!(send_raw(&mut s, &[0x08, 0x2a]).await, None);
        wait_for(&server_host, "three refusals counted", || {
            kad.counters().inbound_refused >= 3
        })
        .await;
        // The server still answers good requests.
        let mut s = stream_to(&client, &server_host).await;
        let now = client.runtime().now();
        let ok = send_raw(&mut s, &wire::encode_request(&Request::Ping, now)).await;
        assert!(ok.is_some());
        client.close().await;
        server_host.close().await;
    });
}

/// A fake DHT server that answers every request with `answer`.
async fn liar(answer: Vec<u8>) -> Host {
    let h = memory_host().await;
    h.set_stream_handler(PROTOCOL, move |mut stream: HostStream| {
        let answer = answer.clone();
        async move {
            if read_frame(&mut stream, 1 << 20).await.is_ok() {
                let _ = write_frame(&mut stream, &answer).await;
                let _ = stream.flush().await;
            }
        }
    });
    h
}

#[test]
fn a_peer_answering_with_ten_thousand_closer_peers_is_refused() {
    block_on(async {
        let many: Vec<proto::message::Peer> = (0..10_000)
            .map(|_| proto::message::Peer {
                id: PeerId::random().to_bytes().into(),
                addrs: vec![],
                connection: 0,
            })
            .collect();
        let huge = proto::Message {
            r#type: proto::message::MessageType::FindNode as i32,
            closer_peers: many,
            ..Default::default()
        }
        .encode_to_vec();
        assert!(huge.len() > wire::DEFAULT_MAX_MESSAGE_SIZE);
        let fake = liar(huge).await;
        let (h, kad) = server(KadConfig::default()).await;
        kad.add_address(fake.local_peer_id(), fake.listen_addrs());
        let result = kad.find_peer(PeerId::random()).await;
        assert!(matches!(result, Err(KadError::NotFound(_))), "{result:?}");
        let c = kad.counters();
        assert!(c.requests_failed >= 1);
        assert!(c.inbound_refused >= 1, "the oversized answer was counted");
        // The liar failed a request; it is still in the table only until its next failure.
        h.close().await;
        fake.close().await;
    });
}

#[test]
fn a_long_list_within_the_size_limit_is_cut_and_counted() {
    block_on(async {
        // 2,000 entries with invalid ids fit in 64 KiB; plus 100 valid ones.
        let mut peers: Vec<proto::message::Peer> = (0..2000u32)
            .map(|i| proto::message::Peer {
                id: vec![1, 2, i.to_be_bytes()[3]].into(),
                addrs: vec![],
                connection: 0,
            })
            .collect();
        peers.extend((0..100).map(|_| proto::message::Peer {
            id: PeerId::random().to_bytes().into(),
            addrs: vec![vec![0xff; 4].into()],
            connection: 0,
        }));
        let answer = proto::Message {
            r#type: proto::message::MessageType::FindNode as i32,
            closer_peers: peers,
            ..Default::default()
        }
        .encode_to_vec();
        assert!(answer.len() < wire::DEFAULT_MAX_MESSAGE_SIZE);
        let fake = liar(answer).await;
        let (h, kad) = server(KadConfig::default()).await;
        kad.add_address(fake.local_peer_id(), fake.listen_addrs());
        let _ = kad.find_peer(PeerId::random()).await;
        let c = kad.counters();
        assert!(c.dropped_peers >= 2000, "{c:?}");
        h.close().await;
        fake.close().await;
    });
}

#[test]
fn records_over_the_size_limit_are_refused() {
    block_on(async {
        let config = KadConfig {
            max_value_size: 1000,
            validator: std::sync::Arc::new(
                lp2p_kad::validator::NamespacedValidator::default()
                    .unknown_namespaces(lp2p_kad::validator::UnknownNamespaces::Accept),
            ),
            ..KadConfig::default()
        };
        let (server_host, kad) = server(config).await;
        let client = memory_host().await;
        let now = client.runtime().now();
        let big = Request::PutValue {
            record: Record::new(b"/x/big".to_vec(), vec![0; 2000]),
        };
        let mut s = stream_to(&client, &server_host).await;
        assert_eq!(
            send_raw(&mut s, &wire::encode_request(&big, now)).await,
            None
        );
        let small = Request::PutValue {
            record: Record::new(b"/x/small".to_vec(), vec![0; 10]),
        };
        let mut s = stream_to(&client, &server_host).await;
        assert!(
            send_raw(&mut s, &wire::encode_request(&small, now))
                .await
                .is_some()
        );
        assert_eq!(kad.store_sizes().0, 1);
        assert_eq!(kad.counters().store_full, 1);
        // A record whose key differs from the message key.
        let mut m = proto::Message::decode(&wire::encode_request(&small, now)[..]).unwrap();
        m.key = b"/x/other".to_vec();
        let mut s = stream_to(&client, &server_host).await;
        assert_eq!(send_raw(&mut s, &m.encode_to_vec()).await, None);
        client.close().await;
        server_host.close().await;
    });
}

#[test]
fn provider_floods_and_bad_keys_are_capped_and_counted() {
    block_on(async {
        let config = KadConfig {
            max_provider_records_per_peer: 50,
            ..KadConfig::default()
        };
        let (server_host, kad) = server(config).await;
        let client = memory_host().await;
        let me = client.local_peer_id();
        let now = client.runtime().now();
        let mut s = stream_to(&client, &server_host).await;
        for i in 0..200u32 {
            let add = Request::AddProvider {
                key: multihash(&i.to_be_bytes()),
                providers: vec![PeerInfo::new(me, vec![])],
            };
            if write_frame(&mut s, &wire::encode_request(&add, now))
                .await
                .is_err()
            {
                // Refused past the cap: the stream was reset; carry on with a new one.
                s = stream_to(&client, &server_host).await;
            }
            let _ = s.flush().await;
        }
        wait_for(&server_host, "the flood is capped", || {
            kad.store_sizes().1 == 50 && kad.counters().store_full >= 1
        })
        .await;
        // Keys that are not multihashes, and providers that are not the sender.
        for bad in [
            Request::AddProvider {
                key: b"no multihash".to_vec(),
                providers: vec![PeerInfo::new(me, vec![])],
            },
            Request::GetProviders {
                key: vec![0x12, 0x20, 1, 2, 3],
            },
            Request::AddProvider {
                key: multihash(b"x"),
                providers: vec![PeerInfo::new(PeerId::random(), vec![])],
            },
        ] {
            let mut s = stream_to(&client, &server_host).await;
            let _ = send_raw(&mut s, &wire::encode_request(&bad, now)).await;
        }
        wait_for(
            &server_host,
            "bad keys and foreign providers counted",
            || {
                let c = kad.counters();
                c.bad_provider_keys == 2 && c.foreign_providers == 1
            },
        )
        .await;
        assert_eq!(kad.store_sizes().1, 50);
        client.close().await;
        server_host.close().await;
    });
}

#[test]
fn too_many_streams_from_one_peer_are_reset() {
    block_on(async {
        let config = KadConfig {
            max_inbound_streams_per_peer: 2,
            ..KadConfig::default()
        };
        let (server_host, kad) = server(config).await;
        let client = memory_host().await;
        let now = client.runtime().now();
        let ping = wire::encode_request(&Request::Ping, now);
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut s = stream_to(&client, &server_host).await;
            assert!(send_raw(&mut s, &ping).await.is_some());
            held.push(s);
        }
        // The third is reset, during or right after protocol negotiation.
        let third = client
            .new_stream(&server_host.local_peer_id(), [PROTOCOL])
            .await;
        if let Ok(mut third) = third {
            assert_eq!(send_raw(&mut third, &ping).await, None);
        }
        wait_for(&server_host, "the refusal counted", || {
            kad.counters().inbound_refused >= 1
        })
        .await;
        drop(held);
        client.close().await;
        server_host.close().await;
    });
}

#[test]
fn a_request_the_resource_manager_has_no_memory_for_resets_the_stream() {
    block_on(async {
        let server_host = starved_host().await;
        let kad = Kademlia::new(&server_host, KadConfig::default()).unwrap();
        let client = memory_host().await;
        let now = client.runtime().now();
        // 100 key bytes: over the 64 B the "kad" service may hold.
        let big = wire::encode_request(&Request::FindNode { key: vec![7; 100] }, now);
        assert!(big.len() > 64);
        let mut s = stream_to(&client, &server_host).await;
        assert_eq!(send_raw(&mut s, &big).await, None, "refused: stream reset");
        wait_for(&server_host, "the refusal counted", || {
            kad.counters().memory_refused >= 1
        })
        .await;
        assert!(
            server_host
                .resource_manager()
                .stats()
                .denied(Scope::Service)
                >= 1
        );
        // A request that fits is still served, on a new stream, and nothing stays reserved.
        let mut s = stream_to(&client, &server_host).await;
        let ping = wire::encode_request(&Request::Ping, now);
        assert!(ping.len() <= 64);
        assert!(send_raw(&mut s, &ping).await.is_some());
        assert_eq!(kad_memory(&server_host), 0);
        client.close().await;
        server_host.close().await;
    });
}

#[test]
fn an_answer_the_resource_manager_has_no_memory_for_fails_the_request() {
    block_on(async {
        // A FIND_NODE answer with five peers: a few hundred bytes.
        let answer = proto::Message {
            r#type: proto::message::MessageType::FindNode as i32,
            closer_peers: (0..5)
                .map(|_| proto::message::Peer {
                    id: PeerId::random().to_bytes().into(),
                    addrs: vec![],
                    connection: 0,
                })
                .collect(),
            ..Default::default()
        }
        .encode_to_vec();
        assert!(answer.len() > 64);
        let fake = liar(answer).await;
        let h = starved_host().await;
        let kad = Kademlia::new(&h, KadConfig::default()).unwrap();
        kad.add_address(fake.local_peer_id(), fake.listen_addrs());
        let result = kad.find_peer(PeerId::random()).await;
        assert!(matches!(result, Err(KadError::NotFound(_))), "{result:?}");
        let c = kad.counters();
        assert!(c.memory_refused >= 1, "{c:?}");
        assert!(c.requests_failed >= 1, "{c:?}");
        assert!(h.resource_manager().stats().denied(Scope::Service) >= 1);
        wait_for(&h, "nothing stays reserved", || kad_memory(&h) == 0).await;
        h.close().await;
        fake.close().await;
    });
}

#[test]
fn requests_and_answers_with_default_limits_leave_nothing_reserved() {
    block_on(async {
        let (server_host, kad) = server(KadConfig::default()).await;
        let client = memory_host().await;
        let now = client.runtime().now();
        let mut s = stream_to(&client, &server_host).await;
        for _ in 0..3 {
            let request = wire::encode_request(&Request::FindNode { key: vec![7; 100] }, now);
            assert!(send_raw(&mut s, &request).await.is_some());
            // Each request's reservation is returned once it is handled, before the answer
            // is written, even though the stream stays open.
            assert_eq!(kad_memory(&server_host), 0);
        }
        s.close().await.unwrap();
        // The asking side: a request to the server and its answer.
        let asker = Kademlia::new(&client, KadConfig::default()).unwrap();
        asker.add_address(server_host.local_peer_id(), server_host.listen_addrs());
        let _ = asker.find_peer(PeerId::random()).await;
        assert!(asker.counters().requests_sent >= 1);
        wait_for(&client, "nothing stays reserved", || {
            kad_memory(&client) == 0 && kad_memory(&server_host) == 0
        })
        .await;
        let resources = server_host.resource_manager().stats();
        assert_eq!(resources.denied(Scope::Service), 0);
        assert_eq!(kad.counters().memory_refused, 0);
        assert_eq!(asker.counters().memory_refused, 0);
        assert_eq!(client.resource_manager().stats().denied(Scope::Service), 0);
        client.close().await;
        server_host.close().await;
    });
}

/// A request to a peer that cannot be reached opens no memory account: the account is
/// taken only when an answer is about to be read, so the resource manager never counts a
/// peer we merely tried to reach.
#[test]
fn a_request_to_an_unreachable_peer_takes_no_memory_account() {
    block_on(async {
        let (h, kad) = server(KadConfig::default()).await;
        let nobody = PeerId::random();
        // A memory port nothing listens on.
        kad.add_address(nobody, vec!["/memory/9".parse().unwrap()]);
        let found = kad.find_peer(PeerId::random()).await;
        assert!(found.is_err(), "no one answers");
        let stats = h.resource_manager().stats();
        assert!(
            !stats.service_memory.contains_key(MEMORY_SERVICE),
            "{stats:?}"
        );
        assert_eq!(h.resource_manager().peer_memory(&nobody), 0);
        h.close().await;
    });
}

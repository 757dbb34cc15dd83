//! The Kademlia service on real hosts (memory transport + noise + yamux, with identify):
//! find-peer, put/get value, provide/find providers across a small network, client mode,
//! switching modes (by hand and following reachability verdicts), several requests on one inbound stream,
//! a request stream that ends with its request, a lookup's requests all in flight at once, and
//! stopping with the host.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncWriteExt, StreamExt};
use lp2p_core::framing::{read_frame, read_frame_or_eof, write_frame};
use lp2p_core::runtime::block_on;
use lp2p_host::Host;
use lp2p_identify::{Identify, IdentifyConfig};
use lp2p_kad::validator::{NamespacedValidator, UnknownNamespaces};
use lp2p_kad::wire::{self, MessageKind, Request, Response};
use lp2p_kad::{KadConfig, KadError, Kademlia, Mode, Op, PROTOCOL, Progress, QueryResult, Record};

mod support;

use support::hosts::memory_host;

const LONG: Duration = Duration::from_secs(60);

/// A raw server reads one request: a GET_VALUE's key and the time it was decoded, or `None`
/// for anything else (the handler then drops the stream unanswered).
async fn read_get_value(
    stream: &mut lp2p_host::HostStream,
    rt: &lp2p_core::RuntimeHandle,
) -> Option<(Vec<u8>, std::time::Instant)> {
    let request = read_frame(stream, 65536).await.ok()?;
    let now = rt.now();
    match wire::decode_request(&request, &wire::WireLimits::default(), now) {
        Ok(wire::Decoded {
            message: Request::GetValue { key },
            ..
        }) => Some((key, now)),
        _ => None,
    }
}

/// A raw server answers a GET_VALUE for `key` with the record "the value" and ends the
/// stream.
async fn answer_the_value(
    stream: &mut lp2p_host::HostStream,
    key: Vec<u8>,
    now: std::time::Instant,
) {
    let answer = Response::GetValue {
        record: Some(Record::new(key, b"the value".to_vec())),
        closer: Vec::new(),
    };
    let _ = write_frame(stream, &wire::encode_response(&answer, now)).await;
    let _ = stream.close().await;
}

/// The asker of the tests against raw servers (stream handlers that answer one GET_VALUE):
/// a client without the automatic bootstrap, whose FIND_NODE such a server drops unanswered,
/// which takes the server out of the routing table before the get can ask it.
fn raw_server_asker_config() -> KadConfig {
    KadConfig {
        auto_bootstrap: false,
        ..open_config().with_mode(Mode::Client)
    }
}

fn open_config() -> KadConfig {
    KadConfig {
        validator: Arc::new(
            NamespacedValidator::default().unknown_namespaces(UnknownNamespaces::Accept),
        ),
        ..KadConfig::default()
    }
}

async fn node(config: KadConfig) -> (Host, Kademlia) {
    let host = memory_host().await;
    let kad = Kademlia::new(&host, config).unwrap();
    Identify::new(&host, IdentifyConfig::default());
    (host, kad)
}

async fn wait_until(host: &Host, what: &str, mut check: impl FnMut() -> bool) {
    let rt = host.runtime().clone();
    rt.timeout(LONG, async {
        while !check() {
            rt.sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}: not within {LONG:?}"));
}

/// `n` nodes; every node knows node 0 and bootstraps; waits until node 0 knows them all.
async fn network(n: usize, config: &KadConfig) -> Vec<(Host, Kademlia)> {
    let mut nodes = Vec::new();
    for _ in 0..n {
        nodes.push(node(config.clone()).await);
    }
    let (hub, hub_addrs) = (nodes[0].0.local_peer_id(), nodes[0].0.listen_addrs());
    for (_, kad) in &nodes[1..] {
        kad.add_address(hub, hub_addrs.clone());
        kad.bootstrap().await.unwrap();
    }
    let (hub_host, hub_kad) = &nodes[0];
    wait_until(hub_host, "the hub learns every node", || {
        hub_kad.routing_table().len() == n - 1
    })
    .await;
    nodes
}

async fn close(nodes: &[(Host, Kademlia)]) {
    for (h, _) in nodes {
        h.close().await;
    }
}

fn multihash(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    let mut out = vec![0x12, 0x20];
    out.extend(sha2::Sha256::digest(data));
    out
}

#[test]
fn find_peer_put_get_and_providers_across_six_nodes() {
    block_on(async {
        let nodes = network(6, &open_config()).await;
        let (target, _) = &nodes[5];
        let (found, _) = nodes[2].1.find_peer(target.local_peer_id()).await.unwrap();
        assert_eq!(found.addrs, target.listen_addrs());
        // The peerstore has the addresses now: a plain connect works.
        nodes[2]
            .0
            .connect(target.local_peer_id(), Vec::new())
            .await
            .unwrap();

        let record = Record::new(b"/app/k".to_vec(), b"v1".to_vec());
        let (stored, _) = nodes[1].1.put_value(record).await.unwrap();
        assert_eq!(stored, 5, "every other node stores it (fewer than k exist)");
        let (got, _) = nodes[4].1.get_value(b"/app/k".to_vec()).await.unwrap();
        assert_eq!(got.value, b"v1");
        assert_eq!(got.publisher, Some(nodes[1].0.local_peer_id()));

        let key = multihash(b"file");
        let (took, _) = nodes[3].1.start_providing(key.clone()).await.unwrap();
        assert_eq!(took, 5);
        // Streamed: the provider arrives as progress before the result.
        let mut query = nodes[5].1.query(Op::GetProviders(key.clone())).unwrap();
        let first = query.next().await.unwrap();
        let Progress::Providers { providers, .. } = first else {
            panic!("{first:?}")
        };
        assert_eq!(providers[0].peer, nodes[3].0.local_peer_id());
        assert_eq!(providers[0].addrs, nodes[3].0.listen_addrs());
        let (result, _) = query.finish().await.unwrap();
        assert!(matches!(result, QueryResult::GetProviders(p) if p.len() == 1));
        close(&nodes).await;
    });
}

#[test]
fn unknown_peer_and_missing_record_are_errors_not_hangs() {
    block_on(async {
        let nodes = network(3, &KadConfig::default()).await;
        let nobody = lp2p_core::PeerId::random();
        assert!(matches!(
            nodes[1].1.find_peer(nobody).await,
            Err(KadError::NotFound(_))
        ));
        assert!(matches!(
            nodes[1].1.get_value(b"/pk/none".to_vec()).await,
            Err(KadError::NotFound(_))
        ));
        // The default validator refuses keys outside /pk/ and /ipns/, before any traffic.
        let refused = nodes[1]
            .1
            .put_value(Record::new(b"plain".to_vec(), b"x".to_vec()))
            .await;
        assert!(matches!(refused, Err(KadError::InvalidRecord { .. })));
        // A provider key must be a multihash.
        assert!(matches!(
            nodes[1]
                .1
                .start_providing(b"not a multihash".to_vec())
                .await,
            Err(KadError::NotMultihash { .. })
        ));
        close(&nodes).await;
    });
}

#[test]
fn public_key_records_validate_across_the_network() {
    block_on(async {
        let nodes = network(4, &KadConfig::default()).await;
        let keypair = nodes[1].0.keypair().clone();
        let mut key = b"/pk/".to_vec();
        key.extend(nodes[1].0.local_peer_id().to_bytes());
        let record = Record::new(key.clone(), keypair.public().encode_protobuf());
        let (stored, _) = nodes[1].1.put_value(record).await.unwrap();
        assert_eq!(stored, 3);
        let (got, _) = nodes[3].1.get_value(key).await.unwrap();
        assert_eq!(got.value, keypair.public().encode_protobuf());
        close(&nodes).await;
    });
}

#[test]
fn a_client_queries_but_is_never_in_routing_tables() {
    block_on(async {
        let nodes = network(3, &open_config()).await;
        let (client_host, client) = node(open_config().with_mode(Mode::Client)).await;
        assert!(
            !client_host
                .protocols()
                .iter()
                .any(|p| p.as_str() == PROTOCOL),
            "a client does not register the protocol"
        );
        client.add_address(nodes[0].0.local_peer_id(), nodes[0].0.listen_addrs());
        let (found, _) = client.find_peer(nodes[2].0.local_peer_id()).await.unwrap();
        assert_eq!(found.addrs, nodes[2].0.listen_addrs());
        // The servers it talked to know it is connected, but it never enters their tables.
        client_host
            .runtime()
            .sleep(Duration::from_millis(300))
            .await;
        for (_, kad) in &nodes {
            assert!(
                !kad.routing_table()
                    .iter()
                    .any(|p| p.peer == client_host.local_peer_id())
            );
        }
        // Becoming a server registers the protocol; identify pushes it; the hub adds it.
        client.set_mode(Mode::Server);
        assert!(
            client_host
                .protocols()
                .iter()
                .any(|p| p.as_str() == PROTOCOL)
        );
        let (hub_host, hub) = &nodes[0];
        wait_until(hub_host, "the hub adds the new server", || {
            hub.routing_table()
                .iter()
                .any(|p| p.peer == client_host.local_peer_id())
        })
        .await;
        // And back.
        client.set_mode(Mode::Client);
        wait_until(hub_host, "the hub drops the client", || {
            !hub.routing_table()
                .iter()
                .any(|p| p.peer == client_host.local_peer_id())
        })
        .await;
        client_host.close().await;
        close(&nodes).await;
    });
}

#[test]
fn the_mode_follows_reachability_verdicts() {
    block_on(async {
        let (host, kad) = node(open_config().with_mode(Mode::Client)).await;
        let registered = |host: &Host| host.protocols().iter().any(|p| p.as_str() == PROTOCOL);
        let (tx, rx) = futures::channel::mpsc::unbounded();
        kad.follow_reachability(rx);
        tx.unbounded_send(true).unwrap();
        wait_until(&host, "server mode once reachable", || {
            kad.mode() == Mode::Server && registered(&host)
        })
        .await;
        tx.unbounded_send(false).unwrap();
        wait_until(&host, "client mode once unreachable", || {
            kad.mode() == Mode::Client && !registered(&host)
        })
        .await;
        // The same verdict twice changes nothing; the stream ending leaves the mode as is.
        tx.unbounded_send(false).unwrap();
        drop(tx);
        host.runtime().sleep(Duration::from_millis(50)).await;
        assert_eq!(kad.mode(), Mode::Client);
        host.close().await;
    });
}

#[test]
fn several_requests_on_one_inbound_stream() {
    block_on(async {
        let nodes = network(3, &open_config()).await;
        let (asker, _) = node(open_config().with_mode(Mode::Client)).await;
        let (server_host, _) = &nodes[0];
        asker
            .connect(server_host.local_peer_id(), server_host.listen_addrs())
            .await
            .unwrap();
        let mut stream = asker
            .new_stream(&server_host.local_peer_id(), [PROTOCOL])
            .await
            .unwrap();
        let now = asker.runtime().now();
        for target in [&nodes[1].0, &nodes[2].0] {
            let request = Request::FindNode {
                key: target.local_peer_id().to_bytes(),
            };
            write_frame(&mut stream, &wire::encode_request(&request, now))
                .await
                .unwrap();
            stream.flush().await.unwrap();
            let answer = read_frame(&mut stream, 65536).await.unwrap();
            let decoded = wire::decode_response(
                &answer,
                MessageKind::FindNode,
                &wire::WireLimits::default(),
                now,
            )
            .unwrap();
            let Response::FindNode { closer } = decoded.message else {
                panic!()
            };
            assert!(closer.iter().any(|p| p.peer == target.local_peer_id()));
        }
        // PING is still answered (spec: backwards compatibility).
        write_frame(&mut stream, &wire::encode_request(&Request::Ping, now))
            .await
            .unwrap();
        stream.flush().await.unwrap();
        let pong = read_frame(&mut stream, 65536).await.unwrap();
        assert!(
            wire::decode_response(&pong, MessageKind::Ping, &wire::WireLimits::default(), now)
                .is_ok()
        );
        stream.close().await.unwrap();
        asker.close().await;
        close(&nodes).await;
    });
}

/// A request stream carries the end of the stream with the request: a server that waits
/// for that end before it answers (as it may, one request per stream) still answers, and the
/// lookup gets the record. Before, the asker closed its side only after reading the answer,
/// so the server was woken a second time for the close of every request.
#[test]
fn a_request_stream_ends_with_the_request() {
    block_on(async {
        let (asker_host, asker) = node(raw_server_asker_config()).await;
        let server = memory_host().await;
        let (ended_tx, mut ended_rx) = futures::channel::mpsc::unbounded();
        let rt = server.runtime().clone();
        server.set_stream_handler(PROTOCOL, move |mut stream: lp2p_host::HostStream| {
            let ended_tx = ended_tx.clone();
            let rt = rt.clone();
            async move {
                let Some((key, now)) = read_get_value(&mut stream, &rt).await else {
                    return;
                };
                // The asker's side has ended (`None`), not merely gone quiet: with the old
                // close after the answer, this read waits out the timeout instead (5 s, below
                // the asker's 10 s request timeout, so the answer still reaches it).
                let wait = Duration::from_secs(5);
                let next = rt
                    .timeout(wait, read_frame_or_eof(&mut stream, 65536))
                    .await;
                let _ = ended_tx.unbounded_send(matches!(next, Ok(Ok(None))));
                answer_the_value(&mut stream, key, now).await;
            }
        });
        asker.add_address(server.local_peer_id(), server.listen_addrs());
        let (record, _) = asker.get_value(b"/v/key".to_vec()).await.unwrap();
        assert_eq!(record.value, b"the value");
        assert!(
            ended_rx.next().await.unwrap(),
            "the request stream did not end with the request"
        );
        asker_host.close().await;
        server.close().await;
    });
}

/// A lookup's requests start one after the other (D69) but are all in flight at once: ten
/// servers that answer only once all ten requests have arrived still answer, within their
/// wait. A request that waited for another's answer would make every server wait it out.
#[test]
fn a_lookups_requests_are_all_in_flight_at_once() {
    const SERVERS: usize = 10;
    block_on(async {
        let (asker_host, asker) = node(raw_server_asker_config()).await;
        let (arrived_tx, mut arrived_rx) = futures::channel::mpsc::unbounded::<()>();
        let (all_tx, all_rx) = futures::channel::oneshot::channel::<()>();
        let all_arrived = futures::FutureExt::shared(all_rx);
        let (waited_tx, mut waited_rx) = futures::channel::mpsc::unbounded::<bool>();
        let mut servers = Vec::new();
        for _ in 0..SERVERS {
            let server = memory_host().await;
            let rt = server.runtime().clone();
            let (arrived_tx, waited_tx) = (arrived_tx.clone(), waited_tx.clone());
            let all_arrived = all_arrived.clone();
            server.set_stream_handler(PROTOCOL, move |mut stream: lp2p_host::HostStream| {
                let (rt, arrived_tx, waited_tx) =
                    (rt.clone(), arrived_tx.clone(), waited_tx.clone());
                let all_arrived = all_arrived.clone();
                async move {
                    let Some((key, now)) = read_get_value(&mut stream, &rt).await else {
                        return;
                    };
                    let _ = arrived_tx.unbounded_send(());
                    // Below the asker's 10 s request timeout, so an answer still gets there.
                    let all = rt.timeout(Duration::from_secs(5), all_arrived).await;
                    let _ = waited_tx.unbounded_send(matches!(all, Ok(Ok(()))));
                    answer_the_value(&mut stream, key, now).await;
                }
            });
            asker.add_address(server.local_peer_id(), server.listen_addrs());
            servers.push(server);
        }
        let rt = asker_host.runtime().clone();
        let count = async move {
            let mut arrived = 0;
            while arrived < SERVERS {
                match rt.timeout(Duration::from_secs(8), arrived_rx.next()).await {
                    Ok(Some(())) => arrived += 1,
                    _ => break,
                }
            }
            let _ = all_tx.send(());
            arrived
        };
        let (got, arrived) = futures::join!(asker.get_value(b"/v/key".to_vec()), count);
        assert_eq!(arrived, SERVERS, "requests that reached a server");
        assert_eq!(got.unwrap().0.value, b"the value");
        assert!(
            waited_rx.next().await.unwrap(),
            "the first server to answer saw fewer than {SERVERS} requests within 5 s"
        );
        asker_host.close().await;
        for server in servers {
            server.close().await;
        }
    });
}

#[test]
fn queries_end_when_the_host_closes() {
    block_on(async {
        let (host, kad) = node(KadConfig::default()).await;
        // A bootstrap peer that never answers: the query waits on it.
        kad.add_address(
            lp2p_core::PeerId::random(),
            vec!["/memory/123456789".parse().unwrap()],
        );
        let query = kad
            .query(Op::FindPeer(lp2p_core::PeerId::random()))
            .unwrap();
        host.close().await;
        let rt = lp2p_core::RuntimeHandle::default();
        let finished = rt.timeout(LONG, query.finish()).await.unwrap();
        assert!(finished.is_err() || matches!(finished, Ok((QueryResult::FindPeer(None), _))));
        assert!(matches!(
            Kademlia::new(&host, KadConfig::default()),
            Err(KadError::Closed)
        ));
        assert_eq!(host.runtime().live_tasks(), 0);
    });
}

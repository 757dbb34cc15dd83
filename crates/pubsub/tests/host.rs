//! The async shell on real hosts: TCP (noise + yamux) and the memory transport, gossipsub and
//! floodsub. Hosts in a line and twenty hosts on a random sparse graph deliver every message
//! to every subscriber exactly once; dropping a subscription unsubscribes; an oversized
//! publish fails at once; a validator's reject stops propagation; closing the host ends the
//! service.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use futures::{AsyncReadExt, AsyncWriteExt, FutureExt, StreamExt};
use lp2p_core::{PeerId, RuntimeHandle};
use lp2p_host::{Host, HostStream};
use lp2p_memory::MemoryTransport;
use lp2p_noise::Noise;
use lp2p_pubsub::{
    Acceptance, Config, Event, GossipsubConfig, Message, PeerScoreParams, PeerScoreThresholds,
    PubSub, PubsubError, Subscription, TopicScoreParams,
};
use lp2p_tcp::TcpTransport;
use lp2p_yamux::Yamux;

/// Anything a test waits for: generous, the machine may be slow and loaded.
const PATIENCE: Duration = Duration::from_secs(120);

/// After the expected messages arrived, how long we keep listening for duplicates: several
/// heartbeats, so copies travelling via gossip (IHAVE/IWANT) would have arrived.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(3);

const TOPIC: &str = "lp2p-test";

#[derive(Clone, Copy, Debug)]
enum Router {
    Gossipsub,
    Floodsub,
}

#[derive(Clone, Copy, Debug)]
enum Net {
    Tcp,
    Memory,
}

async fn host(net: Net) -> Host {
    let builder = Host::builder()
        .security(Noise::new())
        .muxer(Yamux::default());
    let builder = match net {
        Net::Tcp => builder
            .transport(TcpTransport::default())
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap()),
        Net::Memory => builder
            .transport(MemoryTransport::default())
            .listen_on("/memory/0".parse().unwrap()),
    };
    builder.build().await.unwrap()
}

fn pubsub(host: &Host, router: Router, config: Config) -> PubSub {
    match router {
        Router::Gossipsub => PubSub::gossipsub(host, config).unwrap(),
        Router::Floodsub => PubSub::floodsub(host, config).unwrap(),
    }
}

async fn connect(a: &Host, b: &Host) {
    a.connect(b.local_peer_id(), b.listen_addrs())
        .await
        .unwrap();
}

fn run<F: Future<Output = ()>>(test: F) {
    lp2p_core::runtime::block_on(async {
        RuntimeHandle::default()
            .timeout(Duration::from_secs(600), test)
            .await
            .expect("test timed out");
    });
}

/// Polls `condition` until it holds; panics with `what` after [`PATIENCE`].
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let rt = RuntimeHandle::default();
    let start = std::time::Instant::now();
    while !condition() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting until {what}");
        rt.sleep(Duration::from_millis(20)).await;
    }
}

async fn next_message(sub: &mut Subscription, what: &str) -> Message {
    RuntimeHandle::default()
        .timeout(PATIENCE, sub.next())
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .unwrap_or_else(|| panic!("subscription ended waiting for {what}"))
}

/// Reads `count` messages, then listens [`DUPLICATE_WINDOW`] longer: returns how many times
/// each payload arrived.
async fn collect(sub: &mut Subscription, count: usize, what: &str) -> HashMap<Bytes, usize> {
    let mut seen: HashMap<Bytes, usize> = HashMap::new();
    for _ in 0..count {
        let message = next_message(sub, what).await;
        *seen.entry(message.data).or_default() += 1;
    }
    RuntimeHandle::default().sleep(DUPLICATE_WINDOW).await;
    while let Some(Some(message)) = sub.next().now_or_never() {
        *seen.entry(message.data).or_default() += 1;
    }
    seen
}

fn exactly_once(seen: &HashMap<Bytes, usize>, expected: &[Bytes], who: &str) {
    for data in expected {
        assert_eq!(
            seen.get(data),
            Some(&1),
            "{who}: {data:?} not received exactly once: {seen:?}"
        );
    }
    assert_eq!(
        seen.len(),
        expected.len(),
        "{who}: unexpected messages: {seen:?}"
    );
}

/// A line a — b — c: each publishes, the other two receive each message exactly once, with
/// the right author.
async fn line_of_three(net: Net, router: Router) {
    let hosts = [host(net).await, host(net).await, host(net).await];
    let services: Vec<PubSub> = hosts
        .iter()
        .map(|h| pubsub(h, router, Config::default()))
        .collect();
    let mut subs: Vec<Subscription> = services
        .iter()
        .map(|s| s.subscribe(TOPIC).unwrap())
        .collect();
    connect(&hosts[0], &hosts[1]).await;
    connect(&hosts[2], &hosts[1]).await;
    let ids: Vec<PeerId> = hosts.iter().map(Host::local_peer_id).collect();

    wait_until("subscriptions propagated", || {
        services[1].peers(TOPIC).len() == 2
            && services[0].peers(TOPIC) == [ids[1]]
            && services[2].peers(TOPIC) == [ids[1]]
    })
    .await;
    if let Router::Gossipsub = router {
        wait_until("mesh formed", || {
            services[1].mesh_peers(TOPIC).len() == 2
                && services[0].mesh_peers(TOPIC) == [ids[1]]
                && services[2].mesh_peers(TOPIC) == [ids[1]]
        })
        .await;
    } else {
        assert!(services[1].mesh_peers(TOPIC).is_empty());
    }

    let payloads: Vec<Bytes> = (0..3)
        .map(|i| Bytes::from(format!("from host {i}")))
        .collect();
    for (service, data) in services.iter().zip(&payloads) {
        service.publish(TOPIC, data.clone()).await.unwrap();
    }
    for (i, sub) in subs.iter_mut().enumerate() {
        let expected: Vec<Bytes> = payloads
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, d)| d.clone())
            .collect();
        let seen = collect(sub, expected.len(), "line messages").await;
        exactly_once(&seen, &expected, &format!("host {i}"));
    }
    // Authors are the publishing hosts, and signatures verified (StrictSign default).
    services[0].publish(TOPIC, &b"signed"[..]).await.unwrap();
    let message = next_message(&mut subs[2], "signed message").await;
    assert_eq!(message.source, Some(ids[0]));
    assert_eq!(message.topic.as_str(), TOPIC);
    assert!(message.sequence_number.is_some());
    assert_eq!(services[2].counters().messages_invalid, 0);

    for h in &hosts {
        h.close().await;
        assert_eq!(h.runtime().live_tasks(), 0, "tasks left behind");
    }
}

#[test]
fn tcp_line_of_three_gossipsub() {
    run(line_of_three(Net::Tcp, Router::Gossipsub));
}

#[test]
fn tcp_line_of_three_floodsub() {
    run(line_of_three(Net::Tcp, Router::Floodsub));
}

/// A tiny deterministic generator for the topology (the same graph every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Twenty hosts, each dialing its ring successor and one random other host: five publishers,
/// every message reaches each of the other nineteen exactly once.
async fn twenty_hosts(net: Net, router: Router) {
    const N: usize = 20;
    let mut hosts = Vec::new();
    for _ in 0..N {
        hosts.push(host(net).await);
    }
    let services: Vec<PubSub> = hosts
        .iter()
        .map(|h| pubsub(h, router, Config::default()))
        .collect();
    let mut subs: Vec<Subscription> = services
        .iter()
        .map(|s| s.subscribe(TOPIC).unwrap())
        .collect();
    let mut rng = Lcg(7);
    let mut edges = Vec::new();
    for i in 0..N {
        edges.push((i, (i + 1) % N));
        let mut other = rng.below(N);
        while other == i || other == (i + 1) % N {
            other = rng.below(N);
        }
        edges.push((i, other));
    }
    for &(a, b) in &edges {
        if !hosts[a].is_connected(&hosts[b].local_peer_id()) {
            connect(&hosts[a], &hosts[b]).await;
        }
    }
    wait_until("every link carries subscriptions", || {
        hosts.iter().zip(&services).all(|(h, s)| {
            let peers = s.peers(TOPIC);
            h.connected_peers().iter().all(|p| peers.contains(p))
        })
    })
    .await;
    if let Router::Gossipsub = router {
        wait_until("every node has a mesh", || {
            services.iter().all(|s| !s.mesh_peers(TOPIC).is_empty())
        })
        .await;
    }

    let publishers = [0, 5, 10, 13, 19];
    let mut payloads = Vec::new();
    for (k, &p) in publishers.iter().enumerate() {
        let data = Bytes::from(format!("message {k} from host {p}"));
        services[p].publish(TOPIC, data.clone()).await.unwrap();
        payloads.push((p, data));
    }
    let mut receiving = Vec::new();
    for (i, sub) in subs.iter_mut().enumerate() {
        let expected: Vec<Bytes> = payloads
            .iter()
            .filter(|(p, _)| *p != i)
            .map(|(_, d)| d.clone())
            .collect();
        receiving.push(async move {
            let seen = collect(sub, expected.len(), "mesh messages").await;
            exactly_once(&seen, &expected, &format!("host {i}"));
        });
    }
    futures::future::join_all(receiving).await;
    for h in &hosts {
        h.close().await;
    }
}

#[test]
fn twenty_hosts_gossipsub() {
    run(twenty_hosts(Net::Memory, Router::Gossipsub));
}

#[test]
fn twenty_hosts_floodsub() {
    run(twenty_hosts(Net::Memory, Router::Floodsub));
}

#[test]
fn twenty_hosts_gossipsub_tcp() {
    run(twenty_hosts(Net::Tcp, Router::Gossipsub));
}

#[test]
fn twenty_hosts_floodsub_tcp() {
    run(twenty_hosts(Net::Tcp, Router::Floodsub));
}

#[test]
fn events_and_deliveries_name_the_peers() {
    run(async {
        let (a, b) = (host(Net::Memory).await, host(Net::Memory).await);
        let (pa, pb) = (
            pubsub(&a, Router::Gossipsub, Config::default()),
            pubsub(&b, Router::Gossipsub, Config::default()),
        );
        let mut events = pa.events();
        let _keep = pa.subscribe(TOPIC).unwrap();
        let mut deliveries = pb.subscribe(TOPIC).unwrap().deliveries();
        connect(&a, &b).await;
        let (ida, idb) = (a.local_peer_id(), b.local_peer_id());
        let (mut subscribed, mut grafted) = (false, false);
        while !(subscribed && grafted) {
            let event = RuntimeHandle::default()
                .timeout(PATIENCE, events.next())
                .await
                .expect("events in time")
                .expect("event stream alive");
            match event {
                Event::Subscribed { peer, topic } if peer == idb && topic.as_str() == TOPIC => {
                    subscribed = true;
                }
                Event::Grafted { peer, topic } if peer == idb && topic.as_str() == TOPIC => {
                    grafted = true;
                }
                _ => {}
            }
        }
        let id = pa.publish(TOPIC, &b"with details"[..]).await.unwrap();
        let delivery = RuntimeHandle::default()
            .timeout(PATIENCE, deliveries.next())
            .await
            .expect("delivery in time")
            .expect("subscription alive");
        assert_eq!(delivery.message_id, id);
        assert_eq!(delivery.propagation_source, ida);
        assert_eq!(delivery.message.source, Some(ida));
        assert_eq!(pb.dropped_deliveries(), 0);
        a.close().await;
        b.close().await;
    });
}

/// The link follows the connections: when the connection carrying our stream closes and
/// another remains, the link moves to it; when the last one closes the peer goes, and a new
/// connection brings it back. Messages flow after each step.
#[test]
fn links_follow_connections() {
    run(async {
        let (a, b) = (host(Net::Memory).await, host(Net::Memory).await);
        let (pa, pb) = (
            pubsub(&a, Router::Floodsub, Config::default()),
            pubsub(&b, Router::Floodsub, Config::default()),
        );
        let mut sub = pb.subscribe(TOPIC).unwrap();
        let idb = b.local_peer_id();
        connect(&a, &b).await;
        wait_until("a sees b subscribed", || pa.peers(TOPIC) == [idb]).await;

        // A second connection, then close the first (the one our streams run on).
        let mut addr = b.listen_addrs()[0].clone();
        addr.push(lp2p_core::Protocol::P2p(idb));
        let second = a.swarm().dial_new(addr).await.unwrap();
        let first = a
            .connections(&idb)
            .into_iter()
            .find(|c| c.id() != second.id())
            .unwrap();
        a.swarm().close_connection(first.id()).await;
        wait_until("only the second connection is left", || {
            a.connections(&idb).len() == 1
        })
        .await;
        wait_until("the link moved", || pa.peers(TOPIC) == [idb]).await;
        let mut step = 0;
        loop {
            // The link may still be re-forming: publish until one arrives.
            pa.publish(TOPIC, format!("after the move {step}").into_bytes())
                .await
                .unwrap();
            step += 1;
            let got = RuntimeHandle::default()
                .timeout(Duration::from_secs(2), sub.next())
                .await;
            if let Ok(Some(message)) = got {
                assert!(message.data.starts_with(b"after the move"));
                break;
            }
            assert!(step < 60, "no message after the link moved");
        }

        // All connections gone: b is no longer a peer; a new connection brings it back.
        a.disconnect(&idb).await;
        wait_until("b gone", || pa.connected_peers().is_empty()).await;
        connect(&a, &b).await;
        wait_until("b back", || pa.peers(TOPIC) == [idb]).await;
        pa.publish(TOPIC, &b"after reconnecting"[..]).await.unwrap();
        loop {
            let message = next_message(&mut sub, "message after reconnecting").await;
            if &message.data[..] == b"after reconnecting" {
                break;
            }
        }
        a.close().await;
        b.close().await;
    });
}

/// A peer that announces its subscriptions once, on its first connection, and then moves its
/// stream to a second connection (as rust-libp2p does: it keeps per-peer state across
/// connections and does not announce again) stays subscribed when the first connection
/// closes: our link moves to the remaining connection without forgetting the peer's state.
#[test]
fn subscriptions_survive_the_link_moving() {
    run(async {
        const MESHSUB: &str = "/meshsub/1.1.0";
        let (a, x) = (host(Net::Memory).await, host(Net::Memory).await);
        let pa = pubsub(&a, Router::Gossipsub, Config::default());
        // x takes a's streams by hand and counts them.
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = accepted.clone();
        x.set_stream_handler(MESHSUB, move |mut stream: HostStream| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                let mut sink = Vec::new();
                let _ = stream.read_to_end(&mut sink).await;
            }
        });
        let ida = a.local_peer_id();
        let idx = x.local_peer_id();
        connect(&x, &a).await;
        wait_until("a linked x", || pa.connected_peers() == [idx]).await;
        let first = x.connection_to(&ida).unwrap();

        // The announcement, once, on the first connection.
        let mut stream = x.new_stream_on(&first, [MESHSUB]).await.unwrap();
        let mut frame = Vec::new();
        lp2p_core::framing::encode_frame(&subscribe_rpc(TOPIC), &mut frame);
        stream.write_all(&frame).await.unwrap();
        stream.flush().await.unwrap();
        wait_until("x subscribed", || pa.peers(TOPIC) == [idx]).await;

        // A second connection carries x's new stream (no announcement on it); then the first
        // connection, which carries a's stream to x, closes.
        let mut addr = a.listen_addrs()[0].clone();
        addr.push(lp2p_core::Protocol::P2p(ida));
        let second = x.swarm().dial_new(addr).await.unwrap();
        let mut moved = x.new_stream_on(&second, [MESHSUB]).await.unwrap();
        moved.flush().await.unwrap();
        let before = accepted.load(std::sync::atomic::Ordering::SeqCst);
        x.swarm().close_connection(first.id()).await;
        wait_until("a re-opened its stream to x", || {
            accepted.load(std::sync::atomic::Ordering::SeqCst) > before
        })
        .await;
        assert_eq!(a.connections(&idx).len(), 1);
        assert_eq!(pa.connected_peers(), [idx]);
        assert_eq!(pa.peers(TOPIC), [idx], "x's subscription was forgotten");
        drop((stream, moved));
        a.close().await;
        x.close().await;
    });
}

/// Gossipsub with scoring (`PubSub::gossipsub_with`): a peer whose messages the validator
/// rejects loses score (P₄) until it is graylisted; the event comes out of `events()` and its
/// later RPCs are dropped unread.
#[test]
fn a_peer_publishing_invalid_messages_is_graylisted() {
    run(async {
        let (a, b) = (host(Net::Memory).await, host(Net::Memory).await);
        let mut params = PeerScoreParams::default();
        params.topics.insert(
            TOPIC.into(),
            TopicScoreParams {
                topic_weight: 1.0,
                time_in_mesh_weight: 0.0,
                first_message_deliveries_weight: 1.0,
                first_message_deliveries_cap: 100.0,
                invalid_message_deliveries_weight: -10.0,
                invalid_message_deliveries_decay: 0.9,
                ..TopicScoreParams::default()
            },
        );
        let scored = GossipsubConfig {
            score: Some((params, PeerScoreThresholds::default())),
            ..GossipsubConfig::default()
        };
        let pa = pubsub(&a, Router::Gossipsub, Config::default());
        let pb = PubSub::gossipsub_with(&b, Config::default(), scored).unwrap();
        pb.set_validator(TOPIC, |_: &PeerId, message: &Message| {
            if message.data.starts_with(b"spam") {
                Acceptance::Reject
            } else {
                Acceptance::Accept
            }
        });
        let mut events = pb.events();
        let _sa = pa.subscribe(TOPIC).unwrap();
        let _sb = pb.subscribe(TOPIC).unwrap();
        connect(&a, &b).await;
        let ida = a.local_peer_id();
        wait_until("b sees a subscribed", || pb.peers(TOPIC) == [ida]).await;
        assert_eq!(pb.peer_score(&ida), Some(0.0));
        for i in 0..20 {
            pa.publish(TOPIC, format!("spam {i}").into_bytes())
                .await
                .unwrap();
        }
        loop {
            let event = RuntimeHandle::default()
                .timeout(PATIENCE, events.next())
                .await
                .expect("graylisted in time")
                .expect("event stream alive");
            if let Event::Graylisted { peer, score } = event {
                assert_eq!(peer, ida);
                assert!(score < PeerScoreThresholds::default().graylist_threshold);
                break;
            }
        }
        assert!(pb.peer_score(&ida).unwrap() < 0.0);
        pa.publish(TOPIC, &b"honest now"[..]).await.unwrap();
        wait_until("later RPCs dropped unread", || {
            pb.counters().rpcs_graylisted > 0
        })
        .await;
        a.close().await;
        b.close().await;
    });
}

/// A subscriber that never reads loses messages past its buffer (counted); another
/// subscription to the same topic, and routing, are not held up by it.
#[test]
fn a_stalled_subscriber_loses_only_its_own_messages() {
    run(async {
        let (a, b) = (host(Net::Memory).await, host(Net::Memory).await);
        let (pa, pb) = (
            pubsub(&a, Router::Gossipsub, Config::default()),
            pubsub(&b, Router::Gossipsub, Config::default()),
        );
        let _stalled = pb.subscribe(TOPIC).unwrap();
        let mut reading = pb.subscribe(TOPIC).unwrap();
        connect(&a, &b).await;
        wait_until("a sees b subscribed", || {
            pa.peers(TOPIC) == [b.local_peer_id()]
        })
        .await;
        let total = lp2p_pubsub::DEFAULT_SUBSCRIPTION_BUFFER + 200;
        let mut received = 0;
        for chunk in 0..total / 100 {
            for i in 0..100 {
                pa.publish(TOPIC, format!("message {chunk}/{i}").into_bytes())
                    .await
                    .unwrap();
            }
            for _ in 0..100 {
                next_message(&mut reading, "messages for the reading subscriber").await;
                received += 1;
            }
        }
        assert_eq!(received, total / 100 * 100);
        assert!(
            pb.dropped_deliveries() >= 100,
            "dropped {}",
            pb.dropped_deliveries()
        );
        a.close().await;
        b.close().await;
    });
}

/// Makes `x` a floodsub peer of `a` by hand: `x` accepts (and drains) `a`'s stream, so `a`
/// links it, and `x` can then write raw frames to `a` with [`send_by_hand`].
async fn link_by_hand(a: &Host, pa: &PubSub, x: &Host) {
    x.set_stream_handler(
        lp2p_pubsub::FLOODSUB_PROTOCOL,
        |mut stream: HostStream| async move {
            let mut sink = Vec::new();
            let _ = stream.read_to_end(&mut sink).await;
        },
    );
    connect(x, a).await;
    wait_until("a linked x", || pa.connected_peers() == [x.local_peer_id()]).await;
}

/// Opens a floodsub stream from `x` to `a` and writes `bytes` on it as they are.
async fn send_by_hand(x: &Host, a: &Host, bytes: &[u8]) -> HostStream {
    let mut stream = x
        .new_stream(&a.local_peer_id(), [lp2p_pubsub::FLOODSUB_PROTOCOL])
        .await
        .unwrap();
    stream.write_all(bytes).await.unwrap();
    stream.flush().await.unwrap();
    stream
}

/// Waits until `stream` ends or errors: the remote reset it.
async fn assert_reset(stream: &mut HostStream) {
    let mut buf = [0u8; 16];
    let read = RuntimeHandle::default()
        .timeout(PATIENCE, stream.read(&mut buf))
        .await
        .expect("reset in time");
    assert!(matches!(read, Ok(0) | Err(_)), "stream not reset: {read:?}");
}

/// A peer that speaks the protocol but sends garbage: a frame announcing more than the
/// maximum RPC size, then a frame that is not an RPC. Each resets that inbound stream only;
/// the peer stays linked and its later valid traffic still gets through.
#[test]
fn bad_frames_reset_the_stream_only() {
    run(async {
        let (a, x) = (host(Net::Memory).await, host(Net::Memory).await);
        let config = Config {
            max_transmit_size: 4096,
            max_send_queue_bytes: 1024 * 1024,
            ..Config::default()
        };
        let pa = pubsub(&a, Router::Floodsub, config);
        link_by_hand(&a, &pa, &x).await;

        // A length prefix of 1 MiB, over a's 4 KiB limit: reset before any body is read.
        let mut bytes = Vec::new();
        lp2p_core::varint::encode_into(1024 * 1024, &mut bytes);
        let mut stream = send_by_hand(&x, &a, &bytes).await;
        assert_reset(&mut stream).await;

        // Not an RPC: counted as malformed, stream reset.
        let mut bytes = Vec::new();
        lp2p_core::framing::encode_frame(&[0xff, 0xff, 0xff], &mut bytes);
        // Kept open (not dropped) until the end, as a peer would.
        let _kept = send_by_hand(&x, &a, &bytes).await;
        wait_until("malformed RPC counted", || {
            pa.counters().rpcs_malformed == 1
        })
        .await;

        // Still linked; a valid subscription on a new stream is taken.
        assert_eq!(pa.connected_peers(), [x.local_peer_id()]);
        let mut bytes = Vec::new();
        lp2p_core::framing::encode_frame(&subscribe_rpc(TOPIC), &mut bytes);
        let _kept = send_by_hand(&x, &a, &bytes).await;
        wait_until("x subscribed", || pa.peers(TOPIC) == [x.local_peer_id()]).await;
        a.close().await;
        x.close().await;
    });
}

/// Inbound RPCs reserve their announced length from the host's resource manager (pubsub's
/// service scope) before they are read: one over the budget resets the stream, is counted by
/// pubsub and by the manager, and the peer's later small RPCs still get through; everything
/// reserved comes back.
#[test]
fn an_rpc_over_the_memory_budget_is_refused_before_it_is_read() {
    run(async {
        let manager = lp2p_rcmgr::ResourceManager::builder()
            .system_memory(64 << 20)
            .peer_memory(16 << 20)
            .connection_memory(16 << 20)
            .service_memory(2048)
            .build()
            .unwrap();
        let a = Host::builder()
            .transport(MemoryTransport::default())
            .listen_on("/memory/0".parse().unwrap())
            .security(Noise::new())
            .muxer(Yamux::default())
            .resource_manager(manager.clone())
            .build()
            .await
            .unwrap();
        let x = host(Net::Memory).await;
        let pa = pubsub(&a, Router::Floodsub, Config::default());
        link_by_hand(&a, &pa, &x).await;

        // 4 KiB announced, well under the 1 MiB RPC maximum but over pubsub's 2 KiB budget.
        let mut bytes = Vec::new();
        lp2p_core::varint::encode_into(4096, &mut bytes);
        let mut stream = send_by_hand(&x, &a, &bytes).await;
        assert_reset(&mut stream).await;
        wait_until("the refusal counted", || {
            pa.counters().rpcs_refused_for_memory == 1
        })
        .await;
        assert!(manager.stats().denied(lp2p_rcmgr::Scope::Service) >= 1);

        // A small RPC fits: x's subscription is taken.
        let mut bytes = Vec::new();
        lp2p_core::framing::encode_frame(&subscribe_rpc(TOPIC), &mut bytes);
        let _kept = send_by_hand(&x, &a, &bytes).await;
        wait_until("x subscribed", || pa.peers(TOPIC) == [x.local_peer_id()]).await;

        // The send queue reserves too: a 4 KiB message for x does not fit in 2 KiB.
        pa.publish(TOPIC, vec![7u8; 4096]).await.unwrap();
        assert_eq!(pa.counters().send_queue_refused_for_memory, 1);
        wait_until("every reservation returned", || {
            manager.stats().service_memory.get("pubsub").copied() == Some(0)
        })
        .await;
        a.close().await;
        x.close().await;
    });
}

/// The protobuf of `RPC { subscriptions: [SubOpts { subscribe: true, topicid }] }`.
fn subscribe_rpc(topic: &str) -> Vec<u8> {
    let mut sub_opts = vec![0x08, 0x01, 0x12, u8::try_from(topic.len()).unwrap()];
    sub_opts.extend_from_slice(topic.as_bytes());
    let mut rpc = vec![0x0a, u8::try_from(sub_opts.len()).unwrap()];
    rpc.extend_from_slice(&sub_opts);
    rpc
}

#[test]
fn dropping_the_last_subscription_unsubscribes() {
    run(async {
        let (a, b) = (host(Net::Memory).await, host(Net::Memory).await);
        let (pa, pb) = (
            pubsub(&a, Router::Gossipsub, Config::default()),
            pubsub(&b, Router::Gossipsub, Config::default()),
        );
        let first = pb.subscribe(TOPIC).unwrap();
        let mut second = pb.subscribe(TOPIC).unwrap();
        assert_eq!(second.topic().as_str(), TOPIC);
        connect(&a, &b).await;
        wait_until("a sees b subscribed", || {
            pa.peers(TOPIC) == [b.local_peer_id()]
        })
        .await;

        // One of two subscriptions dropped: still subscribed, the other still receives.
        drop(first);
        assert_eq!(pb.topics(), [TOPIC.to_owned()]);
        pa.publish(TOPIC, &b"still here"[..]).await.unwrap();
        let message = next_message(&mut second, "message after the first drop").await;
        assert_eq!(&message.data[..], b"still here");
        assert_eq!(pa.peers(TOPIC), [b.local_peer_id()]);

        drop(second);
        assert!(pb.topics().is_empty());
        wait_until("a sees b unsubscribed", || pa.peers(TOPIC).is_empty()).await;
        a.close().await;
        b.close().await;
    });
}

#[test]
fn oversized_publish_fails_at_once() {
    run(async {
        let a = host(Net::Memory).await;
        let config = Config {
            max_transmit_size: 1024,
            max_send_queue_bytes: 1024 * 1024,
            ..Config::default()
        };
        let pa = pubsub(&a, Router::Gossipsub, config);
        // The error is there before any await.
        let err = pa.publish(TOPIC, vec![7u8; 2000]).into_inner().unwrap_err();
        match err {
            PubsubError::MessageTooLarge {
                size, max, payload, ..
            } => {
                assert_eq!(max, 1024);
                assert_eq!(payload, 2000);
                assert!(size > 2000);
            }
            other => panic!("expected MessageTooLarge, got {other}"),
        }
        // A message that fits still goes out.
        pa.publish(TOPIC, vec![7u8; 100]).await.unwrap();
        a.close().await;
    });
}

/// a — b — c; b's validator rejects payloads starting with "bad": c never sees them (b does
/// not forward them), b's own subscribers do not either, and good messages flow.
async fn reject_stops_propagation(asynchronous: bool) {
    let hosts = [
        host(Net::Memory).await,
        host(Net::Memory).await,
        host(Net::Memory).await,
    ];
    let services: Vec<PubSub> = hosts
        .iter()
        .map(|h| pubsub(h, Router::Gossipsub, Config::default()))
        .collect();
    if asynchronous {
        services[1].set_async_validator(TOPIC, |_peer: PeerId, message: Message| async move {
            RuntimeHandle::default()
                .sleep(Duration::from_millis(5))
                .await;
            if message.data.starts_with(b"bad") {
                Acceptance::Reject
            } else {
                Acceptance::Accept
            }
        });
    } else {
        services[1].set_validator(TOPIC, |_peer: &PeerId, message: &Message| {
            if message.data.starts_with(b"bad") {
                Acceptance::Reject
            } else {
                Acceptance::Accept
            }
        });
    }
    let mut subs: Vec<Subscription> = services
        .iter()
        .map(|s| s.subscribe(TOPIC).unwrap())
        .collect();
    connect(&hosts[0], &hosts[1]).await;
    connect(&hosts[1], &hosts[2]).await;
    let (b, c) = (hosts[1].local_peer_id(), hosts[2].local_peer_id());
    wait_until("mesh formed", || {
        services[0].mesh_peers(TOPIC) == [b] && services[2].mesh_peers(TOPIC) == [b]
    })
    .await;

    services[0].publish(TOPIC, &b"bad one"[..]).await.unwrap();
    services[0].publish(TOPIC, &b"good one"[..]).await.unwrap();
    services[0].publish(TOPIC, &b"bad two"[..]).await.unwrap();
    services[0].publish(TOPIC, &b"good two"[..]).await.unwrap();
    let good = [
        Bytes::from_static(b"good one"),
        Bytes::from_static(b"good two"),
    ];
    for (who, sub) in ["b", "c"].into_iter().zip(subs.iter_mut().skip(1)) {
        let seen = collect(sub, 2, "good messages").await;
        exactly_once(&seen, &good, who);
    }
    assert_eq!(services[1].counters().messages_rejected, 2);
    assert_eq!(services[2].counters().messages_received, 2);
    assert!(services[2].peers(TOPIC).contains(&b) && !services[0].peers(TOPIC).contains(&c));
    for h in &hosts {
        h.close().await;
    }
}

#[test]
fn sync_validator_reject_stops_propagation() {
    run(reject_stops_propagation(false));
}

#[test]
fn async_validator_reject_stops_propagation() {
    run(reject_stops_propagation(true));
}

#[test]
fn closing_the_host_ends_subscriptions() {
    run(async {
        let (a, b) = (host(Net::Memory).await, host(Net::Memory).await);
        let pa = pubsub(&a, Router::Floodsub, Config::default());
        let _pb = pubsub(&b, Router::Floodsub, Config::default());
        let mut sub = pa.subscribe(TOPIC).unwrap();
        connect(&a, &b).await;
        wait_until("peers linked", || {
            pa.connected_peers() == [b.local_peer_id()]
        })
        .await;
        a.close().await;
        // Every task of the service (driver, readers, writers) ended with the host.
        assert_eq!(a.runtime().live_tasks(), 0, "tasks left behind");
        let end = RuntimeHandle::default().timeout(PATIENCE, sub.next()).await;
        assert!(matches!(end, Ok(None)), "subscription did not end");
        assert!(matches!(pa.subscribe(TOPIC), Err(PubsubError::Closed)));
        assert!(pa.connected_peers().is_empty());
        b.close().await;
    });
}

#[test]
fn service_started_after_connecting_links_existing_peers() {
    run(async {
        let (a, b) = (host(Net::Tcp).await, host(Net::Tcp).await);
        connect(&a, &b).await;
        let pa = pubsub(&a, Router::Gossipsub, Config::default());
        let pb = pubsub(&b, Router::Gossipsub, Config::default());
        let mut sub = pb.subscribe(TOPIC).unwrap();
        wait_until("a sees b subscribed", || {
            pa.peers(TOPIC) == [b.local_peer_id()]
        })
        .await;
        // a is not subscribed: the publish goes out through fanout.
        pa.publish(TOPIC, &b"fanout"[..]).await.unwrap();
        let message = next_message(&mut sub, "fanout message").await;
        assert_eq!(&message.data[..], b"fanout");
        a.close().await;
        b.close().await;
    });
}

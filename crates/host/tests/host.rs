//! Two or more hosts in one process, over TCP on 127.0.0.1 (real runtime) and over the
//! memory transport in virtual time (lp2p-testkit: idle timeouts, upgrade timeouts and
//! redial backoffs pass without real waiting, and their timing is asserted exactly).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use lp2p_core::runtime::block_on;
use lp2p_core::{DialOpts, Keypair, Multiaddr, PeerId, RawTransport, Resource, RuntimeHandle};
use lp2p_host::{
    DEFAULT_NEGOTIATION_TIMEOUT, Host, HostBuilder, HostConfig, HostError, HostEvent, HostStream,
    ResourceManager, SwarmConfig, SwarmError,
    rcmgr::{CountLimits, Counts, Scope},
};
use lp2p_memory::MemoryTransport;
use lp2p_mplex::Mplex;
use lp2p_noise::Noise;
use lp2p_plaintext::Plaintext;
use lp2p_swarm::{LimitKind, Stage};
use lp2p_tcp::TcpTransport;
use lp2p_testkit::{SimHandle, run, wait_until};
use lp2p_yamux::Yamux;

/// For the tests over TCP. Generous: CI machines are slow and loaded.
const LIMIT: Duration = Duration::from_secs(120);

fn ma(s: &str) -> Multiaddr {
    s.parse().unwrap()
}

#[derive(Clone, Copy)]
enum Stack {
    NoiseYamux,
    NoiseMplex,
    PlaintextYamux,
}

fn tcp_builder(stack: Stack) -> HostBuilder {
    let b = Host::builder().transport(TcpTransport::default());
    match stack {
        Stack::NoiseYamux => b.security(Noise::new()).muxer(Yamux::default()),
        Stack::NoiseMplex => b.security(Noise::new()).muxer(Mplex::default()),
        Stack::PlaintextYamux => b.security(Plaintext::new()).muxer(Yamux::default()),
    }
}

/// A host over the memory transport with noise and yamux, on the simulation's runtime.
fn memory_builder(sim: &SimHandle) -> HostBuilder {
    Host::builder()
        .runtime(sim.runtime().clone())
        .keypair(sim.keypair())
        .transport(MemoryTransport::default())
        .security(Noise::new())
        .muxer(Yamux::default())
}

async fn echo(mut stream: HostStream) {
    let mut buf = Vec::new();
    if stream.read_to_end(&mut buf).await.is_ok() {
        let _ = stream.write_all(&buf).await;
        let _ = stream.close().await;
    }
}

/// A host over the memory transport, listening, with the echo handler.
async fn echo_server(sim: &SimHandle) -> Host {
    let server = memory_builder(sim)
        .listen_on(ma("/memory/0"))
        .build()
        .await
        .unwrap();
    server.set_stream_handler("/echo/1.0.0", echo);
    server
}

async fn echo_roundtrip(client: &Host, server: PeerId, payload: &[u8]) -> Vec<u8> {
    let mut s = client.new_stream(&server, ["/echo/1.0.0"]).await.unwrap();
    assert_eq!(s.protocol(), "/echo/1.0.0");
    assert_eq!(s.peer(), server);
    s.write_all(payload).await.unwrap();
    s.close().await.unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    got
}

/// For the tests over TCP, on the real runtime (virtual time cannot wait for sockets).
fn run_real<F: std::future::Future>(f: F) -> F::Output {
    let rt = RuntimeHandle::default();
    block_on(async move { rt.timeout(LIMIT, f).await.expect("test timed out") })
}

fn echo_over_tcp(stack: Stack) {
    run_real(async {
        let server = tcp_builder(stack)
            .listen_on(ma("/ip4/127.0.0.1/tcp/0"))
            .build()
            .await
            .unwrap();
        server.set_stream_handler("/echo/1.0.0", echo);
        let client = tcp_builder(stack).build().await.unwrap();
        let conn = client
            .connect(server.local_peer_id(), server.listen_addrs())
            .await
            .unwrap();
        let (security, muxer) = match stack {
            Stack::NoiseYamux => ("/noise", "/yamux/1.0.0"),
            Stack::NoiseMplex => ("/noise", "/mplex/6.7.0"),
            Stack::PlaintextYamux => ("/plaintext/2.0.0", "/yamux/1.0.0"),
        };
        assert_eq!(conn.security_protocol(), security);
        assert_eq!(conn.muxer_protocol(), muxer);

        let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        assert_eq!(
            echo_roundtrip(&client, server.local_peer_id(), &payload).await,
            payload
        );
        assert_eq!(
            echo_roundtrip(&client, server.local_peer_id(), b"again").await,
            b"again"
        );
        // The second stream reused the connection.
        assert_eq!(client.swarm().connections(&server.local_peer_id()).len(), 1);

        client.close().await;
        server.close().await;
        assert_eq!(client.runtime().live_tasks(), 0);
        assert_eq!(server.runtime().live_tasks(), 0);
    });
}

#[test]
fn echo_tcp_noise_yamux() {
    echo_over_tcp(Stack::NoiseYamux);
}

#[test]
fn echo_tcp_noise_mplex() {
    echo_over_tcp(Stack::NoiseMplex);
}

#[test]
fn echo_tcp_plaintext_yamux() {
    echo_over_tcp(Stack::PlaintextYamux);
}

#[test]
fn two_hundred_concurrent_streams_on_one_connection() {
    run_real(async {
        let server = tcp_builder(Stack::NoiseYamux)
            .listen_on(ma("/ip4/127.0.0.1/tcp/0"))
            .build()
            .await
            .unwrap();
        server.set_stream_handler("/echo/1.0.0", echo);
        let client = tcp_builder(Stack::NoiseYamux).build().await.unwrap();
        let peer = server.local_peer_id();
        client.connect(peer, server.listen_addrs()).await.unwrap();
        let tasks = (0..200u32).map(|i| {
            let client = client.clone();
            async move {
                let payload: Vec<u8> = (0..8192u32)
                    .map(|j| (i.wrapping_mul(31).wrapping_add(j) % 251) as u8)
                    .collect();
                assert_eq!(echo_roundtrip(&client, peer, &payload).await, payload);
            }
        });
        futures::future::join_all(tasks).await;
        assert_eq!(
            client.swarm().connections(&peer).len(),
            1,
            "all streams share one connection"
        );
        client.close().await;
        server.close().await;
    });
}

#[test]
fn unsupported_protocol_names_the_protocols_offered_and_keeps_the_connection() {
    run(|sim| async move {
        let server = echo_server(&sim).await;
        let client = memory_builder(&sim).build().await.unwrap();
        let peer = server.local_peer_id();
        client.connect(peer, server.listen_addrs()).await.unwrap();
        let err = client
            .new_stream(&peer, ["/nope/1.0.0", "/nope/2.0.0"])
            .await
            .unwrap_err();
        match &err {
            HostError::ProtocolNotSupported { peer: p, offered } => {
                assert_eq!(*p, peer);
                assert_eq!(offered, &["/nope/1.0.0", "/nope/2.0.0"]);
            }
            other => panic!("unexpected error: {other}"),
        }
        let text = err.to_string();
        assert!(
            text.contains("/nope/1.0.0") && text.contains("/nope/2.0.0"),
            "{text}"
        );
        // The remote answered na; the connection is still up and serves other protocols.
        assert!(client.swarm().is_connected(&peer));
        assert_eq!(
            echo_roundtrip(&client, peer, b"still here").await,
            b"still here"
        );
        // Falling back: the first supported protocol of the list wins.
        let s = client
            .new_stream(&peer, ["/nope/1.0.0", "/echo/1.0.0"])
            .await
            .unwrap();
        assert_eq!(s.protocol(), "/echo/1.0.0");
        client.close().await;
        server.close().await;
    });
}

/// `new_stream_on_lazily` does not wait for the peer's answer even when identify has not
/// announced the protocol: the data travels behind the proposal. A refusal fails the first
/// read, and the connection stays.
#[test]
fn a_lazy_stream_needs_no_announcement_and_a_refusal_fails_its_first_read() {
    run(|sim| async move {
        let server = echo_server(&sim).await;
        let client = memory_builder(&sim).build().await.unwrap();
        let peer = server.local_peer_id();
        let conn = client.connect(peer, server.listen_addrs()).await.unwrap();
        // No identify here: the peerstore does not know the server speaks echo.
        assert!(
            client
                .swarm()
                .peerstore()
                .supports_protocols(&peer, &["/echo/1.0.0"])
                .is_empty()
        );
        let mut s = client
            .new_stream_on_lazily(&conn, "/echo/1.0.0")
            .await
            .unwrap();
        s.write_all(b"lazy").await.unwrap();
        s.close().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"lazy");

        let mut refused = client
            .new_stream_on_lazily(&conn, "/nope/1.0.0")
            .await
            .unwrap();
        let _ = refused.write_all(b"hello?").await;
        let mut buf = [0u8; 8];
        let err = refused.read(&mut buf).await.unwrap_err();
        assert!(err.to_string().contains("no protocol in common"), "{err}");
        assert!(client.swarm().is_connected(&peer));
        client.close().await;
        server.close().await;
    });
}

#[test]
fn wrong_peer_id_fails_with_a_mismatch() {
    run_real(async {
        let server = tcp_builder(Stack::NoiseYamux)
            .listen_on(ma("/ip4/127.0.0.1/tcp/0"))
            .build()
            .await
            .unwrap();
        let client = tcp_builder(Stack::NoiseYamux).build().await.unwrap();
        let impostor = PeerId::random();
        let err = client
            .connect(impostor, server.listen_addrs())
            .await
            .unwrap_err();
        let HostError::Swarm(swarm_err) = &err else {
            panic!("unexpected error: {err}")
        };
        let (expected, actual) = swarm_err.peer_id_mismatch().expect("a peer id mismatch");
        assert_eq!(expected, impostor);
        assert_eq!(actual, server.local_peer_id());
        assert!(err.to_string().contains("mismatch"), "{err}");
        assert!(!client.swarm().is_connected(&server.local_peer_id()));

        // The same holds through an address naming the wrong peer.
        let addr = server.listen_addrs()[0]
            .clone()
            .with(lp2p_core::Protocol::P2p(impostor));
        let err = client.connect_addr(addr).await.unwrap_err();
        assert!(
            matches!(&err, HostError::Swarm(e) if e.peer_id_mismatch().is_some()),
            "{err}"
        );
        client.close().await;
        server.close().await;
    });
}

#[test]
fn dial_with_two_dead_addresses_of_three_succeeds() {
    run_real(async {
        let server = tcp_builder(Stack::NoiseYamux)
            .listen_on(ma("/ip4/127.0.0.1/tcp/0"))
            .build()
            .await
            .unwrap();
        server.set_stream_handler("/echo/1.0.0", echo);
        let dead = |_| {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            ma(&format!("/ip4/127.0.0.1/tcp/{port}"))
        };
        let (dead1, dead2) = (dead(1), dead(2));
        let client = tcp_builder(Stack::NoiseYamux).build().await.unwrap();
        let addrs = vec![
            dead1.clone(),
            dead2.clone(),
            server.listen_addrs()[0].clone(),
        ];
        let conn = client.connect(server.local_peer_id(), addrs).await.unwrap();
        assert_eq!(conn.peer(), server.local_peer_id());
        assert_eq!(
            echo_roundtrip(&client, server.local_peer_id(), b"hi").await,
            b"hi"
        );
        // The dead addresses are in backoff now, and the backoff can be cleared.
        assert!(client.swarm().dial_backoff(&dead1).is_some());
        assert!(client.swarm().dial_backoff(&dead2).is_some());
        client.swarm().clear_dial_backoff(None);
        assert!(client.swarm().dial_backoff(&dead1).is_none());
        client.close().await;
        server.close().await;
    });
}

#[test]
fn a_failed_dial_lists_every_address_and_stage() {
    run_real(async {
        let client = tcp_builder(Stack::NoiseYamux).build().await.unwrap();
        let peer = PeerId::random();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dead = ma(&format!("/ip4/127.0.0.1/tcp/{port}"));
        let udp = ma("/ip4/127.0.0.1/udp/4001/quic-v1");
        let err = client
            .connect(peer, vec![dead.clone(), udp.clone()])
            .await
            .unwrap_err();
        let HostError::Swarm(SwarmError::DialFailed { peer: p, attempts }) = &err else {
            panic!("unexpected error: {err}")
        };
        assert_eq!(*p, Some(peer));
        let stage_of = |a: &Multiaddr| attempts.iter().find(|x| &x.addr == a).map(|x| x.stage);
        assert_eq!(stage_of(&dead), Some(Stage::Transport));
        assert_eq!(stage_of(&udp), Some(Stage::UnsupportedAddress));
        let text = err.to_string();
        assert!(
            text.contains(&dead.to_string()) && text.contains(&udp.to_string()),
            "{text}"
        );

        // Dialing again right away finds the dead address in backoff, and says so.
        let err = client.connect(peer, vec![dead.clone()]).await.unwrap_err();
        assert!(err.to_string().contains("backoff"), "{err}");

        // A peer with no address at all.
        let err = client
            .new_stream(&PeerId::random(), ["/x/1"])
            .await
            .unwrap_err();
        assert!(
            matches!(err, HostError::Swarm(SwarmError::NoAddresses(_))),
            "{err}"
        );
        client.close().await;
    });
}

#[test]
fn no_common_security_or_muxer_is_an_upgrade_error() {
    run_real(async {
        // Security: noise only vs plaintext only.
        let server = Host::builder()
            .transport(TcpTransport::default())
            .security(Noise::new())
            .muxer(Yamux::default())
            .listen_on(ma("/ip4/127.0.0.1/tcp/0"))
            .build()
            .await
            .unwrap();
        let client = tcp_builder(Stack::PlaintextYamux).build().await.unwrap();
        let err = client
            .connect(server.local_peer_id(), server.listen_addrs())
            .await
            .unwrap_err();
        let HostError::Swarm(e) = &err else {
            panic!("{err}")
        };
        assert_eq!(e.attempts()[0].stage, Stage::SecurityNegotiation, "{err}");
        assert!(err.to_string().contains("/plaintext/2.0.0"), "{err}");

        // Muxer: yamux only vs mplex only.
        let client = tcp_builder(Stack::NoiseMplex).build().await.unwrap();
        let err = client
            .connect(server.local_peer_id(), server.listen_addrs())
            .await
            .unwrap_err();
        let HostError::Swarm(e) = &err else {
            panic!("{err}")
        };
        assert_eq!(e.attempts()[0].stage, Stage::MuxerNegotiation, "{err}");
        client.close().await;
        server.close().await;
    });
}

#[test]
fn streams_that_never_negotiate_get_a_share_of_slots_and_lose_them_with_their_connection() {
    run(|sim| async move {
        let server = memory_builder(&sim)
            .config(HostConfig {
                max_negotiating_streams: 40,
                max_negotiating_streams_per_peer: 10,
                ..HostConfig::default()
            })
            .listen_on(ma("/memory/0"))
            .build()
            .await
            .unwrap();
        server.set_stream_handler("/echo/1.0.0", echo);
        let peer = server.local_peer_id();
        // The attacker opens 60 streams that send the multistream header and then nothing.
        // Past half the pool (20) it is over its share (10): the rest are reset.
        let attacker = memory_builder(&sim).build().await.unwrap();
        let conn = attacker.connect(peer, server.listen_addrs()).await.unwrap();
        let mut held = Vec::new();
        for _ in 0..60 {
            let mut stream = conn.open_stream().await.unwrap();
            stream.write_all(b"\x13/multistream/1.0.0\n").await.unwrap();
            stream.flush().await.unwrap();
            held.push(stream);
        }
        wait_until(sim.runtime(), || {
            server.stats().refused_negotiating_peer == 40
        })
        .await;
        assert_eq!(server.stats().negotiating, 20);
        assert_eq!(server.stats().refused_negotiating, 0);
        // Meanwhile an honest peer is served.
        let honest = memory_builder(&sim).build().await.unwrap();
        honest.connect(peer, server.listen_addrs()).await.unwrap();
        assert_eq!(echo_roundtrip(&honest, peer, b"ok").await, b"ok");
        // The attacker leaves: its slots come back with its connection, long before the
        // negotiation timeout would have freed them.
        let left_at = sim.now();
        conn.close().await;
        wait_until(sim.runtime(), || server.stats().negotiating == 0).await;
        assert!(
            sim.now() - left_at < DEFAULT_NEGOTIATION_TIMEOUT / 10,
            "slots held for {:?} after the connection closed",
            sim.now() - left_at
        );
        drop(held);
        honest.close().await;
        attacker.close().await;
        server.close().await;
    });
}

/// A handler's slots (`max_streams_per_protocol`) are shared fairly when full: a peer that
/// runs no stream of the protocol takes the slot of the oldest stream of the peer running
/// the most; a peer that already runs one is refused.
#[test]
fn a_full_handler_gives_a_new_peer_the_slot_of_the_peer_holding_the_most() {
    run(|sim| async move {
        let server = memory_builder(&sim)
            .config(HostConfig {
                max_streams_per_protocol: 4,
                ..HostConfig::default()
            })
            .listen_on(ma("/memory/0"))
            .build()
            .await
            .unwrap();
        let running = Arc::new(AtomicUsize::new(0));
        let counter = running.clone();
        // Answers one byte, then holds the stream until the remote closes it.
        server.set_stream_handler("/hold/1.0.0", move |mut stream: HostStream| {
            let counter = counter.clone();
            async move {
                // Counts down when the handler ends, or is dropped unfinished.
                struct Running(Arc<AtomicUsize>);
                impl Drop for Running {
                    fn drop(&mut self) {
                        self.0.fetch_sub(1, Ordering::SeqCst);
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let _running = Running(counter);
                let mut byte = [0u8; 1];
                if stream.read_exact(&mut byte).await.is_ok()
                    && stream.write_all(&byte).await.is_ok()
                {
                    let mut rest = Vec::new();
                    let _ = stream.read_to_end(&mut rest).await;
                }
            }
        });
        let peer = server.local_peer_id();
        let open = |host: Host| async move {
            let mut stream = host
                .new_stream(&peer, ["/hold/1.0.0"])
                .await
                .map_err(std::io::Error::other)?;
            stream.write_all(b"x").await?;
            stream.flush().await?;
            let mut back = [0u8; 1];
            stream.read_exact(&mut back).await.map(|()| stream)
        };
        let hog = memory_builder(&sim).build().await.unwrap();
        hog.connect(peer, server.listen_addrs()).await.unwrap();
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(open(hog.clone()).await.unwrap());
        }
        assert_eq!(running.load(Ordering::SeqCst), 4);
        // Full, and the hog already runs streams: refused.
        assert!(open(hog.clone()).await.is_err());
        assert_eq!(server.stats().refused_busy, 1);
        // A new peer is served, with the slot of the hog's oldest stream.
        let newcomer = memory_builder(&sim).build().await.unwrap();
        newcomer.connect(peer, server.listen_addrs()).await.unwrap();
        let _served = open(newcomer.clone()).await.unwrap();
        assert_eq!(server.stats().evicted_for_share, 1);
        // The hog's oldest stream ended; the other three still run.
        let mut ended = Vec::new();
        for stream in &mut held {
            let mut buf = [0u8; 1];
            let read = sim
                .runtime()
                .timeout(Duration::from_millis(200), stream.read(&mut buf))
                .await;
            ended.push(matches!(read, Ok(Ok(0) | Err(_))));
        }
        assert_eq!(ended, [true, false, false, false]);
        wait_until(sim.runtime(), || running.load(Ordering::SeqCst) == 4).await;
        drop(held);
        newcomer.close().await;
        hog.close().await;
        server.close().await;
    });
}

#[test]
fn traffic_is_counted_per_protocol_under_the_handlers_name() {
    run(|sim| async move {
        let server = echo_server(&sim).await;
        // Inbound streams of a predicate handler count under its registration name, whatever
        // id the remote proposed.
        server.set_stream_handler_matching("/any/1", |p| p.starts_with("/any/1."), echo);
        let client = memory_builder(&sim).build().await.unwrap();
        let peer = server.local_peer_id();
        client.connect(peer, server.listen_addrs()).await.unwrap();
        for _ in 0..3 {
            assert_eq!(echo_roundtrip(&client, peer, b"hello").await, b"hello");
        }
        for minor in ["/any/1.1", "/any/1.2"] {
            let mut s = client.new_stream(&peer, [minor]).await.unwrap();
            s.write_all(b"abc").await.unwrap();
            s.close().await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
        }
        let find = |host: &Host, protocol: &str| {
            host.protocol_traffic()
                .into_iter()
                .find(|t| t.protocol == protocol)
                .unwrap_or_else(|| panic!("no traffic for {protocol}"))
        };
        // The handlers' last writes may land just after the client read EOF.
        wait_until(sim.runtime(), || find(&server, "/any/1").bytes_written == 6).await;
        let echo_out = find(&client, "/echo/1.0.0");
        assert_eq!(
            (echo_out.outbound_streams, echo_out.inbound_streams),
            (3, 0)
        );
        assert_eq!((echo_out.bytes_written, echo_out.bytes_read), (15, 15));
        let echo_in = find(&server, "/echo/1.0.0");
        assert_eq!((echo_in.inbound_streams, echo_in.bytes_read), (3, 15));
        let any = find(&server, "/any/1");
        assert_eq!((any.inbound_streams, any.bytes_read), (2, 6));
        assert!(
            server
                .protocol_traffic()
                .iter()
                .all(|t| !t.protocol.as_str().starts_with("/any/1."))
        );
        client.close().await;
        server.close().await;
    });
}

#[test]
fn a_peer_that_stalls_the_upgrade_times_out_and_others_are_served() {
    run(|sim| async move {
        let timeout = Duration::from_millis(500);
        let server = memory_builder(&sim)
            .swarm_config(SwarmConfig {
                upgrade_timeout: timeout,
                ..SwarmConfig::default()
            })
            .listen_on(ma("/memory/0"))
            .build()
            .await
            .unwrap();
        server.set_stream_handler("/echo/1.0.0", echo);
        let mut events = server.events();
        // A raw connection that never says anything.
        let staller = MemoryTransport::default()
            .dial(&server.listen_addrs()[0], &DialOpts::default())
            .await
            .unwrap();
        let stalled_at = sim.now();
        let error = loop {
            if let HostEvent::IncomingConnectionError { error, .. } = events.next().await.unwrap() {
                break error;
            }
        };
        assert!(error.to_string().contains("timed out"), "{error}");
        // Exactly the upgrade timeout, in virtual time.
        assert_eq!(sim.now() - stalled_at, timeout);
        drop(staller);
        // A well-behaved client is still served.
        let client = memory_builder(&sim).build().await.unwrap();
        client
            .connect(server.local_peer_id(), server.listen_addrs())
            .await
            .unwrap();
        assert_eq!(
            echo_roundtrip(&client, server.local_peer_id(), b"ok").await,
            b"ok"
        );
        client.close().await;
        server.close().await;
    });
}

/// Silent connections that take every pending-inbound slot hold them only until a new
/// connection needs one and they are a second old (the eviction age): an honest peer that
/// arrives during the flood is served, and the evicted connections are closed.
#[test]
fn silent_connections_holding_every_pending_slot_are_evicted_for_a_new_peer() {
    run(|sim| async move {
        // The resource manager's transient scope holds no more than the swarm's pending
        // slots: the evicted attempt's place must be free before the new one asks.
        let manager = count_limited(|l| l.transient.inbound_connections = 4);
        let server = memory_builder(&sim)
            .resource_manager(manager.clone())
            .swarm_config(SwarmConfig {
                max_pending_inbound: 4,
                ..SwarmConfig::default()
            })
            .listen_on(ma("/memory/0"))
            .build()
            .await
            .unwrap();
        server.set_stream_handler("/echo/1.0.0", echo);
        let mut events = server.events();
        let mut silent = Vec::new();
        for _ in 0..4 {
            silent.push(
                MemoryTransport::default()
                    .dial(&server.listen_addrs()[0], &DialOpts::default())
                    .await
                    .unwrap(),
            );
        }
        wait_until(sim.runtime(), || server.swarm().connection_counts().2 == 4).await;
        sim.sleep(Duration::from_secs(1)).await;
        let started = sim.now();
        let client = memory_builder(&sim).build().await.unwrap();
        client
            .connect(server.local_peer_id(), server.listen_addrs())
            .await
            .unwrap();
        assert_eq!(
            echo_roundtrip(&client, server.local_peer_id(), b"ok").await,
            b"ok"
        );
        // Served well before the 15 s upgrade timeout would have freed a slot.
        assert!(sim.now() - started < Duration::from_secs(1));
        let error = loop {
            if let HostEvent::IncomingConnectionError { error, .. } = events.next().await.unwrap() {
                break error;
            }
        };
        assert!(error.to_string().contains("evicted"), "{error}");
        assert_eq!(
            manager
                .stats()
                .count_denied(Scope::Transient, Resource::InboundConnections),
            0
        );
        // The evicted connection was closed: one of the silent ones reads end of file.
        let mut closed = 0;
        for conn in &mut silent {
            let mut buf = [0u8; 64];
            if let Ok(Ok(0)) = sim
                .runtime()
                .timeout(Duration::from_millis(100), conn.read(&mut buf))
                .await
            {
                closed += 1;
            }
        }
        assert_eq!(closed, 1);
        client.close().await;
        server.close().await;
    });
}

#[test]
fn unsupported_address_is_refused_clearly() {
    run_real(async {
        let host = tcp_builder(Stack::NoiseYamux).build().await.unwrap();
        let err = host
            .connect_addr(ma("/dns4/example.com/tcp/443"))
            .await
            .unwrap_err();
        let HostError::Swarm(SwarmError::DialFailed { attempts, .. }) = &err else {
            panic!("{err}")
        };
        assert_eq!(attempts[0].stage, Stage::UnsupportedAddress);
        let err = host
            .listen_on(&ma("/ip4/127.0.0.1/udp/0"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, HostError::Swarm(SwarmError::UnsupportedAddress(_))),
            "{err}"
        );
        host.close().await;
    });
}

#[test]
fn connection_limits_are_enforced_and_the_refused_side_gets_an_error() {
    run(|sim| async move {
        let server = memory_builder(&sim)
            .swarm_config(SwarmConfig {
                max_inbound: 2,
                ..SwarmConfig::default()
            })
            .listen_on(ma("/memory/0"))
            .build()
            .await
            .unwrap();
        server.set_stream_handler("/echo/1.0.0", echo);
        let mut clients = Vec::new();
        for _ in 0..2 {
            let c = memory_builder(&sim).build().await.unwrap();
            c.connect(server.local_peer_id(), server.listen_addrs())
                .await
                .unwrap();
            clients.push(c);
        }
        // The responder finishes its side of the upgrade a moment after the dialer: wait
        // until both are in the table, so the third is refused by the established count.
        wait_until(sim.runtime(), || server.swarm().connection_counts().0 >= 2).await;
        let mut events = server.events();
        let third = memory_builder(&sim).build().await.unwrap();
        let err = third
            .connect(server.local_peer_id(), server.listen_addrs())
            .await
            .unwrap_err();
        assert!(
            matches!(err, HostError::Swarm(SwarmError::DialFailed { .. })),
            "{err}"
        );
        let refusal = loop {
            if let HostEvent::IncomingConnectionError { error, .. } = events.next().await.unwrap() {
                break error;
            }
        };
        assert!(
            matches!(
                *refusal,
                SwarmError::Limit {
                    kind: LimitKind::Inbound,
                    limit: 2,
                    ..
                }
            ),
            "{refusal}"
        );
        assert_eq!(server.swarm().connection_counts().0, 2);
        // Existing connections keep working.
        assert_eq!(
            echo_roundtrip(&clients[0], server.local_peer_id(), b"x").await,
            b"x"
        );

        // Outbound limit, on the dialing side.
        let limited = memory_builder(&sim)
            .swarm_config(SwarmConfig {
                max_outbound: 1,
                ..SwarmConfig::default()
            })
            .build()
            .await
            .unwrap();
        let other = memory_builder(&sim)
            .listen_on(ma("/memory/0"))
            .build()
            .await
            .unwrap();
        limited
            .connect(other.local_peer_id(), other.listen_addrs())
            .await
            .unwrap();
        let err = limited
            .connect(server.local_peer_id(), server.listen_addrs())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                HostError::Swarm(SwarmError::Limit {
                    kind: LimitKind::Outbound,
                    limit: 1,
                    ..
                })
            ),
            "{err}"
        );
        for c in clients.iter().chain([&third, &limited, &other, &server]) {
            c.close().await;
        }
    });
}

#[test]
fn per_peer_limit() {
    run(|sim| async move {
        let server = memory_builder(&sim)
            .swarm_config(SwarmConfig {
                max_per_peer: 1,
                ..SwarmConfig::default()
            })
            .listen_on(ma("/memory/0"))
            .build()
            .await
            .unwrap();
        let client = memory_builder(&sim).build().await.unwrap();
        client
            .connect(server.local_peer_id(), server.listen_addrs())
            .await
            .unwrap();
        let mut events = server.events();
        // A second connection from the same peer, forced with an address-only dial. The
        // server refuses it once the handshake names the peer; the client learns it when the
        // connection fails (at once when the muxer was agreed inside the noise handshake).
        match client.connect_addr(server.listen_addrs()[0].clone()).await {
            Err(err) => assert!(
                matches!(err, HostError::Swarm(SwarmError::DialFailed { .. })),
                "{err}"
            ),
            Ok(second) => {
                let err = second.open_stream().await.err();
                wait_until(sim.runtime(), || second.is_closed()).await;
                drop(err);
            }
        }
        let refusal = loop {
            if let HostEvent::IncomingConnectionError { error, .. } = events.next().await.unwrap() {
                break error;
            }
        };
        assert!(
            matches!(
                *refusal,
                SwarmError::Limit {
                    kind: LimitKind::PerPeer,
                    limit: 1,
                    ..
                }
            ),
            "{refusal}"
        );
        assert_eq!(server.swarm().connections(&client.local_peer_id()).len(), 1);
        client.close().await;
        server.close().await;
    });
}

#[test]
fn handlers_that_panic_or_return_early_do_not_hurt_the_host() {
    run(|sim| async move {
        let server = memory_builder(&sim)
            .listen_on(ma("/memory/0"))
            .build()
            .await
            .unwrap();
        server.set_stream_handler("/panic/1.0.0", |_s: HostStream| async move {
            panic!("handler bug")
        });
        server.set_stream_handler("/early/1.0.0", |_s: HostStream| async move {});
        server.set_stream_handler("/echo/1.0.0", echo);
        let client = memory_builder(&sim).build().await.unwrap();
        let peer = server.local_peer_id();
        client.connect(peer, server.listen_addrs()).await.unwrap();

        let mut s = client.new_stream(&peer, ["/panic/1.0.0"]).await.unwrap();
        let mut buf = Vec::new();
        // The stream ends (EOF or error), it does not hang.
        let _ = s.read_to_end(&mut buf).await;
        let mut s = client.new_stream(&peer, ["/early/1.0.0"]).await.unwrap();
        let _ = s.read_to_end(&mut buf).await;

        assert_eq!(echo_roundtrip(&client, peer, b"fine").await, b"fine");
        // The panic was counted (it may land just after the stream ended).
        wait_until(sim.runtime(), || server.stats().handler_panics > 0).await;
        client.close().await;
        server.close().await;
    });
}

#[test]
fn predicate_handlers_and_removal() {
    run(|sim| async move {
        let server = memory_builder(&sim)
            .listen_on(ma("/memory/0"))
            .build()
            .await
            .unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        server.set_stream_handler_matching(
            "/app/1.x",
            |p: &str| p.starts_with("/app/1."),
            move |s: HostStream| {
                let seen = seen2.clone();
                async move {
                    seen.lock().unwrap().push(s.protocol().to_string());
                }
            },
        );
        let client = memory_builder(&sim).build().await.unwrap();
        let peer = server.local_peer_id();
        client.connect(peer, server.listen_addrs()).await.unwrap();
        let s = client.new_stream(&peer, ["/app/1.7"]).await.unwrap();
        assert_eq!(s.protocol(), "/app/1.7");
        drop(s);
        let err = client.new_stream(&peer, ["/app/2.0"]).await.unwrap_err();
        assert!(matches!(err, HostError::ProtocolNotSupported { .. }));
        wait_until(sim.runtime(), || !seen.lock().unwrap().is_empty()).await;
        assert_eq!(seen.lock().unwrap().as_slice(), ["/app/1.7"]);
        assert_eq!(server.protocols(), ["/app/1.x"]);

        assert!(server.remove_stream_handler("/app/1.x"));
        assert!(!server.remove_stream_handler("/app/1.x"));
        let err = client.new_stream(&peer, ["/app/1.7"]).await.unwrap_err();
        assert!(matches!(err, HostError::ProtocolNotSupported { .. }));
        client.close().await;
        server.close().await;
    });
}

#[test]
fn events_report_connections_and_disconnections() {
    run(|sim| async move {
        let server = memory_builder(&sim)
            .listen_on(ma("/memory/0"))
            .build()
            .await
            .unwrap();
        let client = memory_builder(&sim).build().await.unwrap();
        let mut server_events = server.events();
        let mut client_events = client.events();
        client
            .connect(server.local_peer_id(), server.listen_addrs())
            .await
            .unwrap();
        loop {
            if let HostEvent::Connected {
                peer, connection, ..
            } = client_events.next().await.unwrap()
            {
                assert_eq!(peer, server.local_peer_id());
                assert_eq!(connection.direction(), lp2p_host::Direction::Outbound);
                break;
            }
        }
        loop {
            if let HostEvent::Connected {
                peer, connection, ..
            } = server_events.next().await.unwrap()
            {
                assert_eq!(peer, client.local_peer_id());
                assert_eq!(connection.direction(), lp2p_host::Direction::Inbound);
                break;
            }
        }
        client.disconnect(&server.local_peer_id()).await;
        loop {
            if let HostEvent::Disconnected {
                peer,
                num_remaining,
                ..
            } = server_events.next().await.unwrap()
            {
                assert_eq!(peer, client.local_peer_id());
                assert_eq!(num_remaining, 0);
                break;
            }
        }
        client.close().await;
        server.close().await;
    });
}

#[test]
fn concurrent_dials_to_one_peer_share_one_connection() {
    run(|sim| async move {
        let server = memory_builder(&sim)
            .listen_on(ma("/memory/0"))
            .build()
            .await
            .unwrap();
        let client = memory_builder(&sim).build().await.unwrap();
        let peer = server.local_peer_id();
        client
            .peerstore()
            .add_addrs(&peer, server.listen_addrs(), Duration::from_secs(60))
            .unwrap();
        let dials = (0..10).map(|_| client.swarm().dial(peer));
        let conns = futures::future::join_all(dials).await;
        let first = conns[0].as_ref().unwrap().id();
        assert!(conns.iter().all(|c| c.as_ref().unwrap().id() == first));
        assert_eq!(client.swarm().connections(&peer).len(), 1);
        client.close().await;
        server.close().await;
    });
}

#[test]
fn idle_connections_close_and_busy_ones_stay() {
    run(|sim| async move {
        let idle = Duration::from_millis(300);
        let config = SwarmConfig {
            idle_timeout: Some(idle),
            ..SwarmConfig::default()
        };
        let server = memory_builder(&sim)
            .listen_on(ma("/memory/0"))
            .build()
            .await
            .unwrap();
        server.set_stream_handler("/hold/1.0.0", |mut s: HostStream| async move {
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf).await;
        });
        let client = memory_builder(&sim)
            .swarm_config(config)
            .build()
            .await
            .unwrap();
        let peer = server.local_peer_id();
        let mut events = client.events();
        client.connect(peer, server.listen_addrs()).await.unwrap();
        // A stream keeps the connection alive well past the idle timeout.
        let mut s = client.new_stream(&peer, ["/hold/1.0.0"]).await.unwrap();
        sim.sleep(3 * idle).await;
        assert!(client.swarm().is_connected(&peer));
        s.close().await.unwrap();
        drop(s);
        let idle_from = sim.now();
        let reason = loop {
            if let HostEvent::Disconnected { reason, .. } = events.next().await.unwrap() {
                break reason;
            }
        };
        assert_eq!(reason, lp2p_host::CloseReason::Idle);
        // Virtual time makes the policy's timing exact: not before the idle timeout, and
        // within the core's check interval (a quarter of it) after.
        let took = sim.now() - idle_from;
        assert!(
            took >= idle && took <= idle + idle / 4,
            "closed after {took:?}"
        );
        client.close().await;
        server.close().await;
    });
}

#[test]
fn bootstrap_peers_are_dialed_and_redialed() {
    run(|sim| async move {
        let server = memory_builder(&sim)
            .listen_on(ma("/memory/0"))
            .build()
            .await
            .unwrap();
        let addr = server.listen_addrs()[0]
            .clone()
            .with(lp2p_core::Protocol::P2p(server.local_peer_id()));
        let config = SwarmConfig {
            bootstrap_backoff: Duration::from_millis(20),
            ..SwarmConfig::default()
        };
        let client = memory_builder(&sim)
            .swarm_config(config)
            .bootstrap(addr)
            .build()
            .await
            .unwrap();
        let peer = server.local_peer_id();
        wait_until(sim.runtime(), || client.swarm().is_connected(&peer)).await;
        assert!(
            client.swarm().is_protected(&peer),
            "bootstrap peers are kept past the idle timeout"
        );
        // The server drops the connection: the client redials.
        let mut events = server.events();
        server.disconnect(&client.local_peer_id()).await;
        loop {
            if let HostEvent::Connected { peer: p, .. } = events.next().await.unwrap() {
                assert_eq!(p, client.local_peer_id());
                break;
            }
        }
        client.close().await;
        server.close().await;
    });
}

#[test]
fn close_ends_every_task() {
    run_real(async {
        let server = tcp_builder(Stack::NoiseYamux)
            .listen_on(ma("/ip4/127.0.0.1/tcp/0"))
            .build()
            .await
            .unwrap();
        // A handler that would run for a long time: close must still end it (its stream fails).
        server.set_stream_handler("/slow/1.0.0", |mut s: HostStream| async move {
            let mut buf = [0u8; 1];
            let _ = s.read(&mut buf).await;
        });
        let client = tcp_builder(Stack::NoiseYamux).build().await.unwrap();
        let peer = server.local_peer_id();
        client.connect(peer, server.listen_addrs()).await.unwrap();
        let mut streams = Vec::new();
        for _ in 0..5 {
            let mut s = client.new_stream(&peer, ["/slow/1.0.0"]).await.unwrap();
            s.flush().await.unwrap();
            streams.push(s);
        }
        assert!(server.runtime().live_tasks() > 0);
        assert!(client.runtime().live_tasks() > 0);
        server.close().await;
        client.close().await;
        assert_eq!(server.runtime().live_tasks(), 0, "server tasks left behind");
        assert_eq!(client.runtime().live_tasks(), 0, "client tasks left behind");
        assert!(server.is_closed());
        assert!(matches!(
            client.new_stream(&peer, ["/x/1"]).await,
            Err(HostError::Closed)
        ));
        drop(streams);
    });
}

#[test]
fn deterministic_identity_is_used() {
    run(|sim| async move {
        let key = Keypair::ed25519_from_bytes([7u8; 32]).unwrap();
        let expected = key.public().to_peer_id();
        let host = memory_builder(&sim).keypair(key).build().await.unwrap();
        assert_eq!(host.local_peer_id(), expected);
        host.close().await;
    });
}

#[test]
fn many_connections_in_and_out() {
    run(|sim| async move {
        let server = echo_server(&sim).await;
        let counter = Arc::new(AtomicUsize::new(0));
        let clients = futures::future::join_all((0..20).map(|_| async {
            let c = memory_builder(&sim).build().await.unwrap();
            c.connect(server.local_peer_id(), server.listen_addrs())
                .await
                .unwrap();
            assert_eq!(echo_roundtrip(&c, server.local_peer_id(), b"n").await, b"n");
            counter.fetch_add(1, Ordering::Relaxed);
            c
        }))
        .await;
        assert_eq!(counter.load(Ordering::Relaxed), 20);
        assert_eq!(server.connected_peers().len(), 20);
        for c in clients {
            c.close().await;
        }
        server.close().await;
    });
}

/// The responder finishes the noise handshake a moment after the dialer: a stream opened
/// back to a peer whose inbound connection is still being upgraded waits for that
/// connection instead of failing with "no known address" (the dialer has no listen address).
#[test]
fn new_stream_back_to_a_peer_whose_inbound_handshake_is_finishing() {
    run_real(async {
        let server = tcp_builder(Stack::NoiseYamux)
            .listen_on(ma("/ip4/127.0.0.1/tcp/0"))
            .build()
            .await
            .unwrap();
        for _ in 0..20 {
            let client = tcp_builder(Stack::NoiseYamux).build().await.unwrap();
            client.set_stream_handler("/echo/1.0.0", echo);
            client
                .connect(server.local_peer_id(), server.listen_addrs())
                .await
                .unwrap();
            // At once, before the server may have finished its side.
            let got = echo_roundtrip(&server, client.local_peer_id(), b"back").await;
            assert_eq!(got, b"back");
            client.close().await;
        }
        server.close().await;
    });
}

/// The resource manager's per-peer memory limit binds on one peer's streams (each holds its
/// 256 KiB initial receive window) while another peer is still served, and everything comes
/// back when the streams end.
#[test]
fn a_peer_over_its_memory_limit_is_refused_streams_and_another_peer_is_served() {
    run(|sim| async move {
        let manager = ResourceManager::builder()
            .system_memory(64 << 20)
            .peer_memory(1 << 20)
            .connection_memory(2 << 20)
            .build()
            .unwrap();
        let server = listener_with(&sim, &manager).await;
        // Echoes byte by byte until the remote closes: streams stay open as long as the
        // client keeps them.
        server.set_stream_handler("/trickle/1.0.0", |mut stream: HostStream| async move {
            let mut byte = [0u8; 1];
            while stream.read_exact(&mut byte).await.is_ok() {
                if stream.write_all(&byte).await.is_err() {
                    return;
                }
            }
        });
        let peer = server.local_peer_id();
        let open = |host: Host| async move {
            let mut stream = host
                .new_stream(&peer, ["/trickle/1.0.0"])
                .await
                .map_err(std::io::Error::other)?;
            stream.write_all(b"x").await?;
            let mut back = [0u8; 1];
            stream.read_exact(&mut back).await.map(|()| stream)
        };
        let hog = memory_builder(&sim).build().await.unwrap();
        hog.connect(peer, server.listen_addrs()).await.unwrap();
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(open(hog.clone()).await.unwrap());
        }
        assert_eq!(manager.peer_memory(&hog.local_peer_id()), 1 << 20);
        // A fifth stream needs 256 KiB more than the peer's 1 MiB: refused (RST).
        assert!(open(hog.clone()).await.is_err());
        assert_eq!(manager.stats().denied(Scope::Peer), 1);

        let other = memory_builder(&sim).build().await.unwrap();
        other.connect(peer, server.listen_addrs()).await.unwrap();
        let _served = open(other.clone()).await.unwrap();

        for mut stream in held.drain(..) {
            stream.close().await.unwrap();
        }
        let hog_id = hog.local_peer_id();
        wait_until(sim.runtime(), || manager.peer_memory(&hog_id) == 0).await;
        let _again = open(hog.clone()).await.unwrap();
    });
}

/// When other peers hold the whole system scope, a peer on the resource manager's allowlist
/// still gets a stream (it is accounted in a scope of its own); a stranger does not.
#[test]
fn an_allowlisted_peer_is_served_when_the_system_memory_scope_is_full() {
    run(|sim| async move {
        let friend = memory_builder(&sim).build().await.unwrap();
        let manager = ResourceManager::builder()
            .system_memory(512 << 10)
            .peer_memory(512 << 10)
            .connection_memory(512 << 10)
            .allowlisted_memory(512 << 10)
            .allow_peer(friend.local_peer_id())
            .build()
            .unwrap();
        let server = listener_with(&sim, &manager).await;
        server.set_stream_handler("/echo/1.0.0", echo);
        let peer = server.local_peer_id();
        let roundtrip = |host: Host| async move {
            let mut stream = host
                .new_stream(&peer, ["/echo/1.0.0"])
                .await
                .map_err(std::io::Error::other)?;
            stream.write_all(b"ok").await?;
            stream.close().await?;
            let mut back = Vec::new();
            stream.read_to_end(&mut back).await.map(|_| back)
        };
        // Two strangers' open streams take the system scope's 512 KiB.
        let mut held = Vec::new();
        for _ in 0..2 {
            let stranger = memory_builder(&sim).build().await.unwrap();
            stranger.connect(peer, server.listen_addrs()).await.unwrap();
            let stream = stranger.new_stream(&peer, ["/echo/1.0.0"]).await.unwrap();
            held.push((stranger, stream));
        }
        let third = memory_builder(&sim).build().await.unwrap();
        third.connect(peer, server.listen_addrs()).await.unwrap();
        assert!(roundtrip(third).await.is_err());
        assert_eq!(manager.stats().denied(Scope::System), 1);

        friend.connect(peer, server.listen_addrs()).await.unwrap();
        assert_eq!(roundtrip(friend).await.unwrap(), b"ok");
        assert_eq!(manager.stats().system_memory, 512 << 10);
    });
}

/// Count limits with `change` applied to the process defaults.
fn count_limited(change: impl FnOnce(&mut CountLimits)) -> ResourceManager {
    let mut limits = CountLimits::for_fds(None);
    change(&mut limits);
    ResourceManager::builder()
        .count_limits(limits)
        .build()
        .unwrap()
}

/// A host over the memory transport listening on a fresh port, with `manager`.
async fn listener_with(sim: &SimHandle, manager: &ResourceManager) -> Host {
    memory_builder(sim)
        .resource_manager(manager.clone())
        .listen_on(ma("/memory/0"))
        .build()
        .await
        .unwrap()
}

/// The resource manager's per-peer count of inbound streams binds over one peer's streams:
/// the one past it is reset and counted, another peer is still served, and the count comes
/// back when the streams end.
#[test]
fn a_peer_over_its_inbound_stream_count_is_refused_and_another_peer_is_served() {
    run(|sim| async move {
        let manager = count_limited(|l| l.peer.inbound_streams = 2);
        let server = listener_with(&sim, &manager).await;
        server.set_stream_handler("/echo/1.0.0", echo);
        let peer = server.local_peer_id();
        let hog = memory_builder(&sim).build().await.unwrap();
        hog.connect(peer, server.listen_addrs()).await.unwrap();
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(hog.new_stream(&peer, ["/echo/1.0.0"]).await.unwrap());
        }
        let hog_id = hog.local_peer_id();
        wait_until(sim.runtime(), || {
            manager
                .stats()
                .protocol_counts
                .get("/echo/1.0.0")
                .map(|c| c.inbound_streams)
                == Some(2)
        })
        .await;
        assert_eq!(manager.peer_counts(&hog_id).inbound_streams, 2);
        // The third is reset before negotiation.
        assert!(hog.new_stream(&peer, ["/echo/1.0.0"]).await.is_err());
        assert_eq!(server.stats().refused_by_resources, 1);
        assert_eq!(
            manager
                .stats()
                .count_denied(Scope::Peer, Resource::InboundStreams),
            1
        );

        let other = memory_builder(&sim).build().await.unwrap();
        other.connect(peer, server.listen_addrs()).await.unwrap();
        assert_eq!(echo_roundtrip(&other, peer, b"served").await, b"served");

        for mut stream in held.drain(..) {
            stream.close().await.unwrap();
            let mut rest = Vec::new();
            stream.read_to_end(&mut rest).await.unwrap();
        }
        wait_until(sim.runtime(), || {
            manager.peer_counts(&hog_id).inbound_streams == 0
        })
        .await;
        assert_eq!(echo_roundtrip(&hog, peer, b"again").await, b"again");
    });
}

/// Our own streams past a count limit fail with an error that names the scope, the
/// resource and the numbers.
#[test]
fn an_outbound_stream_over_a_count_limit_fails_with_the_scope_named() {
    run(|sim| async move {
        let server = echo_server(&sim).await;
        let peer = server.local_peer_id();
        let manager = count_limited(|l| l.peer.outbound_streams = 1);
        let client = memory_builder(&sim)
            .resource_manager(manager.clone())
            .build()
            .await
            .unwrap();
        client.connect(peer, server.listen_addrs()).await.unwrap();
        let first = client.new_stream(&peer, ["/echo/1.0.0"]).await.unwrap();
        let err = client.new_stream(&peer, ["/echo/1.0.0"]).await.unwrap_err();
        let HostError::Resources {
            peer: refused,
            denied,
        } = &err
        else {
            panic!("{err}");
        };
        assert_eq!(*refused, peer);
        assert_eq!(denied.scope, format!("peer ({peer})"));
        assert_eq!((denied.used, denied.limit), (1, 1));
        assert!(err.to_string().contains("outbound streams"), "{err}");
        drop(first);
        assert_eq!(manager.peer_counts(&peer).outbound_streams, 0);
        assert_eq!(echo_roundtrip(&client, peer, b"ok").await, b"ok");
    });
}

/// An inbound connection past the system scope's count is refused before its upgrade, with
/// the denial in the event; once the first connection closes, the next gets in.
#[test]
fn an_inbound_connection_over_the_system_count_is_refused_before_the_upgrade() {
    run(|sim| async move {
        let manager = count_limited(|l| l.system.inbound_connections = 1);
        let server = listener_with(&sim, &manager).await;
        let mut events = server.swarm().events();
        let peer = server.local_peer_id();
        let first = memory_builder(&sim).build().await.unwrap();
        first.connect(peer, server.listen_addrs()).await.unwrap();
        let first_id = first.local_peer_id();
        wait_until(sim.runtime(), || {
            manager.peer_counts(&first_id).inbound_connections == 1
        })
        .await;
        assert_eq!(manager.stats().system_counts.inbound_connections, 1);
        // The memory transport holds no descriptor.
        assert_eq!(manager.stats().system_counts.fds, 0);

        let second = memory_builder(&sim).build().await.unwrap();
        assert!(second.connect(peer, server.listen_addrs()).await.is_err());
        let refused = loop {
            if let Some(lp2p_swarm::SwarmEvent::IncomingConnectionError { error, .. }) =
                events.next().await
            {
                break error;
            }
        };
        assert!(
            matches!(&*refused, SwarmError::Resources { peer: None, denied } if denied.scope == "system"),
            "{refused}"
        );
        assert_eq!(
            manager
                .stats()
                .count_denied(Scope::System, Resource::InboundConnections),
            1
        );

        first.disconnect(&peer).await;
        wait_until(sim.runtime(), || {
            manager.stats().system_counts.inbound_connections == 0
        })
        .await;
        // The refusal put the address in the dialer's backoff.
        second.swarm().clear_dial_backoff(None);
        second.connect(peer, server.listen_addrs()).await.unwrap();
        let second_id = second.local_peer_id();
        wait_until(sim.runtime(), || {
            manager.peer_counts(&second_id).inbound_connections == 1
        })
        .await;
    });
}

/// A dial past the outbound count fails before it connects, at the limit stage, with the
/// denial; the address is not put in backoff for it.
#[test]
fn a_dial_over_the_outbound_count_fails_at_the_limit_stage() {
    run(|sim| async move {
        let mut servers = Vec::new();
        for _ in 0..2 {
            let server = memory_builder(&sim)
                .listen_on(ma("/memory/0"))
                .build()
                .await
                .unwrap();
            servers.push(server);
        }
        let manager = count_limited(|l| l.system.outbound_connections = 1);
        let client = memory_builder(&sim)
            .resource_manager(manager.clone())
            .build()
            .await
            .unwrap();
        let (a, b) = (&servers[0], &servers[1]);
        client
            .connect(a.local_peer_id(), a.listen_addrs())
            .await
            .unwrap();
        let err = client
            .connect(b.local_peer_id(), b.listen_addrs())
            .await
            .unwrap_err();
        let HostError::Swarm(SwarmError::DialFailed { attempts, .. }) = &err else {
            panic!("{err}");
        };
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].stage, Stage::Limit);
        assert!(
            matches!(&*attempts[0].error, SwarmError::Resources { denied, .. } if denied.limit == 1),
            "{err}"
        );
        client.disconnect(&a.local_peer_id()).await;
        wait_until(sim.runtime(), || {
            manager.stats().system_counts.outbound_connections == 0
        })
        .await;
        client
            .connect(b.local_peer_id(), b.listen_addrs())
            .await
            .unwrap();
    });
}

/// A TCP connection holds a descriptor on each side while it lives, and gives it back when
/// it closes.
#[test]
fn tcp_connections_hold_a_descriptor_each_while_they_live() {
    run_real(async {
        let server_counts = ResourceManager::default();
        let client_counts = ResourceManager::default();
        let server = tcp_builder(Stack::NoiseYamux)
            .resource_manager(server_counts.clone())
            .listen_on(ma("/ip4/127.0.0.1/tcp/0"))
            .build()
            .await
            .unwrap();
        let client = tcp_builder(Stack::NoiseYamux)
            .resource_manager(client_counts.clone())
            .build()
            .await
            .unwrap();
        let peer = server.local_peer_id();
        client.connect(peer, server.listen_addrs()).await.unwrap();
        let client_stats = client_counts.stats().system_counts;
        assert_eq!(
            (client_stats.outbound_connections, client_stats.fds),
            (1, 1)
        );
        let deadline = std::time::Instant::now() + LIMIT;
        let client_id = client.local_peer_id();
        while server_counts.peer_counts(&client_id).inbound_connections != 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "the server never counted it"
            );
            server.runtime().sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            server_counts
                .peer_counts(&client.local_peer_id())
                .inbound_connections,
            1
        );
        client.close().await;
        assert_eq!(client_counts.stats().system_counts, Counts::default());
        while server_counts.stats().system_counts.fds != 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the server never gave it back"
            );
            server.runtime().sleep(Duration::from_millis(10)).await;
        }
        server.close().await;
    });
}

/// At the inbound limit, a new peer gets in by closing the inbound connection idle the
/// longest (decision D34); a connection with a stream open stays.
#[test]
fn a_full_inbound_table_makes_room_by_closing_the_connection_idle_the_longest() {
    run(|sim| async move {
        let server = memory_builder(&sim)
            .swarm_config(SwarmConfig {
                max_inbound: 2,
                ..SwarmConfig::default()
            })
            .listen_on(ma("/memory/0"))
            .build()
            .await
            .unwrap();
        server.set_stream_handler("/echo/1.0.0", echo);
        let peer = server.local_peer_id();
        let busy = memory_builder(&sim).build().await.unwrap();
        busy.connect(peer, server.listen_addrs()).await.unwrap();
        let _open = busy.new_stream(&peer, ["/echo/1.0.0"]).await.unwrap();
        let quiet = memory_builder(&sim).build().await.unwrap();
        quiet.connect(peer, server.listen_addrs()).await.unwrap();
        let newcomer = memory_builder(&sim).build().await.unwrap();
        // Full, and nobody idle for the eviction age (10 s) yet.
        assert!(newcomer.connect(peer, server.listen_addrs()).await.is_err());
        sim.sleep(Duration::from_secs(20)).await;
        newcomer.connect(peer, server.listen_addrs()).await.unwrap();
        let quiet_id = quiet.local_peer_id();
        wait_until(sim.runtime(), || {
            !server.is_connected(&quiet_id) && !quiet.is_connected(&peer)
        })
        .await;
        assert!(server.is_connected(&busy.local_peer_id()));
        assert_eq!(server.swarm().stats().evicted_idle_inbound, 1);
    });
}

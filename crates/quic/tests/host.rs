//! Hosts over QUIC: streams both ways, a thousand streams, half-close, reset, the idle
//! policy, dialing from the listen port, and a host on TCP and QUIC at once (the dialer
//! prefers QUIC). Runs under async-std (default) and smol
//! (`cargo test -p lp2p-quic --no-default-features --features smol`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use lp2p_core::runtime::block_on;
use lp2p_core::{Multiaddr, PeerId, Protocol, RuntimeHandle, Stream};
use lp2p_host::{CloseReason, Host, HostBuilder, HostEvent, HostStream, SwarmConfig};
use lp2p_noise::Noise;
use lp2p_quic::QuicTransport;
use lp2p_tcp::TcpTransport;
use lp2p_yamux::Yamux;

/// Generous: CI machines are slow and loaded.
const LIMIT: Duration = Duration::from_secs(120);

fn ma(s: &str) -> Multiaddr {
    s.parse().unwrap()
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    let rt = RuntimeHandle::default();
    block_on(async move { rt.timeout(LIMIT, f).await.expect("test timed out") })
}

fn quic_builder() -> HostBuilder {
    Host::builder().transport(QuicTransport::default())
}

async fn quic_host(listen: bool) -> Host {
    let mut builder = quic_builder();
    if listen {
        builder = builder.listen_on(ma("/ip4/127.0.0.1/udp/0/quic-v1"));
    }
    let host = builder.build().await.unwrap();
    host.set_stream_handler("/echo/1.0.0", echo);
    host
}

async fn echo(mut stream: HostStream) {
    let mut buf = Vec::new();
    if stream.read_to_end(&mut buf).await.is_ok() {
        let _ = stream.write_all(&buf).await;
        let _ = stream.close().await;
    }
}

async fn echo_roundtrip(client: &Host, server: PeerId, payload: &[u8]) -> Vec<u8> {
    let mut s = client.new_stream(&server, ["/echo/1.0.0"]).await.unwrap();
    s.write_all(payload).await.unwrap();
    s.close().await.unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    got
}

#[test]
fn streams_both_ways() {
    run(async {
        let server = quic_host(true).await;
        let client = quic_host(false).await;
        let conn = client
            .connect(server.local_peer_id(), server.listen_addrs())
            .await
            .unwrap();
        assert_eq!(conn.transport(), "quic");
        assert_eq!(conn.security_protocol(), "/tls/1.0.0");
        assert_eq!(conn.muxer_protocol(), "quic-v1");
        let big: Vec<u8> = (0..2_000_000u32).map(|i| (i % 253) as u8).collect();
        assert_eq!(
            echo_roundtrip(&client, server.local_peer_id(), &big).await,
            big
        );
        // The listener opens a stream over the same connection.
        assert_eq!(
            echo_roundtrip(&server, client.local_peer_id(), b"back").await,
            b"back"
        );
        assert_eq!(server.connections(&client.local_peer_id()).len(), 1);
        client.close().await;
        server.close().await;
    });
}

#[test]
fn a_thousand_streams() {
    run(async {
        let server = quic_host(true).await;
        let client = quic_host(false).await;
        let peer = server.local_peer_id();
        client.connect(peer, server.listen_addrs()).await.unwrap();
        let results: Vec<bool> = futures::stream::iter(0..1000u32)
            .map(|i| {
                let client = client.clone();
                async move {
                    let payload = i.to_be_bytes();
                    echo_roundtrip(&client, peer, &payload).await == payload
                }
            })
            .buffer_unordered(100)
            .collect()
            .await;
        assert_eq!(results.len(), 1000);
        assert!(results.iter().all(|ok| *ok));
        // One connection carried them all.
        assert_eq!(client.connections(&peer).len(), 1);
        assert_eq!(server.stats().refused_negotiating, 0);
        client.close().await;
        server.close().await;
    });
}

#[test]
fn half_close_and_reset() {
    run(async {
        let server = quic_host(true).await;
        // Reads the request to EOF, then answers in three writes.
        server.set_stream_handler("/answer/1.0.0", |mut s: HostStream| async move {
            let mut req = Vec::new();
            s.read_to_end(&mut req).await.unwrap();
            for part in [&b"one "[..], b"two ", b"three"] {
                s.write_all(part).await.unwrap();
            }
            s.close().await.unwrap();
        });
        let (tx, rx) = futures::channel::oneshot::channel();
        let tx = std::sync::Mutex::new(Some(tx));
        server.set_stream_handler("/reset/1.0.0", move |mut s: HostStream| {
            let tx = tx.lock().unwrap().take();
            async move {
                let mut buf = Vec::new();
                let outcome = s.read_to_end(&mut buf).await;
                if let Some(tx) = tx {
                    let _ = tx.send(outcome.map_err(|e| e.kind()));
                }
            }
        });
        let client = quic_host(false).await;
        let peer = server.local_peer_id();
        client.connect(peer, server.listen_addrs()).await.unwrap();

        let mut s = client.new_stream(&peer, ["/answer/1.0.0"]).await.unwrap();
        s.write_all(b"question").await.unwrap();
        s.close().await.unwrap();
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, b"one two three");

        let mut s = client.new_stream(&peer, ["/reset/1.0.0"]).await.unwrap();
        s.write_all(b"partial").await.unwrap();
        s.flush().await.unwrap();
        client.runtime().sleep(Duration::from_millis(100)).await;
        s.reset();
        let seen = rx.await.unwrap();
        assert_eq!(seen, Err(std::io::ErrorKind::ConnectionReset));
        client.close().await;
        server.close().await;
    });
}

#[test]
fn idle_connections_close() {
    run(async {
        let server = quic_host(true).await;
        let config = SwarmConfig {
            idle_timeout: Some(Duration::from_millis(300)),
            ..SwarmConfig::default()
        };
        let client = quic_builder().swarm_config(config).build().await.unwrap();
        let peer = server.local_peer_id();
        let mut client_events = client.events();
        let mut server_events = server.events();
        client.connect(peer, server.listen_addrs()).await.unwrap();
        let reason = loop {
            if let HostEvent::Disconnected { reason, .. } = client_events.next().await.unwrap() {
                break reason;
            }
        };
        assert_eq!(reason, CloseReason::Idle);
        // The remote learns of the close at once (a CONNECTION_CLOSE, not its own timeout).
        loop {
            if let HostEvent::Disconnected { .. } = server_events.next().await.unwrap() {
                break;
            }
        }
        assert!(!server.is_connected(&client.local_peer_id()));
        client.close().await;
        server.close().await;
    });
}

#[test]
fn dials_leave_from_the_listen_port() {
    run(async {
        let server = quic_host(true).await;
        let client = quic_host(true).await;
        let conn = client
            .connect(server.local_peer_id(), server.listen_addrs())
            .await
            .unwrap();
        let ours = client.listen_addrs()[0].clone();
        assert_eq!(conn.local_addr(), &ours);
        // The server registers the connection once it has the client's last handshake packet.
        let theirs = loop {
            if let Some(c) = server.connection_to(&client.local_peer_id()) {
                break c;
            }
            server.runtime().sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(theirs.remote_addr(), &ours);
        client.close().await;
        server.close().await;
    });
}

#[test]
fn tcp_and_quic_at_once_and_quic_is_preferred() {
    run(async {
        let both = |b: HostBuilder| {
            b.transport(TcpTransport::default())
                .transport(QuicTransport::default())
                .security(Noise::new())
                .muxer(Yamux::default())
        };
        let server = both(Host::builder())
            .listen_on(ma("/ip4/127.0.0.1/tcp/0"))
            .listen_on(ma("/ip4/127.0.0.1/udp/0/quic-v1"))
            .build()
            .await
            .unwrap();
        server.set_stream_handler("/echo/1.0.0", echo);
        let addrs = server.listen_addrs();
        assert_eq!(addrs.len(), 2);
        assert!(
            addrs
                .iter()
                .any(|a| a.iter().any(|p| p == Protocol::QuicV1))
        );
        assert!(
            addrs
                .iter()
                .any(|a| a.iter().any(|p| matches!(p, Protocol::Tcp(_))))
        );

        // Given both addresses (TCP first), a client with both transports uses QUIC.
        let client = both(Host::builder()).build().await.unwrap();
        let mut sorted = addrs.clone();
        sorted.sort_by_key(|a| !a.iter().any(|p| matches!(p, Protocol::Tcp(_))));
        let conn = client
            .connect(server.local_peer_id(), sorted)
            .await
            .unwrap();
        assert_eq!(conn.transport(), "quic");
        assert_eq!(
            echo_roundtrip(&client, server.local_peer_id(), b"over quic").await,
            b"over quic"
        );

        // A TCP-only client still gets in over TCP.
        let tcp_only = Host::builder()
            .transport(TcpTransport::default())
            .security(Noise::new())
            .muxer(Yamux::default())
            .build()
            .await
            .unwrap();
        let conn = tcp_only
            .connect(server.local_peer_id(), addrs)
            .await
            .unwrap();
        assert_eq!(conn.transport(), "tcp");
        assert_eq!(conn.security_protocol(), "/noise");
        assert_eq!(
            echo_roundtrip(&tcp_only, server.local_peer_id(), b"over tcp").await,
            b"over tcp"
        );
        for host in [client, tcp_only, server] {
            host.close().await;
        }
    });
}

#[test]
fn closing_a_host_leaves_no_task_behind() {
    run(async {
        let server = quic_host(true).await;
        let client = quic_host(true).await;
        client
            .connect(server.local_peer_id(), server.listen_addrs())
            .await
            .unwrap();
        assert_eq!(
            echo_roundtrip(&client, server.local_peer_id(), b"x").await,
            b"x"
        );
        let (crt, srt) = (client.runtime().clone(), server.runtime().clone());
        client.close().await;
        server.close().await;
        // Connection and endpoint tasks end (the close handshake takes a few PTOs).
        for rt in [crt, srt] {
            let mut waited = 0;
            while rt.live_tasks() != 0 && waited < 500 {
                rt.sleep(Duration::from_millis(20)).await;
                waited += 1;
            }
            assert_eq!(rt.live_tasks(), 0, "tasks left after close");
        }
    });
}

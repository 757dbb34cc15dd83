//! An lp2p host on lp2p-quic (async-std) and a rust-libp2p 0.57 swarm on libp2p-quic 0.14
//! (tokio, on its own threads) connect over QUIC on 127.0.0.1 in both directions: the TLS 1.3
//! handshake proves both identities, requests on a custom protocol run both ways (one of them
//! 8 MiB each way, then 64 more: at once towards lp2p, in turn towards rust-libp2p), pings run
//! both ways, and dialing the rust peer under the
//! wrong peer id fails the handshake.

use std::time::Duration;

use libp2p::PeerId;
use lp2p_host::Host;
use lp2p_interop::stream_peer::{
    RustPeer, RustPeerConfig, RustTransport, SwarmReport, lp2p_request, next_connected,
    rust_request, serve_echo,
};
use lp2p_interop::{EXCHANGE_TIMEOUT, init_tracing, run, tokio_runtime};
use lp2p_quic::QuicTransport;

/// The custom protocol both sides serve: read the request to EOF, answer with a prefix.
const PROTOCOL: &str = "/lp2p-interop/quic-echo/1.0.0";

/// Bytes of the bulk request.
const BULK: usize = 8 * 1024 * 1024;

/// A rust-libp2p swarm on QUIC that also pings every 200 ms.
fn start_rust_peer(rt: &tokio::runtime::Runtime, listen: bool) -> RustPeer {
    RustPeer::start(
        rt,
        RustPeerConfig {
            transport: RustTransport::Quic,
            protocol: PROTOCOL,
            listen,
            ping_every: Some(Duration::from_millis(200)),
        },
    )
}

async fn lp2p_host(listen: bool) -> (Host, lp2p_ping::Ping) {
    let mut builder = Host::builder().transport(QuicTransport::default());
    if listen {
        builder = builder.listen_on("/ip4/127.0.0.1/udp/0/quic-v1".parse().expect("addr"));
    }
    let host = builder.build().await.expect("lp2p host");
    serve_echo(&host, PROTOCOL);
    let ping = lp2p_ping::Ping::new(&host, lp2p_ping::PingConfig::default());
    (host, ping)
}

fn bulk() -> Vec<u8> {
    (0..BULK)
        .map(|i| (i as u8).wrapping_mul(13) ^ (i >> 9) as u8)
        .collect()
}

/// Requests both ways (one small, one bulk, then 64 at once from each side) and pings both
/// ways, over whichever connection exists.
fn exchange(
    rt: &tokio::runtime::Runtime,
    rust: &mut RustPeer,
    host: &Host,
    ping: &lp2p_ping::Ping,
) {
    let lp2p_peer = host.local_peer_id();
    let rust_peer = rust.peer;
    let data = bulk();
    run("lp2p requests to rust-libp2p over QUIC", async {
        assert_eq!(
            lp2p_request(host, rust_peer, PROTOCOL, b"hello").await,
            b"rust:hello"
        );
        let answer = lp2p_request(host, rust_peer, PROTOCOL, &data).await;
        assert!(answer.len() == BULK + 5 && answer[5..] == data[..], "bulk");
        // One after the other: libp2p-stream hands inbound streams over a zero-capacity
        // channel and drops (stops) those that arrive while its acceptor is busy, so a burst
        // towards rust-libp2p would measure that, not QUIC.
        for i in 0..64u32 {
            let request = i.to_be_bytes();
            let answer = lp2p_request(host, rust_peer, PROTOCOL, &request).await;
            assert_eq!(&answer[5..], &request);
        }
        let rtt = ping.ping(&rust_peer).await.expect("lp2p pings rust-libp2p");
        assert!(rtt < EXCHANGE_TIMEOUT);
    });
    let control = rust.control.clone();
    let data_for_rust = data.clone();
    rt.block_on(async {
        tokio::time::timeout(EXCHANGE_TIMEOUT, async {
            let answer =
                rust_request(control.clone(), lp2p_peer, PROTOCOL, b"hello".to_vec()).await;
            assert_eq!(answer, b"lp2p:hello");
            let answer = rust_request(control.clone(), lp2p_peer, PROTOCOL, data_for_rust).await;
            assert!(answer.len() == BULK + 5 && answer[5..] == data[..], "bulk");
            let many = (0..64u32).map(|i| {
                let control = control.clone();
                async move {
                    let request = i.to_be_bytes().to_vec();
                    let answer = rust_request(control, lp2p_peer, PROTOCOL, request.clone()).await;
                    assert_eq!(answer[5..], request[..]);
                }
            });
            futures::future::join_all(many).await;
        })
        .await
        .expect("in time");
    });
    // rust-libp2p's ping behaviour pings us every 200 ms.
    let pinged = rust.wait_report(rt, |r| match r {
        SwarmReport::Pinged(peer) => Some(peer),
        _ => None,
    });
    assert_eq!(pinged, lp2p_peer);
}

#[test]
fn lp2p_dials_rust_libp2p_over_quic() {
    init_tracing();
    let rt = tokio_runtime();
    let mut rust = start_rust_peer(&rt, true);
    let rust_addr = rust.listen_addr(&rt);
    let (host, ping) = run("lp2p host", lp2p_host(false));
    let conn = run("lp2p dials rust-libp2p", async {
        host.connect(rust.peer, vec![rust_addr.clone()])
            .await
            .expect("connect")
    });
    assert_eq!(conn.transport(), "quic");
    assert_eq!(conn.security_protocol(), "/tls/1.0.0");
    assert_eq!(conn.muxer_protocol(), "quic-v1");
    let (seen, _) = rust.connected(&rt);
    assert_eq!(seen, host.local_peer_id(), "rust-libp2p sees our peer id");
    exchange(&rt, &mut rust, &host, &ping);
    assert_eq!(host.connections(&rust.peer).len(), 1);
    run("close", host.close());
}

#[test]
fn rust_libp2p_dials_lp2p_over_quic() {
    init_tracing();
    let rt = tokio_runtime();
    let mut rust = start_rust_peer(&rt, false);
    let (host, ping) = run("lp2p host", lp2p_host(true));
    let lp2p_peer = host.local_peer_id();
    let mut events = host.events();
    let listen = host.listen_addrs()[0].clone();
    rust.dial
        .send(
            listen
                .clone()
                .with(libp2p::multiaddr::Protocol::P2p(lp2p_peer)),
        )
        .expect("swarm task alive");
    let (seen, remote) = rust.connected(&rt);
    assert_eq!(seen, lp2p_peer);
    assert!(
        remote.to_string().starts_with(&listen.to_string()),
        "{remote}"
    );
    let connection = run(
        "lp2p sees the inbound QUIC connection",
        next_connected(&mut events),
    );
    assert_eq!(connection.peer(), rust.peer);
    assert_eq!(connection.direction().to_string(), "in");
    assert_eq!(connection.transport(), "quic");
    exchange(&rt, &mut rust, &host, &ping);
    run("close", host.close());
}

#[test]
fn lp2p_dialing_rust_libp2p_under_the_wrong_peer_id_fails() {
    init_tracing();
    let rt = tokio_runtime();
    let mut rust = start_rust_peer(&rt, true);
    let rust_addr = rust.listen_addr(&rt);
    let transport = QuicTransport::default();
    let ctx = lp2p_core::TransportContext::new(
        lp2p_core::Keypair::generate_ed25519(),
        lp2p_core::RuntimeHandle::default(),
    );
    let wrong = PeerId::random();
    let result = run("dial under the wrong peer id", async {
        lp2p_core::Transport::dial(
            &transport,
            &ctx,
            &rust_addr,
            lp2p_core::DialOpts::to_peer(Some(wrong)),
        )
        .await
    });
    match result {
        Err(lp2p_core::Error::PeerIdMismatch { expected, actual }) => {
            assert_eq!(*expected, wrong);
            assert_eq!(*actual, rust.peer);
        }
        other => panic!("expected a peer id mismatch, got {:?}", other.err()),
    }
}

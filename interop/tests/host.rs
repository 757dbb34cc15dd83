//! An lp2p host and a rust-libp2p 0.57 swarm (tokio, on its own threads) connect over TCP on
//! 127.0.0.1 with noise + yamux, in both directions, and run a request/response on a custom
//! protocol: `libp2p-stream` on the rust side, a stream handler and `new_stream` on ours.
//! A protocol the other side does not serve is refused with `na`, and the connection stays.

use libp2p::StreamProtocol;
use lp2p_host::Host;
use lp2p_interop::stream_peer::{
    RustPeer, RustPeerConfig, RustTransport, lp2p_request, next_connected, rust_request, serve_echo,
};
use lp2p_interop::{EXCHANGE_TIMEOUT, init_tracing, run, tokio_runtime};

/// The custom protocol both sides serve.
const PROTOCOL: &str = "/lp2p-interop/greet/1.0.0";

/// A rust-libp2p swarm on TCP with noise and yamux, no ping. It answers every inbound
/// `PROTOCOL` stream with `rust:` + the request.
fn start_rust_peer(rt: &tokio::runtime::Runtime, listen: bool) -> RustPeer {
    RustPeer::start(
        rt,
        RustPeerConfig {
            transport: RustTransport::TcpNoiseYamux,
            protocol: PROTOCOL,
            listen,
            ping_every: None,
        },
    )
}

async fn lp2p_host(listen: bool) -> Host {
    let mut builder = Host::builder()
        .transport(lp2p_tcp::TcpTransport::default())
        .security(lp2p_noise::Noise::new())
        .muxer(lp2p_yamux::Yamux::default());
    if listen {
        builder = builder.listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("addr"));
    }
    let host = builder.build().await.expect("lp2p host");
    serve_echo(&host, PROTOCOL);
    host
}

#[test]
fn lp2p_dials_rust_libp2p_and_both_serve_requests() {
    init_tracing();
    let rt = tokio_runtime();
    let mut rust = start_rust_peer(&rt, true);
    let rust_addr = rust.listen_addr(&rt);

    let host = run("lp2p host", lp2p_host(false));
    let lp2p_peer = host.local_peer_id();
    // lp2p → rust: dial, negotiate, request/response.
    let answer = run("lp2p request to rust-libp2p", async {
        let conn = host
            .connect(rust.peer, vec![rust_addr.clone()])
            .await
            .expect("connect");
        assert_eq!(conn.peer(), rust.peer);
        lp2p_request(&host, rust.peer, PROTOCOL, b"hello from lp2p").await
    });
    assert_eq!(answer, b"rust:hello from lp2p");
    let (seen, _) = rust.connected(&rt);
    assert_eq!(seen, lp2p_peer, "rust-libp2p sees our peer id");

    // A protocol rust-libp2p does not serve: an error naming it, and the connection stays up.
    run("unsupported protocol", async {
        let err = host
            .new_stream(&rust.peer, ["/nobody/serves/this"])
            .await
            .expect_err("refused");
        assert!(err.to_string().contains("/nobody/serves/this"), "{err}");
        assert_eq!(host.connected_peers(), vec![rust.peer]);
    });

    // The same connection the other way: rust → lp2p.
    let control = rust.control.clone();
    let answer = rt.block_on(async {
        tokio::time::timeout(
            EXCHANGE_TIMEOUT,
            rust_request(control, lp2p_peer, PROTOCOL, b"hello from rust".to_vec()),
        )
        .await
        .expect("in time")
    });
    assert_eq!(answer, b"lp2p:hello from rust");
    run("close", host.close());
}

#[test]
fn rust_libp2p_dials_lp2p_and_both_serve_requests() {
    init_tracing();
    let rt = tokio_runtime();
    let mut rust = start_rust_peer(&rt, false);
    let host = run("lp2p host", lp2p_host(true));
    let lp2p_peer = host.local_peer_id();
    let mut events = host.events();
    let addr = host.listen_addrs()[0]
        .clone()
        .with(libp2p::multiaddr::Protocol::P2p(lp2p_peer));

    rust.dial.send(addr).expect("swarm task alive");
    let (seen, _) = rust.connected(&rt);
    assert_eq!(seen, lp2p_peer);
    let connection = run(
        "lp2p sees the inbound connection",
        next_connected(&mut events),
    );
    assert_eq!(connection.peer(), rust.peer);
    assert_eq!(connection.direction().to_string(), "in");

    // rust → lp2p on the connection rust dialed.
    let mut control = rust.control.clone();
    let (answer, refused) = rt.block_on(async {
        tokio::time::timeout(EXCHANGE_TIMEOUT, async {
            let answer = rust_request(
                control.clone(),
                lp2p_peer,
                PROTOCOL,
                b"hello from rust".to_vec(),
            )
            .await;
            // A protocol lp2p has no handler for: refused with `na`.
            let refused = control
                .open_stream(lp2p_peer, StreamProtocol::new("/nobody/serves/this"))
                .await;
            (answer, refused)
        })
        .await
        .expect("in time")
    });
    assert_eq!(answer, b"lp2p:hello from rust");
    assert!(
        matches!(
            refused,
            Err(libp2p_stream::OpenStreamError::UnsupportedProtocol(_))
        ),
        "expected UnsupportedProtocol, got {refused:?}"
    );

    // lp2p → rust reusing the inbound connection (no new dial: rust does not listen).
    let answer = run(
        "lp2p request on the inbound connection",
        lp2p_request(&host, rust.peer, PROTOCOL, b"hello from lp2p"),
    );
    assert_eq!(answer, b"rust:hello from lp2p");
    assert_eq!(host.connected_peers(), vec![rust.peer]);
    run("close", host.close());
}

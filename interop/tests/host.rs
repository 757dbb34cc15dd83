//! An lp2p host and a rust-libp2p 0.57 swarm (tokio, on its own threads) connect over TCP on
//! 127.0.0.1 with noise + yamux, in both directions, and run a request/response on a custom
//! protocol: `libp2p-stream` on the rust side, a stream handler and `new_stream` on ours.
//! A protocol the other side does not serve is refused with `na`, and the connection stays.

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use lp2p_host::{Host, HostEvent, HostStream};
use lp2p_interop::{EXCHANGE_TIMEOUT, init_tracing, run, tokio_runtime};
use tokio::sync::{mpsc, oneshot};

/// The custom protocol both sides serve.
const PROTOCOL: &str = "/lp2p-interop/greet/1.0.0";

/// What the rust swarm's task reports.
enum SwarmReport {
    Listening(Multiaddr),
    Connected(PeerId),
}

/// A rust-libp2p swarm running on `rt`: its peer id, a stream control, a way to dial, and
/// its reports. It answers every inbound `PROTOCOL` stream with `rust:` + the request.
struct RustPeer {
    peer: PeerId,
    control: libp2p_stream::Control,
    dial: mpsc::UnboundedSender<Multiaddr>,
    reports: mpsc::UnboundedReceiver<SwarmReport>,
}

fn start_rust_peer(rt: &tokio::runtime::Runtime, listen: bool) -> RustPeer {
    let (dial, mut dials) = mpsc::unbounded_channel::<Multiaddr>();
    let (report_tx, reports) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = oneshot::channel();
    rt.spawn(async move {
        let mut swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                libp2p::tcp::Config::default(),
                libp2p::noise::Config::new,
                libp2p::yamux::Config::default,
            )
            .expect("tcp")
            .with_behaviour(|_| libp2p_stream::Behaviour::new())
            .expect("behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        let mut control = swarm.behaviour().new_control();
        let mut incoming = control
            .accept(StreamProtocol::new(PROTOCOL))
            .expect("accept");
        tokio::spawn(async move {
            while let Some((_peer, mut stream)) = incoming.next().await {
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    stream
                        .read_to_end(&mut request)
                        .await
                        .expect("read request");
                    let mut answer = b"rust:".to_vec();
                    answer.extend_from_slice(&request);
                    stream.write_all(&answer).await.expect("write answer");
                    stream.close().await.expect("close");
                });
            }
        });
        if listen {
            swarm
                .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("addr"))
                .expect("listen");
        }
        let _ = ready_tx.send((*swarm.local_peer_id(), control));
        loop {
            tokio::select! {
                event = swarm.select_next_some() => match event {
                    SwarmEvent::NewListenAddr { address, .. } => {
                        let _ = report_tx.send(SwarmReport::Listening(address));
                    }
                    SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                        let _ = report_tx.send(SwarmReport::Connected(peer_id));
                    }
                    _ => {}
                },
                addr = dials.recv() => match addr {
                    Some(addr) => swarm.dial(addr).expect("dial"),
                    None => break,
                },
            }
        }
    });
    let (peer, control) = ready_rx.blocking_recv().expect("swarm started");
    RustPeer {
        peer,
        control,
        dial,
        reports,
    }
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
    host.set_stream_handler(PROTOCOL, |mut stream: HostStream| async move {
        let mut request = Vec::new();
        if stream.read_to_end(&mut request).await.is_ok() {
            let mut answer = b"lp2p:".to_vec();
            answer.extend_from_slice(&request);
            let _ = stream.write_all(&answer).await;
            let _ = stream.close().await;
        }
    });
    host
}

/// Waits on the tokio side for a report matching `pick`.
fn wait_report<T>(
    rt: &tokio::runtime::Runtime,
    peer: &mut RustPeer,
    pick: impl FnMut(SwarmReport) -> Option<T>,
) -> T {
    lp2p_interop::recv_matching(rt, &mut peer.reports, pick)
}

#[test]
fn lp2p_dials_rust_libp2p_and_both_serve_requests() {
    init_tracing();
    let rt = tokio_runtime();
    let mut rust = start_rust_peer(&rt, true);
    let rust_addr = wait_report(&rt, &mut rust, |r| match r {
        SwarmReport::Listening(addr) => Some(addr),
        SwarmReport::Connected(_) => None,
    });

    let host = run("lp2p host", lp2p_host(false));
    let lp2p_peer = host.local_peer_id();
    // lp2p → rust: dial, negotiate, request/response.
    let answer = run("lp2p request to rust-libp2p", async {
        let conn = host
            .connect(rust.peer, vec![rust_addr.clone()])
            .await
            .expect("connect");
        assert_eq!(conn.peer(), rust.peer);
        let mut stream = host
            .new_stream(&rust.peer, [PROTOCOL])
            .await
            .expect("new_stream");
        assert_eq!(stream.protocol(), PROTOCOL);
        stream.write_all(b"hello from lp2p").await.expect("write");
        stream.close().await.expect("close");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("read");
        answer
    });
    assert_eq!(answer, b"rust:hello from lp2p");
    let seen = wait_report(&rt, &mut rust, |r| match r {
        SwarmReport::Connected(peer) => Some(peer),
        SwarmReport::Listening(_) => None,
    });
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
    let mut control = rust.control.clone();
    let answer = rt.block_on(async {
        tokio::time::timeout(EXCHANGE_TIMEOUT, async {
            let mut stream = control
                .open_stream(lp2p_peer, StreamProtocol::new(PROTOCOL))
                .await
                .expect("open");
            stream.write_all(b"hello from rust").await.expect("write");
            stream.close().await.expect("close");
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await.expect("read");
            answer
        })
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
    let seen = wait_report(&rt, &mut rust, |r| match r {
        SwarmReport::Connected(peer) => Some(peer),
        SwarmReport::Listening(_) => None,
    });
    assert_eq!(seen, lp2p_peer);
    run("lp2p sees the inbound connection", async {
        loop {
            if let Some(HostEvent::Connected {
                peer, connection, ..
            }) = events.next().await
            {
                assert_eq!(peer, rust.peer);
                assert_eq!(connection.direction().to_string(), "in");
                break;
            }
        }
    });

    // rust → lp2p on the connection rust dialed.
    let mut control = rust.control.clone();
    let (answer, refused) = rt.block_on(async {
        tokio::time::timeout(EXCHANGE_TIMEOUT, async {
            let mut stream = control
                .open_stream(lp2p_peer, StreamProtocol::new(PROTOCOL))
                .await
                .expect("open");
            stream.write_all(b"hello from rust").await.expect("write");
            stream.close().await.expect("close");
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await.expect("read");
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
    let answer = run("lp2p request on the inbound connection", async {
        let mut stream = host
            .new_stream(&rust.peer, [PROTOCOL])
            .await
            .expect("new_stream");
        stream.write_all(b"hello from lp2p").await.expect("write");
        stream.close().await.expect("close");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("read");
        answer
    });
    assert_eq!(answer, b"rust:hello from lp2p");
    assert_eq!(host.connected_peers(), vec![rust.peer]);
    run("close", host.close());
}

//! The QUIC transport at the `Transport` / `MuxedConnection` level: identities, streams both
//! ways, many streams, half-close, reset, drop, idle timeout and keep-alive, dialing from the
//! listen port, IPv6, refusals by the swarm, and draft-29 addresses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{PATIENCE, accept, ctx, listen, pair, pair_with, within};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use lp2p_core::runtime::block_on;
use lp2p_core::{
    DialOpts, Error, MuxedConnection, PeerId, Protocol, Role, RuntimeHandle, Transport,
};
use lp2p_quic::{QuicConfig, QuicTransport};

#[test]
fn both_sides_prove_their_identity() {
    block_on(async {
        let p = pair().await;
        assert_eq!(p.dialer.peer, p.b_ctx.local_peer_id());
        assert_eq!(p.listener.peer, p.a_ctx.local_peer_id());
        assert_eq!(p.dialer.remote_key, p.b_ctx.local_key.public());
        for e in [&p.dialer, &p.listener] {
            assert_eq!(e.security, "/tls/1.0.0");
            assert_eq!(e.muxer_protocol, "quic-v1");
            assert!(!e.limited);
        }
        assert_eq!(p.dialer.remote_addr, p.b_addr);
        assert_eq!(p.listener.local_addr, p.b_addr);
        assert_eq!(p.listener.remote_addr, p.dialer.local_addr);
        let stats = p.a.stats();
        assert_eq!(stats.connections_outbound, 1);
        assert_eq!(p.b.stats().connections_inbound, 1);
    });
}

async fn echo_once(
    opener: &Arc<dyn MuxedConnection>,
    acceptor: &Arc<dyn MuxedConnection>,
    data: &[u8],
) {
    let serve = async {
        let mut s = acceptor.accept_stream().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        s.write_all(&got).await.unwrap();
        s.close().await.unwrap();
    };
    let ask = async {
        let mut s = opener.open_stream().await.unwrap();
        s.write_all(data).await.unwrap();
        s.close().await.unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).await.unwrap();
        back
    };
    let ((), back) = futures::join!(serve, ask);
    assert_eq!(back, data);
}

#[test]
fn streams_both_ways() {
    block_on(async {
        let p = pair().await;
        let rt = RuntimeHandle::default();
        within(
            &rt,
            echo_once(&p.dialer.muxer, &p.listener.muxer, b"from the dialer"),
        )
        .await;
        within(
            &rt,
            echo_once(&p.listener.muxer, &p.dialer.muxer, b"from the listener"),
        )
        .await;
    });
}

#[test]
fn large_transfer_both_ways_concurrently() {
    block_on(async {
        let p = pair().await;
        let rt = RuntimeHandle::default();
        let data: Vec<u8> = (0..16 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        within(&rt, async {
            futures::join!(
                echo_once(&p.dialer.muxer, &p.listener.muxer, &data),
                echo_once(&p.listener.muxer, &p.dialer.muxer, &data[..3 * 1024 * 1024]),
            )
        })
        .await;
    });
}

#[test]
fn a_thousand_streams_sequentially_and_concurrently() {
    block_on(async {
        // A low stream limit, so the concurrent half also waits for QUIC stream credit.
        let p = pair_with(QuicConfig::default().max_concurrent_streams(64)).await;
        let rt = RuntimeHandle::default();
        let served = Arc::new(AtomicUsize::new(0));
        let acceptor = p.listener.muxer.clone();
        let counter = served.clone();
        let server = rt.spawn(async move {
            let mut tasks = futures::stream::FuturesUnordered::new();
            loop {
                futures::select! {
                    s = acceptor.accept_stream().fuse_next() => {
                        let Ok(mut s) = s else { break };
                        let counter = counter.clone();
                        tasks.push(async move {
                            let mut buf = Vec::new();
                            s.read_to_end(&mut buf).await.unwrap();
                            s.write_all(&buf).await.unwrap();
                            s.close().await.unwrap();
                            counter.fetch_add(1, Ordering::SeqCst);
                        });
                    }
                    () = tasks.select_next_some() => {}
                }
            }
        });
        let opener = p.dialer.muxer.clone();
        within(&rt, async {
            for i in 0..500u32 {
                let mut s = opener.open_stream().await.unwrap();
                s.write_all(&i.to_be_bytes()).await.unwrap();
                s.close().await.unwrap();
                let mut back = Vec::new();
                s.read_to_end(&mut back).await.unwrap();
                assert_eq!(back, i.to_be_bytes());
            }
            let all = (500..1000u32).map(|i| {
                let opener = opener.clone();
                async move {
                    let mut s = opener.open_stream().await.unwrap();
                    s.write_all(&i.to_be_bytes()).await.unwrap();
                    s.close().await.unwrap();
                    let mut back = Vec::new();
                    s.read_to_end(&mut back).await.unwrap();
                    assert_eq!(back, i.to_be_bytes());
                }
            });
            futures::future::join_all(all).await;
        })
        .await;
        assert_eq!(served.load(Ordering::SeqCst), 1000);
        // Every stream is gone on both sides.
        within(&rt, async {
            while p.dialer.muxer.num_streams() != 0 || p.listener.muxer.num_streams() > 1 {
                rt.sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        drop(server);
    });
}

/// `accept_stream` as a fused future for `select!`.
trait FuseNext: std::future::Future + Sized {
    fn fuse_next(self) -> futures::future::Fuse<Self>;
}

impl<F: std::future::Future> FuseNext for F {
    fn fuse_next(self) -> futures::future::Fuse<Self> {
        futures::FutureExt::fuse(self)
    }
}

/// Streams the dialer holds open at once, all unfinished: more than a connection's initial
/// stream limit, less than the maximum.
const HELD_STREAMS: usize = 300;

#[test]
fn the_stream_limit_grows_while_the_remote_holds_streams_open() {
    block_on(async {
        let p = pair().await;
        let rt = RuntimeHandle::default();
        assert!(HELD_STREAMS > lp2p_quic::INITIAL_CONCURRENT_STREAMS as usize);
        assert!(HELD_STREAMS < lp2p_quic::DEFAULT_MAX_CONCURRENT_STREAMS as usize);
        within(&rt, async {
            let mut opened = Vec::new();
            let mut accepted = Vec::new();
            // Each stream stays open; the remote cannot open one more than its limit, so
            // this completes only if the limit rose past the initial one.
            for i in 0..HELD_STREAMS {
                let mut s = p.dialer.muxer.open_stream().await.unwrap();
                s.write_all(&[1]).await.unwrap();
                opened.push(s);
                let mut a = p.listener.muxer.accept_stream().await.unwrap();
                let mut byte = [0u8; 1];
                a.read_exact(&mut byte).await.unwrap();
                accepted.push(a);
                assert_eq!(p.listener.muxer.num_streams(), i + 1);
            }
        })
        .await;
    });
}

/// Round trips on one stream. Each one moves quinn-proto's deadlines (loss timer, ACK delay,
/// idle timeout); a connection task that armed a runtime timer for every move would
/// interrupt the reactor several times per round trip (D60).
const ROUND_TRIPS: usize = 200;

#[test]
fn deadlines_that_move_later_do_not_arm_new_timers() {
    block_on(async {
        let p = pair().await;
        let rt = RuntimeHandle::default();
        let armed_before = p.a.stats().timers_armed + p.b.stats().timers_armed;
        within(&rt, async {
            let mut a = p.dialer.muxer.open_stream().await.unwrap();
            a.write_all(b"0").await.unwrap();
            let mut b = p.listener.muxer.accept_stream().await.unwrap();
            let mut byte = [0u8; 1];
            for _ in 0..ROUND_TRIPS {
                b.read_exact(&mut byte).await.unwrap();
                b.write_all(&byte).await.unwrap();
                a.read_exact(&mut byte).await.unwrap();
                a.write_all(&byte).await.unwrap();
            }
        })
        .await;
        let armed = p.a.stats().timers_armed + p.b.stats().timers_armed - armed_before;
        // Both tasks together, over 200 round trips: a timer when a deadline comes earlier
        // than the armed one (a loss timer after a quiet spell), not one per packet.
        assert!(
            armed < ROUND_TRIPS as u64 / 2,
            "{armed} timers armed in {ROUND_TRIPS} round trips"
        );
    });
}

#[test]
fn half_close_keeps_the_other_direction_open() {
    block_on(async {
        let p = pair().await;
        let rt = RuntimeHandle::default();
        within(&rt, async {
            let mut a = p.dialer.muxer.open_stream().await.unwrap();
            a.write_all(b"request").await.unwrap();
            a.close().await.unwrap();
            // Writing after close fails; reading still works.
            assert!(a.write_all(b"more").await.is_err());
            let mut b = p.listener.muxer.accept_stream().await.unwrap();
            let mut got = Vec::new();
            b.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, b"request");
            for chunk in [&b"part one, "[..], b"part two"] {
                b.write_all(chunk).await.unwrap();
            }
            b.close().await.unwrap();
            let mut back = Vec::new();
            a.read_to_end(&mut back).await.unwrap();
            assert_eq!(back, b"part one, part two");
        })
        .await;
    });
}

#[test]
fn reset_aborts_both_directions() {
    block_on(async {
        let p = pair().await;
        let rt = RuntimeHandle::default();
        within(&rt, async {
            let mut a = p.dialer.muxer.open_stream().await.unwrap();
            a.write_all(b"hello").await.unwrap();
            let mut b = p.listener.muxer.accept_stream().await.unwrap();
            let mut buf = [0u8; 5];
            b.read_exact(&mut buf).await.unwrap();
            a.reset();
            // The remote's read fails (not EOF) and its writes fail.
            let mut rest = Vec::new();
            let err = b.read_to_end(&mut rest).await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
            let mut write_failed = false;
            for _ in 0..200 {
                if b.write_all(&[0u8; 1024]).await.is_err() {
                    write_failed = true;
                    break;
                }
                rt.sleep(Duration::from_millis(5)).await;
            }
            assert!(write_failed, "writes to a reset stream kept succeeding");
            // Our own side fails too.
            assert!(a.write_all(b"x").await.is_err());
        })
        .await;
    });
}

#[test]
fn dropping_a_stream_finishes_it_gracefully() {
    block_on(async {
        let p = pair().await;
        let rt = RuntimeHandle::default();
        within(&rt, async {
            let mut a = p.dialer.muxer.open_stream().await.unwrap();
            a.write_all(&vec![7u8; 200_000]).await.unwrap();
            drop(a);
            let mut b = p.listener.muxer.accept_stream().await.unwrap();
            let mut got = Vec::new();
            b.read_to_end(&mut got).await.unwrap();
            assert_eq!(got.len(), 200_000);
        })
        .await;
    });
}

#[test]
fn closing_the_connection_ends_streams_and_accepts() {
    block_on(async {
        let p = pair().await;
        let rt = RuntimeHandle::default();
        within(&rt, async {
            let mut a = p.dialer.muxer.open_stream().await.unwrap();
            a.write_all(b"x").await.unwrap();
            let mut b = p.listener.muxer.accept_stream().await.unwrap();
            p.dialer.muxer.close().await;
            assert!(p.dialer.muxer.is_closed());
            assert!(matches!(
                p.dialer.muxer.open_stream().await,
                Err(Error::ConnectionClosed)
            ));
            // The remote learns it: accept fails, the stream fails.
            assert!(matches!(
                p.listener.muxer.accept_stream().await,
                Err(Error::ConnectionClosed)
            ));
            assert!(p.listener.muxer.is_closed());
            let mut buf = Vec::new();
            assert!(b.read_to_end(&mut buf).await.is_err());
        })
        .await;
    });
}

#[test]
fn idle_timeout_closes_and_keep_alive_prevents_it() {
    block_on(async {
        let rt = RuntimeHandle::default();
        let idle = QuicConfig::default()
            .max_idle_timeout(Duration::from_millis(300))
            .keep_alive_interval(None);
        let p = pair_with(idle).await;
        within(&rt, async {
            while !(p.dialer.muxer.is_closed() && p.listener.muxer.is_closed()) {
                rt.sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert_eq!(p.a.stats().connections_failed, 1);

        let alive = QuicConfig::default()
            .max_idle_timeout(Duration::from_millis(600))
            .keep_alive_interval(Some(Duration::from_millis(100)));
        let p = pair_with(alive).await;
        rt.sleep(Duration::from_millis(1500)).await;
        assert!(!p.dialer.muxer.is_closed());
        assert!(!p.listener.muxer.is_closed());
        within(
            &rt,
            echo_once(&p.dialer.muxer, &p.listener.muxer, b"still here"),
        )
        .await;
    });
}

#[test]
fn dials_go_out_from_the_listen_port() {
    block_on(async {
        let (a, b) = (QuicTransport::default(), QuicTransport::default());
        let (a_ctx, b_ctx) = (ctx(), ctx());
        let (_a_listener, a_addr) = listen(&a, &a_ctx, "/ip4/127.0.0.1/udp/0/quic-v1").await;
        let (mut b_listener, b_addr) = listen(&b, &b_ctx, "/ip4/127.0.0.1/udp/0/quic-v1").await;
        let (dialer, listener) = futures::join!(
            a.dial(&a_ctx, &b_addr, DialOpts::default()),
            accept(&mut b_listener)
        );
        let dialer = dialer.unwrap();
        // The remote sees our listen address, not an ephemeral port.
        assert_eq!(listener.remote_addr, a_addr);
        assert_eq!(dialer.local_addr, a_addr);
    });
}

#[test]
fn ipv6() {
    block_on(async {
        let (a, b) = (QuicTransport::default(), QuicTransport::default());
        let (a_ctx, b_ctx) = (ctx(), ctx());
        let Ok(mut listener) = b
            .listen(&b_ctx, &"/ip6/::1/udp/0/quic-v1".parse().unwrap())
            .await
        else {
            eprintln!("no IPv6 loopback here; skipping");
            return;
        };
        let addr = listener.local_addrs()[0].clone();
        assert!(matches!(addr.iter().next(), Some(Protocol::Ip6(_))));
        let (dialer, inbound) = futures::join!(
            a.dial(&a_ctx, &addr, DialOpts::default()),
            accept(&mut listener)
        );
        let dialer = dialer.unwrap();
        assert_eq!(dialer.peer, b_ctx.local_peer_id());
        assert_eq!(inbound.peer, a_ctx.local_peer_id());
        echo_once(&dialer.muxer, &inbound.muxer, b"v6").await;
    });
}

#[test]
fn peer_id_mismatch() {
    block_on(async {
        let (a, b) = (QuicTransport::default(), QuicTransport::default());
        let (a_ctx, b_ctx) = (ctx(), ctx());
        let (mut listener, addr) = listen(&b, &b_ctx, "/ip4/127.0.0.1/udp/0/quic-v1").await;
        let wanted = PeerId::random();
        let serve = async {
            let incoming = listener.accept().await.unwrap();
            incoming.upgrade.await
        };
        let (dialed, served) = futures::join!(
            a.dial(&a_ctx, &addr, DialOpts::to_peer(Some(wanted))),
            serve
        );
        match dialed.unwrap_err() {
            Error::PeerIdMismatch { expected, actual } => {
                assert_eq!(*expected, wanted);
                assert_eq!(*actual, b_ctx.local_peer_id());
            }
            other => panic!("{other:?}"),
        }
        // The listener saw the dialer abort the handshake.
        assert!(served.is_err());
        // A /p2p/ suffix in the address is the expected peer too.
        let with_p2p = addr.clone().with(Protocol::P2p(wanted));
        let serve = async {
            let incoming = listener.accept().await.unwrap();
            incoming.upgrade.await
        };
        let (err, _) = futures::join!(a.dial(&a_ctx, &with_p2p, DialOpts::default()), serve);
        assert!(matches!(err, Err(Error::PeerIdMismatch { .. })), "{err:?}");
    });
}

#[test]
fn draft_29_is_refused_with_a_clear_error() {
    block_on(async {
        let a = QuicTransport::default();
        let addr = "/ip4/127.0.0.1/udp/4001/quic".parse().unwrap();
        assert!(a.can_dial(&addr));
        assert!(!a.can_listen(&addr));
        match a.dial(&ctx(), &addr, DialOpts::default()).await {
            Err(Error::Dial { source, .. }) => {
                assert_eq!(source.kind(), std::io::ErrorKind::Unsupported);
                let text = source.to_string();
                assert!(
                    text.contains("draft-29") && text.contains("quic-v1"),
                    "{text}"
                );
            }
            other => panic!("{other:?}"),
        }
        for bad in [
            "/ip4/127.0.0.1/tcp/4001",
            "/ip4/127.0.0.1/udp/0/quic-v1",
            "/ip4/0.0.0.0/udp/4001/quic-v1",
        ] {
            assert!(!a.can_dial(&bad.parse().unwrap()), "{bad}");
        }
    });
}

#[test]
fn dropping_an_incoming_refuses_it() {
    block_on(async {
        let (a, b) = (QuicTransport::default(), QuicTransport::default());
        let (a_ctx, b_ctx) = (ctx(), ctx());
        let (mut listener, addr) = listen(&b, &b_ctx, "/ip4/127.0.0.1/udp/0/quic-v1").await;
        let refuse = async {
            let incoming = listener.accept().await.unwrap();
            drop(incoming);
        };
        let (dialed, ()) = futures::join!(a.dial(&a_ctx, &addr, DialOpts::default()), refuse);
        match dialed {
            Err(Error::Dial { source, .. }) => {
                assert_eq!(
                    source.kind(),
                    std::io::ErrorKind::ConnectionRefused,
                    "{source}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(b.stats().incoming_dropped, 1);
    });
}

#[test]
fn the_swarm_check_can_refuse_an_authenticated_peer() {
    block_on(async {
        let (a, b) = (QuicTransport::default(), QuicTransport::default());
        let a_ctx = ctx();
        let mut b_ctx = ctx();
        let refused = a_ctx.local_peer_id();
        b_ctx.on_secured = Some(Arc::new(move |peer: &PeerId, _addr: &_, role: Role| {
            assert_eq!(role, Role::Responder);
            if *peer == refused {
                Err(Error::Denied("too many connections for this peer".into()))
            } else {
                Ok(())
            }
        }));
        let (mut listener, addr) = listen(&b, &b_ctx, "/ip4/127.0.0.1/udp/0/quic-v1").await;
        let serve = async { listener.accept().await.unwrap().upgrade.await };
        let (dialed, served) = futures::join!(a.dial(&a_ctx, &addr, DialOpts::default()), serve);
        assert!(matches!(served, Err(Error::Denied(_))), "{served:?}");
        // The dialer's handshake completed before the refusal; the connection then closes.
        if let Ok(conn) = dialed {
            let rt = RuntimeHandle::default();
            within(&rt, async {
                while !conn.muxer.is_closed() {
                    rt.sleep(Duration::from_millis(10)).await;
                }
            })
            .await;
        }
        assert_eq!(b.stats().connections_denied, 1);
    });
}

#[test]
fn a_dial_to_nobody_fails_within_the_handshake_timeout() {
    block_on(async {
        let a =
            QuicTransport::new(QuicConfig::default().handshake_timeout(Duration::from_millis(500)));
        // A bound UDP socket that never answers.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let addr = format!("/ip4/127.0.0.1/udp/{port}/quic-v1")
            .parse()
            .unwrap();
        let err = RuntimeHandle::default()
            .timeout(PATIENCE, a.dial(&ctx(), &addr, DialOpts::default()))
            .await
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    });
}

#[test]
fn hole_punch_responder_waits_for_the_remote_dial() {
    block_on(async {
        let (a, b) = (QuicTransport::default(), QuicTransport::default());
        let (a_ctx, b_ctx) = (ctx(), ctx());
        let (_a_listener, a_addr) = listen(&a, &a_ctx, "/ip4/127.0.0.1/udp/0/quic-v1").await;
        let (_b_listener, b_addr) = listen(&b, &b_ctx, "/ip4/127.0.0.1/udp/0/quic-v1").await;
        // B is the passive side: it "dials" A as the responder, which punches and waits;
        // A dials B normally, from its listen port.
        let passive = b.dial(
            &b_ctx,
            &a_addr,
            DialOpts {
                expected_peer: Some(a_ctx.local_peer_id()),
                port_reuse: true,
                role: Role::Responder,
            },
        );
        let active = async {
            RuntimeHandle::default()
                .sleep(Duration::from_millis(100))
                .await;
            a.dial(
                &a_ctx,
                &b_addr,
                DialOpts::to_peer(Some(b_ctx.local_peer_id())),
            )
            .await
        };
        let (passive, active) = futures::join!(passive, active);
        let (passive, active) = (passive.unwrap(), active.unwrap());
        assert_eq!(passive.peer, a_ctx.local_peer_id());
        assert_eq!(active.peer, b_ctx.local_peer_id());
        echo_once(&active.muxer, &passive.muxer, b"punched").await;
    });
}

#[test]
fn the_listener_reports_what_it_bound() {
    block_on(async {
        let b = QuicTransport::default();
        let (listener, addr) = listen(&b, &ctx(), "/ip4/127.0.0.1/udp/0/quic-v1").await;
        assert_eq!(listener.local_addrs(), vec![addr.clone()]);
        let port = addr
            .iter()
            .find_map(|p| match p {
                Protocol::Udp(port) => Some(port),
                _ => None,
            })
            .unwrap();
        assert_ne!(port, 0);
        // The port is taken.
        let again = b
            .listen(
                &ctx(),
                &format!("/ip4/127.0.0.1/udp/{port}/quic-v1")
                    .parse()
                    .unwrap(),
            )
            .await;
        assert!(
            matches!(again, Err(Error::Listen { .. })),
            "{:?}",
            again.err()
        );
    });
}

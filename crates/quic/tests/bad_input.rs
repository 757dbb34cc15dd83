//! Remotes that misbehave: certificates without the libp2p extension or signed with a foreign
//! key, floods of garbage datagrams and of handshakes, more streams than allowed. Each gets a
//! refused handshake, a connection error or QUIC's stream flow control, counted; the
//! listener keeps serving.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::raw_peer::{
    RawClient, cert_with_foreign_key, cert_without_extension, good_tls_config, tls_config,
};
use common::{PATIENCE, accept, ctx, listen, within};
use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p_core::runtime::block_on;
use lp2p_core::{DialOpts, Error, Listener, Multiaddr, Protocol, RuntimeHandle, Transport};
use lp2p_quic::{QuicConfig, QuicTransport};
use quinn_proto::{ConnectionError, Dir};

fn socket_addr(addr: &Multiaddr) -> SocketAddr {
    let mut ip = None;
    let mut port = None;
    for p in addr {
        match p {
            Protocol::Ip4(v4) => ip = Some(std::net::IpAddr::V4(v4)),
            Protocol::Udp(p) => port = Some(p),
            _ => {}
        }
    }
    SocketAddr::new(ip.unwrap(), port.unwrap())
}

/// Runs a raw client against our listener until it settles; returns the listener's verdict
/// and the client's.
fn raw_handshake(
    tls: lp2p_tls::rustls::ClientConfig,
    expect_failure: bool,
) -> (
    Result<lp2p_core::Established, Error>,
    Result<(), ConnectionError>,
    QuicTransport,
) {
    block_on(async {
        let b = QuicTransport::default();
        let (mut listener, addr) = listen(&b, &ctx(), "/ip4/127.0.0.1/udp/0/quic-v1").await;
        let server = socket_addr(&addr);
        let client = std::thread::spawn(move || {
            let mut raw = RawClient::new();
            let i = raw.connect(server, tls);
            // Connected is not the end: the server checks our certificate after we finished.
            raw.drive(Duration::from_secs(20), |raw| match raw.outcome(i) {
                Some(Err(_)) => true,
                Some(Ok(())) => !expect_failure,
                None => false,
            });
            raw.outcome(i).cloned().unwrap_or(Ok(()))
        });
        let served = within(&RuntimeHandle::default(), async {
            listener.accept().await.unwrap().upgrade.await
        })
        .await;
        let client = client.join().unwrap();
        (served, client, b)
    })
}

fn assert_bad_certificate(served: &Result<lp2p_core::Established, Error>) {
    match served {
        Err(Error::Security { protocol, source }) => {
            assert_eq!(*protocol, "/tls/1.0.0");
            assert!(source.to_string().contains("certificate"), "{source}");
        }
        other => panic!("{:?}", other.as_ref().map(|e| e.peer)),
    }
}

#[test]
fn a_certificate_without_the_extension_is_refused() {
    let (cert, key) = cert_without_extension();
    let (served, client, b) = raw_handshake(tls_config(cert, key), true);
    assert_bad_certificate(&served);
    // The client is told why: a TLS alert in a CONNECTION_CLOSE.
    assert!(
        matches!(client, Err(ConnectionError::ConnectionClosed(_))),
        "{client:?}"
    );
    let stats = b.stats();
    assert_eq!(stats.bad_certificates, 1);
    assert_eq!(stats.handshakes_failed, 1);
    assert_eq!(stats.connections_inbound, 0);
}

#[test]
fn a_certificate_with_a_foreign_key_is_refused() {
    let (cert, key) = cert_with_foreign_key();
    let (served, client, b) = raw_handshake(tls_config(cert, key), true);
    assert!(served.is_err());
    assert!(client.is_err(), "{client:?}");
    assert_eq!(b.stats().bad_certificates, 1);
    assert_eq!(b.stats().connections_inbound, 0);
}

#[test]
fn a_good_raw_client_is_accepted() {
    // The scripted peer itself is sound: with a proper certificate it gets in.
    let (served, client, b) = raw_handshake(good_tls_config(), false);
    assert!(served.is_ok(), "{:?}", served.err());
    assert!(client.is_ok(), "{client:?}");
    assert_eq!(b.stats().connections_inbound, 1);
}

#[test]
fn a_datagram_flood_does_not_stop_the_listener() {
    block_on(async {
        let (a, b) = (QuicTransport::default(), QuicTransport::default());
        let (a_ctx, b_ctx) = (ctx(), ctx());
        let (mut listener, addr) = listen(&b, &b_ctx, "/ip4/127.0.0.1/udp/0/quic-v1").await;
        let target = socket_addr(&addr);
        let flood = std::thread::spawn(move || {
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut packet = [0u8; 1200];
            for i in 0..50_000u32 {
                // Garbage, short headers for unknown connections, and long headers with
                // unsupported versions, in turn.
                packet[..4].copy_from_slice(&i.to_be_bytes());
                packet[0] = match i % 3 {
                    0 => 0x40,
                    1 => 0xc0,
                    _ => 0x00,
                };
                let len = 20 + (i as usize * 7) % 1180;
                let _ = socket.send_to(&packet[..len], target);
            }
        });
        flood.join().unwrap();
        // Still serving.
        let (dialed, inbound) = within(&RuntimeHandle::default(), async {
            futures::join!(
                a.dial(&a_ctx, &addr, DialOpts::default()),
                accept(&mut listener)
            )
        })
        .await;
        let dialed = dialed.unwrap();
        assert_eq!(dialed.peer, b_ctx.local_peer_id());
        assert_eq!(inbound.peer, a_ctx.local_peer_id());
        assert_eq!(b.stats().connections_inbound, 1);
    });
}

#[test]
fn a_handshake_flood_fills_the_pending_queue_then_is_refused() {
    block_on(async {
        let b = QuicTransport::new(QuicConfig::default().max_pending_incoming(16));
        let (mut listener, addr) = listen(&b, &ctx(), "/ip4/127.0.0.1/udp/0/quic-v1").await;
        let server = socket_addr(&addr);
        // 100 handshakes that nobody accepts: 16 wait, the others are refused at once.
        let client = std::thread::spawn(move || {
            let mut raw = RawClient::new();
            let ids: Vec<usize> = (0..100)
                .map(|_| raw.connect(server, good_tls_config()))
                .collect();
            raw.drive(Duration::from_secs(20), |raw| {
                ids.iter().filter(|i| raw.outcome(**i).is_some()).count() >= 84
            });
            ids.iter()
                .filter(|i| {
                    matches!(
                        raw.outcome(**i),
                        Some(Err(ConnectionError::ConnectionClosed(_)))
                    )
                })
                .count()
        });
        let refused = client.join().unwrap();
        assert!(refused >= 84, "refused {refused}");
        assert!(b.stats().incoming_refused >= 84, "{:?}", b.stats());
        // The queued ones are still there, in order, for the swarm to admit.
        let first = within(&RuntimeHandle::default(), listener.accept())
            .await
            .unwrap();
        drop(first);
    });
}

#[test]
fn more_streams_than_allowed_wait_for_credit() {
    block_on(async {
        let rt = RuntimeHandle::default();
        // The listener allows 8 streams at once; the dialer asks for 20.
        let (a, b) = (
            QuicTransport::default(),
            QuicTransport::new(QuicConfig::default().max_concurrent_streams(8)),
        );
        let (a_ctx, b_ctx) = (ctx(), ctx());
        let (mut listener, addr) = listen(&b, &b_ctx, "/ip4/127.0.0.1/udp/0/quic-v1").await;
        let (dialed, inbound) = futures::join!(
            a.dial(&a_ctx, &addr, DialOpts::default()),
            accept(&mut listener)
        );
        let (dialed, inbound) = (dialed.unwrap(), inbound);
        let mut open = Vec::new();
        for _ in 0..8 {
            let mut s = dialed.muxer.open_stream().await.unwrap();
            s.write_all(b"x").await.unwrap();
            open.push(s);
        }
        // The ninth waits: QUIC flow control refuses it until a stream ends.
        let ninth = rt
            .timeout(Duration::from_millis(300), dialed.muxer.open_stream())
            .await;
        assert!(ninth.is_err(), "a ninth stream opened past the limit");
        let mut accepted = Vec::new();
        for _ in 0..8 {
            accepted.push(inbound.muxer.accept_stream().await.unwrap());
        }
        assert_eq!(inbound.muxer.num_streams(), 8);
        // End two streams on both sides; credit arrives (quinn-proto announces new credit
        // once an eighth of the limit is free, here two streams).
        for _ in 0..2 {
            let mut ours = open.remove(0);
            ours.close().await.unwrap();
            let mut theirs = accepted.remove(0);
            let mut sink = Vec::new();
            theirs.read_to_end(&mut sink).await.unwrap();
            theirs.close().await.unwrap();
            ours.read_to_end(&mut sink).await.unwrap();
        }
        let ninth = within(&rt, dialed.muxer.open_stream()).await.unwrap();
        drop(ninth);
    });
}

#[test]
fn a_listener_that_is_dropped_refuses_what_waits() {
    block_on(async {
        let (a, b) = (
            QuicTransport::new(QuicConfig::default().handshake_timeout(PATIENCE)),
            QuicTransport::default(),
        );
        let (listener, addr) = listen(&b, &ctx(), "/ip4/127.0.0.1/udp/0/quic-v1").await;
        let rt = RuntimeHandle::default();
        let a_ctx = ctx();
        let dial = a.dial(&a_ctx, &addr, DialOpts::default());
        let stop = async {
            rt.sleep(Duration::from_millis(200)).await;
            drop::<Box<dyn Listener>>(listener);
        };
        let (dialed, ()) = futures::join!(dial, stop);
        assert!(
            matches!(dialed, Err(Error::Dial { .. })),
            "{:?}",
            dialed.err()
        );
    });
}

#[test]
fn streams_are_bidirectional_only() {
    // A raw client that opens a unidirectional stream breaks the (zero) uni stream limit.
    block_on(async {
        let b = QuicTransport::default();
        let (mut listener, addr) = listen(&b, &ctx(), "/ip4/127.0.0.1/udp/0/quic-v1").await;
        let server = socket_addr(&addr);
        let client = std::thread::spawn(move || {
            let mut raw = RawClient::new();
            let i = raw.connect(server, good_tls_config());
            raw.drive(Duration::from_secs(10), |raw| raw.outcome(i).is_some());
            // quinn-proto itself refuses to open what the remote did not allow.
            raw.conn(i).streams().open(Dir::Uni)
        });
        let served = within(&RuntimeHandle::default(), async {
            listener.accept().await.unwrap().upgrade.await
        })
        .await;
        assert!(served.is_ok());
        assert!(client.join().unwrap().is_none());
    });
}

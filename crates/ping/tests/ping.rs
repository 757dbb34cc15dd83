//! Ping between hosts over lp2p-memory + plaintext + yamux in virtual time (lp2p-testkit:
//! timeouts and keep-alive intervals pass without real waiting), and once over TCP + noise on
//! the real runtime; with peers that answer wrong bytes, never answer, or open too many
//! streams.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use lp2p_core::runtime::block_on;
use lp2p_core::{RuntimeHandle, Stream};
use lp2p_host::{Host, HostEvent, HostStream};
use lp2p_noise::Noise;
use lp2p_ping::{KeepAliveConfig, PROTOCOL, Ping, PingConfig, PingError};
use lp2p_tcp::TcpTransport;
use lp2p_testkit::{hosts, run, wait_until};
use lp2p_yamux::Yamux;

/// For the one test over TCP, on the real runtime (virtual time cannot wait for sockets).
/// Generous: CI machines are slow and loaded.
const TCP_LIMIT: Duration = Duration::from_secs(120);

#[test]
fn ping_and_ping_on_measure_a_round_trip() {
    run(|sim| async move {
        let (server, client) = hosts::pair(&sim).await.unwrap();
        let _server_ping = Ping::new(&server, PingConfig::default());
        let ping = Ping::new(&client, PingConfig::default());
        for _ in 0..5 {
            let rtt = ping.ping(&server.local_peer_id()).await.unwrap();
            // Virtual time: nothing on the memory path arms a timer, so the round trip
            // takes no time at all.
            assert_eq!(rtt, Duration::ZERO);
        }
        // Both ways, and on a given connection.
        let server_ping = Ping::new(&server, PingConfig::default());
        server_ping.ping(&client.local_peer_id()).await.unwrap();
        let conn = client
            .connect(server.local_peer_id(), Vec::new())
            .await
            .unwrap();
        ping.ping_on(&conn).await.unwrap();
        // Six answered pings, each counted with its round trip (zero: the first bucket).
        let stats = ping.stats();
        assert_eq!((stats.ok, stats.failed, stats.rtt.count()), (6, 0, 6));
        assert_eq!(stats.rtt.counts()[0], 6);
        assert!(server.protocols().iter().any(|p| p == PROTOCOL));
        client.close().await;
        server.close().await;
        assert_eq!(client.runtime().live_tasks(), 0);
        assert_eq!(server.runtime().live_tasks(), 0);
    });
}

#[test]
fn ping_dials_when_not_connected_over_tcp_and_noise() {
    let rt = RuntimeHandle::default();
    block_on(rt.clone().timeout(TCP_LIMIT, async move {
        let builder = || {
            Host::builder()
                .transport(TcpTransport::default())
                .security(Noise::new())
                .muxer(Yamux::default())
        };
        let server = builder()
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .build()
            .await
            .unwrap();
        let _server_ping = Ping::new(&server, PingConfig::default());
        let client = builder().build().await.unwrap();
        client
            .peerstore()
            .add_addrs(
                &server.local_peer_id(),
                server.listen_addrs(),
                Duration::from_secs(600),
            )
            .unwrap();
        let ping = Ping::new(&client, PingConfig::default());
        ping.ping(&server.local_peer_id()).await.unwrap();
        assert_eq!(client.connected_peers(), vec![server.local_peer_id()]);
        client.close().await;
        server.close().await;
    }))
    .expect("test timed out");
}

#[test]
fn wrong_bytes_back_are_a_mismatch() {
    run(|sim| async move {
        let (server, client) = hosts::pair(&sim).await.unwrap();
        // A peer that answers each ping with the bytes inverted.
        server.set_stream_handler(PROTOCOL, |mut s: HostStream| async move {
            let mut block = [0u8; 32];
            while s.read_exact(&mut block).await.is_ok() {
                for b in &mut block {
                    *b = !*b;
                }
                if s.write_all(&block).await.is_err() {
                    return;
                }
            }
        });
        let ping = Ping::new(&client, PingConfig::default());
        let err = ping.ping(&server.local_peer_id()).await.unwrap_err();
        assert!(matches!(err, PingError::Mismatch(p) if *p == server.local_peer_id()));
        let stats = ping.stats();
        assert_eq!((stats.ok, stats.failed, stats.rtt.count()), (0, 1, 0));
        // The connection is still usable.
        assert_eq!(client.connected_peers(), vec![server.local_peer_id()]);
        client.close().await;
        server.close().await;
    });
}

#[test]
fn no_answer_is_a_timeout_and_short_answer_an_error() {
    run(|sim| async move {
        let (server, client) = hosts::pair(&sim).await.unwrap();
        // A peer that reads the ping and never answers.
        server.set_stream_handler(PROTOCOL, |mut s: HostStream| async move {
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink).await;
        });
        let config = PingConfig {
            timeout: Duration::from_millis(500),
            ..PingConfig::default()
        };
        let ping = Ping::new(&client, config.clone());
        // Ping replaced the silent handler on the client only; the server keeps it.
        let asked = sim.now();
        let err = ping.ping(&server.local_peer_id()).await.unwrap_err();
        assert!(
            matches!(err, PingError::Timeout { after, .. } if after == Duration::from_millis(500)),
            "{err:?}"
        );
        // Exactly the timeout, in virtual time.
        assert_eq!(sim.now() - asked, Duration::from_millis(500));

        // A peer that answers half a ping and closes.
        server.set_stream_handler(PROTOCOL, |mut s: HostStream| async move {
            let mut block = [0u8; 32];
            if s.read_exact(&mut block).await.is_ok() {
                let _ = s.write_all(&block[..16]).await;
                let _ = s.close().await;
            }
        });
        let err = ping.ping(&server.local_peer_id()).await.unwrap_err();
        assert!(matches!(err, PingError::Io { .. }), "{err:?}");

        // A peer without ping at all.
        server.remove_stream_handler(PROTOCOL);
        let err = ping.ping(&server.local_peer_id()).await.unwrap_err();
        assert!(matches!(err, PingError::Stream { .. }), "{err:?}");
        client.close().await;
        server.close().await;
        // After close: an error, not a hang or a panic.
        assert!(matches!(
            ping.ping(&server.local_peer_id()).await,
            Err(PingError::Closed | PingError::Stream { .. })
        ));
    });
}

#[test]
fn the_echo_handler_serves_several_pings_on_one_stream_and_limits_streams_per_peer() {
    run(|sim| async move {
        let (server, client) = hosts::pair(&sim).await.unwrap();
        let _server_ping = Ping::new(&server, PingConfig::default());
        let peer = server.local_peer_id();
        // Three pings on one stream, as rust-libp2p does.
        let mut s = client.new_stream(&peer, [PROTOCOL]).await.unwrap();
        for i in 0..3u8 {
            let block = [i; 32];
            s.write_all(&block).await.unwrap();
            let mut echo = [0u8; 32];
            s.read_exact(&mut echo).await.unwrap();
            assert_eq!(echo, block);
        }
        // A second stream is accepted; a third at once is reset.
        let mut second = client.new_stream(&peer, [PROTOCOL]).await.unwrap();
        second.write_all(&[9; 32]).await.unwrap();
        let mut echo = [0u8; 32];
        second.read_exact(&mut echo).await.unwrap();
        // (The reset may arrive during negotiation or after it.)
        if let Ok(mut third) = client.new_stream(&peer, [PROTOCOL]).await {
            let _ = third.write_all(&[7; 32]).await;
            let mut buf = [0u8; 32];
            assert!(third.read_exact(&mut buf).await.is_err());
        }
        // Closing one frees a slot.
        s.close().await.unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        let ping = Ping::new(&client, PingConfig::default());
        let mut ok = false;
        for _ in 0..50 {
            if ping.ping(&peer).await.is_ok() {
                ok = true;
                break;
            }
            client.runtime().sleep(Duration::from_millis(20)).await;
        }
        assert!(ok, "a slot freed by a closed stream is reused");
        second.reset();
        client.close().await;
        server.close().await;
    });
}

#[test]
fn keep_alive_closes_a_connection_whose_peer_stops_answering() {
    run(|sim| async move {
        let server = hosts::listening(&sim).await.unwrap();
        // An echo handler that counts the pings it answers.
        let answered = Arc::new(AtomicUsize::new(0));
        let counter = answered.clone();
        server.set_stream_handler(PROTOCOL, move |mut s: HostStream| {
            let counter = counter.clone();
            async move {
                let mut block = [0u8; 32];
                while s.read_exact(&mut block).await.is_ok() {
                    if s.write_all(&block).await.is_err() {
                        return;
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        let (interval, keep_alive_timeout) = (Duration::from_millis(50), Duration::from_secs(2));
        let keep_alive = KeepAliveConfig {
            interval,
            timeout: keep_alive_timeout,
            max_failures: 2,
        };
        let client = hosts::builder(&sim).build().await.unwrap();
        let _ping = Ping::new(&client, PingConfig::default().with_keep_alive(keep_alive));
        let mut events = client.events();
        client
            .connect(server.local_peer_id(), server.listen_addrs())
            .await
            .unwrap();
        // While the server answers, keep-alive pings flow and the connection stays.
        wait_until(sim.runtime(), || answered.load(Ordering::SeqCst) >= 3).await;
        assert_eq!(client.connected_peers(), vec![server.local_peer_id()]);
        // The server goes silent: after two failed pings the client closes the connection.
        server.set_stream_handler(PROTOCOL, |mut s: HostStream| async move {
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink).await;
        });
        let silent_since = sim.now();
        loop {
            match events.next().await.unwrap() {
                HostEvent::Disconnected { peer, .. } if peer == server.local_peer_id() => break,
                _ => {}
            }
        }
        assert!(client.connected_peers().is_empty());
        // Two pings timed out (2 s each), with up to one interval before each: the clock says
        // so exactly, since no real time is involved.
        let took = sim.now() - silent_since;
        assert!(
            took >= 2 * keep_alive_timeout && took <= 2 * (keep_alive_timeout + interval),
            "closed after {took:?}"
        );
        client.close().await;
        server.close().await;
        assert_eq!(client.runtime().live_tasks(), 0);
    });
}

#[test]
fn concurrent_pings_of_one_peer_use_one_stream_at_a_time() {
    run(|sim| async move {
        let (server, client) = hosts::pair(&sim).await.unwrap();
        // An echo handler that records how many pings were between read and echo at once
        // (with one outbound ping per peer at a time, the next ping can only arrive after
        // the previous echo went out).
        let active = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (a, m, rt) = (active.clone(), most.clone(), server.runtime().clone());
        server.set_stream_handler(PROTOCOL, move |mut s: HostStream| {
            let (active, most, rt) = (a.clone(), m.clone(), rt.clone());
            async move {
                let mut block = [0u8; 32];
                while s.read_exact(&mut block).await.is_ok() {
                    let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    // Give a concurrent ping every chance to show up meanwhile.
                    rt.sleep(Duration::from_millis(5)).await;
                    active.fetch_sub(1, Ordering::SeqCst);
                    if s.write_all(&block).await.is_err() {
                        break;
                    }
                }
            }
        });
        let ping = Ping::new(&client, PingConfig::default());
        let peer = server.local_peer_id();
        let results = futures::future::join_all((0..5).map(|_| ping.ping(&peer))).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        // The pinger half-closes and moves on; the handler sees EOF a moment later, so two
        // streams can overlap by that moment, never more.
        assert!(
            most.load(Ordering::SeqCst) <= 2,
            "{}",
            most.load(Ordering::SeqCst)
        );
        client.close().await;
        server.close().await;
    });
}

//! The relay on the memory transport in virtual time (lp2p-testkit): hour-long
//! reservations, renewals and two-minute circuits pass without real waiting.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use lp2p_core::{Multiaddr, Protocol};
use lp2p_host::{HandlerOptions, Host, HostStream};
use lp2p_plaintext::Plaintext;
use lp2p_relay::client::{self, ClientConfig, RelayClient, RelayClientEvent};
use lp2p_relay::message::{HopMessage, PROTOCOL_HOP};
use lp2p_relay::{HopConfig, Limit, RelayService, Status};
use lp2p_swarm::UpgradeStack;
use lp2p_testkit::{SimHandle, hosts, run, wait_until};
use lp2p_yamux::Yamux;

const ECHO: &str = "/lp2p-test/echo/1.0.0";

async fn echo(mut s: HostStream) {
    let mut buf = vec![0u8; 4096];
    while let Ok(n) = s.read(&mut buf).await {
        if n == 0 || s.write_all(&buf[..n]).await.is_err() || s.flush().await.is_err() {
            break;
        }
    }
    let _ = s.close().await;
}

async fn relay_host(sim: &SimHandle, config: HopConfig) -> (Host, RelayService, Multiaddr) {
    let relay = hosts::listening(sim).await.unwrap();
    let service = RelayService::new(&relay, config);
    let addr = relay.listen_addrs()[0]
        .clone()
        .with(Protocol::P2p(relay.local_peer_id()));
    (relay, service, addr)
}

async fn client_host(sim: &SimHandle) -> (Host, RelayClient) {
    let stack = UpgradeStack::new()
        .security(Plaintext::new())
        .muxer(Yamux::default());
    let (transport, client) = client::new(stack, ClientConfig::default());
    let host = hosts::builder(sim)
        .transport(transport)
        .on_start(client.hook())
        .build()
        .await
        .unwrap();
    host.set_stream_handler_with(ECHO, HandlerOptions::allow_limited(), echo);
    (host, client)
}

async fn next_reservation(events: &mut lp2p_swarm::EventStream<RelayClientEvent>) -> bool {
    loop {
        match events.next().await {
            Some(RelayClientEvent::ReservationAccepted { renewal, .. }) => return renewal,
            Some(_) => {}
            None => panic!("client events ended"),
        }
    }
}

#[test]
fn circuit_is_reset_at_its_duration_limit() {
    run(|sim| async move {
        let limit = Duration::from_secs(120);
        let (relay, service, relay_addr) = relay_host(
            &sim,
            HopConfig {
                circuit_limit: Limit {
                    duration: Some(limit),
                    data: None,
                },
                ..HopConfig::default()
            },
        )
        .await;
        let (a, _a_client) = client_host(&sim).await;
        a.listen_on(&relay_addr.clone().with(Protocol::P2pCircuit))
            .await
            .unwrap();
        let (b, _b_client) = client_host(&sim).await;
        let target = relay_addr
            .with(Protocol::P2pCircuit)
            .with(Protocol::P2p(a.local_peer_id()));
        let conn = b.connect_addr(target).await.unwrap();
        assert!(conn.is_limited());
        let opened = sim.now();
        let mut s = b
            .new_stream_allow_limited(&a.local_peer_id(), [ECHO])
            .await
            .unwrap();
        // Keep the circuit busy: one echo every ten seconds until it breaks.
        let broke_at = loop {
            let ok = async {
                s.write_all(b"tick").await?;
                s.flush().await?;
                let mut back = [0u8; 4];
                s.read_exact(&mut back).await?;
                Ok::<_, std::io::Error>(back == *b"tick")
            }
            .await;
            if !matches!(ok, Ok(true)) {
                break sim.now();
            }
            assert!(
                sim.now() - opened < limit * 2,
                "the circuit outlived its limit"
            );
            sim.sleep(Duration::from_secs(10)).await;
        };
        assert!(broke_at - opened >= limit, "reset before the limit");
        wait_until(sim.runtime(), || {
            b.connections(&a.local_peer_id()).is_empty() && service.num_circuits() == 0
        })
        .await;
        assert_eq!(service.stats().circuits_over_limit, 1);
        for h in [b, a, relay] {
            h.close().await;
        }
    });
}

#[test]
fn reservation_is_renewed_and_made_again_after_the_relay_connection_drops() {
    run(|sim| async move {
        let (relay, service, relay_addr) = relay_host(&sim, HopConfig::default()).await;
        let relay_id = relay.local_peer_id();
        let (a, a_client) = client_host(&sim).await;
        let mut events = a_client.events();
        a.listen_on(&relay_addr.clone().with(Protocol::P2pCircuit))
            .await
            .unwrap();
        assert!(!next_reservation(&mut events).await);
        assert_eq!(service.num_reservations(), 1);
        // Idle for most of the hour: the connection to the relay stays (no idle close on
        // either side), and the client renews at three quarters of the reservation.
        let before = sim.now();
        assert!(next_reservation(&mut events).await, "expected a renewal");
        let renewed_after = sim.now() - before;
        assert!(
            renewed_after >= Duration::from_secs(2600)
                && renewed_after <= Duration::from_secs(2800),
            "renewed after {renewed_after:?}"
        );
        assert_eq!(a_client.stats().reservations, 2);
        assert_eq!(service.stats().reservations_accepted, 2);
        assert_eq!(service.num_reservations(), 1);

        // The connection to the relay drops: the relay forgets the reservation, the client
        // reconnects and reserves again (not a renewal: a fresh reservation).
        for conn in a.connections(&relay_id) {
            conn.close().await;
        }
        assert!(!next_reservation(&mut events).await);
        assert_eq!(service.num_reservations(), 1);
        assert_eq!(a_client.reservations().len(), 1);

        // And a peer can still reach A through the relay.
        let (b, _b_client) = client_host(&sim).await;
        let target = relay_addr
            .with(Protocol::P2pCircuit)
            .with(Protocol::P2p(a.local_peer_id()));
        assert!(b.connect_addr(target).await.unwrap().is_limited());
        for h in [b, a, relay] {
            h.close().await;
        }
    });
}

#[test]
fn no_reservation_over_a_relayed_connection() {
    run(|sim| async move {
        let (relay, _service, relay_addr) = relay_host(&sim, HopConfig::default()).await;
        // A is reachable through the relay and runs a hop service of its own.
        let (a, _a_client) = client_host(&sim).await;
        let a_service = RelayService::new(&a, HopConfig::default());
        a.listen_on(&relay_addr.clone().with(Protocol::P2pCircuit))
            .await
            .unwrap();
        let (b, b_client) = client_host(&sim).await;
        let a_via_relay = relay_addr
            .with(Protocol::P2pCircuit)
            .with(Protocol::P2p(a.local_peer_id()));
        assert!(
            b.connect_addr(a_via_relay.clone())
                .await
                .unwrap()
                .is_limited()
        );

        // The client does not chain relays: reserving on A over the circuit is refused
        // before anything is sent.
        let err = b_client.reserve(&a_via_relay).await.unwrap_err();
        assert!(
            matches!(err, lp2p_relay::RelayError::RelayedRelay { .. }),
            "{err}"
        );
        // Asked anyway over the relayed connection, A's hop service refuses and counts it.
        let mut s = b
            .new_stream_allow_limited(&a.local_peer_id(), [PROTOCOL_HOP])
            .await
            .unwrap();
        lp2p_core::framing::write_frame(&mut s, &HopMessage::Reserve.encode())
            .await
            .unwrap();
        s.flush().await.unwrap();
        let body = lp2p_core::framing::read_frame(&mut s, 4096).await.unwrap();
        match HopMessage::decode(&body).unwrap() {
            HopMessage::Status {
                status,
                reservation,
                ..
            } => {
                assert_eq!(status, Status::PermissionDenied);
                assert!(reservation.is_none());
            }
            other => panic!("unexpected answer {other:?}"),
        }
        assert_eq!(a_service.stats().reservations_refused_relayed, 1);
        assert_eq!(a_service.num_reservations(), 0);
        // A circuit request over it is refused the same way.
        let mut s = b
            .new_stream_allow_limited(&a.local_peer_id(), [PROTOCOL_HOP])
            .await
            .unwrap();
        let connect = HopMessage::Connect {
            peer: relay.local_peer_id(),
        };
        lp2p_core::framing::write_frame(&mut s, &connect.encode())
            .await
            .unwrap();
        s.flush().await.unwrap();
        let body = lp2p_core::framing::read_frame(&mut s, 4096).await.unwrap();
        assert!(matches!(
            HopMessage::decode(&body).unwrap(),
            HopMessage::Status {
                status: Status::PermissionDenied,
                ..
            }
        ));
        assert_eq!(a_service.stats().circuits_refused_relayed, 1);
        for h in [b, a, relay] {
            h.close().await;
        }
    });
}

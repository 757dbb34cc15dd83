//! Three lp2p hosts on 127.0.0.1 over TCP + noise + yamux, on the real runtime: R runs the
//! hop service, A reserves on R and listens on `/p2p-circuit`, B dials A through
//! `<R>/p2p/R/p2p-circuit/p2p/A`. The relayed connection is limited on both ends; a ping
//! handler registered with `allow_limited` answers over it, one without is refused; the
//! circuit's data limit resets both streams.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use lp2p_core::runtime::block_on;
use lp2p_core::{Multiaddr, Protocol, RuntimeHandle};
use lp2p_host::{HandlerOptions, Host, HostBuilder, HostError, HostStream};
use lp2p_noise::Noise;
use lp2p_relay::client::{self, ClientConfig, RelayClient, RelayClientEvent};
use lp2p_relay::{HopConfig, Limit, RelayService};
use lp2p_swarm::UpgradeStack;
use lp2p_tcp::TcpTransport;
use lp2p_yamux::Yamux;

/// Generous: CI machines are slow and loaded. Only a bound against hangs, never a timing
/// assertion.
const LIMIT: Duration = Duration::from_secs(120);
/// The ping protocol (32 bytes echoed), served over limited connections by opting in.
const PING: &str = "/ipfs/ping/1.0.0";
/// A protocol registered without `allow_limited`.
const DIRECT_ONLY: &str = "/lp2p-test/direct-only/1.0.0";
/// An echo served over limited connections, to push bytes through the circuit.
const ECHO: &str = "/lp2p-test/echo/1.0.0";
/// The circuit data limit the relay applies in this test: far above what the handshakes
/// and a ping need, far below the bulk transfer that must trip it.
const DATA_LIMIT: u64 = 64 * 1024;

fn tcp_builder() -> HostBuilder {
    Host::builder()
        .transport(TcpTransport::default())
        .security(Noise::new())
        .muxer(Yamux::default())
}

async fn relay_client_host() -> (Host, RelayClient) {
    let stack = UpgradeStack::new()
        .security(Noise::new())
        .muxer(Yamux::default());
    let (transport, client) = client::new(stack, ClientConfig::default());
    let host = tcp_builder()
        .transport(transport)
        .on_start(client.hook())
        .build()
        .await
        .unwrap();
    (host, client)
}

async fn echo(mut s: HostStream) {
    let mut buf = vec![0u8; 4096];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if s.write_all(&buf[..n]).await.is_err() || s.flush().await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = s.close().await;
}

#[test]
fn relayed_connection_over_tcp_is_limited_and_enforced() {
    let rt = RuntimeHandle::default();
    block_on(rt.clone().timeout(LIMIT, async move {
        // R: the relay, with a small data limit per circuit.
        let relay = tcp_builder()
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .build()
            .await
            .unwrap();
        let service = RelayService::new(
            &relay,
            HopConfig {
                circuit_limit: Limit {
                    duration: Some(Duration::from_secs(600)),
                    data: Some(DATA_LIMIT),
                },
                ..HopConfig::default()
            },
        );
        assert!(relay.service::<RelayService>().is_some());
        let relay_id = relay.local_peer_id();
        let relay_addr = relay.listen_addrs()[0]
            .clone()
            .with(Protocol::P2p(relay_id));

        // A: reachable only through R.
        let (a, a_client) = relay_client_host().await;
        let a_id = a.local_peer_id();
        a.set_stream_handler_with(PING, HandlerOptions::allow_limited(), echo);
        a.set_stream_handler_with(ECHO, HandlerOptions::allow_limited(), echo);
        a.set_stream_handler(DIRECT_ONLY, echo);
        let mut a_events = a_client.events();
        a.listen_on(&relay_addr.clone().with(Protocol::P2pCircuit))
            .await
            .unwrap();
        // The reservation is granted, with a voucher that verified, and A's address
        // through R is announced.
        let Some(RelayClientEvent::ReservationAccepted {
            reservation,
            renewal,
        }) = a_events.next().await
        else {
            panic!("no reservation event");
        };
        assert!(!renewal);
        assert_eq!(reservation.relay, relay_id);
        assert!(
            reservation
                .addrs
                .iter()
                .all(|addr| addr.iter().any(|p| p == Protocol::P2pCircuit))
        );
        assert_eq!(
            reservation.limit.and_then(|l| l.data),
            Some(DATA_LIMIT),
            "the reservation tells the client the circuit limits"
        );
        assert_eq!(service.num_reservations(), 1);
        assert_eq!(a_client.reservations().len(), 1);
        assert_eq!(
            a.service::<RelayClient>().map(|c| c.stats().reservations),
            Some(1)
        );
        assert!(
            a.listen_addrs()
                .iter()
                .any(|addr| addr.iter().any(|p| p == Protocol::P2pCircuit)),
            "A listens on its circuit address: {:?}",
            a.listen_addrs()
        );

        // B dials A through R.
        let (b, b_client) = relay_client_host().await;
        let target: Multiaddr = relay_addr
            .clone()
            .with(Protocol::P2pCircuit)
            .with(Protocol::P2p(a_id));
        let conn = b.connect_addr(target).await.unwrap();
        assert_eq!(conn.peer(), a_id);
        assert!(conn.is_limited(), "a relayed connection is limited");
        assert!(
            conn.remote_addr().iter().any(|p| p == Protocol::P2pCircuit),
            "remote address {}",
            conn.remote_addr()
        );
        assert_eq!(b_client.stats().outbound_circuits, 1);
        // A's side of the circuit is limited too.
        let mut waited = 0;
        while !a
            .connections(&b.local_peer_id())
            .iter()
            .any(lp2p_swarm::Connection::is_limited)
        {
            waited += 1;
            assert!(waited < 1000, "A never saw the relayed connection");
            rt.sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(a_client.stats().inbound_circuits, 1);
        assert_eq!(service.stats().circuits_accepted, 1);

        // A handler that opted in answers a ping over the relayed connection.
        let mut ping = b.new_stream_allow_limited(&a_id, [PING]).await.unwrap();
        let payload: Vec<u8> = (0u8..32).collect();
        ping.write_all(&payload).await.unwrap();
        ping.flush().await.unwrap();
        let mut back = [0u8; 32];
        ping.read_exact(&mut back).await.unwrap();
        assert_eq!(back.as_slice(), payload.as_slice());
        let _ = ping.close().await;

        // Without opting in: `new_stream` refuses to spend the limited connection...
        match b.new_stream(&a_id, [DIRECT_ONLY]).await {
            Err(HostError::LimitedConnection { peer, .. }) => assert_eq!(peer, a_id),
            other => panic!("expected LimitedConnection, got {:?}", other.map(|_| ())),
        }
        // ...and asked anyway, A does not run a handler that did not opt in: it answers
        // "na" to the proposal (A saw no identify, so the negotiation is not lazy).
        match b.new_stream_allow_limited(&a_id, [DIRECT_ONLY]).await {
            Err(HostError::ProtocolNotSupported { peer, .. }) => assert_eq!(peer, a_id),
            other => panic!("expected ProtocolNotSupported, got {:?}", other.map(|_| ())),
        }
        // The same protocol offered with one that opted in: A picks the latter.
        let s = b
            .new_stream_allow_limited(&a_id, [DIRECT_ONLY, PING])
            .await
            .unwrap();
        assert_eq!(s.protocol().as_ref(), PING);
        drop(s);

        // The data limit: pushing more than DATA_LIMIT through the circuit makes the relay
        // reset both of its streams, which ends the relayed connection on both sides.
        let mut bulk = b.new_stream_allow_limited(&a_id, [ECHO]).await.unwrap();
        let chunk = vec![0x5au8; 8 * 1024];
        let mut sent: u64 = 0;
        let mut failed = false;
        let mut sink = vec![0u8; 8 * 1024];
        while sent < 4 * DATA_LIMIT {
            if bulk.write_all(&chunk).await.is_err() || bulk.flush().await.is_err() {
                failed = true;
                break;
            }
            sent += chunk.len() as u64;
            if bulk.read_exact(&mut sink).await.is_err() {
                failed = true;
                break;
            }
        }
        assert!(
            failed,
            "{sent} bytes went through a circuit limited to {DATA_LIMIT}"
        );
        let mut waited = 0;
        while service.stats().circuits_over_limit == 0
            || !b.connections(&a_id).is_empty()
            || !a.connections(&b.local_peer_id()).is_empty()
        {
            waited += 1;
            assert!(
                waited < 3000,
                "the circuit was not torn down: stats {:?}, B->A {}, A->B {}",
                service.stats(),
                b.connections(&a_id).len(),
                a.connections(&b.local_peer_id()).len()
            );
            rt.sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(service.stats().circuits_over_limit, 1);
        assert_eq!(service.num_circuits(), 0);
        // A's reservation survives the circuit (its own connection to R is untouched).
        assert_eq!(service.num_reservations(), 1);

        for h in [b, a, relay] {
            h.close().await;
        }
    }))
    .expect("the test did not finish in time");
}

#[test]
fn reservations_follow_reachability() {
    let rt = RuntimeHandle::default();
    block_on(rt.clone().timeout(LIMIT, async move {
        let relay = tcp_builder()
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .build()
            .await
            .unwrap();
        let _service = RelayService::new(&relay, HopConfig::default());
        let relay_id = relay.local_peer_id();
        let relay_addr = relay.listen_addrs()[0]
            .clone()
            .with(Protocol::P2p(relay_id));
        let (a, a_client) = relay_client_host().await;
        let mut events = a_client.events();
        let circuit_listening = |a: &Host| {
            a.listen_addrs()
                .iter()
                .any(|addr| addr.iter().any(|p| p == Protocol::P2pCircuit))
        };
        let (tx, rx) = futures::channel::mpsc::unbounded();
        a_client.reserve_while_unreachable(&a, vec![relay_addr.clone()], rx);
        // Nothing is known yet: reserved at once.
        let reservation = loop {
            if let Some(RelayClientEvent::ReservationAccepted { reservation, .. }) =
                events.next().await
            {
                break reservation;
            }
        };
        assert_eq!(reservation.relay, relay_id);
        // The event comes as the listener is made, a moment before the swarm lists it.
        wait_until(&a, || circuit_listening(&a)).await;
        // Publicly reachable: given up.
        tx.unbounded_send(true).unwrap();
        loop {
            if let Some(RelayClientEvent::ReservationReleased { relay }) = events.next().await {
                assert_eq!(relay, relay_id);
                break;
            }
        }
        assert!(!circuit_listening(&a));
        // The listener's guard forgets the reservation as its aborted task is dropped.
        wait_until(&a, || a_client.reservations().is_empty()).await;
        // Not any more: reserved again.
        tx.unbounded_send(false).unwrap();
        loop {
            if let Some(RelayClientEvent::ReservationAccepted { reservation, .. }) =
                events.next().await
            {
                assert_eq!(reservation.relay, relay_id);
                break;
            }
        }
        wait_until(&a, || circuit_listening(&a)).await;
        a.close().await;
        relay.close().await;
    }))
    .expect("the test hung");
}

/// Polls `check` until it holds; the test's own timeout bounds the wait.
async fn wait_until(host: &Host, check: impl Fn() -> bool) {
    while !check() {
        host.runtime().sleep(Duration::from_millis(10)).await;
    }
}

//! Circuit relay v2 against rust-libp2p 0.57 (libp2p-relay 0.22) as the relay: lp2p host A
//! reserves a slot on the rust-libp2p relay and listens on `/p2p-circuit`, lp2p host B dials
//! A through `<relay>/p2p/R/p2p-circuit/p2p/A`; an echo runs over the circuit (B's hop
//! CONNECT, A's stop handler, noise and yamux over rust-libp2p's splice), the connection is
//! limited on both ends, and the rust relay reports the accepted reservation and circuit.
//! Over TCP on 127.0.0.1 with noise + yamux.

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, relay};
use lp2p_host::{HandlerOptions, Host, HostStream};
use lp2p_interop::{init_tracing, run, tokio_runtime};
use lp2p_relay::client::{self, ClientConfig, RelayClient, RelayClientEvent};
use tokio::sync::mpsc;

const ECHO: &str = "/lp2p-interop/echo/1.0.0";

/// What the rust relay's task reports.
#[derive(Debug)]
enum Report {
    Listening(Multiaddr),
    Relay(String),
    ReservationAccepted(PeerId),
    CircuitAccepted(PeerId, PeerId),
}

/// A listening rust-libp2p swarm whose only behaviour is the relay (default limits). It
/// declares its listen address external: libp2p-relay serves only once it has one.
fn start_rust_relay(
    rt: &tokio::runtime::Runtime,
) -> (
    PeerId,
    mpsc::UnboundedReceiver<Report>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (report_tx, reports) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    rt.spawn(async move {
        let mut swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                libp2p::tcp::Config::default(),
                libp2p::noise::Config::new,
                libp2p::yamux::Config::default,
            )
            .expect("tcp")
            .with_behaviour(|key| {
                relay::Behaviour::new(key.public().to_peer_id(), relay::Config::default())
            })
            .expect("behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        swarm
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("addr"))
            .expect("listen");
        let _ = ready_tx.send(*swarm.local_peer_id());
        loop {
            tokio::select! {
                event = swarm.select_next_some() => match event {
                    SwarmEvent::NewListenAddr { address, .. } => {
                        swarm.add_external_address(address.clone());
                        let _ = report_tx.send(Report::Listening(address));
                    }
                    SwarmEvent::Behaviour(relay::Event::ReservationReqAccepted { src_peer_id, .. }) => {
                        let _ = report_tx.send(Report::ReservationAccepted(src_peer_id));
                    }
                    SwarmEvent::Behaviour(relay::Event::CircuitReqAccepted { src_peer_id, dst_peer_id }) => {
                        let _ = report_tx.send(Report::CircuitAccepted(src_peer_id, dst_peer_id));
                    }
                    SwarmEvent::Behaviour(other) => {
                        let _ = report_tx.send(Report::Relay(format!("{other:?}")));
                    }
                    _ => {}
                },
                _ = &mut stop_rx => break,
            }
        }
    });
    let peer = ready_rx.blocking_recv().expect("relay started");
    (peer, reports, stop_tx)
}

async fn lp2p_client_host() -> (Host, RelayClient) {
    let stack = lp2p_swarm::UpgradeStack::new()
        .security(lp2p_noise::Noise::new())
        .muxer(lp2p_yamux::Yamux::default());
    let (transport, client) = client::new(stack, ClientConfig::default());
    let host = Host::builder()
        .transport(lp2p_tcp::TcpTransport::default())
        .transport(transport)
        .security(lp2p_noise::Noise::new())
        .muxer(lp2p_yamux::Yamux::default())
        .on_start(client.hook())
        .build()
        .await
        .expect("lp2p host");
    (host, client)
}

#[test]
fn lp2p_clients_reserve_and_connect_through_a_rust_libp2p_relay() {
    init_tracing();
    let rt = tokio_runtime();
    let (relay_id, mut reports, stop) = start_rust_relay(&rt);
    let relay_addr = lp2p_interop::recv_matching(&rt, &mut reports, |r| match r {
        Report::Listening(addr) => Some(addr),
        _ => None,
    });
    let relay_addr: lp2p_core::Multiaddr = relay_addr
        .with(libp2p::multiaddr::Protocol::P2p(relay_id))
        .to_string()
        .parse()
        .expect("same multiaddr crate");

    // A reserves on the rust relay.
    let (a, a_client) = run("lp2p host A", lp2p_client_host());
    a.set_stream_handler_with(
        ECHO,
        HandlerOptions::allow_limited(),
        |mut s: HostStream| async move {
            let mut buf = Vec::new();
            if s.read_to_end(&mut buf).await.is_ok() {
                let _ = s.write_all(&buf).await;
                let _ = s.close().await;
            }
        },
    );
    let reservation = run("A reserves on the rust relay", async {
        let mut events = a_client.events();
        a.listen_on(&relay_addr.clone().with(lp2p_core::Protocol::P2pCircuit))
            .await
            .expect("reservation on the rust-libp2p relay");
        loop {
            if let Some(RelayClientEvent::ReservationAccepted { reservation, .. }) =
                events.next().await
            {
                break reservation;
            }
        }
    });
    assert_eq!(reservation.relay.to_bytes(), relay_id.to_bytes());
    // libp2p-relay 0.22 tells the circuit limits (2 min, 128 KiB by default).
    let limit = reservation.limit.expect("rust relay sends limits");
    assert_eq!(limit.duration, Some(Duration::from_secs(120)));
    assert_eq!(limit.data, Some(1 << 17));
    let a_id = a.local_peer_id();
    let reserved = lp2p_interop::recv_matching(&rt, &mut reports, |r| match r {
        Report::ReservationAccepted(p) => Some(p),
        Report::Relay(other) if other.contains("Denied") || other.contains("Failed") => {
            panic!("rust relay: {other}")
        }
        _ => None,
    });
    assert_eq!(reserved.to_bytes(), a_id.to_bytes());

    // B dials A through the rust relay and runs an echo over the circuit.
    let (b, _b_client) = run("lp2p host B", lp2p_client_host());
    let target = relay_addr
        .clone()
        .with(lp2p_core::Protocol::P2pCircuit)
        .with(lp2p_core::Protocol::P2p(a_id));
    run("B reaches A through the rust relay", async {
        let conn = b.connect_addr(target).await.expect("relayed connection");
        assert!(conn.is_limited());
        let mut s = b
            .new_stream_allow_limited(&a_id, [ECHO])
            .await
            .expect("stream over the circuit");
        let payload = vec![0x42u8; 10_000];
        s.write_all(&payload).await.expect("write");
        s.close().await.expect("close");
        let mut back = Vec::new();
        s.read_to_end(&mut back).await.expect("echo");
        assert_eq!(back, payload);
        // A's side is limited too.
        assert!(
            a.connections(&b.local_peer_id())
                .iter()
                .all(lp2p_swarm::Connection::is_limited)
        );
    });
    let (src, dst) = lp2p_interop::recv_matching(&rt, &mut reports, |r| match r {
        Report::CircuitAccepted(src, dst) => Some((src, dst)),
        Report::Relay(other) if other.contains("Denied") || other.contains("Failed") => {
            panic!("rust relay: {other}")
        }
        _ => None,
    });
    assert_eq!(src.to_bytes(), b.local_peer_id().to_bytes());
    assert_eq!(dst.to_bytes(), a_id.to_bytes());

    run("close", async {
        b.close().await;
        a.close().await;
    });
    let _ = stop.send(());
}

#[derive(libp2p::swarm::NetworkBehaviour)]
struct ClientBehaviour {
    relay_client: relay::client::Behaviour,
    ping: libp2p::ping::Behaviour,
}

/// What the rust client's task reports.
#[derive(Debug)]
enum ClientReport {
    Reserved { renewal: bool },
    InboundCircuit(PeerId),
}

/// A rust-libp2p node with the relay client and ping that listens through `relay_addr`
/// (reserving there).
fn start_rust_client(
    rt: &tokio::runtime::Runtime,
    relay_addr: Multiaddr,
) -> (
    PeerId,
    mpsc::UnboundedReceiver<ClientReport>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (report_tx, reports) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    rt.spawn(async move {
        let mut swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                libp2p::tcp::Config::default(),
                libp2p::noise::Config::new,
                libp2p::yamux::Config::default,
            )
            .expect("tcp")
            .with_relay_client(libp2p::noise::Config::new, libp2p::yamux::Config::default)
            .expect("relay client")
            .with_behaviour(|_, relay_client| ClientBehaviour {
                relay_client,
                ping: libp2p::ping::Behaviour::default(),
            })
            .expect("behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        swarm
            .listen_on(relay_addr.with(libp2p::multiaddr::Protocol::P2pCircuit))
            .expect("listen through the relay");
        let _ = ready_tx.send(*swarm.local_peer_id());
        loop {
            tokio::select! {
                event = swarm.select_next_some() => match event {
                    SwarmEvent::Behaviour(ClientBehaviourEvent::RelayClient(
                        relay::client::Event::ReservationReqAccepted { renewal, .. },
                    )) => {
                        let _ = report_tx.send(ClientReport::Reserved { renewal });
                    }
                    SwarmEvent::Behaviour(ClientBehaviourEvent::RelayClient(
                        relay::client::Event::InboundCircuitEstablished { src_peer_id, .. },
                    )) => {
                        let _ = report_tx.send(ClientReport::InboundCircuit(src_peer_id));
                    }
                    _ => {}
                },
                _ = &mut stop_rx => break,
            }
        }
    });
    let peer = ready_rx.blocking_recv().expect("client started");
    (peer, reports, stop_tx)
}

#[test]
fn rust_libp2p_client_reserves_on_an_lp2p_relay_and_is_reached_through_it() {
    init_tracing();
    let rt = tokio_runtime();
    // R: the lp2p relay (default limits).
    let relay = run("lp2p relay", async {
        Host::builder()
            .transport(lp2p_tcp::TcpTransport::default())
            .security(lp2p_noise::Noise::new())
            .muxer(lp2p_yamux::Yamux::default())
            .on_start(lp2p_relay::RelayService::hook(
                lp2p_relay::HopConfig::default(),
            ))
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("addr"))
            .build()
            .await
            .expect("lp2p relay host")
    });
    let service = relay
        .service::<lp2p_relay::RelayService>()
        .expect("relay service");
    let relay_addr = relay.listen_addrs()[0]
        .clone()
        .with(lp2p_core::Protocol::P2p(relay.local_peer_id()));

    // The rust node reserves on it (verifying nothing: rust-libp2p ignores vouchers, but it
    // decodes our reservation and its limits).
    let (rust_id, mut reports, stop) = start_rust_client(&rt, relay_addr.clone());
    let renewal = lp2p_interop::recv_matching(&rt, &mut reports, |r| match r {
        ClientReport::Reserved { renewal } => Some(renewal),
        ClientReport::InboundCircuit(_) => None,
    });
    assert!(!renewal);
    assert_eq!(service.num_reservations(), 1);

    // An lp2p client dials the rust node through the lp2p relay and pings it over the
    // circuit (rust-libp2p's ping handler serves relayed connections).
    let (b, _b_client) = run("lp2p host B", lp2p_client_host());
    // B answers pings over limited connections too: rust-libp2p's ping handler pings every
    // connection and, when the peer refuses ping, stops answering inbound pings on it.
    b.set_stream_handler_with(
        "/ipfs/ping/1.0.0",
        HandlerOptions::allow_limited(),
        |mut s: HostStream| async move {
            let mut buf = [0u8; 32];
            while s.read_exact(&mut buf).await.is_ok() {
                if s.write_all(&buf).await.is_err() || s.flush().await.is_err() {
                    break;
                }
            }
        },
    );
    let target = relay_addr
        .with(lp2p_core::Protocol::P2pCircuit)
        .with(lp2p_core::Protocol::P2p(rust_id));
    run("B pings the rust node through the lp2p relay", async {
        let conn = b.connect_addr(target).await.expect("relayed connection");
        assert!(conn.is_limited());
        let mut s = b
            .new_stream_allow_limited(&rust_id, ["/ipfs/ping/1.0.0"])
            .await
            .expect("ping stream over the circuit");
        for round in 0u8..3 {
            let payload = [round; 32];
            s.write_all(&payload).await.expect("write");
            s.flush().await.expect("flush");
            let mut back = [0u8; 32];
            s.read_exact(&mut back).await.expect("echo");
            assert_eq!(back, payload);
        }
        let _ = s.close().await;
    });
    let src = lp2p_interop::recv_matching(&rt, &mut reports, |r| match r {
        ClientReport::InboundCircuit(src) => Some(src),
        ClientReport::Reserved { .. } => None,
    });
    assert_eq!(src, b.local_peer_id());
    let stats = service.stats();
    assert_eq!(stats.reservations_accepted, 1);
    assert_eq!(stats.circuits_accepted, 1);

    let _ = stop.send(());
    run("close", async {
        b.close().await;
        relay.close().await;
    });
}

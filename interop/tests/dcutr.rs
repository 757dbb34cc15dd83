//! DCUtR against rust-libp2p 0.57 (libp2p-dcutr 0.15), both roles, over TCP + noise + yamux
//! on 127.0.0.1 with an lp2p relay in the middle:
//! - a rust peer behind the relay is dialed through it by an lp2p peer: the rust peer opens
//!   the `/libp2p/dcutr` stream (it received the relayed connection), we answer its
//!   `CONNECT` with ours, dial on its `SYNC`, and a direct connection results;
//! - the other way round: an lp2p peer behind the relay opens the exchange with a rust
//!   peer that dialed it through the relay; the rust peer dials on our `SYNC` and reports
//!   the upgrade.
//!
//! On loopback there is no NAT: the dial of the peer that dials on `SYNC` reaches the other
//! one's listener directly. That peer does not listen here: otherwise the other side's dial
//! (as the handshake's server) could reach its listener first, and both ends of that
//! connection would wait as servers; no NAT lets such an unsolicited connection through, on
//! loopback it would make the outcome depend on which dial wins. What this proves is the
//! wire exchange and the roles against another implementation, not NAT traversal.

use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, dcutr, identify, relay};
use lp2p_dcutr::{Dcutr, DcutrConfig, DcutrEvent};
use lp2p_host::Host;
use lp2p_interop::{init_tracing, recv_matching, run, tokio_runtime};
use lp2p_relay::client::{self, ClientConfig, RelayClientEvent};
use tokio::sync::{mpsc, oneshot};

const IDENTIFY_VERSION: &str = "/ipfs/id/1.0.0";

fn rust_addr(addr: &lp2p_core::Multiaddr) -> Multiaddr {
    addr.to_string().parse().expect("same multiaddr format")
}

fn lp2p_peer(peer: PeerId) -> lp2p_core::PeerId {
    lp2p_core::PeerId::from_bytes(&peer.to_bytes()).expect("same peer id format")
}

fn rust_peer(peer: lp2p_core::PeerId) -> PeerId {
    PeerId::from_bytes(&peer.to_bytes()).expect("same peer id format")
}

/// An lp2p relay on 127.0.0.1; returns it and its address ending in `/p2p/ID`.
fn lp2p_relay() -> (Host, lp2p_core::Multiaddr) {
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
    // Identify tells each peer the address it is seen at: what DCUtR peers offer.
    let _identify = lp2p_identify::Identify::new(&relay, lp2p_identify::IdentifyConfig::default());
    let addr = relay.listen_addrs()[0]
        .clone()
        .with(lp2p_core::Protocol::P2p(relay.local_peer_id()));
    (relay, addr)
}

/// An lp2p peer with the relay client, identify and DCUtR (loopback addresses allowed),
/// listening on 127.0.0.1 when `listen`.
fn lp2p_peer_host(listen: bool) -> (Host, client::RelayClient, Dcutr) {
    run("lp2p peer", async {
        let stack = lp2p_swarm::UpgradeStack::new()
            .security(lp2p_noise::Noise::new())
            .muxer(lp2p_yamux::Yamux::default());
        let (transport, relay_client) = client::new(stack, ClientConfig::default());
        let mut builder = Host::builder()
            .transport(lp2p_tcp::TcpTransport::default())
            .transport(transport)
            .security(lp2p_noise::Noise::new())
            .muxer(lp2p_yamux::Yamux::default())
            .on_start(relay_client.hook())
            .on_start(Dcutr::hook(DcutrConfig::default().allowing_private_addrs()));
        if listen {
            builder = builder.listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("addr"));
        }
        let host = builder.build().await.expect("lp2p peer host");
        let _identify =
            lp2p_identify::Identify::new(&host, lp2p_identify::IdentifyConfig::default());
        let dcutr = host.service::<Dcutr>().expect("DCUtR started");
        (host, relay_client, dcutr)
    })
}

#[derive(libp2p::swarm::NetworkBehaviour)]
struct PeerBehaviour {
    relay_client: relay::client::Behaviour,
    dcutr: dcutr::Behaviour,
    identify: identify::Behaviour,
}

/// What the rust peer's task reports.
#[derive(Debug)]
enum Report {
    Reserved,
    Dcutr {
        peer: PeerId,
        ok: Result<(), String>,
    },
    DirectConnection(PeerId),
}

/// A rust-libp2p peer with the relay client, DCUtR and identify. Given `reserve_on`, it
/// listens on 127.0.0.1 (so its dials leave from that port, as hole punching needs) and
/// through that relay; given `dial`, it dials that address at once.
fn start_rust_peer(
    rt: &tokio::runtime::Runtime,
    reserve_on: Option<Multiaddr>,
    dial: Option<Multiaddr>,
) -> (PeerId, mpsc::UnboundedReceiver<Report>, oneshot::Sender<()>) {
    let (report_tx, reports) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = oneshot::channel();
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
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
            .with_behaviour(|key, relay_client| PeerBehaviour {
                relay_client,
                dcutr: dcutr::Behaviour::new(key.public().to_peer_id()),
                identify: identify::Behaviour::new(identify::Config::new(
                    IDENTIFY_VERSION.into(),
                    key.public(),
                )),
            })
            .expect("behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        if let Some(relay) = reserve_on {
            swarm
                .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("addr"))
                .expect("listen");
            swarm
                .listen_on(relay.with(libp2p::multiaddr::Protocol::P2pCircuit))
                .expect("listen through the relay");
        }
        if let Some(target) = dial {
            swarm.dial(target).expect("dial through the relay");
        }
        let _ = ready_tx.send(*swarm.local_peer_id());
        loop {
            tokio::select! {
                event = swarm.select_next_some() => match event {
                    SwarmEvent::Behaviour(PeerBehaviourEvent::RelayClient(
                        relay::client::Event::ReservationReqAccepted { .. },
                    )) => {
                        let _ = report_tx.send(Report::Reserved);
                    }
                    SwarmEvent::Behaviour(PeerBehaviourEvent::Dcutr(e)) => {
                        let _ = report_tx.send(Report::Dcutr {
                            peer: e.remote_peer_id,
                            ok: e.result.map(|_| ()).map_err(|e| e.to_string()),
                        });
                    }
                    SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. }
                        if !endpoint.is_relayed() =>
                    {
                        let _ = report_tx.send(Report::DirectConnection(peer_id));
                    }
                    _ => {}
                },
                _ = &mut stop_rx => break,
            }
        }
    });
    let peer = ready_rx.blocking_recv().expect("rust peer started");
    (peer, reports, stop_tx)
}

/// A TCP address on 127.0.0.1 nobody listens on.
fn closed_port() -> lp2p_core::Multiaddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    format!("/ip4/127.0.0.1/tcp/{port}").parse().expect("addr")
}

#[test]
fn lp2p_answers_a_rust_libp2p_peer_behind_a_relay_and_connects_directly() {
    init_tracing();
    let rt = tokio_runtime();
    let (relay, relay_addr) = lp2p_relay();
    let (rust_id, mut reports, stop) = start_rust_peer(&rt, Some(rust_addr(&relay_addr)), None);
    recv_matching(&rt, &mut reports, |r| {
        matches!(r, Report::Reserved).then_some(())
    });

    let (a, _relay_client, dcutr) = lp2p_peer_host(false);
    // libp2p-dcutr needs an address in our CONNECT. A closed port stands for our NAT's
    // mapping, which drops what arrives before we dialed out: the rust peer's dial fails,
    // ours (on its SYNC) makes the connection.
    a.add_external_addr(closed_port());
    let mut events = dcutr.events();
    let circuit = relay_addr
        .with(lp2p_core::Protocol::P2pCircuit)
        .with(lp2p_core::Protocol::P2p(lp2p_peer(rust_id)));
    let event = run("the rust peer's exchange, our dial", async {
        let relayed = a.connect_addr(circuit).await.expect("relayed connection");
        assert!(relayed.is_limited());
        events.next().await.expect("DCUtR events")
    });
    let DcutrEvent::Upgraded { peer, addr, .. } = event else {
        panic!("no direct connection: {event:?}");
    };
    assert_eq!(peer, lp2p_peer(rust_id));
    assert!(
        !addr
            .iter()
            .any(|p| matches!(p, lp2p_core::Protocol::P2pCircuit)),
        "{addr}"
    );
    assert_eq!(dcutr.stats().answered, 1);
    // The rust peer sees the direct connection we made.
    let direct_from = recv_matching(&rt, &mut reports, |r| match r {
        Report::DirectConnection(p) if p == rust_peer(a.local_peer_id()) => Some(p),
        _ => None,
    });
    assert_eq!(direct_from, rust_peer(a.local_peer_id()));

    run("close", async {
        a.close().await;
        relay.close().await;
    });
    let _ = stop.send(());
}

#[test]
fn a_rust_libp2p_peer_dials_on_our_sync_and_reports_the_upgrade() {
    init_tracing();
    let rt = tokio_runtime();
    let (relay, relay_addr) = lp2p_relay();

    // B: the lp2p peer behind the relay.
    let (b, b_relay_client, dcutr) = lp2p_peer_host(true);
    let mut events = dcutr.events();
    run("B reserves on the relay", async {
        let mut reservations = b_relay_client.events();
        b.listen_on(&relay_addr.clone().with(lp2p_core::Protocol::P2pCircuit))
            .await
            .expect("reservation");
        while !matches!(
            reservations.next().await,
            Some(RelayClientEvent::ReservationAccepted { .. })
        ) {}
    });

    // A: the rust peer dials B through the relay once it listens.
    let circuit = rust_addr(
        &relay_addr
            .with(lp2p_core::Protocol::P2pCircuit)
            .with(lp2p_core::Protocol::P2p(b.local_peer_id())),
    );
    let (rust_id, mut reports, stop) = start_rust_peer(&rt, None, Some(circuit));

    let event = run("our exchange, the rust peer's dial", async {
        events.next().await.expect("DCUtR events")
    });
    let DcutrEvent::Upgraded { peer, attempts, .. } = event else {
        panic!("no direct connection: {event:?}");
    };
    assert_eq!(peer, lp2p_peer(rust_id));
    assert_eq!(attempts, 1);
    assert_eq!(dcutr.stats().initiated, 1);
    let (peer, ok) = recv_matching(&rt, &mut reports, |r| match r {
        Report::Dcutr { peer, ok } => Some((peer, ok)),
        _ => None,
    });
    assert_eq!(peer, rust_peer(b.local_peer_id()));
    assert_eq!(ok, Ok(()), "libp2p-dcutr reports the upgrade");

    run("close", async {
        b.close().await;
        relay.close().await;
    });
    let _ = stop.send(());
}

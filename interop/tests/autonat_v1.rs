//! AutoNAT v1 (`/libp2p/autonat/1.0.0`) against rust-libp2p 0.57 (libp2p-autonat 0.16,
//! `libp2p::autonat::v1::Behaviour`), both ways, over TCP + noise + yamux on 127.0.0.1:
//! - an lp2p client whose only server is a rust-libp2p v1 server: the background loop
//!   falls back to v1 (no peer serves v2), the rust server dials our listen address back
//!   and answers OK, and our client marks the address public (and external); then an
//!   explicit probe of a closed port is unreachable.
//! - a rust-libp2p v1 client asks an lp2p v1 server, which dials it back on the IP it sees
//!   it on; the rust client's NAT status becomes `Public`.
//!
//! Both sides test loopback addresses, so both allow non-global IPs.

use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, autonat, identify};
use lp2p_autonat::{
    AutonatClient, AutonatEvent, AutonatV1Server, ClientConfig, ProbeResult, ProtocolVersion,
    Reachability, V1ServerConfig,
};
use lp2p_host::Host;
use lp2p_identify::{Identify, IdentifyConfig};
use lp2p_interop::{init_tracing, recv_matching, run, tokio_runtime};
use tokio::sync::{mpsc, oneshot};

/// The identify protocol version both sides announce.
const IDENTIFY_VERSION: &str = "/ipfs/id/1.0.0";

fn lp2p(addr: &Multiaddr) -> lp2p_core::Multiaddr {
    addr.to_string().parse().expect("same multiaddr format")
}

fn rust_peer(peer: lp2p_core::PeerId) -> PeerId {
    PeerId::from_bytes(&peer.to_bytes()).expect("same peer id format")
}

/// `addr` without a trailing `/p2p`.
fn without_p2p(addr: &Multiaddr) -> Multiaddr {
    addr.iter()
        .filter(|p| !matches!(p, libp2p::multiaddr::Protocol::P2p(_)))
        .collect()
}

async fn lp2p_host() -> Host {
    let host = Host::builder()
        .transport(lp2p_tcp::TcpTransport::default())
        .security(lp2p_noise::Noise::new())
        .muxer(lp2p_yamux::Yamux::default())
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("addr"))
        .build()
        .await
        .expect("lp2p host");
    let _identify = Identify::new(&host, IdentifyConfig::default());
    host
}

#[derive(libp2p::swarm::NetworkBehaviour)]
struct V1Behaviour {
    autonat: autonat::v1::Behaviour,
    identify: identify::Behaviour,
}

fn rust_swarm(config: autonat::v1::Config) -> libp2p::Swarm<V1Behaviour> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .expect("tcp")
        .with_behaviour(|key| V1Behaviour {
            autonat: autonat::v1::Behaviour::new(key.public().to_peer_id(), config),
            identify: identify::Behaviour::new(identify::Config::new(
                IDENTIFY_VERSION.into(),
                key.public(),
            )),
        })
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

/// What the rust server's task reports.
#[derive(Debug)]
enum ServerReport {
    Listening(Multiaddr),
    /// A dial back connected (`InboundProbeEvent::Response`).
    Dialed {
        client: PeerId,
        address: Multiaddr,
    },
    /// A probe ended in an error (`InboundProbeEvent::Error`).
    Failed {
        client: PeerId,
        error: String,
    },
}

#[test]
fn an_lp2p_client_falls_back_to_a_rust_libp2p_v1_server() {
    init_tracing();
    let rt = tokio_runtime();
    let (report_tx, mut reports) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = oneshot::channel();
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    rt.spawn(async move {
        let mut swarm = rust_swarm(autonat::v1::Config {
            only_global_ips: false,
            // Only a server here: it never asks us to dial it.
            use_connected: false,
            boot_delay: Duration::from_secs(3600),
            ..autonat::v1::Config::default()
        });
        swarm
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("addr"))
            .expect("listen");
        let _ = ready_tx.send(*swarm.local_peer_id());
        loop {
            tokio::select! {
                event = swarm.select_next_some() => match event {
                    SwarmEvent::NewListenAddr { address, .. } => {
                        let _ = report_tx.send(ServerReport::Listening(address));
                    }
                    SwarmEvent::Behaviour(V1BehaviourEvent::Autonat(
                        autonat::v1::Event::InboundProbe(e),
                    )) => match e {
                        autonat::v1::InboundProbeEvent::Response { peer, address, .. } => {
                            let _ = report_tx.send(ServerReport::Dialed { client: peer, address });
                        }
                        autonat::v1::InboundProbeEvent::Error { peer, error, .. } => {
                            let _ = report_tx.send(ServerReport::Failed {
                                client: peer,
                                error: format!("{error:?}"),
                            });
                        }
                        autonat::v1::InboundProbeEvent::Request { .. } => {}
                    },
                    _ => {}
                },
                _ = &mut stop_rx => break,
            }
        }
    });
    let server_id = ready_rx.blocking_recv().expect("server started");
    let server_addr = recv_matching(&rt, &mut reports, |r| match r {
        ServerReport::Listening(a) => Some(a),
        _ => None,
    });
    let server = lp2p_core::PeerId::from_bytes(&server_id.to_bytes()).expect("peer id");

    let host = run("lp2p host", lp2p_host());
    let client = AutonatClient::new_allowing_private_addrs(
        &host,
        ClientConfig {
            confidence: 1,
            ..ClientConfig::default()
        },
    );
    let mut events = client.events();
    let listen = host.listen_addrs()[0].clone();

    // The background loop learns over identify that the rust peer serves v1 (and not v2)
    // and tests our listen address with it.
    let version = run(
        "the background loop confirms our address with the rust v1 server",
        async {
            host.connect(server, vec![lp2p(&server_addr)])
                .await
                .expect("connect to the rust server");
            let mut version = None;
            loop {
                match events.next().await.expect("client events") {
                    AutonatEvent::StatusChanged { addr, status } => {
                        assert_eq!((addr, status), (listen.clone(), Reachability::Public));
                        break version;
                    }
                    AutonatEvent::Probed {
                        result, version: v, ..
                    } => {
                        assert_eq!(
                            result,
                            ProbeResult::Reachable {
                                addr: listen.clone()
                            }
                        );
                        version.get_or_insert(v);
                    }
                }
            }
        },
    );
    assert_eq!(version, Some(ProtocolVersion::V1));
    assert!(host.external_addrs().contains(&listen));
    let (client_peer, dialed) = recv_matching(&rt, &mut reports, |r| match r {
        ServerReport::Dialed { client, address } => Some((client, address)),
        ServerReport::Failed { client, error } => {
            panic!("the rust server reports a failed probe from {client}: {error}")
        }
        ServerReport::Listening(_) => None,
    });
    assert_eq!(client_peer, rust_peer(host.local_peer_id()));
    assert_eq!(lp2p(&without_p2p(&dialed)), listen);

    // An explicit probe of a closed port: the rust server answers E_DIAL_ERROR.
    let closed: lp2p_core::Multiaddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        drop(l);
        format!("/ip4/127.0.0.1/tcp/{port}").parse().expect("addr")
    };
    let unreachable = run(
        "v1 probe of a closed port",
        client.probe_v1(server, vec![closed.clone()]),
    )
    .expect("probe with the rust v1 server");
    assert_eq!(unreachable, ProbeResult::Unreachable { addr: closed });
    assert_eq!(client.status(&listen), Reachability::Public);

    run("close", host.close());
    let _ = stop_tx.send(());
}

#[test]
fn a_rust_libp2p_v1_client_is_dialed_back_by_an_lp2p_v1_server() {
    init_tracing();
    let rt = tokio_runtime();
    let host = run("lp2p server host", lp2p_host());
    let server = AutonatV1Server::new(&host, V1ServerConfig::default().allowing_private_addrs());
    let server_addr: Multiaddr = host.listen_addrs()[0]
        .to_string()
        .parse()
        .expect("same multiaddr format");
    let server_id = rust_peer(host.local_peer_id());

    let (report_tx, mut reports) = mpsc::unbounded_channel();
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    rt.spawn(async move {
        let mut swarm = rust_swarm(autonat::v1::Config {
            only_global_ips: false,
            boot_delay: Duration::from_secs(1),
            retry_interval: Duration::from_secs(2),
            throttle_server_period: Duration::from_secs(1),
            ..autonat::v1::Config::default()
        });
        swarm
            .behaviour_mut()
            .autonat
            .add_server(server_id, Some(server_addr.clone()));
        swarm
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("addr"))
            .expect("listen");
        loop {
            tokio::select! {
                event = swarm.select_next_some() => match event {
                    SwarmEvent::NewListenAddr { address, .. } => {
                        swarm.dial(server_addr.clone()).expect("dial the lp2p server");
                        let _ = report_tx.send(Err(address));
                    }
                    SwarmEvent::Behaviour(V1BehaviourEvent::Autonat(
                        autonat::v1::Event::StatusChanged { new, .. },
                    )) => {
                        let _ = report_tx.send(Ok(new));
                    }
                    _ => {}
                },
                _ = &mut stop_rx => break,
            }
        }
    });
    let listen = recv_matching(&rt, &mut reports, |r| r.err());
    let public = recv_matching(&rt, &mut reports, |r| match r {
        Ok(autonat::v1::NatStatus::Public(addr)) => Some(addr),
        Ok(other) => panic!("the rust client's NAT status became {other:?}"),
        Err(_) => None,
    });
    assert_eq!(without_p2p(&public), listen);
    let stats = server.stats();
    assert!(stats.dial_ok >= 1, "{stats:?}");
    assert_eq!(
        stats.refused_relayed + stats.refused_other_peer,
        0,
        "{stats:?}"
    );

    let _ = stop_tx.send(());
    run("close", host.close());
}

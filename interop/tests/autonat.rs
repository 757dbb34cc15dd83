//! AutoNAT v2 against rust-libp2p 0.57 (libp2p-autonat 0.16), both ways, over TCP + noise +
//! yamux on 127.0.0.1:
//! - an lp2p client asks a rust-libp2p server: the server sees us on an ephemeral port, so
//!   it asks for dial data (rust compares whole addresses, not IPs), we pay it in 4 KiB
//!   chunks, it dials our listen address back from a new port and hands over the nonce;
//!   then the same through the client's background loop (identify tells it the server).
//! - a rust-libp2p client (with identify, and its listen address fed in as a candidate)
//!   asks an lp2p server, which dials it back; the rust client reports success.

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, SwarmEvent, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId, autonat, identify};
use lp2p_autonat::{
    AutonatClient, AutonatEvent, AutonatServer, ClientConfig, ProbeResult, Reachability,
    ServerConfig,
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

#[derive(NetworkBehaviour)]
struct ServerBehaviour {
    autonat: autonat::v2::server::Behaviour,
    identify: identify::Behaviour,
}

/// What the rust server's task reports.
#[derive(Debug)]
enum ServerReport {
    Listening(Multiaddr),
    Served {
        client: PeerId,
        tested: Multiaddr,
        data: usize,
        ok: bool,
    },
}

/// A listening rust-libp2p AutoNAT v2 server (with identify, so clients learn it serves).
fn start_rust_server(
    rt: &tokio::runtime::Runtime,
) -> (
    PeerId,
    mpsc::UnboundedReceiver<ServerReport>,
    oneshot::Sender<()>,
) {
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
            .with_behaviour(|key| ServerBehaviour {
                autonat: autonat::v2::server::Behaviour::default(),
                identify: identify::Behaviour::new(identify::Config::new(
                    IDENTIFY_VERSION.into(),
                    key.public(),
                )),
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
                        let _ = report_tx.send(ServerReport::Listening(address));
                    }
                    SwarmEvent::Behaviour(ServerBehaviourEvent::Autonat(e)) => {
                        let _ = report_tx.send(ServerReport::Served {
                            client: e.client,
                            tested: e.tested_addr,
                            data: e.data_amount,
                            ok: e.result.is_ok(),
                        });
                    }
                    _ => {}
                },
                _ = &mut stop_rx => break,
            }
        }
    });
    let peer = ready_rx.blocking_recv().expect("server started");
    (peer, reports, stop_tx)
}

#[test]
fn an_lp2p_client_is_dialed_back_by_a_rust_libp2p_server() {
    init_tracing();
    let rt = tokio_runtime();
    let (server_id, mut reports, stop) = start_rust_server(&rt);
    let server_addr = recv_matching(&rt, &mut reports, |r| match r {
        ServerReport::Listening(a) => Some(a),
        ServerReport::Served { .. } => None,
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

    // The background loop finds the server through identify and tests our listen address.
    run(
        "the background loop confirms our address with the rust server",
        async {
            host.connect(server, vec![lp2p(&server_addr)])
                .await
                .expect("connect to the rust server");
            loop {
                match events.next().await.expect("client events") {
                    AutonatEvent::StatusChanged { addr, status } => {
                        assert_eq!((addr, status), (listen.clone(), Reachability::Public));
                        break;
                    }
                    AutonatEvent::Probed { result, .. } => {
                        assert_eq!(
                            result,
                            ProbeResult::Reachable {
                                addr: listen.clone()
                            }
                        );
                    }
                }
            }
        },
    );
    assert!(host.external_addrs().contains(&listen));
    let (client_peer, tested, data, ok) = recv_matching(&rt, &mut reports, |r| match r {
        ServerReport::Served {
            client,
            tested,
            data,
            ok,
        } => Some((client, tested, data, ok)),
        ServerReport::Listening(_) => None,
    });
    assert!(ok, "the rust server reports a failed dial back");
    assert_eq!(client_peer, rust_peer(host.local_peer_id()));
    assert_eq!(lp2p(&tested), listen);
    assert!(
        (30_000..=100_000).contains(&data),
        "we paid {data} bytes of dial data"
    );

    // An explicit probe of the same address, and of a closed port.
    let again = run("explicit probe", client.probe(server, vec![listen.clone()]))
        .expect("probe with the rust server");
    assert_eq!(
        again,
        ProbeResult::Reachable {
            addr: listen.clone()
        }
    );
    let closed: lp2p_core::Multiaddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        drop(l);
        format!("/ip4/127.0.0.1/tcp/{port}").parse().expect("addr")
    };
    let unreachable = run(
        "probe of a closed port",
        client.probe(server, vec![closed.clone()]),
    )
    .expect("probe with the rust server");
    assert_eq!(unreachable, ProbeResult::Unreachable { addr: closed });

    run("close", host.close());
    let _ = stop.send(());
}

/// Emits the addresses it is given as external-address candidates: how the rust client
/// learns what to test without relying on identify's observed-address translation.
#[derive(Default)]
struct Candidates {
    queued: Vec<Multiaddr>,
}

impl NetworkBehaviour for Candidates {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        match self.queued.pop() {
            Some(addr) => Poll::Ready(ToSwarm::NewExternalAddrCandidate(addr)),
            None => Poll::Pending,
        }
    }
}

#[derive(NetworkBehaviour)]
struct ClientBehaviour {
    autonat: autonat::v2::client::Behaviour,
    identify: identify::Behaviour,
    candidates: Candidates,
}

#[test]
fn a_rust_libp2p_client_is_dialed_back_by_an_lp2p_server() {
    init_tracing();
    let rt = tokio_runtime();
    let host = run("lp2p server host", lp2p_host());
    let server = AutonatServer::new(&host, ServerConfig::default().allowing_private_addrs());
    let server_addr: Multiaddr = host.listen_addrs()[0]
        .to_string()
        .parse()
        .expect("same multiaddr format");
    let server_id = rust_peer(host.local_peer_id());

    let (report_tx, mut reports) = mpsc::unbounded_channel();
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
            .with_behaviour(|key| ClientBehaviour {
                autonat: autonat::v2::client::Behaviour::default(),
                identify: identify::Behaviour::new(identify::Config::new(
                    IDENTIFY_VERSION.into(),
                    key.public(),
                )),
                candidates: Candidates::default(),
            })
            .expect("behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        swarm
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("addr"))
            .expect("listen");
        loop {
            tokio::select! {
                event = swarm.select_next_some() => match event {
                    SwarmEvent::NewListenAddr { address, .. } => {
                        swarm.behaviour_mut().candidates.queued.push(address.clone());
                        swarm.dial(server_addr.clone()).expect("dial the lp2p server");
                        let _ = report_tx.send(Err(address));
                    }
                    SwarmEvent::Behaviour(ClientBehaviourEvent::Autonat(e)) => {
                        let _ = report_tx.send(Ok((e.server, e.tested_addr, e.result.map_err(|e| e.to_string()))));
                    }
                    _ => {}
                },
                _ = &mut stop_rx => break,
            }
        }
    });
    let listen = recv_matching(&rt, &mut reports, |r| r.err());
    let (tested_by, tested, result) = recv_matching(&rt, &mut reports, Result::ok);
    assert_eq!(tested_by, server_id);
    assert_eq!(tested, listen);
    assert_eq!(result, Ok(()), "the rust client reports a failed test");
    let stats = server.stats();
    assert_eq!(stats.dial_ok, 1, "{stats:?}");

    let _ = stop_tx.send(());
    run("close", host.close());
}

//! Shared by the host-level tests over TCP (`tests/host.rs`) and QUIC (`tests/quic.rs`): a
//! rust-libp2p swarm serving a custom protocol with `libp2p-stream` (tokio, on the test's
//! runtime), the matching lp2p stream handler, and one request each way.
//!
//! Both sides serve the protocol the same way: read the request to EOF, answer with a prefix
//! (`rust:` or `lp2p:`) and the request, close.

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, Stream, StreamExt};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, ping};
use lp2p_host::{Connection, Host, HostEvent, HostStream};
use tokio::sync::{mpsc, oneshot};

/// How the rust-libp2p swarm connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RustTransport {
    /// TCP with noise and yamux.
    TcpNoiseYamux,
    /// QUIC v1 (TLS 1.3 inside).
    Quic,
}

impl RustTransport {
    /// The address the swarm listens on: a free port on 127.0.0.1.
    fn listen_addr(self) -> Multiaddr {
        let addr = match self {
            RustTransport::TcpNoiseYamux => "/ip4/127.0.0.1/tcp/0",
            RustTransport::Quic => "/ip4/127.0.0.1/udp/0/quic-v1",
        };
        addr.parse().expect("valid multiaddr")
    }
}

/// How the rust-libp2p swarm is set up.
#[derive(Debug, Clone, Copy)]
pub struct RustPeerConfig {
    /// Its transport.
    pub transport: RustTransport,
    /// The protocol it serves (and that [`rust_request`] opens).
    pub protocol: &'static str,
    /// Whether it listens (its address comes as [`SwarmReport::Listening`]).
    pub listen: bool,
    /// When set, its ping behaviour pings every connected peer this often and reports each
    /// success as [`SwarmReport::Pinged`]; otherwise it runs no ping behaviour.
    pub ping_every: Option<Duration>,
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    ping: Toggle<ping::Behaviour>,
    stream: libp2p_stream::Behaviour,
}

/// What the rust swarm's task reports.
#[derive(Debug)]
pub enum SwarmReport {
    /// It listens on this address.
    Listening(Multiaddr),
    /// A connection to this peer is established; the remote's address.
    Connected(PeerId, Multiaddr),
    /// A ping to this peer succeeded.
    Pinged(PeerId),
}

/// A rust-libp2p swarm running on a tokio runtime: its peer id, a stream control, a way to
/// dial, and its reports.
pub struct RustPeer {
    /// Its peer id.
    pub peer: PeerId,
    /// Opens streams from it (see [`rust_request`]).
    pub control: libp2p_stream::Control,
    /// Dials an address (ending in `/p2p/<peer>`), from the swarm's task.
    pub dial: mpsc::UnboundedSender<Multiaddr>,
    /// What its task reports.
    pub reports: mpsc::UnboundedReceiver<SwarmReport>,
}

impl RustPeer {
    /// Starts the swarm on `rt` and waits until it runs.
    pub fn start(rt: &tokio::runtime::Runtime, config: RustPeerConfig) -> RustPeer {
        let (dial, mut dials) = mpsc::unbounded_channel::<Multiaddr>();
        let (report_tx, reports) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        rt.spawn(async move {
            let behaviour =
                |_: &libp2p::identity::Keypair| Behaviour {
                    ping: Toggle::from(config.ping_every.map(|every| {
                        ping::Behaviour::new(ping::Config::new().with_interval(every))
                    })),
                    stream: libp2p_stream::Behaviour::new(),
                };
            let swarm_config =
                |c: libp2p::swarm::Config| c.with_idle_connection_timeout(Duration::from_secs(60));
            let builder = libp2p::SwarmBuilder::with_new_identity().with_tokio();
            let mut swarm = match config.transport {
                RustTransport::TcpNoiseYamux => builder
                    .with_tcp(
                        libp2p::tcp::Config::default(),
                        libp2p::noise::Config::new,
                        libp2p::yamux::Config::default,
                    )
                    .expect("tcp")
                    .with_behaviour(behaviour)
                    .expect("behaviour")
                    .with_swarm_config(swarm_config)
                    .build(),
                RustTransport::Quic => builder
                    .with_quic()
                    .with_behaviour(behaviour)
                    .expect("behaviour")
                    .with_swarm_config(swarm_config)
                    .build(),
            };
            let mut control = swarm.behaviour().stream.new_control();
            let mut incoming = control
                .accept(StreamProtocol::new(config.protocol))
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
            if config.listen {
                swarm
                    .listen_on(config.transport.listen_addr())
                    .expect("listen");
            }
            let _ = ready_tx.send((*swarm.local_peer_id(), control));
            loop {
                tokio::select! {
                    event = swarm.select_next_some() => match event {
                        SwarmEvent::NewListenAddr { address, .. } => {
                            let _ = report_tx.send(SwarmReport::Listening(address));
                        }
                        SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } => {
                            let _ = report_tx.send(SwarmReport::Connected(
                                peer_id,
                                endpoint.get_remote_address().clone(),
                            ));
                        }
                        SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                            peer,
                            result: Ok(_),
                            ..
                        })) => {
                            let _ = report_tx.send(SwarmReport::Pinged(peer));
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

    /// Waits on `rt` for the first report that `pick` maps to `Some` (see
    /// [`recv_matching`](crate::recv_matching)).
    pub fn wait_report<T>(
        &mut self,
        rt: &tokio::runtime::Runtime,
        pick: impl FnMut(SwarmReport) -> Option<T>,
    ) -> T {
        crate::recv_matching(rt, &mut self.reports, pick)
    }

    /// Waits for the swarm's listen address.
    pub fn listen_addr(&mut self, rt: &tokio::runtime::Runtime) -> Multiaddr {
        self.wait_report(rt, |r| match r {
            SwarmReport::Listening(addr) => Some(addr),
            _ => None,
        })
    }

    /// Waits for the swarm's next established connection: the peer and its address.
    pub fn connected(&mut self, rt: &tokio::runtime::Runtime) -> (PeerId, Multiaddr) {
        self.wait_report(rt, |r| match r {
            SwarmReport::Connected(peer, addr) => Some((peer, addr)),
            _ => None,
        })
    }
}

/// Serves `protocol` on `host` like the rust peer does, with `lp2p:` as the prefix.
pub fn serve_echo(host: &Host, protocol: &'static str) {
    host.set_stream_handler(protocol, |mut stream: HostStream| async move {
        let mut request = Vec::new();
        if stream.read_to_end(&mut request).await.is_ok() {
            let mut answer = b"lp2p:".to_vec();
            answer.extend_from_slice(&request);
            let _ = stream.write_all(&answer).await;
            let _ = stream.close().await;
        }
    });
}

/// A request from `host` to `peer` on `protocol`: the answer, read to EOF.
pub async fn lp2p_request(
    host: &Host,
    peer: PeerId,
    protocol: &'static str,
    request: &[u8],
) -> Vec<u8> {
    let mut stream = host
        .new_stream(&peer, [protocol])
        .await
        .expect("new_stream");
    assert_eq!(stream.protocol(), protocol);
    stream.write_all(request).await.expect("write");
    stream.close().await.expect("close");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    answer
}

/// A request from a rust peer's `control` to `peer` on `protocol`: the answer, read to EOF.
pub async fn rust_request(
    mut control: libp2p_stream::Control,
    peer: PeerId,
    protocol: &'static str,
    request: Vec<u8>,
) -> Vec<u8> {
    let mut stream = control
        .open_stream(peer, StreamProtocol::new(protocol))
        .await
        .expect("open");
    stream.write_all(&request).await.expect("write");
    stream.close().await.expect("close");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    answer
}

/// The next connection `events` (from [`Host::events`]) reports as established.
pub async fn next_connected(events: &mut (impl Stream<Item = HostEvent> + Unpin)) -> Connection {
    loop {
        match events.next().await.expect("host events") {
            HostEvent::Connected { connection, .. } => return connection,
            _ => continue,
        }
    }
}

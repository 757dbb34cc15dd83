//! lp2p-pubsub floodsub against rust-libp2p 0.57 (`libp2p-floodsub` 0.48) over TCP on
//! 127.0.0.1 with noise + yamux, each side dialing in turn: subscriptions cross, and messages
//! flow both ways, each arriving exactly once with the right author.
//!
//! rust-libp2p's floodsub does not sign (our side runs `Authenticity::StrictNoSign`), sends a
//! 20-byte random seqno, opens a stream per RPC and reads one RPC per inbound stream; the
//! pubsub shell copes with all three (see the lp2p-pubsub README).

use std::time::Duration;

use futures::StreamExt;
use libp2p::floodsub;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId};
use lp2p_host::Host;
use lp2p_interop::{EXCHANGE_TIMEOUT, init_tracing, run, tokio_runtime};
use lp2p_pubsub::{Authenticity, Config, PubSub};
use tokio::sync::{mpsc, oneshot};

const TOPIC: &str = "lp2p-interop-flood";

enum Command {
    Dial(Multiaddr),
    AddPeer(PeerId),
    Publish(Vec<u8>),
}

enum Report {
    Listening(Multiaddr),
    Connected(PeerId),
    Subscribed(PeerId),
    Message { source: PeerId, data: Vec<u8> },
}

struct RustPeer {
    peer: PeerId,
    commands: mpsc::UnboundedSender<Command>,
    reports: mpsc::UnboundedReceiver<Report>,
}

fn start_rust_peer(rt: &tokio::runtime::Runtime) -> RustPeer {
    let (commands, mut command_rx) = mpsc::unbounded_channel::<Command>();
    let (report_tx, reports) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = oneshot::channel();
    rt.spawn(async move {
        let mut swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                libp2p::tcp::Config::default(),
                libp2p::noise::Config::new,
                libp2p::yamux::Config::default,
            )
            .expect("tcp")
            .with_behaviour(|key| floodsub::Behaviour::new(key.public().to_peer_id()))
            .expect("behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        let topic = floodsub::Topic::new(TOPIC);
        swarm.behaviour_mut().subscribe(topic.clone());
        swarm
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("addr"))
            .expect("listen");
        let _ = ready_tx.send(*swarm.local_peer_id());
        loop {
            tokio::select! {
                event = swarm.select_next_some() => match event {
                    SwarmEvent::NewListenAddr { address, .. } => {
                        let _ = report_tx.send(Report::Listening(address));
                    }
                    SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                        let _ = report_tx.send(Report::Connected(peer_id));
                    }
                    SwarmEvent::Behaviour(floodsub::Event::Subscribed { peer_id, .. }) => {
                        let _ = report_tx.send(Report::Subscribed(peer_id));
                    }
                    SwarmEvent::Behaviour(floodsub::Event::Message(message)) => {
                        let _ = report_tx.send(Report::Message {
                            source: message.source,
                            data: message.data.to_vec(),
                        });
                    }
                    _ => {}
                },
                command = command_rx.recv() => match command {
                    Some(Command::Dial(addr)) => swarm.dial(addr).expect("dial"),
                    Some(Command::AddPeer(peer)) => swarm.behaviour_mut().add_node_to_partial_view(peer),
                    Some(Command::Publish(data)) => swarm.behaviour_mut().publish(topic.clone(), data),
                    None => break,
                },
            }
        }
    });
    let peer = ready_rx.blocking_recv().expect("swarm started");
    RustPeer {
        peer,
        commands,
        reports,
    }
}

impl RustPeer {
    /// Waits for the first report `pick` accepts (others are skipped).
    fn wait<T>(
        &mut self,
        rt: &tokio::runtime::Runtime,
        what: &str,
        mut pick: impl FnMut(Report) -> Option<T>,
    ) -> T {
        rt.block_on(async {
            tokio::time::timeout(EXCHANGE_TIMEOUT, async {
                loop {
                    if let Some(found) = pick(self.reports.recv().await.expect("alive")) {
                        return found;
                    }
                }
            })
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        })
    }
}

async fn lp2p_host() -> Host {
    Host::builder()
        .transport(lp2p_tcp::TcpTransport::default())
        .security(lp2p_noise::Noise::new())
        .muxer(lp2p_yamux::Yamux::default())
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("addr"))
        .build()
        .await
        .expect("lp2p host")
}

fn exchange(lp2p_dials: bool) {
    init_tracing();
    let rt = tokio_runtime();
    let mut rust = start_rust_peer(&rt);
    let rust_addr = rust.wait(&rt, "rust listening", |r| match r {
        Report::Listening(addr) => Some(addr),
        _ => None,
    });
    let host = run("lp2p host", lp2p_host());
    let config = Config {
        authenticity: Authenticity::StrictNoSign,
        ..Config::default()
    };
    let pubsub = PubSub::floodsub(&host, config).expect("pubsub");
    let mut sub = pubsub.subscribe(TOPIC).expect("subscribe");
    let ours = host.local_peer_id();

    if lp2p_dials {
        run("lp2p dials rust", host.connect(rust.peer, vec![rust_addr])).expect("lp2p dials rust");
    } else {
        let mut addr = host.listen_addrs()[0].clone();
        addr.push(libp2p::multiaddr::Protocol::P2p(ours));
        rust.commands.send(Command::Dial(addr)).expect("alive");
    }
    rust.wait(&rt, "rust connected", |r| match r {
        Report::Connected(peer) if peer == ours => Some(()),
        _ => None,
    });
    // rust's floodsub talks only to peers in its partial view.
    rust.commands.send(Command::AddPeer(ours)).expect("alive");
    rust.wait(&rt, "rust sees our subscription", |r| match r {
        Report::Subscribed(peer) if peer == ours => Some(()),
        _ => None,
    });
    run("lp2p sees rust's subscription", async {
        while !pubsub.peers(TOPIC).contains(&rust.peer) {
            host.runtime().sleep(Duration::from_millis(50)).await;
        }
    });
    assert!(pubsub.mesh_peers(TOPIC).is_empty(), "floodsub has no mesh");

    // lp2p → rust, several RPCs in a row (each on a stream of its own for rust).
    let ours_out: Vec<Vec<u8>> = (0..5)
        .map(|i| format!("lp2p says {i}").into_bytes())
        .collect();
    for data in &ours_out {
        pubsub
            .publish(TOPIC, data.clone())
            .into_inner()
            .expect("publish");
    }
    let mut got = Vec::new();
    while got.len() < ours_out.len() {
        let (source, data) = rust.wait(&rt, "messages at rust", |r| match r {
            Report::Message { source, data } => Some((source, data)),
            _ => None,
        });
        assert_eq!(source, ours, "author is the lp2p host");
        got.push(data);
    }
    got.sort();
    let mut expected = ours_out.clone();
    expected.sort();
    assert_eq!(got, expected, "rust got each lp2p message once");

    // rust → lp2p.
    let theirs: Vec<Vec<u8>> = (0..5)
        .map(|i| format!("rust says {i}").into_bytes())
        .collect();
    for data in &theirs {
        rust.commands
            .send(Command::Publish(data.clone()))
            .expect("alive");
    }
    let received = run("lp2p receives", async {
        let mut received = Vec::new();
        while received.len() < theirs.len() {
            received.push(sub.next().await.expect("subscription alive"));
        }
        host.runtime().sleep(Duration::from_secs(2)).await;
        while let Some(Some(extra)) = futures::FutureExt::now_or_never(sub.next()) {
            received.push(extra);
        }
        received
    });
    let mut data: Vec<Vec<u8>> = received.iter().map(|m| m.data.to_vec()).collect();
    data.sort();
    let mut expected = theirs.clone();
    expected.sort();
    assert_eq!(data, expected, "lp2p got each rust message once");
    assert!(received.iter().all(|m| m.source == Some(rust.peer)));
    assert_eq!(pubsub.counters().messages_invalid, 0);

    run("close", host.close());
    drop(rust.commands);
}

#[test]
fn lp2p_dials_rust_floodsub() {
    exchange(true);
}

#[test]
fn rust_dials_lp2p_floodsub() {
    exchange(false);
}

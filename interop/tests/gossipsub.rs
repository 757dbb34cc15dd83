//! lp2p-pubsub gossipsub against rust-libp2p 0.57 (`libp2p-gossipsub` 0.50) over TCP on
//! 127.0.0.1 with noise + yamux, each side dialing in turn. Both subscribe, the mesh forms
//! on both sides, and messages flow both ways (one over the 1 KiB IDONTWANT threshold), signed
//! and verified in strict mode on both sides, each arriving exactly once.
//!
//! The two stacks disagree on the default message id (go's raw `from ‖ seqno` here,
//! base58(from) + decimal seqno in rust-libp2p), and gossip only works when both compute the
//! same id. Both settings are covered: ours configured with `rust_libp2p_message_id` against
//! rust's default, and ours at its default against rust configured with go's raw id. In each,
//! the id we compute for a message equals the one rust computes.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId};
use lp2p_host::Host;
use lp2p_interop::{EXCHANGE_TIMEOUT, init_tracing, run, tokio_runtime};
use lp2p_pubsub::{Config, PubSub, rust_libp2p_message_id};
use tokio::sync::{mpsc, oneshot};

const TOPIC: &str = "lp2p-interop";

/// What the test asks the rust swarm to do.
enum Command {
    Dial(Multiaddr),
    Publish(Vec<u8>, oneshot::Sender<Vec<u8>>),
    Mesh(oneshot::Sender<Vec<PeerId>>),
    Peers(oneshot::Sender<Vec<PeerId>>),
}

/// What the rust swarm reports.
enum Report {
    Listening(Multiaddr),
    Message {
        source: Option<PeerId>,
        data: Vec<u8>,
        id: Vec<u8>,
    },
}

struct RustPeer {
    peer: PeerId,
    commands: mpsc::UnboundedSender<Command>,
    reports: mpsc::UnboundedReceiver<Report>,
}

/// Go's raw message id: the `from` bytes, then the 8 big-endian bytes of the seqno.
fn go_message_id(message: &gossipsub::Message) -> gossipsub::MessageId {
    let mut id = message.source.map(|p| p.to_bytes()).unwrap_or_default();
    id.extend_from_slice(&message.sequence_number.unwrap_or_default().to_be_bytes());
    gossipsub::MessageId::from(id)
}

fn start_rust_peer(rt: &tokio::runtime::Runtime, go_ids: bool) -> RustPeer {
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
            .with_behaviour(|key| {
                let mut config = gossipsub::ConfigBuilder::default();
                config
                    .heartbeat_initial_delay(Duration::from_millis(100))
                    .validation_mode(gossipsub::ValidationMode::Strict);
                if go_ids {
                    config.message_id_fn(go_message_id);
                }
                <gossipsub::Behaviour>::new(
                    gossipsub::MessageAuthenticity::Signed(key.clone()),
                    config.build().expect("gossipsub config"),
                )
                .expect("gossipsub")
            })
            .expect("behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        let topic = gossipsub::IdentTopic::new(TOPIC);
        swarm
            .behaviour_mut()
            .subscribe(&topic)
            .expect("subscribe");
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
                    SwarmEvent::Behaviour(gossipsub::Event::Message { message_id, message, .. }) => {
                        let _ = report_tx.send(Report::Message {
                            source: message.source,
                            data: message.data,
                            id: message_id.0,
                        });
                    }
                    _ => {}
                },
                command = command_rx.recv() => match command {
                    Some(Command::Dial(addr)) => swarm.dial(addr).expect("dial"),
                    Some(Command::Publish(data, answer)) => {
                        let id = swarm.behaviour_mut().publish(topic.hash(), data).expect("publish");
                        let _ = answer.send(id.0);
                    }
                    Some(Command::Mesh(answer)) => {
                        let mesh = swarm.behaviour().mesh_peers(&topic.hash()).copied().collect();
                        let _ = answer.send(mesh);
                    }
                    Some(Command::Peers(answer)) => {
                        let peers = swarm
                            .behaviour()
                            .all_peers()
                            .filter(|(_, topics)| topics.contains(&&topic.hash()))
                            .map(|(p, _)| *p)
                            .collect();
                        let _ = answer.send(peers);
                    }
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
    fn ask<T>(
        &self,
        rt: &tokio::runtime::Runtime,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> T {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).expect("swarm task alive");
        rt.block_on(async { tokio::time::timeout(EXCHANGE_TIMEOUT, rx).await })
            .expect("answer in time")
            .expect("answer")
    }

    fn listen_addr(&mut self, rt: &tokio::runtime::Runtime) -> Multiaddr {
        rt.block_on(async {
            tokio::time::timeout(EXCHANGE_TIMEOUT, async {
                loop {
                    if let Report::Listening(addr) = self.reports.recv().await.expect("alive") {
                        return addr;
                    }
                }
            })
            .await
            .expect("listening in time")
        })
    }

    /// The next `count` messages the rust peer received: (source, data, id).
    fn messages(
        &mut self,
        rt: &tokio::runtime::Runtime,
        count: usize,
    ) -> Vec<(Option<PeerId>, Vec<u8>, Vec<u8>)> {
        rt.block_on(async {
            tokio::time::timeout(EXCHANGE_TIMEOUT, async {
                let mut got = Vec::new();
                while got.len() < count {
                    if let Report::Message { source, data, id } =
                        self.reports.recv().await.expect("alive")
                    {
                        got.push((source, data, id));
                    }
                }
                got
            })
            .await
            .expect("rust received the messages in time")
        })
    }

    /// Waits until `check` holds for the rust side's view, polling.
    fn wait_until(
        &self,
        rt: &tokio::runtime::Runtime,
        what: &str,
        mut check: impl FnMut(&RustPeer, &tokio::runtime::Runtime) -> bool,
    ) {
        let start = std::time::Instant::now();
        while !check(self, rt) {
            assert!(
                start.elapsed() < EXCHANGE_TIMEOUT,
                "timed out waiting until {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
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

fn payloads(from: &str) -> Vec<Vec<u8>> {
    vec![
        format!("hello from {from}").into_bytes(),
        // Over the 1 KiB IDONTWANT threshold.
        vec![from.as_bytes()[0]; 2000],
        format!("bye from {from}").into_bytes(),
    ]
}

/// One full exchange: `lp2p_dials` picks who connects; `go_ids` picks the message-id setting.
fn exchange(lp2p_dials: bool, go_ids: bool) {
    init_tracing();
    let rt = tokio_runtime();
    let mut rust = start_rust_peer(&rt, go_ids);
    let rust_addr = rust.listen_addr(&rt);
    let host = run("lp2p host", lp2p_host());
    let config = if go_ids {
        Config::default()
    } else {
        Config {
            message_id_fn: Arc::new(rust_libp2p_message_id),
            ..Config::default()
        }
    };
    let pubsub = PubSub::gossipsub(&host, config).expect("pubsub");
    let mut sub = pubsub.subscribe(TOPIC).expect("subscribe").deliveries();
    let ours = host.local_peer_id();

    if lp2p_dials {
        run("lp2p dials rust", host.connect(rust.peer, vec![rust_addr])).expect("lp2p dials rust");
    } else {
        let mut addr = host.listen_addrs()[0].clone();
        addr.push(libp2p::multiaddr::Protocol::P2p(ours));
        rust.commands.send(Command::Dial(addr)).expect("alive");
    }

    // Subscriptions cross and the mesh forms on both sides.
    run("mesh on the lp2p side", async {
        while !pubsub.mesh_peers(TOPIC).contains(&rust.peer) {
            host.runtime().sleep(Duration::from_millis(50)).await;
        }
    });
    rust.wait_until(&rt, "rust sees our subscription", |r, rt| {
        r.ask(rt, Command::Peers).contains(&ours)
    });
    rust.wait_until(&rt, "mesh on the rust side", |r, rt| {
        r.ask(rt, Command::Mesh).contains(&ours)
    });

    // lp2p → rust: signed by us, verified by rust (strict mode), same message ids.
    let ours_out = payloads("lp2p");
    let mut our_ids = Vec::new();
    for data in &ours_out {
        let id = pubsub
            .publish(TOPIC, data.clone())
            .into_inner()
            .expect("publish");
        our_ids.push(id.as_bytes().to_vec());
    }
    let got = rust.messages(&rt, ours_out.len());
    for (data, id) in ours_out.iter().zip(&our_ids) {
        let found: Vec<_> = got.iter().filter(|(_, d, _)| d == data).collect();
        assert_eq!(found.len(), 1, "rust got a message once");
        let (source, _, rust_id) = found[0];
        assert_eq!(*source, Some(ours), "author is the lp2p host");
        assert_eq!(rust_id, id, "both sides compute the same message id");
    }

    // rust → lp2p: signed by rust, verified by us, same message ids.
    let theirs = payloads("rust");
    let mut their_ids = Vec::new();
    for data in &theirs {
        their_ids.push(rust.ask(&rt, |tx| Command::Publish(data.clone(), tx)));
    }
    let received = run("lp2p receives", async {
        let mut received = Vec::new();
        while received.len() < theirs.len() {
            received.push(sub.next().await.expect("subscription alive"));
        }
        // Anything more would be a duplicate: give it a few heartbeats to show up.
        host.runtime().sleep(Duration::from_secs(3)).await;
        while let Some(Some(extra)) = futures::FutureExt::now_or_never(sub.next()) {
            received.push(extra);
        }
        received
    });
    assert_eq!(
        received.len(),
        theirs.len(),
        "each rust message exactly once"
    );
    for (data, id) in theirs.iter().zip(&their_ids) {
        let delivery = received
            .iter()
            .find(|d| &d.message.data[..] == data.as_slice())
            .expect("rust message received");
        assert_eq!(
            delivery.message.source,
            Some(rust.peer),
            "author is the rust peer"
        );
        assert_eq!(delivery.propagation_source, rust.peer);
        assert_eq!(delivery.message.topic.as_str(), TOPIC);
        assert_eq!(
            delivery.message_id.as_bytes(),
            id.as_slice(),
            "same message id"
        );
    }
    let counters = pubsub.counters();
    assert_eq!(counters.messages_invalid, 0, "every rust message verified");
    assert_eq!(counters.rpcs_malformed, 0);

    run("close", host.close());
    drop(rust.commands);
}

#[test]
fn lp2p_dials_rust_with_rust_message_ids() {
    exchange(true, false);
}

#[test]
fn rust_dials_lp2p_with_rust_message_ids() {
    exchange(false, false);
}

#[test]
fn lp2p_dials_rust_with_go_message_ids() {
    exchange(true, true);
}

#[test]
fn rust_dials_lp2p_with_go_message_ids() {
    exchange(false, true);
}

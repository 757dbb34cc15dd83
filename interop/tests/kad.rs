//! Kademlia between an lp2p host (lp2p-kad) and a rust-libp2p 0.57 swarm (libp2p-kad 0.49,
//! with identify) in one process over TCP + noise + yamux: what each stores from the other
//! (record values, publishers and remaining TTLs cross the wire), provider records, and the
//! client/server rule (a client in either implementation never enters the other's routing
//! table; a server does, from identify).

use std::time::Duration;

use futures::StreamExt;
use libp2p::kad::store::RecordStore;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, identify, kad};
use lp2p_host::Host;
use lp2p_identify::{Identify, IdentifyConfig, RecordFormat};
use lp2p_interop::{init_tracing, recv_matching, run, tokio_runtime};
use lp2p_kad::validator::{NamespacedValidator, UnknownNamespaces};
use lp2p_kad::{KadConfig, Kademlia, Mode, Record};
use tokio::sync::mpsc;

const KAD: StreamProtocol = StreamProtocol::new("/ipfs/kad/1.0.0");

#[derive(NetworkBehaviour)]
struct Behaviour {
    identify: identify::Behaviour,
    kad: kad::Behaviour<kad::store::MemoryStore>,
}

enum Command {
    Dial(Multiaddr),
    Put(kad::Record),
    /// Reply with the record rust-libp2p stores under the key, if any.
    Stored(Vec<u8>, tokio::sync::oneshot::Sender<Option<kad::Record>>),
    /// Reply with whether `peer` is in rust-libp2p's routing table.
    InTable(PeerId, tokio::sync::oneshot::Sender<bool>),
    /// Reply with the providers rust-libp2p stores for the key.
    Providers(Vec<u8>, tokio::sync::oneshot::Sender<Vec<PeerId>>),
}

enum Report {
    Listening(Multiaddr),
    PutDone(Result<(), String>),
}

struct RustPeer {
    peer: PeerId,
    commands: mpsc::UnboundedSender<Command>,
    reports: mpsc::UnboundedReceiver<Report>,
}

fn start_rust(rt: &tokio::runtime::Runtime, mode: kad::Mode) -> RustPeer {
    let (commands, mut command_rx) = mpsc::unbounded_channel();
    let (report_tx, reports) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
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
                let peer = key.public().to_peer_id();
                let mut kad = kad::Behaviour::with_config(
                    peer,
                    kad::store::MemoryStore::new(peer),
                    kad::Config::new(KAD),
                );
                kad.set_mode(Some(mode));
                Behaviour {
                    identify: identify::Behaviour::new(
                        identify::Config::new_with_signed_peer_record("ipfs/0.1.0".into(), key),
                    ),
                    kad,
                }
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
                        let _ = report_tx.send(Report::Listening(address));
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }))
                        if info.protocols.contains(&KAD) =>
                    {
                        for addr in info.listen_addrs {
                            swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                        }
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                        result: kad::QueryResult::PutRecord(result), ..
                    })) => {
                        let _ = report_tx.send(Report::PutDone(result.map(|_| ()).map_err(|e| e.to_string())));
                    }
                    _ => {}
                },
                command = command_rx.recv() => match command {
                    Some(Command::Dial(addr)) => swarm.dial(addr).expect("dial"),
                    Some(Command::Put(record)) => {
                        swarm.behaviour_mut().kad.put_record(record, kad::Quorum::One).expect("put");
                    }
                    Some(Command::Stored(key, reply)) => {
                        let got = swarm
                            .behaviour_mut()
                            .kad
                            .store_mut()
                            .get(&kad::RecordKey::new(&key))
                            .map(|r| r.into_owned());
                        let _ = reply.send(got);
                    }
                    Some(Command::InTable(peer, reply)) => {
                        let found = swarm
                            .behaviour_mut()
                            .kad
                            .kbuckets()
                            .any(|b| b.iter().any(|e| *e.node.key.preimage() == peer));
                        let _ = reply.send(found);
                    }
                    Some(Command::Providers(key, reply)) => {
                        let providers = swarm
                            .behaviour_mut()
                            .kad
                            .store_mut()
                            .providers(&kad::RecordKey::new(&key))
                            .into_iter()
                            .map(|p| p.provider)
                            .collect();
                        let _ = reply.send(providers);
                    }
                    None => break,
                },
            }
        }
    });
    RustPeer {
        peer: ready_rx.blocking_recv().expect("swarm started"),
        commands,
        reports,
    }
}

fn ask<T>(
    rt: &tokio::runtime::Runtime,
    rust: &RustPeer,
    make: impl FnOnce(tokio::sync::oneshot::Sender<T>) -> Command,
) -> T {
    let (tx, rx) = tokio::sync::oneshot::channel();
    rust.commands.send(make(tx)).expect("swarm alive");
    rt.block_on(rx).expect("answer")
}

async fn lp2p(mode: Mode) -> (Host, Kademlia) {
    let host = Host::builder()
        .transport(lp2p_tcp::TcpTransport::default())
        .security(lp2p_noise::Noise::new())
        .muxer(lp2p_yamux::Yamux::default())
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("addr"))
        .build()
        .await
        .expect("lp2p host");
    let config = KadConfig {
        validator: std::sync::Arc::new(
            NamespacedValidator::default().unknown_namespaces(UnknownNamespaces::Accept),
        ),
        ..KadConfig::default().with_mode(mode)
    };
    let kad = Kademlia::new(&host, config).expect("kad");
    // rust-libp2p checks only the legacy record format (decision D10).
    Identify::new(
        &host,
        IdentifyConfig {
            record_format: RecordFormat::Legacy,
            ..IdentifyConfig::default()
        },
    );
    (host, kad)
}

fn wait(what: &str, mut check: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + lp2p_interop::EXCHANGE_TIMEOUT;
    while !check() {
        assert!(std::time::Instant::now() < end, "{what}: not in time");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn records_and_providers_cross_with_their_fields() {
    init_tracing();
    let rt = tokio_runtime();
    let mut rust = start_rust(&rt, kad::Mode::Server);
    let rust_addr = recv_matching(&rt, &mut rust.reports, |r| match r {
        Report::Listening(a) => Some(a),
        Report::PutDone(_) => None,
    });
    let (host, kad) = run("lp2p host", lp2p(Mode::Server));
    kad.add_address(rust.peer, vec![rust_addr]);

    // lp2p puts: rust-libp2p stores the value with lp2p as publisher and an expiry.
    let (stored, _) = run(
        "lp2p put",
        kad.put_value(Record::new(b"/x/from-lp2p".to_vec(), b"one".to_vec())),
    )
    .expect("put");
    assert_eq!(stored, 1);
    let at_rust = ask(&rt, &rust, |tx| {
        Command::Stored(b"/x/from-lp2p".to_vec(), tx)
    })
    .expect("stored at rust");
    assert_eq!(at_rust.value, b"one");
    assert_eq!(at_rust.publisher, Some(host.local_peer_id()));
    assert!(at_rust.expires.is_some(), "the TTL crossed (field 777)");

    // rust-libp2p puts (it learned lp2p from identify): lp2p serves it back with both fields.
    wait("rust-libp2p adds lp2p (a server) from identify", || {
        ask(&rt, &rust, |tx| Command::InTable(host.local_peer_id(), tx))
    });
    let mut record = kad::Record::new(kad::RecordKey::new(&b"/x/from-rust"), b"two".to_vec());
    record.expires = Some(std::time::Instant::now() + Duration::from_secs(3600));
    rust.commands.send(Command::Put(record)).expect("alive");
    let done = recv_matching(&rt, &mut rust.reports, |r| match r {
        Report::PutDone(d) => Some(d),
        Report::Listening(_) => None,
    });
    done.expect("rust-libp2p's put reached its quorum");
    let (got, _) =
        run("lp2p get", kad.get_value(b"/x/from-rust".to_vec())).expect("stored at lp2p");
    assert_eq!(got.value, b"two");
    assert_eq!(got.publisher, Some(rust.peer));
    let left = got
        .expires
        .expect("expiry")
        .saturating_duration_since(host.runtime().now());
    assert!(
        left > Duration::from_secs(3000) && left <= Duration::from_secs(3600),
        "{left:?}"
    );

    // lp2p provides: rust-libp2p stores lp2p as a provider of the multihash key.
    let key = lp2p_kad::sha256_multihash(b"some content");
    let (took, _) = run("lp2p provide", kad.start_providing(key.clone())).expect("provide");
    assert_eq!(took, 1);
    wait("rust-libp2p stores the provider record", || {
        ask(&rt, &rust, |tx| Command::Providers(key.clone(), tx)).contains(&host.local_peer_id())
    });
    run("close", host.close());
}

#[test]
fn clients_stay_out_of_routing_tables_in_both_directions() {
    init_tracing();
    let rt = tokio_runtime();
    // An lp2p client dials a rust-libp2p server.
    let mut server = start_rust(&rt, kad::Mode::Server);
    let server_addr = recv_matching(&rt, &mut server.reports, |r| match r {
        Report::Listening(a) => Some(a),
        Report::PutDone(_) => None,
    });
    let (client, client_kad) = run("lp2p client", lp2p(Mode::Client));
    client_kad.add_address(server.peer, vec![server_addr]);
    // It can query (the server is in its table, and answers).
    let found = run(
        "closest",
        client_kad.get_closest_peers(b"anything".to_vec()),
    )
    .expect("query");
    assert_eq!(found.len(), 1);
    std::thread::sleep(Duration::from_millis(500));
    assert!(!ask(&rt, &server, |tx| Command::InTable(
        client.local_peer_id(),
        tx
    )));

    // A rust-libp2p client dials an lp2p server.
    let rust_client = start_rust(&rt, kad::Mode::Client);
    let (lp2p_server, lp2p_kad) = run("lp2p server", lp2p(Mode::Server));
    let mut target = lp2p_server.listen_addrs()[0].clone();
    target.push(libp2p::multiaddr::Protocol::P2p(
        lp2p_server.local_peer_id(),
    ));
    rust_client
        .commands
        .send(Command::Dial(target))
        .expect("alive");
    // The rust client learns the lp2p server (it advertises the protocol)...
    wait("the rust-libp2p client adds the lp2p server", || {
        ask(&rt, &rust_client, |tx| {
            Command::InTable(lp2p_server.local_peer_id(), tx)
        })
    });
    // ...but lp2p never adds the client.
    assert!(
        !lp2p_kad
            .routing_table()
            .iter()
            .any(|p| p.peer == rust_client.peer)
    );
    run("close", async {
        client.close().await;
        lp2p_server.close().await;
    });
}

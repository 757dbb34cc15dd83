//! Kademlia between an lp2p host (lp2p-kad) and a rust-libp2p 0.57 swarm (libp2p-kad 0.49,
//! with identify) in one process over TCP + noise + yamux: what each stores from the other
//! (record values, publishers and remaining TTLs cross the wire), provider records, and the
//! client/server rule (a client in either implementation never enters the other's routing
//! table; a server does, from identify).
//!
//! And between lp2p hosts in this process and js-libp2p-node processes (@libp2p/kad-dht
//! 16.4.5 on js-libp2p 3.3.11, `interop/js`, installed by `interop/js/setup.sh`), in both
//! dial directions: find peer, put/get value, provide/find providers, each answered across
//! the two implementations. Record keys are `/interop/...`, the namespace js-libp2p-node
//! accepts (see `interop/js/lib/kad.js`).

use std::time::Duration;

use futures::StreamExt;
use libp2p::kad::store::RecordStore;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, identify, kad};
use lp2p_host::Host;
use lp2p_identify::{Identify, IdentifyConfig, RecordFormat};
use lp2p_interop::peers::{self, Implementation, Peer, Programs};
use lp2p_interop::{init_tracing, recv_matching, run, tokio_runtime};
use lp2p_kad::validator::{NamespacedValidator, UnknownNamespaces};
use lp2p_kad::{KadConfig, Kademlia, Mode, Record};
use serde_json::Value;
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
    // rust-libp2p checks only the legacy record format (decision D10).
    lp2p_with(mode, RecordFormat::Legacy).await
}

/// An lp2p host with Kademlia in `mode` and identify signing its peer record in `format`.
async fn lp2p_with(mode: Mode, format: RecordFormat) -> (Host, Kademlia) {
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
    Identify::new(
        &host,
        IdentifyConfig {
            record_format: format,
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

/// How js-libp2p-node is started (the other programs are not used here: lp2p runs in this
/// process).
fn js_programs() -> Programs {
    Programs::new(
        std::path::PathBuf::new(),
        std::path::PathBuf::from(env!("CARGO_BIN_EXE_rust-libp2p-node")),
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
    )
}

/// A js-libp2p-node listener in server mode, bootstrapping from `connect` when given.
fn js_listener(programs: &Programs, seed: u64, connect: Option<&str>) -> Peer {
    let mut args: Vec<String> = [
        "listen",
        "--addr",
        "/ip4/127.0.0.1/tcp/0",
        "--kad",
        "server",
        "--key-seed",
        &seed.to_string(),
        "--timeout",
        "600",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    if let Some(addr) = connect {
        args.extend(["--connect".to_owned(), addr.to_owned()]);
    }
    let command = programs
        .command(Implementation::Js)
        .unwrap_or_else(|why| panic!("js-libp2p-node: {why}"));
    Peer::listen(command, &args, None).unwrap_or_else(|e| panic!("js-libp2p listener: {e}"))
}

/// Sends a kad stdin line to a js listener and returns its `kad` event.
fn js_line(peer: &mut Peer, line: &str) -> Value {
    peer.send_line(line).expect("write to the js listener");
    peer.wait_for(|e| e["event"] == "kad")
        .unwrap_or_else(|e| panic!("`{line}`: {e}"))
}

/// Sends `line` until its event satisfies `check` (the network settles through identify
/// and bootstrap; a few tries, a second apart).
fn js_line_until(peer: &mut Peer, line: &str, check: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..JS_ATTEMPTS {
        last = js_line(peer, line);
        if check(&last) {
            return last;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    panic!("`{line}`: last answer {last}")
}

/// How often a js operation is tried while the network settles.
const JS_ATTEMPTS: usize = 10;
/// How often the js client is run (each run has its own 60 s hard stop).
const JS_DIAL_ATTEMPTS: usize = 3;

fn lists(event: &Value, field: &str, want: &str) -> bool {
    event[field] == want
        || event[field]
            .as_array()
            .is_some_and(|l| l.iter().any(|v| v == want))
}

fn with_p2p(addr: &Multiaddr, peer: PeerId) -> String {
    let mut addr = addr.clone();
    addr.push(libp2p::multiaddr::Protocol::P2p(peer));
    addr.to_string()
}

/// An lp2p server that knows `bootstrap` (peer, address without `/p2p`) and has run a
/// bootstrap through it. Its identify signs the standard peer record format (the default):
/// js-libp2p refuses the legacy format rust-libp2p needs, and with it the whole identify
/// message (see `kad_network.rs`). It serves ping: @libp2p/kad-dht pings a new peer over
/// /ipfs/ping/1.0.0 before it enters the routing table, and never adds one without ping.
fn lp2p_joined(bootstrap: &[(PeerId, Multiaddr)]) -> (Host, Kademlia, lp2p_ping::Ping) {
    let (host, kad) = run(
        "lp2p host",
        lp2p_with(Mode::Server, RecordFormat::default()),
    );
    let ping = lp2p_ping::Ping::new(&host, lp2p_ping::PingConfig::default());
    for (peer, addr) in bootstrap {
        kad.add_address(*peer, vec![addr.clone()]);
    }
    if !bootstrap.is_empty() {
        run("lp2p bootstrap", kad.bootstrap()).expect("bootstrap");
    }
    (host, kad, ping)
}

fn split_p2p(addr: &str) -> (PeerId, Multiaddr) {
    let mut addr: Multiaddr = addr.parse().expect("multiaddr");
    match addr.pop() {
        Some(libp2p::multiaddr::Protocol::P2p(peer)) => (peer, addr),
        other => panic!("{addr}: ends in {other:?}, not /p2p"),
    }
}

/// lp2p dials js: two js-libp2p listeners (the second bootstraps from the first), an lp2p
/// server A that enters through the first and a second lp2p server B known only to A.
#[test]
fn lp2p_dials_js_every_operation() {
    init_tracing();
    let programs = js_programs();
    if !peers::selected(Implementation::Js) {
        println!("SKIPPED: LP2P_INTEROP_PEERS leaves out js");
        return;
    }
    let mut j1 = js_listener(&programs, 11, None);
    let mut j2 = js_listener(&programs, 12, Some(&j1.addr));
    let (j1_peer, j1_addr) = split_p2p(&j1.addr);
    let (j2_peer, j2_addr) = split_p2p(&j2.addr);
    let (a, kad_a, _ping_a) = lp2p_joined(&[(j1_peer, j1_addr)]);
    let a_addr = a.listen_addrs()[0].clone();
    let (b, _kad_b, _ping_b) = lp2p_joined(&[(a.local_peer_id(), a_addr)]);

    // find peer: lp2p finds the second js listener, which only the first one knows.
    let mut found = None;
    for _ in 0..JS_ATTEMPTS {
        if let Ok((info, _)) = run("lp2p find peer", kad_a.find_peer(j2_peer)) {
            found = Some(info);
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let info = found.expect("lp2p finds the js listener through js");
    assert!(info.addrs.contains(&j2_addr), "{:?}", info.addrs);

    // put/get: lp2p puts, js stores and serves it.
    let (stored, _) = run(
        "lp2p put",
        kad_a.put_value(Record::new(b"/interop/from-lp2p".to_vec(), b"one".to_vec())),
    )
    .expect("put");
    assert!(stored >= 1, "no js peer stored lp2p's record");
    js_line_until(&mut j2, "kad-get /interop/from-lp2p", |e| {
        e["ok"] == true && e["value"] == "one"
    });
    // js puts, lp2p stores and serves it.
    let put = js_line_until(&mut j1, "kad-put /interop/from-js two", |e| e["ok"] == true);
    assert!(put["stored"].as_u64() >= Some(1), "{put}");
    let (got, _) = run("lp2p get", kad_a.get_value(b"/interop/from-js".to_vec()))
        .expect("lp2p gets js's record");
    assert_eq!(got.value, b"two");

    // provide/find providers, both ways.
    let (took, _) = run(
        "lp2p provide",
        kad_a.start_providing(lp2p_kad::sha256_multihash(b"content-lp2p")),
    )
    .expect("provide");
    assert!(took >= 1);
    let a_peer = a.local_peer_id().to_string();
    js_line_until(&mut j2, "kad-find-providers content-lp2p", |e| {
        lists(e, "providers", &a_peer)
    });
    js_line_until(&mut j1, "kad-provide content-js", |e| e["ok"] == true);
    let (providers, _) = run(
        "lp2p find providers",
        kad_a.get_providers(lp2p_kad::sha256_multihash(b"content-js")),
    )
    .expect("get providers");
    assert!(providers.iter().any(|p| p.peer == j1_peer), "{providers:?}");

    // find peer from js: the second js listener finds B, which only lp2p A knows.
    let want = with_p2p(&b.listen_addrs()[0], b.local_peer_id());
    js_line_until(
        &mut j2,
        &format!("kad-find-peer {}", b.local_peer_id()),
        |e| lists(e, "peers", &want),
    );
    run("close", async {
        a.close().await;
        b.close().await;
    });
}

/// js dials lp2p: two lp2p servers (B bootstraps from A) and js-libp2p-node dialing A
/// with every operation, then lp2p reading what the js client left.
#[test]
fn js_dials_lp2p_every_operation() {
    init_tracing();
    let programs = js_programs();
    if !peers::selected(Implementation::Js) {
        println!("SKIPPED: LP2P_INTEROP_PEERS leaves out js");
        return;
    }
    let (a, kad_a, _ping_a) = lp2p_joined(&[]);
    let a_addr = a.listen_addrs()[0].clone();
    let (b, kad_b, _ping_b) = lp2p_joined(&[(a.local_peer_id(), a_addr.clone())]);
    // A learns B as a server with a dialable address (an inbound peer is not enough).
    kad_a.add_address(b.local_peer_id(), vec![b.listen_addrs()[0].clone()]);
    let (stored, _) = run(
        "lp2p put",
        kad_b.put_value(Record::new(
            b"/interop/from-lp2p".to_vec(),
            b"three".to_vec(),
        )),
    )
    .expect("put");
    assert_eq!(stored, 1);
    run(
        "lp2p provide",
        kad_b.start_providing(lp2p_kad::sha256_multihash(b"content-lp2p")),
    )
    .expect("provide");

    let js_seed = 21u64;
    let b_peer = b.local_peer_id();
    let want_b = with_p2p(&b.listen_addrs()[0], b_peer);
    let args: Vec<String> = [
        "dial",
        "--addr",
        &with_p2p(&a_addr, a.local_peer_id()),
        "--key-seed",
        &js_seed.to_string(),
        "--timeout",
        "60",
        "--kad-find-peer",
        &b_peer.to_string(),
        "--kad-get",
        "/interop/from-lp2p",
        "--kad-find-providers",
        "content-lp2p",
        "--kad-put",
        "/interop/from-js=four",
        "--kad-provide",
        "content-js",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let mut last = String::new();
    let mut events = None;
    for _ in 0..JS_DIAL_ATTEMPTS {
        let command = programs
            .command(Implementation::Js)
            .unwrap_or_else(|why| panic!("js-libp2p-node: {why}"));
        match peers::run_to_end(command, &args) {
            Ok(e) => {
                events = Some(e);
                break;
            }
            Err(e) => {
                eprintln!("js dial: {e}");
                last = e;
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let events = events.unwrap_or_else(|| panic!("js dial: {last}"));
    let event = |op: &str| {
        events
            .iter()
            .find(|e| e["event"] == "kad" && e["op"] == op)
            .unwrap_or_else(|| panic!("no {op} event in {events:?}"))
            .clone()
    };
    assert!(lists(&event("find-peer"), "peers", &want_b), "{events:?}");
    assert_eq!(event("get")["value"], "three");
    assert!(
        lists(&event("find-providers"), "providers", &b_peer.to_string()),
        "{events:?}"
    );
    assert_eq!(event("put")["ok"], true);
    assert_eq!(event("provide")["ok"], true);

    // What the js client left: its record and its provider record, read through lp2p.
    let (got, _) = run("lp2p get", kad_b.get_value(b"/interop/from-js".to_vec()))
        .expect("lp2p gets js's record");
    assert_eq!(got.value, b"four");
    let js_peer: PeerId = lp2p_interop::seed_keypair(js_seed).public().to_peer_id();
    let (providers, _) = run(
        "lp2p find providers",
        kad_a.get_providers(lp2p_kad::sha256_multihash(b"content-js")),
    )
    .expect("get providers");
    assert!(providers.iter().any(|p| p.peer == js_peer), "{providers:?}");
    run("close", async {
        a.close().await;
        b.close().await;
    });
}

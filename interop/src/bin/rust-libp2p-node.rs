//! `rust-libp2p-node`: the lp2p-node command-line contract (docs/node-cli.md) implemented with
//! rust-libp2p 0.57, so the interop matrix can pair the two programs process against process.
//!
//! Supported: `listen`, `dial`, `perf` and `conn-bench` with `--security noise|plaintext`, `--muxer yamux`
//! (rust-libp2p 0.57 has no mplex: asking for it is an `error` event), `--key-seed`,
//! `--timeout`, `--bare`, and the same JSON-line events. Protocols served: identify (with
//! signed peer records), ping, gossipsub on every `--topic`, `/echo/1.0.0` and `/perf/1.0.0`
//! (both over `libp2p-stream`); `--bare` leaves out identify and gossipsub, as lp2p-node's
//! does, so benchmarks compare the transport stacks alone.
//!
//! For the mixed-network test, gossipsub can be tuned beyond the contract: `--mesh-d`,
//! `--mesh-dlo`, `--mesh-dhi`, `--px`, `--prune-backoff SECS`, `--history-length`,
//! `--history-gossip`, `--heartbeat-ms`, `--message-id spec|native` (native: rust-libp2p's
//! default id, base58 author + decimal seqno; spec: author bytes + 8-byte seqno), and
//! `--trace-control` prints a `control` event per received control message. Message events
//! carry the message id in hex (`id`).

#![allow(clippy::print_stdout)]

use std::collections::HashSet;
use std::io::Write;
use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, gossipsub, identify, identity, multiaddr::Protocol,
    ping,
};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

const ECHO: StreamProtocol = StreamProtocol::new("/echo/1.0.0");
const PERF: StreamProtocol = StreamProtocol::new("/perf/1.0.0");
/// How long `dial --publish` waits for the remote to join the mesh, as lp2p-node.
const MESH_WAIT: Duration = Duration::from_secs(5);
/// Bytes per perf read/write call.
const PERF_CHUNK: usize = 64 * 1024;

#[derive(NetworkBehaviour)]
struct Behaviour {
    identify: Toggle<identify::Behaviour>,
    ping: ping::Behaviour,
    gossipsub: Toggle<gossipsub::Behaviour>,
    stream: libp2p_stream::Behaviour,
}

/// Gossipsub tuning for the mixed-network test (not part of the lp2p-node contract); unset
/// fields keep rust-libp2p's defaults.
#[derive(Default, Clone)]
struct GossipTuning {
    d: Option<usize>,
    dlo: Option<usize>,
    dhi: Option<usize>,
    px: bool,
    prune_backoff: Option<u64>,
    history_length: Option<usize>,
    history_gossip: Option<usize>,
    heartbeat_ms: Option<u64>,
    /// The pubsub spec's message id (from + seqno bytes) instead of rust-libp2p's default.
    spec_message_id: bool,
    /// Print a `control` event per control message received (from gossipsub's logs).
    trace_control: bool,
}

/// The parsed command line.
#[derive(Default)]
struct Args {
    command: String,
    addrs: Vec<Multiaddr>,
    connect: Vec<Multiaddr>,
    topics: Vec<String>,
    plaintext: bool,
    bare: bool,
    count: usize,
    seed: Option<u64>,
    timeout: Option<Duration>,
    ping: Option<u32>,
    echo: Option<String>,
    identify: bool,
    publish: Option<String>,
    expect_messages: Option<usize>,
    upload: u64,
    download: u64,
    gossip: GossipTuning,
}

fn emit(event: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{event}");
    let _ = out.flush();
}

fn fail(what: impl std::fmt::Display) -> ! {
    emit(&json!({ "event": "error", "what": what.to_string() }));
    std::process::exit(1)
}

fn number<T: std::str::FromStr>(
    raw: &mut dyn Iterator<Item = String>,
    flag: &str,
) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    raw.next()
        .ok_or(format!("{flag} needs a value"))?
        .parse()
        .map_err(|e| format!("{flag}: {e}"))
}

fn parse() -> Result<Args, String> {
    let mut raw = std::env::args().skip(1);
    let mut args = Args {
        command: raw.next().ok_or("no command given")?,
        ..Args::default()
    };
    let value = |raw: &mut dyn Iterator<Item = String>, name: &str| {
        raw.next().ok_or(format!("{name} needs a value"))
    };
    while let Some(flag) = raw.next() {
        match flag.as_str() {
            "--addr" => args.addrs.push(
                value(&mut raw, &flag)?
                    .parse()
                    .map_err(|e| format!("bad address: {e}"))?,
            ),
            "--connect" => {
                args.connect.push(
                    value(&mut raw, &flag)?
                        .parse()
                        .map_err(|e| format!("bad address: {e}"))?,
                );
            }
            "--topic" => args.topics.push(value(&mut raw, &flag)?),
            "--security" => match value(&mut raw, &flag)?.as_str() {
                "noise" => args.plaintext = false,
                "plaintext" => args.plaintext = true,
                other => return Err(format!("unknown security {other}")),
            },
            "--muxer" => match value(&mut raw, &flag)?.as_str() {
                "yamux" => {}
                other => {
                    return Err(format!(
                        "rust-libp2p 0.57 does not support the muxer {other}"
                    ));
                }
            },
            "--only" | "--json" => {}
            "--bare" => args.bare = true,
            "--count" => {
                args.count = value(&mut raw, &flag)?
                    .parse()
                    .map_err(|e| format!("{flag}: {e}"))?
            }
            "--key-seed" => {
                args.seed = Some(
                    value(&mut raw, &flag)?
                        .parse()
                        .map_err(|e| format!("--key-seed: {e}"))?,
                )
            }
            "--timeout" => {
                let secs: u64 = value(&mut raw, &flag)?
                    .parse()
                    .map_err(|e| format!("--timeout: {e}"))?;
                args.timeout = Some(Duration::from_secs(secs));
            }
            "--ping" => {
                args.ping = Some(
                    value(&mut raw, &flag)?
                        .parse()
                        .map_err(|e| format!("--ping: {e}"))?,
                )
            }
            "--echo" => args.echo = Some(value(&mut raw, &flag)?),
            "--identify" => args.identify = true,
            "--publish" => args.publish = Some(value(&mut raw, &flag)?),
            "--expect-messages" => {
                args.expect_messages = Some(
                    value(&mut raw, &flag)?
                        .parse()
                        .map_err(|e| format!("{flag}: {e}"))?,
                );
            }
            "--upload-bytes" => {
                args.upload = value(&mut raw, &flag)?
                    .parse()
                    .map_err(|e| format!("{flag}: {e}"))?
            }
            "--download-bytes" => {
                args.download = value(&mut raw, &flag)?
                    .parse()
                    .map_err(|e| format!("{flag}: {e}"))?
            }
            "--mesh-d" => args.gossip.d = Some(number(&mut raw, &flag)?),
            "--mesh-dlo" => args.gossip.dlo = Some(number(&mut raw, &flag)?),
            "--mesh-dhi" => args.gossip.dhi = Some(number(&mut raw, &flag)?),
            "--px" => args.gossip.px = true,
            "--prune-backoff" => args.gossip.prune_backoff = Some(number(&mut raw, &flag)?),
            "--history-length" => args.gossip.history_length = Some(number(&mut raw, &flag)?),
            "--history-gossip" => args.gossip.history_gossip = Some(number(&mut raw, &flag)?),
            "--heartbeat-ms" => args.gossip.heartbeat_ms = Some(number(&mut raw, &flag)?),
            "--message-id" => match value(&mut raw, &flag)?.as_str() {
                "native" => args.gossip.spec_message_id = false,
                "spec" => args.gossip.spec_message_id = true,
                other => return Err(format!("unknown --message-id {other} (native or spec)")),
            },
            "--trace-control" => args.gossip.trace_control = true,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(args)
}

/// The identity lp2p-node derives from `--key-seed`: the seed as 8 little-endian bytes, then
/// 24 zero bytes, as the Ed25519 secret key.
fn keypair(seed: Option<u64>) -> identity::Keypair {
    match seed {
        None => identity::Keypair::generate_ed25519(),
        Some(seed) => {
            let mut secret = [0u8; 32];
            secret[..8].copy_from_slice(&seed.to_le_bytes());
            identity::Keypair::ed25519_from_bytes(secret).expect("32 bytes are an ed25519 key")
        }
    }
}

/// The pubsub spec's (and go-libp2p's, lp2p's, py-libp2p's) message id: the author's peer id
/// bytes followed by the 8-byte big-endian seqno. rust-libp2p's default is different: the
/// base58 text of the author followed by the decimal text of the seqno.
fn spec_message_id(message: &gossipsub::Message) -> gossipsub::MessageId {
    let mut id = message.source.map(|p| p.to_bytes()).unwrap_or_default();
    if let Some(seqno) = message.sequence_number {
        id.extend_from_slice(&seqno.to_be_bytes());
    }
    gossipsub::MessageId::from(id)
}

fn gossip_config(tuning: &GossipTuning) -> Result<gossipsub::Config, String> {
    let mut builder = gossipsub::ConfigBuilder::default();
    builder.heartbeat_interval(Duration::from_millis(tuning.heartbeat_ms.unwrap_or(500)));
    if let Some(d) = tuning.d {
        builder.mesh_n(d);
        // The outbound quota must stay below the lowered bounds.
        builder.mesh_outbound_min((d / 2).min(tuning.dlo.unwrap_or(1).saturating_sub(1)));
    }
    if let Some(dlo) = tuning.dlo {
        builder.mesh_n_low(dlo);
    }
    if let Some(dhi) = tuning.dhi {
        builder.mesh_n_high(dhi);
    }
    if tuning.px {
        builder.do_px();
    }
    if let Some(secs) = tuning.prune_backoff {
        builder.prune_backoff(Duration::from_secs(secs));
    }
    if let Some(n) = tuning.history_length {
        builder.history_length(n);
    }
    if let Some(n) = tuning.history_gossip {
        builder.history_gossip(n);
    }
    if tuning.spec_message_id {
        builder.message_id_fn(spec_message_id);
    }
    builder
        .build()
        .map_err(|e| format!("gossipsub config: {e}"))
}

fn behaviour(key: &identity::Keypair, bare: bool, tuning: &GossipTuning) -> Behaviour {
    let gossip_config = gossip_config(tuning).unwrap_or_else(|e| fail(e));
    let identify = identify::Behaviour::new(
        identify::Config::new_with_signed_peer_record("ipfs/0.1.0".to_owned(), key)
            .with_agent_version("rust-libp2p/0.57 (lp2p interop)".to_owned()),
    );
    let gossipsub = gossipsub::Behaviour::new(
        gossipsub::MessageAuthenticity::Signed(key.clone()),
        gossip_config,
    )
    .expect("gossipsub");
    Behaviour {
        identify: Toggle::from((!bare).then_some(identify)),
        ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_millis(200))),
        gossipsub: Toggle::from((!bare).then_some(gossipsub)),
        stream: libp2p_stream::Behaviour::new(),
    }
}

fn swarm(args: &Args) -> Result<Swarm<Behaviour>, String> {
    let key = keypair(args.seed);
    let builder = libp2p::SwarmBuilder::with_existing_identity(key).with_tokio();
    let idle = |c: libp2p::swarm::Config| c.with_idle_connection_timeout(Duration::from_secs(300));
    let tcp = libp2p::tcp::Config::default().nodelay(true);
    if args.plaintext {
        Ok(builder
            .with_tcp(
                tcp,
                |k: &identity::Keypair| {
                    Ok::<_, std::convert::Infallible>(libp2p::plaintext::Config::new(k))
                },
                libp2p::yamux::Config::default,
            )
            .map_err(|e| e.to_string())?
            .with_behaviour(|k| behaviour(k, args.bare, &args.gossip))
            .map_err(|e| e.to_string())?
            .with_swarm_config(idle)
            .build())
    } else {
        Ok(builder
            .with_tcp(
                tcp,
                libp2p::noise::Config::new,
                libp2p::yamux::Config::default,
            )
            .map_err(|e| e.to_string())?
            .with_behaviour(|k| behaviour(k, args.bare, &args.gossip))
            .map_err(|e| e.to_string())?
            .with_swarm_config(idle)
            .build())
    }
}

/// Serves `/echo/1.0.0` and `/perf/1.0.0`.
fn serve_streams(swarm: &mut Swarm<Behaviour>) {
    let mut control = swarm.behaviour().stream.new_control();
    let mut echo = control.accept(ECHO).expect("echo registered once");
    let mut perf = control.accept(PERF).expect("perf registered once");
    tokio::spawn(async move {
        while let Some((_, mut stream)) = echo.next().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = stream.close().await;
            });
        }
    });
    tokio::spawn(async move {
        while let Some((_, mut stream)) = perf.next().await {
            tokio::spawn(async move {
                let mut header = [0u8; 8];
                if stream.read_exact(&mut header).await.is_err() {
                    return;
                }
                let mut buf = vec![0u8; PERF_CHUNK];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(_) => return,
                    }
                }
                let mut left = u64::from_be_bytes(header);
                while left > 0 {
                    let n = usize::try_from(left.min(PERF_CHUNK as u64)).unwrap_or(PERF_CHUNK);
                    if stream.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                    left -= n as u64;
                }
                let _ = stream.close().await;
            });
        }
    });
}

/// The gossipsub behaviour, or an error event when `--bare` left it out.
fn gossip(swarm: &mut Swarm<Behaviour>) -> &mut gossipsub::Behaviour {
    match swarm.behaviour_mut().gossipsub.as_mut() {
        Some(gossipsub) => gossipsub,
        None => fail("pubsub is not running (--bare serves only ping, echo and perf)"),
    }
}

fn peer_of(addr: &Multiaddr) -> PeerId {
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => peer,
        _ => fail(format!("the address {addr} must end in /p2p/<peer id>")),
    }
}

fn identify_event(peer: &PeerId, info: &identify::Info) -> Value {
    json!({
        "event": "identify",
        "peer": peer.to_string(),
        "agent_version": info.agent_version,
        "protocol_version": info.protocol_version,
        "protocols": info.protocols.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "listen_addrs": info.listen_addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "observed_addr": info.observed_addr.to_string(),
        "signed_peer_record": info.signed_peer_record.is_some(),
    })
}

fn message_event(message: &gossipsub::Message, id: &gossipsub::MessageId) -> Value {
    json!({
        "event": "message",
        "id": id.0.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "topic": message.topic.to_string(),
        "from": message.source.map(|p| p.to_string()).unwrap_or_default(),
        "data": String::from_utf8_lossy(&message.data),
    })
}

/// What the swarm loop reports to the command driving it.
#[derive(Default)]
struct Seen {
    connected: HashSet<PeerId>,
    identified: Vec<(PeerId, identify::Info)>,
    pings: Vec<(PeerId, Duration)>,
    ping_failure: Option<String>,
    messages: usize,
    dial_error: Option<String>,
}

/// Runs the swarm until `done` says so, printing events. `done` sees the swarm and what was
/// seen so far.
async fn drive(
    swarm: &mut Swarm<Behaviour>,
    seen: &mut Seen,
    print_connections: bool,
    mut done: impl FnMut(&mut Swarm<Behaviour>, &mut Seen) -> bool,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    while !done(swarm, seen) {
        tokio::select! {
            _ = tick.tick() => {}
            event = swarm.select_next_some() => handle(event, seen, print_connections),
        }
    }
}

fn handle(event: SwarmEvent<BehaviourEvent>, seen: &mut Seen, print_connections: bool) {
    match event {
        SwarmEvent::ConnectionEstablished {
            peer_id, endpoint, ..
        } => {
            seen.connected.insert(peer_id);
            if print_connections {
                let (dir, addr) = if endpoint.is_dialer() {
                    ("out", endpoint.get_remote_address().clone())
                } else {
                    ("in", endpoint.get_remote_address().clone())
                };
                emit(
                    &json!({ "event": "connected", "peer": peer_id.to_string(), "dir": dir, "addr": addr.to_string() }),
                );
            }
        }
        SwarmEvent::ConnectionClosed {
            peer_id,
            num_established: 0,
            ..
        } => {
            seen.connected.remove(&peer_id);
            if print_connections {
                emit(&json!({ "event": "disconnected", "peer": peer_id.to_string() }));
            }
        }
        SwarmEvent::OutgoingConnectionError { error, .. } => {
            seen.dial_error = Some(error.to_string())
        }
        SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
            peer_id,
            info,
            ..
        })) => {
            if print_connections {
                emit(&identify_event(&peer_id, &info));
            }
            seen.identified.push((peer_id, info));
        }
        SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event { peer, result, .. })) => {
            match result {
                Ok(rtt) => seen.pings.push((peer, rtt)),
                Err(e) => seen.ping_failure = Some(format!("ping {peer} failed: {e}")),
            }
        }
        SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
            message,
            message_id,
            ..
        })) => {
            emit(&message_event(&message, &message_id));
            seen.messages += 1;
        }
        _ => {}
    }
}

/// Dials `addr` and drives the swarm until the connection to `peer` is up; an error event
/// and exit if the dial fails.
async fn connect(swarm: &mut Swarm<Behaviour>, seen: &mut Seen, addr: &Multiaddr, peer: PeerId) {
    swarm
        .dial(addr.clone())
        .unwrap_or_else(|e| fail(format!("cannot connect to {addr}: {e}")));
    drive(swarm, seen, false, |_, s| {
        s.connected.contains(&peer) || s.dial_error.is_some()
    })
    .await;
    if let Some(e) = seen.dial_error.take() {
        fail(format!("cannot connect to {addr}: {e}"));
    }
}

/// Drives the swarm while a spawned stream exchange runs; its result, or an error event and
/// exit.
async fn run_exchange<T>(
    swarm: &mut Swarm<Behaviour>,
    seen: &mut Seen,
    exchange: tokio::task::JoinHandle<Result<T, String>>,
) -> T {
    tokio::pin!(exchange);
    loop {
        tokio::select! {
            event = swarm.select_next_some() => handle(event, seen, false),
            result = &mut exchange => {
                return result.map_err(|e| e.to_string()).and_then(|r| r).unwrap_or_else(|e| fail(e));
            }
        }
    }
}

async fn listen(args: Args) {
    let mut swarm = swarm(&args).unwrap_or_else(|e| fail(e));
    serve_streams(&mut swarm);
    for topic in &args.topics {
        let _ = gossip(&mut swarm).subscribe(&gossipsub::IdentTopic::new(topic));
    }
    for addr in &args.addrs {
        swarm
            .listen_on(addr.clone())
            .unwrap_or_else(|e| fail(format!("cannot listen on {addr}: {e}")));
    }
    let mut seen = Seen::default();
    let mut listening = Vec::new();
    while listening.len() < args.addrs.len() {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            listening.push(
                address
                    .with(Protocol::P2p(*swarm.local_peer_id()))
                    .to_string(),
            );
        }
    }
    emit(
        &json!({ "event": "listening", "peer_id": swarm.local_peer_id().to_string(), "addrs": listening }),
    );
    for addr in &args.connect {
        let _ = swarm.dial(addr.clone());
    }
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let deadline = args.timeout.map(|t| Instant::now() + t);
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        tokio::select! {
            event = swarm.select_next_some() => handle(event, &mut seen, true),
            line = stdin.next_line() => match line {
                Ok(Some(line)) => {
                    let mut parts = line.trim().splitn(3, ' ');
                    if let (Some("publish"), Some(topic), Some(text)) = (parts.next(), parts.next(), parts.next())
                        && let Err(e) = gossip(&mut swarm).publish(gossipsub::IdentTopic::new(topic), text.as_bytes().to_vec())
                    {
                        eprintln!("publish on {topic} failed: {e}");
                    }
                }
                _ => break,
            },
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

async fn dial(args: Args) {
    let addr = args
        .addrs
        .first()
        .cloned()
        .unwrap_or_else(|| fail("dial needs --addr"));
    let peer = peer_of(&addr);
    let mut swarm = swarm(&args).unwrap_or_else(|e| fail(e));
    serve_streams(&mut swarm);
    let topic = args
        .topics
        .first()
        .map(|t| gossipsub::IdentTopic::new(t.as_str()));
    if let Some(topic) = &topic {
        let _ = gossip(&mut swarm).subscribe(topic);
    }
    let mut seen = Seen::default();
    connect(&mut swarm, &mut seen, &addr, peer).await;
    emit(
        &json!({ "event": "connected", "peer": peer.to_string(), "dir": "out", "addr": addr.to_string() }),
    );

    if let Some(count) = args.ping {
        let count = count as usize;
        seen.pings.clear();
        drive(&mut swarm, &mut seen, false, |_, s| {
            s.pings.len() >= count || s.ping_failure.is_some()
        })
        .await;
        if let Some(e) = seen.ping_failure.take() {
            fail(e);
        }
        for (p, rtt) in seen.pings.iter().take(count) {
            emit(
                &json!({ "event": "ping", "peer": p.to_string(), "rtt_ms": rtt.as_secs_f64() * 1000.0 }),
            );
        }
    }
    if let Some(text) = &args.echo {
        let mut control = swarm.behaviour().stream.new_control();
        let text = text.clone();
        let exchange = tokio::spawn(async move {
            let mut stream = control
                .open_stream(peer, ECHO)
                .await
                .map_err(|e| format!("echo: {e}"))?;
            stream
                .write_all(text.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            stream.close().await.map_err(|e| e.to_string())?;
            let mut back = Vec::new();
            stream
                .read_to_end(&mut back)
                .await
                .map_err(|e| e.to_string())?;
            if back != text.as_bytes() {
                return Err(format!("echo returned {} different bytes", back.len()));
            }
            Ok::<usize, String>(back.len())
        });
        let bytes = run_exchange(&mut swarm, &mut seen, exchange).await;
        emit(&json!({ "event": "echo", "peer": peer.to_string(), "ok": true, "bytes": bytes }));
    }
    if args.identify {
        drive(&mut swarm, &mut seen, false, |_, s| {
            s.identified.iter().any(|(p, _)| *p == peer)
        })
        .await;
        if let Some((p, info)) = seen.identified.iter().find(|(p, _)| *p == peer) {
            emit(&identify_event(p, info));
        }
    }
    if let (Some(topic), Some(text)) = (&topic, &args.publish) {
        let hash = topic.hash();
        let started = Instant::now();
        drive(&mut swarm, &mut seen, false, |sw, _| {
            gossip(sw).mesh_peers(&hash).any(|p| *p == peer) || started.elapsed() > MESH_WAIT
        })
        .await;
        if let Err(e) = gossip(&mut swarm).publish(topic.clone(), text.as_bytes().to_vec()) {
            fail(format!("publishing on {topic} failed: {e}"));
        }
    }
    if let Some(expected) = args.expect_messages {
        drive(&mut swarm, &mut seen, false, |_, s| s.messages >= expected).await;
    }
}

async fn perf(args: Args) {
    let addr = args
        .addrs
        .first()
        .cloned()
        .unwrap_or_else(|| fail("perf needs --addr"));
    let peer = peer_of(&addr);
    let mut swarm = swarm(&args).unwrap_or_else(|e| fail(e));
    let start = Instant::now();
    let mut seen = Seen::default();
    connect(&mut swarm, &mut seen, &addr, peer).await;
    let mut control = swarm.behaviour().stream.new_control();
    let (upload, download) = (args.upload, args.download);
    let exchange = tokio::spawn(async move {
        let mut stream = control
            .open_stream(peer, PERF)
            .await
            .map_err(|e| format!("perf: {e}"))?;
        stream
            .write_all(&download.to_be_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let chunk = vec![0u8; PERF_CHUNK];
        let mut left = upload;
        while left > 0 {
            let n = usize::try_from(left.min(PERF_CHUNK as u64)).unwrap_or(PERF_CHUNK);
            stream
                .write_all(&chunk[..n])
                .await
                .map_err(|e| e.to_string())?;
            left -= n as u64;
        }
        stream.close().await.map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; PERF_CHUNK];
        let mut received = 0u64;
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => received += n as u64,
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok::<u64, String>(received)
    });
    let downloaded = run_exchange(&mut swarm, &mut seen, exchange).await;
    if downloaded != download {
        fail(format!(
            "perf: asked for {download} bytes, received {downloaded}"
        ));
    }
    emit(&json!({
        "event": "perf",
        "upload_bytes": upload,
        "download_bytes": downloaded,
        "seconds": start.elapsed().as_secs_f64(),
    }));
}

/// `conn-bench`: `--count` times in a row, a new connection (TCP, security, yamux), one
/// ping round trip on it, close it; then the same `conn-bench` event lp2p-node prints.
async fn conn_bench(args: Args) {
    let addr = args
        .addrs
        .first()
        .cloned()
        .unwrap_or_else(|| fail("conn-bench needs --addr"));
    let peer = peer_of(&addr);
    let mut swarm = swarm(&args).unwrap_or_else(|e| fail(e));
    let mut firsts = Vec::with_capacity(args.count);
    let start = Instant::now();
    for i in 0..args.count {
        let t0 = Instant::now();
        let opts = DialOpts::peer_id(peer)
            .addresses(vec![addr.clone()])
            .condition(PeerCondition::Always)
            .build();
        let wanted = opts.connection_id();
        swarm
            .dial(opts)
            .unwrap_or_else(|e| fail(format!("connection {} to {addr}: {e}", i + 1)));
        // Wait for the first successful ping on this connection (sent as soon as it is up).
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                    connection,
                    result: Ok(_),
                    ..
                })) if connection == wanted => break,
                SwarmEvent::OutgoingConnectionError {
                    connection_id,
                    error,
                    ..
                } if connection_id == wanted => {
                    fail(format!("connection {} to {addr}: {error}", i + 1))
                }
                _ => {}
            }
        }
        firsts.push(t0.elapsed().as_secs_f64() * 1000.0);
        swarm.close_connection(wanted);
        loop {
            if let SwarmEvent::ConnectionClosed { connection_id, .. } =
                swarm.select_next_some().await
                && connection_id == wanted
            {
                break;
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    firsts.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        let rank = ((p / 100.0) * firsts.len() as f64).ceil() as usize;
        firsts
            .get(rank.saturating_sub(1).min(firsts.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    emit(&json!({
        "event": "conn-bench",
        "count": args.count,
        "seconds": seconds,
        "conns_per_sec": if seconds > 0.0 { args.count as f64 / seconds } else { 0.0 },
        "first_ping_ms_p50": pct(50.0),
        "first_ping_ms_p99": pct(99.0),
        "first_ping_ms_min": firsts.first().copied().unwrap_or(0.0),
        "first_ping_ms_max": firsts.last().copied().unwrap_or(0.0),
    }));
}

/// Turns rust-libp2p gossipsub's log lines about received control messages into `control`
/// events (rust-libp2p has no API that reports them). The kinds it logs: IHAVE, IWANT, GRAFT,
/// PRUNE, and a GRAFT inside our backoff (rust-libp2p does not log a received IDONTWANT).
struct ControlTrace;

#[derive(Default)]
struct LogFields {
    message: String,
    peer: String,
}

impl tracing::field::Visit for LogFields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "peer" | "peer_id" => self.peer = format!("{value:?}"),
            _ => {}
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ControlTrace {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if !event.metadata().target().starts_with("libp2p_gossipsub") {
            return;
        }
        let mut fields = LogFields::default();
        event.record(&mut fields);
        let kind = match fields.message.as_str() {
            "Handling IHAVE for peer" => "ihave",
            "Handling IWANT for peer" => "iwant",
            "Handling GRAFT message for peer" => "graft",
            "Handling PRUNE message for peer" => "prune",
            "[Penalty] Peer attempted graft within backoff time, penalizing" => "graft-in-backoff",
            _ => return,
        };
        emit(&json!({ "event": "control", "kind": kind, "dir": "in", "peer": fields.peer }));
    }
}

fn init_tracing(trace_control: bool) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(tracing_subscriber::EnvFilter::from_default_env());
    let control = trace_control.then(|| {
        ControlTrace.with_filter(
            tracing_subscriber::filter::Targets::new()
                .with_target("libp2p_gossipsub", tracing::Level::TRACE),
        )
    });
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(control)
        .try_init();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = parse().unwrap_or_else(|e| fail(e));
    init_tracing(args.gossip.trace_control);
    let timeout = args.timeout;
    let command = args.command.clone();
    let name = command.clone();
    let run = async move {
        match name.as_str() {
            "listen" => listen(args).await,
            "dial" => dial(args).await,
            "perf" => perf(args).await,
            "conn-bench" => conn_bench(args).await,
            other => fail(format!(
                "unknown command {other} (this program speaks listen, dial, perf and conn-bench)"
            )),
        }
    };
    match timeout {
        // listen stops by itself at its deadline; dial and perf fail when theirs passes.
        Some(limit) if command != "listen" => {
            if tokio::time::timeout(limit, run).await.is_err() {
                fail(format!(
                    "{command} did not finish within --timeout {limit:?}"
                ));
            }
        }
        _ => run.await,
    }
}

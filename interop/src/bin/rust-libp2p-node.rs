//! `rust-libp2p-node`: the lp2p-node command-line contract (docs/node-cli.md) implemented with
//! rust-libp2p 0.57, so the interop matrix can pair the two programs process against process.
//!
//! Supported: `listen`, `dial`, `perf` and `conn-bench` with `--security noise|tls|plaintext`,
//! `--muxer yamux` (rust-libp2p 0.57 has no mplex: asking for it is an `error` event), TCP,
//! QUIC (`/udp/P/quic-v1`, rust-libp2p's libp2p-quic on tokio) and WebSocket (`/ws`,
//! `/tls/ws`: `--cert`/`--cert-key` PEM files or a self-signed certificate for listeners,
//! `--ws-trust PEM` to trust a certificate when dialing, since rust-libp2p has no way to skip
//! the check) addresses, `--key-seed`,
//! `--timeout`, `--bare`, and the same JSON-line events. Protocols served: identify (with
//! signed peer records), ping, gossipsub on every `--topic`, `/echo/1.0.0` and `/perf/1.0.0`
//! (both over `libp2p-stream`); `--bare` leaves out identify and gossipsub, as lp2p-node's
//! does, so benchmarks compare the transport stacks alone.
//!
//! `--kad server|client` runs `libp2p-kad` 0.49 (`/ipfs/kad/1.0.0`) with the Kademlia
//! operations of docs/node-cli.md: `--kad-find-peer ID`, `--kad-put KEY=VALUE`,
//! `--kad-get KEY`, `--kad-provide KEY`, `--kad-find-providers KEY` on `dial` (in the order
//! given), the same as stdin lines on `listen` (`kad-put KEY VALUE`), each printing a `kad`
//! event. Provider keys are the sha2-256 multihash of KEY, as lp2p-node computes them.
//! `--kad-parallelism N`, an extra of this program, sets libp2p-kad's parallelism (requests
//! in flight per query; its default is 3): the Kademlia network bench runs rust-libp2p with
//! lp2p's alpha of 10, so both networks do the same work per lookup.
//!
//! For the mixed-network test, gossipsub can be tuned beyond the contract: `--mesh-d`,
//! `--mesh-dlo`, `--mesh-dhi`, `--px`, `--prune-backoff SECS`, `--history-length`,
//! `--history-gossip`, `--heartbeat-ms`, `--message-id spec|native` (native: rust-libp2p's
//! default id, base58 author + decimal seqno; spec: author bytes + 8-byte seqno), and
//! `--trace-control` prints a `control` event per received control message. Message events
//! carry the message id in hex (`id`). `--ping-interval-ms MS` sets the time between pings of
//! a connection (default 200 ms, quick for the ping tests; the Kademlia network bench sets
//! rust-libp2p's and lp2p's default, 15 s, so 50 nodes do not spend the machine on pings).
//!
//! `--mdns` (listen, dial) runs `libp2p-mdns` (IPv4, its defaults) and prints
//! `{"event":"discovered","peer":..,"addrs":[..]}` once per new peer, as lp2p-node does.
//! `--mdns-ipv6` runs it over IPv6 instead (`enable_ipv6`: group ff02::fb, IPv6 interface
//! addresses only; libp2p-mdns does one IP version at a time) and implies `--mdns`.
//!
//! Circuit relay v2 (`libp2p-relay` 0.22): `--relay-service` (listen) serves the hop
//! protocol (rust-libp2p's default limits; `--relay-data-limit BYTES` and
//! `--relay-duration-limit SECS` set a circuit's limits, 0 meaning none, which
//! libp2p-relay, always having limits, takes as `u64::MAX` bytes and one day;
//! `--relay-no-rate-limit`, an extra of this program, drops its per-peer and per-IP rate
//! limiters, which lp2p's relay does not have, so the relay bench can open circuits in a
//! row); the listen addresses become the relay's external addresses. `listen --relay
//! <relay>/p2p/ID` listens on `<relay>/p2p-circuit` and prints a `reservation` event once
//! the relay accepted; dialing a `/p2p-circuit` address goes through the relay (relay client
//! transport). `conn-bench` to a `/p2p-circuit` address runs a one-byte echo instead of a
//! ping on each connection, as lp2p-node does.
//!
//! `--dcutr` (listen, dial) runs `libp2p-dcutr` 0.15 (with identify, whose observed addresses
//! are its hole-punch candidates) and prints lp2p-node's `dcutr` event on each of its
//! outcomes: `{"event":"dcutr","peer":..,"ok":true,"addr":..,"attempts":N,"unilateral":false,
//! "ms":T}` (`addr` the direct connection's remote address, `attempts` the direct dials since
//! the relayed connection, `ms` the time from the relayed connection's establishment to the
//! direct one) or `{"event":"dcutr","peer":..,"ok":false,"attempts":N,"error":..}`.
//! rust-libp2p reuses the listening port for these dials by itself: libp2p-tcp 0.45 binds a
//! dial to a listen port when the swarm asks for `PortUse::Reuse` (the default of every dial;
//! `tcp::Config::port_reuse` is a deprecated no-op), and libp2p-quic dials from its listening
//! socket. A `listen --connect <relay>/p2p-circuit/p2p/ID` with `--dcutr` first connects to
//! the relay and waits for its identify (at most 10 s), as rust-libp2p's DCUtR example does,
//! so the relayed connection offers the address the relay observed.

#![allow(clippy::print_stdout)]

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, dcutr, gossipsub, identify, identity, kad,
    multiaddr::Protocol, ping, relay,
};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

const ECHO: StreamProtocol = StreamProtocol::new("/echo/1.0.0");
const PERF: StreamProtocol = StreamProtocol::new("/perf/1.0.0");
const KAD: StreamProtocol = StreamProtocol::new("/ipfs/kad/1.0.0");
/// How long `dial --publish` waits for the remote to join the mesh, as lp2p-node.
const MESH_WAIT: Duration = Duration::from_secs(5);
/// How long `dial` keeps running after a provide (see its use).
const PROVIDE_FLUSH: Duration = Duration::from_secs(2);
/// Bytes per perf read/write call.
const PERF_CHUNK: usize = 64 * 1024;

#[derive(NetworkBehaviour)]
struct Behaviour {
    identify: Toggle<identify::Behaviour>,
    ping: ping::Behaviour,
    gossipsub: Toggle<gossipsub::Behaviour>,
    stream: libp2p_stream::Behaviour,
    kad: Toggle<kad::Behaviour<kad::store::MemoryStore>>,
    mdns: Toggle<libp2p::mdns::tokio::Behaviour>,
    relay: Toggle<relay::Behaviour>,
    relay_client: Toggle<relay::client::Behaviour>,
    dcutr: Toggle<dcutr::Behaviour>,
}

/// A Kademlia operation.
#[derive(Clone, Debug)]
enum KadOp {
    FindPeer(PeerId),
    Put(String, String),
    Get(String),
    Provide(String),
    FindProviders(String),
}

impl KadOp {
    fn name(&self) -> &'static str {
        match self {
            KadOp::FindPeer(_) => "find-peer",
            KadOp::Put(..) => "put",
            KadOp::Get(_) => "get",
            KadOp::Provide(_) => "provide",
            KadOp::FindProviders(_) => "find-providers",
        }
    }

    fn key(&self) -> String {
        match self {
            KadOp::FindPeer(p) => p.to_string(),
            KadOp::Put(k, _) | KadOp::Get(k) | KadOp::Provide(k) | KadOp::FindProviders(k) => {
                k.clone()
            }
        }
    }

    /// Parses a listen stdin line; `None` if it is not a kad line.
    fn from_line(line: &str) -> Option<Result<KadOp, String>> {
        let (command, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim().to_owned();
        Some(match command {
            "kad-find-peer" => rest
                .parse()
                .map(KadOp::FindPeer)
                .map_err(|e| format!("kad-find-peer: {e}")),
            "kad-put" => match rest.split_once(' ') {
                Some((k, v)) => Ok(KadOp::Put(k.to_owned(), v.to_owned())),
                None => Err("kad-put needs KEY VALUE".to_owned()),
            },
            "kad-get" => Ok(KadOp::Get(rest)),
            "kad-provide" => Ok(KadOp::Provide(rest)),
            "kad-find-providers" => Ok(KadOp::FindProviders(rest)),
            _ => return None,
        })
    }
}

/// The provider key of KEY: its sha2-256 multihash (as lp2p-node computes it).
fn provider_key(key: &str) -> kad::RecordKey {
    use sha2::Digest;
    let mut bytes = vec![0x12, 0x20];
    bytes.extend(sha2::Sha256::digest(key.as_bytes()));
    kad::RecordKey::new(&bytes)
}

/// What a running Kademlia query has gathered.
struct KadQuery {
    op: KadOp,
    started: Instant,
    /// Providers found so far (find-providers).
    providers: HashSet<PeerId>,
    /// The final event, once done.
    done: Option<Value>,
}

/// `--security` (TCP only: QUIC always runs TLS 1.3).
#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Security {
    #[default]
    Noise,
    Tls,
    Plaintext,
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
    security: Security,
    bare: bool,
    count: usize,
    seed: Option<u64>,
    timeout: Option<Duration>,
    /// `--ping-interval-ms`: time between pings of a connection (default 200 ms).
    ping_ms: Option<u64>,
    ping: Option<u32>,
    echo: Option<String>,
    identify: bool,
    publish: Option<String>,
    expect_messages: Option<usize>,
    upload: u64,
    download: u64,
    cert: Option<String>,
    cert_key: Option<String>,
    ws_trust: Vec<String>,
    kad: Option<kad::Mode>,
    /// `--kad-parallelism N`: libp2p-kad's requests in flight per query (its default: 3).
    kad_parallelism: Option<NonZeroUsize>,
    kad_ops: Vec<KadOp>,
    gossip: GossipTuning,
    mdns: bool,
    mdns_ipv6: bool,
    /// `--relay-service`.
    relay_service: bool,
    /// `--relay` (listen): relays to reserve a slot on.
    relays: Vec<Multiaddr>,
    /// `--relay-data-limit BYTES` (0: none).
    relay_data_limit: Option<u64>,
    /// `--relay-duration-limit SECS` (0: none).
    relay_duration_limit: Option<u64>,
    /// `--relay-no-rate-limit`.
    relay_no_rate_limit: bool,
    /// `--dcutr`.
    dcutr: bool,
}

impl Args {
    /// The relay client runs when a slot is reserved or a `/p2p-circuit` address dialed.
    fn relay_client(&self) -> bool {
        !self.relays.is_empty()
            || self
                .addrs
                .iter()
                .chain(&self.connect)
                .any(|a| a.iter().any(|p| p == Protocol::P2pCircuit))
    }

    /// The hop service's configuration, if `--relay-service`.
    fn relay_config(&self) -> Option<relay::Config> {
        if !self.relay_service {
            return None;
        }
        let mut config = relay::Config::default();
        if let Some(bytes) = self.relay_data_limit {
            config.max_circuit_bytes = if bytes == 0 { u64::MAX } else { bytes };
        }
        if let Some(secs) = self.relay_duration_limit {
            config.max_circuit_duration =
                Duration::from_secs(if secs == 0 { 24 * 3600 } else { secs });
        }
        if self.relay_no_rate_limit {
            config.reservation_rate_limiters.clear();
            config.circuit_src_rate_limiters.clear();
        }
        Some(config)
    }
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
                "noise" => args.security = Security::Noise,
                "tls" => args.security = Security::Tls,
                "plaintext" => args.security = Security::Plaintext,
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
            "--mdns" => args.mdns = true,
            "--mdns-ipv6" => {
                args.mdns = true;
                args.mdns_ipv6 = true;
            }
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
            "--cert" => args.cert = Some(value(&mut raw, &flag)?),
            "--cert-key" => args.cert_key = Some(value(&mut raw, &flag)?),
            "--ws-trust" => args.ws_trust.push(value(&mut raw, &flag)?),
            "--insecure-ws-cert" => {
                return Err(
                    "rust-libp2p cannot skip certificate checks; use --ws-trust PEM".to_owned(),
                );
            }
            "--kad" => {
                args.kad = Some(match value(&mut raw, &flag)?.as_str() {
                    "server" => kad::Mode::Server,
                    "client" => kad::Mode::Client,
                    other => return Err(format!("unknown kad mode {other}")),
                })
            }
            "--kad-parallelism" => args.kad_parallelism = Some(number(&mut raw, &flag)?),
            "--kad-find-peer" => args.kad_ops.push(KadOp::FindPeer(
                value(&mut raw, &flag)?
                    .parse()
                    .map_err(|e| format!("{flag}: {e}"))?,
            )),
            "--kad-put" => {
                let text = value(&mut raw, &flag)?;
                let (k, v) = text
                    .split_once('=')
                    .ok_or(format!("{flag} needs KEY=VALUE"))?;
                args.kad_ops.push(KadOp::Put(k.to_owned(), v.to_owned()));
            }
            "--kad-get" => args.kad_ops.push(KadOp::Get(value(&mut raw, &flag)?)),
            "--kad-provide" => args.kad_ops.push(KadOp::Provide(value(&mut raw, &flag)?)),
            "--kad-find-providers" => args
                .kad_ops
                .push(KadOp::FindProviders(value(&mut raw, &flag)?)),
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
            "--ping-interval-ms" => args.ping_ms = Some(number(&mut raw, &flag)?),
            "--message-id" => match value(&mut raw, &flag)?.as_str() {
                "native" => args.gossip.spec_message_id = false,
                "spec" => args.gossip.spec_message_id = true,
                other => return Err(format!("unknown --message-id {other} (native or spec)")),
            },
            "--trace-control" => args.gossip.trace_control = true,
            "--relay-service" => args.relay_service = true,
            "--relay-no-rate-limit" => args.relay_no_rate_limit = true,
            "--relay" => args.relays.push(
                value(&mut raw, &flag)?
                    .parse()
                    .map_err(|e| format!("bad address: {e}"))?,
            ),
            "--relay-data-limit" => args.relay_data_limit = Some(number(&mut raw, &flag)?),
            "--relay-duration-limit" => args.relay_duration_limit = Some(number(&mut raw, &flag)?),
            "--dcutr" => args.dcutr = true,
            other => return Err(format!("unknown option {other}")),
        }
    }
    if !args.kad_ops.is_empty() && args.kad.is_none() {
        args.kad = Some(kad::Mode::Client);
    }
    if args.dcutr && args.bare {
        return Err("--dcutr needs identify, which --bare leaves out".to_owned());
    }
    Ok(args)
}

/// The identity lp2p-node derives from `--key-seed`: the seed as 8 little-endian bytes, then
/// 24 zero bytes, as the Ed25519 secret key.
fn keypair(seed: Option<u64>) -> identity::Keypair {
    match seed {
        None => identity::Keypair::generate_ed25519(),
        Some(seed) => lp2p_interop::seed_keypair(seed),
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

/// How `--kad` and `--kad-parallelism` set up libp2p-kad.
#[derive(Clone, Copy)]
struct KadSettings {
    mode: kad::Mode,
    /// Requests in flight per query; libp2p-kad's default (3) when `None`.
    parallelism: Option<NonZeroUsize>,
}

fn behaviour(
    key: &identity::Keypair,
    bare: bool,
    tuning: &GossipTuning,
    kad_settings: Option<KadSettings>,
    mdns: Option<libp2p::mdns::Config>,
    ping_ms: Option<u64>,
    relay: (Option<relay::Config>, Option<relay::client::Behaviour>),
) -> Behaviour {
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
    let mdns = mdns.map(|config| {
        libp2p::mdns::tokio::Behaviour::new(config, key.public().to_peer_id())
            .unwrap_or_else(|e| fail(format!("starting mDNS failed: {e}")))
    });
    let (relay_config, relay_client) = relay;
    Behaviour {
        relay: Toggle::from(
            relay_config.map(|config| relay::Behaviour::new(key.public().to_peer_id(), config)),
        ),
        relay_client: Toggle::from(relay_client),
        // Set by `swarm` with `--dcutr`.
        dcutr: Toggle::from(None),
        mdns: Toggle::from(mdns),
        identify: Toggle::from((!bare).then_some(identify)),
        ping: ping::Behaviour::new(
            ping::Config::new().with_interval(Duration::from_millis(ping_ms.unwrap_or(200))),
        ),
        gossipsub: Toggle::from((!bare).then_some(gossipsub)),
        stream: libp2p_stream::Behaviour::new(),
        kad: Toggle::from(kad_settings.map(|settings| {
            let peer = key.public().to_peer_id();
            let mut config = kad::Config::new(KAD);
            if let Some(parallelism) = settings.parallelism {
                config.set_parallelism(parallelism);
            }
            let mut kad =
                kad::Behaviour::with_config(peer, kad::store::MemoryStore::new(peer), config);
            kad.set_mode(Some(settings.mode));
            kad
        })),
    }
}

type BoxedTransport =
    libp2p::core::transport::Boxed<(PeerId, libp2p::core::muxing::StreamMuxerBox)>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The TLS settings of the WebSocket transport: the listener's certificate (from
/// `--cert`/`--cert-key`, else self-signed for 127.0.0.1) and the certificates a dial trusts
/// besides the web roots (`--ws-trust`).
fn ws_tls(args: &Args) -> Result<libp2p::websocket::tls::Config, BoxError> {
    use libp2p::websocket::tls;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let mut builder = tls::Config::builder();
    let (chain, key) = match (&args.cert, &args.cert_key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)?
                .map(|c| c.map(|c| c.to_vec()))
                .collect::<Result<Vec<_>, _>>()?;
            let key = PrivateKeyDer::from_pem_file(key)?.secret_der().to_vec();
            (chain, key)
        }
        _ => {
            let (cert, key) = lp2p_websocket::self_signed(&["127.0.0.1", "localhost"])?;
            (vec![cert.to_vec()], key.secret_der().to_vec())
        }
    };
    builder.server(
        tls::PrivateKey::new(key),
        chain.into_iter().map(tls::Certificate::new),
    )?;
    for path in &args.ws_trust {
        for cert in CertificateDer::pem_file_iter(path)? {
            builder.add_trust(&tls::Certificate::new(cert?.to_vec()))?;
        }
    }
    Ok(builder.finish())
}

/// rust-libp2p's WebSocket transport (over its tokio TCP), upgraded like its TCP one.
fn ws_transport(key: &identity::Keypair, args: &Args) -> Result<BoxedTransport, BoxError> {
    use libp2p::Transport as _;
    use libp2p::core::upgrade::Version;
    let tcp = libp2p::tcp::tokio::Transport::new(libp2p::tcp::Config::default().nodelay(true));
    let mut ws = libp2p::websocket::Config::new(tcp);
    ws.set_tls_config(ws_tls(args)?);
    let upgrade = ws.upgrade(Version::V1Lazy);
    Ok(match args.security {
        Security::Plaintext => upgrade
            .authenticate(libp2p::plaintext::Config::new(key))
            .multiplex(libp2p::yamux::Config::default())
            .boxed(),
        Security::Noise => upgrade
            .authenticate(libp2p::noise::Config::new(key)?)
            .multiplex(libp2p::yamux::Config::default())
            .boxed(),
        Security::Tls => upgrade
            .authenticate(libp2p::tls::Config::new(key)?)
            .multiplex(libp2p::yamux::Config::default())
            .boxed(),
    })
}

/// A swarm with TCP (the chosen security, yamux), QUIC and WebSocket.
fn swarm(args: &Args) -> Result<Swarm<Behaviour>, String> {
    let key = keypair(args.seed);
    let builder = libp2p::SwarmBuilder::with_existing_identity(key).with_tokio();
    let idle = |c: libp2p::swarm::Config| c.with_idle_connection_timeout(Duration::from_secs(300));
    let tcp = libp2p::tcp::Config::default().nodelay(true);
    // The builder's types differ per security upgrade, so each arm builds the rest itself.
    macro_rules! finish {
        ($security:expr) => {
            Ok(builder
                .with_tcp(tcp, $security, libp2p::yamux::Config::default)
                .map_err(|e| e.to_string())?
                .with_quic()
                .with_other_transport(|k| ws_transport(k, args))
                .map_err(|e| e.to_string())?
                .with_relay_client($security, libp2p::yamux::Config::default)
                .map_err(|e| e.to_string())?
                .with_behaviour(|k, relay_client| {
                    let mut behaviour = behaviour(
                        k,
                        args.bare,
                        &args.gossip,
                        args.kad.map(|mode| KadSettings {
                            mode,
                            parallelism: args.kad_parallelism,
                        }),
                        args.mdns.then(|| libp2p::mdns::Config {
                            enable_ipv6: args.mdns_ipv6,
                            ..libp2p::mdns::Config::default()
                        }),
                        args.ping_ms,
                        (
                            args.relay_config(),
                            args.relay_client().then_some(relay_client),
                        ),
                    );
                    behaviour.dcutr = Toggle::from(
                        args.dcutr
                            .then(|| dcutr::Behaviour::new(k.public().to_peer_id())),
                    );
                    behaviour
                })
                .map_err(|e| e.to_string())?
                .with_swarm_config(idle)
                .build())
        };
    }
    match args.security {
        Security::Noise => finish!(libp2p::noise::Config::new),
        Security::Tls => finish!(libp2p::tls::Config::new),
        Security::Plaintext => finish!(|k: &identity::Keypair| {
            Ok::<_, std::convert::Infallible>(libp2p::plaintext::Config::new(k))
        }),
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
    /// Kademlia queries started by a command, by id.
    kad: HashMap<kad::QueryId, KadQuery>,
    /// Peers identify reported as DHT servers, with their listen addresses (to add to the
    /// routing table once the event handler has the swarm).
    kad_servers: Vec<(PeerId, Vec<Multiaddr>)>,
    /// Peers printed in a `discovered` event and not expired since, with their addresses.
    discovered: HashMap<PeerId, Vec<String>>,
    /// `--relay` addresses by relay peer, and our peer id, for the `reservation` event.
    relays: HashMap<PeerId, Multiaddr>,
    local: Option<PeerId>,
    /// DCUtR: when the first relayed connection to each peer was established, the direct
    /// dials to it since, and the remote addresses of the direct connections to such peers.
    relayed_at: HashMap<PeerId, Instant>,
    direct_dials: HashMap<PeerId, u64>,
    direct_addrs: HashMap<libp2p::swarm::ConnectionId, Multiaddr>,
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
            peer_id,
            endpoint,
            connection_id,
            ..
        } => {
            seen.connected.insert(peer_id);
            if endpoint.is_relayed() {
                seen.relayed_at.entry(peer_id).or_insert_with(Instant::now);
            } else if seen.relayed_at.contains_key(&peer_id) {
                // Without the /p2p/ID of a dialed address, as lp2p-node prints it.
                let mut addr = endpoint.get_remote_address().clone();
                if matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
                    addr.pop();
                }
                seen.direct_addrs.insert(connection_id, addr);
            }
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
        SwarmEvent::Dialing {
            peer_id: Some(peer),
            ..
        } if seen.relayed_at.contains_key(&peer) => {
            *seen.direct_dials.entry(peer).or_default() += 1;
        }
        SwarmEvent::Behaviour(BehaviourEvent::Dcutr(dcutr::Event {
            remote_peer_id,
            result,
        })) => emit(&dcutr_event(seen, remote_peer_id, result)),
        SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
            peer_id,
            info,
            ..
        })) => {
            if print_connections {
                emit(&identify_event(&peer_id, &info));
            }
            if info.protocols.contains(&KAD) {
                seen.kad_servers.push((peer_id, info.listen_addrs.clone()));
            }
            seen.identified.push((peer_id, info));
        }
        SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
            id,
            result,
            stats,
            step,
        })) => {
            if let Some(query) = seen.kad.get_mut(&id) {
                on_kad_result(query, result, &stats, step.last);
            }
        }
        SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event { peer, result, .. })) => {
            match result {
                Ok(rtt) => seen.pings.push((peer, rtt)),
                Err(e) => seen.ping_failure = Some(format!("ping {peer} failed: {e}")),
            }
        }
        SwarmEvent::Behaviour(BehaviourEvent::Mdns(libp2p::mdns::Event::Discovered(list))) => {
            // One `discovered` per new peer, with the addresses this batch has for it (they
            // end in /p2p/<peer> already). libp2p-mdns reports each answer packet as its own
            // batch, so addresses of a known peer that arrive later are printed as
            // `discovered-addrs` with the full set (an extra of this program, for the split
            // answer test).
            let mut new: Vec<PeerId> = Vec::new();
            let mut grew: Vec<PeerId> = Vec::new();
            for (peer, addr) in list {
                let addr = addr.to_string();
                let known = seen.discovered.entry(peer).or_default();
                if known.is_empty() && !new.contains(&peer) {
                    new.push(peer);
                } else if !known.contains(&addr) && !new.contains(&peer) && !grew.contains(&peer) {
                    grew.push(peer);
                }
                if !known.contains(&addr) {
                    known.push(addr);
                }
            }
            for peer in new {
                emit(
                    &json!({ "event": "discovered", "peer": peer.to_string(), "addrs": seen.discovered[&peer] }),
                );
            }
            for peer in grew {
                emit(
                    &json!({ "event": "discovered-addrs", "peer": peer.to_string(), "addrs": seen.discovered[&peer] }),
                );
            }
        }
        SwarmEvent::Behaviour(BehaviourEvent::RelayClient(
            relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal: false,
                ..
            },
        )) => {
            if let (Some(relay), Some(me)) = (seen.relays.get(&relay_peer_id), seen.local) {
                let addr = relay
                    .clone()
                    .with(Protocol::P2pCircuit)
                    .with(Protocol::P2p(me));
                emit(&json!({
                    "event": "reservation",
                    "relay": relay_peer_id.to_string(),
                    "addrs": [addr.to_string()],
                }));
            }
        }
        SwarmEvent::Behaviour(BehaviourEvent::Mdns(libp2p::mdns::Event::Expired(list))) => {
            for (peer, _) in list {
                seen.discovered.remove(&peer);
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

/// lp2p-node's `dcutr` event for one outcome of libp2p-dcutr.
fn dcutr_event(
    seen: &Seen,
    peer: PeerId,
    result: Result<libp2p::swarm::ConnectionId, dcutr::Error>,
) -> Value {
    let attempts = seen.direct_dials.get(&peer).copied().unwrap_or(0);
    match result {
        Ok(connection) => json!({
            "event": "dcutr",
            "peer": peer.to_string(),
            "ok": true,
            "addr": seen.direct_addrs.get(&connection).map(ToString::to_string),
            "attempts": attempts.max(1),
            "unilateral": false,
            "ms": seen.relayed_at.get(&peer).map(|t| t.elapsed().as_secs_f64() * 1000.0),
        }),
        Err(e) => json!({
            "event": "dcutr",
            "peer": peer.to_string(),
            "ok": false,
            "attempts": attempts,
            "error": e.to_string(),
        }),
    }
}

/// Adds the DHT servers identify reported to the routing table (the usual rust-libp2p
/// pattern: the kad behaviour learns addresses from identify).
fn feed_kad(swarm: &mut Swarm<Behaviour>, seen: &mut Seen) {
    let servers = std::mem::take(&mut seen.kad_servers);
    if let Some(kad) = swarm.behaviour_mut().kad.as_mut() {
        for (peer, addrs) in servers {
            for addr in addrs {
                kad.add_address(&peer, addr);
            }
        }
    }
}

fn kad_event(op: &KadOp, ok: bool, started: Instant, stats: &kad::QueryStats) -> Value {
    json!({
        "event": "kad",
        "op": op.name(),
        "key": op.key(),
        "ok": ok,
        "ms": started.elapsed().as_secs_f64() * 1000.0,
        "queried": stats.num_requests(),
    })
}

fn on_kad_result(
    query: &mut KadQuery,
    result: kad::QueryResult,
    stats: &kad::QueryStats,
    last: bool,
) {
    let op = query.op.clone();
    let started = query.started;
    let make = |ok: bool, extra: Value| {
        let mut e = kad_event(&op, ok, started, stats);
        if let (Some(e), Some(extra)) = (e.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                e.insert(k.clone(), v.clone());
            }
        }
        e
    };
    let pending = query.done.is_none();
    let outcome = match result {
        kad::QueryResult::GetClosestPeers(Ok(ok)) => {
            let KadOp::FindPeer(target) = op else { return };
            Some(match ok.peers.iter().find(|p| p.peer_id == target) {
                Some(p) if !p.addrs.is_empty() => make(
                    true,
                    json!({ "peers": p.addrs.iter().map(|a| a.clone().with_p2p(target).unwrap_or_else(|a| a).to_string()).collect::<Vec<_>>() }),
                ),
                _ => make(false, json!({ "error": "the peer was not found" })),
            })
        }
        kad::QueryResult::GetClosestPeers(Err(e)) => {
            Some(make(false, json!({ "error": e.to_string() })))
        }
        kad::QueryResult::GetRecord(Ok(kad::GetRecordOk::FoundRecord(found))) if pending => {
            Some(make(
                true,
                json!({ "value": String::from_utf8_lossy(&found.record.value) }),
            ))
        }
        kad::QueryResult::GetRecord(Ok(_)) if last && pending => {
            Some(make(false, json!({ "error": "no record found" })))
        }
        kad::QueryResult::GetRecord(Err(e)) if pending => {
            Some(make(false, json!({ "error": e.to_string() })))
        }
        kad::QueryResult::PutRecord(Ok(_)) => {
            let KadOp::Put(_, value) = &op else { return };
            Some(make(true, json!({ "value": value })))
        }
        kad::QueryResult::PutRecord(Err(e)) => Some(make(false, json!({ "error": e.to_string() }))),
        kad::QueryResult::StartProviding(Ok(_)) => Some(make(true, json!({}))),
        kad::QueryResult::StartProviding(Err(e)) => {
            Some(make(false, json!({ "error": e.to_string() })))
        }
        kad::QueryResult::GetProviders(found) => {
            if let Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) = found {
                query.providers.extend(providers);
            }
            last.then(|| {
                let list: Vec<String> = query.providers.iter().map(ToString::to_string).collect();
                let ok = !list.is_empty();
                let mut extra = json!({ "providers": list });
                if !ok {
                    extra["error"] = json!("no provider found");
                }
                make(ok, extra)
            })
        }
        _ => None,
    };
    if let Some(event) = outcome {
        query.done = Some(event);
    }
}

/// Starts `op` on the swarm's Kademlia; returns its query id (or the event of its failure).
fn start_kad(
    swarm: &mut Swarm<Behaviour>,
    seen: &mut Seen,
    op: &KadOp,
) -> Result<kad::QueryId, Value> {
    let started = Instant::now();
    let failed = |what: String| json!({ "event": "kad", "op": op.name(), "key": op.key(), "ok": false, "error": what, "ms": 0.0 });
    let Some(kad) = swarm.behaviour_mut().kad.as_mut() else {
        return Err(failed(
            "kad is not running (start with --kad server|client)".to_owned(),
        ));
    };
    let id = match op {
        KadOp::FindPeer(peer) => kad.get_closest_peers(*peer),
        KadOp::Put(key, value) => kad
            .put_record(
                kad::Record::new(
                    kad::RecordKey::new(&key.as_bytes()),
                    value.as_bytes().to_vec(),
                ),
                kad::Quorum::One,
            )
            .map_err(|e| failed(e.to_string()))?,
        KadOp::Get(key) => kad.get_record(kad::RecordKey::new(&key.as_bytes())),
        KadOp::Provide(key) => kad
            .start_providing(provider_key(key))
            .map_err(|e| failed(e.to_string()))?,
        KadOp::FindProviders(key) => kad.get_providers(provider_key(key)),
    };
    seen.kad.insert(
        id,
        KadQuery {
            op: op.clone(),
            started,
            providers: HashSet::new(),
            done: None,
        },
    );
    Ok(id)
}

/// The finished events of queries that ended, removed from `seen`. A get that reported its
/// first record is stopped there: lp2p's get-value ends at the first valid record (quorum
/// one), while a rust-libp2p get left running goes on asking peers after its answer was
/// printed, work that would land on whatever the machine does next.
fn finished_kad(swarm: &mut Swarm<Behaviour>, seen: &mut Seen) -> Vec<Value> {
    let done: Vec<kad::QueryId> = seen
        .kad
        .iter()
        .filter(|(_, q)| q.done.is_some())
        .map(|(id, _)| *id)
        .collect();
    done.into_iter()
        .filter_map(|id| {
            let query = seen.kad.remove(&id)?;
            if matches!(query.op, KadOp::Get(_))
                && let Some(mut running) = swarm
                    .behaviour_mut()
                    .kad
                    .as_mut()
                    .and_then(|kad| kad.query_mut(&id))
            {
                running.finish();
            }
            query.done
        })
        .collect()
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

/// Connects to the relay of the circuit address `addr` and waits (at most 10 s) for its
/// identify, so that the address it observed is a hole-punch candidate when the relayed
/// connection starts DCUtR (rust-libp2p's DCUtR example does the same).
async fn identify_relay(swarm: &mut Swarm<Behaviour>, seen: &mut Seen, addr: &Multiaddr) {
    let relay: Multiaddr = addr
        .iter()
        .take_while(|p| *p != Protocol::P2pCircuit)
        .collect();
    let Some(Protocol::P2p(peer)) = relay.iter().last() else {
        return;
    };
    if swarm.dial(relay.clone()).is_err() {
        return;
    }
    let until = Instant::now() + Duration::from_secs(10);
    drive(swarm, seen, true, |_, s| {
        s.identified.iter().any(|(p, _)| *p == peer) || Instant::now() >= until
    })
    .await;
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
            if args.relay_service {
                // libp2p-relay accepts reservations only once it has a confirmed external
                // address.
                swarm.add_external_address(address.clone());
            }
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
    seen.local = Some(*swarm.local_peer_id());
    for relay in &args.relays {
        seen.relays.insert(peer_of(relay), relay.clone());
        swarm
            .listen_on(relay.clone().with(Protocol::P2pCircuit))
            .unwrap_or_else(|e| fail(format!("reserving a slot on {relay}: {e}")));
    }
    for addr in &args.connect {
        if args.dcutr && addr.iter().any(|p| p == Protocol::P2pCircuit) {
            identify_relay(&mut swarm, &mut seen, addr).await;
        }
        let _ = swarm.dial(addr.clone());
        if let (Some(kad), Some(Protocol::P2p(peer))) =
            (swarm.behaviour_mut().kad.as_mut(), addr.iter().last())
        {
            kad.add_address(&peer, addr.clone());
        }
    }
    if let Some(kad) = swarm.behaviour_mut().kad.as_mut() {
        let _ = kad.bootstrap();
    }
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let deadline = args.timeout.map(|t| Instant::now() + t);
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        feed_kad(&mut swarm, &mut seen);
        for event in finished_kad(&mut swarm, &mut seen) {
            emit(&event);
        }
        tokio::select! {
            event = swarm.select_next_some() => handle(event, &mut seen, true),
            line = stdin.next_line() => match line {
                Ok(Some(line)) if KadOp::from_line(line.trim()).is_some() => {
                    match KadOp::from_line(line.trim()) {
                        Some(Ok(op)) => {
                            if let Err(event) = start_kad(&mut swarm, &mut seen, &op) {
                                emit(&event);
                            }
                        }
                        Some(Err(e)) => emit(&json!({ "event": "kad", "ok": false, "error": e })),
                        None => {}
                    }
                }
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
    if let Some(kad) = swarm.behaviour_mut().kad.as_mut() {
        // The dialed peer is the DHT entry point.
        kad.add_address(&peer, addr.clone());
    }
    for op in &args.kad_ops {
        let id = match start_kad(&mut swarm, &mut seen, op) {
            Ok(id) => id,
            Err(event) => {
                emit(&event);
                fail(format!("kad {}: could not start", op.name()));
            }
        };
        drive(&mut swarm, &mut seen, false, |_, s| {
            s.kad.get(&id).is_some_and(|q| q.done.is_some())
        })
        .await;
        let event = seen
            .kad
            .remove(&id)
            .and_then(|q| q.done)
            .unwrap_or(Value::Null);
        if matches!(op, KadOp::Provide(_)) {
            // libp2p-kad 0.49 reports StartProviding as soon as its ADD_PROVIDER requests are
            // queued (they have no answer), some still waiting for a dial: keep the swarm
            // running a moment so they go out before this process exits.
            let until = Instant::now() + PROVIDE_FLUSH;
            drive(&mut swarm, &mut seen, false, |_, _| Instant::now() >= until).await;
        }
        emit(&event);
        if event["ok"] != Value::Bool(true) {
            fail(format!(
                "kad {}: {}",
                op.name(),
                event["error"].as_str().unwrap_or("failed")
            ));
        }
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
    let relayed = args.relay_client();
    let control = swarm.behaviour().stream.new_control();
    let mut seen = Seen::default();
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
        // Wait for the first successful ping on this connection (sent as soon as it is up);
        // through a relay, for the connection, then one echo of one byte.
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                    connection,
                    result: Ok(_),
                    ..
                })) if connection == wanted && !relayed => break,
                SwarmEvent::ConnectionEstablished { connection_id, .. }
                    if connection_id == wanted && relayed =>
                {
                    let mut control = control.clone();
                    let exchange = tokio::spawn(async move {
                        let mut stream = control
                            .open_stream(peer, ECHO)
                            .await
                            .map_err(|e| format!("echo: {e}"))?;
                        stream.write_all(b"x").await.map_err(|e| e.to_string())?;
                        stream.close().await.map_err(|e| e.to_string())?;
                        let mut back = Vec::new();
                        stream
                            .read_to_end(&mut back)
                            .await
                            .map_err(|e| e.to_string())?;
                        if back != b"x" {
                            return Err(format!("echo returned {} bytes", back.len()));
                        }
                        Ok::<(), String>(())
                    });
                    run_exchange(&mut swarm, &mut seen, exchange).await;
                    break;
                }
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

//! Building a host from the command-line options, with the services the node runs.

use std::path::Path;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p::dns::DnsResolver;
use lp2p::host::HandlerOptions;
use lp2p::muxer::{mplex::Mplex, yamux::Yamux};
use lp2p::relay::client::{ClientConfig, RelayClient};
use lp2p::relay::{HopConfig, RelayService};
use lp2p::security::{noise::Noise, plaintext::Plaintext, tls::Tls};
use lp2p::swarm::UpgradeStack;
use lp2p::transport::websocket::{TlsConfig, WsTransport};
use lp2p::transport::{quic::QuicTransport, tcp::TcpTransport};
use lp2p::{Host, HostBuilder, HostStream, Keypair, Multiaddr, SwarmConfig};

use crate::cli::{Common, KeySource, Muxer, Security};
use crate::services::Services;

/// The echo protocol the node serves: copy every byte back until the remote closes its
/// write side, then close.
pub(crate) const ECHO: &str = "/echo/1.0.0";

/// Connection limits of the node. A node is a test and benchmark tool: `hold` opens
/// thousands of connections from one peer, so the library's per-peer default (8) is lifted.
/// Idle connections stay open (`hold` measures exactly that).
pub(crate) fn swarm_config(connections: usize) -> SwarmConfig {
    SwarmConfig {
        max_inbound: connections,
        max_outbound: connections,
        max_per_peer: connections,
        max_pending_inbound: 1024,
        idle_timeout: None,
        ..SwarmConfig::default()
    }
}

/// Connections a node accepts or opens: far above anything the tests and benchmarks use,
/// still bounded.
pub(crate) const MAX_CONNECTIONS: usize = 65_536;

/// A deterministic Ed25519 identity from a seed: the secret key is the seed as 8
/// little-endian bytes followed by 24 zero bytes. (The interop peer derives it the same way.)
pub(crate) fn keypair_from_seed(seed: u64) -> Keypair {
    let mut secret = [0u8; 32];
    for (byte, seed_byte) in secret.iter_mut().zip(seed.to_le_bytes()) {
        *byte = seed_byte;
    }
    // 32 bytes are always a valid Ed25519 secret key.
    Keypair::ed25519_from_bytes(secret).unwrap_or_else(|_| Keypair::generate_ed25519())
}

/// The identity asked for on the command line.
pub(crate) fn load_keypair(source: &KeySource) -> Result<Keypair, String> {
    match source {
        KeySource::Random => Ok(Keypair::generate_ed25519()),
        KeySource::Seed(seed) => Ok(keypair_from_seed(*seed)),
        KeySource::File(path) => load_or_create_key_file(path),
    }
}

/// Reads a protobuf-encoded private key, or creates one (readable by the owner only).
pub(crate) fn load_or_create_key_file(path: &Path) -> Result<Keypair, String> {
    match std::fs::read(path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes).map_err(|e| {
            format!(
                "{} does not hold a protobuf-encoded private key: {e}",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Keypair::generate_ed25519();
            write_key_file(path, &key)?;
            Ok(key)
        }
        Err(e) => Err(format!("cannot read key file {}: {e}", path.display())),
    }
}

/// Writes `key` to a new file created with mode 0600.
pub(crate) fn write_key_file(path: &Path, key: &Keypair) -> Result<(), String> {
    use std::io::Write;
    let bytes = key
        .to_protobuf_encoding()
        .map_err(|e| format!("cannot encode the key: {e}"))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot create key file {}: {e}", path.display()))?;
    file.write_all(&bytes)
        .map_err(|e| format!("cannot write key file {}: {e}", path.display()))
}

/// Names on the self-signed certificate of `/tls/ws` listeners without `--cert`: the
/// loopback names a local test dials.
const SELF_SIGNED_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The WebSocket transport from `--cert`/`--cert-key` (or a self-signed certificate) and
/// `--insecure-ws-cert`.
pub(crate) fn websocket(common: &Common) -> Result<WsTransport, String> {
    let mut tls = TlsConfig::new();
    if common.insecure_ws_cert {
        tls = tls
            .with_insecure_client()
            .map_err(|e| format!("--insecure-ws-cert: {e}"))?;
    }
    tls = match (&common.cert, &common.cert_key) {
        (Some(cert), Some(key)) => {
            let read = |path: &Path| {
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
            };
            tls.with_server_pem(&read(cert)?, &read(key)?)
                .map_err(|e| format!("--cert/--cert-key: {e}"))?
        }
        _ => {
            tls.with_self_signed(&SELF_SIGNED_NAMES)
                .map_err(|e| format!("cannot make a self-signed certificate: {e}"))?
                .0
        }
    };
    Ok(WsTransport::new().with_tls(tls))
}

/// The DNS resolver: `--dns-server` only, or the system's (none, with a warning, if the
/// system's cannot be read and no fallback works).
pub(crate) fn resolver(common: &Common) -> Result<Option<DnsResolver>, String> {
    match common.dns_server {
        Some(server) => DnsResolver::with_server(server)
            .map(Some)
            .map_err(|e| format!("--dns-server {server}: {e}")),
        None => match DnsResolver::system() {
            Ok(resolver) => Ok(Some(resolver)),
            Err(err) => {
                tracing::warn!(%err, "no DNS resolver; names in addresses cannot be dialed");
                Ok(None)
            }
        },
    }
}

/// A host configured from the common options: TCP and WebSocket with the chosen security
/// and muxers, QUIC (which brings its own TLS 1.3 and streams), and a DNS resolver.
/// The security and muxer choice of `common`, for byte-stream transports that run it
/// themselves (the relay client's circuits).
fn upgrade_stack(common: &Common) -> UpgradeStack {
    let stack = match common.security {
        Security::Noise => UpgradeStack::new().security(Noise::new()),
        Security::Tls => UpgradeStack::new().security(Tls::new()),
        Security::Plaintext => UpgradeStack::new().security(Plaintext::new()),
    };
    match (common.muxer, common.only) {
        (Muxer::Yamux, true) => stack.muxer(Yamux::default()),
        (Muxer::Mplex, true) => stack.muxer(Mplex::default()),
        (Muxer::Yamux, false) => stack.muxer(Yamux::default()).muxer(Mplex::default()),
        (Muxer::Mplex, false) => stack.muxer(Mplex::default()).muxer(Yamux::default()),
    }
}

pub(crate) fn builder(common: &Common, key: Keypair) -> Result<(HostBuilder, RelayClient), String> {
    // `/p2p-circuit` addresses: dialed through a relay, listened on by reserving a slot.
    let (relay_transport, relay_client) =
        lp2p::relay::client::new(upgrade_stack(common), ClientConfig::default());
    let mut b = Host::builder()
        .keypair(key)
        .transport(TcpTransport::default())
        .transport(websocket(common)?)
        .transport(QuicTransport::default())
        .transport(relay_transport)
        .on_start(relay_client.hook());
    if let Some(resolver) = resolver(common)? {
        b = b.resolver(resolver);
    }

    b = match common.security {
        Security::Noise => b.security(Noise::new()),
        Security::Tls => b.security(Tls::new()),
        Security::Plaintext => b.security(Plaintext::new()),
    };
    let yamux = |b: HostBuilder| b.muxer(Yamux::default());
    let mplex = |b: HostBuilder| b.muxer(Mplex::default());
    b = match (common.muxer, common.only) {
        (Muxer::Yamux, true) => yamux(b),
        (Muxer::Mplex, true) => mplex(b),
        (Muxer::Yamux, false) => mplex(yamux(b)),
        (Muxer::Mplex, false) => yamux(mplex(b)),
    };
    Ok((b.swarm_config(swarm_config(MAX_CONNECTIONS)), relay_client))
}

/// A running node: the host and its services.
pub(crate) struct Node {
    /// The host.
    pub host: Host,
    /// Identify, ping, pubsub, perf, echo.
    pub services: Services,
    /// The relay client (reservations made by `--relay`).
    pub relay: RelayClient,
}

/// Builds and starts a node listening on `listen` (possibly none), dialing `bootstrap`.
pub(crate) async fn start(
    common: &Common,
    key: Keypair,
    listen: &[Multiaddr],
    bootstrap: &[Multiaddr],
) -> Result<Node, String> {
    let (mut b, relay) = builder(common, key)?;
    if common.relay_service {
        b = b.on_start(RelayService::hook(hop_config(common)));
    }
    if common.dcutr {
        // Started with the host, so it answers a peer's exchange over a relayed connection
        // made while the host starts (a `--connect` through a relay).
        b = b.on_start(crate::hole_punching::hook(common.loopback_only));
    }
    for addr in bootstrap {
        b = b.bootstrap(addr.clone());
    }
    let host = b
        .build()
        .await
        .map_err(|e| format!("starting the node failed: {e}"))?;
    let mut services = Services::start(&host, common.bare)?;
    if let Some(mode) = common.kad {
        services.kad = Some(crate::kad::start(&host, mode, bootstrap)?);
    }
    // Echo runs over relayed (limited) connections too: a node reached through `--relay` is
    // tested with it; the relay's data and duration limits still apply.
    host.set_stream_handler_with(ECHO, HandlerOptions::allow_limited(), serve_echo);
    // Perf too, so throughput through a relay can be measured (the relay bench lifts the
    // relay's limits for it).
    lp2p_perf::serve_with(
        &host,
        lp2p_perf::PerfConfig::default(),
        HandlerOptions::allow_limited(),
    );
    for addr in listen {
        host.listen_on(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    }
    Ok(Node {
        host,
        services,
        relay,
    })
}

/// The relay service's limits: the defaults, with `--relay-data-limit` and
/// `--relay-duration-limit` (0 lifts that limit) when given.
fn hop_config(common: &Common) -> HopConfig {
    let mut config = HopConfig::default();
    if let Some(bytes) = common.relay_data_limit {
        config.circuit_limit.data = (bytes > 0).then_some(bytes);
    }
    if let Some(secs) = common.relay_duration_limit {
        config.circuit_limit.duration = (secs > 0).then(|| Duration::from_secs(secs));
    }
    config
}

/// Copies every byte back until the remote closes its write side, then closes.
async fn serve_echo(mut stream: HostStream) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                let Some(chunk) = buf.get(..n) else { break };
                if stream.write_all(chunk).await.is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
    let _ = stream.close().await;
}

/// One echo exchange: sends `text`, closes, and checks the same bytes come back.
pub(crate) async fn echo(
    host: &Host,
    peer: &lp2p::PeerId,
    text: &str,
    timeout: Duration,
) -> Result<usize, String> {
    let exchange = async {
        let mut stream = host
            .new_stream_allow_limited(peer, [ECHO])
            .await
            .map_err(|e| e.to_string())?;
        stream
            .write_all(text.as_bytes())
            .await
            .map_err(|e| format!("echo to {peer}: {e}"))?;
        stream
            .close()
            .await
            .map_err(|e| format!("echo to {peer}: {e}"))?;
        let mut back = Vec::with_capacity(text.len());
        stream
            .read_to_end(&mut back)
            .await
            .map_err(|e| format!("echo from {peer}: {e}"))?;
        if back != text.as_bytes() {
            return Err(format!(
                "echo from {peer} returned {} different bytes",
                back.len()
            ));
        }
        Ok(back.len())
    };
    host.runtime()
        .timeout(timeout, exchange)
        .await
        .map_err(|_| format!("echo with {peer} timed out after {timeout:?}"))?
}

//! The subcommands.

use std::io::IsTerminal;
use std::time::Duration;

use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};
use lp2p::identify::IdentifyEvent;
use lp2p::{ConnectionEvent, Host, IdentifyInfo, Keypair, Multiaddr, PeerId};
use serde_json::{Value, json};

use crate::cli::Common;
use crate::node::{self, Node};
use crate::output::Output;
use crate::stdin_lines::{MAX_STDIN_LINE, StdinLine};

/// How long `dial --publish` waits for the remote to join the topic mesh.
const MESH_WAIT: Duration = Duration::from_secs(5);

/// How long each step of a dial waits for identify when `--identify` is given.
const IDENTIFY_WAIT: Duration = Duration::from_secs(10);

/// A per-operation timeout inside commands that have no --timeout.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

fn peer_of(addr: &Multiaddr) -> Result<PeerId, String> {
    lp2p::core::addr::peer_id(addr)
        .ok_or_else(|| format!("the address {addr} must end in /p2p/<peer id>"))
}

pub(crate) fn identify_event(peer: &PeerId, info: &IdentifyInfo) -> Value {
    json!({
        "event": "identify",
        "peer": peer.to_string(),
        "agent_version": info.agent_version,
        "protocol_version": info.protocol_version,
        "protocols": info.protocols.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "listen_addrs": info.listen_addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "observed_addr": info.observed_addr.as_ref().map(ToString::to_string),
    })
}

fn connected_event(peer: &PeerId, conn: &lp2p::Connection) -> Value {
    json!({
        "event": "connected",
        "peer": peer.to_string(),
        "dir": conn.direction().to_string(),
        "addr": conn.remote_addr().to_string(),
    })
}

/// Prints connected / disconnected (and, when asked, identify) events of `host` until the
/// host closes. Connections come from the lossless lifecycle stream, which starts with the
/// connections that already exist (bootstrap dials may have finished before we got here).
fn print_connection_events(host: &Host, out: &Output, identify: bool) {
    let mut connections = host.connection_events();
    let printer = out.clone();
    host.spawn(async move {
        while let Some(event) = connections.next().await {
            match event {
                ConnectionEvent::Established(connection) => {
                    printer.emit(&connected_event(&connection.peer(), &connection));
                }
                ConnectionEvent::Closed {
                    connection,
                    num_remaining: 0,
                    ..
                } => {
                    printer.emit(
                        &json!({ "event": "disconnected", "peer": connection.peer().to_string() }),
                    );
                }
                ConnectionEvent::Closed { .. } => {}
            }
        }
    });
    if identify {
        let mut events = lp2p::identify::subscribe(host);
        let printer = out.clone();
        host.spawn(async move {
            while let Some(event) = events.next().await {
                if let IdentifyEvent::Identified { peer, info } = event {
                    printer.emit(&identify_event(&peer, &info));
                }
            }
        });
    }
}

/// Starts watching for Ctrl-C (SIGINT) and SIGTERM. Called before the node reports that it
/// is running, so a signal sent right after that is never the default (fatal) action.
fn watch_interrupts() -> Option<async_signal::Signals> {
    match async_signal::Signals::new([async_signal::Signal::Int, async_signal::Signal::Term]) {
        Ok(signals) => Some(signals),
        Err(err) => {
            tracing::warn!(%err, "cannot watch for Ctrl-C");
            None
        }
    }
}

/// Resolves when one of the watched signals arrives (never, if watching failed).
async fn interrupted(signals: Option<async_signal::Signals>) {
    match signals {
        Some(mut signals) => {
            let _ = signals.next().await;
        }
        None => futures::future::pending::<()>().await,
    }
}

async fn sleep_or_forever(host: &Host, timeout: Option<Duration>) {
    match timeout {
        Some(t) => host.runtime().sleep(t).await,
        None => futures::future::pending().await,
    }
}

/// `listen`.
pub(crate) async fn listen(
    common: &Common,
    out: &Output,
    addrs: &[Multiaddr],
    topics: &[String],
    connect: &[Multiaddr],
    relays: &[Multiaddr],
) -> Result<(), String> {
    for relay in relays {
        peer_of(relay).map_err(|e| format!("--relay: {e}"))?;
    }
    for target in connect {
        peer_of(target)?;
    }
    let signals = watch_interrupts();
    let key = node::load_keypair(&common.key)?;
    let Node {
        host,
        services,
        relay: relay_client,
    } = node::start(common, key, &[], connect).await?;
    for addr in addrs {
        host.listen_on(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    }
    let me = host.local_peer_id();
    let metrics = match common.metrics {
        Some(addr) => Some(services.serve_metrics(&host, addr)?),
        None => None,
    };
    // `listening` is the first event (the contract); the lifecycle stream starts with the
    // connections that already exist, so a bootstrap connection made meanwhile still prints.
    let mut listening = json!({
        "event": "listening",
        "peer_id": me.to_string(),
        "addrs": host.listen_addrs().iter().map(|a| lp2p::core::addr::with_peer_id(a, me).to_string()).collect::<Vec<_>>(),
    });
    if let Some(server) = &metrics {
        listening["metrics"] = json!(format!("http://{}/metrics", server.local_addr()));
    }
    out.emit(&listening);
    print_connection_events(&host, out, true);
    let relay_follower = if common.relay_follows_reachability {
        Some(follow_with_relays(&host, &relay_client, out, relays))
    } else {
        for relay in relays {
            reserve(&host, &relay_client, out, relay).await?;
        }
        None
    };
    let mdns = if common.mdns {
        Some(crate::discovery::start(&host, out)?)
    } else {
        None
    };
    let autonat =
        crate::reachability::start_if_asked(&host, out, common, &services, relay_follower);
    crate::hole_punching::print_events(&host, out);
    let _port_mapper = if common.upnp {
        Some(crate::port_mapping::start(&host, out)?)
    } else {
        None
    };
    for topic in topics {
        services.print_messages(&host, topic, out)?;
    }

    // Stdin lines `publish <topic> <text>`; EOF ends the run when stdin is not a terminal.
    let mut lines = crate::stdin_lines::start();
    let stdin_is_terminal = std::io::stdin().is_terminal();
    let mut stop = Box::pin(futures::future::select(
        Box::pin(interrupted(signals)),
        Box::pin(sleep_or_forever(&host, common.timeout)),
    ))
    .fuse();
    loop {
        futures::select! {
            _ = stop => break,
            line = lines.next() => match line {
                Some(StdinLine::Line(line)) => {
                    let autonat = autonat.as_ref().map(|a| &a.client);
                    handle_stdin_line(&services, autonat, out, &line).await;
                }
                Some(StdinLine::Skipped { len, reason }) => {
                    tracing::warn!(len, reason, "stdin line skipped");
                    out.say(&format!("stdin line of {len} bytes skipped: {reason} (at most {MAX_STDIN_LINE} bytes of UTF-8)"));
                }
                Some(StdinLine::Eof) | None if stdin_is_terminal => {
                    // A terminal's end of input does not end the run; the timeout or a
                    // signal still does.
                    (&mut stop).await;
                    break;
                }
                Some(StdinLine::Eof) | None => break,
            },
        }
    }
    if let Some(mdns) = mdns {
        // Goodbye on the network, so peers forget us now rather than after our TTL.
        mdns.stop().await;
    }
    host.close().await;
    Ok(())
}

async fn handle_stdin_line(
    services: &crate::services::Services,
    autonat: Option<&lp2p::autonat::AutonatClient>,
    out: &Output,
    line: &str,
) {
    let line = line.trim();
    if line.is_empty() {
        return;
    }
    if let Some(addr) = line.strip_prefix("explain ") {
        out.emit(&match autonat {
            Some(client) => crate::reachability::explain_event(client, addr.trim()),
            None => json!({
                "event": "explain", "ok": false,
                "error": "AutoNAT is not running (start with --autonat)",
            }),
        });
        return;
    }
    if let Some(op) = crate::kad::parse_line(line) {
        match (op, &services.kad) {
            (Ok(op), Some(kad)) => {
                // Each operation in its own task: a slow lookup does not hold up the others.
                let (kad, out) = (kad.clone(), out.clone());
                if let Some(rt) = lp2p::RuntimeHandle::try_default() {
                    let clock = rt.clone();
                    rt.spawn_detached(async move {
                        let (_, event) = crate::kad::run(&clock, &kad, &op).await;
                        out.emit(&event);
                    });
                }
            }
            (Ok(_), None) => out.emit(&json!({
                "event": "kad", "ok": false, "error": "kad is not running (start with --kad server|client)",
            })),
            (Err(err), _) => out.emit(&json!({ "event": "kad", "ok": false, "error": err })),
        }
        return;
    }
    let mut parts = line.splitn(3, ' ');
    if let (Some("publish"), Some(topic), Some(text)) = (parts.next(), parts.next(), parts.next()) {
        if let Err(err) = services.publish(topic, text.as_bytes()).await {
            tracing::warn!(%err, "publish failed");
            out.say(&format!("publish to {topic} failed: {err}"));
        }
    } else {
        tracing::warn!(
            line,
            "unknown stdin command; expected `publish <topic> <text>`, `explain <addr>` or a kad-* line"
        );
        out.say(
            "unknown command; expected `publish <topic> <text>`, `explain <addr>` or a kad-* line",
        );
    }
}

/// What `dial` does after connecting, in this order.
pub(crate) struct DialActions<'a> {
    /// `--ping N`.
    pub ping: Option<u32>,
    /// `--echo TEXT`.
    pub echo: Option<&'a str>,
    /// `--identify`.
    pub identify: bool,
    /// `--topic`.
    pub topic: Option<&'a str>,
    /// `--publish`.
    pub publish: Option<&'a str>,
    /// `--expect-messages`.
    pub expect_messages: Option<usize>,
    /// `--kad-*`, in the order given.
    pub kad_ops: &'a [crate::cli::KadOp],
}

/// `--relay`: listens on `<relay>/p2p-circuit`, which reserves a slot there (renewed while
/// the node runs), and prints the reservation with our addresses through the relay.
async fn reserve(
    host: &Host,
    client: &lp2p::relay::client::RelayClient,
    out: &Output,
    relay: &Multiaddr,
) -> Result<(), String> {
    let relay_peer = peer_of(relay)?;
    let circuit = relay.clone().with(lp2p::core::Protocol::P2pCircuit);
    host.listen_on(&circuit)
        .await
        .map_err(|e| format!("reserving a slot on {relay}: {e}"))?;
    let me = host.local_peer_id();
    let addrs: Vec<String> = client
        .reservations()
        .into_iter()
        .filter(|r| r.relay == relay_peer)
        .flat_map(|r| r.addrs)
        .map(|a| lp2p::core::addr::with_peer_id(&a, me).to_string())
        .collect();
    out.emit(&json!({
        "event": "reservation",
        "relay": relay_peer.to_string(),
        "addrs": addrs,
    }));
    Ok(())
}

/// `--relay-auto`: the reservations on `relays` follow the node's public reachability
/// (`RelayClient::reserve_while_unreachable`); prints `reservation` as each is granted
/// (renewals aside) and `reservation-released` as each is given up. Returns where the
/// verdicts go.
fn follow_with_relays(
    host: &Host,
    client: &lp2p::relay::client::RelayClient,
    out: &Output,
    relays: &[Multiaddr],
) -> mpsc::UnboundedSender<bool> {
    use lp2p::relay::client::RelayClientEvent;
    let mut events = client.events();
    let (out, me) = (out.clone(), host.local_peer_id());
    host.spawn(async move {
        while let Some(event) = events.next().await {
            match event {
                RelayClientEvent::ReservationAccepted {
                    reservation,
                    renewal: false,
                } => out.emit(&json!({
                    "event": "reservation",
                    "relay": reservation.relay.to_string(),
                    "addrs": reservation
                        .addrs
                        .iter()
                        .map(|a| lp2p::core::addr::with_peer_id(a, me).to_string())
                        .collect::<Vec<_>>(),
                })),
                RelayClientEvent::ReservationReleased { relay } => out.emit(&json!({
                    "event": "reservation-released",
                    "relay": relay.to_string(),
                })),
                _ => {}
            }
        }
    });
    let (tx, rx) = mpsc::unbounded();
    client.reserve_while_unreachable(host, relays.to_vec(), rx);
    tx
}

/// `dial`.
pub(crate) async fn dial(
    common: &Common,
    out: &Output,
    addr: &Multiaddr,
    actions: DialActions<'_>,
) -> Result<(), String> {
    // A name (`/dnsaddr/bootstrap.example`) may leave the peer to the records.
    let peer = match peer_of(addr) {
        Ok(peer) => Some(peer),
        Err(_) if lp2p::dns::has_name(addr) => None,
        Err(e) => return Err(e),
    };
    let key = node::load_keypair(&common.key)?;
    let Node { host, services, .. } = node::start(common, key, &[], &[]).await?;
    if common.mdns {
        crate::discovery::start(&host, out)?;
    }
    let _autonat = crate::reachability::start_if_asked(&host, out, common, &services, None);
    crate::hole_punching::print_events(&host, out);
    let metrics = match common.metrics {
        Some(addr) => Some(services.serve_metrics(&host, addr)?),
        None => None,
    };
    if let Some(server) = &metrics {
        out.emit(&json!({
            "event": "metrics",
            "url": format!("http://{}/metrics", server.local_addr()),
        }));
    }
    let result = dial_actions(&host, &services, out, addr, peer, &actions).await;
    host.close().await;
    result
}

async fn dial_actions(
    host: &Host,
    services: &crate::services::Services,
    out: &Output,
    addr: &Multiaddr,
    peer: Option<PeerId>,
    actions: &DialActions<'_>,
) -> Result<(), String> {
    // Subscribe before connecting so the first gossip already knows our interest.
    let messages = match actions.topic {
        Some(t) => Some(services.collect_messages(host, t, out)?),
        None => None,
    };
    let conn = host
        .connect_addr(addr.clone())
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let peer = peer.unwrap_or_else(|| conn.peer());
    out.emit(&connected_event(&peer, &conn));

    if let Some(count) = actions.ping {
        for _ in 0..count {
            let rtt = services.ping(host, &peer).await?;
            out.emit(&json!({ "event": "ping", "peer": peer.to_string(), "rtt_ms": rtt.as_secs_f64() * 1000.0 }));
        }
    }
    if let Some(text) = actions.echo {
        let bytes = node::echo(host, &peer, text, STEP_TIMEOUT).await?;
        out.emit(&json!({ "event": "echo", "peer": peer.to_string(), "ok": true, "bytes": bytes }));
    }
    if actions.identify {
        let info = services.wait_identified(host, &peer, IDENTIFY_WAIT).await?;
        out.emit(&identify_event(&peer, &info));
    }
    if let (Some(topic), Some(text)) = (actions.topic, actions.publish) {
        services.wait_for_mesh(host, topic, &peer, MESH_WAIT).await;
        services.publish(topic, text.as_bytes()).await?;
        // Publishing only queues: wait until the message is on its way to every peer before
        // the node closes and exits.
        services.flush(host, STEP_TIMEOUT).await?;
    }
    if let (Some(messages), Some(expected)) = (messages, actions.expect_messages) {
        messages.wait_for(expected).await?;
    }
    if let Some(kad) = &services.kad {
        // The dialed peer is the DHT entry point.
        crate::kad::add_bootstrap(kad, std::slice::from_ref(addr));
        for op in actions.kad_ops {
            let (ok, event) = crate::kad::run(host.runtime(), kad, op).await;
            out.emit(&event);
            if !ok {
                let what = event["error"].as_str().unwrap_or("failed").to_owned();
                return Err(format!(
                    "kad {}: {what}",
                    event["op"].as_str().unwrap_or("?")
                ));
            }
        }
    }
    Ok(())
}

/// `perf`.
pub(crate) async fn perf(
    common: &Common,
    out: &Output,
    addr: &Multiaddr,
    upload: u64,
    download: u64,
) -> Result<(), String> {
    let key = node::load_keypair(&common.key)?;
    let Node { host, .. } = node::start(common, key, &[], &[]).await?;
    let result = async {
        let runtime = host.runtime();
        let start = runtime.now();
        let conn = host
            .connect_addr(addr.clone())
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let stream = host
            .new_stream_on(&conn, [lp2p_perf::PROTOCOL])
            .await
            .map_err(|e| format!("perf: {e}"))?;
        let report = lp2p_perf::run_on(runtime, stream, upload, download, start)
            .await
            .map_err(|e| e.to_string())?;
        out.emit(&json!({
            "event": "perf",
            "upload_bytes": report.uploaded,
            "download_bytes": report.downloaded,
            "seconds": report.total.as_secs_f64(),
        }));
        Ok(())
    }
    .await;
    host.close().await;
    result
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((p / 100.0) * (sorted.len() as f64)).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1).min(sorted.len() - 1))
        .copied()
        .unwrap_or(0.0)
}

/// `conn-bench`.
pub(crate) async fn conn_bench(
    common: &Common,
    out: &Output,
    addr: &Multiaddr,
    count: usize,
) -> Result<(), String> {
    let peer = peer_of(addr)?;
    let key = node::load_keypair(&common.key)?;
    let Node { host, services, .. } = node::start(common, key, &[], &[]).await?;
    // Through a relay the round trip is a one-byte echo: ping does not run over limited
    // (relayed) connections, echo does.
    let relayed = addr
        .iter()
        .any(|p| matches!(p, lp2p::core::Protocol::P2pCircuit));
    let result = async {
        let mut firsts = Vec::with_capacity(count);
        let runtime = host.runtime();
        let start = runtime.now();
        for i in 0..count {
            let t0 = runtime.now();
            let conn = host
                .swarm()
                .dial_new(addr.clone())
                .await
                .map_err(|e| format!("connection {} to {addr}: {e}", i + 1))?;
            if relayed {
                echo_on(&host, &conn).await?;
            } else {
                services.ping_on(&host, &conn).await?;
            }
            firsts.push(runtime.now().saturating_duration_since(t0).as_secs_f64() * 1000.0);
            conn.close().await;
        }
        let seconds = runtime.now().saturating_duration_since(start).as_secs_f64();
        firsts.sort_by(f64::total_cmp);
        #[allow(clippy::cast_precision_loss)]
        let rate = if seconds > 0.0 {
            count as f64 / seconds
        } else {
            0.0
        };
        out.emit(&json!({
            "event": "conn-bench",
            "count": count,
            "seconds": seconds,
            "conns_per_sec": rate,
            "first_ping_ms_p50": percentile(&firsts, 50.0),
            "first_ping_ms_p99": percentile(&firsts, 99.0),
            "first_ping_ms_min": firsts.first().copied().unwrap_or(0.0),
            "first_ping_ms_max": firsts.last().copied().unwrap_or(0.0),
        }));
        let _ = peer;
        Ok(())
    }
    .await;
    host.close().await;
    result
}

/// One echo exchange of one byte on `conn` (conn-bench through a relay).
async fn echo_on(host: &Host, conn: &lp2p::Connection) -> Result<(), String> {
    use futures::{AsyncReadExt, AsyncWriteExt};
    let peer = conn.peer();
    let mut stream = host
        .new_stream_on(conn, [node::ECHO])
        .await
        .map_err(|e| format!("echo to {peer}: {e}"))?;
    stream
        .write_all(b"x")
        .await
        .map_err(|e| format!("echo to {peer}: {e}"))?;
    stream
        .close()
        .await
        .map_err(|e| format!("echo to {peer}: {e}"))?;
    let mut back = Vec::with_capacity(1);
    stream
        .read_to_end(&mut back)
        .await
        .map_err(|e| format!("echo from {peer}: {e}"))?;
    if back != b"x" {
        return Err(format!("echo from {peer} returned {} bytes", back.len()));
    }
    Ok(())
}

/// `hold`.
pub(crate) async fn hold(
    common: &Common,
    out: &Output,
    addr: &Multiaddr,
    count: usize,
    concurrency: usize,
) -> Result<(), String> {
    let signals = watch_interrupts();
    let key = node::load_keypair(&common.key)?;
    let Node { host, .. } = node::start(common, key, &[], &[]).await?;
    let start = host.runtime().now();
    let dials = futures::stream::iter(0..count)
        .map(|_| {
            let host = host.clone();
            let addr = addr.clone();
            async move { host.swarm().dial_new(addr).await }
        })
        .buffer_unordered(concurrency);
    let results: Vec<_> = dials.collect().await;
    let seconds = host
        .runtime()
        .now()
        .saturating_duration_since(start)
        .as_secs_f64();
    let mut first_error = None;
    let mut held = Vec::new();
    for r in results {
        match r {
            Ok(conn) => held.push(conn),
            Err(e) => {
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    let failed = count - held.len();
    out.emit(&json!({ "event": "hold", "connections": held.len(), "failed": failed, "seconds": seconds }));
    let outcome = if let Some(err) = first_error {
        Err(format!(
            "{failed} of {count} connections to {addr} failed; the first: {err}"
        ))
    } else {
        futures::future::select(
            Box::pin(interrupted(signals)),
            Box::pin(sleep_or_forever(&host, common.timeout)),
        )
        .await;
        Ok(())
    };
    drop(held);
    host.close().await;
    outcome
}

/// `keygen`.
pub(crate) fn keygen(out: &Output, path: Option<&std::path::Path>) -> Result<(), String> {
    let key = Keypair::generate_ed25519();
    if let Some(path) = path {
        node::write_key_file(path, &key)?;
    }
    let mut event = json!({ "event": "keygen", "peer_id": key.public().to_peer_id().to_string() });
    if let (Some(path), Some(object)) = (path, event.as_object_mut()) {
        object.insert("path".to_owned(), Value::String(path.display().to_string()));
    }
    out.emit(&event);
    Ok(())
}
